//! The version matrix across versions (issue #3): a backup taken from one server
//! version restores into another. The servers come from `PGBUNKER_PG_BIN_OLD` and
//! `PGBUNKER_PG_BIN_NEW` (`scripts/fetch-postgres` installs them; `.ci/run` sets both),
//! and both databases are judged by one pg_dump, the newer server's
//! (`PGBUNKER_PG_DUMP`). Without the variables the test fails with a hint: it never
//! skips.

use crate::support::{all_rows, ok, sequence_values, World};
use crate::torture::torture_db;

/// A PostgreSQL 13 and a PostgreSQL 18 cluster.
async fn servers() -> (World, World) {
    let old = World::start_version("PGBUNKER_PG_BIN_OLD");
    let new = World::start_version("PGBUNKER_PG_BIN_NEW");
    let (vo, vn) = (old.server_version().await, new.server_version().await);
    assert!(
        vo / 10000 == 13 && vn / 10000 == 18,
        "PGBUNKER_PG_BIN_OLD must be a PostgreSQL 13 server and PGBUNKER_PG_BIN_NEW a 18 \
         one; they are {vo} and {vn}"
    );
    (old, new)
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_on_13_restores_on_18() {
    let (old, new) = servers().await;
    crate::roundtrip::heart_round_trip(&old, &new).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_torture_fixture_backed_up_on_13_restores_on_18() {
    let (old, new) = servers().await;
    torture_db(&old, "torture").await;
    let repo = old.init_repo("repo");
    ok(old.backup(&repo, "torture", &["--skip-large-objects"]));
    // Roles belong to the cluster, not to a backup.
    let dst = new.empty_db("restored").await;
    dst.connect()
        .await
        .unwrap()
        .batch_execute("CREATE ROLE torture_owner; CREATE ROLE torture_reader")
        .await
        .unwrap();
    ok(new.restore(&repo, "latest", "restored"));
    // The schemas are not compared: pg_dump prints what each server's own
    // pg_get_viewdef and catalog say, and 13 and 18 differ there for any restore
    // (pg_restore's too): view column qualification, procedure argument modes,
    // NOT NULL constraints that 18 adds to adopted children. Every value must match.
    let (src, restored) = (old.pg.conn("torture"), new.pg.conn("restored"));
    let (ra, rb) = (all_rows(&src).await, all_rows(&restored).await);
    assert_eq!(ra.len(), rb.len());
    for ((ta, rows_a), (tb, rows_b)) in ra.iter().zip(rb.iter()) {
        assert_eq!(ta, tb);
        assert!(rows_a == rows_b, "rows of {ta} differ between 13 and 18");
    }
    assert_eq!(
        sequence_values(&src).await,
        sequence_values(&restored).await
    );
}

/// A `--create` restore that fails drops the database it made, so the same command can
/// run again: here a range type from 18, whose multirange name 13 does not know.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_create_leaves_no_database_behind() {
    let (old, new) = servers().await;
    new.empty_db("ranges").await;
    crate::support::run_sql(
        &new,
        "ranges",
        "CREATE TYPE public.span AS RANGE (subtype = int4); \
         CREATE TABLE public.slots (id int PRIMARY KEY, s public.span);",
    )
    .await;
    let repo = new.init_repo("repo");
    ok(new.backup(&repo, "ranges", &[]));
    // Without owners and grants: 13 lacks pg_database_owner, which owns `public` from 14
    // on and grants on it.
    let failed = old.restore_with(
        &repo,
        "latest",
        "copy",
        &["--create", "--no-owner", "--no-privileges"],
    );
    assert_eq!(
        failed.status.code(),
        Some(4),
        "{}",
        crate::support::stderr(&failed)
    );
    assert!(
        crate::support::stderr(&failed).contains("multirange_type_name"),
        "{}",
        crate::support::stderr(&failed)
    );
    let left: i64 = old
        .pg
        .conn("postgres")
        .connect()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = 'copy'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "the database --create made is gone");
}

/// PostgreSQL 18 takes the planner statistics a backup carries instead of running
/// ANALYZE (pg_dump 18's `--statistics`): the restored table plans like the source at
/// once. Here from 13, whose statistics 18 still reads. A table under 1 MiB is left
/// to ANALYZE, which reads it whole faster.
#[tokio::test(flavor = "multi_thread")]
async fn planner_statistics_travel_from_13_to_18_instead_of_analyze() {
    let (old, new) = servers().await;
    old.empty_db("stats").await;
    crate::support::run_sql(
        &old,
        "stats",
        "CREATE TABLE public.big (id int PRIMARY KEY, kind text, at date); \
         INSERT INTO public.big SELECT i, 'k' || (i % 7), DATE '2024-01-01' + (i % 300) \
           FROM generate_series(1, 40000) i; \
         CREATE TABLE public.small (id int PRIMARY KEY); \
         INSERT INTO public.small SELECT generate_series(1, 10); \
         ANALYZE public.big; ANALYZE public.small;",
    )
    .await;
    let repo = old.init_repo("repo");
    ok(old.backup(&repo, "stats", &[]));
    new.empty_db("restored").await;
    ok(new.restore(&repo, "latest", "restored"));

    let stats = "SELECT c.relpages::text, c.reltuples::text, \
                 (SELECT string_agg(s.attname || ':' || s.null_frac || ':' || s.n_distinct \
                    || ':' || COALESCE(s.most_common_vals::text, '') || ':' \
                    || COALESCE(s.histogram_bounds::text, ''), ' | ' ORDER BY s.attname) \
                  FROM pg_stats s WHERE s.schemaname = 'public' AND s.tablename = c.relname) \
                 FROM pg_class c WHERE c.oid = 'public.big'::regclass";
    let analyzed = "SELECT relname::text, analyze_count, autoanalyze_count \
                    FROM pg_stat_user_tables ORDER BY relname";
    let (src, dst) = (
        old.pg.conn("stats").connect().await.unwrap(),
        new.pg.conn("restored").connect().await.unwrap(),
    );
    let counts: Vec<(String, i64, i64)> = dst
        .query(analyzed, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(counts[0].0, "big");
    assert_eq!(
        counts[0].1, 0,
        "big was analyzed instead of given its statistics"
    );
    assert_eq!(
        (counts[1].0.as_str(), counts[1].1),
        ("small", 1),
        "{counts:?}"
    );
    // Autovacuum may analyze the new table on its own meanwhile; until it does, the
    // statistics are the source's, value for value.
    if counts[0].2 == 0 {
        let row =
            |r: tokio_postgres::Row| -> (String, String, String) { (r.get(0), r.get(1), r.get(2)) };
        let want = row(src.query_one(stats, &[]).await.unwrap());
        let got = row(dst.query_one(stats, &[]).await.unwrap());
        assert!(want.2.contains("at:0:"), "{want:?}");
        assert_eq!(got, want);
    }
    old.assert_same_as("stats", &new, "restored").await;
}
