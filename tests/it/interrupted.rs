//! A run stopped by Ctrl-C says what it leaves behind for its own command, exits 130,
//! and leaves an audit record saying so (issue 24, item 3).

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

/// Whether a `COPY … FROM STDIN` into `db` is running: the restore is mid-load.
async fn loading(w: &World, db: &str) -> bool {
    let c = w.pg.conn("postgres").connect().await.expect("connect");
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = $1 AND query ILIKE 'COPY %FROM STDIN%' AND state = 'active'",
            &[&db],
        )
        .await
        .expect("pg_stat_activity")
        .get(0);
    n > 0
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_a_restore_says_what_the_target_holds_and_is_audited() {
    let w = World::start();
    w.fixture_db("heart", 4).await;
    let repo = w.init_repo("repo");
    ok(w.backup(&repo, "heart", &[]));
    w.empty_db("restored").await;

    let target = w.pg.url("restored");
    let child = pgbunker_command(
        &[
            "--no-progress",
            "restore",
            "--repo",
            &repo,
            "latest",
            "--target",
            &target,
            "--jobs",
            "1",
        ],
        &[("PGBUNKER_KEY", KEY)],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start the restore");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !loading(&w, "restored").await {
        assert!(
            Instant::now() < deadline,
            "the restore never started loading"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // SAFETY: signalling our own child process by pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted by SIGINT"), "{err}");
    assert!(
        err.contains("target database may hold some tables")
            && err.contains("without the primary keys, indexes"),
        "the restore's own wording: {err}"
    );
    assert!(
        err.contains("--clean --if-exists") && err.contains("--create"),
        "how to finish or clean: {err}"
    );
    assert!(
        !err.contains("incomplete") && !err.contains("nothing was committed"),
        "the backup's wording: {err}"
    );

    // The audit trail lists the interrupted run.
    let env = [("PGBUNKER_KEY", KEY)];
    let audit = json(&ok(pgbunker(
        &["--json", "audit", "--repo", &repo, "--operation", "restore"],
        &env,
    )));
    let records = audit["records"].as_array().expect("records");
    assert_eq!(records.len(), 1, "{audit}");
    let r = &records[0];
    assert_eq!(r["result"], "interrupted", "{r}");
    assert_eq!(r["exit_code"], 130, "{r}");
    assert!(
        r["error"]
            .as_str()
            .is_some_and(|e| e.contains("interrupted by SIGINT")),
        "{r}"
    );
    let text = ok(pgbunker(&["audit", "--repo", &repo], &env));
    assert!(
        text.lines()
            .any(|l| l.contains("restore") && l.contains("interrupted")),
        "{text}"
    );

    // The hint works: the same restore again with --clean --if-exists finishes it.
    ok(w.restore_with(&repo, "latest", "restored", &["--clean", "--if-exists"]));
    w.assert_same("heart", "restored").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_a_backup_keeps_the_backups_wording_and_is_audited() {
    let w = World::start();
    w.fixture_db("heart", 4).await;
    let repo = w.init_repo("repo");
    let child = pgbunker_command(
        &[
            "--no-progress",
            "backup",
            "--repo",
            &repo,
            "-j",
            "1",
            &w.pg.url("heart"),
        ],
        &[("PGBUNKER_KEY", KEY)],
    )
    .stderr(Stdio::piped())
    .spawn()
    .expect("start the backup");
    let deadline = Instant::now() + Duration::from_secs(120);
    let chunk_written = || !chunk_files(std::path::Path::new(&repo)).is_empty();
    while !chunk_written() {
        assert!(Instant::now() < deadline, "no chunk was ever written");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // SAFETY: signalling our own child process by pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted by SIGINT: nothing was committed"),
        "{err}"
    );
    let audit = json(&ok(pgbunker(
        &["--json", "audit", "--repo", &repo, "--operation", "backup"],
        &[("PGBUNKER_KEY", KEY)],
    )));
    let records = audit["records"].as_array().expect("records");
    assert!(
        records
            .iter()
            .any(|r| r["result"] == "interrupted" && r["exit_code"] == 130),
        "{audit}"
    );
}
