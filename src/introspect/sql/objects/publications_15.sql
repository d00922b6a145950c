-- Publications on PostgreSQL 15 and later (publications.sql covers 13 and 14). The
-- CREATE has no tables or schemas: each member is added by its own ALTER PUBLICATION,
-- as pg_dump does: ADD TABLE ONLY t [(columns)] [WHERE (filter)] and ADD TABLES IN
-- SCHEMA s. PG 18's publish_generated_columns (pubgencols) is read through to_jsonb.
-- Post-data, so the tables exist by then.
SELECT 'pg_catalog.pg_publication'::regclass::oid AS classid, p.oid AS objid,
       'publication' AS kind, NULL::text AS schema, p.pubname::text AS name,
       'post-data' AS section,
       ARRAY[pg_catalog.format('CREATE PUBLICATION %I%s WITH (publish = %L%s%s)', p.pubname,
         CASE WHEN p.puballtables THEN ' FOR ALL TABLES' ELSE '' END,
         pg_catalog.concat_ws(', ', CASE WHEN p.pubinsert THEN 'insert' END,
                                    CASE WHEN p.pubupdate THEN 'update' END,
                                    CASE WHEN p.pubdelete THEN 'delete' END,
                                    CASE WHEN p.pubtruncate THEN 'truncate' END),
         CASE WHEN p.pubviaroot THEN ', publish_via_partition_root = true' ELSE '' END,
         CASE WHEN pg_catalog.to_jsonb(p) ->> 'pubgencols' IN ('s', 'true')
              THEN ', publish_generated_columns = stored' ELSE '' END)]
       || ARRAY(SELECT pg_catalog.format('ALTER PUBLICATION %I ADD TABLE ONLY %I.%I%s%s', p.pubname,
                                         tn.nspname, t.relname,
                                         (SELECT ' (' || pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', '
                                                                               ORDER BY k.ord) || ')'
                                          FROM pg_catalog.unnest(pr.prattrs::int2[]) WITH ORDINALITY AS k(attnum, ord)
                                          JOIN pg_catalog.pg_attribute a
                                            ON a.attrelid = pr.prrelid AND a.attnum = k.attnum),
                                         ' WHERE (' || pg_catalog.pg_get_expr(pr.prqual, pr.prrelid) || ')')
                FROM pg_catalog.pg_publication_rel pr
                JOIN pg_catalog.pg_class t ON t.oid = pr.prrelid
                JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
                WHERE pr.prpubid = p.oid
                ORDER BY tn.nspname, t.relname)
       || ARRAY(SELECT pg_catalog.format('ALTER PUBLICATION %I ADD TABLES IN SCHEMA %I', p.pubname, sn.nspname)
                FROM pg_catalog.pg_publication_namespace pn
                JOIN pg_catalog.pg_namespace sn ON sn.oid = pn.pnnspid
                WHERE pn.pnpubid = p.oid
                ORDER BY sn.nspname) AS "create",
       pg_catalog.format('PUBLICATION %I', p.pubname) AS target,
       pg_catalog.pg_get_userbyid(p.pubowner)::text AS owner,
       NULL::text[] AS acl, NULL::text[] AS acl_default, NULL::text AS acl_target,
       pg_catalog.obj_description(p.oid, 'pg_publication') AS comment,
       NULL::text AS table_schema, NULL::text AS table_name
FROM pg_catalog.pg_publication p
WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_publication'::regclass
                    AND d.objid = p.oid AND d.deptype = 'e')
