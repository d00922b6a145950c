-- Collations. Provider-specific columns differ between versions (colliculocale in
-- 15-16, colllocale from 17, collicurules from 16): read through to_jsonb.
SELECT 'pg_catalog.pg_collation'::regclass::oid AS classid, co.oid AS objid,
       'collation' AS kind, n.nspname::text AS schema, co.collname::text AS name,
       'pre-data' AS section,
       ARRAY[pg_catalog.format('CREATE COLLATION %I.%I (provider = %s, %s%s%s)',
         n.nspname, co.collname,
         CASE co.collprovider WHEN 'i' THEN 'icu' WHEN 'b' THEN 'builtin' ELSE 'libc' END,
         CASE WHEN co.collprovider = 'c'
              THEN pg_catalog.format('lc_collate = %L, lc_ctype = %L', co.collcollate, co.collctype)
              ELSE pg_catalog.format('locale = %L', COALESCE(j ->> 'colllocale', j ->> 'colliculocale',
                                                             co.collcollate)) END,
         CASE WHEN NOT co.collisdeterministic THEN ', deterministic = false' ELSE '' END,
         CASE WHEN j ->> 'collicurules' IS NOT NULL
              THEN pg_catalog.format(', rules = %L', j ->> 'collicurules') ELSE '' END)] AS "create",
       pg_catalog.format('COLLATION %I.%I', n.nspname, co.collname) AS target,
       pg_catalog.pg_get_userbyid(co.collowner)::text AS owner,
       NULL::text[] AS acl, NULL::text[] AS acl_default, NULL::text AS acl_target,
       pg_catalog.obj_description(co.oid, 'pg_collation') AS comment,
       NULL::text AS table_schema, NULL::text AS table_name
FROM pg_catalog.pg_collation co
CROSS JOIN LATERAL pg_catalog.to_jsonb(co) AS j
JOIN pg_catalog.pg_namespace n ON n.oid = co.collnamespace
WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_collation'::regclass
                    AND d.objid = co.oid AND d.deptype = 'e')
