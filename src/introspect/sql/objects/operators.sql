-- Operators, as pg_dump's dumpOpr writes them. A COMMUTATOR or NEGATOR that does not
-- exist yet is created as a shell by CREATE OPERATOR and filled in when its own CREATE
-- runs, so a pair that names each other restores in either order. Shell operators
-- themselves (no function) are not dumped: whoever names them recreates them.
-- A one-sided link (X names Y as its negator, Y names nothing) comes back only if Y
-- is created after X: CREATE OPERATOR X also points Y back at X, and only Y's own
-- CREATE, filling the shell, clears that again. pg_dump has the same limitation.
SELECT 'pg_catalog.pg_operator'::regclass::oid AS classid, o.oid AS objid,
       'operator' AS kind, n.nspname::text AS schema,
       o.oprname || ' (' || sig.args || ')' AS name,
       'pre-data' AS section,
       ARRAY[pg_catalog.format('CREATE OPERATOR %I.%s (%s)', n.nspname, o.oprname,
         pg_catalog.concat_ws(', ',
           'FUNCTION = ' || o.oprcode::text,
           CASE WHEN o.oprleft <> 0 THEN 'LEFTARG = ' || pg_catalog.format_type(o.oprleft, NULL) END,
           CASE WHEN o.oprright <> 0 THEN 'RIGHTARG = ' || pg_catalog.format_type(o.oprright, NULL) END,
           (SELECT pg_catalog.format('COMMUTATOR = OPERATOR(%I.%s)', cn.nspname, c.oprname)
            FROM pg_catalog.pg_operator c JOIN pg_catalog.pg_namespace cn ON cn.oid = c.oprnamespace
            WHERE c.oid = o.oprcom),
           (SELECT pg_catalog.format('NEGATOR = OPERATOR(%I.%s)', cn.nspname, c.oprname)
            FROM pg_catalog.pg_operator c JOIN pg_catalog.pg_namespace cn ON cn.oid = c.oprnamespace
            WHERE c.oid = o.oprnegate),
           CASE WHEN o.oprcanmerge THEN 'MERGES' END,
           CASE WHEN o.oprcanhash THEN 'HASHES' END,
           CASE WHEN o.oprrest <> 0 THEN 'RESTRICT = ' || o.oprrest::text END,
           CASE WHEN o.oprjoin <> 0 THEN 'JOIN = ' || o.oprjoin::text END))] AS "create",
       pg_catalog.format('OPERATOR %I.%s (%s)', n.nspname, o.oprname, sig.args) AS target,
       pg_catalog.pg_get_userbyid(o.oprowner)::text AS owner,
       NULL::text[] AS acl, NULL::text[] AS acl_default, NULL::text AS acl_target,
       pg_catalog.obj_description(o.oid, 'pg_operator') AS comment,
       NULL::text AS table_schema, NULL::text AS table_name
FROM pg_catalog.pg_operator o
JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
CROSS JOIN LATERAL (SELECT CASE WHEN o.oprleft = 0 THEN 'NONE' ELSE pg_catalog.format_type(o.oprleft, NULL) END
                           || ', ' ||
                           CASE WHEN o.oprright = 0 THEN 'NONE' ELSE pg_catalog.format_type(o.oprright, NULL) END
                           AS args) AS sig
WHERE o.oprcode <> 0
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_operator'::regclass
                    AND d.objid = o.oid AND d.deptype = 'e')
