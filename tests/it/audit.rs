//! The audit trail and the monitoring check: one record per operation with the right
//! fields and no secret; `check` exit codes for fresh, stale and missing backups; a
//! Prometheus textfile that parses.

use std::collections::HashMap;
use std::path::Path;

use pgbunker::commands::check::{check, CheckOptions, Status};

use crate::support::{ok, pgbunker, repo_access, stderr, stdout, World, KEY};

const PASSWORD: &str = "s3cr3t-audit-pw";

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap()
}

fn records(repo: &str) -> Vec<serde_json::Value> {
    let out = ok(pgbunker(
        &["--json", "audit", "--repo", repo],
        &[("PGBUNKER_KEY", KEY)],
    ));
    json(&out)["records"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_leaves_one_audit_record_without_secrets() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    w.pg.add_password_role("auditor", PASSWORD, true)
        .await
        .unwrap();
    let url = |db: &str| {
        format!(
            "postgresql://auditor:{PASSWORD}@127.0.0.1:{}/{db}",
            w.pg.port()
        )
    };
    let repo = w.repo("repo");
    let env = [("PGBUNKER_KEY", KEY)];
    let audit_db = url("postgres");
    let run = |args: &[&str]| {
        let mut a: Vec<&str> = vec!["--audit-db", &audit_db];
        a.extend_from_slice(args);
        pgbunker(&a, &env)
    };

    ok(run(&["init", "--repo", &repo]));
    assert_eq!(records(&repo).len(), 1);
    let out = ok(run(&["--json", "backup", "--repo", &repo, &url("heart")]));
    let bid = json(&out)["backup_id"].as_str().unwrap().to_owned();
    assert_eq!(records(&repo).len(), 2);
    w.empty_db("restored").await;
    ok(run(&[
        "restore",
        "--repo",
        &repo,
        "latest",
        "--target",
        &url("restored"),
    ]));
    assert_eq!(records(&repo).len(), 3);
    // A failing restore is recorded too (the target is no longer empty).
    let o = run(&[
        "restore",
        "--repo",
        &repo,
        "latest",
        "--target",
        &url("restored"),
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(!stderr(&o).contains(PASSWORD));
    assert_eq!(records(&repo).len(), 4);
    ok(run(&["verify", "--repo", &repo, "latest"]));
    ok(run(&["hold", "--repo", &repo, &bid]));
    ok(run(&["key", "rotate", "--repo", &repo]));
    ok(run(&["prune", "--repo", &repo, "--keep-last", "1"]));
    let o = run(&["check", "--repo", &repo, "--audit"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let recs = records(&repo);
    let ops: Vec<&str> = recs
        .iter()
        .map(|r| r["operation"].as_str().unwrap())
        .collect();
    assert_eq!(
        ops,
        [
            "init",
            "backup",
            "restore",
            "restore",
            "verify",
            "hold",
            "key rotate",
            "prune",
            "check"
        ]
    );
    let user = std::env::var("USER").unwrap_or_default();
    for r in &recs {
        for field in [
            "id",
            "user",
            "host",
            "started_at",
            "ended_at",
            "tool_version",
        ] {
            assert!(
                r[field].as_str().is_some_and(|v| !v.is_empty()),
                "{field}: {r}"
            );
        }
        if !user.is_empty() {
            assert_eq!(r["user"], user.as_str(), "{r}");
        }
    }
    assert_eq!(recs[1]["backup_id"], bid.as_str());
    assert_eq!(recs[1]["result"], "ok");
    assert!(recs[1]["details"]["rows"].as_u64().unwrap() > 0);
    assert!(recs[1]["details"]["stored_bytes"].as_u64().unwrap() > 0);
    assert_eq!(recs[2]["backup_id"], bid.as_str());
    assert_eq!(recs[3]["result"], "failed");
    assert_ne!(recs[3]["exit_code"], 0);
    assert!(recs[3]["error"].as_str().unwrap().len() > 10);

    // No secret anywhere: not in the decrypted records, not in the raw objects.
    let all = serde_json::to_string(&recs).unwrap();
    assert!(!all.contains(PASSWORD), "{all}");
    assert!(!all.contains(KEY), "{all}");
    for f in crate::support::files(&Path::new(&repo).join("audit")) {
        let raw = std::fs::read(&f).unwrap();
        let raw = String::from_utf8_lossy(&raw);
        assert!(!raw.contains(PASSWORD) && !raw.contains(KEY) && !raw.contains("heart"));
    }

    // The runbook's table got one row per operation, without secrets either.
    let client = w.pg.conn("postgres").connect().await.unwrap();
    let rows = client
        .query(
            "SELECT operation, status, coalesce(error_message, '') FROM backup_audit_log \
             ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let ops_db: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ops_db, ops);
    let statuses: Vec<String> = rows.iter().map(|r| r.get(1)).collect();
    assert_eq!(statuses[3], "failed");
    assert!(statuses
        .iter()
        .enumerate()
        .all(|(i, s)| i == 3 || s == "success"));
    for r in &rows {
        let e: String = r.get(2);
        assert!(!e.contains(PASSWORD), "{e}");
    }
}

fn options(repo: &str, now: Option<time::OffsetDateTime>, prom: Option<&Path>) -> CheckOptions {
    CheckOptions {
        repo: repo_access(repo),
        max_age: std::time::Duration::from_secs(26 * 3600),
        verify_max_age: std::time::Duration::from_secs(8 * 24 * 3600),
        min_free_percent: 0.0,
        prometheus: prom.map(Path::to_path_buf),
        timeout: pgbunker::commands::check::DEFAULT_TIMEOUT,
        expect_append_only: Vec::new(),
        now,
    }
}

/// `pgbunker <global> check --repo REPO --prometheus PROM`, whatever it did.
fn check_prometheus(
    global: &[&str],
    repo: &str,
    prom: &Path,
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut args = global.to_vec();
    args.extend([
        "check",
        "--repo",
        repo,
        "--prometheus",
        prom.to_str().unwrap(),
    ]);
    pgbunker(&args, env)
}

/// `name{labels} value` lines of a Prometheus textfile.
fn metrics(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            let name = name.split('{').next().unwrap().to_owned();
            (name, value.parse::<f64>().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_fresh_stale_missing_and_unreachable() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    let env = [("PGBUNKER_KEY", KEY)];

    // Missing: a repository without a backup is CRITICAL (exit 2).
    let repo = w.init_repo("repo");
    let o = pgbunker(&["check", "--repo", &repo], &env);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("PGBUNKER CRITICAL: no complete backup"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // Fresh, never verified: WARNING (exit 1); verified: OK (exit 0).
    ok(w.backup(&repo, "heart", &[]));
    let o = pgbunker(&["check", "--repo", &repo], &env);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    ok(pgbunker(&["verify", "--repo", &repo], &env));
    let prom = w.dir.path().join("pgbunker.prom");
    let out = ok(check_prometheus(&["--json"], &repo, &prom, &env));
    assert_eq!(json(&out)["status"], "OK", "{out}");
    let m = metrics(&std::fs::read_to_string(&prom).unwrap());
    assert_eq!(m["pgbunker_check_status"], 0.0);
    assert_eq!(m["pgbunker_repository_up"], 1.0);
    assert_eq!(m["pgbunker_verify_ok"], 1.0);
    assert!(m["pgbunker_last_backup_size_bytes"] > 0.0);
    assert!(m["pgbunker_last_backup_tables"] >= 10.0);
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    assert!((now - m["pgbunker_last_success_timestamp_seconds"]).abs() < 600.0);

    // Stale: the same repository seen 30 hours later (injected clock) is CRITICAL.
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(30);
    let r = check(&options(&repo, Some(later), Some(&prom)))
        .await
        .unwrap();
    assert_eq!(r.status, Status::Critical, "{r:?}");
    assert!(r.summary.contains("old (limit 26.0 h)"), "{}", r.summary);
    assert_eq!(
        metrics(&std::fs::read_to_string(&prom).unwrap())["pgbunker_check_status"],
        2.0
    );
    // Nine days later the verify is stale too, but staleness of the backup rules.
    let r = check(&options(
        &repo,
        Some(time::OffsetDateTime::now_utc() + time::Duration::days(9)),
        None,
    ))
    .await
    .unwrap();
    assert_eq!(r.problems.len(), 2, "{r:?}");

    // Unreachable: CRITICAL with the reason, not a crash.
    let gone = w.repo("nowhere");
    let o = pgbunker(&["check", "--repo", &gone], &env);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("does not exist"));

    // Checks run every few minutes: they leave the trail alone unless --audit.
    let checks = |repo: &str| {
        records(repo)
            .iter()
            .filter(|r| r["operation"] == "check")
            .count()
    };
    assert_eq!(checks(&repo), 0);
    pgbunker(&["check", "--repo", &repo, "--audit"], &env);
    assert_eq!(checks(&repo), 1);
}

/// Storage that does not answer costs a check its own short timeout, not the storage
/// retry window (minutes), once, and the answer is CRITICAL; stderr has no colour
/// codes for cron's mail.
#[test]
fn a_check_of_storage_that_does_not_answer_ends_at_its_timeout() {
    let env = [
        ("PGBUNKER_KEY", KEY),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ];
    // A listener that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let repo = format!(
        "s3://bucket/repo?endpoint=http://127.0.0.1:{port}&allow_http=true&region=us-east-1"
    );
    let started = std::time::Instant::now();
    let o = pgbunker(&["check", "--repo", &repo, "--timeout", "3"], &env);
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("did not answer within 3 s"),
        "{}",
        stdout(&o)
    );
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
    assert!(!stderr(&o).contains('\u{1b}'), "{}", stderr(&o));
    drop(silent);
}

/// `(id, operation)` of every record, oldest first.
fn ids(repo: &str) -> Vec<(String, String)> {
    records(repo)
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["operation"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The record's object in a local repository (`audit/<id>.<operation>`).
fn record_file(repo: &str, id: &str) -> std::path::PathBuf {
    let dir = Path::new(repo).join("audit");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(id))
        .unwrap_or_else(|| panic!("no object for audit record {id} in {}", dir.display()))
}

/// The time in a record id as the messages show it: `2026-11-23T10:00:00Z`.
fn id_time(id: &str) -> String {
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &id[0..4],
        &id[4..6],
        &id[6..8],
        &id[9..11],
        &id[11..13],
        &id[13..15]
    )
}

/// Flips one byte in the middle of the first chunk of the newest backup.
fn damage_a_chunk(repo: &str) {
    let chunk = crate::support::chunk_files(Path::new(repo))
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("a chunk");
    let mut bytes = std::fs::read(&chunk).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&chunk, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_record_of_a_failed_verify_is_critical_in_check() {
    let w = World::start();
    let repo = w.backed_up().await;
    let env = [("PGBUNKER_KEY", KEY)];
    damage_a_chunk(&repo);
    let o = pgbunker(&["verify", "--repo", &repo, "--data"], &env);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    // An audited check: its record comes after the verify's and names it.
    let o = pgbunker(&["check", "--repo", &repo, "--audit"], &env);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("PGBUNKER CRITICAL: the last verify ("),
        "{}",
        stdout(&o)
    );
    let trail = ids(&repo);
    let (verify, _) = trail.iter().find(|(_, op)| op == "verify").unwrap().clone();
    let (check_id, _) = trail.last().unwrap().clone();

    // The attack: delete the failed verify, so that the damage looks never found.
    std::fs::remove_file(record_file(&repo, &verify)).unwrap();
    let o = pgbunker(&["check", "--repo", &repo], &env);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert_eq!(
        stdout(&o).lines().next().unwrap(),
        format!(
            "PGBUNKER CRITICAL: audit trail: audit record {verify} (verify at {}) is missing: \
             the later record {check_id} names it, so it was deleted",
            id_time(&verify)
        )
    );
    // The dashboards see it too.
    let prom = w.dir.path().join("check.prom");
    let o = check_prometheus(&[], &repo, &prom, &env);
    assert_eq!(o.status.code(), Some(2));
    let m = metrics(&std::fs::read_to_string(&prom).unwrap());
    assert_eq!(m["pgbunker_audit_problems"], 1.0);
    assert_eq!(m["pgbunker_check_status"], 2.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_restore_record_shows_in_audit() {
    let w = World::start();
    let repo = w.backed_up().await;
    let env = [("PGBUNKER_KEY", KEY)];
    w.empty_db("restored").await;
    ok(w.restore(&repo, "latest", "restored"));
    ok(pgbunker(&["verify", "--repo", &repo], &env));
    let trail = ids(&repo);
    let (restore, _) = trail
        .iter()
        .find(|(_, op)| op == "restore")
        .unwrap()
        .clone();
    let (verify, _) = trail.last().unwrap().clone();

    // Who restored the patient data must not vanish from the trail.
    std::fs::remove_file(record_file(&repo, &restore)).unwrap();
    let o = pgbunker(&["audit", "--repo", &repo], &env);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let problem = format!(
        "audit record {restore} (restore at {}) is missing: the later record {verify} names \
         it, so it was deleted",
        id_time(&restore)
    );
    assert!(
        stdout(&o).contains(&format!("CRITICAL: {problem}\n")),
        "{}",
        stdout(&o)
    );
    // The records that are left are still shown, above the problem.
    assert!(stdout(&o).contains(" verify "), "{}", stdout(&o));
    assert!(
        stderr(&o).starts_with(&format!(
            "error: the audit trail was tampered with: {problem}\n"
        )),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("hint: someone with write access"),
        "{}",
        stderr(&o)
    );
    // --operation filters what is shown, never what is checked.
    let o = pgbunker(
        &["--json", "audit", "--repo", &repo, "--operation", "init"],
        &env,
    );
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let report = json(&stdout(&o));
    assert_eq!(report["records"].as_array().unwrap().len(), 1);
    assert_eq!(report["problems"][0]["kind"], "missing");
    assert_eq!(report["problems"][0]["record"]["id"], restore.as_str());
    assert_eq!(report["problems"][0]["record"]["operation"], "restore");
    assert_eq!(report["problems"][0]["named_by"], verify.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_newest_record_is_caught_by_the_machine_that_saw_it() {
    let w = World::start();
    let repo = w.backed_up().await;
    let env = [("PGBUNKER_KEY", KEY)];
    w.empty_db("restored").await;
    ok(w.restore(&repo, "latest", "restored"));
    let (restore, op) = ids(&repo).last().unwrap().clone();
    assert_eq!(op, "restore");
    std::fs::remove_file(record_file(&repo, &restore)).unwrap();

    // No later record names it; this machine remembers it.
    let o = pgbunker(&["audit", "--repo", &repo], &env);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let state = Path::new(env!("CARGO_TARGET_TMPDIR")).join("client-state");
    assert!(
        stderr(&o).starts_with(&format!(
            "error: the audit trail was tampered with: audit record {restore} (restore at {}), \
             the newest this machine wrote or saw ({}/audit-",
            id_time(&restore),
            state.display()
        )),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains(".json), is missing: it was deleted\n"),
        "{}",
        stderr(&o)
    );
    let o = pgbunker(&["check", "--repo", &repo], &env);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stdout(&o).starts_with(&format!(
            "PGBUNKER CRITICAL: audit trail: audit record {restore} (restore at"
        )),
        "{}",
        stdout(&o)
    );

    // What the documentation says is not detected: a machine that never saw the
    // record (its own state folder) finds a whole trail.
    let elsewhere = w.dir.path().join("other-machine");
    let o = pgbunker(
        &["audit", "--repo", &repo],
        &[
            ("PGBUNKER_KEY", KEY),
            ("PGBUNKER_STATE_DIR", elsewhere.to_str().unwrap()),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_commands_fork_the_trail_without_tampering() {
    let w = World::start();
    let repo = w.backed_up().await;
    let env = [("PGBUNKER_KEY", KEY)];
    // Eight commands append at once, twice: many name the same predecessor.
    for _ in 0..2 {
        let running: Vec<_> = (0..8)
            .map(|_| {
                crate::support::pgbunker_command(&["check", "--repo", &repo, "--audit"], &env)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in running {
            let o = c.wait_with_output().unwrap();
            assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
        }
    }
    let out = ok(pgbunker(&["--json", "audit", "--repo", &repo], &env));
    let report = json(&out);
    assert_eq!(report["records"].as_array().unwrap().len(), 18, "{out}");
    assert_eq!(report["problems"].as_array().unwrap().len(), 0, "{out}");
    assert_eq!(report["unchained"], 0);
    // Every record but the first names at least one before it.
    for r in &report["records"].as_array().unwrap()[1..] {
        assert!(!r["prev"].as_array().unwrap().is_empty(), "{r}");
    }
    let o = pgbunker(&["check", "--repo", &repo], &env);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).starts_with("PGBUNKER WARNING: no verify has run yet"),
        "{}",
        stdout(&o)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn records_from_before_chaining_read_as_unchained_not_tampered() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/repo-v2/repo");
    let repo = dir.path().join("repo");
    for f in crate::support::files(&fixture) {
        let dest = repo.join(f.strip_prefix(&fixture).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dest).unwrap();
    }
    let repo = repo.display().to_string();
    let env = [("PGBUNKER_KEY", KEY)];
    let note = "note: 2 records written before pgbunker chained its audit records: a \
                deletion among them cannot be detected";
    let out = ok(pgbunker(&["audit", "--repo", &repo], &env));
    assert_eq!(out.matches(note).count(), 1, "{out}");
    // A new record chains to the old ones; they stay unchained, and are no problem.
    // (The fixture's backup is old: the check is CRITICAL for that alone.)
    let out = stdout(&pgbunker(&["--json", "check", "--repo", &repo], &env));
    assert_eq!(json(&out)["audit_problems"], 0, "{out}");
    let out = ok(pgbunker(&["audit", "--repo", &repo], &env));
    assert_eq!(out.matches(note).count(), 1, "{out}");
    assert!(!out.contains("CRITICAL"), "{out}");
}

/// `audit --operation restore` answers "who restored patient data": restore tests
/// included; an operation that does not exist is refused, not silently empty.
#[tokio::test(flavor = "multi_thread")]
async fn operation_filter_knows_the_operations_and_restore_includes_restore_tests() {
    let w = World::start();
    let repo = w.backed_up().await;
    ok(w.restore_test(&repo).await);
    let env = [("PGBUNKER_KEY", KEY)];
    let out = ok(pgbunker(
        &["--json", "audit", "--repo", &repo, "--operation", "restore"],
        &env,
    ));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ops: Vec<&str> = report["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["restore-test"], "{out}");

    let typo = pgbunker(&["audit", "--repo", &repo, "--operation", "restores"], &env);
    assert_eq!(typo.status.code(), Some(2));
    assert!(
        stderr(&typo).contains(
            "--operation \"restores\": no such operation; use one of init, backup, restore, \
             restore-test, verify, export, diff, copy, mask-check, prune, check, hold, upgrade, \
             key-add, key-remove, key-rotate"
        ),
        "{}",
        stderr(&typo)
    );
}
