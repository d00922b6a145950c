-- User schemas. public exists in every new database and is not recreated, but its
-- owner, privileges and comment differ between versions (15 changed them) and are
-- carried like any other schema's.
SELECT n.nspname, pg_catalog.obj_description(n.oid, 'pg_namespace') AS comment,
       pg_catalog.pg_get_userbyid(n.nspowner)::text AS owner,
       CASE WHEN n.nspname = 'public'
            THEN COALESCE(n.nspacl, pg_catalog.acldefault('n', n.nspowner))
            ELSE n.nspacl END::text[] AS acl,
       pg_catalog.acldefault('n', n.nspowner)::text[] AS acl_default,
       n.nspname = 'public' AS existing
FROM pg_catalog.pg_namespace n
WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_namespace'::regclass
                    AND d.objid = n.oid AND d.deptype = 'e')
ORDER BY n.nspname
