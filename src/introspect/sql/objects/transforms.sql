-- Transforms (CREATE TRANSFORM), except those an extension makes.
SELECT 'pg_catalog.pg_transform'::regclass::oid AS classid, tr.oid AS objid,
       'transform' AS kind, NULL::text AS schema,
       pg_catalog.format_type(tr.trftype, NULL) || ' language ' || l.lanname AS name,
       'pre-data' AS section,
       ARRAY[pg_catalog.format('CREATE TRANSFORM FOR %s LANGUAGE %I (%s)',
               pg_catalog.format_type(tr.trftype, NULL), l.lanname,
               pg_catalog.concat_ws(', ',
                 CASE WHEN tr.trffromsql <> 0
                      THEN 'FROM SQL WITH FUNCTION ' || tr.trffromsql::regprocedure::text END,
                 CASE WHEN tr.trftosql <> 0
                      THEN 'TO SQL WITH FUNCTION ' || tr.trftosql::regprocedure::text END))] AS "create",
       pg_catalog.format('TRANSFORM FOR %s LANGUAGE %I',
                         pg_catalog.format_type(tr.trftype, NULL), l.lanname) AS target,
       NULL::text AS owner, NULL::text[] AS acl, NULL::text[] AS acl_default, NULL::text AS acl_target,
       pg_catalog.obj_description(tr.oid, 'pg_transform') AS comment,
       NULL::text AS table_schema, NULL::text AS table_name
FROM pg_catalog.pg_transform tr
JOIN pg_catalog.pg_language l ON l.oid = tr.trflang
WHERE tr.oid >= 16384
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_transform'::regclass
                    AND d.objid = tr.oid AND d.deptype = 'e')
