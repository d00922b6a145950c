-- Views and materialized views (created WITH NO DATA), the contents of populated
-- materialized views (a REFRESH after the data; classid 0 marks it), and the indexes
-- of materialized views.
WITH rel AS (
  SELECT c.*, n.nspname, pg_catalog.format('%I.%I', n.nspname, c.relname) AS qname,
         CASE WHEN c.reloptions IS NOT NULL
              THEN ' WITH (' || pg_catalog.array_to_string(c.reloptions, ', ') || ')' ELSE '' END AS with_opts,
         ARRAY(SELECT pg_catalog.format('ALTER %s %s ALTER COLUMN %I SET DEFAULT %s',
                                        CASE c.relkind WHEN 'v' THEN 'VIEW' ELSE 'MATERIALIZED VIEW' END,
                                        pg_catalog.format('%I.%I', n.nspname, c.relname), a.attname,
                                        pg_catalog.pg_get_expr(ad.adbin, ad.adrelid))
               FROM pg_catalog.pg_attrdef ad
               JOIN pg_catalog.pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
               WHERE ad.adrelid = c.oid ORDER BY a.attnum)
         || ARRAY(SELECT pg_catalog.format('COMMENT ON COLUMN %I.%I.%I IS %L', n.nspname, c.relname, a.attname,
                                           pg_catalog.col_description(a.attrelid, a.attnum))
                  FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                    AND pg_catalog.col_description(a.attrelid, a.attnum) IS NOT NULL
                  ORDER BY a.attnum) AS extras
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('v', 'm') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype = 'e')
)
SELECT 'pg_catalog.pg_class'::regclass::oid AS classid, rel.oid AS objid,
       CASE rel.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END AS kind,
       rel.nspname::text AS schema, rel.relname::text AS name, 'pre-data' AS section,
       ARRAY[CASE rel.relkind
               WHEN 'v' THEN pg_catalog.format('CREATE VIEW %s%s AS %s', rel.qname, rel.with_opts,
                                               pg_catalog.pg_get_viewdef(rel.oid))
               ELSE pg_catalog.format('CREATE MATERIALIZED VIEW %s%s%s AS %s WITH NO DATA', rel.qname,
                                      CASE WHEN am.amname <> 'heap' THEN ' USING ' || pg_catalog.quote_ident(am.amname) ELSE '' END,
                                      rel.with_opts,
                                      pg_catalog.rtrim(pg_catalog.rtrim(pg_catalog.pg_get_viewdef(rel.oid)), ';'))
             END] || rel.extras AS "create",
       CASE rel.relkind WHEN 'v' THEN 'VIEW ' ELSE 'MATERIALIZED VIEW ' END || rel.qname AS target,
       pg_catalog.pg_get_userbyid(rel.relowner)::text AS owner,
       rel.relacl::text[] AS acl,
       pg_catalog.acldefault('r', rel.relowner)::text[] AS acl_default,
       'TABLE ' || rel.qname AS acl_target,
       pg_catalog.obj_description(rel.oid, 'pg_class') AS comment,
       NULL::text AS table_schema, NULL::text AS table_name
FROM rel LEFT JOIN pg_catalog.pg_am am ON am.oid = rel.relam
UNION ALL
SELECT 0, rel.oid, 'materialized view data', rel.nspname::text, rel.relname::text, 'post-data',
       ARRAY['REFRESH MATERIALIZED VIEW ' || rel.qname], NULL, NULL, NULL, NULL, NULL, NULL,
       rel.nspname::text, rel.relname::text
FROM rel WHERE rel.relkind = 'm' AND rel.relispopulated
UNION ALL
SELECT 'pg_catalog.pg_class'::regclass::oid, i.indexrelid, 'index', rel.nspname::text,
       ic.relname || ' on ' || rel.nspname || '.' || rel.relname, 'post-data',
       ARRAY[pg_catalog.pg_get_indexdef(i.indexrelid)]
       || CASE WHEN i.indisclustered
               THEN ARRAY[pg_catalog.format('ALTER MATERIALIZED VIEW %s CLUSTER ON %I', rel.qname, ic.relname)]
               ELSE '{}'::text[] END,
       pg_catalog.format('INDEX %I.%I', rel.nspname, ic.relname), NULL, NULL, NULL, NULL,
       pg_catalog.obj_description(i.indexrelid, 'pg_class'),
       rel.nspname::text, rel.relname::text
FROM rel JOIN pg_catalog.pg_index i ON i.indrelid = rel.oid
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
