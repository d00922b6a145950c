-- Default privileges (ALTER DEFAULT PRIVILEGES), as pg_dump's dumpDefaultACL /
-- buildDefaultACLCommands write them: REVOKE what the base ACL has and the stored one
-- lacks, then GRANT what the stored one adds, item by item. The base of a global entry
-- (no schema) is the built-in default for the object type and role; the base of a
-- per-schema entry is empty, since those can only add privileges. A set holding every
-- privilege of the type is written ALL. The grantor of a default ACL item is always
-- the role itself, so no SET SESSION AUTHORIZATION is needed.
-- Post-data, like pg_dump: applied earlier, they could change the privileges of the
-- objects the restore creates.
WITH da AS (
  SELECT d.oid, d.defaclrole, d.defaclacl AS acl, n.nspname,
         CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS'
                              WHEN 'T' THEN 'TYPES' WHEN 'n' THEN 'SCHEMAS' WHEN 'L' THEN 'LARGE OBJECTS' END AS objtype,
         -- acldefault's code for sequences is 's' ('S' is a foreign server there)
         pg_catalog.acldefault(CASE WHEN d.defaclobjtype = 'S' THEN 's'::"char" ELSE d.defaclobjtype END,
                               d.defaclrole) AS builtin,
         pg_catalog.format('ALTER DEFAULT PRIVILEGES FOR ROLE %s %s', pg_catalog.format('"%s"', pg_catalog.replace(pg_catalog.pg_get_userbyid(d.defaclrole)::text, '"', '""')),
                           CASE WHEN n.nspname IS NOT NULL
                                THEN pg_catalog.format('IN SCHEMA %I ', n.nspname) ELSE '' END) AS prefix
  FROM pg_catalog.pg_default_acl d
  LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
), base AS (
  SELECT da.*,
         CASE WHEN da.nspname IS NULL THEN da.builtin ELSE '{}'::aclitem[] END AS base,
         -- how many privileges the type has: the owner holds all of them by default
         (SELECT pg_catalog.count(*) FROM pg_catalog.aclexplode(da.builtin) x
          WHERE x.grantee = da.defaclrole) AS nall
  FROM da
), stmts AS (
  -- REVOKE the base items that are gone (grant options included)
  SELECT b.oid, 1 AS grp, 0 AS ownerfirst, r.ord,
         pg_catalog.format('%sREVOKE %s ON %s FROM %s', b.prefix,
           CASE WHEN pg_catalog.count(*) = b.nall THEN 'ALL'
                ELSE pg_catalog.string_agg(x.privilege_type, ', ' ORDER BY x.privilege_type) END,
           b.objtype,
           CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.format('"%s"', pg_catalog.replace(pg_catalog.pg_get_userbyid(x.grantee)::text, '"', '""')) END)
           AS stmt
  FROM base b
  CROSS JOIN LATERAL pg_catalog.unnest(b.base) WITH ORDINALITY AS r(item, ord)
  CROSS JOIN LATERAL pg_catalog.aclexplode(ARRAY[r.item]) AS x
  WHERE NOT (r.item = ANY (b.acl))
  GROUP BY b.oid, b.prefix, b.objtype, b.nall, r.ord, x.grantee
  UNION ALL
  -- GRANT the stored items the base lacks, those with grant option separately
  SELECT b.oid, 2, CASE WHEN x.grantee = b.defaclrole THEN 0 ELSE 1 END, g.ord * 2 + x.is_grantable::int,
         pg_catalog.format('%sGRANT %s ON %s TO %s%s', b.prefix,
           CASE WHEN pg_catalog.count(*) = b.nall THEN 'ALL'
                ELSE pg_catalog.string_agg(x.privilege_type, ', ' ORDER BY x.privilege_type) END,
           b.objtype,
           CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.format('"%s"', pg_catalog.replace(pg_catalog.pg_get_userbyid(x.grantee)::text, '"', '""')) END,
           CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
  FROM base b
  CROSS JOIN LATERAL pg_catalog.unnest(b.acl) WITH ORDINALITY AS g(item, ord)
  CROSS JOIN LATERAL pg_catalog.aclexplode(ARRAY[g.item]) AS x
  WHERE NOT (g.item = ANY (b.base))
  GROUP BY b.oid, b.prefix, b.objtype, b.nall, b.defaclrole, g.ord, x.grantee, x.is_grantable
)
SELECT 'pg_catalog.pg_default_acl'::regclass::oid AS classid, b.oid AS objid,
       'default privileges' AS kind, b.nspname::text AS schema,
       pg_catalog.format('FOR ROLE %s%s ON %s', pg_catalog.pg_get_userbyid(b.defaclrole),
                         COALESCE(' IN SCHEMA ' || b.nspname, ''), b.objtype) AS name,
       'post-data' AS section,
       ARRAY(SELECT s.stmt FROM stmts s WHERE s.oid = b.oid
             ORDER BY s.grp, s.ownerfirst, s.ord) AS "create",
       NULL::text AS target,
       NULL::text AS owner,
       NULL::text[] AS acl, NULL::text[] AS acl_default, NULL::text AS acl_target,
       NULL::text AS comment,
       NULL::text AS table_schema, NULL::text AS table_name
FROM base b
WHERE EXISTS (SELECT 1 FROM stmts s WHERE s.oid = b.oid)
