-- pg_depend edges between user objects, as they are: objects.rs reduces each side
-- (dependency_sides.sql). Sequence ownership (OWNED BY) is left out: it is set after
-- the tables.
SELECT d.classid, d.objid, d.refclassid, d.refobjid
FROM pg_catalog.pg_depend d
WHERE d.deptype IN ('n', 'a', 'i') AND d.objid >= 16384
  AND NOT (d.deptype = 'a' AND d.classid = 'pg_catalog.pg_class'::regclass
           AND EXISTS (SELECT 1 FROM pg_catalog.pg_class s WHERE s.oid = d.objid AND s.relkind = 'S'))
