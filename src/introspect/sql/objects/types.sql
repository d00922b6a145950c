-- Domains, composite types and range types (enums are read by ../enums.sql).
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
  FROM ut JOIN pg_catalog.pg_range rg ON rg.rngtypid = ut.oid
  JOIN pg_catalog.pg_type st ON st.oid = rg.rngsubtype
  JOIN pg_catalog.pg_opclass opc ON opc.oid = rg.rngsubopc
  JOIN pg_catalog.pg_namespace opn ON opn.oid = opc.opcnamespace
  LEFT JOIN pg_catalog.pg_collation rco ON rco.oid = rg.rngcollation
  LEFT JOIN pg_catalog.pg_namespace rcn ON rcn.oid = rco.collnamespace
  WHERE ut.typtype = 'r'
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
