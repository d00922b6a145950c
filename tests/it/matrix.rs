//! The version matrix across versions (issue #3): a backup taken from one server
//! version restores into another. The servers come from `PGBUNKER_PG_BIN_OLD` and
//! `PGBUNKER_PG_BIN_NEW` (`scripts/fetch-postgres` installs them; `.ci/run` sets both),
//! and both databases are judged by one pg_dump, the newer server's
//! (`PGBUNKER_PG_DUMP`). Without the variables the test fails with a hint: it never
//! skips.

use crate::support::{all_rows, ok, sequence_values, World};

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

    let src = old.fixture_db("heart", 1).await;
    // Sequence state that differs from "as generated", as in the same-version round trip.
    src.connect()
        .await
        .unwrap()
        .batch_execute("SELECT nextval('public.patients_id_seq') FROM generate_series(1, 3)")
        .await
        .ok();
    let repo = old.init_repo("repo");
    let out = ok(old.backup(&repo, "heart", &["--jobs", "4"]));
    assert!(out.contains("Backup ") && out.contains("complete"), "{out}");

    let dst = new.empty_db("restored").await;
    let out = ok(new.restore_with(&repo, "latest", "restored", &["--jobs", "4"]));
    assert!(out.contains("Restored backup"), "{out}");

    // Rows and sequences first, so a schema difference (checked next, by the oracle)
    // does not hide whether the data came across.
    let (ra, rb) = (all_rows(&src).await, all_rows(&dst).await);
    assert!(ra.len() >= 10, "the fixture has at least ten tables");
    assert!(
        ra == rb,
        "the rows restored on {vn} differ from the source on {vo}"
    );
    assert_eq!(sequence_values(&src).await, sequence_values(&dst).await);
    old.assert_same_as("heart", &new, "restored").await;
}
