-- User-defined access methods (built-in ones have OIDs below 16384). They have
-- neither a schema nor an owner. Tables and operator classes that use one depend on
-- it in pg_depend.
SELECT 'pg_catalog.pg_am'::regclass::oid AS classid, am.oid AS objid,
       'access method' AS kind, NULL::text AS schema, am.amname::text AS name,
       'pre-data' AS section,
       ARRAY[pg_catalog.format('CREATE ACCESS METHOD %I TYPE %s HANDLER %s', am.amname,
         CASE am.amtype WHEN 't' THEN 'TABLE' ELSE 'INDEX' END, am.amhandler::text)] AS "create",
       pg_catalog.format('ACCESS METHOD %I', am.amname) AS target,
       NULL::text AS owner,
       NULL::text[] AS acl, NULL::text[] AS acl_default, NULL::text AS acl_target,
       pg_catalog.obj_description(am.oid, 'pg_am') AS comment,
       NULL::text AS table_schema, NULL::text AS table_name
FROM pg_catalog.pg_am am
WHERE am.oid >= 16384
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_am'::regclass
                    AND d.objid = am.oid AND d.deptype = 'e')
