//! Masked restores and exports of the heart-recovery fixture with its preset rules
//! (`fixtures/heart_recovery/mask.toml`): same tables, rows and constraints as the
//! source, no original value of a masked column anywhere in the target, the same
//! masked values for the same key and other ones for another key, per-patient date
//! shifts that keep intervals, and refusals before anything is written when a column
//! that looks like an identifier has no rule, a rule would break a constraint, or the
//! masking key is missing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio_postgres::Client;

use crate::support::{all_rows, json, ok, pgbunker, stderr, stdout, World, KEY};

const MASK_KEY: &str = "a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0";
const OTHER_MASK_KEY: &str = "0101010101010101010101010101010101010101010101010101010101010102";

fn preset() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/heart_recovery/mask.toml")
}

fn masked_restore(
    w: &World,
    repo: &str,
    db: &str,
    rules: &Path,
    mask_key: &str,
) -> std::process::Output {
    let target = w.pg.url(db);
    let rules = rules.display().to_string();
    pgbunker(
        &[
            "restore", "--repo", repo, "latest", "--target", &target, "--mask", &rules, "--json",
        ],
        &[("PGBUNKER_KEY", KEY), ("PGBUNKER_MASK_KEY", mask_key)],
    )
}

/// `(table, column, data type)` of every column of every user table.
async fn columns(c: &Client) -> Vec<(String, String, String)> {
    c.query(
        "SELECT format('%I.%I', table_schema, table_name), column_name, data_type \
         FROM information_schema.columns \
         WHERE table_schema IN ('public', 'clinical') ORDER BY 1, ordinal_position",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

/// The distinct non-null values of a column as text, and for JSON every string inside.
async fn values(c: &Client, table: &str, column: &str, data_type: &str) -> BTreeSet<String> {
    let col = format!("\"{column}\"");
    let mut out: BTreeSet<String> = c
        .query(
            &format!("SELECT DISTINCT {col}::text FROM {table} WHERE {col} IS NOT NULL"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    if data_type.starts_with("json") {
        out.extend(
            c.query(
                &format!(
                    "SELECT DISTINCT v #>> '{{}}' FROM {table}, \
                     jsonb_path_query({col}::jsonb, 'strict $.**') v \
                     WHERE jsonb_typeof(v) = 'string'"
                ),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0)),
        );
    }
    out
}

/// Values in which no original of a masked column may appear: every text-castable
/// column, as `table.column` → its values.
async fn every_value(c: &Client) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (t, col, ty) in columns(c).await {
        out.insert(format!("{t}.{col}"), values(c, &t, &col, &ty).await);
    }
    out
}

/// The source's values of the masked columns that the scan looks for: what names,
/// contacts, record numbers and free text held. Dates and numbers permuted by
/// format_preserving take other rows' values by design (a shifted date can land on
/// another patient's date; a permutation of six-digit numbers on another chart
/// number): they are checked row by row instead. Values under 3 characters say nothing.
fn originals(
    report: &Value,
    source: &BTreeMap<String, BTreeSet<String>>,
    types: &HashMap<String, String>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for c in report["masked"]["columns"].as_array().unwrap() {
        let key = format!(
            "{}.{}",
            c["table"].as_str().unwrap(),
            c["column"].as_str().unwrap()
        );
        let t = c["transform"].as_str().unwrap();
        let ty = &types[&key];
        if t.starts_with("shift_date") || t == "year_only" || ty == "bigint" || ty == "integer" {
            continue;
        }
        out.extend(
            source[&key]
                .iter()
                .filter(|v| v.chars().count() >= 3)
                .cloned(),
        );
    }
    out
}

/// Original values found in the target, whole or, from six characters on, inside
/// longer texts (an MRN quoted in a note is still the MRN): in any column, unless the
/// source held it as a whole value of that same column unmasked (a drug name that is
/// also a masked note's whole text was never the note's secret).
fn leaks(
    target: &BTreeMap<String, BTreeSet<String>>,
    source: &BTreeMap<String, BTreeSet<String>>,
    masked: &BTreeSet<String>,
    originals: &BTreeSet<String>,
) -> Vec<String> {
    let needles: Vec<&String> = originals.iter().collect();
    let finder = aho_corasick::AhoCorasick::new(&needles).unwrap();
    let mut out = BTreeSet::new();
    for (col, vals) in target {
        for v in vals {
            for m in finder.find_overlapping_iter(v) {
                let needle = needles[m.pattern().as_usize()];
                if needle.chars().count() < 6 && (m.start(), m.end()) != (0, v.len()) {
                    continue;
                }
                let own =
                    !masked.contains(col) && source.get(col).is_some_and(|s| s.contains(needle));
                if !own {
                    out.insert(format!("{col}: {needle:?} in {v:?}"));
                }
            }
        }
    }
    out.into_iter().take(20).collect()
}

/// What a scan for leaks needs from the source and the masked run's report.
struct Scan {
    /// Every text-castable column's values in the source.
    source_values: BTreeMap<String, BTreeSet<String>>,
    /// `schema.table.column` of every masked column.
    masked_cols: BTreeSet<String>,
    /// The originals looked for ([`originals`]).
    wanted: BTreeSet<String>,
}

async fn scan(source: &Client, report: &Value) -> Scan {
    let types: HashMap<String, String> = columns(source)
        .await
        .into_iter()
        .map(|(t, c, ty)| (format!("{t}.{c}"), ty))
        .collect();
    let source_values = every_value(source).await;
    let wanted = originals(report, &source_values, &types);
    Scan {
        masked_cols: masked_columns(report),
        source_values,
        wanted,
    }
}

/// `schema.table.column` of every column a report says it masked.
fn masked_columns(report: &Value) -> BTreeSet<String> {
    report["masked"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}.{}",
                c["table"].as_str().unwrap(),
                c["column"].as_str().unwrap()
            )
        })
        .collect()
}

