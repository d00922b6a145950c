-- A slice of large object $1: $3 bytes from offset $2.
SELECT pg_catalog.lo_get($1::pg_catalog.oid, $2::pg_catalog.int8, $3::pg_catalog.int4)
