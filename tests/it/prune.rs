//! Retention for real: prune keeps what the policy says, tombstones before it deletes,
//! never touches a backup under legal hold or read by a running restore, and cleans
//! up leftovers of interrupted runs once they are older than the grace period.

use std::path::Path;

use pgbunker::archive::lock::{LockGuard, LockKind};
use pgbunker::archive::retention::RetentionPolicy;
use time::OffsetDateTime;

use crate::support::{
    backup_dir, json, ok, pgbunker, prune_at, prune_json, repo_access, stderr, world_with_backups,
    World, KEY,
};

fn statuses(repo: &str) -> Vec<(String, String)> {
    let out = ok(pgbunker(
        &["--json", "list", "--repo", repo],
        &[("PGBUNKER_KEY", KEY)],
    ));
    json(&out)["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["backup_id"].as_str().unwrap().to_owned(),
                b["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_keeps_the_policy_holds_and_locks_and_deletes_the_rest() {
    let (w, repo, ids) = world_with_backups(4).await;
    let env = [("PGBUNKER_KEY", KEY)];
    // The oldest is under legal hold; the second is being read by a restore.
    ok(pgbunker(&["hold", "--repo", &repo, &ids[0]], &env));
    let reader = pgbunker::commands::RepoAccess::open(&repo_access(&repo))
        .await
        .unwrap();
    let lock = LockGuard::acquire(&reader, LockKind::Restore, &ids[1])
        .await
        .unwrap();
    // The lock object (and everything else) matches the published schemas.
    assert_eq!(
        std::fs::read_dir(Path::new(&repo).join("locks"))
            .unwrap()
            .count(),
        1
    );
    crate::format::check_schemas(Path::new(&repo)).await;

    // A dry run changes nothing.
    let r = prune_json(&repo, &["--keep-last", "1", "--dry-run"], &env);
    assert_eq!(r["tombstoned"], serde_json::json!([ids[2]]), "{r}");
    assert!(statuses(&repo).iter().all(|(_, s)| s == "complete"));

    let r = prune_json(&repo, &["--keep-last", "1", "--grace", "0"], &env);
    let out = r.to_string();
    assert_eq!(r["tombstoned"], serde_json::json!([ids[2]]), "{out}");
    assert_eq!(r["deleted"], serde_json::json!([ids[2]]), "{out}");
    let reasons = |bid: &str| -> Vec<String> {
        r["kept"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["backup_id"] == bid)
            .map(|k| serde_json::from_value(k["reasons"].clone()).unwrap())
            .unwrap_or_default()
    };
    assert!(
        reasons(&ids[0]).contains(&"legal hold".to_string()),
        "{out}"
    );
    assert!(
        reasons(&ids[1]).contains(&"in use by a running restore, verify or export".to_string()),
        "{out}"
    );
    assert!(reasons(&ids[3]).contains(&"last 1".to_string()), "{out}");
    assert!(!backup_dir(&repo, &ids[2]).exists());
    let st = statuses(&repo);
    assert_eq!(st.len(), 3, "{st:?}");
    assert!(st.iter().all(|(b, s)| s == "complete" && b != &ids[2]));

    // Lock released, hold lifted: the next prune removes both.
    lock.release().await.unwrap();
    ok(pgbunker(
        &["hold", "--repo", &repo, &ids[0], "--release"],
        &env,
    ));
    let r = prune_json(&repo, &["--keep-last", "1", "--grace", "0"], &env);
    let mut gone: Vec<String> = serde_json::from_value(r["deleted"].clone()).unwrap();
    gone.sort();
    let mut want = vec![ids[0].clone(), ids[1].clone()];
    want.sort();
    assert_eq!(gone, want);
    assert_eq!(statuses(&repo), vec![(ids[3].clone(), "complete".into())]);

    // The survivor still restores.
    w.empty_db("restored").await;
    ok(w.restore(&repo, "latest", "restored"));
    w.assert_same("heart", "restored").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tombstones_wait_out_the_grace_period_and_leftovers_are_cleaned() {
    let (w, repo, ids) = world_with_backups(2).await;
    // A leftover of a backup that died long ago, and one of a backup running now.
    let old = backup_dir(&repo, "20200101T000000Z-deadbeef");
    std::fs::create_dir_all(old.join("t1")).unwrap();
    std::fs::write(old.join("t1/0.chk"), b"partial").unwrap();
    let fresh_id = pgbunker::archive::new_backup_id();
    let fresh = backup_dir(&repo, &fresh_id);
    std::fs::create_dir_all(fresh.join("t1")).unwrap();
    std::fs::write(fresh.join("t1/0.chk"), b"partial").unwrap();

    let keep_last_1 = RetentionPolicy {
        keep_last: Some(1),
        ..Default::default()
    };
    let now = OffsetDateTime::now_utc();
    let r = prune_at(&repo, keep_last_1.clone(), Some("24h"), now).await;
    assert_eq!(r.tombstoned, vec![ids[0].clone()]);
    assert!(r.deleted.is_empty());
    assert_eq!(r.waiting, vec![ids[0].clone()]);
    assert_eq!(
        r.leftovers_deleted,
        vec!["20200101T000000Z-deadbeef".to_string()]
    );
    assert!(!old.exists());
    assert!(fresh.join("t1/0.chk").exists(), "a young leftover stays");
    // Tombstoned: listed as such, objects still there, not restorable.
    assert!(statuses(&repo).contains(&(ids[0].clone(), "tombstoned".into())));
    assert!(backup_dir(&repo, &ids[0]).join("manifest").exists());
    w.empty_db("t").await;
    let o = w.restore(&repo, &ids[0], "t");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    // A day and an hour later the grace period is over.
    let later = now + time::Duration::hours(25);
    let r = prune_at(&repo, keep_last_1, Some("24h"), later).await;
    assert_eq!(r.deleted, vec![ids[0].clone()]);
    assert!(r.objects_deleted > 0);
    assert!(!backup_dir(&repo, &ids[0]).exists());
    assert_eq!(r.leftovers_deleted, vec![fresh_id.clone()]);
    assert_eq!(statuses(&repo), vec![(ids[1].clone(), "complete".into())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_policy_is_refused() {
    let (_w, repo, _) = world_with_backups(1).await;
    let o = pgbunker(&["prune", "--repo", &repo], &[("PGBUNKER_KEY", KEY)]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no retention rule"), "{}", stderr(&o));
}

/// `prune --quiet` for cron, which mails any output: nothing on success.
#[tokio::test(flavor = "multi_thread")]
async fn a_quiet_prune_prints_nothing_when_all_went_well() {
    let (_w, repo, _) = world_with_backups(2).await;
    let o = pgbunker(
        &["prune", "--repo", &repo, "--keep-last", "1", "--quiet"],
        &[("PGBUNKER_KEY", KEY)],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(crate::support::stdout(&o), "");
    let listed = crate::support::ok(pgbunker(
        &["list", "--repo", &repo],
        &[("PGBUNKER_KEY", KEY)],
    ));
    assert_eq!(listed.matches("complete").count(), 1, "{listed}");
}

/// A nightly timer's whole command line is `pgbunker backup` and `pgbunker prune`:
/// everything else comes from pgbunker.toml.
#[tokio::test(flavor = "multi_thread")]
async fn the_settings_file_drives_backup_and_prune() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    let repo = w.init_repo("repo");
    let key_file = w.dir.path().join("repo.key");
    std::fs::write(&key_file, KEY).unwrap();
    // Secret files open to others are refused.
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let cfg = w.dir.path().join("pgbunker.toml");
    std::fs::write(
        &cfg,
        format!(
            "repo = {repo:?}\nkey_file = {key_file:?}\n[backup]\nsource = {src:?}\njobs = 2\n\
             [prune]\nkeep_last = 2\ngrace = \"0\"\n",
            src = w.pg.url("heart"),
        ),
    )
    .unwrap();
    let env = [("PGBUNKER_CONFIG", cfg.to_str().unwrap())];
    for _ in 0..3 {
        ok(pgbunker(&["backup"], &env));
    }
    let out = ok(pgbunker(&["--json", "prune"], &env));
    assert_eq!(json(&out)["deleted"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(statuses(&repo).len(), 2);
    // A flag beats the file.
    let out = ok(pgbunker(&["--json", "prune", "--keep-last", "1"], &env));
    assert_eq!(json(&out)["deleted"].as_array().unwrap().len(), 1, "{out}");
    // A typo in the file is an error, not a silently dropped rule.
    std::fs::write(&cfg, "[prune]\nkeep_dayly = 7\n").unwrap();
    let o = pgbunker(&["prune", "--repo", &repo], &env);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("keep_dayly"), "{}", stderr(&o));
}
