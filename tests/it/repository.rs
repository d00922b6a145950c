//! Repository integrity: tampered or missing chunks are refused, incomplete backups
//! never look complete, and a broken catalog chain is detected.

use std::path::Path;

use crate::support::{chunk_files, files, ok, pgbunker, stderr, World, KEY};

fn chunks(repo: &str) -> Vec<std::path::PathBuf> {
    chunk_files(Path::new(repo))
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_or_missing_chunks_are_refused() {
    let w = World::start();
    let repo = w.backed_up().await;
    let biggest = chunks(&repo)
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&biggest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&biggest, &bytes).unwrap();

    w.empty_db("t1").await;
    let o = w.restore(&repo, "latest", "t1");
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("does not match its SHA-256"),
        "{}",
        stderr(&o)
    );

    std::fs::remove_file(&biggest).unwrap();
    w.empty_db("t2").await;
    let o = w.restore(&repo, "latest", "t2");
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(stderr(&o).contains("is missing"), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn incomplete_backups_are_listed_as_such_and_never_restored() {
    let w = World::start();
    let repo = w.backed_up().await;
    let env = [("PGBUNKER_KEY", KEY)];
    // Leftovers of an interrupted run: chunks but no commit in the catalog.
    let leftover = Path::new(&repo).join("backups/29991231T235959Z-deadbeef/t0");
    std::fs::create_dir_all(&leftover).unwrap();
    std::fs::write(leftover.join("0.chk"), b"partial").unwrap();
    let list = ok(pgbunker(&["list", "--repo", &repo], &env));
    let first = list.lines().nth(1).unwrap();
    assert!(
        first.contains("29991231T235959Z-deadbeef") && first.contains("incomplete"),
        "{list}"
    );
    assert!(list.lines().nth(2).unwrap().contains("complete"), "{list}");
    // "latest" is the newest committed backup, not the leftover.
    w.empty_db("t").await;
    let out = ok(w.restore(&repo, "latest", "t"));
    assert!(!out.contains("deadbeef"), "{out}");
    let o = w.restore(&repo, "29991231T235959Z-deadbeef", "t");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_catalog_chain_is_detected() {
    let w = World::start();
    let repo = w.backed_up().await;
    let env = [("PGBUNKER_KEY", KEY)];
    // Roll the catalog back by replacing the newest entry with a copy of the first.
    let cat = Path::new(&repo).join("catalog");
    let entries = files(&cat);
    assert_eq!(entries.len(), 2, "{entries:?}");
    std::fs::copy(&entries[0], &entries[1]).unwrap();
    let o = pgbunker(&["list", "--repo", &repo], &env);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(stderr(&o).contains("catalog entry 1"), "{}", stderr(&o));
}

/// Deleting the newest catalog entries (putting an older catalog back) is a valid
/// chain, so only this machine's high-water mark can tell.
#[tokio::test(flavor = "multi_thread")]
async fn a_rolled_back_catalog_is_refused_by_the_high_water_mark() {
    let w = World::start();
    let repo = w.backed_up().await;
    let env = [("PGBUNKER_KEY", KEY)];
    let cat = Path::new(&repo).join("catalog");
    let saved: Vec<(std::path::PathBuf, Vec<u8>)> = files(&cat)
        .into_iter()
        .map(|f| (f.clone(), std::fs::read(&f).unwrap()))
        .collect();
    ok(w.backup(&repo, "heart", &[]));
    ok(pgbunker(&["list", "--repo", &repo], &env));
    // The attacker puts the old catalog back: the newest entry is gone.
    for f in files(&cat) {
        std::fs::remove_file(f).unwrap();
    }
    for (f, bytes) in &saved {
        std::fs::write(f, bytes).unwrap();
    }
    for args in [
        vec!["list", "--repo", &repo],
        vec![
            "restore",
            "--repo",
            &repo,
            "latest",
            "--target",
            "postgresql://x/y",
        ],
    ] {
        let o = pgbunker(&args, &env);
        assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
        assert!(stderr(&o).contains("went backwards"), "{}", stderr(&o));
        assert!(stderr(&o).contains("saw entry 2"), "{}", stderr(&o));
    }
    // Another spelling of the same folder is the same repository to the mark.
    let o = pgbunker(&["list", "--repo", &format!("file://{repo}/")], &env);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    // A backup must not commit on top of the rolled-back catalog either.
    let o = w.backup(&repo, "heart", &[]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repository_swapped_under_the_same_location_is_refused() {
    let w = World::start();
    let repo = w.backed_up().await;
    let env = [("PGBUNKER_KEY", KEY)];
    ok(pgbunker(&["list", "--repo", &repo], &env));
    // Another repository (same key) appears at the same path.
    let other = w.init_repo("other");
    std::fs::rename(&repo, w.repo("old")).unwrap();
    std::fs::rename(&other, &repo).unwrap();
    let o = pgbunker(&["list", "--repo", &repo], &env);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not the one this machine knows"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("delete "), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_backups_both_commit() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    let repo = w.init_repo("repo");
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| w.backup(&repo, "heart", &["-j", "2"]));
        let b = s.spawn(|| w.backup(&repo, "heart", &["-j", "2"]));
        (a.join().unwrap(), b.join().unwrap())
    });
    ok(a);
    ok(b);
    let list = ok(pgbunker(
        &["--json", "list", "--repo", &repo],
        &[("PGBUNKER_KEY", KEY)],
    ));
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let complete = list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["status"] == "complete")
        .count();
    assert_eq!(complete, 2, "{list}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_backup_is_never_complete_and_the_next_one_succeeds() {
    let w = World::start();
    w.fixture_db("heart", 4).await;
    let repo = w.init_repo("repo");
    let env = [("PGBUNKER_KEY", KEY)];
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_pgbunker"))
        .args(["backup", "--repo", &repo, "-j", "1", &w.pg.url("heart")])
        .env("PGBUNKER_KEY", KEY)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first chunk on disk, then interrupt mid-stream.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while chunks(&repo).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no chunk was ever written"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    // SAFETY: signalling our own child process by pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("interrupted by SIGTERM"),
        "{}",
        stderr(&out)
    );
    let list = ok(pgbunker(&["list", "--repo", &repo], &env));
    assert!(
        list.contains("incomplete") && !list.contains(" complete"),
        "{list}"
    );
    ok(w.backup(&repo, "heart", &[]));
    let list = ok(pgbunker(&["list", "--repo", &repo], &env));
    assert!(list.contains(" complete"), "{list}");
}

