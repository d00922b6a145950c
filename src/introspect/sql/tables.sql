-- Ordinary and partitioned tables: their on-disk size to schedule the largest first,
-- heap pages to split big ones into ctid ranges, and what CREATE TABLE needs.
SELECT c.oid, n.nspname, c.relname,
       dc.description AS comment,
       (size.heap + size.toast)::int8 AS bytes,
       (size.heap / size.block)::int8 AS heap_pages,
       c.relkind::text AS relkind,
       c.relpersistence = 'u' AS unlogged,
       CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END AS partition_key,
       CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END AS bound,
       ARRAY(SELECT pn.nspname FROM pg_catalog.pg_inherits i
             JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
             JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
             WHERE i.inhrelid = c.oid ORDER BY i.inhseqno) AS parent_schemas,
       ARRAY(SELECT p.relname::text FROM pg_catalog.pg_inherits i
             JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
             WHERE i.inhrelid = c.oid ORDER BY i.inhseqno) AS parent_names,
       CASE WHEN c.reloftype <> 0 THEN pg_catalog.format_type(c.reloftype, NULL) END AS of_type,
       CASE WHEN c.relkind = 'r' AND am.amname <> 'heap' THEN am.amname::text END AS access_method,
       COALESCE(c.reloptions, '{}') AS reloptions,
       COALESCE(tc.reloptions, '{}') AS toast_reloptions,
       pg_catalog.pg_get_userbyid(c.relowner)::text AS owner,
       c.relacl::text[] AS acl,
       pg_catalog.acldefault('r', c.relowner)::text[] AS acl_default,
       c.relrowsecurity, c.relforcerowsecurity,
       CASE c.relreplident
         WHEN 'f' THEN 'FULL' WHEN 'n' THEN 'NOTHING'
         WHEN 'i' THEN (SELECT 'USING INDEX ' || pg_catalog.quote_ident(ic.relname)
                        FROM pg_catalog.pg_index ri JOIN pg_catalog.pg_class ic ON ic.oid = ri.indexrelid
                        WHERE ri.indrelid = c.oid AND ri.indisreplident)
       END AS replica_identity,
       (SELECT ic.relname::text FROM pg_catalog.pg_index ci JOIN pg_catalog.pg_class ic ON ic.oid = ci.indexrelid
        WHERE ci.indrelid = c.oid AND ci.indisclustered) AS cluster_on
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
-- Comments joined, not looked up per row by obj_description().
LEFT JOIN pg_catalog.pg_description dc
       ON dc.objoid = c.oid AND dc.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND dc.objsubid = 0
LEFT JOIN pg_catalog.pg_class tc ON tc.oid = c.reltoastrelid
-- The size on disk costs a relation open per table, most of this query on thousands
-- of tables: a table its last VACUUM or ANALYZE found under 1 MiB is taken at that
-- size. Sizes only order and split the work, and ANALYZE follows 10 % of growth.
CROSS JOIN LATERAL (
  SELECT CASE WHEN k.exact THEN pg_catalog.pg_relation_size(c.oid)
              ELSE c.relpages * k.block END AS heap,
         CASE WHEN k.exact THEN COALESCE(pg_catalog.pg_relation_size(NULLIF(c.reltoastrelid, 0)), 0)
              ELSE COALESCE(tc.relpages, 0) * k.block END AS toast,
         k.block
  FROM (SELECT pg_catalog.current_setting('block_size')::int8 AS block,
               c.relpages = 0 OR c.relpages * pg_catalog.current_setting('block_size')::int8 >= 1048576
               OR c.reltuples < 0 OR COALESCE(tc.relpages, 0) >= 128 AS exact) k
) size
WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::regclass
                    AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname
