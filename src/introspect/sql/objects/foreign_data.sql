-- Foreign-data wrappers, foreign servers, user mappings and foreign tables, as pg_dump
-- writes them (dumpForeignDataWrapper, dumpForeignServer, dumpUserMappings,
-- dumpTableSchema for relkind 'f'). Options keep their catalog order.
--
-- User mapping options often hold passwords. They are read from the pg_user_mappings
-- view (readable by anyone; it shows the options only to whoever may see them, like
-- pg_dump) and appear only in `create`: never in `name`. A mapping whose options the
-- backup role may not see is written without OPTIONS, as pg_dump does.
--
-- Foreign tables: CREATE FOREIGN TABLE with the columns the table defines itself (all
-- of them for a partition, which is then attached), INHERITS for an inheritance child,
-- then CHECK constraints, per-column storage / statistics / attribute options, the
-- ATTACH PARTITION, column privileges, and the column and constraint comments.
-- Column privileges are granted by whoever runs the restore, before the owner is
-- set: a column grant the owner made is reproduced, one made by another grantor comes
-- back with the owner as grantor.
WITH fdw_opts AS (
  SELECT w.oid,
         (SELECT ' OPTIONS (' || pg_catalog.string_agg(pg_catalog.quote_ident(o.option_name) || ' '
                                                       || pg_catalog.quote_literal(o.option_value), ', '
                                                       ORDER BY o.ord) || ')'
          FROM pg_catalog.pg_options_to_table(w.fdwoptions) WITH ORDINALITY AS o(option_name, option_value, ord))
         AS opts
  FROM pg_catalog.pg_foreign_data_wrapper w
), ext_member AS (
  SELECT d.classid, d.objid FROM pg_catalog.pg_depend d WHERE d.deptype = 'e'
)
SELECT 'pg_catalog.pg_foreign_data_wrapper'::regclass::oid AS classid, w.oid AS objid,
       'foreign-data wrapper' AS kind, NULL::text AS schema, w.fdwname::text AS name,
       'pre-data' AS section,
       ARRAY[pg_catalog.format('CREATE FOREIGN DATA WRAPPER %I%s%s%s', w.fdwname,
         CASE WHEN w.fdwhandler <> 0 THEN ' HANDLER ' || w.fdwhandler::regproc::text ELSE '' END,
         CASE WHEN w.fdwvalidator <> 0 THEN ' VALIDATOR ' || w.fdwvalidator::regproc::text ELSE '' END,
         COALESCE(fo.opts, ''))] AS "create",
       pg_catalog.format('FOREIGN DATA WRAPPER %I', w.fdwname) AS target,
       pg_catalog.pg_get_userbyid(w.fdwowner)::text AS owner,
       w.fdwacl::text[] AS acl,
       pg_catalog.acldefault('F', w.fdwowner)::text[] AS acl_default,
       pg_catalog.format('FOREIGN DATA WRAPPER %I', w.fdwname) AS acl_target,
       pg_catalog.obj_description(w.oid, 'pg_foreign_data_wrapper') AS comment,
       NULL::text AS table_schema, NULL::text AS table_name
FROM pg_catalog.pg_foreign_data_wrapper w
JOIN fdw_opts fo ON fo.oid = w.oid
WHERE ('pg_catalog.pg_foreign_data_wrapper'::regclass, w.oid) NOT IN (SELECT classid, objid FROM ext_member)
UNION ALL
SELECT 'pg_catalog.pg_foreign_server'::regclass::oid, s.oid,
       'foreign server', NULL::text, s.srvname::text,
       'pre-data',
       ARRAY[pg_catalog.format('CREATE SERVER %I%s%s FOREIGN DATA WRAPPER %I%s', s.srvname,
         CASE WHEN s.srvtype <> '' THEN ' TYPE ' || pg_catalog.quote_literal(s.srvtype) ELSE '' END,
         CASE WHEN s.srvversion <> '' THEN ' VERSION ' || pg_catalog.quote_literal(s.srvversion) ELSE '' END,
         w.fdwname,
         COALESCE((SELECT ' OPTIONS (' || pg_catalog.string_agg(pg_catalog.quote_ident(o.option_name) || ' '
                                                                || pg_catalog.quote_literal(o.option_value), ', '
                                                                ORDER BY o.ord) || ')'
                   FROM pg_catalog.pg_options_to_table(s.srvoptions)
                        WITH ORDINALITY AS o(option_name, option_value, ord)), ''))],
       pg_catalog.format('SERVER %I', s.srvname),
       pg_catalog.pg_get_userbyid(s.srvowner)::text,
       s.srvacl::text[],
       pg_catalog.acldefault('S', s.srvowner)::text[],
       pg_catalog.format('FOREIGN SERVER %I', s.srvname),
       pg_catalog.obj_description(s.oid, 'pg_foreign_server'),
       NULL::text, NULL::text
