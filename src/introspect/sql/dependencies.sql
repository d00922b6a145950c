-- pg_depend edges between user objects, each side reduced to the object a restore
-- creates: an index, constraint, column default or view rule to its relation, a
-- table's row type to the table, an array or multirange type to its element or range
-- type, a composite type's relation to the type, an extension's member to the
-- extension. Sequence ownership (OWNED BY) is left out: it is set after the tables.
WITH norm(classid, objid, nclass, nobj) AS (
  SELECT 'pg_catalog.pg_class'::regclass::oid, c.oid, 'pg_catalog.pg_type'::regclass::oid, c.reltype
  FROM pg_catalog.pg_class c WHERE c.relkind = 'c'
  UNION ALL
  SELECT 'pg_catalog.pg_class'::regclass::oid, i.indexrelid, 'pg_catalog.pg_class'::regclass::oid, i.indrelid
  FROM pg_catalog.pg_index i
  UNION ALL
  SELECT 'pg_catalog.pg_type'::regclass::oid, t.oid, 'pg_catalog.pg_class'::regclass::oid, t.typrelid
  FROM pg_catalog.pg_type t JOIN pg_catalog.pg_class r ON r.oid = t.typrelid
  WHERE t.typtype = 'c' AND r.relkind <> 'c'
  UNION ALL
  SELECT 'pg_catalog.pg_type'::regclass::oid, a.oid,
         CASE WHEN r.relkind IS NOT NULL AND r.relkind <> 'c' THEN 'pg_catalog.pg_class'::regclass::oid
              ELSE 'pg_catalog.pg_type'::regclass::oid END,
         CASE WHEN r.relkind IS NOT NULL AND r.relkind <> 'c' THEN r.oid ELSE e.oid END
  FROM pg_catalog.pg_type a JOIN pg_catalog.pg_type e ON e.typarray = a.oid
  LEFT JOIN pg_catalog.pg_class r ON r.oid = e.typrelid
  UNION ALL
  SELECT 'pg_catalog.pg_type'::regclass::oid, (pg_catalog.to_jsonb(rg) ->> 'rngmultitypid')::oid,
         'pg_catalog.pg_type'::regclass::oid, rg.rngtypid
  FROM pg_catalog.pg_range rg WHERE pg_catalog.to_jsonb(rg) ? 'rngmultitypid'
  UNION ALL
  SELECT 'pg_catalog.pg_attrdef'::regclass::oid, ad.oid, 'pg_catalog.pg_class'::regclass::oid, ad.adrelid
  FROM pg_catalog.pg_attrdef ad
  UNION ALL
  SELECT 'pg_catalog.pg_constraint'::regclass::oid, co.oid,
         CASE WHEN co.conrelid <> 0 THEN 'pg_catalog.pg_class'::regclass::oid
              ELSE 'pg_catalog.pg_type'::regclass::oid END,
         CASE WHEN co.conrelid <> 0 THEN co.conrelid ELSE co.contypid END
  FROM pg_catalog.pg_constraint co
  UNION ALL
  SELECT 'pg_catalog.pg_rewrite'::regclass::oid, rw.oid, 'pg_catalog.pg_class'::regclass::oid, rw.ev_class
  FROM pg_catalog.pg_rewrite rw WHERE rw.rulename = '_RETURN'
  UNION ALL
  -- Members of an operator class or family are created by its statements.
  SELECT d.classid, d.objid, d.refclassid, d.refobjid
  FROM pg_catalog.pg_depend d
  WHERE d.classid IN ('pg_catalog.pg_amop'::regclass, 'pg_catalog.pg_amproc'::regclass)
    AND d.refclassid IN ('pg_catalog.pg_opclass'::regclass, 'pg_catalog.pg_opfamily'::regclass)
    AND d.deptype IN ('i', 'a')
  UNION ALL
  -- Publication members are added by the publication's statements.
  SELECT d.classid, d.objid, 'pg_catalog.pg_publication'::regclass::oid, d.refobjid
  FROM pg_catalog.pg_depend d
  WHERE d.classid = 'pg_catalog.pg_publication_rel'::regclass
    AND d.refclassid = 'pg_catalog.pg_publication'::regclass
  UNION ALL
  SELECT d.classid, d.objid, d.refclassid, d.refobjid
  FROM pg_catalog.pg_depend d WHERE d.deptype = 'e'
)
-- The I/O functions of a base type, and a range type's canonical function, need only
-- the type's shell (classid 1, see objects/types.sql), which comes before them. Only
-- functions the database made can be such an edge (the edges below start at 16384):
-- every table's array type is a base type with built-in I/O, and on 3000 tables
-- keeping those made this a 15,000-row list joined to every edge (23 s).
, shell(fn, typ) AS (
  SELECT f.fn, t.oid FROM pg_catalog.pg_type t
  CROSS JOIN LATERAL (VALUES (t.typinput), (t.typoutput), (t.typreceive), (t.typsend),
                             (t.typmodin), (t.typmodout), (t.typanalyze)) AS f(fn)
  WHERE t.typtype = 'b' AND f.fn::oid >= 16384 AND t.oid >= 16384
  UNION ALL
  SELECT rg.rngcanonical, rg.rngtypid FROM pg_catalog.pg_range rg
  WHERE rg.rngcanonical::oid >= 16384 AND rg.rngtypid >= 16384
)
SELECT DISTINCT COALESCE(n1.nclass, d.classid) AS classid, COALESCE(n1.nobj, d.objid) AS objid,
       CASE WHEN sh.typ IS NOT NULL THEN 1 ELSE COALESCE(n2.nclass, d.refclassid) END AS refclassid,
       COALESCE(n2.nobj, d.refobjid) AS refobjid
FROM pg_catalog.pg_depend d
LEFT JOIN norm n1 ON n1.classid = d.classid AND n1.objid = d.objid
LEFT JOIN norm n2 ON n2.classid = d.refclassid AND n2.objid = d.refobjid
LEFT JOIN shell sh ON d.classid = 'pg_catalog.pg_proc'::regclass AND sh.fn::oid = d.objid
                  AND d.refclassid = 'pg_catalog.pg_type'::regclass AND sh.typ = d.refobjid
WHERE d.deptype IN ('n', 'a', 'i') AND d.objid >= 16384
  AND NOT (d.deptype = 'a' AND d.classid = 'pg_catalog.pg_class'::regclass
           AND EXISTS (SELECT 1 FROM pg_catalog.pg_class s WHERE s.oid = d.objid AND s.relkind = 'S'))
