//! Deduplicated backups (format 5): later backups store only new chunks and still
//! restore as whole snapshots; a shared chunk's damage is reported for every backup
//! listing it; forged, renamed or foreign chunks are refused; prune sweeps only chunks
//! no backup lists, never while a backup runs, and backups wait for a sweep.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    chunk_files, delta_chunks, ok, pgbunker, pgbunker_command, run_sql, stderr, stdout,
    table_chunks, World, KEY,
};

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// The fixture in database `heart`, a new repository, and a state folder for prune.
async fn clinic(w: &World) -> (String, String) {
    w.fixture_db("heart", 1).await;
    let repo = w.init_repo("repo");
    (repo, w.dir.path().join("state").display().to_string())
}

/// Restores `which` into a new database `db` and checks it holds what `like` holds.
async fn restores_as(w: &World, repo: &str, which: &str, db: &str, like: &str) {
    w.empty_db(db).await;
    ok(w.restore(repo, which, db));
    w.assert_same(like, db).await;
}

/// Appends vitals and changes a few patients, as a day in a clinic does.
const A_DAY: &str = "
    INSERT INTO public.vitals_samples (patient_id, recorded_at, kind, value, unit, source, device_id)
        SELECT patient_id, recorded_at + interval '1 day', kind, value + 1, unit, source, device_id
        FROM public.vitals_samples ORDER BY id LIMIT 300;
    UPDATE public.patients SET risk_score = coalesce(risk_score, 0) + 1 WHERE id % 50 = 0;
";

/// Small chunks, so that the scale-1 fixture spans many.
fn backup_json(w: &World, repo: &str) -> Value {
    json(&ok(w.backup(
        repo,
        "heart",
        &["--json", "--chunk-size-kb", "64"],
    )))
}

#[tokio::test(flavor = "multi_thread")]
async fn later_backups_store_only_what_changed_and_each_restores_whole() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    let repo = w.init_repo("repo");
    let first = backup_json(&w, &repo);
    let s = &first["summary"];
    assert_eq!(s["new_chunks"], s["chunks"], "a first backup is a full one");
    let ids = [&first].map(|b| b["backup_id"].as_str().unwrap().to_owned());
    restores_as(&w, &repo, &ids[0], "day1", "heart").await;

    run_sql(&w, "heart", A_DAY).await;
    let second = backup_json(&w, &repo);
    let s = &second["summary"];
    let (new, all) = (
        s["new_bytes"].as_u64().unwrap(),
        s["stored_bytes"].as_u64().unwrap(),
    );
    assert!(
        new > 0 && new * 3 < all,
        "only changed chunks uploaded: {s}"
    );
    let tables = second["tables"].as_array().unwrap();
    let unchanged = tables
        .iter()
        .find(|t| t["table"] == "public.organizations")
        .unwrap();
    assert_eq!(unchanged["new_chunks"], 0, "{unchanged}");

    // Both are whole snapshots: the first reads as it did, now sharing its chunks.
    restores_as(&w, &repo, &ids[0], "r1", "day1").await;
    restores_as(&w, &repo, "latest", "r2", "heart").await;
}

