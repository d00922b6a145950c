-- Event triggers: created last, so they never fire during the restore itself.
SELECT 'pg_catalog.pg_event_trigger'::regclass::oid AS classid, e.oid AS objid,
       'event trigger' AS kind, NULL::text AS schema, e.evtname::text AS name,
       'post-data' AS section,
       ARRAY[pg_catalog.format('CREATE EVENT TRIGGER %I ON %I%s EXECUTE FUNCTION %s()',
               e.evtname, e.evtevent,
               CASE WHEN e.evttags IS NOT NULL
                    THEN ' WHEN TAG IN (' || (SELECT pg_catalog.string_agg(pg_catalog.quote_literal(tag), ', ')
                                             FROM pg_catalog.unnest(e.evttags) AS tag) || ')'
                    ELSE '' END,
               e.evtfoid::regproc::text)]
       || CASE e.evtenabled
            WHEN 'D' THEN ARRAY[pg_catalog.format('ALTER EVENT TRIGGER %I DISABLE', e.evtname)]
            WHEN 'A' THEN ARRAY[pg_catalog.format('ALTER EVENT TRIGGER %I ENABLE ALWAYS', e.evtname)]
            WHEN 'R' THEN ARRAY[pg_catalog.format('ALTER EVENT TRIGGER %I ENABLE REPLICA', e.evtname)]
            ELSE '{}'::text[] END AS "create",
       'EVENT TRIGGER ' || pg_catalog.quote_ident(e.evtname) AS target,
       pg_catalog.pg_get_userbyid(e.evtowner)::text AS owner,
       NULL::text[] AS acl, NULL::text[] AS acl_default, NULL::text AS acl_target,
       pg_catalog.obj_description(e.oid, 'pg_event_trigger') AS comment,
       NULL::text AS table_schema, NULL::text AS table_name
FROM pg_catalog.pg_event_trigger e
WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_event_trigger'::regclass
                    AND d.objid = e.oid AND d.deptype = 'e')
