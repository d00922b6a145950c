//! `pgbunker diff` between two backups of the heart-recovery fixture: a known set of
//! inserts, updates, deletes and key changes is reported exactly, a table without a key
//! is compared as a multiset, shared chunks are skipped, and an append-only table that
//! lost or changed a row fails the run.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::{json, ok, pgbunker, run_sql, World, KEY};

/// The changes between the two backups.
const CHANGES: &str = "
    UPDATE public.patients SET last_name = last_name || '-x', phone = NULL WHERE id = 3;
    UPDATE public.patients SET emergency_contact = jsonb_build_object('note',
        (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i)) WHERE id = 6;
    UPDATE public.patients SET phone = '+1-555-0100', allergies = ARRAY['penicillin', 'latex'],
        address = '{\"city\": \"Lyon\", \"zip\": \"69001\"}' WHERE id = 4;
    UPDATE public.patients SET phone = NULL WHERE id = 5 AND phone IS NOT NULL;
    UPDATE public.patients SET phone = '+1-555-0105' WHERE id = 5 AND phone IS NULL;
    UPDATE public.audit_log SET action = 'read' WHERE id = 7 AND action <> 'read';
    UPDATE public.audit_log SET action = 'login' WHERE id = 7 AND action = 'read';
    DELETE FROM public.audit_log WHERE id = 8;
    INSERT INTO public.audit_log (occurred_at, action, table_name) VALUES (now(), 'read', 'x');
    INSERT INTO public.loose (n, t) VALUES (1, 'one'), (3, 'three');
    DELETE FROM public.loose WHERE ctid = (SELECT min(ctid) FROM public.loose WHERE n = 2);
    UPDATE public.keyed SET id = 20 WHERE id = 2;
";

