-- Table constraints (NOT NULL is a column property and not listed here).
SELECT con.conrelid, con.conname, con.contype::text AS contype,
       pg_catalog.pg_get_constraintdef(con.oid) AS definition,
       rn.nspname AS ref_schema, r.relname AS ref_table,
       pg_catalog.obj_description(con.oid, 'pg_constraint') AS comment
FROM pg_catalog.pg_constraint con
LEFT JOIN pg_catalog.pg_class r ON r.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
WHERE con.conrelid = ANY($1) AND con.contype IN ('p', 'u', 'c', 'f', 'x')
ORDER BY con.conrelid, con.conname
