-- Tables the role may not read: named all at once before anything is locked or
-- written, where the server would stop at the first one.
SELECT c.oid
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT pg_catalog.has_table_privilege(c.oid, 'SELECT')
