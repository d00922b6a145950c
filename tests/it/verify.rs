//! `verify` and restore's pre-flight check against real damage: each kind of tampering
//! is named (table, chunk, reason) with exit 7, metadata-only runs catch what needs no
//! download, samples rotate through every chunk, and restore refuses a damaged backup
//! before creating anything in the target.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{files, ok, pgbunker, stderr, stdout, table_chunks, World, KEY, OTHER_KEY};

const ENV: [(&str, &str); 1] = [("PGBUNKER_KEY", KEY)];

/// `public.bulky` spans many 64 KiB chunks, `public.notes` one, `public.empty` one
/// empty FINAL chunk.
const LAB: &str = "
    CREATE TABLE public.bulky (id int PRIMARY KEY, body text NOT NULL);
    INSERT INTO public.bulky
        SELECT g, md5(random()::text) || md5(random()::text)
        FROM generate_series(1, 20000) AS g;
    CREATE TABLE public.notes (id int PRIMARY KEY, bulky_id int REFERENCES public.bulky, note text);
    INSERT INTO public.notes SELECT g, g, 'note ' || g FROM generate_series(1, 500) AS g;
    CREATE TABLE public.empty (id int);
";

/// A cluster with database `lab`, backed up once with 64 KiB chunks into `pristine`.
struct Lab {
    w: World,
    pristine: String,
    bid: String,
}

async fn lab() -> Lab {
    let w = World::start();
    let db = w.empty_db("lab").await;
    db.connect()
        .await
        .expect("connect")
        .batch_execute(LAB)
        .await
        .expect("create the lab tables");
    let pristine = w.init_repo("pristine");
    let out = ok(w.backup(&pristine, "lab", &["--json", "--chunk-size-kb", "64"]));
    let bid = json(&out)["backup_id"].as_str().unwrap().to_owned();
    Lab { w, pristine, bid }
}

/// A repository copy to damage, and where the lab tables' chunks are in it.
struct Copy {
    repo: String,
    /// `public.bulky`'s chunks, by index.
    bulky: Vec<PathBuf>,
    /// `public.notes`' only chunk.
    notes: PathBuf,
}