/// pgbunker.json is plaintext: flipping it to "none" must never make a backup upload
/// the database in the clear.
#[tokio::test(flavor = "multi_thread")]
async fn a_repository_flipped_to_plaintext_is_refused_before_anything_is_written() {
    let w = World::start();
    let repo = w.backed_up().await;
    let config = Path::new(&repo).join("pgbunker.json");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("aes-256-gcm-siv", "none")).unwrap();
    let before = files(Path::new(&repo)).len();
    let o = w.backup(&repo, "heart", &[]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(stderr(&o).contains("unencrypted"), "{}", stderr(&o));
    assert_eq!(
        files(Path::new(&repo)).len(),
        before,
        "nothing was uploaded"
    );
}

/// A backup is named by its id, a unique start of the id or of its random part, or
/// `latest` (also as `--latest`); a typo gets the near ids, an ambiguous start the
/// backups it could mean.
#[tokio::test(flavor = "multi_thread")]
async fn backups_are_named_by_a_unique_start_of_their_id_or_latest() {
    let w = World::start();
    let repo = w.backed_up().await;
    let ids = crate::support::backups(&w, &repo, 1);
    let env = [("PGBUNKER_KEY", KEY)];
    let first = ids[0].clone();
    let suffix = first.rsplit('-').next().unwrap().to_owned();

    let out = ok(pgbunker(&["verify", "--repo", &repo, &suffix[..6]], &env));
    assert!(out.contains(&first), "{out}");
    let plan = ok(pgbunker(
        &[
            "--json",
            "restore",
            "--repo",
            &repo,
            "--latest",
            "--dry-run",
        ],
        &env,
    ));
    let newest = ok(pgbunker(
        &["--json", "restore", "--repo", &repo, "latest", "--dry-run"],
        &env,
    ));
    assert_eq!(
        crate::support::json(&plan)["backup_id"],
        crate::support::json(&newest)["backup_id"]
    );

    // One character off: the id it looks like is suggested.
    let mut typo = suffix.clone().into_bytes();
    typo[0] = if typo[0] == b'0' { b'1' } else { b'0' };
    let typo = String::from_utf8(typo).unwrap();
    let o = pgbunker(&["verify", "--repo", &repo, &typo], &env);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("did you mean {first}")),
        "{}",
        stderr(&o)
    );

    // Both backups start with the same date: say so, and which they are.
    let o = pgbunker(&["verify", "--repo", &repo, &first[..8]], &env);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("is the start of 2 backups"), "{err}");
    assert!(err.contains("give more of the id"), "{err}");
}

