-- Functions and procedures (aggregates are in aggregates.sql), as the server prints
-- them. Functions another object makes (range and multirange constructors) are left
-- to that object.
SELECT 'pg_catalog.pg_proc'::regclass::oid AS classid, p.oid AS objid,
       CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END AS kind,
       n.nspname::text AS schema,
       p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' AS name,
       'pre-data' AS section,
       ARRAY[pg_catalog.pg_get_functiondef(p.oid)] AS "create",
       pg_catalog.format('%s %I.%I(%s)', CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
                         n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)) AS target,
       pg_catalog.pg_get_userbyid(p.proowner)::text AS owner,
       p.proacl::text[] AS acl,
       pg_catalog.acldefault('f', p.proowner)::text[] AS acl_default,
       pg_catalog.format('%s %I.%I(%s)', CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
                         n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)) AS acl_target,
       pg_catalog.obj_description(p.oid, 'pg_proc') AS comment,
       NULL::text AS table_schema, NULL::text AS table_name
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE p.prokind IN ('f', 'p', 'w')
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_proc'::regclass
                    AND d.objid = p.oid AND d.deptype IN ('e', 'i'))
