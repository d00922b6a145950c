-- Foreign keys that exist and are validated, by table and name (a restore test's check).
SELECT n.nspname::text, r.relname::text, c.conname::text
FROM pg_constraint c
JOIN pg_class r ON r.oid = c.conrelid
JOIN pg_namespace n ON n.oid = r.relnamespace
WHERE c.contype = 'f' AND c.convalidated
