//! `pgbunker copy` (issue #24, item 11): backups re-sealed into a second repository
//! under another key, local → S3 and S3 → local; the copies verify down to their rows
//! there and restore identical to the source (the round-trip oracle); what the second
//! repository has, or pruned, is not copied again; a backup that does not read is named
//! while the others are copied, and copied later reusing what was stored; a copy of one
//! backup running twice at once is refused.

use crate::support::{
    json, ok, pgbunker, run_sql, stderr, stdout, table_chunks, World, KEY, OTHER_KEY,
};

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
    let latest = json(&ok(pgbunker(
        &[
            "copy", "--from", &local, "--to", &remote, "latest", "--json",
        ],
        &copy_env,
    )));
    assert_eq!(latest["copied"].as_array().unwrap().len(), 0);
    assert_eq!(latest["skipped"].as_array().unwrap().len(), 1, "{latest}");

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
async fn copies_go_on_past_a_bad_backup_never_twice_at_once_and_never_bring_back_the_pruned() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    let local = w.init_repo("repo");
    let small = ["--json", "--chunk-size-kb", "64"];
    let id = |out: String| json(&out)["backup_id"].as_str().unwrap().to_string();
    let a = id(ok(w.backup(&local, "heart", &small)));
    // A later backup of patients alone: it shares no chunk with vitals_samples.
    let mut partial = small.to_vec();
    partial.extend(["-t", "public.patients"]);
    let b = id(ok(w.backup(&local, "heart", &partial)));
    let other = w.repo("other");
    ok(pgbunker(
        &["init", "--repo", &other],
        &[("PGBUNKER_KEY", OTHER_KEY)],
    ));
    let env = [("PGBUNKER_KEY", KEY), ("PGBUNKER_TO_KEY", OTHER_KEY)];
    let other_env = [("PGBUNKER_KEY", OTHER_KEY)];
    let listed = || -> Vec<String> {
        json(&ok(pgbunker(
            &["list", "--repo", &other, "--json"],
            &other_env,
        )))["backups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["status"] == "complete")
            .map(|b| b["backup_id"].as_str().unwrap().to_string())
            .collect()
    };
    let copy = |which: &str| {
        pgbunker(
            &["--json", "copy", "--from", &local, "--to", &other, which],
            &env,
        )
    };

    // A chunk only the older backup has is damaged: that backup is named and not
    // copied, the newer one is.
    let chunks = table_chunks(&local, &a, "public.vitals_samples").await;
    let damaged = chunks.last().unwrap();
    let good = std::fs::read(damaged).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    std::fs::write(damaged, &bad).unwrap();
    let o = copy("all");
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let report = json(&stdout(&o));
    assert_eq!(report["failed"][0]["backup_id"], a.as_str(), "{report}");
    assert!(
        report["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("SHA-256"),
        "{report}"
    );
    assert_eq!(report["copied"][0]["backup_id"], b.as_str(), "{report}");
    assert_eq!(listed(), std::slice::from_ref(&b));

    // Mended, the older one is copied by its id (`all` only looks past the newest the
    // second repository holds), reusing the chunks stored already.
    std::fs::write(damaged, &good).unwrap();
    let report = json(&ok(copy(&a)));
    let copied = &report["copied"][0];
    assert!(
        copied["new_chunks"].as_u64().unwrap() < copied["chunks"].as_u64().unwrap(),
        "the chunks stored before are reused: {copied}"
    );
    ok(pgbunker(
        &["verify", "--repo", &other, "all", "--data"],
        &other_env,
    ));

    // Another process writing the same backup there (a copy run twice at once): refused,
    // nothing written; once it is gone, the copy goes.
    let c = id(ok(w.backup(&local, "heart", &small)));
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let locks = std::path::Path::new(&other).join("locks");
    std::fs::create_dir_all(&locks).unwrap();
    let lock = locks.join("00aa00aa00aa00aa.json");
    std::fs::write(
        &lock,
        format!(
            r#"{{"kind": "backup", "bid": "{c}", "pid": 4242, "created_at": "{now}",
                "refreshed_at": "{now}", "host": "dr-host"}}"#
        ),
    )
    .unwrap();
    let o = copy("all");
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("another process (pid 4242 on dr-host"),
        "{}",
        stderr(&o)
    );
    assert_eq!(listed().len(), 2);
    std::fs::remove_file(&lock).unwrap();
    ok(copy("all"));
    assert_eq!(listed().len(), 3);

    // The second repository's own retention holds: what it pruned is not copied back.
    ok(pgbunker(
        &[
            "prune",
            "--repo",
            &other,
            "--keep-last",
            "1",
            "--grace",
            "0",
        ],
        &other_env,
    ));
    assert_eq!(listed(), std::slice::from_ref(&c));
    let report = json(&ok(copy("all")));
    assert_eq!(report["copied"].as_array().unwrap().len(), 0, "{report}");
    assert_eq!(listed(), [c]);
}
