-- Privileges on objects the database did not create itself — the system's own in
-- pg_catalog and information_schema, and the members of extensions — where they
-- differ from what initdb or CREATE EXTENSION gave them (pg_init_privs), as pg_dump
-- keeps them: GRANT EXECUTE on a system function to a monitoring role, a REVOKE of a
-- default. `create` is empty: only the grants are restored, after every object exists.
WITH member AS (
  SELECT d.classid, d.objid FROM pg_catalog.pg_depend d WHERE d.deptype = 'e'
), sys AS (
  SELECT 'pg_catalog.pg_proc'::regclass::oid AS classid, p.oid AS objid, n.nspname,
         p.oid::regprocedure::text AS name,
         CASE p.prokind WHEN 'p' THEN 'PROCEDURE ' ELSE 'FUNCTION ' END
           || p.oid::regprocedure::text AS target,
         p.proacl AS acl, pg_catalog.acldefault('f', p.proowner) AS dflt, p.proowner AS owner
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  WHERE n.nspname IN ('pg_catalog', 'information_schema')
     OR (p.oid >= 16384 AND ('pg_catalog.pg_proc'::regclass, p.oid) IN (SELECT * FROM member))
  UNION ALL
  SELECT 'pg_catalog.pg_class'::regclass::oid, c.oid, n.nspname,
         pg_catalog.format('%I.%I', n.nspname, c.relname),
         CASE c.relkind WHEN 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END
           || pg_catalog.format('%I.%I', n.nspname, c.relname),
         c.relacl, pg_catalog.acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner),
         c.relowner
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p', 'S')
    AND (n.nspname IN ('pg_catalog', 'information_schema')
         OR (c.oid >= 16384 AND ('pg_catalog.pg_class'::regclass, c.oid) IN (SELECT * FROM member)))
  UNION ALL
  SELECT 'pg_catalog.pg_type'::regclass::oid, t.oid, n.nspname,
         pg_catalog.format('%I.%I', n.nspname, t.typname),
         CASE t.typtype WHEN 'd' THEN 'DOMAIN ' ELSE 'TYPE ' END
           || pg_catalog.format('%I.%I', n.nspname, t.typname),
         t.typacl, pg_catalog.acldefault('T', t.typowner), t.typowner
  FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
  WHERE t.typacl IS NOT NULL AND t.typelem = 0
    AND (n.nspname IN ('pg_catalog', 'information_schema')
         OR (t.oid >= 16384 AND ('pg_catalog.pg_type'::regclass, t.oid) IN (SELECT * FROM member)))
  UNION ALL
  SELECT 'pg_catalog.pg_language'::regclass::oid, l.oid, NULL, l.lanname::text,
         'LANGUAGE ' || pg_catalog.quote_ident(l.lanname),
         l.lanacl, pg_catalog.acldefault('l', l.lanowner), l.lanowner
  FROM pg_catalog.pg_language l
  WHERE l.oid < 16384 OR ('pg_catalog.pg_language'::regclass, l.oid) IN (SELECT * FROM member)
  UNION ALL
  SELECT 'pg_catalog.pg_namespace'::regclass::oid, n.oid, NULL, n.nspname::text,
         'SCHEMA ' || pg_catalog.quote_ident(n.nspname),
         n.nspacl, pg_catalog.acldefault('n', n.nspowner), n.nspowner
  FROM pg_catalog.pg_namespace n
  WHERE n.nspname IN ('pg_catalog', 'information_schema')
), changed AS (
  SELECT sys.*, COALESCE(ip.initprivs, sys.dflt) AS initial
  FROM sys
  LEFT JOIN pg_catalog.pg_init_privs ip
         ON ip.classoid = sys.classid AND ip.objoid = sys.objid AND ip.objsubid = 0
  WHERE sys.acl IS NOT NULL
    AND ARRAY(SELECT x::text FROM pg_catalog.unnest(sys.acl) x ORDER BY 1)
        <> ARRAY(SELECT x::text FROM pg_catalog.unnest(COALESCE(ip.initprivs, sys.dflt)) x ORDER BY 1)
)
SELECT classid, objid, 'privileges' AS kind, nspname::text AS schema, name,
       'pre-data' AS section, '{}'::text[] AS "create", NULL::text AS target,
       NULL::text AS owner, acl::text[] AS acl, initial::text[] AS acl_default,
       target AS acl_target, NULL::text AS comment,
       NULL::text AS table_schema, NULL::text AS table_name
FROM changed
UNION ALL
-- Column privileges on those relations: the grants a column has beyond its initial ones
-- (columns start with none), as GRANT statements.
SELECT 'pg_catalog.pg_class'::regclass::oid, c.oid, 'column privileges', n.nspname::text,
       pg_catalog.format('%I.%I', n.nspname, c.relname),
       'pre-data',
       ARRAY(SELECT pg_catalog.format('GRANT %s (%I) ON TABLE %I.%I TO %s%s', x.privilege_type,
                                      a.attname, n.nspname, c.relname,
                                      CASE x.grantee WHEN 0 THEN 'PUBLIC'
                                           ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(x.grantee)) END,
                                      CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
             FROM pg_catalog.pg_attribute a
             CROSS JOIN LATERAL pg_catalog.aclexplode(a.attacl) x
             LEFT JOIN pg_catalog.pg_init_privs ip
                    ON ip.classoid = 'pg_catalog.pg_class'::regclass AND ip.objoid = c.oid
                   AND ip.objsubid = a.attnum
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND a.attacl IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(ip.initprivs) y
                               WHERE y.grantee = x.grantee AND y.privilege_type = x.privilege_type
                                 AND y.is_grantable = x.is_grantable)
             ORDER BY a.attnum, x.grantee, x.privilege_type),
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p')
  AND (n.nspname IN ('pg_catalog', 'information_schema')
       OR (c.oid >= 16384 AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                                      WHERE d.classid = 'pg_catalog.pg_class'::regclass
                                        AND d.objid = c.oid AND d.deptype = 'e')))
  AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND a.attacl IS NOT NULL)