/// `id → (entity, epoch seconds)` of a table's dated column.
async fn dated(c: &Client, table: &str, entity: &str, column: &str) -> HashMap<i64, (i64, f64)> {
    c.query(
        &format!(
            "SELECT id::bigint, {entity}::bigint, extract(epoch FROM {column})::float8 \
             FROM {table} WHERE {column} IS NOT NULL"
        ),
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), (r.get(1), r.get(2))))
    .collect()
}

/// Each entity's shift in days, checked to be one whole number of days per entity,
/// never 0, at most a year.
fn shifts(
    before: &HashMap<i64, (i64, f64)>,
    after: &HashMap<i64, (i64, f64)>,
) -> HashMap<i64, i64> {
    let mut per: HashMap<i64, i64> = HashMap::new();
    assert_eq!(before.len(), after.len());
    for (id, (entity, t0)) in before {
        let (e1, t1) = after[id];
        assert_eq!(*entity, e1, "the entity column is kept");
        let delta = t1 - t0;
        assert_eq!(delta % 86_400.0, 0.0, "whole days: {delta}");
        let days = (delta / 86_400.0) as i64;
        assert!(
            days != 0 && days.abs() <= 365,
            "row {id}: moved {days} days"
        );
        let seen = *per.entry(*entity).or_insert(days);
        assert_eq!(seen, days, "entity {entity}: every row moves alike");
    }
    per
}

async fn connect(w: &World, db: &str) -> Client {
    w.pg.conn(db).connect().await.unwrap()
}

