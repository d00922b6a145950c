//! Test support: a throwaway cluster per test (pgbunker's own sandbox: initdb in a
//! temp folder, free port, unprivileged user when root, removed on drop even when the
//! test panics), the pgbunker binary, and independent oracles (pg_dump, text rows).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pgbunker::pg::ConnSpec;
use pgbunker::sandbox::{fixture, Sandbox};

pub const KEY: &str = "6f1b0c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b";
pub const OTHER_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000001";

/// A running cluster plus a scratch folder for repositories.
pub struct World {
    pub pg: Sandbox,
    pub dir: tempfile::TempDir,
}

impl World {
    pub fn start() -> World {
        let pg = Sandbox::start().unwrap_or_else(|e| {
            panic!("could not start a throwaway PostgreSQL: {e}\nhint: install the PostgreSQL server or set PGBUNKER_PG_BIN (scripts/fetch-postgres installs other versions)")
        });
        World {
            pg,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A cluster of the server whose bin folder the environment variable `var` names
    /// (`PGBUNKER_PG_BIN_OLD`, `PGBUNKER_PG_BIN_NEW`): a second server version in one
    /// test. Fails, never skips, when the variable is unset.
    pub fn start_version(var: &str) -> World {
        let dir = std::env::var_os(var)
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| {
                panic!(
                    "{var} is not set: this test needs two PostgreSQL versions.\n\
                 hint: run scripts/fetch-postgres once, then set \
                 PGBUNKER_PG_BIN_OLD=/opt/pgbunker-pg/13/bin \
                 PGBUNKER_PG_BIN_NEW=/opt/pgbunker-pg/18/bin \
                 PGBUNKER_PG_DUMP=/opt/pgbunker-pg/client/bin/pg_dump (.ci/run does this)"
                )
            });
        let pg = Sandbox::start_with(PathBuf::from(&dir)).unwrap_or_else(|e| {
            panic!(
                "could not start a throwaway PostgreSQL from {var}={}: {e}\n\
                 hint: scripts/fetch-postgres installs the servers under /opt/pgbunker-pg/<major>/bin",
                Path::new(&dir).display()
            )
        });
        World {
            pg,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The server's version number (`server_version_num`, e.g. 130023).
    pub async fn server_version(&self) -> u32 {
        let c = self.pg.conn("postgres").connect().await.expect("connect");
        let v: String = c
            .query_one("SHOW server_version_num", &[])
            .await
            .expect("server_version_num")
            .get(0);
        v.parse().expect("a number")
    }

    /// The pg_dump that judges this cluster: `PGBUNKER_PG_DUMP`, else the server's own
    /// (its bin folder), else `pg_dump` on PATH. Panics with a hint when there is none.
    pub fn pg_dump(&self) -> PathBuf {
        if let Some(p) = std::env::var_os("PGBUNKER_PG_DUMP").filter(|p| !p.is_empty()) {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "PGBUNKER_PG_DUMP={} is not a file\nhint: scripts/fetch-postgres installs \
                 one at /opt/pgbunker-pg/client/bin/pg_dump",
                p.display()
            );
            return p;
        }
        let own = self.pg.bindir().join("pg_dump");
        if own.is_file() {
            return own;
        }
        let on_path = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
            .map(|d| d.join("pg_dump"))
            .find(|p| p.is_file());
        on_path.unwrap_or_else(|| {
            panic!(
                "no pg_dump to judge the round trip: {} has none and none is on PATH\n\
                 hint: set PGBUNKER_PG_DUMP to a pg_dump at least as new as the server \
                 (scripts/fetch-postgres installs /opt/pgbunker-pg/client/bin/pg_dump), \
                 or install postgresql-client",
                self.pg.bindir().display()
            )
        })
    }

    pub fn repo(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Creates database `name` holding the fixture at `scale`.
    pub async fn fixture_db(&self, name: &str, scale: u32) -> ConnSpec {
        let conn = self
            .pg
            .create_database(name)
            .await
            .expect("create database");
        let client = conn.connect().await.expect("connect");
        fixture::load_heart_recovery(&client, scale)
            .await
            .expect("load fixture");
        conn
    }

    /// The fixture (scale 1) in database `heart`, backed up once into a new encrypted
    /// repository under [`KEY`]. Returns the repository path.
    pub async fn backed_up(&self) -> String {
        self.fixture_db("heart", 1).await;
        let repo = self.repo("repo");
        let env = [("PGBUNKER_KEY", KEY)];
        ok(pgbunker(&["init", "--repo", &repo], &env));
        ok(pgbunker(
            &["backup", "--repo", &repo, &self.pg.url("heart")],
            &env,
        ));
        repo
    }

    /// A new repository `name` encrypted under [`KEY`]; returns its path.
    pub fn init_repo(&self, name: &str) -> String {
        let repo = self.repo(name);
        ok(pgbunker(
            &["init", "--repo", &repo],
            &[("PGBUNKER_KEY", KEY)],
        ));
        repo
    }

    /// `pgbunker backup` of database `db` into `repo` under [`KEY`], with `extra` flags.
    pub fn backup(&self, repo: &str, db: &str, extra: &[&str]) -> Output {
        let url = self.pg.url(db);
        let mut args = vec!["backup", "--repo", repo];
        args.extend_from_slice(extra);
        args.push(&url);
        pgbunker(&args, &[("PGBUNKER_KEY", KEY)])
    }

    /// `pgbunker restore` of `backup` from `repo` into database `db`, under [`KEY`].
    pub fn restore(&self, repo: &str, backup: &str, db: &str) -> Output {
        self.restore_with(repo, backup, db, &[])
    }

    /// Like [`World::restore`], with `extra` flags.
    pub fn restore_with(&self, repo: &str, backup: &str, db: &str, extra: &[&str]) -> Output {
        let target = self.pg.url(db);
        let mut args = vec!["restore", "--repo", repo, backup, "--target", &target];
        args.extend_from_slice(extra);
        pgbunker(&args, &[("PGBUNKER_KEY", KEY)])
    }

    /// Creates database `name` from an SQL script (a fixture's `source.sql`).
    pub async fn db_from_sql(&self, name: &str, script: &Path) -> ConnSpec {
        let conn = self.empty_db(name).await;
        conn.connect()
            .await
            .expect("connect")
            .batch_execute(&std::fs::read_to_string(script).expect("read the script"))
            .await
            .expect("run the script");
        conn
    }

    pub async fn empty_db(&self, name: &str) -> ConnSpec {
        self.pg
            .create_database(name)
            .await
            .expect("create database")
    }

    /// The round-trip oracle: same `pg_dump --schema-only`, same rows of every table
    /// as multisets, same sequence values.
    pub async fn assert_same(&self, a: &str, b: &str) {
        self.assert_same_as(a, self, b).await
    }

    /// [`World::assert_same`] across two clusters: database `a` here, `b` in `other`.
    /// Both schemas are dumped by `other`'s pg_dump (the newer server's in a
    /// cross-version test: pg_dump reads older servers, never newer ones).
    pub async fn assert_same_as(&self, a: &str, other: &World, b: &str) {
        let dump = other.pg_dump();
        let sa = schema_dump_with(&dump, &self.pg.url(a));
        let sb = schema_dump_with(&dump, &other.pg.url(b));
        if sa != sb {
            panic!("schema of {b} differs from {a}:\n{}", text_diff(&sa, &sb));
        }
        let (ca, cb) = (self.pg.conn(a), other.pg.conn(b));
        let (ra, rb) = (all_rows(&ca).await, all_rows(&cb).await);
        assert_eq!(ra.len(), rb.len(), "table count of {b} differs from {a}");
        for ((ta, rows_a), (tb, rows_b)) in ra.iter().zip(rb.iter()) {
            assert_eq!(ta, tb);
            if rows_a != rows_b {
                panic!(
                    "rows of {ta} differ between {a} and {b}:\n{}",
                    text_diff(&rows_a.join("\n"), &rows_b.join("\n"))
                );
            }
        }
        assert_eq!(sequence_values(&ca).await, sequence_values(&cb).await);
    }

    /// `verify --restore-test` of the latest backup into a fresh `scratch` database,
    /// reports under the test's folder, `--json`.
    pub async fn restore_test(&self, repo: &str) -> Output {
        self.empty_db("scratch").await;
        let reports = self.dir.path().join("reports");
        pgbunker(
            &[
                "--json",
                "verify",
                "--repo",
                repo,
                "--restore-test",
                "--scratch",
                &self.pg.url("scratch"),
                "--report-dir",
                reports.to_str().unwrap(),
            ],
            &[("PGBUNKER_KEY", KEY)],
        )
    }

    /// `pg_dump --schema-only` of `db`, without what must differ between two
    /// databases (comments with versions, the random \restrict key).
    pub fn schema_dump(&self, db: &str) -> String {
        schema_dump_with(&self.pg_dump(), &self.pg.url(db))
    }
}

/// A unified diff of two texts (by the system's `diff`), cut to 200 lines.
pub fn text_diff(a: &str, b: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let (pa, pb) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::write(&pa, a).expect("write");
    std::fs::write(&pb, b).expect("write");
    let out = Command::new("diff")
        .arg("-u")
        .arg(&pa)
        .arg(&pb)
        .output()
        .expect("run diff");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .take(400)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `pg_dump --schema-only` of the database at `url` by the pg_dump at `pg_dump`,
/// filtered as [`World::schema_dump`] describes.
pub fn schema_dump_with(pg_dump: &Path, url: &str) -> String {
    schema_dump_args(pg_dump, url, &[])
}

/// [`schema_dump_with`] with more pg_dump arguments (`-t TABLE`).
fn schema_dump_args(pg_dump: &Path, url: &str, extra: &[&str]) -> String {
    let out = Command::new(pg_dump)
        .args(["--schema-only", "--no-sync", "-d", url])
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", pg_dump.display()));
    assert!(
        out.status.success(),
        "{} failed: {}\nhint: the pg_dump must be at least as new as the server; set \
         PGBUNKER_PG_DUMP (scripts/fetch-postgres installs /opt/pgbunker-pg/client/bin/pg_dump)",
        pg_dump.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .lines()
        .filter(|l| {
            !l.starts_with("--") && !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict")
        })
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The library's view of a repository under [`KEY`], with the same state folder as
/// the binary runs get.
pub fn repo_access(repo: &str) -> pgbunker::commands::RepoAccess {
    pgbunker::commands::RepoAccess::new(
        repo,
        Some(pgbunker::archive::KeySource::Key(
            pgbunker::codec::parse_key_bytes(KEY.as_bytes()).expect("KEY is a key"),
        )),
        Some(pgbunker::archive::StateDir::new(state_dir())),
    )
}

fn state_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("client-state")
}

/// The pgbunker binary with a clean environment: only what the test passes.
pub fn pgbunker(args: &[&str], env: &[(&str, &str)]) -> Output {
    pgbunker_command(args, env).output().expect("run pgbunker")
}

/// The command [`pgbunker`] runs, to start it in the background instead.
pub fn pgbunker_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgbunker"));
    cmd.args(args);
    for (k, _) in std::env::vars() {
        let ours = k.starts_with("PGBUNKER_")
            || k.starts_with("PG")
            || k.starts_with("AWS_")
            || k == "DATABASE_URL";
        if ours && k != "PGBUNKER_PG_BIN" && k != "PGBUNKER_MOTO_SERVER" {
            cmd.env_remove(k);
        }
    }
    // High-water marks go below target/, keyed by repository location (unique per
    // test), never into the home folder.
    cmd.env("PGBUNKER_STATE_DIR", state_dir());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Parses a command's `--json` output.
pub fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Backs up `heart` `n` times; the ids, oldest first.
pub fn backups(w: &World, repo: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let out = ok(w.backup(repo, "heart", &["--json", "-j", "2"]));
            json(&out)["backup_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// A world with database `heart`, an initialised repository and `n` backups of it:
/// the world, the repository and the backup ids, oldest first.
pub async fn world_with_backups(n: usize) -> (World, String, Vec<String>) {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    let repo = w.init_repo("repo");
    let ids = backups(&w, &repo, n);
    (w, repo, ids)
}

/// The folder of backup `bid` in the local repository `repo`.
pub fn backup_dir(repo: &str, bid: &str) -> PathBuf {
    Path::new(repo).join("backups").join(bid)
}

/// Prune through the library with an injected clock.
pub async fn prune_at(
    repo: &str,
    policy: pgbunker::archive::retention::RetentionPolicy,
    grace: Option<&str>,
    now: time::OffsetDateTime,
) -> pgbunker::commands::prune::PruneReport {
    pgbunker::commands::prune::prune(&pgbunker::commands::prune::PruneOptions {
        repo: repo_access(repo),
        policy,
        grace: grace.map(|g| g.parse().unwrap()),
        dry_run: false,
        now: Some(now),
        accept_removals: Vec::new(),
        force: false,
    })
    .await
    .unwrap()
}

/// `pgbunker <global> prune --repo REPO <extra>`, whatever it did.
pub fn prune_with(global: &[&str], repo: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut args = global.to_vec();
    args.extend(["prune", "--repo", repo]);
    args.extend_from_slice(extra);
    pgbunker(&args, env)
}

/// `pgbunker --json prune --repo REPO <extra>`, asserted successful, as JSON.
pub fn prune_json(repo: &str, extra: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let out = ok(prune_with(&["--json"], repo, extra, env));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("prune printed no JSON ({e}): {out}"))
}

/// The tables a backup or restore report (`--json`) lists, as `schema.name`, sorted.
pub fn tables_of(report: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = report["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .map(|t| t["table"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

/// Runs `sql` in database `db`, asserting success.
pub async fn run_sql(w: &World, db: &str, sql: &str) {
    w.pg.conn(db)
        .connect()
        .await
        .expect("connect")
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
/// Every chunk object of a repository: the shared ones (format 5) and those kept in
/// backup folders (formats 1 to 4).
/// Folders may come and go meanwhile (a backup being written): what is there counts.
pub fn chunk_files(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![repo.join("chunks"), repo.join("backups")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.starts_with(repo.join("chunks"))
                || p.extension().is_some_and(|e| e == "chk")
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Backup `which` (an id or `latest`) of `repo`, opened under [`KEY`].
async fn open_backup(repo: &str, which: &str) -> pgbunker::archive::BackupReader {
    use pgbunker::archive::{BackupReader, KeySource, Repository};
    let key = KeySource::Key(pgbunker::codec::parse_key_bytes(KEY.as_bytes()).unwrap());
    let store = pgbunker::store::Store::open(repo).unwrap();
    let r = Repository::open(store, Some(&key)).await.unwrap();
    let live = r.resolve(which).await.unwrap();
    BackupReader::open(&r, &live).await.unwrap()
}

/// The chunk objects of one table (`schema.name`; `pg_catalog.pg_largeobject` for the
/// large objects) of backup `which` (an id or `latest`), in the manifest's order: with
/// content-addressed chunks only the manifest knows which object is whose.
pub async fn table_chunks(repo: &str, which: &str, table: &str) -> Vec<PathBuf> {
    let reader = open_backup(repo, which).await;
    let m = reader.manifest();
    let t = m
        .tables
        .iter()
        .chain(m.large_object_data())
        .find(|t| format!("{}.{}", t.schema, t.name) == table)
        .unwrap_or_else(|| panic!("no table {table} in the backup"));
    t.chunks
        .iter()
        .map(|c| Path::new(repo).join(reader.chunk_path(t, c)))
        .collect()
}

/// The delta chunks of backup `which`: each with the objects of its bases.
pub async fn delta_chunks(repo: &str, which: &str) -> Vec<(PathBuf, Vec<PathBuf>)> {
    use pgbunker::archive::shared_chunk;
    let reader = open_backup(repo, which).await;
    let m = reader.manifest();
    let mut out = Vec::new();
    for t in m.tables.iter().chain(m.large_object_data()) {
        for c in t.chunks.iter().filter(|c| !c.bases.is_empty()) {
            let bases = c
                .bases
                .iter()
                .map(|b| Path::new(repo).join(shared_chunk(&b.id)))
                .collect();
            out.push((Path::new(repo).join(reader.chunk_path(t, c)), bases));
        }
    }
    out
}

pub fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "pgbunker failed ({:?}):\n{}\n{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// The user's tables and materialized views, quoted and qualified, with whether they
/// can be read (a materialized view left unpopulated cannot).
pub async fn user_tables(client: &tokio_postgres::Client) -> Vec<(String, bool)> {
    client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname), c.relkind = 'r' OR c.relispopulated \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'm') \
             AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname !~ '^pg_' ORDER BY 1",
            &[],
        )
        .await
        .expect("list tables")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Every row of every user table and populated materialized view, as sorted text: a
/// multiset oracle independent of pgbunker's binary COPY code. A materialized view
/// left unpopulated shows as one `<not populated>` row (reading it would fail).
pub async fn all_rows(conn: &ConnSpec) -> Vec<(String, Vec<String>)> {
    let client = conn.connect().await.expect("connect");
    let mut out = Vec::new();
    for (name, readable) in user_tables(&client).await {
        if !readable {
            out.push((name, vec!["<not populated>".to_owned()]));
            continue;
        }
        // A whole-row reference under a name no column has (a column named like the
        // alias would be read instead of the row).
        let mut rows: Vec<String> = client
            .query(
                &format!("SELECT \"whole row\"::text FROM {name} AS \"whole row\""),
                &[],
            )
            .await
            .expect("read rows")
            .iter()
            .map(|r| r.get(0))
            .collect();
        rows.sort();
        out.push((name, rows));
    }
    out
}

/// `(sequence, last_value, is_called)` for every sequence.
pub async fn sequence_values(conn: &ConnSpec) -> Vec<(String, i64, bool)> {
    let client = conn.connect().await.expect("connect");
    let seqs = client
        .query(
            "SELECT format('%I.%I', schemaname, sequencename) FROM pg_sequences ORDER BY 1",
            &[],
        )
        .await
        .expect("list sequences");
    let mut out = Vec::new();
    for s in seqs {
        let name: String = s.get(0);
        let r = client
            .query_one(&format!("SELECT last_value, is_called FROM {name}"), &[])
            .await
            .expect("read sequence");
        out.push((name, r.get(0), r.get(1)));
    }
    out
}

/// Every file below `dir`.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `pg_dump --schema-only -t TABLE` of `db`, filtered like [`World::schema_dump`]: the
/// oracle for a partial backup, whose database holds more (or less) than the table.
pub fn table_schema_dump(w: &World, db: &str, table: &str) -> String {
    schema_dump_args(&w.pg_dump(), &w.pg.url(db), &["-t", table])
}

/// Restores the newest backup in `repo`, with two jobs, into a new database `restored`
/// whose type OIDs cannot match the source's (see [`shift_type_oids`]).
pub async fn restore_with_new_oids(w: &World, repo: &str) -> ConnSpec {
    let dst = w.empty_db("restored").await;
    shift_type_oids(&dst.connect().await.unwrap()).await;
    ok(w.restore_with(repo, "latest", "restored", &["-j", "2"]));
    dst
}

/// The OIDs that `sql`, one row of `oid` columns, selects in database `db`.
pub async fn oids_in(w: &World, db: &str, sql: &str) -> Vec<u32> {
    let c = w.pg.conn(db).connect().await.unwrap();
    let r = c.query_one(sql, &[]).await.unwrap();
    (0..r.len()).map(|i| r.get::<_, u32>(i)).collect()
}

/// Creates and drops 20 types, as on a busy cluster: OIDs are cluster-wide, so types
/// restored afterwards surely get other OIDs than the backed-up ones.
pub async fn shift_type_oids(client: &tokio_postgres::Client) {
    client
        .batch_execute(
            "CREATE SCHEMA pad; \
             DO $$ BEGIN FOR i IN 1..20 LOOP \
               EXECUTE pg_catalog.format('CREATE TYPE pad.t%s AS ENUM (''x'')', i); \
             END LOOP; END $$; \
             DROP SCHEMA pad CASCADE;",
        )
        .await
        .expect("create and drop types");
}

/// The round trip every object store runs (tests/it/s3.rs, tests/it/cloud.rs) on the
/// `heart` fixture database: init, backup, list, verify --data, restore (identical), a
/// second backup and a prune down to it, after which the first backup's objects are
/// gone from the store. `reach_store` sets what `Store::open` needs to reach it.
pub async fn object_store_round_trip(
    w: &World,
    repo: &str,
    env: &[(&str, &str)],
    reach_store: impl FnOnce(),
) {
    let (repo, env) = (repo.to_owned(), env.to_vec());
    ok(pgbunker(&["init", "--repo", &repo], &env));
    let url = w.pg.url("heart");
    let out = ok(pgbunker(
        &["--json", "backup", "--repo", &repo, "--jobs", "4", &url],
        &env,
    ));
    let bid = serde_json::from_str::<serde_json::Value>(&out).unwrap()["backup_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let list = ok(pgbunker(&["--json", "list", "--repo", &repo], &env));
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["backups"][0]["backup_id"], bid.as_str());
    assert_eq!(list["backups"][0]["status"], "complete");

    let verified = ok(pgbunker(
        &["--json", "verify", "--repo", &repo, "--data", "-j", "4"],
        &env,
    ));
    let verified: serde_json::Value = serde_json::from_str(&verified).unwrap();
    assert_eq!(verified["ok"], true, "{verified}");
    w.empty_db("restored").await;
    let target = w.pg.url("restored");
    ok(pgbunker(
        &[
            "restore", "--repo", &repo, "latest", "--target", &target, "-j", "4",
        ],
        &env,
    ));
    w.assert_same("heart", "restored").await;

    // A second backup, then prune down to it: the first one's objects leave the bucket.
    ok(pgbunker(
        &["backup", "--repo", &repo, "-j", "4", &url],
        &env,
    ));
    let pruned = prune_json(&repo, &["--keep-last", "1", "--grace", "0"], &env);
    assert_eq!(pruned["deleted"], serde_json::json!([bid]), "{pruned}");
    reach_store();
    let store = pgbunker::store::Store::open(&repo).unwrap();
    assert!(store
        .list(&format!("backups/{bid}"))
        .await
        .unwrap()
        .is_empty());
    let list = ok(pgbunker(&["--json", "list", "--repo", &repo], &env));
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["backups"].as_array().unwrap().len(), 1, "{list}");
    assert_ne!(list["backups"][0]["backup_id"], bid.as_str());
}

/// The contract every backend keeps (object_store's conformance idea, for our slice):
/// a local folder, S3 (tests/it/s3.rs), Azure and GCS (tests/it/cloud.rs).
pub async fn store_conformance(s: &pgbunker::store::Store) {
    s.put_new("a/b/1", bytes::Bytes::from_static(b"x"))
        .await
        .unwrap();
    s.put_new("a/c/2", bytes::Bytes::from_static(b"yy"))
        .await
        .unwrap();
    assert!(matches!(
        s.put_new("a/b/1", bytes::Bytes::from_static(b"z")).await,
        Err(pgbunker::store::StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        s.get("a/b/1").await.unwrap(),
        bytes::Bytes::from_static(b"x")
    );
    assert_eq!(s.list("a").await.unwrap(), vec!["a/b/1", "a/c/2"]);
    assert_eq!(s.list_dirs("a").await.unwrap(), vec!["b", "c"]);
    assert_eq!(s.size("a/c/2").await.unwrap(), Some(2));
    assert!(s.get_opt("nope").await.unwrap().is_none());
    assert!(matches!(
        s.get("nope").await,
        Err(pgbunker::store::StoreError::NotFound(_))
    ));
    // Above the multipart threshold (8 MiB): put in parts.
    let big: Vec<u8> = (0..20u32 << 20)
        .map(|i| i.wrapping_mul(2654435761) as u8)
        .collect();
    s.put_new("big/obj", bytes::Bytes::from(big.clone()))
        .await
        .unwrap();
    assert_eq!(s.get("big/obj").await.unwrap().as_ref(), big.as_slice());
    assert!(matches!(
        s.put_new("big/obj", bytes::Bytes::from(big.clone())).await,
        Err(pgbunker::store::StoreError::AlreadyExists(_))
    ));
    // A large local file goes up part by part too.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &big).unwrap();
    s.put_file_new("big/file", file.path()).await.unwrap();
    assert_eq!(s.size("big/file").await.unwrap(), Some(big.len() as u64));
    assert_eq!(s.get("big/file").await.unwrap().as_ref(), big.as_slice());
    // A prefix is a folder, not a string prefix: `a` does not list `ab/…`.
    s.put_new("ab/3", bytes::Bytes::from_static(b"z"))
        .await
        .unwrap();
    assert_eq!(s.list("a").await.unwrap(), vec!["a/b/1", "a/c/2"]);
    assert_eq!(s.list_dirs("").await.unwrap(), vec!["a", "ab", "big"]);
    s.delete("a/b/1").await.unwrap();
    s.delete("a/b/1").await.unwrap();
    assert!(s.get_opt("a/b/1").await.unwrap().is_none());
    assert_eq!(s.list("a").await.unwrap(), vec!["a/c/2"]);
}

/// [`store_conformance`] in a bucket at `url`, then create-only puts proven there, and
/// a neighbouring prefix of the same bucket (`neighbour`) sees none of it.
pub async fn bucket_contract(url: &str, neighbour: &str) {
    use pgbunker::store::Store;
    store_conformance(&Store::create(url).unwrap()).await;
    Store::open(url).unwrap().check_create_only().await.unwrap();
    let other = Store::open(neighbour).unwrap();
    assert!(other.list("").await.unwrap().is_empty());
}
