-- Indexes that no constraint creates by itself, with the partitioned index each
-- attaches to.
SELECT i.indrelid, ic.relname, pg_catalog.pg_get_indexdef(i.indexrelid) AS definition,
       di.description AS comment,
       pin.nspname AS parent_index_schema, pic.relname AS parent_index,
       ARRAY(SELECT a.attnum::int4 FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = i.indexrelid
               AND a.attstattarget::int4 >= 0
             ORDER BY a.attnum) AS stat_columns,
       ARRAY(SELECT a.attstattarget::int4 FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = i.indexrelid
               AND a.attstattarget::int4 >= 0
             ORDER BY a.attnum) AS stat_targets
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
-- Comments joined, not looked up per row by obj_description().
LEFT JOIN pg_catalog.pg_description di
       ON di.objoid = i.indexrelid AND di.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND di.objsubid = 0
LEFT JOIN pg_catalog.pg_inherits ii ON ii.inhrelid = i.indexrelid
LEFT JOIN pg_catalog.pg_class pic ON pic.oid = ii.inhparent
LEFT JOIN pg_catalog.pg_namespace pin ON pin.oid = pic.relnamespace
WHERE i.indrelid = ANY($1)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
                  WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid
                    AND c.contype IN ('p', 'u', 'x'))
ORDER BY i.indrelid, ic.relname
