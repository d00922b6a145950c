-- Text search parsers, templates, dictionaries and configurations, as pg_dump's
-- dumpTSParser, dumpTSTemplate, dumpTSDictionary and dumpTSConfig write them. Parsers
-- and templates have no owner. A configuration is created bare (PARSER only, so no
-- mappings) and then gets one ADD MAPPING per token type with its dictionaries in
-- order: that also reproduces a configuration made with COPY = …, whose mappings are
-- ordinary rows once created.
SELECT 'pg_catalog.pg_ts_parser'::regclass::oid AS classid, p.oid AS objid,
       'text search parser' AS kind, n.nspname::text AS schema, p.prsname::text AS name,
       'pre-data' AS section,
       ARRAY[pg_catalog.format('CREATE TEXT SEARCH PARSER %I.%I (%s)', n.nspname, p.prsname,
         pg_catalog.concat_ws(', ',
           'START = ' || p.prsstart::text,
           'GETTOKEN = ' || p.prstoken::text,
           'END = ' || p.prsend::text,
           CASE WHEN p.prsheadline <> 0 THEN 'HEADLINE = ' || p.prsheadline::text END,
           'LEXTYPES = ' || p.prslextype::text))] AS "create",
       pg_catalog.format('TEXT SEARCH PARSER %I.%I', n.nspname, p.prsname) AS target,
       NULL::text AS owner,
       NULL::text[] AS acl, NULL::text[] AS acl_default, NULL::text AS acl_target,
       pg_catalog.obj_description(p.oid, 'pg_ts_parser') AS comment,
       NULL::text AS table_schema, NULL::text AS table_name
FROM pg_catalog.pg_ts_parser p
JOIN pg_catalog.pg_namespace n ON n.oid = p.prsnamespace
WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_ts_parser'::regclass
                    AND d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT 'pg_catalog.pg_ts_template'::regclass::oid, t.oid,
       'text search template', n.nspname::text, t.tmplname::text,
       'pre-data',
       ARRAY[pg_catalog.format('CREATE TEXT SEARCH TEMPLATE %I.%I (%s)', n.nspname, t.tmplname,
         pg_catalog.concat_ws(', ',
           CASE WHEN t.tmplinit <> 0 THEN 'INIT = ' || t.tmplinit::text END,
           'LEXIZE = ' || t.tmpllexize::text))],
       pg_catalog.format('TEXT SEARCH TEMPLATE %I.%I', n.nspname, t.tmplname),
       NULL::text,
       NULL::text[], NULL::text[], NULL::text,
       pg_catalog.obj_description(t.oid, 'pg_ts_template'),
       NULL::text, NULL::text
FROM pg_catalog.pg_ts_template t
JOIN pg_catalog.pg_namespace n ON n.oid = t.tmplnamespace
WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_ts_template'::regclass
                    AND d.objid = t.oid AND d.deptype = 'e')
UNION ALL
-- dictinitoption is already option = value, … text, written as pg_dump writes it
SELECT 'pg_catalog.pg_ts_dict'::regclass::oid, d.oid,
       'text search dictionary', n.nspname::text, d.dictname::text,
       'pre-data',
       ARRAY[pg_catalog.format('CREATE TEXT SEARCH DICTIONARY %I.%I (TEMPLATE = %I.%I%s)',
         n.nspname, d.dictname, tn.nspname, t.tmplname,
         CASE WHEN d.dictinitoption IS NOT NULL THEN ', ' || d.dictinitoption ELSE '' END)],
       pg_catalog.format('TEXT SEARCH DICTIONARY %I.%I', n.nspname, d.dictname),
       pg_catalog.pg_get_userbyid(d.dictowner)::text,
       NULL::text[], NULL::text[], NULL::text,
       pg_catalog.obj_description(d.oid, 'pg_ts_dict'),
       NULL::text, NULL::text
FROM pg_catalog.pg_ts_dict d
JOIN pg_catalog.pg_namespace n ON n.oid = d.dictnamespace
JOIN pg_catalog.pg_ts_template t ON t.oid = d.dicttemplate
JOIN pg_catalog.pg_namespace tn ON tn.oid = t.tmplnamespace
WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend dd
                  WHERE dd.classid = 'pg_catalog.pg_ts_dict'::regclass
                    AND dd.objid = d.oid AND dd.deptype = 'e')
UNION ALL
SELECT 'pg_catalog.pg_ts_config'::regclass::oid, c.oid,
       'text search configuration', n.nspname::text, c.cfgname::text,
       'pre-data',
       ARRAY[pg_catalog.format('CREATE TEXT SEARCH CONFIGURATION %I.%I (PARSER = %I.%I)',
                               n.nspname, c.cfgname, pn.nspname, p.prsname)]
       || ARRAY(SELECT pg_catalog.format('ALTER TEXT SEARCH CONFIGURATION %I.%I ADD MAPPING FOR %I WITH %s',
                                         n.nspname, c.cfgname, tt.alias,
                                         pg_catalog.string_agg(m.mapdict::regdictionary::text, ', '
                                                               ORDER BY m.mapseqno))
                FROM pg_catalog.pg_ts_config_map m
                JOIN pg_catalog.ts_token_type(c.cfgparser) AS tt ON tt.tokid = m.maptokentype
                WHERE m.mapcfg = c.oid
                GROUP BY m.maptokentype, tt.alias
                ORDER BY m.maptokentype),
       pg_catalog.format('TEXT SEARCH CONFIGURATION %I.%I', n.nspname, c.cfgname),
       pg_catalog.pg_get_userbyid(c.cfgowner)::text,
       NULL::text[], NULL::text[], NULL::text,
       pg_catalog.obj_description(c.oid, 'pg_ts_config'),
       NULL::text, NULL::text
FROM pg_catalog.pg_ts_config c
JOIN pg_catalog.pg_namespace n ON n.oid = c.cfgnamespace
JOIN pg_catalog.pg_ts_parser p ON p.oid = c.cfgparser
JOIN pg_catalog.pg_namespace pn ON pn.oid = p.prsnamespace
WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_ts_config'::regclass
                    AND d.objid = c.oid AND d.deptype = 'e')
