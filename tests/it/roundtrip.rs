//! The foundation's proof: fixture → backup (4 jobs) → restore into a fresh database,
//! judged by pg_dump --schema-only, row multisets and sequence values.

use crate::support::{all_rows, ok, pgbunker, sequence_values, World, KEY};

#[tokio::test(flavor = "multi_thread")]
async fn fixture_round_trip_is_identical() {
    let w = World::start();
    let src = w.fixture_db("heart", 1).await;
    // Make sequence state less trivial than "as generated".
    src.connect()
        .await
        .unwrap()
        .batch_execute("SELECT nextval('public.patients_id_seq') FROM generate_series(1, 3)")
        .await
        .ok();
    let repo = w.repo("repo");
    let env = [("PGBUNKER_KEY", KEY)];
    ok(pgbunker(&["init", "--repo", &repo], &env));
    let out = ok(pgbunker(
        &["backup", "--repo", &repo, "--jobs", "4", &w.pg.url("heart")],
        &env,
    ));
    assert!(out.contains("Backup ") && out.contains("complete"), "{out}");

    let dst = w.empty_db("restored").await;
    let out = ok(pgbunker(
        &[
            "restore",
            "--repo",
            &repo,
            "latest",
            "--target",
            &w.pg.url("restored"),
            "--jobs",
            "4",
        ],
        &env,
    ));
    assert!(out.contains("Restored backup"), "{out}");

    let (a, b) = (w.schema_dump("heart"), w.schema_dump("restored"));
    if a != b {
        let diff: Vec<String> = a
            .lines()
            .zip(b.lines())
            .filter(|(x, y)| x != y)
            .take(10)
            .map(|(x, y)| format!("- {x}\n+ {y}"))
            .collect();
        panic!("schema differs after restore:\n{}", diff.join("\n"));
    }
    let (ra, rb) = (all_rows(&src).await, all_rows(&dst).await);
    assert_eq!(ra.len(), rb.len());
    assert!(ra.len() >= 10, "the fixture has at least ten tables");
    for ((ta, rows_a), (tb, rows_b)) in ra.iter().zip(rb.iter()) {
        assert_eq!(ta, tb);
        assert!(!rows_a.is_empty(), "{ta} is empty in the fixture");
        assert!(rows_a == rows_b, "rows of {ta} differ after restore");
    }
    assert_eq!(sequence_values(&src).await, sequence_values(&dst).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_list_shows_the_backup_newest_first() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    let repo = w.repo("repo");
    let env = [("PGBUNKER_KEY", KEY)];
    ok(pgbunker(&["init", "--repo", &repo], &env));
    let url = w.pg.url("heart");
    let first = ok(pgbunker(&["--json", "backup", "--repo", &repo, &url], &env));
    let second = ok(pgbunker(
        &["--json", "backup", "--repo", &repo, "-j", "1", &url],
        &env,
    ));
    let id = |s: &str| -> String {
        serde_json::from_str::<serde_json::Value>(s).unwrap()["backup_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (b1, b2) = (id(&first), id(&second));
    let list: serde_json::Value =
        serde_json::from_str(&ok(pgbunker(&["--json", "list", "--repo", &repo], &env))).unwrap();
    let backups = list["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 2);
    assert!(b2 > b1 || b2.starts_with(&b1[..16]), "ids sort by time");
    for b in backups {
        assert_eq!(b["status"], "complete");
        assert!(b["tables"].as_u64().unwrap() >= 10);
        assert!(b["rows"].as_u64().unwrap() > 40_000);
        assert!(b["stored_bytes"].as_u64().unwrap() < b["raw_bytes"].as_u64().unwrap());
    }
    let ids: Vec<&str> = backups
        .iter()
        .map(|b| b["backup_id"].as_str().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");
}
