//! Partial backups (`-t`, `-n`, `-T`, `-N`, issue #3): they round-trip, with only the
//! objects they should contain, and a pattern that matches nothing is refused before
//! anything is written.
//!
//! A `-t`/`-n` backup holds what pg_dump would dump with the same switches: not what
//! its tables depend on (the fixture's `patients` has foreign keys to `organizations`
//! and `users` and a default drawing from the standalone `chart_number_seq`). Such a
//! backup is restored where those exist: into a copy of the source from which the
//! selected objects were dropped, and the result must equal the source.

use std::path::Path;

use pgbunker::archive::{BackupReader, Manifest, SelectionRecord};

use crate::support::{
    all_rows, ok, pgbunker, repo_access, run_sql, sequence_values, stderr, table_schema_dump,
    tables_of, World, KEY,
};

/// `pgbunker --json backup` of `db` with `flags`; returns the report.
fn backup_json(w: &World, repo: &str, db: &str, flags: &[&str]) -> serde_json::Value {
    let url = w.pg.url(db);
    let mut args = vec!["--json", "backup", "--repo", repo];
    args.extend_from_slice(flags);
    args.push(&url);
    let out = ok(pgbunker(&args, &[("PGBUNKER_KEY", KEY)]));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("backup printed no JSON ({e}): {out}"))
}

/// The manifest of backup `id`, read through the library.
async fn manifest(repo: &str, id: &str) -> Manifest {
    let repo = repo_access(repo).open().await.expect("open the repository");
    let live = repo.resolve(id).await.expect("the backup is committed");
    BackupReader::open(&repo, &live)
        .await
        .expect("open the backup")
        .manifest()
        .clone()
}

/// A copy of the source in database `name`: a full backup restored.
async fn full_copy(w: &World, repo: &str, name: &str) {
    w.empty_db(name).await;
    ok(w.backup(repo, "heart", &[]));
    ok(w.restore(repo, "latest", name));
}