impl Lab {
    async fn copy(&self, name: &str) -> Copy {
        let repo = self.w.repo(name);
        for f in files(Path::new(&self.pristine)) {
            let to = Path::new(&repo).join(f.strip_prefix(&self.pristine).unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&f, &to).unwrap();
        }
        // Chunks are named by their content: the manifest says which are whose.
        let bulky = table_chunks(&repo, &self.bid, "public.bulky").await;
        assert!(bulky.len() >= 4, "bulky spans several chunks: {bulky:?}");
        let notes = table_chunks(&repo, &self.bid, "public.notes").await;
        assert_eq!(notes.len(), 1, "{notes:?}");
        Copy {
            notes: notes[0].clone(),
            bulky,
            repo,
        }
    }
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// The repository key of an object (what reports print): its path inside `repo`.
fn key(repo: &str, path: &Path) -> String {
    path.strip_prefix(repo).unwrap().display().to_string()
}

/// `pgbunker --json verify --repo REPO ARGS…` under `env`: exit code, report, stderr.
fn verify_with(repo: &str, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, Value, String) {
    let mut all = vec!["--json", "verify", "--repo", repo];
    all.extend_from_slice(args);
    let o = pgbunker(&all, env);
    let out = stdout(&o);
    let report = if out.trim().is_empty() {
        Value::Null
    } else {
        json(&out)
    };
    (o.status.code(), report, stderr(&o))
}

fn verify(repo: &str, args: &[&str]) -> (Option<i32>, Value, String) {
    verify_with(repo, args, &ENV)
}

/// Every problem of a report as (table, chunk path, chunk index, reason).
fn problems(report: &Value) -> Vec<(String, String, Option<u64>, String)> {
    let mut out = Vec::new();
    for b in report["backups"].as_array().unwrap() {
        for p in b["problems"].as_array().unwrap() {
            out.push((
                p["table"].as_str().unwrap_or("").to_owned(),
                p["chunk"]["path"].as_str().unwrap_or("").to_owned(),
                p["chunk"]["index"].as_u64(),
                p["reason"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
}

/// Asserts a damaged-backup outcome: exit 7, `"ok": false` in the report printed
/// before the error line, and a problem naming `table` and `chunk` whose reason holds
/// `why`.
fn assert_names(got: &(Option<i32>, Value, String), table: &str, chunk: &str, why: &str) {
    let (code, report, err) = got;
    assert_eq!(*code, Some(7), "{report}\n{err}");
    assert_eq!(report["ok"], false, "{report}");
    assert!(err.contains("error: verification found"), "{err}");
    let found = problems(report);
    assert!(
        found
            .iter()
            .any(|(t, c, _, r)| t == table && c == chunk && r.contains(why)),
        "no problem names {table} {chunk} ({why}): {found:#?}"
    );
}

/// Relations in the target's user schemas: restore must not have created any.
async fn user_relations(w: &World, db: &str) -> i64 {
    w.pg.conn(db)
        .connect()
        .await
        .expect("connect")
        .query_one(
            "SELECT count(*) FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'",
            &[],
        )
        .await
        .expect("count relations")
        .get(0)
}

/// Restore of the damaged latest backup fails with exit 7, names the damage (`names`)
/// and leaves `db` empty.
async fn assert_restore_refused(w: &World, repo: &str, db: &str, names: &str) {
    w.empty_db(db).await;
    let o = w.restore(repo, "latest", db);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("failed the pre-flight check")
            && err.contains("nothing was written to the target")
            && err.contains(names),
        "{err}"
    );
    assert_eq!(user_relations(w, db).await, 0, "restore wrote to {db}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flipped_byte_is_named_by_data_verify_and_refused_by_restore() {
    let lab = lab().await;
    let c = lab.copy("flipped").await;
    let victim = &c.bulky[3];
    let mut bytes = std::fs::read(victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(victim, &bytes).unwrap();

    let got = verify(&c.repo, &["--data"]);
    assert_names(&got, "public.bulky", &key(&c.repo, victim), "SHA-256");
    assert_eq!(problems(&got.1).len(), 1, "{}", got.1);
    assert_eq!(
        got.1["backups"][0]["chunks"].as_u64(),
        Some(c.bulky.len() as u64 + 2)
    );
    // Lengths still match: the metadata check cannot see a flipped bit.
    let (code, report, err) = verify(&c.repo, &[]);
    assert_eq!(code, Some(0), "{report}\n{err}");

    assert_restore_refused(&lab.w, &c.repo, "target", "public.bulky [part 0, chunk 3]").await;
    // Without the pre-flight, loading still catches the chunk, but only after the
    // schema and the tables before it were written.
    lab.w.empty_db("unchecked").await;
    let o = lab
        .w
        .restore_with(&c.repo, "latest", "unchecked", &["--no-preflight"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(user_relations(&lab.w, "unchecked").await > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_chunk_is_caught_without_downloading_anything() {
    let lab = lab().await;
    let c = lab.copy("truncated").await;
    let victim = &c.bulky[1];
    let bytes = std::fs::read(victim).unwrap();
    std::fs::write(victim, &bytes[..bytes.len() - 100]).unwrap();
    let path = key(&c.repo, victim);

    let meta = verify(&c.repo, &[]);
    assert_names(&meta, "public.bulky", &path, "bytes, the manifest says");
    assert_eq!(meta.1["backups"][0]["chunks_read"], 0, "{}", meta.1);
    assert_names(
        &verify(&c.repo, &["--data"]),
        "public.bulky",
        &path,
        "bytes",
    );
    assert_restore_refused(&lab.w, &c.repo, "target", "public.bulky [part 0, chunk 1]").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_chunk_is_caught_by_every_depth() {
    let lab = lab().await;
    let c = lab.copy("deleted").await;
    let victim = c.bulky.last().unwrap();
    std::fs::remove_file(victim).unwrap();
    let path = key(&c.repo, victim);

    assert_names(&verify(&c.repo, &[]), "public.bulky", &path, "is missing");
    assert_names(
        &verify(&c.repo, &["--data", "-j", "2"]),
        "public.bulky",
        &path,
        "is missing",
    );
    // The text report names it too, and ends with the summary line.
    let o = pgbunker(&["verify", "--repo", &c.repo, "--data"], &ENV);
    assert_eq!(o.status.code(), Some(7));
    let text = stdout(&o);
    assert!(text.contains("DAMAGED") && text.contains(&path), "{text}");
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("Verified 1 backup (data): 1 damaged"),
        "{text}"
    );
    assert_restore_refused(
        &lab.w,
        &c.repo,
        "target",
        &format!("public.bulky [part 0, chunk {}]", c.bulky.len() - 1),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_swapped_chunks_of_one_table_are_both_named() {
    let lab = lab().await;
    let c = lab.copy("swapped").await;
    let (a, b) = (&c.bulky[1], &c.bulky[2]);
    let (ba, bb) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    std::fs::write(a, &bb).unwrap();
    std::fs::write(b, &ba).unwrap();

    let got = verify(&c.repo, &["--data"]);
    assert_names(&got, "public.bulky", &key(&c.repo, a), "");
    assert_names(&got, "public.bulky", &key(&c.repo, b), "");
    let indexes: Vec<Option<u64>> = problems(&got.1).iter().map(|p| p.2).collect();
    assert!(
        indexes.contains(&Some(1)) && indexes.contains(&Some(2)),
        "{indexes:?}"
    );
    assert_restore_refused(&lab.w, &c.repo, "target", "public.bulky [part 0, chunk 1]").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chunk_moved_to_another_table_is_named_under_the_table_it_landed_in() {
    let lab = lab().await;
    let c = lab.copy("moved").await;
    std::fs::copy(&c.bulky[0], &c.notes).unwrap();

    let got = verify(&c.repo, &["--data"]);
    assert_names(&got, "public.notes", &key(&c.repo, &c.notes), "");
    assert!(
        problems(&got.1).iter().all(|p| p.0 == "public.notes"),
        "{:#?}",
        problems(&got.1)
    );
    assert_restore_refused(&lab.w, &c.repo, "target", "public.notes [part 0, chunk 0]").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_from_another_backup_is_refused() {
    let lab = lab().await;
    let c = lab.copy("manifest").await;
    let out = ok(lab.w.backup(&c.repo, "lab", &["--json"]));
    let newer = json(&out)["backup_id"].as_str().unwrap().to_owned();
    let backups = Path::new(&c.repo).join("backups");
    std::fs::copy(
        backups.join(&newer).join("manifest"),
        backups.join(&lab.bid).join("manifest"),
    )
    .unwrap();

    let (code, report, err) = verify(&c.repo, &[&lab.bid, "--data"]);
    assert_eq!(code, Some(7), "{report}\n{err}");
    let found = problems(&report);
    assert!(
        found.len() == 1 && found[0].3.contains("manifest"),
        "{found:#?}"
    );
    // `all` names the damaged backup and passes the other.
    let (code, report, err) = verify(&c.repo, &["all"]);
    assert_eq!(code, Some(7), "{report}\n{err}");
    let verdicts: Vec<(String, bool)> = report["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["backup_id"].as_str().unwrap().into(), b["ok"] == true))
        .collect();
    assert_eq!(verdicts, vec![(newer, true), (lab.bid.clone(), false)]);

    lab.w.empty_db("target").await;
    let o = lab.w.restore(&c.repo, &lab.bid, "target");
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert_eq!(user_relations(&lab.w, "target").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_key_cannot_check_and_says_so() {
    let lab = lab().await;
    let (code, report, err) =
        verify_with(&lab.pristine, &["--data"], &[("PGBUNKER_KEY", OTHER_KEY)]);
    assert_eq!(code, Some(6), "{report}\n{err}");
    assert_eq!(report, Value::Null, "no report when nothing was checked");
    assert!(err.contains("key"), "{err}");
    lab.w.empty_db("target").await;
    let target = lab.w.pg.url("target");
    let o = pgbunker(
        &[
            "restore",
            "--repo",
            &lab.pristine,
            "latest",
            "--target",
            &target,
        ],
        &[("PGBUNKER_KEY", OTHER_KEY)],
    );
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert_eq!(user_relations(&lab.w, "target").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_backup_passes_every_depth_and_restore_reports_the_preflight() {
    let w = World::start();
    let repo = w.backed_up().await;
    for args in [vec![], vec!["--data"], vec!["--sample", "50"]] {
        let (code, report, err) = verify(&repo, &args);
        assert_eq!(code, Some(0), "{args:?}: {report}\n{err}");
        assert_eq!(report["ok"], true);
        assert_eq!(report["problems"], 0);
    }
    let (_, report, _) = verify(&repo, &["--data"]);
    let b = &report["backups"][0];
    assert_eq!(b["chunks_read"], b["chunks"], "{report}");
    assert_eq!(b["parts_checksummed"], b["parts"], "{report}");
    assert!(b["rows_read"].as_u64().unwrap() > 1000, "{report}");
    let o = pgbunker(&["verify", "--repo", &repo, "--data"], &ENV);
    let text = ok(o);
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("Verified 1 backup (data): all sound"),
        "{text}"
    );

    w.empty_db("checked").await;
    let out = ok(w.restore_with(&repo, "latest", "checked", &["--json"]));
    assert!(json(&out)["preflight_seconds"].as_f64().is_some(), "{out}");
    w.empty_db("unchecked").await;
    let out = ok(w.restore_with(&repo, "latest", "unchecked", &["--json", "--no-preflight"]));
    assert_eq!(json(&out)["preflight_seconds"], Value::Null, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn samples_rotate_so_two_half_samples_read_every_chunk_once() {
    let lab = lab().await;
    let c = lab.copy("sampled").await;
    let all: Vec<String> = crate::support::chunk_files(Path::new(&c.repo))
        .into_iter()
        .map(|p| key(&c.repo, &p))
        .collect();
    let (first, second) = (
        verify(&c.repo, &["--sample", "50"]),
        verify(&c.repo, &["--sample", "50"]),
    );
    for (code, report, err) in [&first, &second] {
        assert_eq!(*code, Some(0), "{report}\n{err}");
        assert_eq!(report["sample"]["buckets"], 2);
        assert_eq!(report["sample"]["rotating"], true);
    }
    assert_ne!(first.1["sample"]["bucket"], second.1["sample"]["bucket"]);
    let read = |r: &Value| r["backups"][0]["chunks_read"].as_u64().unwrap();
    assert_eq!(
        read(&first.1) + read(&second.1),
        all.len() as u64,
        "{}\n{}",
        first.1,
        second.1
    );

    // With every chunk damaged, each run names exactly the chunks of its bucket: the
    // two runs together name every chunk, and none twice.
    for f in crate::support::chunk_files(Path::new(&c.repo)) {
        let mut bytes = std::fs::read(&f).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x80;
        std::fs::write(&f, &bytes).unwrap();
    }
    let mut named: Vec<String> = Vec::new();
    let mut buckets = Vec::new();
    for _ in 0..2 {
        let (code, report, err) = verify(&c.repo, &["--sample", "50"]);
        assert_eq!(code, Some(7), "{report}\n{err}");
        buckets.push(report["sample"]["bucket"].clone());
        named.extend(problems(&report).into_iter().map(|p| p.1));
    }
    assert_ne!(buckets[0], buckets[1]);
    named.sort();
    let mut expected = all.clone();
    expected.sort();
    assert_eq!(named, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_all_checks_every_complete_backup() {
    let w = World::start();
    let repo = w.backed_up().await;
    ok(w.backup(&repo, "heart", &[]));
    let (code, report, err) = verify(&repo, &["all", "--data"]);
    assert_eq!(code, Some(0), "{report}\n{err}");
    assert_eq!(report["backups"].as_array().unwrap().len(), 2, "{report}");
    let text = ok(pgbunker(&["verify", "--repo", &repo, "all"], &ENV));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[2].starts_with("Verified 2 backups (metadata): all sound"),
        "{text}"
    );
    // An unknown backup cannot be checked: a usage error, not damage.
    let (code, _, err) = verify(&repo, &["20200101T000000Z-00000000"]);
    assert_eq!(code, Some(2), "{err}");
}
