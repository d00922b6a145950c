//! Bad input that `errors.rs` and `security.rs` do not cover yet, each with its
//! message and exit code: unresolvable hosts, missing privileges (every unreadable
//! table named at once), unknown tables on restore and export, malformed repository
//! URLs, foreign and newer repositories, malformed keys, empty passphrases and
//! conflicting flags.

use std::os::unix::fs::PermissionsExt;

use crate::support::{ok, pgbunker, run_sql, stderr, World, KEY};

/// Asserts exit `code` and that stderr contains every one of `parts`.
#[track_caller]
fn fails(o: &std::process::Output, code: i32, parts: &[&str]) {
    let msg = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{msg}");
    for p in parts {
        assert!(msg.contains(p), "{p:?} missing from:\n{msg}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unresolvable_host_is_a_connection_error() {
    let w = World::start();
    let repo = w.init_repo("repo");
    let o = pgbunker(
        &[
            "backup",
            "--repo",
            &repo,
            "postgresql://backup@no-such-host.invalid/heart",
        ],
        &[("PGBUNKER_KEY", KEY)],
    );
    fails(
        &o,
        3,
        &[
            "could not connect to postgresql://backup@no-such-host.invalid:5432/heart",
            "hint: the host name does not resolve: check its spelling",
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_privileges_name_every_unreadable_table() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    w.pg.add_password_role("reader", "reader-pw", false)
        .await
        .unwrap();
    run_sql(
        &w,
        "heart",
        "DO $$ DECLARE s text; BEGIN \
           FOR s IN SELECT nspname FROM pg_namespace \
                    WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' LOOP \
             EXECUTE format('GRANT USAGE ON SCHEMA %I TO reader', s); \
             EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO reader', s); \
             EXECUTE format('GRANT SELECT ON ALL SEQUENCES IN SCHEMA %I TO reader', s); \
           END LOOP; END $$; \
         REVOKE SELECT ON public.patients, public.vitals_samples FROM reader;",
    )
    .await;
    let repo = w.init_repo("repo");
    let url = format!(
        "postgresql://reader:reader-pw@127.0.0.1:{}/heart",
        w.pg.port()
    );
    let env = [("PGBUNKER_KEY", KEY)];
    let o = pgbunker(&["backup", "--repo", &repo, &url], &env);
    fails(
        &o,
        4,
        &[
            "role reader may not read 2 table(s): public.patients, public.vitals_samples",
            "hint: nothing was written; GRANT SELECT on them to reader",
            "-T",
        ],
    );
    // Nothing was written, and leaving them out works.
    let list = ok(pgbunker(&["list", "--repo", &repo], &env));
    assert!(!list.contains("complete"), "{list}");
    ok(pgbunker(
        &[
            "backup",
            "--repo",
            &repo,
            "-T",
            "public.patients",
            "-T",
            "public.vitals_samples",
            &url,
        ],
        &env,
    ));
    // A sequence it may not read is named too (all of them at once).
    run_sql(
        &w,
        "heart",
        "REVOKE SELECT ON ALL SEQUENCES IN SCHEMA public, clinical FROM reader",
    )
    .await;
    let o = pgbunker(&["backup", "--repo", &repo, &url], &env);
    fails(
        &o,
        4,
        &[
            "could not read the values of 11 sequence(s): permission denied for \
             clinical.clinical_notes_id_seq, clinical.therapy_sessions_id_seq, \
             public.audit_log_id_seq,",
            "public.vitals_samples_id_seq",
            "hint: the role lacks privileges",
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_tables_on_restore_and_export() {
    let w = World::start();
    let repo = w.backed_up().await;
    w.empty_db("target").await;
    let o = w.restore_with(&repo, "latest", "target", &["-t", "patiens"]);
    fails(&o, 2, &["no table matches -t patiens", "public.patients"]);
    let out = w.dir.path().join("out").display().to_string();
    let o = pgbunker(
        &[
            "export",
            "--repo",
            &repo,
            "latest",
            "--out",
            &out,
            "-t",
            "vital_samples",
        ],
        &[("PGBUNKER_KEY", KEY)],
    );
    fails(
        &o,
        2,
        &["no table matches -t vital_samples", "public.vitals_samples"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_repository_urls() {
    let env = [("PGBUNKER_KEY", KEY)];
    for (url, why) in [
        ("ftp://example/x", "unknown scheme ftp://"),
        ("s3://", "expected <scheme>://<bucket>/<prefix>"),
        ("s3:///prefix", "expected <scheme>://<bucket>/<prefix>"),
        ("file://relative/path", "file:// URLs need an absolute path"),
        ("s3://bucket/x?colour=blue", "unknown option \"colour\""),
        ("gs://bucket/x?region=eu", "gs:// URLs take no options"),
        ("", "the repository location is empty"),
    ] {
        let o = pgbunker(&["list", "--repo", url], &env);
        fails(&o, 2, &[why]);
    }
    // A credential pasted into the URL is refused, and not printed back.
    let o = pgbunker(
        &[
            "list",
            "--repo",
            "s3://AKIDEXAMPLE:wJalr-Secret-Xyz@bucket/x",
        ],
        &env,
    );
    fails(&o, 2, &["credentials never go in the URL"]);
    assert!(!stderr(&o).contains("wJalr-Secret-Xyz"), "{}", stderr(&o));
    // A retry window that is not a number of seconds.
    let o = pgbunker(
        &["list", "--repo", "s3://bucket/x"],
        &[
            ("PGBUNKER_KEY", KEY),
            ("PGBUNKER_STORE_RETRY_TIMEOUT", "3m"),
        ],
    );
    fails(
        &o,
        2,
        &["PGBUNKER_STORE_RETRY_TIMEOUT must be a whole number of seconds, not \"3m\""],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_and_newer_repositories() {
    let w = World::start();
    let env = [("PGBUNKER_KEY", KEY)];
    // A folder holding something else.
    let other = w.repo("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(format!("{other}/backup.sql.gz.enc"), b"not ours").unwrap();
    let o = pgbunker(&["list", "--repo", &other], &env);
    fails(&o, 5, &["not a pgbunker repository"]);
    // A pgbunker.json that is not one of ours.
    std::fs::write(format!("{other}/pgbunker.json"), b"{\"hello\": 1}").unwrap();
    let o = pgbunker(&["list", "--repo", &other], &env);
    assert!(matches!(o.status.code(), Some(5 | 7)), "{}", stderr(&o));
    assert!(stderr(&o).contains("pgbunker.json"), "{}", stderr(&o));

    // A copy of a real repository whose format version was raised.
    let repo = w.init_repo("repo");
    let newer = w.repo("newer");
    std::fs::create_dir_all(&newer).unwrap();
    for f in crate::support::files(std::path::Path::new(&repo)) {
        let rel = f.strip_prefix(&repo).unwrap();
        let to = std::path::Path::new(&newer).join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&f, &to).unwrap();
    }
    let cfg = format!("{newer}/pgbunker.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    json["version"] = 99.into();
    std::fs::write(&cfg, json.to_string()).unwrap();
    let o = pgbunker(&["list", "--repo", &newer], &env);
    fails(
        &o,
        5,
        &[
            "repository format version 99 is newer than this pgbunker understands",
            "hint: upgrade pgbunker",
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_keys_and_empty_passphrases() {
    let w = World::start();
    let repo = w.init_repo("repo");
    let not_hex = format!("{}zz", &KEY[..62]);
    let long = format!("{KEY}00");
    for (var, value, parts) in [
        (
            "PGBUNKER_KEY",
            &KEY[..63],
            ["PGBUNKER_KEY is not a valid key", "exactly 32 bytes"],
        ),
        (
            "PGBUNKER_KEY",
            long.as_str(),
            ["PGBUNKER_KEY is not a valid key", "exactly 32 bytes"],
        ),
        (
            "PGBUNKER_KEY",
            not_hex.as_str(),
            ["PGBUNKER_KEY is not a valid key", "exactly 32 bytes"],
        ),
        (
            "PGBUNKER_KEY",
            "",
            ["PGBUNKER_KEY is not a valid key", "exactly 32 bytes"],
        ),
        (
            "PGBUNKER_PASSPHRASE",
            "",
            ["the passphrase is empty", "PGBUNKER_PASSPHRASE"],
        ),
    ] {
        let o = pgbunker(&["list", "--repo", &repo], &[(var, value)]);
        fails(&o, 6, &parts);
        if value.len() > 4 {
            assert!(
                !stderr(&o).contains(value),
                "the key is echoed: {}",
                stderr(&o)
            );
        }
    }
    let dir = w.dir.path();
    let file = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p.display().to_string()
    };
    let cases = [
        (
            "PGBUNKER_KEY_FILE",
            file("short.key", &[7u8; 31]),
            "PGBUNKER_KEY_FILE is not a valid key",
        ),
        (
            "PGBUNKER_KEY_FILE",
            file("nothex.key", not_hex.as_bytes()),
            "PGBUNKER_KEY_FILE is not a valid key",
        ),
        (
            "PGBUNKER_KEY_FILE",
            file("empty.key", b""),
            "PGBUNKER_KEY_FILE is not a valid key",
        ),
        (
            "PGBUNKER_KEY_FILE",
            dir.join("missing.key").display().to_string(),
            "cannot read the file named by PGBUNKER_KEY_FILE",
        ),
        (
            "PGBUNKER_PASSPHRASE_FILE",
            file("empty.pass", b"\n"),
            "the passphrase is empty",
        ),
        (
            "PGBUNKER_PASSPHRASE_FILE",
            file("latin1.pass", &[0xe9, b'\n']),
            "not UTF-8",
        ),
    ];
    for (var, path, part) in &cases {
        let o = pgbunker(&["list", "--repo", &repo], &[(var, path.as_str())]);
        fails(&o, 6, &[part]);
    }
    // Nor can a new key slot be empty.
    let o = pgbunker(
        &["key", "add", "--repo", &repo],
        &[("PGBUNKER_KEY", KEY), ("PGBUNKER_NEW_PASSPHRASE", "")],
    );
    fails(&o, 6, &["the passphrase is empty"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicting_flags_are_usage_errors() {
    let w = World::start();
    let repo = w.init_repo("repo");
    let url = w.pg.url("postgres");
    let env = [("PGBUNKER_KEY", KEY)];
    for (args, part) in [
        (
            vec!["backup", "--repo", &repo, "-d", &url, &url],
            "cannot be used with",
        ),
        (
            vec![
                "restore",
                "--repo",
                &repo,
                "latest",
                "--target",
                &url,
                "--clean",
                "--data-only",
            ],
            "cannot be used with",
        ),
        (
            vec![
                "restore",
                "--repo",
                &repo,
                "latest",
                "--target",
                &url,
                "--into-schema",
                "s",
                "--create",
            ],
            "cannot be used with",
        ),
        (
            vec![
                "restore",
                "--repo",
                &repo,
                "latest",
                "--target",
                &url,
                "--schema-only",
                "--section",
                "data",
            ],
            "cannot be used with",
        ),
        (
            vec![
                "restore",
                "--repo",
                &repo,
                "latest",
                "--target",
                &url,
                "--if-exists",
            ],
            "--clean",
        ),
        (
            vec![
                "restore",
                "--repo",
                &repo,
                "latest",
                "--target",
                &url,
                "--cascade",
            ],
            "--cascade empties tables referencing those --data-only reloads",
        ),
        (vec!["restore", "--repo", &repo, "latest"], "--target"),
        (
            vec!["backup", "--repo", &repo, "--compress-level", "25", &url],
            "25 is not in 1..=19",
        ),
        (
            vec!["backup", "--repo", &repo, "--lock-wait-timeout", "-1", &url],
            "",
        ),
        (
            vec!["hold", "--repo", &repo, "latest", "--until", "2001-01-01"],
            "is in the past",
        ),
        (vec!["prune", "--repo", &repo], ""),
    ] {
        let o = pgbunker(&args, &env);
        fails(&o, 2, &[part]);
    }
}
