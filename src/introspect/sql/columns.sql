-- Live columns of the given tables, in column order, with what CREATE TABLE and
-- ALTER TABLE … ALTER COLUMN need. {compression} is a.attcompression on PostgreSQL
-- 14+ and NULL before.
SELECT a.attrelid, a.attname,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS type_sql,
       a.atttypid, a.attnotnull,
       pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) AS default_expr,
       a.attidentity::text AS identity, a.attgenerated::text AS generated,
       CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
            THEN cn.nspname END AS coll_schema,
       CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
            THEN co.collname END AS coll_name,
       ds.description AS comment,
       a.attislocal,
       CASE WHEN a.attstorage <> t.typstorage THEN
         CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL'
                           WHEN 'm' THEN 'MAIN' WHEN 'x' THEN 'EXTENDED' END
       END AS storage,
       CASE {compression}
         WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END AS compression,
       NULLIF(a.attstattarget::int4, -1) AS statistics,
       COALESCE(a.attoptions, '{}') AS options,
       COALESCE(a.attacl::text[], '{}') AS acl,
       nn.conname::text AS not_null_name, COALESCE(nn.convalidated, true) AS not_null_valid,
       COALESCE(NOT nn.conislocal, false) AS not_null_inherited
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
-- Comments joined, not looked up per row by col_description(): on thousands of
-- tables the lookups were a third of this query.
LEFT JOIN pg_catalog.pg_description ds
       ON ds.objoid = a.attrelid AND ds.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND ds.objsubid = a.attnum
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
-- PostgreSQL 18 keeps NOT NULL as named constraints (none before).
LEFT JOIN pg_catalog.pg_constraint nn
       ON nn.conrelid = a.attrelid AND nn.contype = 'n' AND nn.conkey[1] = a.attnum
WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
