-- Operator families and operator classes, as pg_dump's dumpOpfamily and dumpOpclass
-- write them. A member (pg_amop / pg_amproc row) belongs to the class that pg_depend
-- ties it to ('i' on pg_opclass): CREATE OPERATOR CLASS lists it. The others are tied
-- to the family ('a' on pg_opfamily, from ALTER OPERATOR FAMILY … ADD) and are added by
-- the family's own statements. Every family is dumped, also the one CREATE OPERATOR
-- CLASS made implicitly, and every class names its family (FAMILY …), as pg_dump does:
-- the class then joins the family instead of making one.
WITH members AS (
  SELECT d.refclassid, d.refobjid,
         1 AS grp, ao.amopstrategy::int AS num,
         pg_catalog.format('OPERATOR %s %s', ao.amopstrategy, ao.amopopr::regoperator::text)
         || COALESCE((SELECT pg_catalog.format(' FOR ORDER BY %I.%I', sn.nspname, sf.opfname)
                      FROM pg_catalog.pg_opfamily sf JOIN pg_catalog.pg_namespace sn ON sn.oid = sf.opfnamespace
                      WHERE sf.oid = ao.amopsortfamily), '') AS item
  FROM pg_catalog.pg_amop ao
  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_amop'::regclass AND d.objid = ao.oid
  WHERE d.refclassid IN ('pg_catalog.pg_opclass'::regclass, 'pg_catalog.pg_opfamily'::regclass)
    AND (d.refclassid <> 'pg_catalog.pg_opfamily'::regclass OR d.refobjid = ao.amopfamily)
  UNION ALL
  SELECT d.refclassid, d.refobjid,
         2, ap.amprocnum::int,
         pg_catalog.format('FUNCTION %s (%s, %s) %s', ap.amprocnum,
                           pg_catalog.format_type(ap.amproclefttype, NULL),
                           pg_catalog.format_type(ap.amprocrighttype, NULL),
                           ap.amproc::regprocedure::text)
  FROM pg_catalog.pg_amproc ap
  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_amproc'::regclass AND d.objid = ap.oid
  WHERE d.refclassid IN ('pg_catalog.pg_opclass'::regclass, 'pg_catalog.pg_opfamily'::regclass)
)
SELECT 'pg_catalog.pg_opfamily'::regclass::oid AS classid, f.oid AS objid,
       'operator family' AS kind, n.nspname::text AS schema,
       f.opfname || ' USING ' || am.amname AS name,
       'pre-data' AS section,
       ARRAY[pg_catalog.format('CREATE OPERATOR FAMILY %I.%I USING %I', n.nspname, f.opfname, am.amname)]
       || COALESCE((SELECT ARRAY[pg_catalog.format('ALTER OPERATOR FAMILY %I.%I USING %I ADD %s',
                                                   n.nspname, f.opfname, am.amname,
                                                   pg_catalog.string_agg(m.item, ', ' ORDER BY m.grp, m.num, m.item))]
                    FROM members m
                    WHERE m.refclassid = 'pg_catalog.pg_opfamily'::regclass AND m.refobjid = f.oid
                    HAVING pg_catalog.count(*) > 0), '{}') AS "create",
       pg_catalog.format('OPERATOR FAMILY %I.%I USING %I', n.nspname, f.opfname, am.amname) AS target,
       pg_catalog.pg_get_userbyid(f.opfowner)::text AS owner,
       NULL::text[] AS acl, NULL::text[] AS acl_default, NULL::text AS acl_target,
       pg_catalog.obj_description(f.oid, 'pg_opfamily') AS comment,
       NULL::text AS table_schema, NULL::text AS table_name
FROM pg_catalog.pg_opfamily f
JOIN pg_catalog.pg_namespace n ON n.oid = f.opfnamespace
JOIN pg_catalog.pg_am am ON am.oid = f.opfmethod
WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_opfamily'::regclass
                    AND d.objid = f.oid AND d.deptype = 'e')
UNION ALL
SELECT 'pg_catalog.pg_opclass'::regclass::oid, c.oid,
       'operator class', n.nspname::text,
       c.opcname || ' USING ' || am.amname,
       'pre-data',
       ARRAY[pg_catalog.format('CREATE OPERATOR CLASS %I.%I %sFOR TYPE %s USING %I FAMILY %I.%I AS %s',
         n.nspname, c.opcname, CASE WHEN c.opcdefault THEN 'DEFAULT ' ELSE '' END,
         pg_catalog.format_type(c.opcintype, NULL), am.amname, fn.nspname, f.opfname,
         -- an empty list would be a syntax error: pg_dump then writes a no-op STORAGE
         COALESCE(NULLIF(pg_catalog.concat_ws(', ',
                    CASE WHEN c.opckeytype <> 0 THEN 'STORAGE ' || pg_catalog.format_type(c.opckeytype, NULL) END,
                    (SELECT pg_catalog.string_agg(m.item, ', ' ORDER BY m.grp, m.num, m.item)
                     FROM members m
                     WHERE m.refclassid = 'pg_catalog.pg_opclass'::regclass AND m.refobjid = c.oid)), ''),
                  'STORAGE ' || pg_catalog.format_type(c.opcintype, NULL)))],
       pg_catalog.format('OPERATOR CLASS %I.%I USING %I', n.nspname, c.opcname, am.amname),
       pg_catalog.pg_get_userbyid(c.opcowner)::text,
       NULL::text[], NULL::text[], NULL::text,
       pg_catalog.obj_description(c.oid, 'pg_opclass'),
       NULL::text, NULL::text
FROM pg_catalog.pg_opclass c
JOIN pg_catalog.pg_namespace n ON n.oid = c.opcnamespace
JOIN pg_catalog.pg_am am ON am.oid = c.opcmethod
JOIN pg_catalog.pg_opfamily f ON f.oid = c.opcfamily
JOIN pg_catalog.pg_namespace fn ON fn.oid = f.opfnamespace
WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_opclass'::regclass
                    AND d.objid = c.oid AND d.deptype = 'e')
