-- Objects this version does not back up: listed as warnings, never skipped silently.
WITH user_ns AS (
  SELECT oid, nspname FROM pg_catalog.pg_namespace
  WHERE nspname <> 'information_schema' AND nspname !~ '^pg_'
)
-- Base and shell types need C functions and are made by extensions in practice.
SELECT CASE t.typtype WHEN 'p' THEN 'shell type' ELSE 'base type' END AS kind,
       n.nspname || '.' || t.typname AS name
FROM pg_catalog.pg_type t JOIN user_ns n ON n.oid = t.typnamespace
WHERE t.typtype IN ('b', 'p') AND NOT (t.typelem <> 0 AND t.typlen = -1)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_type'::regclass
                    AND d.objid = t.oid AND d.deptype IN ('e', 'i'))
UNION ALL
-- Binary COPY sends reg* values (regclass, regtype, …) as bare OIDs, which name
-- other objects, or none, in the restored database. (OIDs of types embedded in array
-- and composite values are rewritten on restore.)
SELECT 'column of a reg* type (OIDs of user objects would point elsewhere after restore)',
       n.nspname || '.' || c.relname || '.' || a.attname
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN user_ns n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
WHERE c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
  AND pg_catalog.format_type(CASE WHEN t.typelem <> 0 AND t.typlen = -1
                                  THEN t.typelem ELSE t.oid END, NULL)
      IN ('regclass', 'regcollation', 'regconfig', 'regdictionary', 'regnamespace',
          'regoper', 'regoperator', 'regproc', 'regprocedure', 'regrole', 'regtype')
UNION ALL
SELECT 'large objects', pg_catalog.count(*)::text || ' large object(s)'
FROM pg_catalog.pg_largeobject_metadata HAVING pg_catalog.count(*) > 0
