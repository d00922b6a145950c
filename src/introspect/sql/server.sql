-- Facts about the server and database (inside the snapshot transaction).
SELECT pg_catalog.current_setting('server_version') AS server_version,
       pg_catalog.current_setting('server_version_num')::int4 AS server_version_num,
       pg_catalog.pg_encoding_to_char(d.encoding) AS encoding,
       pg_catalog.current_database() AS database
FROM pg_catalog.pg_database d
WHERE d.datname = pg_catalog.current_database()
