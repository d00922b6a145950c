-- Table constraints (NOT NULL is a column property and not listed here). Foreign
-- keys a partition inherits from its parent are not listed: the parent's creates them.
-- `after_functions`: a CHECK calling a function that itself needs the table (takes its
-- row type, or reads it in a BEGIN ATOMIC body); neither can be created first.
SELECT con.conrelid, con.conname, con.contype::text AS contype,
       pg_catalog.pg_get_constraintdef(con.oid) AS definition,
       rn.nspname AS ref_schema, r.relname AS ref_table,
       dc.description AS comment,
       con.conislocal,
       pin.nspname AS parent_index_schema, pic.relname AS parent_index,
       ci.relname AS index_name,
       di.description AS index_comment,
       CASE WHEN con.contype = 'c' THEN EXISTS (
         SELECT 1 FROM pg_catalog.pg_depend d
         JOIN pg_catalog.pg_depend fd ON fd.classid = 'pg_catalog.pg_proc'::regclass
                                     AND fd.objid = d.refobjid
         JOIN pg_catalog.pg_class t ON t.oid = con.conrelid
         WHERE d.classid = 'pg_catalog.pg_constraint'::regclass AND d.objid = con.oid
           AND d.refclassid = 'pg_catalog.pg_proc'::regclass
           AND ((fd.refclassid = 'pg_catalog.pg_class'::regclass AND fd.refobjid = t.oid)
                OR (fd.refclassid = 'pg_catalog.pg_type'::regclass AND fd.refobjid = t.reltype))
       ) ELSE false END AS after_functions
FROM pg_catalog.pg_constraint con
LEFT JOIN pg_catalog.pg_class r ON r.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
LEFT JOIN pg_catalog.pg_class ci ON ci.oid = con.conindid AND con.contype IN ('p', 'u', 'x')
-- Comments joined, not looked up per row by obj_description().
LEFT JOIN pg_catalog.pg_description dc
       ON dc.objoid = con.oid AND dc.classoid = 'pg_catalog.pg_constraint'::pg_catalog.regclass
      AND dc.objsubid = 0
LEFT JOIN pg_catalog.pg_description di
       ON di.objoid = ci.oid AND di.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND di.objsubid = 0
LEFT JOIN pg_catalog.pg_inherits ii ON ii.inhrelid = con.conindid AND con.contype IN ('p', 'u', 'x')
LEFT JOIN pg_catalog.pg_class pic ON pic.oid = ii.inhparent
LEFT JOIN pg_catalog.pg_namespace pin ON pin.oid = pic.relnamespace
WHERE con.conrelid = ANY($1) AND con.contype IN ('p', 'u', 'c', 'f', 'x')
  AND NOT (con.contype = 'f' AND con.conparentid <> 0)
ORDER BY con.conrelid, con.conname
