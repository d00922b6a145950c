-- Aggregates, with every option pg_dump's dumpAgg writes. regproc and format_type
-- print schema-qualified names (search_path is ''), so the output needs no care about
-- where the support functions live. An aggregate without arguments is `name(*)`;
-- ordered-set aggregates get `(direct ORDER BY aggregated)` from
-- pg_get_function_arguments. GRANT has no AGGREGATE form: privileges go through
-- `FUNCTION name(all argument types)`, as pg_dump does.
SELECT 'pg_catalog.pg_proc'::regclass::oid AS classid, p.oid AS objid,
       'aggregate' AS kind, n.nspname::text AS schema,
       p.proname || '(' || ident.args || ')' AS name,
       'pre-data' AS section,
       ARRAY[pg_catalog.format('CREATE AGGREGATE %I.%I(%s) (%s)', n.nspname, p.proname,
         CASE WHEN p.pronargs = 0 THEN '*' ELSE pg_catalog.pg_get_function_arguments(p.oid) END,
         pg_catalog.concat_ws(', ',
           'SFUNC = ' || a.aggtransfn::text,
           'STYPE = ' || pg_catalog.format_type(a.aggtranstype, NULL),
           CASE WHEN a.aggtransspace <> 0 THEN 'SSPACE = ' || a.aggtransspace END,
           CASE WHEN a.agginitval IS NOT NULL THEN 'INITCOND = ' || pg_catalog.quote_literal(a.agginitval) END,
           CASE WHEN a.aggfinalfn <> 0 THEN 'FINALFUNC = ' || a.aggfinalfn::text END,
           CASE WHEN a.aggfinalfn <> 0 AND a.aggfinalextra THEN 'FINALFUNC_EXTRA' END,
           CASE WHEN a.aggfinalfn <> 0 AND a.aggfinalmodify <> defmod.m
                THEN 'FINALFUNC_MODIFY = ' || CASE a.aggfinalmodify WHEN 'r' THEN 'READ_ONLY'
                                                   WHEN 's' THEN 'SHAREABLE' ELSE 'READ_WRITE' END END,
           CASE WHEN a.aggcombinefn <> 0 THEN 'COMBINEFUNC = ' || a.aggcombinefn::text END,
           CASE WHEN a.aggserialfn <> 0 THEN 'SERIALFUNC = ' || a.aggserialfn::text END,
           CASE WHEN a.aggdeserialfn <> 0 THEN 'DESERIALFUNC = ' || a.aggdeserialfn::text END,
           CASE WHEN a.aggmtransfn <> 0
                THEN pg_catalog.format('MSFUNC = %s, MINVFUNC = %s, MSTYPE = %s', a.aggmtransfn::text,
                                       a.aggminvtransfn::text, pg_catalog.format_type(a.aggmtranstype, NULL)) END,
           CASE WHEN a.aggmtransspace <> 0 THEN 'MSSPACE = ' || a.aggmtransspace END,
           CASE WHEN a.aggminitval IS NOT NULL THEN 'MINITCOND = ' || pg_catalog.quote_literal(a.aggminitval) END,
           CASE WHEN a.aggmfinalfn <> 0 THEN 'MFINALFUNC = ' || a.aggmfinalfn::text END,
           CASE WHEN a.aggmfinalfn <> 0 AND a.aggmfinalextra THEN 'MFINALFUNC_EXTRA' END,
           CASE WHEN a.aggmfinalfn <> 0 AND a.aggmfinalmodify <> defmod.m
                THEN 'MFINALFUNC_MODIFY = ' || CASE a.aggmfinalmodify WHEN 'r' THEN 'READ_ONLY'
                                                    WHEN 's' THEN 'SHAREABLE' ELSE 'READ_WRITE' END END,
           (SELECT pg_catalog.format('SORTOP = OPERATOR(%I.%s)', opn.nspname, op.oprname)
            FROM pg_catalog.pg_operator op JOIN pg_catalog.pg_namespace opn ON opn.oid = op.oprnamespace
            WHERE op.oid = a.aggsortop),
           CASE WHEN a.aggkind = 'h' THEN 'HYPOTHETICAL' END,
           CASE p.proparallel WHEN 's' THEN 'PARALLEL = safe' WHEN 'r' THEN 'PARALLEL = restricted' END))]
         AS "create",
       pg_catalog.format('AGGREGATE %I.%I(%s)', n.nspname, p.proname, ident.args) AS target,
       pg_catalog.pg_get_userbyid(p.proowner)::text AS owner,
       p.proacl::text[] AS acl,
       pg_catalog.acldefault('f', p.proowner)::text[] AS acl_default,
       pg_catalog.format('FUNCTION %I.%I(%s)', n.nspname, p.proname,
         (SELECT pg_catalog.string_agg(pg_catalog.format_type(t.typ, NULL), ', ' ORDER BY t.ord)
          FROM pg_catalog.unnest(p.proargtypes::oid[]) WITH ORDINALITY AS t(typ, ord))) AS acl_target,
       pg_catalog.obj_description(p.oid, 'pg_proc') AS comment,
       NULL::text AS table_schema, NULL::text AS table_name
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_aggregate a ON a.aggfnoid = p.oid
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
-- the FINALFUNC_MODIFY an aggregate of this kind gets when none is given
CROSS JOIN LATERAL (SELECT CASE a.aggkind WHEN 'n' THEN 'r' ELSE 'w' END::"char" AS m) AS defmod
CROSS JOIN LATERAL (SELECT CASE WHEN p.pronargs = 0 THEN '*'
                                ELSE pg_catalog.pg_get_function_identity_arguments(p.oid) END AS args) AS ident
WHERE p.prokind = 'a'
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_proc'::regclass
                    AND d.objid = p.oid AND d.deptype = 'e')
