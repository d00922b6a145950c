//! Encryption: no plaintext in the repository, wrong and missing keys fail clearly.

use crate::support::{files, ok, pgbunker, stderr, World, KEY, OTHER_KEY};

#[tokio::test(flavor = "multi_thread")]
async fn repository_holds_no_plaintext_phi() {
    let w = World::start();
    let src = w.fixture_db("heart", 1).await;
    let client = src.connect().await.unwrap();
    let row = client
        .query_one(
            "SELECT first_name || ' ' || last_name, first_name, last_name, mrn \
             FROM public.patients ORDER BY id LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    let needles: Vec<String> = (0..4).map(|i| row.get::<_, String>(i)).collect();
    let repo = w.init_repo("repo");
    ok(w.backup(&repo, "heart", &[]));
    let all = files(std::path::Path::new(&repo));
    assert!(all.len() > 12, "chunks, manifest, catalog, keys: {all:?}");
    // Table names are sensitive too ("hiv_results"), and so is the MRN format.
    let mut forbidden: Vec<String> = needles;
    forbidden.extend(["vitals_samples".into(), "patients".into(), "MRN-".into()]);
    for f in &all {
        let bytes = std::fs::read(f).unwrap();
        for n in &forbidden {
            assert!(
                !bytes.windows(n.len()).any(|w| w == n.as_bytes()),
                "{} contains {n:?} in clear",
                f.display()
            );
        }
        let path = f.display().to_string();
        assert!(
            !path.contains("patients") && !path.contains("vitals"),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_missing_and_malformed_keys_fail_clearly() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    let repo = w.repo("repo");
    ok(pgbunker(
        &["init", "--repo", &repo],
        &[("PGBUNKER_KEY", KEY)],
    ));
    ok(pgbunker(
        &["backup", "--repo", &repo, &w.pg.url("heart")],
        &[("PGBUNKER_KEY", KEY)],
    ));
    w.empty_db("target").await;
    let target = w.pg.url("target");

    let wrong = pgbunker(
        &["restore", "--repo", &repo, "latest", "--target", &target],
        &[("PGBUNKER_KEY", OTHER_KEY)],
    );
    assert_eq!(wrong.status.code(), Some(6), "{}", stderr(&wrong));
    let msg = stderr(&wrong);
    assert!(
        msg.contains("the key does not open this repository"),
        "{msg}"
    );
    assert!(msg.contains("hint:"), "{msg}");
    assert!(
        !msg.contains(OTHER_KEY) && !msg.contains(KEY),
        "keys never printed"
    );

    let none = pgbunker(&["list", "--repo", &repo], &[]);
    assert_eq!(none.status.code(), Some(6));
    assert!(
        stderr(&none).contains("PGBUNKER_KEY_FILE"),
        "{}",
        stderr(&none)
    );

    let short = pgbunker(&["list", "--repo", &repo], &[("PGBUNKER_KEY", "abcd")]);
    assert_eq!(short.status.code(), Some(6));
    assert!(
        stderr(&short).contains("4 hex characters"),
        "{}",
        stderr(&short)
    );

    let wrong_pass = pgbunker(
        &["list", "--repo", &repo],
        &[("PGBUNKER_PASSPHRASE", "guess")],
    );
    assert_eq!(wrong_pass.status.code(), Some(6), "{}", stderr(&wrong_pass));

    // An empty key-file variable (`PGBUNKER_KEY_FILE=` to clear it in a unit file)
    // counts as unset: the key in PGBUNKER_KEY opens the repository.
    ok(pgbunker(
        &["list", "--repo", &repo],
        &[("PGBUNKER_KEY", KEY), ("PGBUNKER_KEY_FILE", "")],
    ));

    // Nothing was restored by the failed attempts.
    let client = w.pg.conn("target").connect().await.unwrap();
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname = 'patients'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn passphrase_key_file_and_plaintext_repositories() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    let url = w.pg.url("heart");

    // Passphrase (Argon2id) repository.
    let repo = w.repo("pass");
    let env = [("PGBUNKER_PASSPHRASE", "correct horse battery staple")];
    ok(pgbunker(&["init", "--repo", &repo], &env));
    ok(pgbunker(&["backup", "--repo", &repo, &url], &env));
    assert!(ok(pgbunker(&["list", "--repo", &repo], &env)).contains("complete"));

    // Key file repository; a key file with the wrong size is refused.
    let keyfile = w.dir.path().join("key");
    std::fs::write(&keyfile, format!("{KEY}\n")).unwrap();
    std::fs::set_permissions(
        &keyfile,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let repo = w.repo("keyfile");
    let kf = keyfile.display().to_string();
    ok(pgbunker(
        &["init", "--repo", &repo],
        &[("PGBUNKER_KEY_FILE", &kf)],
    ));
    ok(pgbunker(
        &["backup", "--repo", &repo, &url],
        &[("PGBUNKER_KEY_FILE", &kf)],
    ));
    let short = w.dir.path().join("short");
    std::fs::write(&short, "0123").unwrap();
    let bad = pgbunker(
        &["list", "--repo", &repo],
        &[("PGBUNKER_KEY_FILE", &short.display().to_string())],
    );
    assert_eq!(bad.status.code(), Some(6));

    // Two key sources at once is ambiguous.
    let both = pgbunker(
        &["list", "--repo", &repo],
        &[("PGBUNKER_KEY_FILE", &kf), ("PGBUNKER_KEY", KEY)],
    );
    assert_eq!(both.status.code(), Some(6));
    assert!(
        stderr(&both).contains("set exactly one"),
        "{}",
        stderr(&both)
    );

    // Without a key, init refuses unless plaintext is asked for loudly.
    let repo = w.repo("plain");
    let refused = pgbunker(&["init", "--repo", &repo], &[]);
    assert_eq!(refused.status.code(), Some(6));
    assert!(
        stderr(&refused).contains("no encryption key"),
        "{}",
        stderr(&refused)
    );
    assert!(!std::path::Path::new(&repo).join("pgbunker.json").exists());
    let plain = pgbunker(&["init", "--repo", &repo, "--insecure-plaintext"], &[]);
    assert!(stderr(&plain).contains("NOT be encrypted"));
    ok(plain);
    ok(pgbunker(&["backup", "--repo", &repo, &url], &[]));
    w.empty_db("from_plain").await;
    ok(pgbunker(
        &[
            "restore",
            "--repo",
            &repo,
            "latest",
            "--target",
            &w.pg.url("from_plain"),
        ],
        &[],
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn summary_json_holds_no_row_counts_or_server_build() {
    let w = World::start();
    let repo = w.backed_up().await;
    let env = [("PGBUNKER_KEY", KEY)];
    let client = w.pg.conn("heart").connect().await.unwrap();
    let build: String = client
        .query_one("SELECT version()", &[])
        .await
        .unwrap()
        .get(0);
    let short: String = client
        .query_one("SHOW server_version", &[])
        .await
        .unwrap()
        .get(0);
    let summaries: Vec<_> = files(std::path::Path::new(&repo))
        .into_iter()
        .filter(|f| f.ends_with("summary.json"))
        .collect();
    assert_eq!(summaries.len(), 1);
    let text = std::fs::read_to_string(&summaries[0]).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut keys: Vec<&str> = summary
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "backup_id",
            "chunks",
            "dek_id",
            "duration_ms",
            "encrypted",
            "finished_at",
            "format_version",
            "new_bytes",
            "new_chunks",
            "rk_id",
            "started_at",
            "stored_bytes",
            "tool_version"
        ],
        "{text}"
    );
    for secret in [build.as_str(), short.as_str()] {
        assert!(
            !text.contains(secret),
            "summary.json shows {secret:?}: {text}"
        );
    }
    // With the key, list and check still show the totals, from the sealed manifest.
    let list: serde_json::Value =
        serde_json::from_str(&ok(pgbunker(&["--json", "list", "--repo", &repo], &env))).unwrap();
    let line = &list["backups"][0];
    assert!(line["rows"].as_u64().unwrap() > 0, "{list}");
    assert!(line["tables"].as_u64().unwrap() >= 10, "{list}");
    assert!(line["raw_bytes"].as_u64().unwrap() > 0, "{list}");
    let o = pgbunker(&["--json", "check", "--repo", &repo], &env);
    let check: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        check["newest_backup"]["tables"].as_u64().unwrap() >= 10,
        "{check}"
    );
}
