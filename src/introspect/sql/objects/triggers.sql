-- Triggers (not the internal ones of foreign keys, nor the clones a partition gets
-- from its parent's trigger), with their enabled state; and the enabled state of a
-- partition's clone where it differs from its parent's trigger (`trigger state`, after
-- the triggers: the parent's CREATE TRIGGER makes the clones).
SELECT 'pg_catalog.pg_trigger'::regclass::oid AS classid, t.oid AS objid,
       'trigger' AS kind, n.nspname::text AS schema,
       t.tgname || ' on ' || n.nspname || '.' || c.relname AS name,
       'post-data' AS section,
       ARRAY[pg_catalog.pg_get_triggerdef(t.oid)]
       || CASE t.tgenabled
            WHEN 'D' THEN ARRAY[pg_catalog.format('ALTER TABLE %I.%I DISABLE TRIGGER %I', n.nspname, c.relname, t.tgname)]
            WHEN 'A' THEN ARRAY[pg_catalog.format('ALTER TABLE %I.%I ENABLE ALWAYS TRIGGER %I', n.nspname, c.relname, t.tgname)]
            WHEN 'R' THEN ARRAY[pg_catalog.format('ALTER TABLE %I.%I ENABLE REPLICA TRIGGER %I', n.nspname, c.relname, t.tgname)]
            ELSE '{}'::text[] END AS "create",
       pg_catalog.format('TRIGGER %I ON %I.%I', t.tgname, n.nspname, c.relname) AS target,
       NULL::text AS owner, NULL::text[] AS acl, NULL::text[] AS acl_default, NULL::text AS acl_target,
       pg_catalog.obj_description(t.oid, 'pg_trigger') AS comment,
       n.nspname::text AS table_schema, c.relname::text AS table_name
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal AND t.tgparentid = 0
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::regclass
                    AND d.objid = c.oid AND d.deptype = 'e')
UNION ALL
SELECT 'pg_catalog.pg_trigger'::regclass::oid, t.oid, 'trigger state', n.nspname::text,
       t.tgname || ' on ' || n.nspname || '.' || c.relname, 'post-data',
       ARRAY[pg_catalog.format('ALTER TABLE %I.%I %s TRIGGER %I', n.nspname, c.relname,
                               CASE t.tgenabled WHEN 'D' THEN 'DISABLE' WHEN 'A' THEN 'ENABLE ALWAYS'
                                                WHEN 'R' THEN 'ENABLE REPLICA' ELSE 'ENABLE' END,
                               t.tgname)],
       NULL, NULL, NULL, NULL, NULL, NULL, n.nspname::text, c.relname::text
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_trigger p ON p.oid = t.tgparentid
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE t.tgenabled <> p.tgenabled
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