fn diff(repo: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["diff", "--repo", repo];
    all.extend_from_slice(args);
    pgbunker(&all, &[("PGBUNKER_KEY", KEY)])
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_between_two_backups_are_reported_row_by_row() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    // A table without any key: compared as a multiset of whole rows.
    run_sql(
        &w,
        "heart",
        "CREATE TABLE public.loose (n int, t text);
         INSERT INTO public.loose VALUES (1, 'one'), (2, 'two'), (2, 'two');
         CREATE TABLE public.keyed (id int PRIMARY KEY, v text);
         INSERT INTO public.keyed VALUES (1, 'a'), (2, 'b'), (3, 'c');",
    )
    .await;
    let repo = w.init_repo("repo");
    let first = json(&ok(w.backup(
        &repo,
        "heart",
        &["--json", "--chunk-size-kb", "64"],
    )));
    run_sql(&w, "heart", CHANGES).await;
    let second = json(&ok(w.backup(
        &repo,
        "heart",
        &["--json", "--chunk-size-kb", "64"],
    )));
    let (a, b) = (
        first["backup_id"].as_str().unwrap(),
        second["backup_id"].as_str().unwrap(),
    );

    let rows_file = w.dir.path().join("rows.jsonl");
    let rows_arg = rows_file.display().to_string();
    let out = diff(&repo, &[a, b, "--json", "--rows", &rows_arg]);
    let report = json(&ok(out));
    let tables: BTreeMap<String, &Value> = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                format!(
                    "{}.{}",
                    t["schema"].as_str().unwrap(),
                    t["name"].as_str().unwrap()
                ),
                t,
            )
        })
        .collect();
    let counts = |t: &str| {
        let t = tables[t];
        (
            t["inserted"].as_u64().unwrap(),
            t["deleted"].as_u64().unwrap(),
            t["updated"].as_u64().unwrap(),
        )
    };
    assert_eq!(
        counts("public.patients"),
        (0, 0, 4),
        "{}",
        tables["public.patients"]
    );
    assert_eq!(counts("public.audit_log"), (1, 1, 1));
    assert_eq!(
        counts("public.loose"),
        (2, 1, 0),
        "a multiset: one (2, 'two') of two went"
    );
    assert_eq!(tables["public.loose"]["matched_by"]["by"], "whole_rows");
    assert_eq!(
        counts("public.keyed"),
        (1, 1, 0),
        "a key change is a delete and an insert"
    );
    assert_eq!(counts("public.vitals_samples"), (0, 0, 0));
    let vitals = tables["public.vitals_samples"];
    assert_eq!(
        vitals["chunks_read"], 0,
        "unchanged chunks are not read: {vitals}"
    );
    assert!(vitals["chunks_skipped"].as_u64().unwrap() > 2, "{vitals}");
    let changed: BTreeMap<String, u64> = tables["public.patients"]["changed_columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c[0].as_str().unwrap().to_owned(), c[1].as_u64().unwrap()))
        .collect();
    assert_eq!(changed["phone"], 3);
    assert_eq!(changed["last_name"], 1);
    assert_eq!(changed["allergies"], 1);
    assert_eq!(changed["address"], 1);

    // The rows file: owner-only, one line per change, values typed.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&rows_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let lines: Vec<Value> = std::fs::read_to_string(&rows_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, report["rows_written"].as_u64().unwrap());
    let p4 = lines
        .iter()
        .find(|l| l["table"] == "public.patients" && l["key"]["id"] == 4)
        .expect("patient 4 updated");
    assert_eq!(p4["change"], "update");
    assert_eq!(
        p4["new"]["allergies"],
        serde_json::json!(["penicillin", "latex"])
    );
    assert_eq!(
        p4["new"]["address"]["city"], "Lyon",
        "jsonb as a document: {p4}"
    );
    assert_eq!(p4["new"]["phone"], "+1-555-0100");
    assert!(
        p4["new"].get("last_name").is_none(),
        "only changed columns: {p4}"
    );
    let p3 = lines
        .iter()
        .find(|l| l["table"] == "public.patients" && l["key"]["id"] == 3)
        .unwrap();
    assert_eq!(p3["new"]["phone"], Value::Null, "value to NULL: {p3}");
    assert!(p3["new"]["last_name"].as_str().unwrap().ends_with("-x"));
    // A TOASTed value (12.8 kB of hex, stored out of line) comes whole.
    let p6 = lines
        .iter()
        .find(|l| l["table"] == "public.patients" && l["key"]["id"] == 6)
        .unwrap();
    let note = p6["new"]["emergency_contact"]["note"].as_str().unwrap();
    assert_eq!(note.len(), 12800, "{p6}");
    let deleted = lines
        .iter()
        .find(|l| l["table"] == "public.audit_log" && l["change"] == "delete")
        .unwrap();
    assert_eq!(deleted["key"]["id"], 8);
    assert!(deleted["old"]["occurred_at"].is_string());
    // One file per table: Parquet (read back by pyarrow) and CSV, an update as its
    // old and new rows under one change number.
    let pq = w.dir.path().join("pq");
    ok(diff(
        &repo,
        &[
            a,
            b,
            "-t",
            "patients",
            "--rows",
            &pq.display().to_string(),
            "--format",
            "parquet",
        ],
    ));
    let file = pq.join("public.patients.parquet");
    let read = std::process::Command::new(crate::export::python())
        .args([
            "-c",
            "import sys, json, pyarrow.parquet as pq\n\
             print(json.dumps(pq.read_table(sys.argv[1]).to_pylist(), default=str))",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let parquet: Vec<Value> = serde_json::from_slice(&read.stdout).unwrap();
    assert_eq!(parquet.len(), 8, "four updates, old and new: {parquet:?}");
    let p4: Vec<&Value> = parquet.iter().filter(|r| r["id"] == 4).collect();
    let new4 = p4.iter().find(|r| r["pgbunker_side"] == "new").unwrap();
    let old4 = p4.iter().find(|r| r["pgbunker_side"] == "old").unwrap();
    assert_eq!(new4["pgbunker_change"], "update");
    assert_eq!(new4["pgbunker_change_no"], old4["pgbunker_change_no"]);
    assert_eq!(
        new4["allergies"],
        serde_json::json!(["penicillin", "latex"])
    );
    assert_eq!(new4["phone"], "+1-555-0100");
    let csv_dir = w.dir.path().join("csv");
    ok(diff(
        &repo,
        &[
            a,
            b,
            "-t",
            "patients",
            "--rows",
            &csv_dir.display().to_string(),
            "--format",
            "csv",
        ],
    ));
    let mut csv = csv::Reader::from_path(csv_dir.join("public.patients.csv")).unwrap();
    let header = csv.headers().unwrap().clone();
    assert_eq!(&header[0], "pgbunker_change_no");
    let pos = |n: &str| header.iter().position(|h| h == n).unwrap();
    let (id, phone, side) = (pos("id"), pos("phone"), pos("pgbunker_side"));
    let records: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 8);
    assert!(records
        .iter()
        .any(|r| &r[id] == "4" && &r[side] == "new" && &r[phone] == "+1-555-0100"));
    assert!(records
        .iter()
        .any(|r| &r[id] == "3" && &r[side] == "new" && r[phone].is_empty()));

    // The run is audited with counts only: no table name, no value.
    let audit = ok(pgbunker(
        &["audit", "--repo", &repo, "--operation", "diff", "--json"],
        &[("PGBUNKER_KEY", KEY)],
    ));
    assert!(
        audit.contains("rows_updated") && !audit.contains("patients"),
        "{audit}"
    );

    // The database now is the second backup's state: --live finds the same changes,
    // row for row, and skips the chunks that did not change.
    let live_file = w.dir.path().join("live.jsonl");
    let url = w.pg.url("heart");
    let live = json(&ok(diff(
        &repo,
        &[
            a,
            "--live",
            &url,
            "--json",
            "--rows",
            &live_file.display().to_string(),
        ],
    )));
    assert_eq!(
        std::fs::read_to_string(&live_file).unwrap(),
        std::fs::read_to_string(&rows_file).unwrap()
    );
    assert_eq!(live["second"]["backup_id"], "live");
    for k in [
        "rows_inserted",
        "rows_deleted",
        "rows_updated",
        "chunks_skipped",
    ] {
        assert_eq!(live[k], report[k], "{k}");
    }
    // Rows are never printed: the text report has counts and column names only.
    let text = ok(diff(&repo, &[a, b]));
    assert!(text.contains("public.patients: +0 -0 ~4"), "{text}");
    assert!(
        !text.contains("+1-555-0100") && !text.contains("Lyon"),
        "{text}"
    );
    // The rows file is never overwritten.
    let again = diff(&repo, &[a, b, "--rows", &rows_arg]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // audit_log must only grow: an update and a delete fail the run, naming them.
    let out = diff(
        &repo,
        &[a, b, "--expect-append-only", "audit_log", "-t", "audit_log"],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1 row(s) updated, 1 deleted")
            && text.contains(r#"update {"id":7}"#)
            && text.contains(r#"delete {"id":8}"#),
        "{text}"
    );
    // `check` compares the two newest backups holding the table: CRITICAL now.
    let check = |repo: &str| {
        let out = pgbunker(
            &["check", "--repo", repo, "--expect-append-only", "audit_log"],
            &[("PGBUNKER_KEY", KEY)],
        );
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = check(&repo);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("append-only public.audit_log between") && text.contains("1 deleted"),
        "{text}"
    );

    // A change in every chunk, diffed in 1 MiB: the rows are spilled to disk by key
    // hash and matched part by part, with the same result as in memory.
    run_sql(
        &w,
        "heart",
        "UPDATE public.vitals_samples SET note = 'n' || id WHERE id % 40 = 0",
    )
    .await;
    let third = json(&ok(w.backup(
        &repo,
        "heart",
        &["--json", "--chunk-size-kb", "64"],
    )));
    let c = third["backup_id"].as_str().unwrap();
    let sorted_rows = |extra: &[&str], name: &str| {
        let file = w.dir.path().join(name).display().to_string();
        let mut args = vec![b, c, "-t", "vitals_samples", "--json", "--rows", &file];
        args.extend_from_slice(extra);
        let report = json(&ok(diff(&repo, &args)));
        let mut lines: Vec<String> = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        (report, lines)
    };
    let (in_memory, rows_in_memory) = sorted_rows(&[], "memory.jsonl");
    let (spilled, rows_spilled) = sorted_rows(&["--memory-mb", "1"], "spilled.jsonl");
    let vitals = |r: &Value| r["tables"][0].clone();
    assert!(vitals(&in_memory).get("spilled_parts").is_none());
    assert!(
        vitals(&spilled)["spilled_parts"].as_u64().unwrap() > 1,
        "{}",
        vitals(&spilled)
    );
    assert_eq!(rows_spilled, rows_in_memory);
    let updated = vitals(&in_memory)["updated"].as_u64().unwrap();
    let client = w.pg.conn("heart").connect().await.unwrap();
    let expected: i64 = client
        .query_one(
            "SELECT count(*) FROM public.vitals_samples WHERE id % 40 = 0",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(updated, expected as u64);
    assert_eq!(vitals(&spilled)["updated"], updated);

    // The newest two backups now agree on audit_log: check has nothing to say of it.
    let (_, text) = check(&repo);
    assert!(!text.contains("append-only"), "{text}");

    // Growing is what it may do; a table that never changed passes too.
    let out = diff(
        &repo,
        &[a, b, "--expect-append-only", "organization_memberships"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A partial backup says nothing of the tables it left out: not "dropped".
    let partial = json(&ok(w.backup(&repo, "heart", &["--json", "-t", "patients"])));
    let p = partial["backup_id"].as_str().unwrap();
    let out = diff(
        &repo,
        &[c, p, "--json", "--expect-append-only", "audit_log"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report = json(&String::from_utf8_lossy(&out.stdout));
    let audit = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "audit_log")
        .unwrap();
    assert_eq!(audit["presence"], "not_held", "{audit}");
    assert!(report["warnings"]
        .to_string()
        .contains("sequence values and large objects"));
}

/// Rows of a table as one digest, to see it untouched.
async fn digest(w: &World, table: &str) -> String {
    let client = w.pg.conn("heart").connect().await.unwrap();
    client
        .query_one(
            &format!("SELECT count(*)::text || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM {table} t"),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Patients copied under new ids, MRNs and chart numbers, without a login.
fn copies_of_patients(first_id: u32, n: u32) -> String {
    format!(
        "INSERT INTO public.patients SELECT (jsonb_populate_record(NULL::public.patients, to_jsonb(p) \
           || jsonb_build_object('id', {first_id} + rn, 'mrn', 'M-{first_id}-' || rn, \
              'chart_number', {first_id} + rn, 'user_id', NULL))).* \
         FROM (SELECT p.*, row_number() OVER (ORDER BY id) AS rn FROM public.patients p \
               ORDER BY id LIMIT {n}) p;"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_merge_puts_changed_and_deleted_rows_back_in_place() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    // Three patients nothing references, to delete after the backup; a table whose
    // regclass column makes it copied in text format.
    run_sql(&w, "heart", &copies_of_patients(900_000, 3)).await;
    run_sql(
        &w,
        "heart",
        "CREATE TABLE public.routes (id int PRIMARY KEY, rel regclass, note text);
         INSERT INTO public.routes VALUES (1, 'public.patients', 'a'), (2, 'public.users', 'b\tc');",
    )
    .await;
    let repo = w.init_repo("repo");
    let backup = json(&ok(w.backup(&repo, "heart", &["--json"])));
    let a = backup["backup_id"].as_str().unwrap().to_owned();
    let snapshot = digest(&w, "public.patients").await;
    // The bad script: many patients changed, the lonely ones deleted; then a new
    // patient with a reading, and one without.
    run_sql(
        &w,
        "heart",
        &format!(
            "UPDATE public.patients SET last_name = last_name || '!', phone = NULL WHERE id % 2 = 0;
             DELETE FROM public.patients WHERE id > 900000;
             {}
             {}
             INSERT INTO public.vitals_samples (patient_id, recorded_at, kind, value, unit, source)
               SELECT 900011, recorded_at, kind, value, unit, source FROM public.vitals_samples LIMIT 1;",
            copies_of_patients(900_010, 1),
            copies_of_patients(900_020, 1)
        ),
    )
    .await;
    let routes = digest(&w, "public.routes").await;
    run_sql(
        &w,
        "heart",
        "UPDATE public.routes SET note = 'changed' WHERE id = 2; DELETE FROM public.routes WHERE id = 1;",
    )
    .await;
    let changed: i64 =
        w.pg.conn("heart")
            .connect()
            .await
            .unwrap()
            .query_one(
                "SELECT count(*) FROM public.patients WHERE id % 2 = 0 AND id < 900000",
                &[],
            )
            .await
            .unwrap()
            .get(0);
    assert!(changed > 150, "{changed}");
    let vitals = digest(&w, "public.vitals_samples").await;
    let url = w.pg.url("heart");
    let merge = |extra: &[&str]| {
        let mut args = vec![
            "restore", "--repo", &repo, &a, "--target", &url, "-t", "patients", "--json",
        ];
        args.extend_from_slice(extra);
        json(&ok(pgbunker(&args, &[("PGBUNKER_KEY", KEY)])))
    };
    let patients = |r: &Value| r["tables"][0].clone();

    // A dry run counts and changes nothing.
    let before = digest(&w, "public.patients").await;
    let dry = merge(&["--merge", "--dry-run"]);
    assert_eq!(patients(&dry)["updated"], changed, "{dry}");
    assert_eq!(patients(&dry)["reinserted"], 3);
    assert_eq!(digest(&w, "public.patients").await, before);

    // The merge: changed rows back, deleted rows back, the newer patients kept.
    let done = merge(&["--merge"]);
    assert_eq!(patients(&done)["updated"], changed, "{done}");
    assert_eq!(patients(&done)["reinserted"], 3);
    assert_eq!(patients(&done)["newer_rows"], 2);
    assert_eq!(
        digest(&w, "public.vitals_samples").await,
        vitals,
        "vitals untouched"
    );
    let left = json(&ok(diff(
        &repo,
        &[&a, "--live", &url, "-t", "patients", "--json"],
    )));
    assert_eq!(
        (
            left["rows_inserted"].as_u64(),
            left["rows_deleted"].as_u64(),
            left["rows_updated"].as_u64()
        ),
        (Some(2), Some(0), Some(0)),
        "only the two newer patients differ: {left}"
    );

    // A newer patient took the MRN of one deleted since: exact deletes it before
    // putting the old one back, so the unique key holds all along.
    run_sql(
        &w,
        "heart",
        "DELETE FROM public.patients WHERE id = 900001;
         UPDATE public.patients SET id = 900030, chart_number = 900030 WHERE id = 900020 + 1;
         UPDATE public.patients SET mrn = 'M-900000-1' WHERE id = 900030;",
    )
    .await;

    // exact: the newer patient a reading references is kept and named, the others go.
    let exact = merge(&["--merge=exact"]);
    assert_eq!(patients(&exact)["reinserted"], 1, "{exact}");
    assert_eq!(patients(&exact)["deleted"], 1, "{exact}");
    assert_eq!(patients(&exact)["kept_referenced"], 1);
    assert_eq!(patients(&exact)["kept_keys"][0], "(900011)");
    assert_eq!(
        digest(&w, "public.vitals_samples").await,
        vitals,
        "nothing cascaded"
    );
    let client = w.pg.conn("heart").connect().await.unwrap();
    let orphans: i64 = client
        .query_one(
            "SELECT count(*) FROM public.vitals_samples v
              WHERE NOT EXISTS (SELECT FROM public.patients p WHERE p.id = v.patient_id)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(orphans, 0);
    let without_kept = client
        .query_one(
            "SELECT count(*)::text || ':' || md5(string_agg(t::text, ',' ORDER BY t::text))
               FROM public.patients t WHERE id <> 900011",
            &[],
        )
        .await
        .unwrap()
        .get::<_, String>(0);
    assert_eq!(
        without_kept, snapshot,
        "patients equal the snapshot but for the kept one"
    );

    // A table copied in text format merges the same way.
    let done = json(&ok(pgbunker(
        &[
            "restore", "--repo", &repo, &a, "--target", &url, "-t", "routes", "--merge", "--json",
        ],
        &[("PGBUNKER_KEY", KEY)],
    )));
    assert_eq!(patients(&done)["updated"], 1, "{done}");
    assert_eq!(patients(&done)["reinserted"], 1);
    assert_eq!(digest(&w, "public.routes").await, routes);
}
