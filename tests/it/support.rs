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
            panic!("could not start a throwaway PostgreSQL: {e}\nhint: install the PostgreSQL server or set PGBUNKER_PG_BIN")
        });
        World {
            pg,
            dir: tempfile::tempdir().expect("temp dir"),
        }
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
        let (sa, sb) = (self.schema_dump(a), self.schema_dump(b));
        if sa != sb {
            let diff: Vec<String> = sa
                .lines()
                .zip(sb.lines())
                .filter(|(x, y)| x != y)
                .take(10)
                .map(|(x, y)| format!("- {x}\n+ {y}"))
                .collect();
            panic!("schema of {b} differs from {a}:\n{}", diff.join("\n"));
        }
        let (ca, cb) = (self.pg.conn(a), self.pg.conn(b));
        let (ra, rb) = (all_rows(&ca).await, all_rows(&cb).await);
        assert_eq!(ra.len(), rb.len(), "table count of {b} differs from {a}");
        for ((ta, rows_a), (tb, rows_b)) in ra.iter().zip(rb.iter()) {
            assert_eq!(ta, tb);
            assert!(rows_a == rows_b, "rows of {ta} differ between {a} and {b}");
        }
        assert_eq!(sequence_values(&ca).await, sequence_values(&cb).await);
    }

    /// `pg_dump --schema-only` of `db`, without what must differ between two
    /// databases (comments with versions, the random \restrict key).
    pub fn schema_dump(&self, db: &str) -> String {
        let out = Command::new(self.pg.bindir().join("pg_dump"))
            .args(["--schema-only", "--no-sync", "-d", &self.pg.url(db)])
            .output()
            .expect("run pg_dump");
        assert!(
            out.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf8")
            .lines()
            .filter(|l| {
                !l.starts_with("--")
                    && !l.starts_with("\\restrict")
                    && !l.starts_with("\\unrestrict")
            })
            .filter(|l| !l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    }
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
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgbunker"));
    cmd.args(args);
    for (k, _) in std::env::vars() {
        let ours = k.starts_with("PGBUNKER_") || k.starts_with("PG") || k.starts_with("AWS_");
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
    cmd.output().expect("run pgbunker")
}

/// `pgbunker --json prune --repo REPO <extra>`, asserted successful, as JSON.
pub fn prune_json(repo: &str, extra: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let mut args = vec!["--json", "prune", "--repo", repo];
    args.extend_from_slice(extra);
    let out = ok(pgbunker(&args, env));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("prune printed no JSON ({e}): {out}"))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
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

/// Every row of every user table, as sorted text: a multiset oracle independent of
/// pgbunker's binary COPY code.
pub async fn all_rows(conn: &ConnSpec) -> Vec<(String, Vec<String>)> {
    let client = conn.connect().await.expect("connect");
    let tables = client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname !~ '^pg_' ORDER BY 1",
            &[],
        )
        .await
        .expect("list tables");
    let mut out = Vec::new();
    for t in tables {
        let name: String = t.get(0);
        let mut rows: Vec<String> = client
            .query(&format!("SELECT t::text FROM {name} AS t"), &[])
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
