-- Rewrite rules other than the ones that make views, with their enabled state.
SELECT 'pg_catalog.pg_rewrite'::regclass::oid AS classid, r.oid AS objid,
       'rule' AS kind, n.nspname::text AS schema,
       r.rulename || ' on ' || n.nspname || '.' || c.relname AS name,
       'post-data' AS section,
       ARRAY[pg_catalog.pg_get_ruledef(r.oid)]
       || CASE r.ev_enabled
            WHEN 'D' THEN ARRAY[pg_catalog.format('ALTER TABLE %I.%I DISABLE RULE %I', n.nspname, c.relname, r.rulename)]
            WHEN 'A' THEN ARRAY[pg_catalog.format('ALTER TABLE %I.%I ENABLE ALWAYS RULE %I', n.nspname, c.relname, r.rulename)]
            WHEN 'R' THEN ARRAY[pg_catalog.format('ALTER TABLE %I.%I ENABLE REPLICA RULE %I', n.nspname, c.relname, r.rulename)]
            ELSE '{}'::text[] END AS "create",
       pg_catalog.format('RULE %I ON %I.%I', r.rulename, n.nspname, c.relname) AS target,
       NULL::text AS owner, NULL::text[] AS acl, NULL::text[] AS acl_default, NULL::text AS acl_target,
       pg_catalog.obj_description(r.oid, 'pg_rewrite') AS comment,
       n.nspname::text AS table_schema, c.relname::text AS table_name
FROM pg_catalog.pg_rewrite r
JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE r.rulename <> '_RETURN'
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
