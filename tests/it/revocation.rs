//! Revocation and downgrade, through the binary (issue 18, parts 1 and 4): a removed
//! key whose slot was kept cannot write, an entry sealed with an old repository key is
//! refused everywhere, and a repository cannot be turned into a plaintext one.

use std::path::{Path, PathBuf};

use pgbunker::archive::{CatalogState, KeySource, Repository, Tombstone};
use pgbunker::codec::parse_key_bytes;
use pgbunker::store::Store;
use sha2::{Digest, Sha256};

use crate::support::{files, ok, pgbunker, run_sql, stderr, World, KEY, OTHER_KEY};

fn key_of(hex: &str) -> KeySource {
    KeySource::Key(parse_key_bytes(hex.as_bytes()).unwrap())
}

fn json(out: std::process::Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).expect("JSON on stdout")
}

/// The slot id `key` opens.
fn slot_of(repo: &str, key: &str) -> String {
    json(pgbunker(
        &["--json", "key", "list", "--repo", repo],
        &[("PGBUNKER_KEY", key)],
    ))["unlocked_with"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The newest catalog entry's path, sequence number and SHA-256, read from the folder.
fn newest_entry(repo: &str) -> (PathBuf, u64, String) {
    let newest = files(&Path::new(repo).join("catalog")).pop().unwrap();
    let seq: u64 = newest
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let sha = hex::encode(Sha256::digest(std::fs::read(&newest).unwrap()));
    (newest, seq, sha)
}

fn backup_dirs(repo: &str) -> usize {
    std::fs::read_dir(Path::new(repo).join("backups"))
        .unwrap()
        .count()
}

/// The victim, holding [`KEY`], gives key B ([`OTHER_KEY`]) a slot of its own.
fn add_key_b(repo: &str) {
    ok(pgbunker(
        &["key", "add", "--repo", repo],
        &[("PGBUNKER_KEY", KEY), ("PGBUNKER_NEW_KEY", OTHER_KEY)],
    ));
}

/// A failure with exit code `code` whose message holds `needle`.
fn refused(o: std::process::Output, code: i32, needle: &str) -> String {
    let msg = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "{msg}");
    assert!(msg.contains(needle), "expected {needle:?} in:\n{msg}");
    msg
}

/// The attack: add key B, keep a copy of its slot, remove B and rotate, put the slot
/// back and back up a database the attacker controls with B. Before generations bound
/// the ring key, the copied slot still opened the newest ring and the victim's
/// `restore latest` restored the attacker's backup.
#[tokio::test(flavor = "multi_thread")]
async fn a_removed_key_whose_slot_was_kept_cannot_back_up() {
    let w = World::start();
    let repo = w.backed_up().await;
    let victim = [("PGBUNKER_KEY", KEY)];
    add_key_b(&repo);
    let b = slot_of(&repo, OTHER_KEY);
    let slot = Path::new(&repo).join("keys").join(&b);
    let saved = std::fs::read(&slot).unwrap();

    let removed = json(pgbunker(
        &["--json", "key", "remove", "--repo", &repo, &b],
        &victim,
    ));
    assert_eq!(removed["removed"], b.as_str());
    ok(pgbunker(&["key", "rotate", "--repo", &repo], &victim));

    // The attacker puts the slot back and backs up their own database with B.
    std::fs::write(&slot, &saved).unwrap();
    w.empty_db("evil").await;
    run_sql(
        &w,
        "evil",
        "CREATE TABLE planted (x int); INSERT INTO planted VALUES (1)",
    )
    .await;
    let before = backup_dirs(&repo);
    let attempt = pgbunker(
        &["backup", "--repo", &repo, &w.pg.url("evil")],
        &[("PGBUNKER_KEY", OTHER_KEY)],
    );
    let msg = refused(
        attempt,
        6,
        &format!(
            "error: this key (slot {b}) was removed from the repository: it cannot open key \
             ring generation 4, so it can still read backups written before its removal but \
             can write nothing"
        ),
    );
    assert!(
        msg.contains("hint: use a key that still has a slot"),
        "{msg}"
    );
    assert_eq!(backup_dirs(&repo), before, "nothing was uploaded");
    std::fs::remove_file(&slot).unwrap();

    // The victim still restores their own backup, and verify finds everything sound.
    w.empty_db("restored").await;
    ok(w.restore(&repo, "latest", "restored"));
    w.assert_same("heart", "restored").await;
    ok(pgbunker(&["verify", "--repo", &repo, "all"], &victim));
}

/// A catalog entry sealed with a repository key from before the removal and rotation
/// (crafted through the library, as someone holding the removed key would) is refused
/// by `list`, `restore latest` and `verify`, and nobody writes on top of it.
#[tokio::test(flavor = "multi_thread")]
async fn an_entry_sealed_with_an_old_key_is_refused_everywhere() {
    let w = World::start();
    let repo = w.backed_up().await;
    let victim = [("PGBUNKER_KEY", KEY)];
    add_key_b(&repo);
    // What the holder of B keeps: the repository opened while B still had a slot.
    let attacker = Repository::open(Store::open(&repo).unwrap(), Some(&key_of(OTHER_KEY)))
        .await
        .unwrap();
    let seen = attacker.catalog().await.unwrap();
    let b = slot_of(&repo, OTHER_KEY);
    ok(pgbunker(&["key", "remove", "--repo", &repo, &b], &victim));
    ok(pgbunker(&["key", "rotate", "--repo", &repo], &victim));

    // An entry that tombstones every backup, chained to the newest one.
    let (_, seq, sha) = newest_entry(&repo);
    let forged = CatalogState {
        seq: seq + 1,
        prev_sha256: Some(sha),
        live: Vec::new(),
        tombstones: seen
            .live
            .iter()
            .map(|l| Tombstone {
                bid: l.bid.clone(),
                at: "2026-01-01T00:00:00Z".into(),
                manifest_sha256: None,
                generation: None,
            })
            .collect(),
        ..seen.clone()
    };
    let bytes = attacker.seal_catalog_entry(&forged).unwrap();
    let forged_path = Path::new(&repo)
        .join("catalog")
        .join(format!("{:020}", seq + 1));
    std::fs::write(&forged_path, bytes).unwrap();

    let expected = format!(
        "error: catalog entry {} is sealed under key ring generation 2, but generation 4 was \
         already in force when it was written: it was sealed with a removed or rotated-out \
         key, so it is refused",
        seq + 1
    );
    for args in [
        vec!["list", "--repo", repo.as_str()],
        vec!["verify", "--repo", repo.as_str(), "all"],
    ] {
        let msg = refused(pgbunker(&args, &victim), 7, &expected);
        assert!(
            msg.contains("hint: someone holding a removed or old key"),
            "{msg}"
        );
    }
    w.empty_db("restored").await;
    refused(w.restore(&repo, "latest", "restored"), 7, &expected);
    // Nobody commits on top of it either.
    let on_top = expected.replace("error: ", "error: backup failed: ");
    refused(w.backup(&repo, "heart", &[]), 7, &on_top);

    // Moved aside, the repository is whole again.
    std::fs::remove_file(&forged_path).unwrap();
    ok(w.restore(&repo, "latest", "restored"));
    w.assert_same("heart", "restored").await;
}

/// The attack: flip `encryption` to `none` in pgbunker.json and append an unsealed
/// catalog entry; a backup run that lost its key variable used to upload patient rows
/// in the clear. Refused with a message naming the downgrade, on a machine that knew
/// the repository and on one that never saw it.
#[tokio::test(flavor = "multi_thread")]
async fn a_flip_to_plaintext_is_refused_with_or_without_a_mark() {
    let w = World::start();
    let repo = w.backed_up().await;
    let config_path = Path::new(&repo).join("pgbunker.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["encryption"] = "none".into();
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();

    // The unsealed entry, made the way a plaintext repository makes its entries.
    let plain = Repository::open(Store::open(&repo).unwrap(), None)
        .await
        .unwrap();
    let (_, seq, sha) = newest_entry(&repo);
    let entry = CatalogState {
        seq: seq + 1,
        prev_sha256: Some(sha),
        ..CatalogState::default()
    };
    std::fs::write(
        Path::new(&repo)
            .join("catalog")
            .join(format!("{:020}", seq + 1)),
        plain.seal_catalog_entry(&entry).unwrap(),
    )
    .unwrap();

    let before = backup_dirs(&repo);
    let fresh_state = w.dir.path().join("fresh-state");
    let fresh = fresh_state.display().to_string();
    for env in [vec![], vec![("PGBUNKER_STATE_DIR", fresh.as_str())]] {
        let o = pgbunker(&["backup", "--repo", &repo, &w.pg.url("heart")], &env);
        let msg = refused(
            o,
            7,
            "error: backup failed: refusing a downgrade to plaintext: the repository is \
             encrypted, but pgbunker.json says it is not, and catalog entry 0 is encrypted",
        );
        assert!(
            msg.contains("hint: pgbunker.json or the catalog was tampered with"),
            "{msg}"
        );
    }
    // A machine that saw the repository encrypted says so before anything else.
    let o = pgbunker(&["list", "--repo", &repo], &[]);
    refused(o, 7, "refusing a downgrade to plaintext");
    assert_eq!(backup_dirs(&repo), before, "nothing was uploaded");

    // With the key, the flipped pgbunker.json is refused as before; put back, the
    // unsealed entry itself is refused.
    let with_key = [("PGBUNKER_KEY", KEY)];
    refused(
        pgbunker(&["list", "--repo", &repo], &with_key),
        7,
        "pgbunker.json says this repository is unencrypted",
    );
    config["encryption"] = "aes-256-gcm-siv".into();
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    refused(
        w.backup(&repo, "heart", &[]),
        7,
        &format!(
            "error: backup failed: refusing a downgrade to plaintext: the repository is \
             encrypted, but catalog entry {} is not encrypted",
            seq + 1
        ),
    );
    assert_eq!(backup_dirs(&repo), before);
}
