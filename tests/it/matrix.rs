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
