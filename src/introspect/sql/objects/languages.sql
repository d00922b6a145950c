-- Procedural languages created with CREATE LANGUAGE rather than by an extension
-- (plpgsql and the other shipped languages are extensions: CREATE EXTENSION makes
-- them). Built-in languages (internal, c, sql) have OIDs below 16384. As pg_dump's
-- dumpProcLang writes them: the handler, inline and validator functions by name.
SELECT 'pg_catalog.pg_language'::regclass::oid AS classid, l.oid AS objid,
       'language' AS kind, NULL::text AS schema, l.lanname::text AS name,
       'pre-data' AS section,
       ARRAY[pg_catalog.format('CREATE %sPROCEDURAL LANGUAGE %I HANDLER %I.%I%s%s',
         CASE WHEN l.lanpltrusted THEN 'TRUSTED ' ELSE '' END, l.lanname, hn.nspname, h.proname,
         (SELECT pg_catalog.format(' INLINE %I.%I', fn.nspname, f.proname)
          FROM pg_catalog.pg_proc f JOIN pg_catalog.pg_namespace fn ON fn.oid = f.pronamespace
          WHERE f.oid = l.laninline),
         (SELECT pg_catalog.format(' VALIDATOR %I.%I', fn.nspname, f.proname)
          FROM pg_catalog.pg_proc f JOIN pg_catalog.pg_namespace fn ON fn.oid = f.pronamespace
          WHERE f.oid = l.lanvalidator))] AS "create",
       pg_catalog.format('LANGUAGE %I', l.lanname) AS target,
       pg_catalog.pg_get_userbyid(l.lanowner)::text AS owner,
       l.lanacl::text[] AS acl,
       pg_catalog.acldefault('l', l.lanowner)::text[] AS acl_default,
       pg_catalog.format('LANGUAGE %I', l.lanname) AS acl_target,
       pg_catalog.obj_description(l.oid, 'pg_language') AS comment,
       NULL::text AS table_schema, NULL::text AS table_name
FROM pg_catalog.pg_language l
JOIN pg_catalog.pg_proc h ON h.oid = l.lanplcallfoid
JOIN pg_catalog.pg_namespace hn ON hn.oid = h.pronamespace
WHERE l.oid >= 16384 AND l.lanispl
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_language'::regclass
                    AND d.objid = l.oid AND d.deptype = 'e')