FROM pg_catalog.pg_foreign_server s
JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
WHERE ('pg_catalog.pg_foreign_server'::regclass, s.oid) NOT IN (SELECT classid, objid FROM ext_member)
UNION ALL
SELECT 'pg_catalog.pg_user_mapping'::regclass::oid, um.umid,
       'user mapping', NULL::text,
       CASE WHEN um.umuser = 0 THEN 'PUBLIC' ELSE um.usename::text END || ' SERVER ' || um.srvname,
       'pre-data',
       ARRAY[pg_catalog.format('CREATE USER MAPPING FOR %s SERVER %I%s',
         CASE WHEN um.umuser = 0 THEN 'PUBLIC' ELSE pg_catalog.format('"%s"', pg_catalog.replace(um.usename::text, '"', '""')) END,
         um.srvname,
         COALESCE((SELECT ' OPTIONS (' || pg_catalog.string_agg(pg_catalog.quote_ident(o.option_name) || ' '
                                                                || pg_catalog.quote_literal(o.option_value), ', '
                                                                ORDER BY o.ord) || ')'
                   FROM pg_catalog.pg_options_to_table(um.umoptions)
                        WITH ORDINALITY AS o(option_name, option_value, ord)), ''))],
       NULL::text,
       NULL::text,
       NULL::text[], NULL::text[], NULL::text,
       NULL::text,
       NULL::text, NULL::text
