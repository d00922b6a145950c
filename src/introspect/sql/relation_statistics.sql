-- pg_class's counts of the given tables, as pg_restore_relation_stats takes them
-- (relallfrozen exists from PostgreSQL 18). A table with an expression index or an
-- extended statistics object is left out: only ANALYZE fills those statistics.
SELECT c.oid, c.relpages::text AS relpages, c.reltuples::text AS reltuples,
       c.relallvisible::text AS relallvisible,
       pg_catalog.to_jsonb(c) ->> 'relallfrozen' AS relallfrozen
FROM pg_catalog.pg_class c
WHERE c.oid = ANY($1)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                  WHERE i.indrelid = c.oid AND i.indexprs IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_statistic_ext x WHERE x.stxrelid = c.oid)
