-- Extended statistics objects, as pg_dump's dumpStatisticsExt writes them (post-data).
-- A statistics target set with ALTER STATISTICS is -1 by default before PG 17 and
-- NULL from 17 on: either means "not set".
SELECT 'pg_catalog.pg_statistic_ext'::regclass::oid AS classid, s.oid AS objid,
       'statistics object' AS kind, n.nspname::text AS schema, s.stxname::text AS name,
       'post-data' AS section,
       ARRAY[pg_catalog.pg_get_statisticsobjdef(s.oid)]
       || CASE WHEN s.stxstattarget::int4 >= 0
               THEN ARRAY[pg_catalog.format('ALTER STATISTICS %I.%I SET STATISTICS %s', n.nspname, s.stxname,
                                            s.stxstattarget)]
               ELSE '{}'::text[] END AS "create",
       pg_catalog.format('STATISTICS %I.%I', n.nspname, s.stxname) AS target,
       pg_catalog.pg_get_userbyid(s.stxowner)::text AS owner,
       NULL::text[] AS acl, NULL::text[] AS acl_default, NULL::text AS acl_target,
       pg_catalog.obj_description(s.oid, 'pg_statistic_ext') AS comment,
       tn.nspname::text AS table_schema, t.relname::text AS table_name
FROM pg_catalog.pg_statistic_ext s
JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace
JOIN pg_catalog.pg_class t ON t.oid = s.stxrelid
JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_statistic_ext'::regclass
                    AND d.objid = s.oid AND d.deptype = 'e')
