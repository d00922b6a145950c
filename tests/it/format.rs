//! The repository format is a contract: the version-1 to 5 repositories committed
//! under `fixtures/repo-v1/` … `repo-v5/` must stay readable
//! (list, verify, restore, export), and every JSON object the current writer produces
//! must match the JSON Schemas in `schema/`.

use std::path::{Path, PathBuf};

use pgbunker::archive::{BackupReader, KeySource, Repository};
use pgbunker::codec::parse_key_bytes;
use pgbunker::store::Store;

use crate::support::{all_rows, files, ok, pgbunker, World, KEY};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn validator(name: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("schema").join(name)).expect("schema file");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("{name} is not a valid schema: {e}"))
}

fn assert_valid(schema: &str, value: &serde_json::Value, what: &str) {
    let v = validator(schema);
    let errors: Vec<String> = v
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match {schema}: {errors:#?}"
    );
}

fn json_file(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Checks every JSON object of a repository (plaintext ones directly, sealed ones
/// through the library) against the schemas.
pub(crate) async fn check_schemas(repo_dir: &Path) {
    assert_valid(
        "repo-config.schema.json",
        &json_file(&repo_dir.join("pgbunker.json")),
        "pgbunker.json",
    );
    for f in files(repo_dir) {
        let rel = f.strip_prefix(repo_dir).unwrap().display().to_string();
        if rel.starts_with("keys/") {
            assert_valid("keyslot.schema.json", &json_file(&f), &rel);
        } else if rel.ends_with("summary.json") {
            assert_valid("summary.schema.json", &json_file(&f), &rel);
        } else if rel.starts_with("locks/") {
            assert_valid("lock.schema.json", &json_file(&f), &rel);
        }
    }
    let key = KeySource::Key(parse_key_bytes(KEY.as_bytes()).unwrap());
    let repo = Repository::open(Store::open(repo_dir.to_str().unwrap()).unwrap(), Some(&key))
        .await
        .unwrap();
    let cat = repo.catalog().await.unwrap();
    assert_valid(
        "catalog-entry.schema.json",
        &serde_json::to_value(&cat).unwrap(),
        "catalog entry",
    );
    for live in &cat.live {
        let reader = BackupReader::open(&repo, live).await.unwrap();
        assert_valid(
            "manifest.schema.json",
            &serde_json::to_value(reader.manifest()).unwrap(),
            "manifest",
        );
    }
}

/// `fixtures/repo-vN` still lists, verifies, restores identical to its `source.sql`,
/// exports, and matches the JSON Schemas.
async fn old_repository_still_reads(version: u32, backup_id: &str) {
    let w = World::start();
    let fixture = root().join(format!("fixtures/repo-v{version}"));
    // Work on a copy: reading must never need to write, but a bug must not damage
    // the fixture either.
    let repo = w.dir.path().join(format!("repo-v{version}"));
    for f in files(&fixture.join("repo")) {
        let dest = repo.join(f.strip_prefix(fixture.join("repo")).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dest).unwrap();
    }
    let repo_s = repo.display().to_string();
    let env = [("PGBUNKER_KEY", KEY)];
    let list = ok(pgbunker(&["list", "--repo", &repo_s], &env));
    assert!(
        list.contains(backup_id) && list.contains("complete"),
        "{list}"
    );
    ok(pgbunker(
        &["verify", "--repo", &repo_s, "--data", backup_id],
        &env,
    ));

    let expected = w.db_from_sql("expected", &fixture.join("source.sql")).await;
    let restored = w.empty_db("restored").await;
    ok(pgbunker(
        &[
            "restore",
            "--repo",
            &repo_s,
            backup_id,
            "--target",
            &w.pg.url("restored"),
        ],
        &env,
    ));
    assert_eq!(all_rows(&expected).await, all_rows(&restored).await);
    assert_eq!(w.schema_dump("expected"), w.schema_dump("restored"));

    let out = w.dir.path().join("export");
    let report = ok(pgbunker(
        &[
            "--json",
            "export",
            "--repo",
            &repo_s,
            backup_id,
            "--out",
            out.to_str().unwrap(),
        ],
        &env,
    ));
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let exported = report["tables"].as_array().unwrap().len();
    assert!(exported >= 3, "{report}");
    check_schemas(&repo).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn version_1_repository_still_restores_and_matches_its_source() {
    old_repository_still_reads(1, "20261123T194330Z-f6f74ded").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn version_2_repository_still_restores_and_matches_its_source() {
    old_repository_still_reads(2, "20261124T094649Z-4a866f7c").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn version_3_repository_still_restores_and_matches_its_source() {
    old_repository_still_reads(3, "20261207T000523Z-a526f3e7").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn version_4_repository_still_restores_and_matches_its_source() {
    old_repository_still_reads(4, "20261207T052640Z-189558ba").await;
}

/// Two deduplicated backups: the second shares most chunks with the first and holds
/// delta chunks against it; it is the one restored and compared.
#[tokio::test(flavor = "multi_thread")]
async fn version_5_repository_still_restores_and_matches_its_source() {
    let repo = root().join("fixtures/repo-v5/repo");
    let deltas = crate::support::delta_chunks(repo.to_str().unwrap(), "latest").await;
    assert!(!deltas.is_empty(), "the fixture holds delta chunks");
    old_repository_still_reads(5, "20261207T064346Z-6734ac99").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn freshly_written_objects_match_the_json_schemas() {
    let w = World::start();
    let repo = w.backed_up().await;
    check_schemas(Path::new(&repo)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_with_large_objects_matches_the_json_schema() {
    let w = World::start();
    w.empty_db("blobs").await;
    crate::support::run_sql(
        &w,
        "blobs",
        "SELECT lo_from_bytea(8880001, 'x'); COMMENT ON LARGE OBJECT 8880001 IS 'c'; \
         GRANT SELECT ON LARGE OBJECT 8880001 TO PUBLIC",
    )
    .await;
    let repo = w.init_repo("repo");
    ok(w.backup(&repo, "blobs", &[]));
    check_schemas(Path::new(&repo)).await;
}

/// An older repository takes no deduplicated backup until `upgrade` says so; then it is
/// version 5 (a new key ring generation of object version 2, the writer's slot version
/// 3), its next backups share chunks, and the backup written before the upgrade still
/// verifies and restores.
#[tokio::test(flavor = "multi_thread")]
async fn a_version_2_repository_is_upgraded_explicitly_then_deduplicates() {
    let w = World::start();
    let fixture = root().join("fixtures/repo-v2");
    let repo = w.dir.path().join("repo-v2");
    for f in files(&fixture.join("repo")) {
        let dest = repo.join(f.strip_prefix(fixture.join("repo")).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dest).unwrap();
    }
    let repo_s = repo.display().to_string();
    // Every copy of the fixture has its repository id, and marks are kept by id too.
    let state = w.dir.path().join("state").display().to_string();
    let env = [
        ("PGBUNKER_KEY", KEY),
        ("PGBUNKER_STATE_DIR", state.as_str()),
    ];
    w.fixture_db("heart", 1).await;
    let refused = pgbunker(&["backup", "--repo", &repo_s, &w.pg.url("heart")], &env);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("pgbunker upgrade"), "{said}");
    assert_eq!(
        json_file(&repo.join("pgbunker.json"))["version"],
        2,
        "nothing converted"
    );
    assert!(!repo.join("chunks").exists());

    let out = ok(pgbunker(&["upgrade", "--repo", &repo_s], &env));
    assert!(out.contains("from repository format 2 to 5"), "{out}");
    for _ in 0..2 {
        ok(pgbunker(
            &["backup", "--repo", &repo_s, &w.pg.url("heart")],
            &env,
        ));
    }
    let report: serde_json::Value = serde_json::from_str(&ok(pgbunker(
        &["--json", "backup", "--repo", &repo_s, &w.pg.url("heart")],
        &env,
    )))
    .unwrap();
    assert_eq!(report["summary"]["new_chunks"], 0, "{report}");

    assert_eq!(json_file(&repo.join("pgbunker.json"))["version"], 5);
    let generations = files(&repo.join("keyring"));
    let newest = std::fs::read(generations.last().unwrap()).unwrap();
    assert_eq!(newest[8], 2, "the new generation names its ring key");
    for slot in files(&repo.join("keys")) {
        assert_eq!(json_file(&slot)["version"], 3);
    }
    let old = "20261124T094649Z-4a866f7c";
    ok(pgbunker(
        &["verify", "--repo", &repo_s, "--data", "all"],
        &env,
    ));
    let expected = w.db_from_sql("expected", &fixture.join("source.sql")).await;
    let restored = w.empty_db("restored").await;
    let target = w.pg.url("restored");
    ok(pgbunker(
        &["restore", "--repo", &repo_s, old, "--target", &target],
        &env,
    ));
    assert_eq!(all_rows(&expected).await, all_rows(&restored).await);
    w.empty_db("latest").await;
    let target = w.pg.url("latest");
    ok(pgbunker(
        &["restore", "--repo", &repo_s, "latest", "--target", &target],
        &env,
    ));
    w.assert_same("heart", "latest").await;
    check_schemas(&repo).await;
}
