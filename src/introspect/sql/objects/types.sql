-- Domains, composite types, range types and base types (enums are read by
-- ../enums.sql), and shell types.
--
-- A base type and the I/O functions it names need each other: the functions take or
-- return the type, the type names the functions. As pg_dump does, the type is first
-- created as a shell (`CREATE TYPE name`), then the functions, then the full type,
-- which fills the shell in. The shell is its own object, with classid 1 (no catalog
-- has that OID) and the type's OID; ../dependencies.sql points the I/O functions'
-- dependency at it. A range type's canonical function needs the same. A shell that
-- was never filled in keeps the pg_type key, as it is the whole object.
WITH ut AS (
  SELECT t.*, n.nspname,
         pg_catalog.format('%I.%I', n.nspname, t.typname) AS qname
  FROM pg_catalog.pg_type t
  JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
  WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_type'::regclass
                      AND d.objid = t.oid AND d.deptype = 'e')
), defs AS (
  -- Domains: valid checks inline, NOT VALID ones added after, as pg_dump does.
  SELECT ut.oid, 'domain' AS kind, 'DOMAIN' AS word,
         ARRAY[pg_catalog.format('CREATE DOMAIN %s AS %s%s%s%s%s', ut.qname,
                 pg_catalog.format_type(ut.typbasetype, ut.typtypmod),
                 CASE WHEN ut.typcollation <> bt.typcollation
                      THEN ' COLLATE ' || pg_catalog.format('%I.%I', cn.nspname, co.collname) ELSE '' END,
                 CASE WHEN ut.typdefault IS NOT NULL THEN ' DEFAULT ' || ut.typdefault ELSE '' END,
                 CASE WHEN ut.typnotnull THEN ' NOT NULL' ELSE '' END,
                 COALESCE((SELECT pg_catalog.string_agg(pg_catalog.format(' CONSTRAINT %I %s', c.conname,
                                                         pg_catalog.pg_get_constraintdef(c.oid)), '' ORDER BY c.conname)
                           FROM pg_catalog.pg_constraint c
                           WHERE c.contypid = ut.oid AND c.contype = 'c' AND c.convalidated), ''))]
         || ARRAY(SELECT pg_catalog.format('ALTER DOMAIN %s ADD CONSTRAINT %I %s', ut.qname, c.conname,
                                           pg_catalog.pg_get_constraintdef(c.oid))
                  FROM pg_catalog.pg_constraint c
                  WHERE c.contypid = ut.oid AND c.contype = 'c' AND NOT c.convalidated ORDER BY c.conname)
         || ARRAY(SELECT pg_catalog.format('COMMENT ON CONSTRAINT %I ON DOMAIN %s IS %L', c.conname, ut.qname,
                                           pg_catalog.obj_description(c.oid, 'pg_constraint'))
                  FROM pg_catalog.pg_constraint c
                  WHERE c.contypid = ut.oid AND pg_catalog.obj_description(c.oid, 'pg_constraint') IS NOT NULL
                  ORDER BY c.conname) AS stmts
  FROM ut
  JOIN pg_catalog.pg_type bt ON bt.oid = ut.typbasetype
  LEFT JOIN pg_catalog.pg_collation co ON co.oid = ut.typcollation
  LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
  WHERE ut.typtype = 'd'
  UNION ALL
  -- Composite types (stand-alone ones; a table's row type comes with the table).
  SELECT ut.oid, 'composite type', 'TYPE',
         ARRAY[pg_catalog.format('CREATE TYPE %s AS (%s)', ut.qname,
                 COALESCE((SELECT pg_catalog.string_agg(pg_catalog.format('%I %s%s', a.attname,
                                     pg_catalog.format_type(a.atttypid, a.atttypmod),
                                     CASE WHEN a.attcollation <> at.typcollation
                                          THEN ' COLLATE ' || pg_catalog.format('%I.%I', acn.nspname, aco.collname)
                                          ELSE '' END), ', ' ORDER BY a.attnum)
                           FROM pg_catalog.pg_attribute a
                           JOIN pg_catalog.pg_type at ON at.oid = a.atttypid
                           LEFT JOIN pg_catalog.pg_collation aco ON aco.oid = a.attcollation
                           LEFT JOIN pg_catalog.pg_namespace acn ON acn.oid = aco.collnamespace
                           WHERE a.attrelid = ut.typrelid AND a.attnum > 0 AND NOT a.attisdropped), ''))]
         || ARRAY(SELECT pg_catalog.format('COMMENT ON COLUMN %s.%I IS %L', ut.qname, a.attname,
                                           pg_catalog.col_description(a.attrelid, a.attnum))
                  FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = ut.typrelid AND a.attnum > 0 AND NOT a.attisdropped
                    AND pg_catalog.col_description(a.attrelid, a.attnum) IS NOT NULL
                  ORDER BY a.attnum)
  FROM ut JOIN pg_catalog.pg_class r ON r.oid = ut.typrelid
  WHERE ut.typtype = 'c' AND r.relkind = 'c'
  UNION ALL
  -- Range types; PG14+ names its multirange type.
  SELECT ut.oid, 'range type', 'TYPE',
         ARRAY[pg_catalog.format('CREATE TYPE %s AS RANGE (subtype = %s%s%s%s%s%s)', ut.qname,
                 pg_catalog.format_type(rg.rngsubtype, NULL),
                 CASE WHEN NOT opc.opcdefault
                      THEN pg_catalog.format(', subtype_opclass = %I.%I', opn.nspname, opc.opcname) ELSE '' END,
                 CASE WHEN rg.rngcollation <> 0 AND rg.rngcollation <> st.typcollation
                      THEN pg_catalog.format(', collation = %I.%I', rcn.nspname, rco.collname) ELSE '' END,
                 CASE WHEN rg.rngcanonical <> 0 THEN ', canonical = ' || rg.rngcanonical::regproc::text ELSE '' END,
                 CASE WHEN rg.rngsubdiff <> 0 THEN ', subtype_diff = ' || rg.rngsubdiff::regproc::text ELSE '' END,
                 CASE WHEN pg_catalog.to_jsonb(rg) ? 'rngmultitypid'
                      THEN ', multirange_type_name = '
                           || ((pg_catalog.to_jsonb(rg) ->> 'rngmultitypid')::oid)::regtype::text
                      ELSE '' END)]
         -- The multirange type comes with the range, its comment does not (pg_dump
         -- loses it).
         || ARRAY(SELECT pg_catalog.format('COMMENT ON TYPE %s IS %L', m.oid::regtype::text, d.description)
                  FROM pg_catalog.pg_type m
                  JOIN pg_catalog.pg_description d ON d.classoid = 'pg_catalog.pg_type'::regclass
                                                  AND d.objoid = m.oid AND d.objsubid = 0
                  WHERE m.oid = (pg_catalog.to_jsonb(rg) ->> 'rngmultitypid')::oid)
  FROM ut JOIN pg_catalog.pg_range rg ON rg.rngtypid = ut.oid
  JOIN pg_catalog.pg_type st ON st.oid = rg.rngsubtype
  JOIN pg_catalog.pg_opclass opc ON opc.oid = rg.rngsubopc
  JOIN pg_catalog.pg_namespace opn ON opn.oid = opc.opcnamespace
  LEFT JOIN pg_catalog.pg_collation rco ON rco.oid = rg.rngcollation
  LEFT JOIN pg_catalog.pg_namespace rcn ON rcn.oid = rco.collnamespace
  WHERE ut.typtype = 'r'
  UNION ALL
  -- Base types, but not the array types PostgreSQL makes with each type.
  SELECT ut.oid, 'base type', 'TYPE',
         ARRAY['CREATE TYPE ' || ut.qname || ' ('
               || 'INTERNALLENGTH = ' || CASE WHEN ut.typlen < 0 THEN 'variable' ELSE ut.typlen::text END
               || ', INPUT = ' || ut.typinput::regproc::text
               || ', OUTPUT = ' || ut.typoutput::regproc::text
               || CASE WHEN ut.typreceive <> 0 THEN ', RECEIVE = ' || ut.typreceive::regproc::text ELSE '' END
               || CASE WHEN ut.typsend <> 0 THEN ', SEND = ' || ut.typsend::regproc::text ELSE '' END
               || CASE WHEN ut.typmodin <> 0 THEN ', TYPMOD_IN = ' || ut.typmodin::regproc::text ELSE '' END
               || CASE WHEN ut.typmodout <> 0 THEN ', TYPMOD_OUT = ' || ut.typmodout::regproc::text ELSE '' END
               || CASE WHEN ut.typanalyze <> 0 THEN ', ANALYZE = ' || ut.typanalyze::regproc::text ELSE '' END
               || CASE WHEN COALESCE(pg_catalog.to_jsonb(ut) ->> 'typsubscript', '-') <> '-'
                       THEN ', SUBSCRIPT = ' || (pg_catalog.to_jsonb(ut) ->> 'typsubscript') ELSE '' END
               || CASE WHEN ut.typdefault IS NOT NULL
                       THEN ', DEFAULT = ' || pg_catalog.quote_literal(ut.typdefault) ELSE '' END
               || CASE WHEN ut.typbyval THEN ', PASSEDBYVALUE' ELSE '' END
               || CASE WHEN ut.typcategory <> 'U'
                       THEN ', CATEGORY = ' || pg_catalog.quote_literal(ut.typcategory::text) ELSE '' END
               || CASE WHEN ut.typispreferred THEN ', PREFERRED = true' ELSE '' END
               || CASE WHEN ut.typelem <> 0
                       THEN ', ELEMENT = ' || pg_catalog.format_type(ut.typelem, NULL) ELSE '' END
               || CASE WHEN ut.typdelim <> ','
                       THEN ', DELIMITER = ' || pg_catalog.quote_literal(ut.typdelim::text) ELSE '' END
               || ', ALIGNMENT = ' || CASE ut.typalign WHEN 'c' THEN 'char' WHEN 's' THEN 'int2'
                                                       WHEN 'i' THEN 'int4' ELSE 'double' END
               || ', STORAGE = ' || CASE ut.typstorage WHEN 'p' THEN 'plain' WHEN 'e' THEN 'external'
                                                       WHEN 'm' THEN 'main' ELSE 'extended' END
               || CASE WHEN ut.typcollation <> 0 THEN ', COLLATABLE = true' ELSE '' END
               || ')']
  FROM ut
  WHERE ut.typtype = 'b'
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = ut.oid)
  UNION ALL
  -- Shell types never filled in.
  SELECT ut.oid, 'shell type', 'TYPE', ARRAY['CREATE TYPE ' || ut.qname]
  FROM ut WHERE ut.typtype = 'p'
)
SELECT 'pg_catalog.pg_type'::regclass::oid AS classid, ut.oid AS objid,
       defs.kind, ut.nspname::text AS schema, ut.typname::text AS name,
       'pre-data' AS section, defs.stmts AS "create",
       defs.word || ' ' || ut.qname AS target,
       pg_catalog.pg_get_userbyid(ut.typowner)::text AS owner,
       ut.typacl::text[] AS acl,
       pg_catalog.acldefault('T', ut.typowner)::text[] AS acl_default,
       defs.word || ' ' || ut.qname AS acl_target,
       pg_catalog.obj_description(ut.oid, 'pg_type') AS comment,
       NULL::text AS table_schema, NULL::text AS table_name
FROM defs JOIN ut ON ut.oid = defs.oid
UNION ALL
-- The shells that base types and range types with a canonical function start as.
SELECT 1, ut.oid, 'shell type', ut.nspname::text, ut.typname::text, 'pre-data',
       ARRAY['CREATE TYPE ' || ut.qname], NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM ut
WHERE (ut.typtype = 'b' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = ut.oid))
   OR (ut.typtype = 'r' AND EXISTS (SELECT 1 FROM pg_catalog.pg_range rg
                                    WHERE rg.rngtypid = ut.oid AND rg.rngcanonical <> 0))
