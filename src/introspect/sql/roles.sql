-- The roles this database names: every role pg_shdepend ties to it (owners, grantees
-- and grantors, policy roles), the database's owner, the bootstrap superuser (who owns
-- what initdb made, never listed in pg_shdepend), users of user mappings and roles of
-- default privileges; with their attributes, comments, and the memberships between
-- them. pg_roles shows no password, and none is read.
WITH named(oid) AS (
  SELECT sd.refobjid FROM pg_catalog.pg_shdepend sd
  WHERE sd.refclassid = 'pg_catalog.pg_authid'::regclass
    AND sd.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
  UNION SELECT datdba FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()
  UNION SELECT 10
  UNION SELECT umuser FROM pg_catalog.pg_user_mappings WHERE umuser <> 0
  UNION SELECT defaclrole FROM pg_catalog.pg_default_acl
)
SELECT r.rolname::text AS name, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb,
       r.rolcanlogin, r.rolreplication, r.rolbypassrls, r.rolconnlimit,
       r.rolvaliduntil::text AS valid_until,
       pg_catalog.shobj_description(r.oid, 'pg_authid') AS comment,
       ARRAY(SELECT g.rolname::text FROM pg_catalog.pg_auth_members m
             JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
             WHERE m.member = r.oid AND m.roleid IN (SELECT oid FROM named)
             GROUP BY g.rolname ORDER BY g.rolname) AS member_of,
       ARRAY(SELECT pg_catalog.bool_or(m.admin_option) FROM pg_catalog.pg_auth_members m
             JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
             WHERE m.member = r.oid AND m.roleid IN (SELECT oid FROM named)
             GROUP BY g.rolname ORDER BY g.rolname) AS admin_option
FROM pg_catalog.pg_roles r
WHERE r.oid IN (SELECT oid FROM named)
ORDER BY r.rolname
