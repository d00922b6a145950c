-- How each side of a pg_depend edge is reduced to the object a restore creates
-- (classid, objid -> nclass, nobj): an index, constraint, column default or view rule
-- to its relation, a table's row type to the table, an array or multirange type to its
-- element or range type, a composite type's relation to the type, an extension's
-- member to the extension. See objects.rs, read_dependencies.
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
