-- Sequences with their options and, for serial and identity columns, their owner.
SELECT n.nspname, c.relname,
       pg_catalog.format_type(s.seqtypid, NULL) AS data_type,
       s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
       dn.nspname AS owner_schema, dc.relname AS owner_table, da.attname AS owner_column,
       d.deptype::text AS deptype,
       pg_catalog.obj_description(c.oid, 'pg_class') AS comment, c.oid,
       c.relpersistence = 'u' AS unlogged,
       pg_catalog.pg_get_userbyid(c.relowner)::text AS owner, c.relacl::text[] AS acl,
       pg_catalog.acldefault('s', c.relowner)::text[] AS acl_default,
       pg_catalog.has_sequence_privilege(c.oid, 'SELECT') AS readable
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid
LEFT JOIN pg_catalog.pg_depend d
       ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
      AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i')
LEFT JOIN pg_catalog.pg_class dc ON dc.oid = d.refobjid
LEFT JOIN pg_catalog.pg_namespace dn ON dn.oid = dc.relnamespace
LEFT JOIN pg_catalog.pg_attribute da ON da.attrelid = d.refobjid AND da.attnum = d.refobjsubid
WHERE c.relkind = 'S' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_class'::regclass
                    AND e.objid = c.oid AND e.deptype = 'e')
ORDER BY n.nspname, c.relname
