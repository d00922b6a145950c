-- Table constraints (NOT NULL is a column property and not listed here). Foreign
-- keys a partition inherits from its parent are not listed: the parent's creates them.
SELECT con.conrelid, con.conname, con.contype::text AS contype,
       pg_catalog.pg_get_constraintdef(con.oid) AS definition,
       rn.nspname AS ref_schema, r.relname AS ref_table,
       pg_catalog.obj_description(con.oid, 'pg_constraint') AS comment,
       con.conislocal,
       pin.nspname AS parent_index_schema, pic.relname AS parent_index
FROM pg_catalog.pg_constraint con
LEFT JOIN pg_catalog.pg_class r ON r.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
LEFT JOIN pg_catalog.pg_inherits ii ON ii.inhrelid = con.conindid AND con.contype IN ('p', 'u', 'x')
LEFT JOIN pg_catalog.pg_class pic ON pic.oid = ii.inhparent
LEFT JOIN pg_catalog.pg_namespace pin ON pin.oid = pic.relnamespace
WHERE con.conrelid = ANY($1) AND con.contype IN ('p', 'u', 'c', 'f', 'x')
  AND NOT (con.contype = 'f' AND con.conparentid <> 0)
ORDER BY con.conrelid, con.conname
