-- Ordinary tables, with their on-disk size to schedule the largest first and their
-- heap pages to split big ones into ctid ranges.
SELECT c.oid, n.nspname, c.relname,
       pg_catalog.obj_description(c.oid, 'pg_class') AS comment,
       (pg_catalog.pg_relation_size(c.oid)
        + COALESCE(pg_catalog.pg_relation_size(NULLIF(c.reltoastrelid, 0)), 0))::int8 AS bytes,
       (pg_catalog.pg_relation_size(c.oid)
        / pg_catalog.current_setting('block_size')::int8)::int8 AS heap_pages
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::regclass
                    AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname
