-- Whether large object $1 exists.
SELECT 1 FROM pg_catalog.pg_largeobject_metadata WHERE oid = $1