/// `show` tells one backup in detail from its manifest alone; `list` names each
/// backup's source database.
#[tokio::test(flavor = "multi_thread")]
async fn show_tells_a_backup_in_detail_and_list_names_its_database() {
    let w = World::start();
    let repo = w.backed_up().await;
    let env = [("PGBUNKER_KEY", KEY)];
    let text = ok(pgbunker(&["show", "--repo", &repo, "--latest"], &env));
    assert!(
        text.contains("source       database heart on PostgreSQL "),
        "{text}"
    );
    assert!(text.contains("AES-256-GCM-SIV"), "{text}");
    assert!(text.contains("public.vitals_samples"), "{text}");
    let shown = crate::support::json(&ok(pgbunker(
        &["--json", "show", "--repo", &repo, "latest"],
        &env,
    )));
    let listed = crate::support::json(&ok(pgbunker(&["--json", "list", "--repo", &repo], &env)));
    let line = &listed["backups"][0];
    assert_eq!(shown["backup_id"], line["backup_id"]);
    assert_eq!(shown["rows"], line["rows"]);
    assert_eq!(shown["raw_bytes"], line["raw_bytes"]);
    assert_eq!(line["database"], "heart");
    assert_eq!(shown["source"]["database"], "heart");
    let tables = shown["tables"].as_array().unwrap();
    assert_eq!(Some(tables.len() as u64), line["tables"].as_u64());
    let rows: u64 = tables.iter().map(|t| t["rows"].as_u64().unwrap()).sum();
    assert_eq!(shown["rows"].as_u64(), Some(rows));
    assert!(shown["key_generation"].as_u64().is_some(), "{shown}");
    let list = ok(pgbunker(&["list", "--repo", &repo], &env));
    assert!(list.contains(" heart "), "{list}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_says_when_another_one_is_writing_into_the_repository() {
    let w = World::start();
    let repo = w.backed_up().await;
    let quiet = w.backup(&repo, "heart", &[]);
    assert!(
        !stderr(&quiet).contains("another backup"),
        "{}",
        stderr(&quiet)
    );
    // Another host's backup, refreshed a moment ago.
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let locks = Path::new(&repo).join("locks");
    std::fs::create_dir_all(&locks).unwrap();
    std::fs::write(
        locks.join("0011223344556677.json"),
        format!(
            r#"{{"kind": "backup", "bid": "20261207T010000Z-0badcafe", "pid": 4242,
                "created_at": "{now}", "refreshed_at": "{now}", "host": "db-standby"}}"#
        ),
    )
    .unwrap();
    let out = w.backup(&repo, "heart", &[]);
    ok(out.clone());
    let err = stderr(&out);
    assert!(
        err.contains("another backup (20261207T010000Z-0badcafe)") && err.contains("db-standby"),
        "{err}"
    );
}