/// A chunk whose rows changed here and there is stored as a small delta against the
/// chunks the previous backup had there; restore reads it through them, verify names
/// a missing base, and prune keeps bases while a delta needs them.
#[tokio::test(flavor = "multi_thread")]
async fn changed_chunks_are_small_deltas_whose_bases_are_kept_and_checked() {
    let w = World::start();
    let (repo, state) = clinic(&w).await;
    let env = [
        ("PGBUNKER_KEY", KEY),
        ("PGBUNKER_STATE_DIR", state.as_str()),
    ];
    let patients = |b: &Value| {
        b["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == "public.patients")
            .unwrap()
            .clone()
    };
    let first = patients(&backup_json(&w, &repo));
    run_sql(&w, "heart", A_DAY).await;
    let second = backup_json(&w, &repo);
    let (new, whole) = (
        patients(&second)["new_bytes"].as_u64().unwrap(),
        first["stored_bytes"].as_u64().unwrap(),
    );
    assert!(
        new > 0 && new * 4 < whole,
        "2 % of the patients changed: {new} bytes uploaded, {whole} stored whole"
    );
    let deltas = delta_chunks(&repo, "latest").await;
    assert!(!deltas.is_empty(), "changed chunks are deltas: {second}");

    // Pruning the first backup keeps the bases the second one's deltas need.
    ok(pgbunker(
        &["prune", "--repo", &repo, "--keep-last", "1", "--grace", "0"],
        &env,
    ));
    for (_, bases) in &deltas {
        assert!(bases.iter().all(|b| b.exists()), "a base was swept");
    }
    restores_as(&w, &repo, "latest", "restored", "heart").await;

    // A missing base is named, at every depth, and restore refuses before writing.
    let (delta, bases) = &deltas[0];
    std::fs::remove_file(&bases[0]).unwrap();
    let o = pgbunker(&["verify", "--repo", &repo, "latest"], &env);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let name = bases[0].file_name().unwrap().to_str().unwrap();
    assert!(
        stdout(&o).contains(name) && stdout(&o).contains("base"),
        "{}",
        stdout(&o)
    );
    let o = pgbunker(&["verify", "--repo", &repo, "--data", "latest"], &env);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let delta_name = delta.file_name().unwrap().to_str().unwrap();
    assert!(stdout(&o).contains(delta_name), "{}", stdout(&o));
    w.empty_db("refused").await;
    let o = w.restore(&repo, "latest", "refused");
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_chunk_two_backups_share_is_reported_for_both() {
    let w = World::start();
    let repo = w.backed_up().await;
    ok(w.backup(&repo, "heart", &[]));
    let victim = table_chunks(&repo, "latest", "public.vitals_samples").await[0].clone();
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&victim, bytes).unwrap();

    let o = pgbunker(
        &["--json", "verify", "--repo", &repo, "--data", "all"],
        &[("PGBUNKER_KEY", KEY)],
    );
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let report = json(&stdout(&o));
    let name = victim.file_name().unwrap().to_str().unwrap();
    for b in report["backups"].as_array().unwrap() {
        assert_eq!(b["ok"], false, "{b}");
        assert!(b.to_string().contains(name), "{b}");
    }
    // Read once: the second verdict comes from the first check.
    let read: u64 = report["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["bytes_read"].as_u64().unwrap())
        .sum();
    let stored: u64 = chunk_files(Path::new(&repo))
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(read <= stored, "{read} bytes read of {stored} stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renamed_forged_or_foreign_chunk_is_refused() {
    let w = World::start();
    let repo = w.backed_up().await;
    let other = w.init_repo("other");
    ok(w.backup(&other, "heart", &[]));
    let vitals = table_chunks(&repo, "latest", "public.vitals_samples").await;
    let patients = table_chunks(&repo, "latest", "public.patients").await;
    let foreign = table_chunks(&other, "latest", "public.patients").await;
    let env = [("PGBUNKER_KEY", KEY)];
    let verify = || {
        let o = pgbunker(
            &["--json", "verify", "--repo", &repo, "--data", "latest"],
            &env,
        );
        assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
        stdout(&o)
    };

    // Another repository's chunk of the same rows: another key, another name, refused.
    assert_ne!(foreign[0].file_name(), patients[0].file_name());
    let original = std::fs::read(&patients[0]).unwrap();
    std::fs::copy(&foreign[0], &patients[0]).unwrap();
    assert!(verify().contains("public.patients"));
    // A chunk of this repository put under another chunk's name (a valid id, the wrong
    // one), then the same with its header's id rewritten to match.
    let swapped = std::fs::read(&vitals[0]).unwrap();
    std::fs::write(&patients[0], &swapped).unwrap();
    assert!(verify().contains("public.patients"));
    let mut renamed = swapped.clone();
    let id = hex::decode(patients[0].file_name().unwrap().to_str().unwrap()).unwrap();
    renamed[32..64].copy_from_slice(&id);
    std::fs::write(&patients[0], &renamed).unwrap();
    assert!(verify().contains("public.patients"));
    std::fs::write(&patients[0], &original).unwrap();
    ok(pgbunker(
        &["verify", "--repo", &repo, "--data", "latest"],
        &env,
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_sweeps_only_unlisted_chunks_and_never_under_a_running_backup() {
    let w = World::start();
    let (repo, state) = clinic(&w).await;
    let env = [
        ("PGBUNKER_KEY", KEY),
        ("PGBUNKER_STATE_DIR", state.as_str()),
    ];
    ok(w.backup(&repo, "heart", &[]));
    let gone = table_chunks(&repo, "latest", "public.vitals_samples").await;
    run_sql(
        &w,
        "heart",
        "DELETE FROM public.vitals_samples WHERE id % 2 = 0",
    )
    .await;
    ok(w.backup(&repo, "heart", &[]));
    let kept = chunk_files(Path::new(&repo));
    let prune = |extra: &[&str]| {
        let mut args = vec![
            "--json",
            "prune",
            "--repo",
            &repo,
            "--keep-last",
            "1",
            "--grace",
            "0",
        ];
        args.extend_from_slice(extra);
        json(&ok(pgbunker(&args, &env)))
    };

    // A backup holds its lock: the sweep waits for the next prune.
    let lock = Path::new(&repo).join("locks/0000000000000001.json");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let body = format!(
        r#"{{"kind":"backup","bid":"29991231T235959Z-00000001","pid":1,"created_at":"{now}","refreshed_at":"{now}"}}"#
    );
    std::fs::write(&lock, body).unwrap();
    let report = prune(&[]);
    assert_eq!(report["deleted"].as_array().unwrap().len(), 1, "{report}");
    assert!(
        report["chunks"]["deferred"]
            .as_str()
            .unwrap()
            .contains("is running"),
        "{report}"
    );
    assert!(
        gone.iter().all(|c| c.exists()),
        "nothing swept under a running backup"
    );
    std::fs::remove_file(&lock).unwrap();

    let report = prune(&[]);
    assert!(
        report["chunks"]["deleted"].as_u64().unwrap() > 0,
        "{report}"
    );
    let still: Vec<_> = chunk_files(Path::new(&repo));
    assert!(still.len() < kept.len());
    for c in table_chunks(&repo, "latest", "public.vitals_samples").await {
        assert!(c.exists(), "a listed chunk was swept: {c:?}");
    }
    let o = json(&ok(pgbunker(
        &["--json", "verify", "--repo", &repo, "--data", "all"],
        &env,
    )));
    assert_eq!(o["unreferenced"]["chunks"], 0, "{o}");
    restores_as(&w, &repo, "latest", "restored", "heart").await;

    // A sweep holds its lock: a backup waits until it is gone, then runs.
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(
        &lock,
        format!(
            r#"{{"kind":"sweep","bid":"chunks","pid":1,"created_at":"{now}","refreshed_at":"{now}"}}"#
        ),
    )
    .unwrap();
    let started = Instant::now();
    let mut child = pgbunker_command(&["backup", "--repo", &repo, &w.pg.url("heart")], &env)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the backup waits for the sweep"
    );
    std::fs::remove_file(&lock).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(started.elapsed() >= Duration::from_secs(3));
}

/// Thirty days of a clinic: days 1, 15 and 30, restored at the end from a repository
/// whose backups share chunks and hold deltas, are what they were on their day.
#[tokio::test(flavor = "multi_thread")]
async fn thirty_daily_backups_each_restore_as_their_day() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    let repo = w.init_repo("repo");
    let mut checked = Vec::new();
    for day in 1..=30 {
        if day > 1 {
            run_sql(&w, "heart", A_DAY).await;
        }
        let id = backup_json(&w, &repo)["backup_id"]
            .as_str()
            .unwrap()
            .to_owned();
        if [1, 15, 30].contains(&day) {
            let then = format!("day{day}");
            w.empty_db(&then).await;
            ok(w.restore(&repo, &id, &then));
            w.assert_same("heart", &then).await;
            checked.push((id, then));
        }
    }
    ok(pgbunker(
        &["verify", "--repo", &repo, "--data", "all"],
        &[("PGBUNKER_KEY", KEY)],
    ));
    for (id, then) in checked {
        let now = format!("{then}_again");
        w.empty_db(&now).await;
        ok(w.restore(&repo, &id, &now));
        w.assert_same(&then, &now).await;
    }
}

/// Backups and prunes (no grace period) running at the same time, over and over: every
/// backup that committed still verifies and restores.
#[tokio::test(flavor = "multi_thread")]
async fn backups_and_prunes_at_the_same_time_never_lose_a_listed_chunk() {
    let w = World::start();
    let (repo, state) = clinic(&w).await;
    let env = [
        ("PGBUNKER_KEY", KEY),
        ("PGBUNKER_STATE_DIR", state.as_str()),
    ];
    ok(w.backup(&repo, "heart", &["--chunk-size-kb", "64"]));
    let url = w.pg.url("heart");
    for _ in 0..4 {
        run_sql(&w, "heart", A_DAY).await;
        let backups: Vec<_> = (0..2)
            .map(|_| {
                pgbunker_command(
                    &["backup", "--repo", &repo, "--chunk-size-kb", "64", &url],
                    &env,
                )
                .spawn()
                .unwrap()
            })
            .collect();
        let prune = pgbunker_command(
            &["prune", "--repo", &repo, "--keep-last", "1", "--grace", "0"],
            &env,
        )
        .spawn()
        .unwrap();
        for mut child in backups {
            assert!(child.wait().unwrap().success(), "a backup failed");
        }
        // A prune may refuse a removal it did not write (another prune's): that is
        // no loss; what matters is below.
        let _ = prune.wait_with_output();
        ok(pgbunker(
            &["verify", "--repo", &repo, "--data", "all"],
            &env,
        ));
    }
    restores_as(&w, &repo, "latest", "restored", "heart").await;
}

/// Tables holding the same rows share their chunks, and workers that write the same
/// new chunk at the same moment agree on one object.
#[tokio::test(flavor = "multi_thread")]
async fn identical_tables_written_at_once_share_their_chunks() {
    let w = World::start();
    w.empty_db("twins").await;
    let mut sql = String::new();
    for i in 0..24 {
        sql.push_str(&format!(
            "CREATE TABLE public.t{i} (id int PRIMARY KEY, body text);
             INSERT INTO public.t{i} SELECT g, md5(g::text) FROM generate_series(1, 4000) g;"
        ));
    }
    run_sql(&w, "twins", &sql).await;
    let repo = w.init_repo("repo");
    let out = json(&ok(w.backup(
        &repo,
        "twins",
        &["--json", "-j", "4", "--chunk-size-kb", "64"],
    )));
    let s = &out["summary"];
    let (new, all) = (
        s["new_chunks"].as_u64().unwrap(),
        s["chunks"].as_u64().unwrap(),
    );
    assert!(new * 10 < all, "{s}");
    ok(pgbunker(
        &["verify", "--repo", &repo, "--data", "latest"],
        &[("PGBUNKER_KEY", KEY)],
    ));
    restores_as(&w, &repo, "latest", "restored", "twins").await;
}