#[tokio::test(flavor = "multi_thread")]
async fn partial_table_backup_holds_only_its_tables_and_restores_beside_the_rest() {
    let w = World::start();
    let src = w.fixture_db("heart", 1).await;
    let repo = w.init_repo("repo");

    // -t patients: the table, its indexes and constraints (foreign keys included, as
    // pg_dump -t keeps them) and the serial sequence it owns; no schema, no type, no
    // other sequence.
    let report = backup_json(&w, &repo, "heart", &["-t", "patients"]);
    assert_eq!(tables_of(&report), ["public.patients"]);
    let source_rows: i64 = src
        .connect()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM public.patients", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(report["summary"]["rows"].as_i64(), Some(source_rows));
    let id = report["backup_id"].as_str().unwrap().to_owned();
    let m = manifest(&repo, &id).await;
    let cat = &m.catalog;
    let tables: Vec<String> = cat.tables.iter().map(|t| t.name.plain()).collect();
    assert_eq!(tables, ["public.patients"]);
    let sequences: Vec<String> = cat.sequences.iter().map(|s| s.name.plain()).collect();
    assert_eq!(sequences, ["public.patients_id_seq"]);
    assert!(cat.schemas.is_empty(), "{:?}", cat.schemas);
    assert!(cat.enums.is_empty(), "{:?}", cat.enums);
    let patients = &cat.tables[0];
    assert!(!patients.indexes.is_empty());
    assert!(
        patients.referenced_tables().count() >= 2,
        "its foreign keys stay"
    );
    assert_eq!(m.tables.len(), 1);
    assert_eq!(
        m.selection,
        Some(SelectionRecord {
            tables: vec!["patients".into()],
            ..Default::default()
        })
    );

    // Restored beside the rest of the database, it comes back as it was.
    full_copy(&w, &repo, "target").await;
    run_sql(&w, "target", "DROP TABLE public.patients CASCADE").await;
    ok(w.restore(&repo, &id, "target"));
    let dst = w.pg.conn("target");
    assert_eq!(all_rows(&src).await, all_rows(&dst).await);
    assert_eq!(sequence_values(&src).await, sequence_values(&dst).await);
    assert_eq!(
        table_schema_dump(&w, "heart", "public.patients"),
        table_schema_dump(&w, "target", "public.patients")
    );

    // A table that needs nothing else restores alone into an empty database, and is
    // all that database holds.
    let report = backup_json(&w, &repo, "heart", &["--table", "ORGANIZATIONS"]);
    assert_eq!(tables_of(&report), ["public.organizations"]);
    let solo = w.empty_db("solo").await;
    ok(w.restore(&repo, "latest", "solo"));
    let (ra, rb) = (all_rows(&src).await, all_rows(&solo).await);
    let organizations: Vec<_> = ra
        .into_iter()
        .filter(|(t, _)| t == "public.organizations")
        .collect();
    assert_eq!(organizations, rb);
    assert_eq!(
        table_schema_dump(&w, "heart", "public.organizations"),
        table_schema_dump(&w, "solo", "public.organizations")
    );
    let seqs = sequence_values(&solo).await;
    assert_eq!(seqs.len(), 1, "only the identity sequence: {seqs:?}");
    assert!(sequence_values(&src).await.contains(&seqs[0]));

    crate::format::check_schemas(Path::new(&repo)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn partial_schema_backup_holds_the_schema_and_everything_in_it() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    let repo = w.init_repo("repo");
    let report = backup_json(&w, &repo, "heart", &["-n", "clinical"]);
    assert_eq!(
        tables_of(&report),
        ["clinical.clinical_notes", "clinical.therapy_sessions"]
    );
    let id = report["backup_id"].as_str().unwrap().to_owned();
    let m = manifest(&repo, &id).await;
    let schemas: Vec<&str> = m.catalog.schemas.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(schemas, ["clinical"]);
    let enums: Vec<String> = m.catalog.enums.iter().map(|e| e.name.plain()).collect();
    assert_eq!(enums, ["clinical.note_kind"]);
    assert!(m
        .catalog
        .sequences
        .iter()
        .all(|s| s.name.schema == "clinical"));

    // The schema dropped from a copy of the source and restored from the partial
    // backup: the copy equals the source again (schema, rows, sequences).
    full_copy(&w, &repo, "target").await;
    run_sql(&w, "target", "DROP SCHEMA clinical CASCADE").await;
    ok(w.restore(&repo, &id, "target"));
    w.assert_same("heart", "target").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn partial_backup_without_one_table_restores_everything_else() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    let repo = w.init_repo("repo");
    let full = backup_json(&w, &repo, "heart", &[]);
    let report = backup_json(&w, &repo, "heart", &["-T", "vitals_samples"]);
    let mut expected = tables_of(&full);
    expected.retain(|t| t != "public.vitals_samples");
    assert_eq!(tables_of(&report), expected);
    let m = manifest(&repo, report["backup_id"].as_str().unwrap()).await;
    assert!(
        m.catalog
            .sequences
            .iter()
            .all(|s| s.name.name != "vitals_samples_id_seq"),
        "the excluded table's sequence goes with it"
    );

    // Into an empty database: the source without that table.
    w.empty_db("restored").await;
    ok(w.restore(&repo, "latest", "restored"));
    run_sql(&w, "heart", "DROP TABLE public.vitals_samples").await;
    w.assert_same("heart", "restored").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn partial_backup_patterns_that_match_nothing_are_refused_and_write_nothing() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    let repo = w.init_repo("repo");

    let typo = w.backup(&repo, "heart", &["-t", "patiens"]);
    assert_eq!(typo.status.code(), Some(2), "{}", stderr(&typo));
    let msg = stderr(&typo);
    assert!(
        msg.contains("no table matches -t patiens; did you mean public.patients?"),
        "{msg}"
    );
    assert!(msg.contains("hint: patterns follow pg_dump"), "{msg}");

    // A quoted name keeps its case, so "Patients" is not patients.
    let quoted = w.backup(&repo, "heart", &["-t", "\"Patients\""]);
    assert_eq!(quoted.status.code(), Some(2));
    assert!(
        stderr(&quoted).contains("did you mean public.patients?"),
        "{}",
        stderr(&quoted)
    );

    // Exclusions must match too: a typo there would back up what was meant to stay out.
    let exclusion = w.backup(&repo, "heart", &["-T", "vital_samples", "-N", "clinicl"]);
    assert_eq!(exclusion.status.code(), Some(2));
    let msg = stderr(&exclusion);
    assert!(
        msg.contains("no table matches -T vital_samples (did you mean public.vitals_samples?)"),
        "{msg}"
    );
    assert!(
        msg.contains("no schema matches -N clinicl (did you mean clinical?)"),
        "{msg}"
    );

    // Malformed patterns are usage errors before anything connects.
    for (flag, pattern, says) in [
        ("-t", "heart.public.patients", "too many dotted names"),
        ("-n", "heart.clinical", "a schema pattern is a schema name"),
        ("-t", "log_[0-9]", "regular-expression notation"),
    ] {
        let bad = w.backup(&repo, "heart", &[flag, pattern]);
        assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
        assert!(stderr(&bad).contains(says), "{}", stderr(&bad));
    }

    // Nothing was written: no backup, not even an incomplete one.
    let list = ok(pgbunker(
        &["--json", "list", "--repo", &repo],
        &[("PGBUNKER_KEY", KEY)],
    ));
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["backups"].as_array().map(Vec::len), Some(0), "{list}");
    let backups = Path::new(&repo).join("backups");
    assert!(
        !backups.exists() || crate::support::files(&backups).is_empty(),
        "objects under backups/: {:?}",
        crate::support::files(&backups)
    );
}
