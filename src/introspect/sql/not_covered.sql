-- What this version does not carry although pg_dump does: listed as warnings (and in
-- the manifest), never skipped silently. Everything else of the database is carried
-- (tests/it/census.rs counts every catalog kind in source and restore).
WITH user_ns AS (
  SELECT oid, nspname FROM pg_catalog.pg_namespace
  WHERE nspname <> 'information_schema' AND nspname !~ '^pg_'
)
-- A tablespace is cluster-wide and holds files of the server's machine: the restore
-- creates every relation in the target database's default tablespace.
SELECT 'placement in tablespace ' || pg_catalog.quote_ident(ts.spcname)
         || ' (restored into the default tablespace)' AS kind,
       n.nspname || '.' || c.relname AS name
FROM pg_catalog.pg_class c
JOIN user_ns n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_tablespace ts ON ts.oid = c.reltablespace
WHERE c.relkind IN ('r', 'p', 'm', 'i', 'I')
UNION ALL
-- Labels need the same label provider module loaded in the target server.
SELECT 'security label (' || sl.provider || ')',
       pg_catalog.pg_describe_object(sl.classoid, sl.objoid, sl.objsubid)
FROM pg_catalog.pg_seclabel sl
UNION ALL
-- A subscription connects to another server; recreate it on purpose after a restore.
SELECT 'subscription (recreate it after the restore)', s.subname::text
FROM pg_catalog.pg_subscription s
WHERE s.subdbid = (SELECT oid FROM pg_catalog.pg_database
                   WHERE datname = pg_catalog.current_database())
