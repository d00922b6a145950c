//! `pgbunker copy` (issue #24, item 11): backups re-sealed into a second repository
//! under another key, local → S3 and S3 → local; the copies verify down to their rows
//! there and restore identical to the source (the round-trip oracle); what the second
//! repository has is skipped, and a copy stopped midway is finished by running it again.

use crate::support::{json, ok, pgbunker, run_sql, stderr, table_chunks, World, KEY, OTHER_KEY};

#[tokio::test(flavor = "multi_thread")]
async fn backups_copy_to_s3_and_back_under_other_keys_and_restore_identical() {
    let w = World::start();
    let local = w.backed_up().await;
    run_sql(&w, "heart", "DELETE FROM public.audit_log WHERE id % 3 = 0").await;
    ok(w.backup(&local, "heart", &[]));
    let server = crate::s3::s3();
    server.create_bucket("offsite").unwrap();
    let remote = server.repo_url("offsite", "clinic");
    let [aws_id, aws_secret] = server.env();
    let env_remote = [("PGBUNKER_KEY", OTHER_KEY), aws_id, aws_secret];
    ok(pgbunker(&["init", "--repo", &remote], &env_remote));

    // Local → S3, every backup: the second repository's own key opens them there.
    let copy_env = [
        ("PGBUNKER_KEY", KEY),
        ("PGBUNKER_TO_KEY", OTHER_KEY),
        aws_id,
        aws_secret,
    ];
    let out = ok(pgbunker(
        &["copy", "--from", &local, "--to", &remote, "all", "--json"],
        &copy_env,
    ));
    let report = json(&out);
    assert_eq!(report["copied"].as_array().unwrap().len(), 2, "{report}");
    let ids = |repo: &str, env: &[(&str, &str)]| -> Vec<String> {
        json(&ok(pgbunker(&["list", "--repo", repo, "--json"], env)))["backups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["backup_id"].as_str().unwrap().to_string())
            .collect()
    };
    let local_env = [("PGBUNKER_KEY", KEY)];
    assert_eq!(ids(&remote, &env_remote), ids(&local, &local_env));
    ok(pgbunker(
        &["verify", "--repo", &remote, "all", "--data"],
        &env_remote,
    ));
    // The first repository's key opens nothing there.
    let wrong = [("PGBUNKER_KEY", KEY), aws_id, aws_secret];
    assert!(!pgbunker(&["list", "--repo", &remote], &wrong)
        .status
        .success());

    // Again: nothing to do.
    let again = json(&ok(pgbunker(
        &["copy", "--from", &local, "--to", &remote, "all", "--json"],
        &copy_env,
    )));
    assert_eq!(again["copied"].as_array().unwrap().len(), 0);
    assert_eq!(again["skipped"].as_array().unwrap().len(), 2);

    // S3 → a new local repository, the latest only; it restores as the source is now.
    let back = w.repo("back");
    let third = "3333333333333333333333333333333333333333333333333333333333333333";
    ok(pgbunker(
        &["init", "--repo", &back],
        &[("PGBUNKER_KEY", third)],
    ));
    let back_env = [
        ("PGBUNKER_KEY", OTHER_KEY),
        ("PGBUNKER_TO_KEY", third),
        aws_id,
        aws_secret,
    ];
    ok(pgbunker(
        &["copy", "--from", &remote, "--to", &back, "latest"],
        &back_env,
    ));
    let third_env = [("PGBUNKER_KEY", third)];
    ok(pgbunker(
        &["verify", "--repo", &back, "latest", "--data"],
        &third_env,
    ));
    w.empty_db("restored").await;
    let target = w.pg.url("restored");
    ok(pgbunker(
        &["restore", "--repo", &back, "latest", "--target", &target],
        &third_env,
    ));
    w.assert_same("heart", "restored").await;

    // The audit trail of the second repository records the copies.
    let audit = ok(pgbunker(
        &["audit", "--repo", &back, "--operation", "copy", "--json"],
        &third_env,
    ));
    assert!(audit.contains("\"copy\""), "{audit}");

    // Without a key for --to: a clear refusal, nothing written.
    let o = pgbunker(
        &["copy", "--from", &local, "--to", &back, "all"],
        &local_env,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("PGBUNKER_TO_KEY"), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_that_fails_midway_commits_nothing_and_the_next_run_finishes_it() {
    let w = World::start();
    let local = w.backed_up().await;
    let other = w.repo("other");
    ok(pgbunker(
        &["init", "--repo", &other],
        &[("PGBUNKER_KEY", OTHER_KEY)],
    ));
    let env = [("PGBUNKER_KEY", KEY), ("PGBUNKER_TO_KEY", OTHER_KEY)];
    let other_env = [("PGBUNKER_KEY", OTHER_KEY)];
    let listed = |w: &[(&str, &str)]| {
        json(&ok(pgbunker(&["list", "--repo", &other, "--json"], w)))["backups"]
            .as_array()
            .unwrap()
            .len()
    };

    // The last chunk of the biggest table is damaged: the copy stops there, after the
    // chunks before it went up, and commits nothing.
    let chunks = table_chunks(&local, "latest", "public.vitals_samples").await;
    assert!(chunks.len() > 1, "{chunks:?}");
    let last = chunks.last().unwrap();
    let good = std::fs::read(last).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    std::fs::write(last, &bad).unwrap();
    let o = pgbunker(&["copy", "--from", &local, "--to", &other, "latest"], &env);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("SHA-256"), "{}", stderr(&o));
    assert_eq!(listed(&other_env), 0, "nothing committed");

    // Mended, the same command finishes it, reusing what the failed run stored.
    std::fs::write(last, &good).unwrap();
    let report = json(&ok(pgbunker(
        &["copy", "--from", &local, "--to", &other, "latest", "--json"],
        &env,
    )));
    let copied = &report["copied"][0];
    assert!(
        copied["new_chunks"].as_u64().unwrap() < copied["chunks"].as_u64().unwrap(),
        "the chunks stored before the failure are reused: {copied}"
    );
    assert_eq!(listed(&other_env), 1);
    ok(pgbunker(
        &["verify", "--repo", &other, "all", "--data"],
        &other_env,
    ));
}
