-- Large objects the current role may not read: neither it (or a role whose
-- privileges it has) owns them nor holds SELECT on them, and lo_compat_privileges is
-- off. Superusers have the privileges of every role, so this is empty for them.
SELECT m.oid
FROM pg_catalog.pg_largeobject_metadata m
WHERE NOT pg_catalog.pg_has_role(m.lomowner, 'USAGE')
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(m.lomacl) a
                  WHERE a.privilege_type = 'SELECT'
                    AND (a.grantee = 0 OR pg_catalog.pg_has_role(a.grantee, 'USAGE')))
  AND pg_catalog.current_setting('lo_compat_privileges') = 'off'
ORDER BY m.oid
