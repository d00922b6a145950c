//! Attacks by someone who can write the repository (and, for catalog entries, holds
//! the repository key): forged times, bulk removals, deleted catalog entries seen
//! from a fresh machine, planted key slots and locks. Each test is one attack as the
//! security review ran it, and the message the user sees.

use std::path::{Path, PathBuf};

use pgbunker::archive::retention::RetentionPolicy;
use pgbunker::archive::{CatalogState, Tombstone};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::support::{
    backup_dir, files, json, ok, pgbunker, pgbunker_command, prune_at, prune_json, prune_with,
    repo_access, stderr, stdout, world_with_backups, World, KEY,
};

const ENV: [(&str, &str); 1] = [("PGBUNKER_KEY", KEY)];

fn entry_path(repo: &str, seq: u64) -> PathBuf {
    Path::new(repo).join("catalog").join(format!("{seq:020}"))
}

/// The newest catalog entry and the SHA-256 of its object, through the library.
async fn newest(repo: &str) -> (CatalogState, String) {
    let r = repo_access(repo).open().await.unwrap();
    let state = r.catalog().await.unwrap();
    let bytes = std::fs::read(entry_path(repo, state.seq)).unwrap();
    (state, hex::encode(Sha256::digest(&bytes)))
}

/// What an attacker holding the repository key does: seals the next catalog entry,
/// made by `change` from the newest one, and puts it in place.
async fn forge(repo: &str, change: impl FnOnce(&mut CatalogState)) -> u64 {
    let (mut state, sha) = newest(repo).await;
    state.seq += 1;
    state.prev_sha256 = Some(sha);
    change(&mut state);
    let r = repo_access(repo).open().await.unwrap();
    let bytes = r.seal_catalog_entry(&state).unwrap();
    std::fs::write(entry_path(repo, state.seq), bytes).unwrap();
    state.seq
}

/// `pgbunker` as run on a machine that has never seen the repository: no state
/// folder, no home.
fn fresh_machine(args: &[&str]) -> std::process::Output {
    pgbunker_command(args, &ENV)
        .env_remove("PGBUNKER_STATE_DIR")
        .env_remove("HOME")
        .env_remove("XDG_STATE_HOME")
        .output()
        .unwrap()
}

