-- Tables binary COPY cannot carry faithfully, with the types that are why: a copied
-- column whose type, or a type inside it (array element, domain base, composite field,
-- range subtype, a multirange's range), either has no binary send/receive function
-- (aclitem, C types made with text I/O only: binary COPY fails on them), or is a reg*
-- type, whose binary form is a bare OID naming another object, or none, in the
-- restored database while its text form is the object's (qualified) name, or is a base
-- type the database defines itself (not an extension's): its binary form is whatever
-- its C send function writes, which export cannot read, while its text form is what
-- pg_dump carries too. Such tables are copied in text format. {multirange} is the multirange step on PostgreSQL 14+.
-- The types inside are followed from each distinct column type, not from each column:
-- on thousands of tables that share a few types, once per type.
WITH RECURSIVE cols(rel, typ) AS (
  SELECT a.attrelid, a.atttypid
  FROM pg_catalog.pg_attribute a
  WHERE a.attrelid = ANY($1::pg_catalog.oid[]) AND a.attnum > 0 AND NOT a.attisdropped
    AND a.attgenerated = ''
), inside(root, typ) AS (
  SELECT DISTINCT c.typ, c.typ FROM cols c
  UNION
  SELECT i.root, x.typ
  FROM inside i
  JOIN pg_catalog.pg_type t ON t.oid = i.typ
  CROSS JOIN LATERAL (
    SELECT t.typelem WHERE t.typelem <> 0 AND t.typlen = -1
    UNION ALL
    SELECT t.typbasetype WHERE t.typtype = 'd'
    UNION ALL
    SELECT f.atttypid FROM pg_catalog.pg_attribute f
    WHERE t.typtype = 'c' AND f.attrelid = t.typrelid AND f.attnum > 0
      AND NOT f.attisdropped
    UNION ALL
    SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid
    {multirange}
  ) AS x(typ)
)
SELECT c.rel AS oid,
       pg_catalog.array_agg(DISTINCT pg_catalog.format_type(t.oid, NULL)
         || CASE WHEN t.typsend::pg_catalog.oid = 0 OR t.typreceive::pg_catalog.oid = 0
                 THEN ' (no binary I/O)'
                 WHEN t.typnamespace = 'pg_catalog'::pg_catalog.regnamespace
                 THEN ' (names objects by OID)'
                 ELSE ' (base type of this database)' END) AS why
FROM cols c
JOIN inside i ON i.root = c.typ
JOIN pg_catalog.pg_type t ON t.oid = i.typ
WHERE t.typsend::pg_catalog.oid = 0 OR t.typreceive::pg_catalog.oid = 0
   OR (t.typnamespace = 'pg_catalog'::pg_catalog.regnamespace
       AND t.typname IN ('regclass', 'regcollation', 'regconfig', 'regdictionary',
                         'regnamespace', 'regoper', 'regoperator', 'regproc',
                         'regprocedure', 'regrole', 'regtype'))
   OR (t.typtype = 'b' AND t.oid >= 16384
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                       WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass
                         AND d.objid = t.oid AND d.deptype = 'e'))
GROUP BY c.rel
