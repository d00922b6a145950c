-- Every index by schema and name (a restore test's check).
SELECT schemaname::text, indexname::text FROM pg_indexes