/// `id → (date of birth, chart number)` of every patient.
async fn births(c: &Client) -> HashMap<i32, (String, i64)> {
    c.query(
        "SELECT id, date_of_birth::text, chart_number FROM patients",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), (r.get(1), r.get(2))))
    .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_masked_restore_keeps_the_database_and_loses_the_identities() {
    let w = World::start();
    let repo = w.backed_up().await;
    let source = connect(&w, "heart").await;

    // Without a key, with a rule missing, with a rule that breaks a constraint: refused,
    // and the target stays empty.
    w.empty_db("refused").await;
    let no_key = pgbunker(
        &[
            "restore",
            "--repo",
            &repo,
            "latest",
            "--target",
            &w.pg.url("refused"),
            "--mask",
            &preset().display().to_string(),
        ],
        &[("PGBUNKER_KEY", KEY)],
    );
    assert!(!no_key.status.success());
    assert!(
        stderr(&no_key).contains("PGBUNKER_MASK_KEY"),
        "{}",
        stderr(&no_key)
    );
    let rules_text = std::fs::read_to_string(preset()).unwrap();
    let without_names = w.dir.path().join("no-first-name.toml");
    std::fs::write(
        &without_names,
        rules_text.replace(
            "columns = \"public.patients.first_name\"",
            "columns = \"public.nothing.here\"",
        ),
    )
    .unwrap();
    let env = [("PGBUNKER_KEY", KEY)];
    let check = pgbunker(
        &[
            "mask",
            "check",
            "--repo",
            &repo,
            "latest",
            &without_names.display().to_string(),
        ],
        &env,
    );
    assert_eq!(check.status.code(), Some(1), "{}", stderr(&check));
    let text = stdout(&check);
    let line = text
        .lines()
        .position(|l| l.contains("public.patients.first_name"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        text.lines().nth(line + 1).unwrap().contains("NOT COVERED"),
        "{text}"
    );
    let refused = masked_restore(&w, &repo, "refused", &without_names, MASK_KEY);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("public.patients.first_name"),
        "{}",
        stderr(&refused)
    );
    let breaking = w.dir.path().join("breaking.toml");
    std::fs::write(
        &breaking,
        format!(
            "{rules_text}\n[[rule]]\ncolumns = \"public.vitals_samples.patient_id\"\ntransform = \"hash\"\n"
        )
        .replace(
            "columns = [\"public.users.email\", \"public.users.public_id\"]",
            "columns = [\"public.users.public_id\"]\ntransform = \"format_preserving\"\n[[rule]]\ncolumns = \"public.users.email\"\ntransform = \"hash\"\n[[rule]]\ncolumns = \"x.y.z\"",
        ),
    )
    .unwrap();
    let refused = masked_restore(&w, &repo, "refused", &breaking, MASK_KEY);
    let why = stderr(&refused);
    assert_eq!(refused.status.code(), Some(2), "{why}");
    assert!(
        why.contains("users_email_lower_uidx"),
        "a unique index: {why}"
    );
    assert!(
        why.contains("public.vitals_samples.patient_id") && why.contains("would find no row"),
        "{why}"
    );
    let empty = connect(&w, "refused").await;
    let n: i64 = empty
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "nothing was written");

    // The preset covers every flagged column; a starting rules file does too.
    let written = w.dir.path().join("start.toml");
    let start = pgbunker(
        &[
            "mask",
            "check",
            "--repo",
            &repo,
            "latest",
            "--write-rules",
            &written.display().to_string(),
        ],
        &env,
    );
    assert_eq!(
        start.status.code(),
        Some(1),
        "nothing is covered without rules"
    );
    ok(pgbunker(
        &[
            "mask",
            "check",
            "--repo",
            &repo,
            "latest",
            &written.display().to_string(),
        ],
        &env,
    ));
    ok(pgbunker(
        &[
            "mask",
            "check",
            "--repo",
            &repo,
            "latest",
            &preset().display().to_string(),
        ],
        &env,
    ));

    // The masked restore.
    w.empty_db("masked").await;
    let report = json(&ok(masked_restore(
        &w,
        &repo,
        "masked",
        &preset(),
        MASK_KEY,
    )));
    let sha = report["masked"]["rules_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sha.len(), 64);
    let target = connect(&w, "masked").await;

    // Same schema (every key, unique constraint and foreign key was created after the
    // rows, so each was checked against them), same row counts.
    assert_eq!(w.schema_dump("heart"), w.schema_dump("masked"));
    let invalid: i64 = target
        .query_one(
            "SELECT count(*) FROM pg_constraint WHERE NOT convalidated",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(invalid, 0);
    let (a, b) = (
        all_rows(&w.pg.conn("heart")).await,
        all_rows(&w.pg.conn("masked")).await,
    );
    let counts = |rows: &[(String, Vec<String>)]| -> Vec<(String, usize)> {
        rows.iter().map(|(t, r)| (t.clone(), r.len())).collect()
    };
    assert_eq!(counts(&a), counts(&b));
    assert!(a != b, "the rows were masked");

    // No original value of a masked column anywhere in the target.
    let Scan {
        source_values,
        masked_cols,
        wanted,
    } = scan(&source, &report).await;
    let target_values = every_value(&target).await;
    assert!(
        wanted.len() > 1000,
        "the scan looks for names, emails, MRNs, notes: {}",
        wanted.len()
    );
    assert!(wanted.contains("MRN-00000001") && wanted.contains("Hiroshi"));
    let found = leaks(&target_values, &source_values, &masked_cols, &wanted);
    assert!(
        found.is_empty(),
        "original values in the masked database: {found:?}"
    );

    // Row by row: dates of birth keep the year only; numbers under format_preserving
    // changed; dates moved per patient, alike in every table.
    let (before, after) = (births(&source).await, births(&target).await);
    for (id, (d0, c0)) in &before {
        let (d1, c1) = &after[id];
        assert_eq!(d1, &format!("{}-01-01", &d0[..4]), "patient {id}");
        assert_ne!(c0, c1, "patient {id}: chart number");
        assert_eq!(c0.to_string().len(), c1.to_string().len());
    }
    let vitals = shifts(
        &dated(&source, "vitals_samples", "patient_id", "recorded_at").await,
        &dated(&target, "vitals_samples", "patient_id", "recorded_at").await,
    );
    let events = shifts(
        &dated(&source, "calendar_events", "patient_id", "starts_at").await,
        &dated(&target, "calendar_events", "patient_id", "starts_at").await,
    );
    let patients = shifts(
        &dated(&source, "patients", "id", "enrolled_at").await,
        &dated(&target, "patients", "id", "enrolled_at").await,
    );
    assert!(vitals.len() > 100);
    for (p, d) in &vitals {
        assert_eq!(
            events.get(p).unwrap_or(d),
            d,
            "patient {p}: same shift in every table"
        );
        assert_eq!(&patients[p], d, "patient {p}");
    }
    assert!(
        vitals.values().collect::<BTreeSet<_>>().len() > 50,
        "patients move apart"
    );

    // The same key gives the same database; another key another one.
    w.empty_db("again").await;
    ok(masked_restore(&w, &repo, "again", &preset(), MASK_KEY));
    let again = all_rows(&w.pg.conn("again")).await;
    assert!(b == again, "two runs with one key are identical");
    w.empty_db("other").await;
    ok(masked_restore(
        &w,
        &repo,
        "other",
        &preset(),
        OTHER_MASK_KEY,
    ));
    let other = connect(&w, "other").await;
    let names = |c: Client| async move {
        c.query("SELECT first_name, mrn FROM patients ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
            .collect::<Vec<_>>()
    };
    let (mine, theirs) = (names(target).await, names(other).await);
    assert_eq!(mine.len(), theirs.len());
    assert!(mine
        .iter()
        .zip(&theirs)
        .all(|(a, b)| a.0 != b.0 || a.1 != b.1));

    // The audit records say masked, by which rules, and hold no value.
    let audit = json(&ok(pgbunker(
        &["audit", "--repo", &repo, "--operation", "restore", "--json"],
        &env,
    )));
    let masked_runs: Vec<&Value> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["result"] == "ok")
        .map(|r| &r["details"]["masked"])
        .collect();
    assert_eq!(masked_runs.len(), 3, "{audit}");
    assert!(
        masked_runs
            .iter()
            .all(|m| m["rules_sha256"] == sha.as_str()),
        "{audit}"
    );
    let text = audit.to_string();
    assert!(
        !text.contains("MRN-") && !text.contains("Hiroshi"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_masked_export_reads_back_without_identities() {
    let w = World::start();
    let repo = w.backed_up().await;
    let source = connect(&w, "heart").await;
    let out = w.dir.path().join("export");
    let report = json(&ok(pgbunker(
        &[
            "export",
            "--repo",
            &repo,
            "latest",
            "--out",
            &out.display().to_string(),
            "--json",
            "--uuid-as",
            "text",
            "--mask",
            &preset().display().to_string(),
        ],
        &[("PGBUNKER_KEY", KEY), ("PGBUNKER_MASK_KEY", MASK_KEY)],
    )));
    let read = crate::export::read_export(&out.display().to_string(), None);
    let Scan {
        source_values,
        masked_cols,
        wanted,
    } = scan(&source, &report).await;
    // Every string pyarrow reads, by column, and the strings inside JSON documents.
    let mut exported: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut rows = 0;
    for d in read["datasets"].as_array().unwrap() {
        let table = d["name"].as_str().unwrap();
        let fields: Vec<&str> = d["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        rows += d["num_rows"].as_u64().unwrap();
        for row in d["rows"].as_array().unwrap() {
            for (i, v) in row.as_array().unwrap().iter().enumerate() {
                let set = exported
                    .entry(format!("{table}.{}", fields[i]))
                    .or_default();
                strings(v, set);
            }
        }
    }
    assert_eq!(rows, report["rows"].as_u64().unwrap());
    let source_rows: i64 = source
        .query_one(
            "SELECT (SELECT count(*) FROM patients) + (SELECT count(*) FROM vitals_samples)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(rows as i64 > source_rows);
    let found = leaks(&exported, &source_values, &masked_cols, &wanted);
    assert!(
        found.is_empty(),
        "original values in the masked export: {found:?}"
    );
    assert!(exported["public.patients.first_name"]
        .iter()
        .all(|n| !source_values["public.patients.first_name"].contains(n)));
}

/// The strings in a value read back, and inside it when it is a JSON document.
fn strings(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            out.insert(s.clone());
            if let Ok(doc) = serde_json::from_str::<Value>(s) {
                if doc.is_object() || doc.is_array() {
                    strings(&doc, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// Types, partitions and keys the fixture does not have: citext, char(n) keys
/// referenced from varchar, a smallint key referenced from integer columns, a
/// partitioned table whose rule names the parent.
const SHAPES: &str = "
    CREATE EXTENSION citext;
    CREATE TABLE public.accounts (
        id smallint PRIMARY KEY,
        email citext NOT NULL UNIQUE,
        code char(6) UNIQUE,
        deleted_at timestamptz);
    CREATE UNIQUE INDEX accounts_live_email ON public.accounts (email) WHERE deleted_at IS NULL;
    CREATE TABLE public.logins (
        id integer PRIMARY KEY,
        account_id integer NOT NULL REFERENCES public.accounts (id),
        code varchar(6) REFERENCES public.accounts (code));
    CREATE TABLE public.visits (id integer, visited date, diagnosis text, PRIMARY KEY (id, visited))
        PARTITION BY RANGE (visited);
    CREATE TABLE public.visits_2024 PARTITION OF public.visits FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
    CREATE TABLE public.visits_2025 PARTITION OF public.visits FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    CREATE TABLE public.authors (id integer PRIMARY KEY, author text,
        author_key text GENERATED ALWAYS AS (lower(author)) STORED UNIQUE);
    INSERT INTO public.accounts
        SELECT 10000 + i, 'Person' || i || '@Example.com', 'AB' || lpad(i::text, 3, '0'), NULL
        FROM generate_series(1, 60) i;
    INSERT INTO public.logins SELECT i, 10000 + 1 + i % 60, 'AB' || lpad((1 + i % 60)::text, 3, '0')
        FROM generate_series(1, 300) i;
    INSERT INTO public.visits SELECT i, date '2024-06-01' + i * 2, 'HIV positive ' || i
        FROM generate_series(1, 200) i;
    INSERT INTO public.authors SELECT i, 'Author ' || i FROM generate_series(1, 20) i;";

const SHAPE_RULES: &str = r#"
[[rule]]
columns = ["accounts.id", "accounts.email", "accounts.code"]
transform = "format_preserving"
[[rule]]
columns = ["visits.diagnosis", "authors.author"]
transform = "format_preserving"
"#;

/// The rows of `logins`, sorted.
async fn login_rows(c: &Client) -> Vec<String> {
    let mut r: Vec<String> = c
        .query("SELECT l::text FROM logins l", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    r.sort();
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn masking_follows_types_partitions_and_foreign_keys_of_any_width() {
    let w = World::start();
    w.empty_db("shapes").await;
    crate::support::run_sql(&w, "shapes", SHAPES).await;
    let repo = w.init_repo("repo");
    ok(w.backup(&repo, "shapes", &[]));
    let rules = w.dir.path().join("rules.toml");
    std::fs::write(&rules, SHAPE_RULES).unwrap();

    // citext is masked as text; the partitions follow their parent's rule; the
    // integer and varchar references follow their smallint and char(6) keys, so every
    // foreign key validates.
    w.empty_db("masked").await;
    let report = json(&ok(masked_restore(&w, &repo, "masked", &rules, MASK_KEY)));
    let masked = masked_columns(&report);
    for c in [
        "public.visits_2024.diagnosis",
        "public.logins.account_id",
        "public.logins.code",
    ] {
        assert!(masked.contains(c), "{c}: {masked:?}");
    }
    let target = connect(&w, "masked").await;
    let one = |sql: &str| {
        let c = &target;
        let sql = sql.to_string();
        async move { c.query_one(&sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(
        one("SELECT count(*) FROM accounts WHERE email::text LIKE 'Person%'").await,
        0
    );
    assert_eq!(
        one("SELECT count(*) FROM visits WHERE diagnosis LIKE 'HIV%'").await,
        0
    );
    assert_eq!(one("SELECT count(*) FROM visits").await, 200);
    assert_eq!(
        one("SELECT count(*) FROM accounts WHERE id BETWEEN 10000 AND 32767").await,
        60
    );
    assert!(
        one("SELECT count(*) FROM accounts WHERE id BETWEEN 10001 AND 10060").await < 10,
        "the keys moved"
    );

    // A partial reload of the referencing table alone masks its keys as the full
    // restore did: its foreign keys find their masked rows.
    let before = login_rows(&target).await;
    crate::support::run_sql(&w, "masked", "DELETE FROM logins").await;
    let target_url = w.pg.url("masked");
    ok(pgbunker(
        &[
            "restore",
            "--repo",
            &repo,
            "latest",
            "--target",
            &target_url,
            "-t",
            "logins",
            "--data-only",
            "--mask",
            &rules.display().to_string(),
        ],
        &[("PGBUNKER_KEY", KEY), ("PGBUNKER_MASK_KEY", MASK_KEY)],
    ));
    assert_eq!(login_rows(&target).await, before);

    // Rules that would break a partial unique index's predicate, or a unique generated
    // column made of a masked one, are refused before anything is written.
    let breaking = w.dir.path().join("breaking.toml");
    std::fs::write(
        &breaking,
        format!(
            "{SHAPE_RULES}\n[[rule]]\ncolumns = \"accounts.deleted_at\"\ntransform = \"null\"\n"
        )
        .replace("\"authors.author\"]\ntransform = \"format_preserving\"", "\"x.y.z\"]\ntransform = \"format_preserving\"\n[[rule]]\ncolumns = \"authors.author\"\ntransform = \"redact\""),
    )
    .unwrap();
    w.empty_db("refused").await;
    let o = masked_restore(&w, &repo, "refused", &breaking, MASK_KEY);
    let why = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{why}");
    assert!(why.contains("accounts_live_email"), "{why}");
    assert!(why.contains("authors_author_key_key"), "{why}");
}
