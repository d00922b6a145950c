//! `verify --restore-test`: the runbook's monthly restore test, checked against the
//! source database, and a FAIL report for a damaged backup.

use std::path::Path;

use crate::support::{ok, stderr, World};

async fn user_tables(w: &World, db: &str) -> i64 {
    let client = w.pg.conn(db).connect().await.unwrap();
    client
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname !~ '^pg_'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_test_passes_with_the_source_counts_and_cleans_up() {
    let w = World::start();
    let repo = w.backed_up().await;
    let out = ok(w.restore_test(&repo).await);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["result"], "PASS", "{out}");
    let source = w.pg.conn("heart").connect().await.unwrap();
    let tables = r["tables"].as_array().unwrap();
    assert!(tables.len() >= 10, "{out}");
    for t in tables {
        let count: i64 = source
            .query_one(
                &format!(
                    "SELECT count(*) FROM {}",
                    t["table"]
                        .as_str()
                        .unwrap()
                        .split('.')
                        .map(|p| format!("\"{}\"", p.trim_matches('"')))
                        .collect::<Vec<_>>()
                        .join(".")
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(t["restored_rows"], count, "{t}");
        assert_eq!(t["expected_rows"], count, "{t}");
        assert_eq!(t["checksum_ok"], true, "{t}");
    }
    assert!(r["foreign_keys_expected"].as_u64().unwrap() > 0);
    assert_eq!(r["foreign_keys_valid"], r["foreign_keys_expected"]);
    assert!(r["indexes_expected"].as_u64().unwrap() > 10);
    assert_eq!(r["indexes_present"], r["indexes_expected"]);
    assert_eq!(r["cleaned_up"], true);
    assert_eq!(
        user_tables(&w, "scratch").await,
        0,
        "scratch objects dropped"
    );
    // Both reports are on disk; the Markdown follows the runbook's template.
    let md = std::fs::read_to_string(r["report_markdown"].as_str().unwrap()).unwrap();
    for field in [
        "Restore Test Results",
        "Backup Size:",
        "Restore Start Time:",
        "Restore Duration:",
        "Foreign key constraints intact",
        "Indexes present",
        "**Result: PASS**",
    ] {
        assert!(md.contains(field), "{field} missing:\n{md}");
    }
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r["report_json"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(on_disk["backup_id"], r["backup_id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_backup_fails_its_restore_test_with_a_report() {
    let w = World::start();
    let repo = w.backed_up().await;
    let chunk = crate::support::chunk_files(Path::new(&repo))
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&chunk).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&chunk, bytes).unwrap();
    let o = w.restore_test(&repo).await;
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["result"], "FAIL");
    assert!(stderr(&o).contains("restore test FAILED"), "{}", stderr(&o));
    let md = std::fs::read_to_string(r["report_markdown"].as_str().unwrap()).unwrap();
    assert!(md.contains("**Result: FAIL**"), "{md}");
    assert_eq!(user_tables(&w, "scratch").await, 0, "nothing was written");
}

/// Restored arrays and composites of user types carry the scratch database's type
/// OIDs inside their binary values; the checks map them back to the backup's before
/// comparing checksums, so the test passes rather than reporting them as differing.
#[tokio::test(flavor = "multi_thread")]
async fn a_restore_test_passes_for_arrays_and_composites_of_user_types() {
    let w = World::start();
    let src = w.empty_db("usertypes").await;
    let c = src.connect().await.unwrap();
    c.batch_execute(
        "CREATE TYPE public.mood AS ENUM ('calm', 'tense'); \
         CREATE TYPE public.tagged AS (label text, mood public.mood, moods public.mood[]); \
         CREATE TABLE public.moods (id int PRIMARY KEY, moods public.mood[], t public.tagged); \
         INSERT INTO public.moods \
           SELECT i, ARRAY['calm', 'tense', NULL]::public.mood[], \
                  ROW('n' || i, 'tense', '{calm}')::public.tagged \
           FROM pg_catalog.generate_series(1, 50) i; \
         INSERT INTO public.moods VALUES (51, NULL, NULL), (52, '{}', ROW(NULL, NULL, NULL));",
    )
    .await
    .unwrap();
    let repo = w.init_repo("repo");
    ok(w.backup(&repo, "usertypes", &[]));
    // Types created and dropped meanwhile, as on a busy cluster: the restored types
    // surely get other OIDs than the backed-up ones.
    crate::support::shift_type_oids(&c).await;
    let o = w.restore_test(&repo).await;
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["result"], "PASS", "{out}");
    let tables = r["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 1, "{out}");
    assert_eq!(tables[0]["restored_rows"], 52, "{out}");
    assert_eq!(tables[0]["checksum_ok"], true, "{out}");
}
