-- Types whose OIDs may travel inside binary COPY values of the given tables' columns:
-- every type with an OID of 10000 or more (assigned per cluster, so possibly another
-- one in the restored database) reachable from those columns through domains (base
-- type), arrays (element), composites (live fields), ranges (subtype) and multiranges
-- (range). Built-in types below 10000 have the same OID everywhere and only contain
-- built-in types, so the walk stops there.
--
-- Multiranges exist from PostgreSQL 14: pg_range.rngmultitypid is read through
-- to_jsonb so the query also runs on 13, where no type has typtype 'm'.
WITH RECURSIVE walk(oid) AS (
  SELECT a.atttypid
  FROM pg_catalog.pg_attribute a
  WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
    AND a.atttypid >= 10000
  UNION
  SELECT x.oid
  FROM walk w
  JOIN pg_catalog.pg_type t ON t.oid = w.oid
  CROSS JOIN LATERAL (
    SELECT t.typbasetype WHERE t.typtype = 'd'
    UNION ALL
    SELECT t.typelem WHERE t.typtype = 'b' AND t.typelem <> 0
                       AND t.typsend = 'pg_catalog.array_send'::pg_catalog.regproc
    UNION ALL
    SELECT f.atttypid FROM pg_catalog.pg_attribute f
    WHERE t.typtype = 'c' AND f.attrelid = t.typrelid AND f.attnum > 0
      AND NOT f.attisdropped
    UNION ALL
    SELECT r.rngsubtype FROM pg_catalog.pg_range r
    WHERE t.typtype = 'r' AND r.rngtypid = t.oid
    UNION ALL
    SELECT r.rngtypid FROM pg_catalog.pg_range r
    WHERE t.typtype = 'm'
      AND (pg_catalog.to_jsonb(r) ->> 'rngmultitypid')::pg_catalog.oid = t.oid
  ) AS x(oid)
  WHERE x.oid >= 10000
)
SELECT t.oid,
       pg_catalog.format_type(t.oid, NULL) AS name,
       CASE WHEN t.typtype = 'd' THEN 'domain'
            WHEN t.typtype = 'c' THEN 'composite'
            WHEN t.typtype = 'r' THEN 'range'
            WHEN t.typtype = 'm' THEN 'multirange'
            WHEN t.typtype = 'b' AND t.typelem <> 0
                 AND t.typsend = 'pg_catalog.array_send'::pg_catalog.regproc THEN 'array'
            ELSE 'scalar' END AS kind,
       CASE WHEN t.typtype = 'd' THEN t.typbasetype
            WHEN t.typtype = 'r' THEN (SELECT r.rngsubtype FROM pg_catalog.pg_range r
                                       WHERE r.rngtypid = t.oid)
            WHEN t.typtype = 'm' THEN
                 (SELECT r.rngtypid FROM pg_catalog.pg_range r
                  WHERE (pg_catalog.to_jsonb(r) ->> 'rngmultitypid')::pg_catalog.oid = t.oid)
            WHEN t.typtype = 'b' THEN t.typelem
       END AS inner_oid,
       CASE WHEN t.typtype = 'c' THEN
            ARRAY(SELECT f.atttypid FROM pg_catalog.pg_attribute f
                  WHERE f.attrelid = t.typrelid AND f.attnum > 0
                    AND NOT f.attisdropped
                  ORDER BY f.attnum)
       END AS fields,
       CASE WHEN t.typtype = 'c' THEN
            ARRAY(SELECT f.attname::pg_catalog.text FROM pg_catalog.pg_attribute f
                  WHERE f.attrelid = t.typrelid AND f.attnum > 0
                    AND NOT f.attisdropped
                  ORDER BY f.attnum)
       END AS field_names,
       CASE WHEN t.typtype = 'c' THEN
            ARRAY(SELECT pg_catalog.format_type(f.atttypid, f.atttypmod)
                  FROM pg_catalog.pg_attribute f
                  WHERE f.attrelid = t.typrelid AND f.attnum > 0
                    AND NOT f.attisdropped
                  ORDER BY f.attnum)
       END AS field_sql,
       CASE WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod)
       END AS base_sql
FROM walk w
JOIN pg_catalog.pg_type t ON t.oid = w.oid
ORDER BY t.oid
