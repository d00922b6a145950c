-- Encoding conversions, as pg_dump's dumpConversion writes them. The built-in ones
-- live in pg_catalog and are not read.
SELECT 'pg_catalog.pg_conversion'::regclass::oid AS classid, c.oid AS objid,
       'conversion' AS kind, n.nspname::text AS schema, c.conname::text AS name,
       'pre-data' AS section,
       ARRAY[pg_catalog.format('CREATE %sCONVERSION %I.%I FOR %L TO %L FROM %s',
         CASE WHEN c.condefault THEN 'DEFAULT ' ELSE '' END, n.nspname, c.conname,
         pg_catalog.pg_encoding_to_char(c.conforencoding), pg_catalog.pg_encoding_to_char(c.contoencoding),
         c.conproc::text)] AS "create",
       pg_catalog.format('CONVERSION %I.%I', n.nspname, c.conname) AS target,
       pg_catalog.pg_get_userbyid(c.conowner)::text AS owner,
       NULL::text[] AS acl, NULL::text[] AS acl_default, NULL::text AS acl_target,
       pg_catalog.obj_description(c.oid, 'pg_conversion') AS comment,
       NULL::text AS table_schema, NULL::text AS table_name
FROM pg_catalog.pg_conversion c
JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace
WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_conversion'::regclass
                    AND d.objid = c.oid AND d.deptype = 'e')
