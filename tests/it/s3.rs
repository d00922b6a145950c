//! Object storage for real: the same store contract on a local folder and on an S3 API
//! server (moto_server on loopback), and backup → list → restore through S3.

use pgbunker::sandbox::s3::S3Server;
use pgbunker::store::Store;

use crate::support::{pgbunker, stderr, World, KEY};

pub(crate) fn s3() -> S3Server {
    S3Server::start().unwrap_or_else(|e| {
        panic!(
            "could not start the S3 test server: {e}\n\
             hint: pip install 'moto[server]' (or set PGBUNKER_MOTO_SERVER)"
        )
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_store_contract_holds_on_a_folder_and_on_s3() {
    let dir = tempfile::tempdir().unwrap();
    let local = Store::create(dir.path().to_str().unwrap()).unwrap();
    crate::support::store_conformance(&local).await;
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
    crate::support::bucket_contract(&url, &server.repo_url("conf", "other")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_list_and_restore_through_s3() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    let server = s3();
    server.create_bucket("backups").unwrap();
    let repo = server.repo_url("backups", "clinic/prod");
    let env = [("PGBUNKER_KEY", KEY), server.env()[0], server.env()[1]];
    crate::support::object_store_round_trip(&w, &repo, &env, || {
        for (k, v) in server.env() {
            std::env::set_var(k, v);
        }
    })
    .await;
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

    // A plain-HTTP endpoint without allow_http=true: the option to add is named.
    let plain = repo.replace("&allow_http=true", "");
    assert_ne!(plain, repo);
    let o = pgbunker(&["init", "--repo", &plain], &env);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("allow_http=true"), "{}", stderr(&o));

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
