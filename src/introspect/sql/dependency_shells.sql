-- The I/O functions of a base type, and a range type's canonical function, need only
-- the type's shell (classid 1, see objects/types.sql), which comes before them. Only
-- functions the database made can be such an edge (the edges start at 16384):
-- every table's array type is a base type with built-in I/O, and on 3000 tables
-- keeping those made this a 15,000-row list joined to every edge (23 s).
SELECT f.fn::oid, t.oid FROM pg_catalog.pg_type t
CROSS JOIN LATERAL (VALUES (t.typinput), (t.typoutput), (t.typreceive), (t.typsend),
                           (t.typmodin), (t.typmodout), (t.typanalyze)) AS f(fn)
WHERE t.typtype = 'b' AND f.fn::oid >= 16384 AND t.oid >= 16384
UNION ALL
SELECT rg.rngcanonical::oid, rg.rngtypid FROM pg_catalog.pg_range rg
WHERE rg.rngcanonical::oid >= 16384 AND rg.rngtypid >= 16384
