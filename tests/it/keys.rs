//! Key management through the binary: `key add|list|remove|rotate`, and the upgrade of
//! a version-1 repository. Tests that need no data run without PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::format::check_schemas;
use crate::support::{all_rows, files, ok, pgbunker, stderr, stdout, World, KEY, OTHER_KEY};

const PASSPHRASE: &str = "correct horse battery staple";
const V1_BACKUP: &str = "20261123T194330Z-f6f74ded";

fn slot_files(repo: &str) -> Vec<PathBuf> {
    files(&Path::new(repo).join("keys"))
}

fn json(out: Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).expect("JSON on stdout")
}

fn key_list(repo: &str, env: &[(&str, &str)]) -> serde_json::Value {
    json(pgbunker(&["--json", "key", "list", "--repo", repo], env))
}

/// Keys and passphrases never show up in what pgbunker prints.
fn assert_no_secrets(o: &Output) {
    let all = format!("{}{}", stdout(o), stderr(o));
    for secret in [KEY, OTHER_KEY, PASSPHRASE] {
        assert!(!all.contains(secret), "a secret was printed:\n{all}");
    }
}

/// A new repository under [`KEY`]; key management needs no database.
fn bare_repo(dir: &Path) -> String {
    let repo = dir.join("repo").display().to_string();
    ok(pgbunker(
        &["init", "--repo", &repo],
        &[("PGBUNKER_KEY", KEY)],
    ));
    repo
}

fn passphrase_file(dir: &Path) -> String {
    let f = dir.join("passphrase");
    std::fs::write(&f, format!("{PASSPHRASE}\n")).unwrap();
    // Secret files open to others are refused.
    std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    f.display().to_string()
}

/// The environment of a run against a fixture copy: every copy has the fixture's
/// repository id, and this machine's marks are also kept by repository id, so a copy
/// that is written to gets marks of its own.
fn v1_env<'a>(state: &'a str, key: &'a str) -> [(&'static str, &'a str); 2] {
    [("PGBUNKER_KEY", key), ("PGBUNKER_STATE_DIR", state)]
}

/// A copy of the committed version-1 repository (the fixture itself is never touched).
fn v1_copy(dir: &Path) -> String {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/repo-v1/repo");
    let repo = dir.join("repo-v1");
    for f in files(&fixture) {
        let dest = repo.join(f.strip_prefix(&fixture).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dest).unwrap();
    }
    repo.display().to_string()
}

