//! The object census: every kind of catalog object counted in the source and in the
//! restored database, so that a kind the restore drops fails a test by its name, even
//! a kind no fixture has been written for yet. And the kinds pgbunker once dropped
//! without a word, each carried now.

use std::collections::BTreeMap;

use pgbunker::pg::ConnSpec;

use crate::support::{ok, run_sql, stderr, World};

/// Counts, by name: the rows of every per-database catalog that has OIDs (objects the
/// database made: OID ≥ 16384, as initdb's own stop below), `pg_class` by relkind
/// (without TOAST tables, which follow from the columns), every ACL entry of every
/// catalog, comments, security labels and `pg_shdepend` entries (owners, grants and
/// policies naming roles) by catalog and kind.
pub async fn census(conn: &ConnSpec) -> BTreeMap<String, i64> {
    let c = conn.connect().await.expect("connect");
    let catalogs = c
        .query(
            "SELECT c.relname::text, \
                    EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid \
                            AND a.attname = 'oid' AND a.attnum > 0) AS has_oid, \
                    ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid \
                          AND a.atttypid = 'aclitem[]'::regtype AND a.attnum > 0) AS acls \
             FROM pg_class c \
             WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'r' \
               AND NOT c.relisshared ORDER BY 1",
            &[],
        )
        .await
        .expect("list catalogs");
    let mut out = BTreeMap::new();
    for r in catalogs {
        let name: String = r.get(0);
        let mut counts = Vec::new();
        if r.get::<_, bool>(1) && name != "pg_class" {
            let skip_temp = if name == "pg_namespace" {
                " AND nspname !~ '^pg_(toast_)?temp_'"
            } else {
                ""
            };
            counts.push((
                name.clone(),
                format!("SELECT count(*) FROM pg_catalog.{name} WHERE oid >= 16384{skip_temp}"),
            ));
        }
        for acl in r.get::<_, Vec<String>>(2) {
            counts.push((
                format!("{name}.{acl} entries"),
                format!(
                    "SELECT COALESCE(sum(cardinality({acl})), 0)::bigint FROM pg_catalog.{name}"
                ),
            ));
        }
        for (key, sql) in counts {
            let n: i64 = c.query_one(&sql, &[]).await.expect(&sql).get(0);
            out.insert(key, n);
        }
    }
    let grouped = [
        "SELECT 'pg_class relkind ' || relkind::text, count(*) FROM pg_catalog.pg_class \
         WHERE oid >= 16384 AND relkind <> 't' AND relnamespace <> 'pg_toast'::regnamespace \
         GROUP BY relkind",
        "SELECT 'comments on ' || classoid::regclass, count(*) FROM pg_catalog.pg_description \
         GROUP BY classoid",
        "SELECT 'security labels on ' || classoid::regclass, count(*) FROM pg_catalog.pg_seclabel \
         GROUP BY classoid",
        "SELECT 'shared dependencies ' || classid::regclass || ' ' || deptype::text, count(*) \
         FROM pg_catalog.pg_shdepend \
         WHERE dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) \
         GROUP BY classid, deptype",
        "SELECT 'initial privileges changed', count(*) FROM pg_catalog.pg_init_privs",
    ];
    for sql in grouped {
        for r in c.query(sql, &[]).await.expect(sql) {
            out.insert(r.get::<_, String>(0), r.get::<_, i64>(1));
        }
    }
    out
}

/// The kinds whose counts differ between two censuses, as `kind: a → b`.
pub fn census_differences(a: &BTreeMap<String, i64>, b: &BTreeMap<String, i64>) -> Vec<String> {
    let kinds: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    kinds
        .into_iter()
        .filter_map(|k| {
            let (x, y) = (a.get(k).unwrap_or(&0), b.get(k).unwrap_or(&0));
            (x != y).then(|| format!("{k}: {x} → {y}"))
        })
        .collect()
}

/// Asserts that the census of `b` equals that of `a`, naming every kind that differs.
pub async fn assert_same_census(a: &ConnSpec, b: &ConnSpec) {
    let diff = census_differences(&census(a).await, &census(b).await);
    assert!(
        diff.is_empty(),
        "object census differs:\n{}",
        diff.join("\n")
    );
}

/// What earlier versions restored without it, silently.
const ONCE_DROPPED: &str = r#"
CREATE FUNCTION public.int_to_pl(internal) RETURNS internal
    LANGUAGE internal IMMUTABLE STRICT AS 'int4recv';
CREATE FUNCTION public.pl_to_int(internal) RETURNS integer
    LANGUAGE internal IMMUTABLE STRICT AS 'int4recv';
CREATE TRANSFORM FOR integer LANGUAGE plpgsql (FROM SQL WITH FUNCTION public.int_to_pl(internal),
    TO SQL WITH FUNCTION public.pl_to_int(internal));
