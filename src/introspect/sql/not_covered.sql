-- Objects this version does not back up: listed as warnings, never skipped silently.
WITH user_ns AS (
  SELECT oid, nspname FROM pg_catalog.pg_namespace
  WHERE nspname <> 'information_schema' AND nspname !~ '^pg_'
), ext_member AS (
  SELECT classid, objid FROM pg_catalog.pg_depend WHERE deptype = 'e'
)
SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                      WHEN 'p' THEN 'partitioned table' WHEN 'f' THEN 'foreign table'
                      WHEN 'c' THEN 'composite type' END AS kind,
       n.nspname || '.' || c.relname AS name
FROM pg_catalog.pg_class c JOIN user_ns n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm', 'p', 'f', 'c')
  AND ('pg_catalog.pg_class'::regclass, c.oid) NOT IN (SELECT classid, objid FROM ext_member)
UNION ALL
SELECT 'table inheritance', n.nspname || '.' || c.relname
FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
JOIN user_ns n ON n.oid = c.relnamespace
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
       n.nspname || '.' || p.proname
FROM pg_catalog.pg_proc p JOIN user_ns n ON n.oid = p.pronamespace
WHERE ('pg_catalog.pg_proc'::regclass, p.oid) NOT IN (SELECT classid, objid FROM ext_member)
UNION ALL
SELECT 'trigger', t.tgname || ' on ' || n.nspname || '.' || c.relname
FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN user_ns n ON n.oid = c.relnamespace WHERE NOT t.tgisinternal
UNION ALL
SELECT 'policy', p.polname || ' on ' || n.nspname || '.' || c.relname
FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
JOIN user_ns n ON n.oid = c.relnamespace
UNION ALL
SELECT 'row-level security', n.nspname || '.' || c.relname
FROM pg_catalog.pg_class c JOIN user_ns n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND (c.relrowsecurity OR c.relforcerowsecurity)
UNION ALL
SELECT 'rule', r.rulename || ' on ' || n.nspname || '.' || c.relname
FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
JOIN user_ns n ON n.oid = c.relnamespace WHERE r.rulename <> '_RETURN'
UNION ALL
SELECT 'extension', e.extname FROM pg_catalog.pg_extension e WHERE e.extname <> 'plpgsql'
UNION ALL
SELECT CASE t.typtype WHEN 'd' THEN 'domain' WHEN 'r' THEN 'range type'
                      WHEN 'm' THEN 'multirange type' WHEN 'b' THEN 'base type' END,
       n.nspname || '.' || t.typname
FROM pg_catalog.pg_type t JOIN user_ns n ON n.oid = t.typnamespace
WHERE t.typtype IN ('d', 'r', 'm', 'b') AND t.typelem = 0
  AND ('pg_catalog.pg_type'::regclass, t.oid) NOT IN (SELECT classid, objid FROM ext_member)
UNION ALL
SELECT 'collation', n.nspname || '.' || co.collname
FROM pg_catalog.pg_collation co JOIN user_ns n ON n.oid = co.collnamespace
WHERE ('pg_catalog.pg_collation'::regclass, co.oid) NOT IN (SELECT classid, objid FROM ext_member)
UNION ALL
-- Binary COPY embeds the element type's OID in arrays (and column type OIDs in
-- composites); a user-defined type gets another OID in the restored database.
SELECT 'column of an array or composite of a user-defined type (restore would fail)',
       n.nspname || '.' || c.relname || '.' || a.attname
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN user_ns n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
WHERE c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
  AND ((e.oid IS NOT NULL AND (e.oid >= 16384 OR e.typtype = 'c'))
       OR (t.typtype = 'c' AND t.oid >= 16384))
UNION ALL
SELECT 'event trigger', e.evtname FROM pg_catalog.pg_event_trigger e
WHERE ('pg_catalog.pg_event_trigger'::regclass, e.oid) NOT IN (SELECT classid, objid FROM ext_member)
UNION ALL
SELECT 'cast', pg_catalog.format_type(ca.castsource, NULL) || ' AS ' || pg_catalog.format_type(ca.casttarget, NULL)
FROM pg_catalog.pg_cast ca WHERE ca.oid >= 16384
  AND ('pg_catalog.pg_cast'::regclass, ca.oid) NOT IN (SELECT classid, objid FROM ext_member)
