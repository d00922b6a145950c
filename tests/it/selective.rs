//! Restoring part of a backup (issue #5): one table, a table with what it needs, rows
//! only into existing tables, beside the live tables under another schema, foreign-key
//! cycles and partitions, `--clean`, `--create`, sections; and a table whose load
//! fails midway, rolled back while the others are restored.
//!
//! Each restore is judged by the round-trip oracle on the restored tables: pg_dump
//! `--schema-only -t` of each table, and its rows as a multiset, against the source.

use std::collections::BTreeMap;

use crate::support::{
    all_rows, ok, pgbunker, run_sql, sequence_values, stderr, stdout, table_schema_dump, tables_of,
    World, KEY,
};

async fn count(w: &World, db: &str, sql: &str) -> i64 {
    w.pg.conn(db)
        .connect()
        .await
        .expect("connect")
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// Every table's rows, by qualified name.
async fn rows_by_table(w: &World, db: &str) -> BTreeMap<String, Vec<String>> {
    all_rows(&w.pg.conn(db)).await.into_iter().collect()
}

/// The oracle for restored tables: each one's schema (pg_dump -t) and rows as in the
/// source database.
async fn assert_tables_same(w: &World, source: &str, target: &str, tables: &[&str]) {
    let (a, b) = (
        rows_by_table(w, source).await,
        rows_by_table(w, target).await,
    );
    for t in tables {
        let schema = table_schema_dump(w, source, t);
        assert!(schema.contains("CREATE TABLE"), "{t} is not in {source}");
        assert_eq!(schema, table_schema_dump(w, target, t), "schema of {t}");
        // A partitioned table holds no rows of its own: its partitions are compared.
        if a.contains_key(*t) {
            assert_eq!(a.get(*t), b.get(*t), "rows of {t} in {target}");
        }
    }
}

/// `pgbunker --json restore` with `extra` flags: its exit code and JSON report.
fn restore_json(w: &World, repo: &str, db: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let target = w.pg.url(db);
    let mut args = vec![
        "--json", "restore", "--repo", repo, "latest", "--target", &target,
    ];
    args.extend_from_slice(extra);
    let out = pgbunker(&args, &[("PGBUNKER_KEY", KEY)]);
    let json = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| {
        panic!(
            "restore printed no JSON ({e}):\n{}\n{}",
            stdout(&out),
            stderr(&out)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

/// [`restore_json`], asserted successful: the report.
fn restored(w: &World, repo: &str, db: &str, extra: &[&str]) -> serde_json::Value {
    let (code, report) = restore_json(w, repo, db, extra);
    assert_eq!(code, 0, "{report}");
    report
}

/// The fixture backed up in `heart`, and a full copy of it restored into `target`.
async fn heart_with_copy() -> (World, String) {
    let w = World::start();
    let repo = w.backed_up().await;
    full_copy(&w, &repo, "target").await;
    (w, repo)
}

/// A full copy of `heart` in `name`.
async fn full_copy(w: &World, repo: &str, name: &str) {
    w.empty_db(name).await;
    ok(w.restore(repo, "latest", name));
}

#[tokio::test(flavor = "multi_thread")]
async fn one_table_restores_beside_the_rest_and_refuses_what_it_lacks_clearly() {
    let w = World::start();
    let repo = w.backed_up().await;

    // Only patients, into a copy of the database that lost it.
    full_copy(&w, &repo, "target").await;
    run_sql(&w, "target", "DROP TABLE public.patients CASCADE").await;
    let report = restored(&w, &repo, "target", &["-t", "patients"]);
    assert_eq!(tables_of(&report), ["public.patients"]);
    assert_eq!(report["partial"], true);
    assert_tables_same(&w, "heart", "target", &["public.patients"]).await;
    assert_eq!(
        sequence_values(&w.pg.conn("heart")).await,
        sequence_values(&w.pg.conn("target")).await
    );

    // Into an empty database, patients lacks the sequence its default draws from: the
    // restore fails before loading anything, names it and says what to do.
    w.empty_db("empty").await;
    let out = w.restore_with(&repo, "latest", "empty", &["-t", "patients"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("chart_number_seq"), "{err}");
    assert!(err.contains("--with-dependencies"), "{err}");
    assert_eq!(
        count(
            &w,
            "empty",
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        )
        .await,
        0,
        "pre-data is all or nothing"
    );

    // A table that is not in the backup: near matches, exit 2, nothing written.
    let out = w.restore_with(&repo, "latest", "empty", &["-t", "patient"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did you mean public.patients"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_dependencies_restores_a_table_and_all_it_needs_into_an_empty_database() {
    let w = World::start();
    let repo = w.backed_up().await;
    // The plan first, without a target: parents before children, with sizes.
    let plan = ok(pgbunker(
        &[
            "restore",
            "--repo",
            &repo,
            "latest",
            "--dry-run",
            "-t",
            "vitals_samples",
            "--with-dependencies",
        ],
        &[("PGBUNKER_KEY", KEY)],
    ));
    let pos = |t: &str| {
        plan.find(&format!("  {t} "))
            .unwrap_or_else(|| panic!("{t} not in the plan:\n{plan}"))
    };
    assert!(
        pos("public.organizations") < pos("public.patients"),
        "{plan}"
    );
    assert!(pos("public.users") < pos("public.patients"), "{plan}");
    assert!(
        pos("public.patients") < pos("public.vitals_samples"),
        "{plan}"
    );
    assert!(
        plan.contains("CREATE SEQUENCE \"public\".\"chart_number_seq\""),
        "{plan}"
    );
    assert!(!plan.contains("medications"), "{plan}");

    w.empty_db("empty").await;
    let report = restored(
        &w,
        &repo,
        "empty",
        &["-t", "vitals_samples", "--with-dependencies"],
    );
    let tables = [
        "public.organizations",
        "public.patients",
        "public.users",
        "public.vitals_samples",
    ];
    assert_eq!(tables_of(&report), tables);
    assert_tables_same(&w, "heart", "empty", &tables).await;
    assert_eq!(rows_by_table(&w, "empty").await.len(), tables.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn data_only_reloads_one_table_where_its_parents_live_and_refuses_to_orphan() {
    let (w, repo) = heart_with_copy().await;
    // Last night's vitals are wanted back: today's changes are thrown away.
    run_sql(
        &w,
        "target",
        "DELETE FROM public.vitals_samples WHERE id % 3 = 0; \
         UPDATE public.vitals_samples SET value = value + 1 WHERE id % 5 = 0; \
         UPDATE public.patients SET phone = 'changed' WHERE id = 1",
    )
    .await;
    let report = restored(
        &w,
        &repo,
        "target",
        &["--data-only", "-t", "vitals_samples"],
    );
    assert_eq!(tables_of(&report), ["public.vitals_samples"]);
    assert_tables_same(&w, "heart", "target", &["public.vitals_samples"]).await;
    assert_eq!(
        count(
            &w,
            "target",
            "SELECT count(*) FROM public.patients WHERE phone = 'changed'"
        )
        .await,
        1,
        "tables outside the restore are untouched"
    );

    // Reloading patients alone would empty it under the tables that reference it.
    let out = w.restore_with(
        &repo,
        "latest",
        "target",
        &["--data-only", "-t", "patients"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("public.vitals_samples") || err.contains("vitals_samples"),
        "{err}"
    );
    assert!(err.contains("--cascade"), "{err}");
    assert_eq!(
        count(
            &w,
            "target",
            "SELECT count(*) FROM public.patients WHERE phone = 'changed'"
        )
        .await,
        1,
        "refused before writing"
    );
    // Asked for, --cascade empties the referencing tables and says so.
    let report = restored(
        &w,
        &repo,
        "target",
        &["--data-only", "--cascade", "-t", "patients"],
    );
    assert!(
        report["warnings"].to_string().contains("--cascade emptied"),
        "{report}"
    );
    assert_eq!(
        count(&w, "target", "SELECT count(*) FROM public.vitals_samples").await,
        0
    );
    assert_tables_same(&w, "heart", "target", &["public.patients"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn into_schema_restores_a_copy_beside_the_live_table() {
    let (w, repo) = heart_with_copy().await;
    run_sql(&w, "target", "DELETE FROM public.patients WHERE id % 2 = 0 AND NOT EXISTS (SELECT 1 FROM public.vitals_samples v WHERE v.patient_id = patients.id) AND NOT EXISTS (SELECT 1 FROM clinical.clinical_notes n WHERE n.patient_id = patients.id)").await;
    let live_before = count(&w, "target", "SELECT count(*) FROM public.patients").await;
    let report = restored(
        &w,
        &repo,
        "target",
        &[
            "-t",
            "patients",
            "-t",
            "vitals_samples",
            "--into-schema",
            "restored",
        ],
    );
    assert_eq!(
        tables_of(&report),
        ["restored.patients", "restored.vitals_samples"]
    );
    let source = rows_by_table(&w, "heart").await;
    let restored = rows_by_table(&w, "target").await;
    for t in ["patients", "vitals_samples"] {
        assert_eq!(
            source.get(&format!("public.{t}")),
            restored.get(&format!("restored.{t}")),
            "rows of restored.{t}"
        );
    }
    assert_eq!(
        count(&w, "target", "SELECT count(*) FROM public.patients").await,
        live_before,
        "the live table is untouched"
    );
    // The copies have the source's indexes and the foreign key between them, not the
    // ones to tables left behind; their sequences are their own.
    let indexes = |schema: &str| {
        format!(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = '{schema}' \
             AND tablename IN ('patients', 'vitals_samples')"
        )
    };
    assert_eq!(
        count(&w, "target", &indexes("restored")).await,
        count(&w, "heart", &indexes("public")).await
    );
    assert_eq!(
        count(
            &w,
            "target",
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' \
             AND conrelid = 'restored.vitals_samples'::regclass \
             AND confrelid = 'restored.patients'::regclass"
        )
        .await,
        1
    );
    assert!(
        report["warnings"].to_string().contains("organizations"),
        "{report}"
    );
    assert_eq!(
        count(
            &w,
            "target",
            "SELECT count(*) FROM pg_attrdef d JOIN pg_class c ON c.oid = d.adrelid \
             WHERE c.relnamespace = 'restored'::regnamespace \
             AND pg_get_expr(d.adbin, d.adrelid) LIKE '%public.patients_id_seq%'"
        )
        .await,
        0,
        "the copy draws ids from its own sequence"
    );
}

/// A database with a self-referencing table, a cyclic pair of foreign keys and a
/// partitioned table (range partitions, a default one, a foreign key to a parent
/// table).
const SHAPES: &str = "
CREATE TABLE staff (id int PRIMARY KEY, manager int REFERENCES staff, name text);
INSERT INTO staff SELECT g, CASE WHEN g > 1 THEN (g - 1) / 2 + 1 END, 'n' || g FROM generate_series(1, 500) g;
UPDATE staff SET manager = 500 WHERE id = 1;
CREATE TABLE wards (id int PRIMARY KEY, head_bed int);
CREATE TABLE beds (id int PRIMARY KEY, ward int NOT NULL REFERENCES wards DEFERRABLE);
ALTER TABLE wards ADD FOREIGN KEY (head_bed) REFERENCES beds DEFERRABLE;
BEGIN;
SET CONSTRAINTS ALL DEFERRED;
INSERT INTO wards SELECT g, g * 10 FROM generate_series(1, 50) g;
INSERT INTO beds SELECT g, (g - 10) / 10 + 1 FROM generate_series(10, 509) g;
COMMIT;
CREATE TABLE devices (id int PRIMARY KEY, label text);
INSERT INTO devices SELECT g, 'd' || g FROM generate_series(1, 20) g;
CREATE TABLE readings (device int NOT NULL REFERENCES devices, at date NOT NULL, v numeric)
  PARTITION BY RANGE (at);
CREATE TABLE readings_2025 PARTITION OF readings FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE readings_2026 PARTITION OF readings FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE readings_other PARTITION OF readings DEFAULT;
CREATE INDEX readings_at ON readings (device, at);
INSERT INTO readings SELECT g % 20 + 1, DATE '2024-06-01' + g, g / 7.0 FROM generate_series(1, 1200) g;
";

#[tokio::test(flavor = "multi_thread")]
async fn cycles_self_references_and_partitions_restore_alone_and_data_only() {
    let w = World::start();
    let src = w.empty_db("shapes").await;
    src.connect()
        .await
        .unwrap()
        .batch_execute(SHAPES)
        .await
        .expect("build the shapes database");
    let repo = w.init_repo("repo");
    ok(w.backup(&repo, "shapes", &[]));

    // The self reference and the cycle, alone into an empty database.
    w.empty_db("cycle").await;
    restored(
        &w,
        &repo,
        "cycle",
        &["-t", "staff", "-t", "wards", "-t", "beds"],
    );
    assert_tables_same(
        &w,
        "shapes",
        "cycle",
        &["public.staff", "public.wards", "public.beds"],
    )
    .await;
    // The cyclic pair reloaded in place: one group, one transaction.
    run_sql(
        &w,
        "cycle",
        "UPDATE staff SET name = 'x'; DELETE FROM beds WHERE id > 400 AND id % 10 <> 0",
    )
    .await;
    restored(
        &w,
        &repo,
        "cycle",
        &["--data-only", "-t", "staff", "-t", "wards", "-t", "beds"],
    );
    assert_tables_same(
        &w,
        "shapes",
        "cycle",
        &["public.staff", "public.wards", "public.beds"],
    )
    .await;

    // The partitioned table brings its partitions; into an empty database its foreign
    // key to devices needs --with-dependencies.
    w.empty_db("parts").await;
    let report = restored(
        &w,
        &repo,
        "parts",
        &["-t", "readings", "--with-dependencies"],
    );
    let tables = [
        "public.devices",
        "public.readings",
        "public.readings_2025",
        "public.readings_2026",
        "public.readings_other",
    ];
    assert_eq!(
        tables_of(&report),
        tables[..1]
            .iter()
            .chain(&tables[2..])
            .copied()
            .collect::<Vec<_>>()
    );
    assert_tables_same(&w, "shapes", "parts", &tables).await;
    // One partition alone, into a copy of the source without it: attached again.
    w.empty_db("copy").await;
    ok(w.restore(&repo, "latest", "copy"));
    run_sql(&w, "copy", "DROP TABLE readings_2025").await;
    restored(&w, &repo, "copy", &["-t", "readings_2025"]);
    w.assert_same("shapes", "copy").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_that_fails_midway_is_rolled_back_and_reported_while_the_rest_restore() {
    let (w, repo) = heart_with_copy().await;
    run_sql(
        &w,
        "target",
        "UPDATE public.vitals_samples SET note = 'kept' WHERE id <= 10; \
         UPDATE public.medications SET name = name || ' (today)';",
    )
    .await;
    // A rule of the target the backup's rows break, from a row in the middle of the
    // table on.
    let middle = count(
        &w,
        "heart",
        "SELECT (max(id) / 2)::bigint FROM public.vitals_samples",
    )
    .await;
    run_sql(
        &w,
        "target",
        &format!(
            "ALTER TABLE public.vitals_samples ADD CONSTRAINT not_after_middle \
             CHECK (id < {middle} OR note = 'kept') NOT VALID"
        ),
    )
    .await;
    let vitals_before = count(&w, "target", "SELECT count(*) FROM public.vitals_samples").await;
    let (code, report) = restore_json(
        &w,
        &repo,
        "target",
        &[
            "--data-only",
            "-t",
            "vitals_samples",
            "-t",
            "medications",
            "-t",
            "medication_logs",
        ],
    );
    assert_eq!(code, 4, "{report}");
    let status: BTreeMap<String, String> = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_owned(),
                t["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(status["public.vitals_samples"], "failed", "{report}");
    assert_eq!(status["public.medications"], "restored", "{report}");
    assert_eq!(status["public.medication_logs"], "restored", "{report}");
    let failed = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "public.vitals_samples")
        .unwrap();
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("not_after_middle"),
        "{report}"
    );
    // Rolled back: the table still holds what it held, today's edits included.
    assert_eq!(
        count(&w, "target", "SELECT count(*) FROM public.vitals_samples").await,
        vitals_before
    );
    assert_eq!(
        count(
            &w,
            "target",
            "SELECT count(*) FROM public.vitals_samples WHERE note = 'kept'"
        )
        .await,
        10
    );
    assert_tables_same(
        &w,
        "heart",
        "target",
        &["public.medications", "public.medication_logs"],
    )
    .await;

    // The text report says the same, and the cause is fixed: the re-run completes.
    let out = w.restore_with(
        &repo,
        "latest",
        "target",
        &["--data-only", "-t", "vitals_samples"],
    );
    assert_eq!(out.status.code(), Some(4));
    assert!(stdout(&out).contains("FAILED"), "{}", stdout(&out));
    assert!(stderr(&out).contains("rolled back"), "{}", stderr(&out));
    run_sql(
        &w,
        "target",
        "ALTER TABLE public.vitals_samples DROP CONSTRAINT not_after_middle",
    )
    .await;
    ok(w.restore_with(
        &repo,
        "latest",
        "target",
        &["--data-only", "-t", "vitals_samples"],
    ));
    assert_tables_same(&w, "heart", "target", &["public.vitals_samples"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn clean_create_and_sections_reach_the_same_database() {
    let w = World::start();
    let repo = w.backed_up().await;

    // --create makes the database; again with --clean, it is dropped and made anew.
    ok(w.restore_with(&repo, "latest", "created", &["--create"]));
    w.assert_same("heart", "created").await;
    let out = w.restore_with(&repo, "latest", "created", &["--create"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    run_sql(&w, "created", "DELETE FROM public.audit_log").await;
    ok(w.restore_with(&repo, "latest", "created", &["--create", "--clean"]));
    w.assert_same("heart", "created").await;

    // --clean over the whole database drops and recreates every object.
    run_sql(
        &w,
        "created",
        "DELETE FROM public.vitals_samples; ALTER TABLE public.patients ADD COLUMN x int",
    )
    .await;
    ok(w.restore_with(&repo, "latest", "created", &["--clean"]));
    w.assert_same("heart", "created").await;
    // One table with --clean: never CASCADE, so tables that reference it stop it,
    // and the target is left as it was.
    let out = w.restore_with(&repo, "latest", "created", &["--clean", "-t", "patients"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("depend"), "{}", stderr(&out));
    w.assert_same("heart", "created").await;
    // --if-exists makes --clean work where nothing is there yet.
    w.empty_db("fresh").await;
    ok(w.restore_with(&repo, "latest", "fresh", &["--clean", "--if-exists"]));
    w.assert_same("heart", "fresh").await;

    // Section by section, into one database: the same result.
    w.empty_db("sections").await;
    for section in ["pre-data", "data", "post-data"] {
        ok(w.restore_with(&repo, "latest", "sections", &["--section", section]));
    }
    w.assert_same("heart", "sections").await;
    // A key that cannot be built (a duplicate row slipped in between the sections)
    // fails by itself and is named; the table's other indexes are still built. So does
    // a foreign key an orphan row breaks: the others added with it are in place.
    w.empty_db("duplicate").await;
    for section in ["pre-data", "data"] {
        ok(w.restore_with(&repo, "latest", "duplicate", &["--section", section]));
    }
    run_sql(
        &w,
        "duplicate",
        "INSERT INTO public.medications OVERRIDING SYSTEM VALUE \
         SELECT * FROM public.medications LIMIT 1; \
         UPDATE clinical.clinical_notes SET patient_id = 999999 \
         WHERE id = (SELECT min(id) FROM clinical.clinical_notes)",
    )
    .await;
    let (code, report) = restore_json(&w, &repo, "duplicate", &["--section", "post-data"]);
    assert_eq!(code, 4, "{report}");
    let failed = report["failed"].to_string();
    assert!(failed.contains("medications_pkey"), "{failed}");
    assert!(
        failed.contains("clinical_notes_patient_id_fkey"),
        "{failed}"
    );
    for kept in [
        "medications_patient_idx",
        "medications_patient_id_fkey",
        "clinical_notes_author_id_fkey",
    ] {
        assert!(!failed.contains(kept), "{failed}");
    }
    assert_eq!(
        count(
            &w,
            "duplicate",
            "SELECT count(*) FROM pg_constraint WHERE conname IN \
             ('medications_patient_id_fkey', 'clinical_notes_author_id_fkey')"
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &w,
            "duplicate",
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'medications' \
             AND indexname IN ('medications_patient_idx', 'medications_active_idx')"
        )
        .await,
        2
    );
    // --schema-only: every object, no rows.
    w.empty_db("schema").await;
    ok(w.restore_with(&repo, "latest", "schema", &["--schema-only"]));
    assert_eq!(w.schema_dump("heart"), w.schema_dump("schema"));
    assert_eq!(
        count(&w, "schema", "SELECT count(*) FROM public.vitals_samples").await,
        0
    );

    // --no-owner --no-privileges: owned by the restoring user, no grants.
    w.empty_db("plain").await;
    ok(w.restore_with(&repo, "latest", "plain", &["--no-owner", "--no-privileges"]));
    assert_eq!(
        count(
            &w,
            "plain",
            "SELECT count(*) FROM pg_class WHERE relnamespace IN ('public'::regnamespace, 'clinical'::regnamespace) \
             AND (relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user) OR relacl IS NOT NULL)"
        )
        .await,
        0
    );
    let (a, b) = (
        rows_by_table(&w, "heart").await,
        rows_by_table(&w, "plain").await,
    );
    assert_eq!(a, b);
}

/// What `pg_database` and `pg_db_role_setting` say of database `db`: locale provider
/// and locales, comment, database-wide settings, owner and privileges.
async fn database_props(w: &World, db: &str) -> Vec<Option<String>> {
    let c = w.pg.conn("postgres").connect().await.unwrap();
    let version: i32 = c
        .query_one("SELECT current_setting('server_version_num')::int4", &[])
        .await
        .unwrap()
        .get(0);
    let (provider, locale) = match version {
        170000.. => ("datlocprovider::text", "datlocale"),
        150000.. => ("datlocprovider::text", "daticulocale"),
        _ => ("'c'", "NULL::text"),
    };
    let row = c
        .query_one(
            &format!(
                "SELECT {provider}, {locale}, datcollate::text, datctype::text,
                        shobj_description(d.oid, 'pg_database'),
                        (SELECT array_to_string(setconfig, ' | ') FROM pg_db_role_setting
                          WHERE setdatabase = d.oid AND setrole = 0),
                        pg_get_userbyid(datdba)::text,
                        datacl::text
                   FROM pg_database d WHERE datname = $1"
            ),
            &[&db],
        )
        .await
        .unwrap();
    (0..8).map(|i| row.get(i)).collect()
}

/// `--create` gives the new database the source's locale (ICU where the server has
/// it), comment, owner, privileges and database-wide settings, the settings only
/// after the data is in (`default_transaction_read_only = on` would otherwise stop
/// the restore), and text sorts as it did in the source.
#[tokio::test(flavor = "multi_thread")]
async fn create_carries_the_locale_comment_and_settings_of_the_source() {
    let w = World::start();
    let admin = w.pg.conn("postgres").connect().await.unwrap();
    let version: i32 = admin
        .query_one("SELECT current_setting('server_version_num')::int4", &[])
        .await
        .unwrap()
        .get(0);
    let locale = if version >= 150000 {
        "LOCALE_PROVIDER icu ICU_LOCALE 'de-DE' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"
    } else {
        "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"
    };
    admin
        .batch_execute(&format!(
            "CREATE DATABASE ward TEMPLATE template0 ENCODING 'UTF8' {locale}"
        ))
        .await
        .unwrap();
    run_sql(
        &w,
        "ward",
        "CREATE SCHEMA app;
         CREATE TABLE app.names (id int PRIMARY KEY, name text);
         INSERT INTO app.names VALUES (1, 'Zoë'), (2, 'apple'), (3, 'Äpfel'), (4, 'Birne'),
                                      (5, 'zebra'), (6, 'éclair'), (7, 'Eis');
         COMMENT ON DATABASE ward IS 'the ward''s data';
         CREATE ROLE ward_admin;
         CREATE ROLE nurse;
         ALTER DATABASE ward OWNER TO ward_admin;
         REVOKE CONNECT, TEMPORARY ON DATABASE ward FROM PUBLIC;
         GRANT CONNECT ON DATABASE ward TO nurse;
         ALTER DATABASE ward SET search_path = app, public;
         ALTER DATABASE ward SET timezone = 'Pacific/Chatham';
         ALTER DATABASE ward SET default_transaction_read_only = on;",
    )
    .await;
    let repo = w.init_repo("repo");
    ok(w.backup(&repo, "ward", &[]));
    ok(w.restore_with(&repo, "latest", "created", &["--create"]));

    let source = database_props(&w, "ward").await;
    assert_eq!(database_props(&w, "created").await, source);
    assert!(
        source[5]
            .as_deref()
            .is_some_and(|s| s.contains("default_transaction_read_only=on")),
        "{source:?}"
    );
    let sorted = |db: &'static str| {
        let w = &w;
        async move {
            let c = w.pg.conn(db).connect().await.unwrap();
            // search_path comes from the database's setting: no schema named here.
            c.query("SELECT name FROM names ORDER BY name", &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
        }
    };
    let order = sorted("ward").await;
    assert_eq!(sorted("created").await, order);
    if version >= 150000 {
        // German ICU order, not byte order: the test means something.
        assert_eq!(
            order.first().map(String::as_str),
            Some("Äpfel"),
            "{order:?}"
        );
    }
    assert_eq!(
        all_rows(&w.pg.conn("created")).await,
        all_rows(&w.pg.conn("ward")).await
    );
}

/// `restore --sql FILE` writes the restore's statements whole, as pg_restore -f does:
/// run with a plain session, the script alone rebuilds the source's schema exactly;
/// `--sql -` prints it and nothing else.
#[tokio::test(flavor = "multi_thread")]
async fn the_restore_script_rebuilds_the_schema_exactly() {
    let w = World::start();
    let repo = w.backed_up().await;
    let file = w.dir.path().join("restore.sql");
    let f = file.display().to_string();
    let env = [("PGBUNKER_KEY", KEY)];
    let said = ok(pgbunker(
        &["restore", "--repo", &repo, "--latest", "--sql", &f],
        &env,
    ));
    assert!(said.starts_with("Wrote the "), "{said}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "owner only: {mode:o}");
    let sql = std::fs::read_to_string(&file).unwrap();
    assert!(sql.contains("CREATE TABLE"), "{sql}");
    assert!(sql.contains("FOREIGN KEY"), "{sql}");
    assert!(sql.contains("-- public.vitals_samples: "), "{sql}");
    w.db_from_sql("scripted", &file).await;
    assert_eq!(w.schema_dump("heart"), w.schema_dump("scripted"));

    let printed = ok(pgbunker(
        &["restore", "--repo", &repo, "latest", "--sql", "-"],
        &env,
    ));
    assert_eq!(printed, sql);
}

/// Views on patients, one on another, a function with a SQL-standard body and another
/// table's policy that read it, in the source before its backup: `DROP TABLE patients
/// CASCADE` takes them all along.
const VIEWS: &str =
    "CREATE VIEW public.patient_summary AS SELECT id, mrn, last_name FROM public.patients;
     CREATE VIEW public.patient_ids AS SELECT id FROM public.patient_summary;
     COMMENT ON VIEW public.patient_ids IS 'ids only';
     CREATE FUNCTION public.patient_count() RETURNS bigint LANGUAGE sql
         BEGIN ATOMIC SELECT count(*) FROM public.patients; END;
     ALTER TABLE public.vitals_samples ENABLE ROW LEVEL SECURITY;
     CREATE POLICY vitals_of_known_patients ON public.vitals_samples AS RESTRICTIVE
         USING (patient_id IN (SELECT id FROM public.patients));
     CREATE TABLE public.tickets (id bigint DEFAULT nextval('public.patients_id_seq'), note text);";

#[tokio::test(flavor = "multi_thread")]
async fn with_dependents_brings_back_what_drop_cascade_took_along() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    run_sql(&w, "heart", VIEWS).await;
    let repo = w.init_repo("repo");
    ok(w.backup(&repo, "heart", &[]));
    let fks_to_patients = "SELECT count(*) FROM pg_constraint WHERE contype = 'f' \
                           AND confrelid = 'public.patients'::regclass";
    let before = count(&w, "heart", fks_to_patients).await;
    assert!(
        before >= 5,
        "the fixture's tables reference patients: {before}"
    );

    // Without the flag: patients comes back alone, and the report names every foreign
    // key and view that did not.
    full_copy(&w, &repo, "target").await;
    run_sql(&w, "target", "DROP TABLE public.patients CASCADE").await;
    let report = restored(&w, &repo, "target", &["-t", "patients"]);
    let warnings = report["warnings"].to_string();
    for name in [
        "vitals_samples_patient_id_fkey",
        "public.patient_summary",
        "public.patient_ids",
        "patient_count",
        "vitals_of_known_patients",
        "public.tickets.id",
    ] {
        assert!(warnings.contains(name), "{name} is not named: {warnings}");
    }
    assert!(warnings.contains("--with-dependents"), "{warnings}");
    assert_eq!(count(&w, "target", fks_to_patients).await, 0);

    // The script of such a restore holds the foreign keys it would add back.
    let script = ok(pgbunker(
        &[
            "restore",
            "--repo",
            &repo,
            "latest",
            "-t",
            "patients",
            "--with-dependents",
            "--sql",
            "-",
        ],
        &[("PGBUNKER_KEY", KEY)],
    ));
    assert!(
        script.contains("ADD CONSTRAINT \"vitals_samples_patient_id_fkey\""),
        "{script}"
    );

    // With it: the database is the source again, schema and rows.
    run_sql(&w, "target", "DROP TABLE public.patients CASCADE").await;
    let report = restored(
        &w,
        &repo,
        "target",
        &["-t", "patients", "--with-dependents"],
    );
    assert!(
        !report["warnings"].to_string().contains("not re-added"),
        "{report}"
    );
    assert_eq!(count(&w, "target", fks_to_patients).await, before);
    w.assert_same("heart", "target").await;

    // A view the target still has is left as it is; a referencing row without its
    // patient makes that one foreign key fail, named, and the restore incomplete,
    // with patients and the other keys in place.
    run_sql(
        &w,
        "target",
        "DROP VIEW public.patient_ids; DROP TABLE public.patients CASCADE;
         CREATE VIEW public.patient_summary AS SELECT 1 AS id;
         INSERT INTO public.vitals_samples (patient_id, kind, recorded_at, value, unit)
         VALUES (999999, 'heart_rate', now(), 60, 'bpm');",
    )
    .await;
    let (code, report) = restore_json(
        &w,
        &repo,
        "target",
        &["-t", "patients", "--with-dependents"],
    );
    assert_eq!(code, 4, "{report}");
    let failed = report["failed"].to_string();
    assert!(
        failed.contains("vitals_samples_patient_id_fkey"),
        "{failed}"
    );
    assert!(
        report["warnings"]
            .to_string()
            .contains("public.patient_summary is in the target already"),
        "{report}"
    );
    assert_eq!(count(&w, "target", fks_to_patients).await, before - 1);
    assert_eq!(
        count(&w, "target", "SELECT count(*) FROM public.patients").await,
        count(&w, "heart", "SELECT count(*) FROM public.patients").await
    );
    // What is built on the view the target kept is left out, and named.
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains(
            "view public.patient_ids was not recreated: it is built on public.patient_summary"
        ),
        "{warnings}"
    );
}