fn file_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_passphrase_slot_from_the_new_key_variables_opens_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let repo = bare_repo(dir.path());
    let pf = passphrase_file(dir.path());
    let add = pgbunker(
        &["key", "add", "--repo", &repo],
        &[("PGBUNKER_KEY", KEY), ("PGBUNKER_NEW_PASSPHRASE_FILE", &pf)],
    );
    assert_no_secrets(&add);
    let out = ok(add);
    assert!(
        out.contains("Added key slot") && out.contains("passphrase"),
        "{out}"
    );
    assert_eq!(slot_files(&repo).len(), 2);

    let with_pass = [("PGBUNKER_PASSPHRASE_FILE", pf.as_str())];
    assert!(ok(pgbunker(&["list", "--repo", &repo], &with_pass)).contains("No backups"));
    let listing = key_list(&repo, &with_pass);
    let slots = listing["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 2);
    let pass_slot = slots.iter().find(|s| s["kind"] == "passphrase").unwrap();
    assert_eq!(pass_slot["unlocked_with"], true);
    assert_eq!(pass_slot["version"], 3);
    assert_eq!(listing["unlocked_with"], pass_slot["kek_id"]);
    assert!(pass_slot["argon2"]["m_kib"].as_u64().unwrap() >= 64 * 1024);
    // The addition started generation 2, which pins the new slot's public key.
    assert_eq!(listing["generations"].as_array().unwrap().len(), 2);

    // Without a key: the plaintext slots only.
    let locked = key_list(&repo, &[]);
    assert_eq!(locked["slots"].as_array().unwrap().len(), 2);
    assert!(locked["generations"].is_null() && locked["unlocked_with"].is_null());

    // The same passphrase twice, or no new key at all (no terminal here), is refused.
    let again = pgbunker(
        &["key", "add", "--repo", &repo],
        &[
            ("PGBUNKER_KEY", KEY),
            ("PGBUNKER_NEW_PASSPHRASE", PASSPHRASE),
        ],
    );
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    assert_no_secrets(&again);
    let none = pgbunker(&["key", "add", "--repo", &repo], &[("PGBUNKER_KEY", KEY)]);
    assert_eq!(none.status.code(), Some(2), "{}", stderr(&none));
    assert!(
        stderr(&none).contains("PGBUNKER_NEW_KEY_FILE"),
        "{}",
        stderr(&none)
    );
    assert_eq!(slot_files(&repo).len(), 2);
    check_schemas(Path::new(&repo)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn removing_the_first_slot_keeps_earlier_backups_restorable_with_the_second() {
    let w = World::start();
    let repo = w.backed_up().await;
    let pf = passphrase_file(w.dir.path());
    let with_pass = [("PGBUNKER_PASSPHRASE_FILE", pf.as_str())];
    ok(pgbunker(
        &["key", "add", "--repo", &repo],
        &[("PGBUNKER_KEY", KEY), ("PGBUNKER_NEW_PASSPHRASE_FILE", &pf)],
    ));
    let first = key_list(&repo, &[("PGBUNKER_KEY", KEY)])["unlocked_with"]
        .as_str()
        .unwrap()
        .to_owned();

    let out = ok(pgbunker(
        &["key", "remove", "--repo", &repo, &first],
        &with_pass,
    ));
    assert!(out.contains(&format!("Removed key slot {first}")), "{out}");
    assert_eq!(slot_files(&repo).len(), 1);

    w.empty_db("restored").await;
    let target = w.pg.url("restored");
    ok(pgbunker(
        &["restore", "--repo", &repo, "latest", "--target", &target],
        &with_pass,
    ));
    w.assert_same("heart", "restored").await;

    let refused = pgbunker(&["list", "--repo", &repo], &[("PGBUNKER_KEY", KEY)]);
    assert_eq!(refused.status.code(), Some(6), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("does not open this repository"),
        "{}",
        stderr(&refused)
    );
    assert_no_secrets(&refused);
}

#[tokio::test]
async fn the_last_slot_cannot_be_removed() {
    let dir = tempfile::tempdir().unwrap();
    let repo = bare_repo(dir.path());
    let env = [("PGBUNKER_KEY", KEY)];
    let only = key_list(&repo, &env)["unlocked_with"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = std::fs::read(&slot_files(&repo)[0]).unwrap();

    let refused = pgbunker(&["key", "remove", "--repo", &repo, &only], &env);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    let msg = stderr(&refused);
    assert!(
        msg.contains("is the only one") && msg.contains("hint: add another key"),
        "{msg}"
    );
    assert_eq!(std::fs::read(&slot_files(&repo)[0]).unwrap(), before);

    for bogus in ["0123456789abcdef", "../pgbunker.json"] {
        let e = pgbunker(&["key", "remove", "--repo", &repo, bogus], &env);
        assert_eq!(e.status.code(), Some(2), "{}", stderr(&e));
        assert!(stderr(&e).contains("no key slot"), "{}", stderr(&e));
    }
    assert!(Path::new(&repo).join("pgbunker.json").exists());

    // A key may remove its own slot while another remains, with a warning; the key
    // left then cannot remove the last slot.
    ok(pgbunker(
        &["key", "add", "--repo", &repo],
        &[("PGBUNKER_KEY", KEY), ("PGBUNKER_NEW_KEY", OTHER_KEY)],
    ));
    let own = pgbunker(&["key", "remove", "--repo", &repo, &only], &env);
    assert!(
        stderr(&own).contains("warning: the key used for this command"),
        "{}",
        stderr(&own)
    );
    ok(own);
    let other = [("PGBUNKER_KEY", OTHER_KEY)];
    let last = key_list(&repo, &other)["unlocked_with"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = pgbunker(&["key", "remove", "--repo", &repo, &last], &other);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert_eq!(slot_files(&repo).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_keeps_old_backups_readable_and_new_ones_use_the_new_key() {
    let w = World::start();
    let repo = w.backed_up().await;
    let env = [("PGBUNKER_KEY", KEY)];
    let latest = |repo: &str| -> String {
        json(pgbunker(&["--json", "list", "--repo", repo], &env))["backups"][0]["backup_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let before = latest(&repo);

    let rotated = json(pgbunker(
        &["--json", "key", "rotate", "--repo", &repo],
        &env,
    ));
    assert_eq!(rotated["generation"], 2);
    let (new_rk, old_rk) = (
        rotated["rk_id"].as_str().unwrap(),
        rotated["previous_rk_id"].as_str().unwrap(),
    );
    assert_ne!(new_rk, old_rk);
    ok(w.backup(&repo, "heart", &[]));
    let after = latest(&repo);
    assert_ne!(before, after);

    let backups = Path::new(&repo).join("backups");
    assert!(backups.join(&after).join(format!("dek.{new_rk}")).exists());
    assert!(backups.join(&before).join(format!("dek.{old_rk}")).exists());
    assert!(!backups.join(&after).join(format!("dek.{old_rk}")).exists());

    let listing = key_list(&repo, &env);
    let generations = listing["generations"].as_array().unwrap();
    assert_eq!(generations.len(), 2);
    assert_eq!(generations[1]["current"], new_rk);
    assert_eq!(generations[1]["rk_ids"].as_array().unwrap().len(), 2);

    for (bid, db) in [(&before, "before"), (&after, "after")] {
        w.empty_db(db).await;
        ok(w.restore(&repo, bid, db));
        w.assert_same("heart", db).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_1_repository_is_upgraded_by_key_add_and_still_restores() {
    let w = World::start();
    let repo = v1_copy(w.dir.path());
    let state = w.dir.path().join("state").display().to_string();
    let root = Path::new(&repo);
    let add = pgbunker(
        &["key", "add", "--repo", &repo],
        &[
            ("PGBUNKER_KEY", KEY),
            ("PGBUNKER_NEW_KEY", OTHER_KEY),
            ("PGBUNKER_STATE_DIR", &state),
        ],
    );
    assert_no_secrets(&add);
    assert!(ok(add).contains("Upgraded"));
    assert_eq!(file_json(&root.join("pgbunker.json"))["version"], 4);
    assert!(root.join("keyring/00000000000000000001").exists());
    let slots = slot_files(&repo);
    assert_eq!(slots.len(), 2);
    assert!(slots.iter().all(|s| file_json(s)["version"] == 3));

    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/repo-v1");
    let expected = w.db_from_sql("expected", &fixture.join("source.sql")).await;
    let restored = w.empty_db("restored").await;
    ok(pgbunker(
        &[
            "restore",
            "--repo",
            &repo,
            V1_BACKUP,
            "--target",
            &w.pg.url("restored"),
        ],
        &v1_env(&state, OTHER_KEY),
    ));
    assert_eq!(all_rows(&expected).await, all_rows(&restored).await);
    assert_eq!(w.schema_dump("expected"), w.schema_dump("restored"));

    // The old key still opens it; the version-1 ring is generation 1 of the new one,
    // the upgrade to format 3 wrote generation 2 and the addition generation 3.
    let env = v1_env(&state, KEY);
    assert!(ok(pgbunker(&["list", "--repo", &repo], &env)).contains(V1_BACKUP));
    ok(pgbunker(&["key", "rotate", "--repo", &repo], &env));
    let v1_rk = files(&root.join("backups").join(V1_BACKUP))
        .iter()
        .find_map(|f| {
            f.file_name()?
                .to_str()?
                .strip_prefix("dek.")
                .map(str::to_owned)
        })
        .unwrap();
    let listing = key_list(&repo, &env);
    let generations = listing["generations"].as_array().unwrap();
    assert_eq!(generations.len(), 4);
    assert_eq!(generations[0]["current"], v1_rk.as_str());
    assert!(generations[3]["rk_ids"]
        .as_array()
        .unwrap()
        .contains(&v1_rk.as_str().into()));
    assert_ne!(generations[3]["current"], v1_rk.as_str());
    check_schemas(root).await;
}

#[tokio::test]
async fn a_wrong_current_key_adds_no_slot_and_upgrades_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = [
        ("PGBUNKER_KEY", OTHER_KEY),
        ("PGBUNKER_NEW_PASSPHRASE", PASSPHRASE),
    ];
    let repo = bare_repo(dir.path());
    let e = pgbunker(&["key", "add", "--repo", &repo], &wrong);
    assert_eq!(e.status.code(), Some(6), "{}", stderr(&e));
    assert!(
        stderr(&e).contains("does not open this repository"),
        "{}",
        stderr(&e)
    );
    assert_no_secrets(&e);
    assert_eq!(slot_files(&repo).len(), 1);

    let v1 = v1_copy(dir.path());
    let e = pgbunker(&["key", "add", "--repo", &v1], &wrong);
    assert_eq!(e.status.code(), Some(6), "{}", stderr(&e));
    let slots = slot_files(&v1);
    assert_eq!(slots.len(), 1);
    assert_eq!(file_json(&slots[0])["version"], 1);
    assert_eq!(
        file_json(&Path::new(&v1).join("pgbunker.json"))["version"],
        1
    );
    assert!(!Path::new(&v1).join("keyring").exists());
}

/// Slots are plaintext: whoever kept a copy of the version-1 slot must not be able to
/// put it back after a rotation and roll the repository keys back.
#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_version_1_slot_is_refused_after_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let repo = v1_copy(dir.path());
    let state = dir.path().join("state").display().to_string();
    let env = v1_env(&state, KEY);
    let old_slot = slot_files(&repo).remove(0);
    let saved = std::fs::read(&old_slot).unwrap();
    ok(pgbunker(&["key", "rotate", "--repo", &repo], &env));
    ok(pgbunker(&["list", "--repo", &repo], &env));
    std::fs::write(&old_slot, saved).unwrap();
    let o = pgbunker(&["list", "--repo", &repo], &env);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(stderr(&o).contains("put back"), "{}", stderr(&o));
}
