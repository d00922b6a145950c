-- User-defined casts (built-in ones have OIDs below 16384). A cast has neither a
-- schema nor an owner, and no privileges of its own. Casts made implicitly with their
-- types (range to multirange, PG 14+, tied by deptype 'i') are left to CREATE TYPE,
-- as pg_dump does.
SELECT 'pg_catalog.pg_cast'::regclass::oid AS classid, c.oid AS objid,
       'cast' AS kind, NULL::text AS schema,
       pg_catalog.format_type(c.castsource, NULL) || ' AS ' || pg_catalog.format_type(c.casttarget, NULL) AS name,
       'pre-data' AS section,
       ARRAY[pg_catalog.format('CREATE CAST (%s AS %s) %s%s',
         pg_catalog.format_type(c.castsource, NULL), pg_catalog.format_type(c.casttarget, NULL),
         CASE c.castmethod WHEN 'f' THEN 'WITH FUNCTION ' || c.castfunc::regprocedure::text
                           WHEN 'i' THEN 'WITH INOUT'
                           ELSE 'WITHOUT FUNCTION' END,
         CASE c.castcontext WHEN 'a' THEN ' AS ASSIGNMENT' WHEN 'i' THEN ' AS IMPLICIT' ELSE '' END)]
         AS "create",
       pg_catalog.format('CAST (%s AS %s)', pg_catalog.format_type(c.castsource, NULL),
                         pg_catalog.format_type(c.casttarget, NULL)) AS target,
       NULL::text AS owner,
       NULL::text[] AS acl, NULL::text[] AS acl_default, NULL::text AS acl_target,
       pg_catalog.obj_description(c.oid, 'pg_cast') AS comment,
       NULL::text AS table_schema, NULL::text AS table_name
FROM pg_catalog.pg_cast c
WHERE c.oid >= 16384
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_cast'::regclass
                    AND d.objid = c.oid AND d.deptype IN ('e', 'i'))