FROM pg_catalog.pg_user_mappings um
WHERE ('pg_catalog.pg_foreign_server'::regclass, um.srvid) NOT IN (SELECT classid, objid FROM ext_member)
UNION ALL
SELECT 'pg_catalog.pg_class'::regclass::oid, c.oid,
       'foreign table', n.nspname::text, c.relname::text,
       'pre-data',
       ARRAY[pg_catalog.format(E'CREATE FOREIGN TABLE %I.%I (%s)%s SERVER %I%s', n.nspname, c.relname,
         COALESCE((SELECT E'\n    ' || pg_catalog.string_agg(pg_catalog.concat_ws(' ',
                    pg_catalog.quote_ident(a.attname),
                    pg_catalog.format_type(a.atttypid, a.atttypmod),
                    -- PG 14+; only CREATE can set it (ALTER … SET COMPRESSION refuses foreign tables)
                    CASE pg_catalog.to_jsonb(a) ->> 'attcompression'
                      WHEN 'p' THEN 'COMPRESSION pglz' WHEN 'l' THEN 'COMPRESSION lz4' END,
                    (SELECT 'OPTIONS (' || pg_catalog.string_agg(pg_catalog.quote_ident(o.option_name) || ' '
                                                                 || pg_catalog.quote_literal(o.option_value), ', '
                                                                 ORDER BY o.ord) || ')'
                     FROM pg_catalog.pg_options_to_table(a.attfdwoptions)
                          WITH ORDINALITY AS o(option_name, option_value, ord)),
                    CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN
                      (SELECT pg_catalog.format('COLLATE %I.%I', cn.nspname, co.collname)
                       FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
                       WHERE co.oid = a.attcollation) END,
                    CASE WHEN a.attgenerated = 's' THEN
                           'GENERATED ALWAYS AS (' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) || ') STORED'
                         WHEN a.attgenerated = 'v' THEN
                           'GENERATED ALWAYS AS (' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) || ') VIRTUAL'
                         WHEN ad.adbin IS NOT NULL THEN
                           'DEFAULT ' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) END,
                    -- PG 18 keeps NOT NULL as a named constraint: keep its name
                    (SELECT pg_catalog.format('CONSTRAINT %I NOT NULL', nn.conname)
                     FROM pg_catalog.pg_constraint nn
                     WHERE nn.conrelid = c.oid AND nn.contype = 'n' AND nn.conkey[1] = a.attnum
                     LIMIT 1),
                    CASE WHEN a.attnotnull AND NOT EXISTS (
                           SELECT 1 FROM pg_catalog.pg_constraint nn
                           WHERE nn.conrelid = c.oid AND nn.contype = 'n' AND nn.conkey[1] = a.attnum)
                         THEN 'NOT NULL' END),
                    E',\n    ' ORDER BY a.attnum) || E'\n'
                   FROM pg_catalog.pg_attribute a
                   JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
                   LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                     AND (a.attislocal OR c.relispartition)), ''),
         CASE WHEN NOT c.relispartition AND EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid)
              THEN (SELECT ' INHERITS (' || pg_catalog.string_agg(pg_catalog.format('%I.%I', pn.nspname, p.relname),
                                                                   ', ' ORDER BY i.inhseqno) || ')'
                    FROM pg_catalog.pg_inherits i
                    JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
                    JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
                    WHERE i.inhrelid = c.oid)
              ELSE '' END,
         srv.srvname,
         COALESCE((SELECT ' OPTIONS (' || pg_catalog.string_agg(pg_catalog.quote_ident(o.option_name) || ' '
                                                                || pg_catalog.quote_literal(o.option_value), ', '
                                                                ORDER BY o.ord) || ')'
                   FROM pg_catalog.pg_options_to_table(ft.ftoptions)
                        WITH ORDINALITY AS o(option_name, option_value, ord)), ''))]
       || ARRAY(SELECT pg_catalog.format('ALTER FOREIGN TABLE %I.%I ADD CONSTRAINT %I %s', n.nspname, c.relname,
                                         con.conname, pg_catalog.pg_get_constraintdef(con.oid))
                FROM pg_catalog.pg_constraint con
                WHERE con.conrelid = c.oid AND con.contype = 'c' AND con.conislocal
                ORDER BY con.conname)
       || ARRAY(SELECT s.stmt
                FROM pg_catalog.pg_attribute a
                JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
                LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                CROSS JOIN LATERAL (VALUES
                  -- a column only inherited is not in the CREATE: its own options, default
                  -- and NOT NULL (where no parent has one) are set here
                  (-2, CASE WHEN NOT a.attislocal AND NOT c.relispartition AND a.attfdwoptions IS NOT NULL THEN
                        (SELECT pg_catalog.format('ALTER FOREIGN TABLE ONLY %I.%I ALTER COLUMN %I OPTIONS (%s)',
                                  n.nspname, c.relname, a.attname,
                                  pg_catalog.string_agg(pg_catalog.quote_ident(o.option_name) || ' '
                                                        || pg_catalog.quote_literal(o.option_value), ', '
                                                        ORDER BY o.ord))
                         FROM pg_catalog.pg_options_to_table(a.attfdwoptions)
                              WITH ORDINALITY AS o(option_name, option_value, ord)) END),
                  (-1, CASE WHEN NOT a.attislocal AND NOT c.relispartition AND ad.adbin IS NOT NULL
                             AND a.attgenerated = '' THEN
                        pg_catalog.format('ALTER FOREIGN TABLE ONLY %I.%I ALTER COLUMN %I SET DEFAULT %s',
                          n.nspname, c.relname, a.attname, pg_catalog.pg_get_expr(ad.adbin, ad.adrelid)) END),
                  (0, CASE WHEN NOT a.attislocal AND NOT c.relispartition AND a.attnotnull
                            AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i
                                            JOIN pg_catalog.pg_attribute pa ON pa.attrelid = i.inhparent
                                            WHERE i.inhrelid = c.oid AND pa.attname = a.attname AND pa.attnotnull) THEN
                        pg_catalog.format('ALTER FOREIGN TABLE ONLY %I.%I ALTER COLUMN %I SET NOT NULL',
                          n.nspname, c.relname, a.attname) END),
                  (1, CASE WHEN a.attstorage <> t.typstorage THEN
                        pg_catalog.format('ALTER FOREIGN TABLE ONLY %I.%I ALTER COLUMN %I SET STORAGE %s',
                          n.nspname, c.relname, a.attname,
                          CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL'
                                            WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END) END),
                  -- -1 before PG 17, NULL from 17 on: the default
                  (2, CASE WHEN a.attstattarget::int4 >= 0 THEN
                        pg_catalog.format('ALTER FOREIGN TABLE ONLY %I.%I ALTER COLUMN %I SET STATISTICS %s',
                          n.nspname, c.relname, a.attname, a.attstattarget) END),
                  (3, CASE WHEN a.attoptions IS NOT NULL THEN
                        pg_catalog.format('ALTER FOREIGN TABLE ONLY %I.%I ALTER COLUMN %I SET (%s)',
                          n.nspname, c.relname, a.attname,
                          pg_catalog.array_to_string(a.attoptions, ', ')) END)) AS s(ord, stmt)
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND s.stmt IS NOT NULL
                ORDER BY a.attnum, s.ord)
       || ARRAY(SELECT pg_catalog.format('ALTER TABLE ONLY %I.%I ATTACH PARTITION %I.%I %s',
                                         pn.nspname, p.relname, n.nspname, c.relname,
                                         pg_catalog.pg_get_expr(c.relpartbound, c.oid))
                FROM pg_catalog.pg_inherits i
                JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
                JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
                WHERE i.inhrelid = c.oid AND c.relispartition)
       -- column privileges (the table's own ACL goes through the acl columns); granted
       -- before the owner changes, so the owner's grants follow it as grantor
       || ARRAY(SELECT pg_catalog.format('GRANT %s ON TABLE %I.%I TO %s%s',
                                         pg_catalog.string_agg(pg_catalog.format('%s (%I)', x.privilege_type, a.attname),
                                                               ', ' ORDER BY x.privilege_type),
                                         n.nspname, c.relname,
                                         CASE WHEN x.grantee = 0 THEN 'PUBLIC'
                                              ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(x.grantee)) END,
                                         CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
                FROM pg_catalog.pg_attribute a
                CROSS JOIN LATERAL pg_catalog.aclexplode(a.attacl) AS x
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL
                GROUP BY a.attnum, a.attname, x.grantee, x.is_grantable
                ORDER BY a.attnum, x.grantee, x.is_grantable)
       || ARRAY(SELECT pg_catalog.format('COMMENT ON COLUMN %I.%I.%I IS %L', n.nspname, c.relname, a.attname,
                                         pg_catalog.col_description(c.oid, a.attnum))
                FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                  AND pg_catalog.col_description(c.oid, a.attnum) IS NOT NULL
                ORDER BY a.attnum)
       || ARRAY(SELECT pg_catalog.format('COMMENT ON CONSTRAINT %I ON %I.%I IS %L', con.conname, n.nspname,
                                         c.relname, pg_catalog.obj_description(con.oid, 'pg_constraint'))
                FROM pg_catalog.pg_constraint con
                WHERE con.conrelid = c.oid AND con.conislocal
                  AND pg_catalog.obj_description(con.oid, 'pg_constraint') IS NOT NULL
                ORDER BY con.conname),
       pg_catalog.format('FOREIGN TABLE %I.%I', n.nspname, c.relname),
       pg_catalog.pg_get_userbyid(c.relowner)::text,
       c.relacl::text[],
       pg_catalog.acldefault('r', c.relowner)::text[],
       pg_catalog.format('TABLE %I.%I', n.nspname, c.relname),
       pg_catalog.obj_description(c.oid, 'pg_class'),
       NULL::text, NULL::text
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_foreign_table ft ON ft.ftrelid = c.oid
JOIN pg_catalog.pg_foreign_server srv ON srv.oid = ft.ftserver
WHERE c.relkind = 'f'
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND ('pg_catalog.pg_class'::regclass, c.oid) NOT IN (SELECT classid, objid FROM ext_member)
