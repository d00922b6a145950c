-- Publications on servers before PostgreSQL 15 (publications_15.sql covers 15 and
-- later, where tables have column lists and row filters and whole schemas can be
-- published; this query returns nothing there). The CREATE has no tables: each member
-- table is added by its own ALTER PUBLICATION … ADD TABLE ONLY, as pg_dump does.
-- Post-data, so the tables exist by then.
SELECT 'pg_catalog.pg_publication'::regclass::oid AS classid, p.oid AS objid,
       'publication' AS kind, NULL::text AS schema, p.pubname::text AS name,
       'post-data' AS section,
       ARRAY[pg_catalog.format('CREATE PUBLICATION %I%s WITH (publish = %L%s)', p.pubname,
         CASE WHEN p.puballtables THEN ' FOR ALL TABLES' ELSE '' END,
         pg_catalog.concat_ws(', ', CASE WHEN p.pubinsert THEN 'insert' END,
                                    CASE WHEN p.pubupdate THEN 'update' END,
                                    CASE WHEN p.pubdelete THEN 'delete' END,
                                    CASE WHEN p.pubtruncate THEN 'truncate' END),
         CASE WHEN p.pubviaroot THEN ', publish_via_partition_root = true' ELSE '' END)]
       || ARRAY(SELECT pg_catalog.format('ALTER PUBLICATION %I ADD TABLE ONLY %I.%I', p.pubname, tn.nspname, t.relname)
                FROM pg_catalog.pg_publication_rel pr
                JOIN pg_catalog.pg_class t ON t.oid = pr.prrelid
                JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
                WHERE pr.prpubid = p.oid
                ORDER BY tn.nspname, t.relname) AS "create",
       pg_catalog.format('PUBLICATION %I', p.pubname) AS target,
       pg_catalog.pg_get_userbyid(p.pubowner)::text AS owner,
       NULL::text[] AS acl, NULL::text[] AS acl_default, NULL::text AS acl_target,
       pg_catalog.obj_description(p.oid, 'pg_publication') AS comment,
       NULL::text AS table_schema, NULL::text AS table_name
FROM pg_catalog.pg_publication p
WHERE pg_catalog.current_setting('server_version_num')::int < 150000
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_publication'::regclass
                    AND d.objid = p.oid AND d.deptype = 'e')