COMMENT ON TRANSFORM FOR integer LANGUAGE plpgsql IS 'a transform';
CREATE TABLE public.src (id int PRIMARY KEY, body text);
INSERT INTO public.src VALUES (1, 'x'), (2, NULL);
COMMENT ON INDEX public.src_pkey IS 'the key''s own index';
CREATE TABLE public.child (id int REFERENCES public.src (id));
INSERT INTO public.child VALUES (1), (NULL);
CREATE MATERIALIZED VIEW public.mv AS SELECT id, body FROM public.src;
ALTER MATERIALIZED VIEW public.mv ALTER COLUMN body SET STORAGE EXTERNAL;
ALTER MATERIALIZED VIEW public.mv ALTER COLUMN id SET STATISTICS 500;
ALTER MATERIALIZED VIEW public.mv ALTER COLUMN id SET (n_distinct = 100);
CREATE TABLE public.parted (id int, v text) PARTITION BY RANGE (id);
CREATE TABLE public.parted_1 PARTITION OF public.parted FOR VALUES FROM (0) TO (10);
CREATE TABLE public.parted_2 PARTITION OF public.parted FOR VALUES FROM (10) TO (20);
CREATE FUNCTION public.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER tr BEFORE INSERT ON public.parted FOR EACH ROW EXECUTE FUNCTION public.noop();
ALTER TABLE public.parted_2 DISABLE TRIGGER tr;
INSERT INTO public.parted VALUES (1, 'a'), (15, 'b');
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'census_reader') THEN
    CREATE ROLE census_reader NOLOGIN;
  END IF;
END $$;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_reload_conf() TO census_reader;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_sleep(double precision) FROM PUBLIC;
GRANT SELECT ON pg_catalog.pg_stat_activity TO census_reader;
GRANT SELECT (query) ON pg_catalog.pg_stat_activity TO census_reader;
REVOKE USAGE ON LANGUAGE plpgsql FROM PUBLIC;
"#;

/// On PostgreSQL 14 and later: column compression.
const ONCE_DROPPED_14: &str = r#"
ALTER MATERIALIZED VIEW public.mv ALTER COLUMN body SET COMPRESSION pglz;
"#;

/// On PostgreSQL 15 and later: sequences can be unlogged on their own.
const ONCE_DROPPED_15: &str = r#"
CREATE UNLOGGED TABLE public.ul (id int GENERATED ALWAYS AS IDENTITY, v text);
ALTER SEQUENCE public.ul_id_seq SET LOGGED;
CREATE TABLE public.lg (id int GENERATED BY DEFAULT AS IDENTITY, v text);
ALTER SEQUENCE public.lg_id_seq SET UNLOGGED;
INSERT INTO public.lg (v) VALUES ('one'), ('two');
"#;

#[tokio::test(flavor = "multi_thread")]
async fn kinds_once_dropped_silently_round_trip_and_the_census_agrees() {
    let w = World::start();
    let src = w.empty_db("loss").await;
    run_sql(&w, "loss", ONCE_DROPPED).await;
    if w.server_version().await >= 140000 {
        run_sql(&w, "loss", ONCE_DROPPED_14).await;
    }
    if w.server_version().await >= 150000 {
        run_sql(&w, "loss", ONCE_DROPPED_15).await;
    }
    let repo = w.init_repo("repo");
    ok(w.backup(&repo, "loss", &[]));
    let dst = w.empty_db("restored").await;
    let restored = w.restore(&repo, "latest", "restored");
    assert!(restored.status.success(), "{}", stderr(&restored));
    w.assert_same("loss", "restored").await;
    assert_same_census(&src, &dst).await;
    // The census sees what pg_dump's schema text would not name: a kind missing.
    let c = dst.connect().await.unwrap();
    c.batch_execute("DROP TRANSFORM FOR integer LANGUAGE plpgsql")
        .await
        .unwrap();
    let diff = census_differences(&census(&src).await, &census(&dst).await);
    assert!(
        diff.iter().any(|d| d.starts_with("pg_transform: 1 → 0")),
        "{diff:?}"
    );
}

/// What this version does not carry is named at backup time, in the warning and in
/// `--json`, with what happens to it.
#[tokio::test(flavor = "multi_thread")]
async fn what_is_not_carried_is_named() {
    let w = World::start();
    if w.server_version().await < 150000 {
        return; // in-place tablespaces, for a test without a directory of its own
    }
    w.empty_db("elsewhere").await;
    // One statement a batch: CREATE TABLESPACE refuses to run in a transaction.
    let c = w.pg.conn("elsewhere").connect().await.unwrap();
    for sql in [
        "SET allow_in_place_tablespaces = on",
        "CREATE TABLESPACE census_space LOCATION ''",
        "CREATE TABLE public.placed (id int PRIMARY KEY) TABLESPACE census_space",
        "CREATE SUBSCRIPTION feed CONNECTION 'dbname=nowhere' PUBLICATION pub \
         WITH (connect = false)",
    ] {
        c.batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }
    let repo = w.init_repo("repo");
    let out = w.backup(&repo, "elsewhere", &["--json"]);
    let report: serde_json::Value = serde_json::from_str(&ok(out)).unwrap();
    let gaps: Vec<String> = serde_json::from_value(report["not_covered"].clone()).unwrap();
    assert_eq!(
        gaps,
        [
            "placement in tablespace census_space (restored into the default tablespace): \
             public.placed",
            "subscription (recreate it after the restore): feed",
        ]
    );
    let plain = stderr(&w.backup(&repo, "elsewhere", &[]));
    assert!(
        plain.contains("not in this backup") && plain.contains("census_space"),
        "{plain}"
    );
}
