//! Bad input gets a clear message, a hint and a documented exit code.

use crate::support::{ok, pgbunker, stderr, World, KEY};

#[tokio::test(flavor = "multi_thread")]
async fn connection_and_repository_mistakes() {
    let w = World::start();
    let repo = w.repo("repo");
    let env = [("PGBUNKER_KEY", KEY)];

    let missing = pgbunker(&["list", "--repo", &repo], &env);
    assert_eq!(missing.status.code(), Some(5), "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains("pgbunker init"),
        "{}",
        stderr(&missing)
    );

    std::fs::create_dir_all(&repo).unwrap();
    let not_repo = pgbunker(&["list", "--repo", &repo], &env);
    assert_eq!(not_repo.status.code(), Some(5));
    assert!(stderr(&not_repo).contains("not a pgbunker repository"));

    ok(pgbunker(&["init", "--repo", &repo], &env));
    let again = pgbunker(&["init", "--repo", &repo], &env);
    assert_eq!(again.status.code(), Some(5));
    assert!(stderr(&again).contains("already holds a pgbunker repository"));

    let bad_scheme = pgbunker(&["list", "--repo", "ftp://example/x"], &env);
    assert_eq!(bad_scheme.status.code(), Some(2));

    // Nothing listens on port 1.
    let unreachable = pgbunker(
        &[
            "backup",
            "--repo",
            &repo,
            "postgresql://postgres:hunter2@127.0.0.1:1/db",
        ],
        &env,
    );
    assert_eq!(
        unreachable.status.code(),
        Some(3),
        "{}",
        stderr(&unreachable)
    );
    let msg = stderr(&unreachable);
    assert!(
        msg.contains("could not connect to postgresql://postgres@127.0.0.1:1/db"),
        "{msg}"
    );
    assert!(
        msg.contains("hint: check that the server is running"),
        "{msg}"
    );
    assert!(
        !msg.contains("hunter2"),
        "passwords are never printed: {msg}"
    );

    // The sandbox server has no TLS: asking for it must fail, never fall back to clear text.
    let tls = pgbunker(
        &[
            "backup",
            "--repo",
            &repo,
            &format!("{}?sslmode=require", w.pg.url("postgres")),
        ],
        &env,
    );
    assert_eq!(tls.status.code(), Some(3), "{}", stderr(&tls));
    assert!(
        stderr(&tls).contains("does not support TLS"),
        "{}",
        stderr(&tls)
    );

    let no_db = pgbunker(
        &["backup", "--repo", &repo, &w.pg.url("does_not_exist")],
        &env,
    );
    assert_eq!(no_db.status.code(), Some(3));
    assert!(
        stderr(&no_db).contains("does not exist"),
        "{}",
        stderr(&no_db)
    );

    // A failed backup leaves nothing that looks complete.
    let list = ok(pgbunker(&["list", "--repo", &repo], &env));
    assert!(!list.contains("complete"), "{list}");

    let unknown = w.restore(&repo, "20200101T000000Z-00000000", "postgres");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("not found"));
    let empty = w.restore(&repo, "latest", "postgres");
    assert_eq!(empty.status.code(), Some(5));
    assert!(
        stderr(&empty).contains("no complete backup yet"),
        "{}",
        stderr(&empty)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_refuses_a_database_that_already_has_the_tables() {
    let w = World::start();
    let repo = w.backed_up().await;
    let o = w.restore(&repo, "latest", "heart");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("already has"), "{}", stderr(&o));
    assert!(stderr(&o).contains("public.patients"), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn passwords_from_the_environment_and_pgpass_and_a_wrong_one() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    w.pg.add_password_role("clinic", "s3cret-Pw", true)
        .await
        .unwrap();
    let repo = w.init_repo("repo");
    let port = w.pg.port().to_string();
    let url = format!("postgresql://clinic@127.0.0.1:{port}/heart");

    let wrong = pgbunker(
        &["backup", "--repo", &repo, &url],
        &[("PGBUNKER_KEY", KEY), ("PGPASSWORD", "not-it")],
    );
    assert_eq!(wrong.status.code(), Some(3), "{}", stderr(&wrong));
    let msg = stderr(&wrong);
    assert!(msg.contains("password authentication failed"), "{msg}");
    assert!(msg.contains("hint: check the user and password"), "{msg}");
    assert!(!msg.contains("not-it"), "{msg}");

    ok(pgbunker(
        &["backup", "--repo", &repo, &url],
        &[("PGBUNKER_KEY", KEY), ("PGPASSWORD", "s3cret-Pw")],
    ));

    // libpq variables only, password from a private .pgpass file.
    let pgpass = w.dir.path().join("pgpass");
    std::fs::write(
        &pgpass,
        format!("127.0.0.1:{port}:heart:clinic:s3cret-Pw\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pgpass_s = pgpass.display().to_string();
    let libpq_env = [
        ("PGBUNKER_KEY", KEY),
        ("PGHOST", "127.0.0.1"),
        ("PGPORT", port.as_str()),
        ("PGUSER", "clinic"),
        ("PGDATABASE", "heart"),
        ("PGPASSFILE", pgpass_s.as_str()),
    ];
    let out = ok(pgbunker(&["--json", "backup", "--repo", &repo], &libpq_env));
    assert!(out.contains("postgresql://clinic@127.0.0.1"), "{out}");
    // A password file others can read is ignored, like libpq does.
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = pgbunker(&["backup", "--repo", &repo], &libpq_env);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
}

/// A role subject to row-level security must never get a silently filtered backup:
/// with row_security off the server refuses, and the backup fails clearly.
#[tokio::test(flavor = "multi_thread")]
async fn row_level_security_never_filters_a_backup_silently() {
    let w = World::start();
    let src = w.empty_db("clinic").await;
    w.pg.add_password_role("clerk", "pw-clerk", false)
        .await
        .unwrap();
    src.connect()
        .await
        .unwrap()
        .batch_execute(
            "CREATE TABLE public.notes (id int PRIMARY KEY, body text);
             INSERT INTO public.notes SELECT g, 'note ' || g FROM generate_series(1, 50) g;
             ALTER TABLE public.notes OWNER TO clerk;
             ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;
             CREATE POLICY only_even ON public.notes USING (id % 2 = 0);",
        )
        .await
        .unwrap();
    let repo = w.init_repo("repo");
    let url = format!("postgresql://clerk@127.0.0.1:{}/clinic", w.pg.port());
    let env = [("PGBUNKER_KEY", KEY), ("PGPASSWORD", "pw-clerk")];
    // The owner is not subject to its own policies: every row is backed up.
    let out = ok(pgbunker(&["--json", "backup", "--repo", &repo, &url], &env));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["summary"]["rows"], 50, "{out}");
    // Forced on the owner too: the server refuses rather than filter.
    src.connect()
        .await
        .unwrap()
        .batch_execute("ALTER TABLE public.notes FORCE ROW LEVEL SECURITY")
        .await
        .unwrap();
    let o = pgbunker(&["backup", "--repo", &repo, &url], &env);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("row-level security"), "{}", stderr(&o));
}

/// Every span goes through one parser with one set of units; a bare `m`, which once
/// made `check --max-age 30m` mean 30 months, is refused, and each mistake names the
/// flag it was given to.
#[test]
fn spans_use_one_parser_and_name_their_flag() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo").display().to_string();
    let env = [("PGBUNKER_KEY", KEY)];
    ok(pgbunker(&["init", "--repo", &repo], &env));

    let months_or_minutes = pgbunker(&["check", "--repo", &repo, "--max-age", "30m"], &env);
    let err = stderr(&months_or_minutes);
    assert!(
        err.contains("--max-age") && err.contains("write 30mo for months or 30min for minutes"),
        "{err}"
    );
    // check answers a monitoring system: a usage mistake is CRITICAL too.
    assert_eq!(months_or_minutes.status.code(), Some(2), "{err}");

    let minutes = pgbunker(
        &["check", "--repo", &repo, "--max-age", "90min", "--json"],
        &env,
    );
    assert!(
        !stderr(&minutes).contains("invalid span"),
        "{}",
        stderr(&minutes)
    );

    let since = pgbunker(&["audit", "--repo", &repo, "--since", "yesterday"], &env);
    let err = stderr(&since);
    assert_eq!(since.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--since \"yesterday\": use a span back from now (7d, 12h, 30min)")
            && !err.contains("--until"),
        "{err}"
    );
    let bad_unit = pgbunker(&["audit", "--repo", &repo, "--since", "3m"], &env);
    assert!(
        stderr(&bad_unit).contains("--since: invalid span \"3m\""),
        "{}",
        stderr(&bad_unit)
    );

    let keep = pgbunker(&["prune", "--repo", &repo, "--keep-within", "6m"], &env);
    assert_eq!(keep.status.code(), Some(2));
    assert!(
        stderr(&keep).contains("--keep-within") && stderr(&keep).contains("6mo"),
        "{}",
        stderr(&keep)
    );
    ok(pgbunker(
        &[
            "prune",
            "--repo",
            &repo,
            "--keep-within",
            "6mo",
            "--dry-run",
        ],
        &env,
    ));
}

