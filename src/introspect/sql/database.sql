-- The database's own properties that CREATE DATABASE and ALTER DATABASE carry (for
-- restore --create): locale, comment, owner, privileges, and the settings made with
-- ALTER DATABASE … SET (for every role). {provider}, {locale} and {rules} are filled in
-- per server version: the locale provider came with 15, ICU rules with 16, and 17
-- renamed daticulocale to datlocale.
SELECT d.datname::text AS datname,
       d.datcollate AS collate,
       d.datctype AS ctype,
       {provider} AS locale_provider,
       {locale} AS locale,
       {rules} AS icu_rules,
       pg_catalog.shobj_description(d.oid, 'pg_database') AS comment,
       pg_catalog.pg_get_userbyid(d.datdba)::text AS owner,
       d.datacl::text[] AS acl,
       pg_catalog.acldefault('d', d.datdba)::text[] AS acl_default,
       COALESCE((SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s
                 WHERE s.setdatabase = d.oid AND s.setrole = 0), '{}') AS settings
FROM pg_catalog.pg_database d
WHERE d.datname = pg_catalog.current_database()