UNION ALL
SELECT 'operator', n.nspname || '.' || o.oprname
FROM pg_catalog.pg_operator o JOIN user_ns n ON n.oid = o.oprnamespace
WHERE ('pg_catalog.pg_operator'::regclass, o.oid) NOT IN (SELECT classid, objid FROM ext_member)
UNION ALL
SELECT 'operator class', n.nspname || '.' || oc.opcname
FROM pg_catalog.pg_opclass oc JOIN user_ns n ON n.oid = oc.opcnamespace
WHERE ('pg_catalog.pg_opclass'::regclass, oc.oid) NOT IN (SELECT classid, objid FROM ext_member)
UNION ALL
SELECT 'operator family', n.nspname || '.' || f.opfname
FROM pg_catalog.pg_opfamily f JOIN user_ns n ON n.oid = f.opfnamespace
WHERE ('pg_catalog.pg_opfamily'::regclass, f.oid) NOT IN (SELECT classid, objid FROM ext_member)
UNION ALL
SELECT 'text search configuration', n.nspname || '.' || cf.cfgname
FROM pg_catalog.pg_ts_config cf JOIN user_ns n ON n.oid = cf.cfgnamespace
WHERE ('pg_catalog.pg_ts_config'::regclass, cf.oid) NOT IN (SELECT classid, objid FROM ext_member)
UNION ALL
SELECT 'text search dictionary', n.nspname || '.' || d.dictname
FROM pg_catalog.pg_ts_dict d JOIN user_ns n ON n.oid = d.dictnamespace
WHERE ('pg_catalog.pg_ts_dict'::regclass, d.oid) NOT IN (SELECT classid, objid FROM ext_member)
UNION ALL
SELECT 'conversion', n.nspname || '.' || cv.conname
FROM pg_catalog.pg_conversion cv JOIN user_ns n ON n.oid = cv.connamespace
WHERE ('pg_catalog.pg_conversion'::regclass, cv.oid) NOT IN (SELECT classid, objid FROM ext_member)
UNION ALL
SELECT 'access method', am.amname FROM pg_catalog.pg_am am WHERE am.oid >= 16384
  AND ('pg_catalog.pg_am'::regclass, am.oid) NOT IN (SELECT classid, objid FROM ext_member)
UNION ALL
SELECT 'foreign-data wrapper', w.fdwname FROM pg_catalog.pg_foreign_data_wrapper w
WHERE ('pg_catalog.pg_foreign_data_wrapper'::regclass, w.oid) NOT IN (SELECT classid, objid FROM ext_member)
UNION ALL
SELECT 'foreign server', s.srvname FROM pg_catalog.pg_foreign_server s
UNION ALL
SELECT 'publication', p.pubname FROM pg_catalog.pg_publication p
UNION ALL
SELECT 'statistics object', n.nspname || '.' || st.stxname
FROM pg_catalog.pg_statistic_ext st JOIN user_ns n ON n.oid = st.stxnamespace
UNION ALL
SELECT 'default privileges', pg_catalog.pg_get_userbyid(da.defaclrole)
       || COALESCE(' in ' || n.nspname, '')
FROM pg_catalog.pg_default_acl da LEFT JOIN pg_catalog.pg_namespace n ON n.oid = da.defaclnamespace
UNION ALL
SELECT 'unlogged table (would be restored as logged)', n.nspname || '.' || c.relname
FROM pg_catalog.pg_class c JOIN user_ns n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence = 'u'
UNION ALL
SELECT 'table storage parameters', n.nspname || '.' || c.relname
FROM pg_catalog.pg_class c JOIN user_ns n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.reloptions IS NOT NULL
UNION ALL
SELECT 'large objects', pg_catalog.count(*)::text || ' large object(s)'
FROM pg_catalog.pg_largeobject_metadata HAVING pg_catalog.count(*) > 0
UNION ALL
SELECT 'ownership', n.nspname || '.' || c.relname || ' is owned by ' || pg_catalog.pg_get_userbyid(c.relowner)
FROM pg_catalog.pg_class c JOIN user_ns n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'S') AND c.relowner <> (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
UNION ALL
SELECT 'privileges', n.nspname || '.' || c.relname
FROM pg_catalog.pg_class c JOIN user_ns n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'S') AND c.relacl IS NOT NULL
ORDER BY 1, 2
