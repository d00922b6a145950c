-- Extensions (plpgsql is in every database). Their member objects come with them.
SELECT 'pg_catalog.pg_extension'::regclass::oid AS classid, e.oid AS objid,
       'extension' AS kind, NULL::text AS schema, e.extname::text AS name,
       'pre-data' AS section,
       ARRAY[pg_catalog.format('CREATE EXTENSION IF NOT EXISTS %I WITH SCHEMA %I',
                               e.extname, n.nspname)] AS "create",
       'EXTENSION ' || pg_catalog.quote_ident(e.extname) AS target,
       NULL::text AS owner, NULL::text[] AS acl, NULL::text[] AS acl_default,
       NULL::text AS acl_target,
       pg_catalog.obj_description(e.oid, 'pg_extension') AS comment,
       NULL::text AS table_schema, NULL::text AS table_name
FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname <> 'plpgsql'