/// `pgbunker` with its own, new state folder `dir`.
fn machine(dir: &Path, args: &[&str]) -> std::process::Output {
    pgbunker_command(args, &ENV)
        .env("PGBUNKER_STATE_DIR", dir)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_dated_2099_is_refused_not_kept_latest_forever() {
    let (_w, repo, ids) = world_with_backups(2).await;
    let seq = forge(&repo, |s| {
        let b = s.live.iter_mut().find(|b| b.bid == ids[0]).unwrap();
        b.created_at = "2099-01-01T00:00:00Z".into();
    })
    .await;
    let want = format!(
        "error: catalog entry {seq} says backup {} was created at 2099-01-01T00:00:00Z, later \
         than this machine's clock allows (",
        ids[0]
    );
    for args in [
        vec!["list", "--repo", &repo],
        vec!["restore", "--repo", &repo, "latest", "--dry-run"],
    ] {
        let o = pgbunker(&args, &ENV);
        assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(e.starts_with(&want), "{e}");
        assert!(
            e.contains(" plus 10 minutes): refusing the catalog\n"),
            "{e}"
        );
        assert!(
            e.contains("hint: no pgbunker writes times in the future: if this machine's clock"),
            "{e}"
        );
    }
    // Monitoring says so instead of reporting a backup 73 years fresh.
    let o = pgbunker(&["check", "--repo", &repo], &ENV);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stdout(&o).starts_with(&format!(
            "PGBUNKER CRITICAL: catalog entry {seq} says backup {} was created at \
             2099-01-01T00:00:00Z",
            ids[0]
        )),
        "{}",
        stdout(&o)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_mass_tombstone_does_not_make_prune_delete_everything() {
    let (_w, repo, ids) = world_with_backups(5).await;
    // Prune itself takes two backups out in one entry: its own entry, deleted at once.
    let r = prune_json(&repo, &["--keep-last", "3", "--grace", "0"], &ENV);
    assert_eq!(r["deleted"].as_array().unwrap().len(), 2, "{r}");
    let ids = &ids[2..];

    // The attacker tombstones every backup "in the year 2000".
    let seq = forge(&repo, |s| {
        for b in s.live.drain(..) {
            s.tombstones.push(Tombstone {
                bid: b.bid,
                at: "2000-01-01T00:00:00Z".into(),
                manifest_sha256: None,
                generation: None,
            });
        }
    })
    .await;
    let o = prune_with(&[], &repo, &["--keep-last", "1", "--grace", "24h"], &ENV);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let e = stderr(&o);
    let what = format!(
        "catalog entry {seq} took 3 backups out of the catalog at once ({}), the newest backup \
         {} among them, and this machine did not write it",
        ids.join(", "),
        ids[2]
    );
    assert!(
        e.contains(&format!(
            "warning: {what}; prune will not delete them until you run `pgbunker prune \
             --accept-removal {seq}`\n"
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "error: {what}: refusing to prune, which would delete them\nhint: if another \
             machine's prune wrote it"
        )),
        "{e}"
    );
    for b in ids {
        assert!(backup_dir(&repo, b).join("manifest").exists(), "{b} kept");
    }
    // Accepted, the removal still waits a grace period counted from when this machine
    // first saw the tombstones, not from the year 2000.
    let accept = seq.to_string();
    let r = prune_json(
        &repo,
        &[
            "--keep-last",
            "1",
            "--grace",
            "24h",
            "--accept-removal",
            &accept,
        ],
        &ENV,
    );
    assert_eq!(r["accepted_removals"], serde_json::json!([seq]), "{r}");
    assert_eq!(r["deleted"], serde_json::json!([]), "{r}");
    assert_eq!(r["waiting"].as_array().unwrap().len(), 3, "{r}");
    for b in ids {
        assert!(backup_dir(&repo, b).join("manifest").exists(), "{b} kept");
    }
    // Once accepted, it stays accepted.
    prune_json(&repo, &["--keep-last", "1", "--grace", "24h"], &ENV);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_machine_says_what_it_trusts_and_refuses_a_hidden_newer_backup() {
    let (w, repo, ids) = world_with_backups(2).await;
    // The attacker deletes the newest catalog entry: the chain is still valid.
    std::fs::remove_file(entry_path(&repo, 2)).unwrap();
    let sha1 = hex::encode(Sha256::digest(std::fs::read(entry_path(&repo, 1)).unwrap()));
    let contact = format!(
        "warning: first contact with this repository: trusting catalog seq 1 (sha {sha1}); \
         pass --expect-seq or import a mark to check it (no state folder: this machine \
         remembers nothing between runs; set PGBUNKER_STATE_DIR)\n"
    );

    w.empty_db("dr").await;
    let target = w.pg.url("dr");
    let o = fresh_machine(&["restore", "--repo", &repo, "latest", "--target", &target]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains(&contact), "{e}");
    assert!(
        e.contains(&format!(
            "error: backup {} looks complete (its manifest and summary are there) but no \
             catalog entry lists it, and it is newer than the newest committed backup {}: the \
             newest catalog entries may have been deleted; refusing to resolve `latest` to an \
             older backup\n",
            ids[1], ids[0]
        )),
        "{e}"
    );
    assert!(e.contains("pass --force or name a backup id"), "{e}");

    // Prune must not delete it as a leftover.
    let o = fresh_machine(&["prune", "--repo", &repo, "--keep-last", "1", "--grace", "0"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "error: backup {} looks complete (its manifest and summary are there) but no \
             catalog entry lists it, and it is newer than the newest committed backup {}: the \
             newest catalog entries may have been deleted; refusing to prune, which would \
             delete it as a leftover\n",
            ids[1], ids[0]
        )),
        "{}",
        stderr(&o)
    );
    assert!(backup_dir(&repo, &ids[1]).join("manifest").exists());

    // Knowing the primary's sequence number catches it before anything else.
    let o = fresh_machine(&["--expect-seq", "2", "list", "--repo", &repo]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with(
            "error: the repository's newest catalog entry is 1, but --expect-seq says it has \
             at least 2: the newest entries may have been deleted\n"
        ),
        "{}",
        stderr(&o)
    );

    // --force goes on with what the catalog says, loudly.
    let o = fresh_machine(&[
        "--json", "restore", "--repo", &repo, "latest", "--target", &target, "--force",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(&contact), "{}", stderr(&o));
    assert_eq!(json(&stdout(&o))["backup_id"], ids[0].as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mark_carried_to_a_dr_host_catches_a_deleted_catalog_entry() {
    let (w, repo, _) = world_with_backups(2).await;
    // On the primary (the test's usual state folder).
    let mark = w.dir.path().join("repo.mark");
    ok(pgbunker(
        &[
            "mark",
            "export",
            "--repo",
            &repo,
            "--out",
            mark.to_str().unwrap(),
        ],
        &ENV,
    ));
    let exported = json(&std::fs::read_to_string(&mark).unwrap());
    assert_eq!(exported["seq"], 2, "{exported}");
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/mark.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let errors: Vec<String> = jsonschema::validator_for(&schema)
        .unwrap()
        .iter_errors(&exported)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");

    // A machine without the mark says what it trusts, in --json too.
    let other = w.dir.path().join("other-state");
    let o = machine(&other, &["--json", "list", "--repo", &repo]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed = json(&stdout(&o));
    assert_eq!(listed["catalog_seq"], 2);
    assert_eq!(listed["first_contact"]["seq"], 2, "{listed}");
    assert_eq!(listed["first_contact"]["sha256"], exported["sha256"]);
    assert!(
        stderr(&o).contains("warning: first contact with this repository: trusting catalog seq 2"),
        "{}",
        stderr(&o)
    );

    // The DR host imports the mark first, and says nothing about a first contact.
    let dr = w.dir.path().join("dr-state");
    let o = machine(
        &dr,
        &["mark", "import", "--repo", &repo, mark.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("Imported: this machine now checks repository "),
        "{}",
        stdout(&o)
    );
    let o = machine(&dr, &["list", "--repo", &repo]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("first contact"), "{}", stderr(&o));

    std::fs::remove_file(entry_path(&repo, 2)).unwrap();
    let o = machine(&dr, &["list", "--repo", &repo]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with(
            "error: the repository's catalog went backwards: this machine saw entry 2, the \
             newest now is 1"
        ),
        "{}",
        stderr(&o)
    );
    // A mark is refused by another repository.
    let elsewhere = w.init_repo("elsewhere");
    let o = machine(
        &dr,
        &[
            "mark",
            "import",
            "--repo",
            &elsewhere,
            mark.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("error: the mark is for repository "),
        "{}",
        stderr(&o)
    );
}

/// Writes a passphrase slot nobody can open, under a valid slot name.
fn plant_slot(repo: &str, kek_id: &str, body: &str) {
    std::fs::write(Path::new(repo).join("keys").join(kek_id), body).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn planted_key_slots_are_skipped_not_fatal() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    let repo = w.repo("pass");
    let env = [("PGBUNKER_PASSPHRASE", "correct horse battery staple")];
    ok(pgbunker(&["init", "--repo", &repo], &env));
    ok(pgbunker(
        &["backup", "--repo", &repo, &w.pg.url("heart")],
        &env,
    ));
    let slot = |m_kib: u64, t: u64| {
        format!(
            r#"{{"version":2,"kek_id":"{{id}}","kind":"passphrase","kdf":{{"algorithm":"argon2id","m_kib":{m_kib},"t":{t},"p":1,"salt":"00112233445566778899aabbccddeeff"}},"created_at":"2000-01-01T00:00:00Z","ring_key":"AAAA"}}"#
        )
    };
    // Names sort before any real slot's, so they are met first.
    let huge = "0000000000000001";
    plant_slot(
        &repo,
        huge,
        &slot(64 * 1024 * 1024, 3).replace("{id}", huge),
    );
    let slow = "0000000000000002";
    plant_slot(&repo, slow, &slot(64 * 1024, 100_000).replace("{id}", slow));
    let junk = "0000000000000003";
    plant_slot(&repo, junk, "{ not a slot");
    // The right passphrase opens its own slot, the cheapest, before any planted one.
    let started = std::time::Instant::now();
    let o = pgbunker(&["list", "--repo", &repo], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    let junk_warning = format!(
        "key slot {junk} is not a key slot (invalid JSON in key slot {junk}: key must be \
         a string at line 1 column 3): skipped\n"
    );
    assert!(stderr(&o).contains(&junk_warning), "{}", stderr(&o));

    // A wrong one meets them all: the costly ones are skipped, never run.
    let started = std::time::Instant::now();
    let o = pgbunker(
        &["list", "--repo", &repo],
        &[("PGBUNKER_PASSPHRASE", "guess")],
    );
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    let e = stderr(&o);
    assert!(e.contains(&junk_warning), "{e}");
    for (id, m_kib, t) in [(huge, 67108864, 3), (slow, 65536, 100000)] {
        assert!(
            e.contains(&format!(
                "key slot {id} asks for Argon2id m_kib={m_kib} t={t} p=1, beyond what \
                 pgbunker runs (m_kib 1048576, t 10, p 8): skipped\n"
            )),
            "{e}"
        );
    }
    assert!(
        e.contains("error: the key does not open this repository"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_dated_2099_dies_and_a_malformed_lock_is_ignored() {
    let (_w, repo, ids) = world_with_backups(2).await;
    let locks = Path::new(&repo).join("locks");
    std::fs::create_dir_all(&locks).unwrap();
    std::fs::write(
        locks.join("00000000000000aa.json"),
        format!(
            r#"{{"kind":"restore","bid":"{}","pid":1,"created_at":"2099-01-01T00:00:00Z","refreshed_at":"2099-01-01T00:00:00Z","host":"elsewhere"}}"#,
            ids[0]
        ),
    )
    .unwrap();
    std::fs::write(locks.join("00000000000000bb.json"), "garbage").unwrap();

    // Now: the planted lock counts as refreshed now, so it protects its backup for
    // the usual ten minutes; the malformed one is reported and ignored.
    let o = prune_with(
        &["--json"],
        &repo,
        &["--keep-last", "1", "--grace", "0"],
        &ENV,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r = json(&stdout(&o));
    assert_eq!(
        r["malformed_locks"],
        serde_json::json!(["locks/00000000000000bb.json: expected value at line 1 column 1"]),
        "{r}"
    );
    assert!(
        stderr(&o).contains(
            "warning: ignoring locks/00000000000000bb.json: it is not a lock (expected value at \
             line 1 column 1); it protects nothing, delete it unless a newer pgbunker wrote it\n"
        ),
        "{}",
        stderr(&o)
    );
    assert_eq!(r["tombstoned"], serde_json::json!([]), "{r}");

    // Eleven minutes later it is as dead as any lock nobody refreshes.
    let later = OffsetDateTime::now_utc() + time::Duration::minutes(11);
    let keep_last_1 = RetentionPolicy {
        keep_last: Some(1),
        ..Default::default()
    };
    let r = prune_at(&repo, keep_last_1, None, later).await;
    assert_eq!(r.deleted, vec![ids[0].clone()]);
    assert!(!backup_dir(&repo, &ids[0]).exists());
    let left: Vec<String> = files(&locks)
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        ["00000000000000bb.json"],
        "the dead lock went, the junk stays"
    );
}