/// A reader that closes the output early (`| head -1`, `| true`) ends pgbunker quietly
/// with success, never with a panic.
#[test]
fn a_closed_stdout_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo").display().to_string();
    let env = [("PGBUNKER_KEY", KEY)];
    ok(pgbunker(&["init", "--repo", &repo], &env));
    let bin = env!("CARGO_BIN_EXE_pgbunker");
    for args in ["audit --repo", "list --repo", "--json key list --repo"] {
        let err = dir.path().join("stderr");
        let script = format!(
            "set -o pipefail; {bin} {args} {repo} 2>{} | true",
            err.display()
        );
        let o = std::process::Command::new("bash")
            .args(["-c", &script])
            .env("PGBUNKER_KEY", KEY)
            .output()
            .unwrap();
        let err = std::fs::read_to_string(&err).unwrap();
        assert!(!err.contains("panicked"), "{args}: {err}");
        assert_eq!(o.status.code(), Some(0), "{args}: {err}");
    }
}

/// A backup told nothing about its database says so, instead of trying libpq's
/// fallback (the local socket, a database named like the OS user).
#[test]
fn a_backup_without_a_database_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo").display().to_string();
    let env = [("PGBUNKER_KEY", KEY)];
    ok(pgbunker(&["init", "--repo", &repo], &env));
    let o = pgbunker(&["backup", "--repo", &repo], &env);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no database to back up: give its URL"),
        "{}",
        stderr(&o)
    );
}

/// With nothing else naming a database, the application's DATABASE_URL does, as the
/// npm runbook's scripts use it; a PG* variable, libpq's own way, comes first.
#[tokio::test(flavor = "multi_thread")]
async fn a_backup_takes_database_url_when_nothing_else_names_a_database() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    let repo = w.init_repo("repo");
    let url = w.pg.url("heart");
    let o = pgbunker(
        &["--json", "backup", "--repo", &repo],
        &[("PGBUNKER_KEY", KEY), ("DATABASE_URL", url.as_str())],
    );
    let report = crate::support::json(&ok(o));
    assert!(
        report["source"].as_str().unwrap().contains("heart"),
        "{report}"
    );
    // The PG* variables name another database: they win, and that one does not exist.
    let port = w.pg.port().to_string();
    let o = pgbunker(
        &["backup", "--repo", &repo],
        &[
            ("PGBUNKER_KEY", KEY),
            ("DATABASE_URL", url.as_str()),
            ("PGHOST", "127.0.0.1"),
            ("PGPORT", port.as_str()),
            ("PGUSER", "postgres"),
            ("PGDATABASE", "no_such_db"),
        ],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("\"no_such_db\" does not exist"),
        "{}",
        stderr(&o)
    );
}
