//! The version matrix across versions (issue #3): a backup taken from one server
//! version restores into another. The servers come from `PGBUNKER_PG_BIN_OLD` and
//! `PGBUNKER_PG_BIN_NEW` (`scripts/fetch-postgres` installs them; `.ci/run` sets both),
//! and both databases are judged by one pg_dump, the newer server's
//! (`PGBUNKER_PG_DUMP`). Without the variables the test fails with a hint: it never
//! skips.

use crate::support::World;

#[tokio::test(flavor = "multi_thread")]
async fn backup_on_13_restores_on_18() {
    let old = World::start_version("PGBUNKER_PG_BIN_OLD");
    let new = World::start_version("PGBUNKER_PG_BIN_NEW");
    let (vo, vn) = (old.server_version().await, new.server_version().await);
    assert!(
        vo / 10000 == 13 && vn / 10000 == 18,
        "PGBUNKER_PG_BIN_OLD must be a PostgreSQL 13 server and PGBUNKER_PG_BIN_NEW a 18 \
         one; they are {vo} and {vn}"
    );

    crate::roundtrip::heart_round_trip(&old, &new).await;
}
