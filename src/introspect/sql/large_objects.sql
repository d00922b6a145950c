-- Large objects with their owner, privileges and comment, in OID order.
SELECT m.oid,
       pg_catalog.pg_get_userbyid(m.lomowner)::text AS owner,
       m.lomacl::text[] AS acl,
       pg_catalog.acldefault('L', m.lomowner)::text[] AS acl_default,
       pg_catalog.obj_description(m.oid, 'pg_largeobject') AS comment
FROM pg_catalog.pg_largeobject_metadata m
ORDER BY m.oid
