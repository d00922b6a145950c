-- Views and materialized views (created WITH NO DATA), the contents of populated
-- materialized views (a REFRESH after the data; classid 0 marks it), and the indexes
-- of materialized views.
--
-- A view whose query is valid only because of a constraint (GROUP BY a primary key,
-- which lets it select the table's other columns) cannot be created before the keys,
-- which come after the data. As pg_dump does, such a view is created in pre-data as a
-- placeholder with the same columns (so everything that uses it can be created), and
-- its query is put in after the keys (`view definition`, keyed like the view so that it
-- is kept and ordered with it). A
-- materialized view that needs a constraint is created after the keys as a whole.
WITH rel AS (
  SELECT c.*, n.nspname, pg_catalog.format('%I.%I', n.nspname, c.relname) AS qname,
         EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite rw
                 JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass
                                            AND d.objid = rw.oid
                 WHERE rw.ev_class = c.oid AND rw.rulename = '_RETURN'
                   AND d.refclassid = 'pg_catalog.pg_constraint'::regclass) AS needs_keys,
         pg_catalog.format('CREATE VIEW %I.%I AS SELECT %s', n.nspname, c.relname,
           COALESCE((SELECT pg_catalog.string_agg(pg_catalog.format('NULL::%s%s AS %I',
                               pg_catalog.format_type(a.atttypid, a.atttypmod),
                               CASE WHEN a.attcollation <> at.typcollation
                                    THEN ' COLLATE ' || pg_catalog.format('%I.%I', acn.nspname, aco.collname)
                                    ELSE '' END, a.attname), ', ' ORDER BY a.attnum)
                     FROM pg_catalog.pg_attribute a
                     JOIN pg_catalog.pg_type at ON at.oid = a.atttypid
                     LEFT JOIN pg_catalog.pg_collation aco ON aco.oid = a.attcollation
                     LEFT JOIN pg_catalog.pg_namespace acn ON acn.oid = aco.collnamespace
                     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')) AS placeholder,
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
                  ORDER BY a.attnum)
         -- A materialized view's columns have storage settings of their own.
         || ARRAY(SELECT pg_catalog.format('ALTER MATERIALIZED VIEW %I.%I ALTER COLUMN %I SET %s',
                                           n.nspname, c.relname, a.attname, x.setting)
                  FROM pg_catalog.pg_attribute a
                  JOIN pg_catalog.pg_type at ON at.oid = a.atttypid
                  CROSS JOIN LATERAL (VALUES
                    (1, CASE WHEN a.attstorage <> at.typstorage
                             THEN 'STORAGE ' || CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL'
                                                                  WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END END),
                    (2, CASE pg_catalog.to_jsonb(a) ->> 'attcompression'
                          WHEN 'p' THEN 'COMPRESSION pglz' WHEN 'l' THEN 'COMPRESSION lz4' END),
                    (3, 'STATISTICS ' || NULLIF(a.attstattarget::int4, -1)),
                    (4, '(' || pg_catalog.array_to_string(a.attoptions, ', ') || ')')) AS x(n, setting)
                  WHERE c.relkind = 'm' AND a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                    AND x.setting IS NOT NULL
                  ORDER BY a.attnum, x.n) AS extras
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('v', 'm') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype = 'e')
)
SELECT 'pg_catalog.pg_class'::regclass::oid AS classid, rel.oid AS objid,
       CASE rel.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END AS kind,
       rel.nspname::text AS schema, rel.relname::text AS name,
       CASE WHEN rel.relkind = 'm' AND rel.needs_keys THEN 'post-data' ELSE 'pre-data' END AS section,
       ARRAY[CASE
               WHEN rel.relkind = 'v' AND rel.needs_keys THEN rel.placeholder
               WHEN rel.relkind = 'v' THEN pg_catalog.format('CREATE VIEW %s%s AS %s', rel.qname, rel.with_opts,
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
SELECT 'pg_catalog.pg_class'::regclass::oid, rel.oid, 'view definition', rel.nspname::text,
       rel.relname::text, 'post-data',
       ARRAY[pg_catalog.format('CREATE OR REPLACE VIEW %s%s AS %s', rel.qname, rel.with_opts,
                               pg_catalog.pg_get_viewdef(rel.oid))],
       NULL, NULL, NULL, NULL, NULL, NULL, rel.nspname::text, rel.relname::text
FROM rel WHERE rel.relkind = 'v' AND rel.needs_keys
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
