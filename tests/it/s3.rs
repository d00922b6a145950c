//! Object storage for real: the same store contract on a local folder and on an S3 API
//! server (moto_server on loopback), and backup → list → restore through S3.

use bytes::Bytes;
use pgbunker::sandbox::s3::S3Server;
use pgbunker::store::{Store, StoreError};

use crate::support::{ok, pgbunker, prune_json, stderr, World, KEY};

fn s3() -> S3Server {
    S3Server::start().unwrap_or_else(|e| {
        panic!(
            "could not start the S3 test server: {e}\n\
             hint: pip install 'moto[server]' (or set PGBUNKER_MOTO_SERVER)"
        )
    })
}

/// The contract every backend keeps (object_store's conformance idea, for our slice).
async fn conformance(s: &Store) {
    s.put_new("a/b/1", Bytes::from_static(b"x")).await.unwrap();
    s.put_new("a/c/2", Bytes::from_static(b"yy")).await.unwrap();
    assert!(matches!(
        s.put_new("a/b/1", Bytes::from_static(b"z")).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(s.get("a/b/1").await.unwrap(), Bytes::from_static(b"x"));
    assert_eq!(s.list("a").await.unwrap(), vec!["a/b/1", "a/c/2"]);
    assert_eq!(s.list_dirs("a").await.unwrap(), vec!["b", "c"]);
    assert_eq!(s.size("a/c/2").await.unwrap(), Some(2));
    assert!(s.get_opt("nope").await.unwrap().is_none());
    assert!(matches!(s.get("nope").await, Err(StoreError::NotFound(_))));
    // Above the multipart threshold on cloud stores.
    let big: Vec<u8> = (0..20u32 << 20)
        .map(|i| i.wrapping_mul(2654435761) as u8)
        .collect();
    s.put_new("big/obj", Bytes::from(big.clone()))
        .await
        .unwrap();
    assert_eq!(s.get("big/obj").await.unwrap().as_ref(), big.as_slice());
    assert!(matches!(
        s.put_new("big/obj", Bytes::from(big)).await,
        Err(StoreError::AlreadyExists(_))
    ));
    s.delete("a/b/1").await.unwrap();
    s.delete("a/b/1").await.unwrap();
    assert!(s.get_opt("a/b/1").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_store_contract_holds_on_a_folder_and_on_s3() {
    let dir = tempfile::tempdir().unwrap();
    let local = Store::create(dir.path().to_str().unwrap()).unwrap();
    conformance(&local).await;
    local.check_create_only().await.unwrap();
    assert!(
        local.list("probe").await.unwrap().is_empty(),
        "the probe is removed"
    );

    let server = s3();
    server.create_bucket("conf").unwrap();
    for (k, v) in server.env() {
        std::env::set_var(k, v);
    }
    let url = server.repo_url("conf", "some/prefix");
    conformance(&Store::create(&url).unwrap()).await;
    Store::open(&url)
        .unwrap()
        .check_create_only()
        .await
        .unwrap();
    // The prefix isolates: a neighbour prefix sees nothing.
    let other = Store::open(&server.repo_url("conf", "other")).unwrap();
    assert!(other.list("").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_list_and_restore_through_s3() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    let server = s3();
    server.create_bucket("backups").unwrap();
    let repo = server.repo_url("backups", "clinic/prod");
    let env = [("PGBUNKER_KEY", KEY), server.env()[0], server.env()[1]];
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
    for (k, v) in server.env() {
        std::env::set_var(k, v);
    }
    let store = Store::open(&repo).unwrap();
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

#[tokio::test(flavor = "multi_thread")]
async fn missing_buckets_and_pasted_credentials_are_clear() {
    let server = s3();
    server.create_bucket("bkt").unwrap();
    let repo = server.repo_url("missing-bucket", "p");
    let env = [("PGBUNKER_KEY", KEY), server.env()[0], server.env()[1]];
    let o = pgbunker(&["init", "--repo", &repo], &env);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("bucket does not exist"),
        "{}",
        stderr(&o)
    );

    // A credential pasted into the URL is refused and never echoed.
    let pasted = format!(
        "{}&secret_access_key=hunter2hunter2",
        server.repo_url("bkt", "p")
    );
    let o = pgbunker(&["init", "--repo", &pasted], &env);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!stderr(&o).contains("hunter2"), "{}", stderr(&o));
    assert!(stderr(&o).contains("AWS_ACCESS_KEY_ID"), "{}", stderr(&o));
}
