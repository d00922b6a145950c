-- Row-level security policies (enabling RLS is a table property).
SELECT 'pg_catalog.pg_policy'::regclass::oid AS classid, p.oid AS objid,
       'policy' AS kind, n.nspname::text AS schema,
       p.polname || ' on ' || n.nspname || '.' || c.relname AS name,
       'post-data' AS section,
       ARRAY[pg_catalog.format('CREATE POLICY %I ON %I.%I AS %s FOR %s TO %s%s%s',
               p.polname, n.nspname, c.relname,
               CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
               CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                             WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
               pg_catalog.array_to_string(ARRAY(
                 SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_catalog.format('"%s"', pg_catalog.replace(pg_catalog.pg_get_userbyid(r)::text, '"', '""')) END
                 FROM pg_catalog.unnest(p.polroles) WITH ORDINALITY AS u(r, i) ORDER BY i), ', '),
               CASE WHEN p.polqual IS NOT NULL
                    THEN ' USING (' || pg_catalog.pg_get_expr(p.polqual, p.polrelid) || ')' ELSE '' END,
               CASE WHEN p.polwithcheck IS NOT NULL
                    THEN ' WITH CHECK (' || pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) || ')' ELSE '' END)]
         AS "create",
       pg_catalog.format('POLICY %I ON %I.%I', p.polname, n.nspname, c.relname) AS target,
       NULL::text AS owner, NULL::text[] AS acl, NULL::text[] AS acl_default, NULL::text AS acl_target,
       pg_catalog.obj_description(p.oid, 'pg_policy') AS comment,
       n.nspname::text AS table_schema, c.relname::text AS table_name
FROM pg_catalog.pg_policy p
JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
