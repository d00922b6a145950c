//! The audit trail and the monitoring check: one record per operation with the right
//! fields and no secret; `check` exit codes for fresh, stale and missing backups; a
//! Prometheus textfile that parses.

use std::collections::HashMap;
use std::path::Path;

use pgbunker::commands::check::{check, CheckOptions, Status};

use crate::support::{ok, pgbunker, repo_access, stderr, World, KEY};

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
    let o = run(&["check", "--repo", &repo]);
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
        now,
    }
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
    let out = ok(pgbunker(
        &[
            "--json",
            "check",
            "--repo",
            &repo,
            "--prometheus",
            prom.to_str().unwrap(),
        ],
        &env,
    ));
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
}
