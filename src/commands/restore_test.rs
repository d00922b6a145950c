//! `pgbunker verify --restore-test`: the runbook's monthly restore test as one
//! command. Restores a backup into a scratch database, then checks it independently of
//! the loader: row counts and content checksums read back from the server against the
//! manifest, every foreign key present and validated, every index present. Writes the
//! report as JSON and Markdown (the fields of the runbook's template), then drops what
//! it restored.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::audit::{who, Audit};
use super::restore::{restore, RestoreOptions};
use super::CommandError;
use crate::archive::{BackupLayout, Summary};
use crate::catalog::{quote_ident, Catalog, ConstraintKind};
use crate::dump::table_fingerprint;
use crate::error::Classify;
use crate::introspect::{index_names, large_object_digest, validated_foreign_keys};
use crate::load::type_remapper;
use crate::pg::{prepare_session, ConnSpec, PgError};
use crate::progress::Progress;

/// No `Debug`: the scratch connection string may carry a password.
pub struct RestoreTestOptions {
    /// The restore to run; its `target` is the scratch database.
    pub restore: RestoreOptions,
    /// Where the JSON and Markdown reports go.
    pub report_dir: PathBuf,
    /// Leave the restored objects in the scratch database for inspection.
    pub keep_scratch: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableCheck {
    pub table: String,
    pub expected_rows: u64,
    pub restored_rows: Option<u64>,
    pub checksum_ok: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreTestReport {
    pub result: String,
    pub backup_id: String,
    pub backup_date: Option<String>,
    pub backup_stored_bytes: Option<u64>,
    pub backup_raw_bytes: Option<u64>,
    pub tester: String,
    pub scratch_database: String,
    pub restore_start: String,
    pub restore_end: String,
    pub restore_seconds: f64,
    pub tables: Vec<TableCheck>,
    pub foreign_keys_expected: usize,
    pub foreign_keys_valid: usize,
    pub indexes_expected: usize,
    pub indexes_present: usize,
    /// Large objects in the backup, and those read back whole with the manifest's size
    /// and SHA-256.
    pub large_objects_expected: usize,
    pub large_objects_ok: usize,
    pub missing: Vec<String>,
    pub notes: Vec<String>,
    pub cleaned_up: bool,
    pub report_json: String,
    pub report_markdown: String,
}

impl RestoreTestReport {
    pub fn passed(&self) -> bool {
        self.result == "PASS"
    }
}

impl Audit for RestoreTestReport {
    fn backup_id(&self) -> Option<String> {
        Some(self.backup_id.clone())
    }
    fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "restore_test": self.result,
            "restore_seconds": self.restore_seconds,
            "tables": self.tables.len(),
            "report": self.report_json,
        })
    }
}

fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("formatting a timestamp")
}

/// Runs the test. A failed test is still a report (written to disk) and then an
/// error, so scripts see a non-zero exit.
pub async fn restore_test(
    opts: &RestoreTestOptions,
    progress: Arc<dyn Progress>,
) -> Result<RestoreTestReport, CommandError> {
    let scratch = ConnSpec::parse(opts.restore.target.as_deref())?;
    let repo = opts.restore.repo.open().await?;
    let live = repo.resolve(&opts.restore.backup).await?;
    let summary: Option<Summary> = repo
        .store()
        .get_opt(&BackupLayout::new(&live.bid).summary())
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok());
    let started = OffsetDateTime::now_utc();
    let clock = Instant::now();
    let mut report = RestoreTestReport {
        result: "FAIL".into(),
        backup_id: live.bid.clone(),
        backup_date: Some(live.created_at.clone()),
        backup_stored_bytes: summary.as_ref().map(|s| s.stored_bytes),
        backup_raw_bytes: crate::archive::backup_totals(&repo, &live, summary.as_ref())
            .await
            .map(|t| t.2),
        tester: who(),
        scratch_database: scratch.to_string(),
        restore_start: ts(started),
        restore_end: String::new(),
        restore_seconds: 0.0,
        tables: Vec::new(),
        foreign_keys_expected: 0,
        foreign_keys_valid: 0,
        indexes_expected: 0,
        indexes_present: 0,
        large_objects_expected: 0,
        large_objects_ok: 0,
        missing: Vec::new(),
        notes: Vec::new(),
        cleaned_up: false,
        report_json: String::new(),
        report_markdown: String::new(),
    };
    // Only a scratch database that holds none of the backup's tables is ours to clean
    // up afterwards, whatever happens in between.
    let reader = crate::archive::BackupReader::open(&repo, &live).await;
    if let Ok(r) = &reader {
        let whole = crate::plan::scope::Scope::whole(&r.manifest().catalog);
        crate::load::check_target(&scratch, &whole, &opts.restore.load).await?;
        // Cleaning up unlinks the backup's OIDs: they must not be someone else's.
        crate::load::check_large_objects(&scratch, r.manifest(), &whole, &opts.restore.load)
            .await?;
    }
    let restored = restore(&opts.restore, progress).await;
    report.restore_end = ts(OffsetDateTime::now_utc());
    report.restore_seconds = clock.elapsed().as_secs_f64();
    let mut failure: Option<CommandError> = None;
    match (&restored, &reader) {
        (Err(e), _) => report.notes.push(format!("the restore failed: {e}")),
        (Ok(_), Ok(reader)) => {
            if let Err(e) = inspect(&scratch, reader.manifest(), &mut report).await {
                report
                    .notes
                    .push(format!("could not inspect the scratch database: {e}"));
                failure = Some(e.into());
            }
        }
        (Ok(_), Err(e)) => report
            .notes
            .push(format!("could not read the manifest: {e}")),
    }
    if let (Ok(reader), false) = (&reader, opts.keep_scratch) {
        if let Err(e) = drop_large_objects(&scratch, reader.manifest()).await {
            report
                .notes
                .push(format!("could not drop the restored large objects: {e}"));
        }
        match drop_restored(&scratch, &reader.manifest().catalog).await {
            Ok(leftover) => {
                report.cleaned_up = leftover.is_empty();
                report.notes.extend(leftover);
            }
            Err(e) => report
                .notes
                .push(format!("could not drop the restored objects: {e}")),
        }
    }
    if let Err(e) = restored {
        failure = Some(e);
    }
    let sound = failure.is_none()
        && report.missing.is_empty()
        && report
            .tables
            .iter()
            .all(|t| t.checksum_ok && t.restored_rows == Some(t.expected_rows));
    if sound {
        report.result = "PASS".into();
        report
            .notes
            .push("all data restored and checked; no errors encountered".into());
    } else if report.notes.is_empty() {
        let bad = report.missing.len()
            + report
                .tables
                .iter()
                .filter(|t| !t.checksum_ok || t.restored_rows != Some(t.expected_rows))
                .count();
        report.notes.push(format!(
            "{bad} check(s) failed: see the tables and the missing objects above"
        ));
    }
    write_reports(&opts.report_dir, &mut report)?;
    match failure {
        // Could not test (scratch unreachable, wrong key, …): keep that error's class.
        Some(e) if e.class() != crate::error::Class::Corrupt => Err(e),
        _ if sound => Ok(report),
        _ => Err(CommandError::RestoreTestFailed(Box::new(report))),
    }
}

/// Reads every table back (row count and content checksum over the same binary COPY
/// the backup took), and lists foreign keys and indexes the catalog says must exist.
async fn inspect(
    scratch: &ConnSpec,
    manifest: &crate::archive::Manifest,
    report: &mut RestoreTestReport,
) -> Result<(), PgError> {
    let client = scratch.connect().await?;
    prepare_session(&client).await?;
    for rec in &manifest.tables {
        let name = crate::catalog::QualName {
            schema: rec.schema.clone(),
            name: rec.name.clone(),
        };
        let Some(table) = manifest.catalog.table(&name) else {
            report
                .missing
                .push(format!("table {} (not in the catalog)", name.plain()));
            continue;
        };
        // The restored values name the scratch database's type OIDs: map them back to
        // the backup's before hashing, as the manifest's checksum covers those bytes.
        let fingerprint = async {
            let remap = type_remapper(&client, table, &manifest.catalog.types)
                .await
                .map_err(|e| e.to_string())?
                .inverse();
            table_fingerprint(&client, table, rec.copy_format, Some(&remap))
                .await
                .map_err(|e| e.to_string())
        };
        let stats = match fingerprint.await {
            Ok(s) => s,
            Err(e) => {
                report.missing.push(format!("table {}: {e}", name.plain()));
                report.tables.push(TableCheck {
                    table: name.plain(),
                    expected_rows: rec.rows,
                    restored_rows: None,
                    checksum_ok: false,
                });
                continue;
            }
        };
        report.tables.push(TableCheck {
            table: name.plain(),
            expected_rows: rec.rows,
            restored_rows: Some(stats.rows),
            checksum_ok: format!("{:032x}", stats.checksum) == rec.checksum,
        });
    }
    let cat = &manifest.catalog;
    let fks: Vec<(String, String)> = cat
        .tables
        .iter()
        .flat_map(|t| {
            t.constraints
                .iter()
                .filter(|c| c.kind == ConstraintKind::ForeignKey)
                .map(move |c| (t.name.plain(), c.name.clone()))
        })
        .collect();
    let valid = validated_foreign_keys(&client).await?;
    report.foreign_keys_expected = fks.len();
    for fk in &fks {
        if valid.contains(fk) {
            report.foreign_keys_valid += 1;
        } else {
            report.missing.push(format!(
                "foreign key {} on {} (missing or not validated)",
                fk.1, fk.0
            ));
        }
    }
    // Every index: explicit ones and those behind primary keys, uniques, exclusions.
    let indexes: Vec<(String, String)> = cat
        .tables
        .iter()
        .flat_map(|t| {
            let schema = t.name.schema.clone();
            t.indexes
                .iter()
                .map(|i| i.name.clone())
                .chain(
                    t.constraints
                        .iter()
                        .filter(|c| {
                            matches!(
                                c.kind,
                                ConstraintKind::PrimaryKey
                                    | ConstraintKind::Unique
                                    | ConstraintKind::Exclusion
                            )
                        })
                        .map(|c| c.name.clone()),
                )
                .map(move |i| (schema.clone(), i))
                .collect::<Vec<_>>()
        })
        .collect();
    let present = index_names(&client).await?;
    report.indexes_expected = indexes.len();
    for ix in &indexes {
        if present.contains(ix) {
            report.indexes_present += 1;
        } else {
            report.missing.push(format!("index {}.{}", ix.0, ix.1));
        }
    }
    if let Some(los) = &manifest.large_objects {
        report.large_objects_expected = los.objects.len();
        for lo in &los.objects {
            let oid = lo.object.oid;
            match large_object_digest(&client, oid).await? {
                None => report
                    .missing
                    .push(format!("large object {oid} (not restored)")),
                Some((size, sha)) if size == lo.size && sha == lo.sha256 => {
                    report.large_objects_ok += 1
                }
                Some((size, _)) => report.missing.push(format!(
                    "large object {oid}: {size} bytes restored, {} in the backup, or its \
                     content differs",
                    lo.size
                )),
            }
        }
    }
    Ok(())
}

/// Unlinks the large objects the restore created (those under the backup's OIDs: the
/// scratch database held none of them, or the restore would have refused).
async fn drop_large_objects(
    scratch: &ConnSpec,
    manifest: &crate::archive::Manifest,
) -> Result<(), PgError> {
    let Some(los) = &manifest.large_objects else {
        return Ok(());
    };
    let oids: Vec<u32> = los.objects.iter().map(|l| l.object.oid).collect();
    let client = scratch.connect().await?;
    crate::load::unlink_large_objects(&client, &oids, "drop the restored large objects").await
}

/// Drops exactly what the backup's catalog created: its tables, sequences and types
/// in one transaction, then its schemas other than `public` one by one, and only when
/// empty (a schema that held something else before stays). Returns notes on what
/// stayed.
async fn drop_restored(scratch: &ConnSpec, cat: &Catalog) -> Result<Vec<String>, PgError> {
    let client = scratch.connect().await?;
    let mut sql = String::from("BEGIN;\n");
    for t in &cat.tables {
        sql.push_str(&format!("DROP TABLE IF EXISTS {} CASCADE;\n", t.name));
    }
    for s in &cat.sequences {
        sql.push_str(&format!("DROP SEQUENCE IF EXISTS {} CASCADE;\n", s.name));
    }
    for e in &cat.enums {
        sql.push_str(&format!("DROP TYPE IF EXISTS {} CASCADE;\n", e.name));
    }
    sql.push_str("COMMIT;");
    client
        .batch_execute(&sql)
        .await
        .map_err(|e| PgError::query("drop the restored objects", e))?;
    let mut kept = Vec::new();
    for s in cat.schemas.iter().filter(|s| s.name != "public") {
        let drop = format!("DROP SCHEMA IF EXISTS {}", quote_ident(&s.name));
        if client.batch_execute(&drop).await.is_err() {
            kept.push(format!(
                "schema {} was left in place: it holds objects the backup did not create",
                s.name
            ));
        }
    }
    Ok(kept)
}

fn write_reports(dir: &std::path::Path, r: &mut RestoreTestReport) -> Result<(), CommandError> {
    let io = |e: std::io::Error| {
        CommandError::Usage(format!(
            "cannot write the restore-test report in {}: {e}",
            dir.display()
        ))
    };
    // The reports name tables and count their rows: owner-only, like the repository.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    let stem = format!("restore-test-{}-{}", &r.restore_start[..10], r.backup_id);
    let json_path = dir.join(format!("{stem}.json"));
    let md_path = dir.join(format!("{stem}.md"));
    r.report_json = json_path.display().to_string();
    r.report_markdown = md_path.display().to_string();
    let write = |path: &std::path::Path, bytes: &[u8]| {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| {
                // A report of an earlier run the same day may have had other modes.
                f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
                f.write_all(bytes)
            })
    };
    write(
        &json_path,
        &serde_json::to_vec_pretty(r).expect("reports serialize"),
    )
    .map_err(io)?;
    write(&md_path, markdown(r).as_bytes()).map_err(io)?;
    Ok(())
}

/// The runbook's "Restore Test Results" template, filled in.
pub fn markdown(r: &RestoreTestReport) -> String {
    let mb = |b: Option<u64>| b.map_or("-".into(), |b| format!("{:.1} MB", b as f64 / 1e6));
    let mut s = format!(
        "# Restore Test Results\n\n\
         - Date: {date}\n- Tester: {tester}\n\n\
         - Backup: {bid}\n- Backup Date: {bdate}\n- Backup Size: {stored} stored ({raw} raw)\n\n\
         - Restore Test Database: {db}\n- Restore Start Time: {start}\n\
         - Restore End Time: {end}\n- Restore Duration: {secs:.1} s\n\n\
         ## Data Verification\n\n\
         | table | rows in backup | rows restored | content checksum |\n|---|---:|---:|---|\n",
        date = &r.restore_start[..10],
        tester = r.tester,
        bid = r.backup_id,
        bdate = r.backup_date.as_deref().unwrap_or("-"),
        stored = mb(r.backup_stored_bytes),
        raw = mb(r.backup_raw_bytes),
        db = r.scratch_database,
        start = r.restore_start,
        end = r.restore_end,
        secs = r.restore_seconds,
    );
    for t in &r.tables {
        let ok = t.checksum_ok && t.restored_rows == Some(t.expected_rows);
        s.push_str(&format!(
            "| {} {} | {} | {} | {} |\n",
            if ok { "✓" } else { "✗" },
            t.table,
            t.expected_rows,
            t.restored_rows.map_or("-".into(), |n| n.to_string()),
            if t.checksum_ok { "matches" } else { "DIFFERS" },
        ));
    }
    let mark = |ok: bool| if ok { "✓" } else { "✗" };
    s.push_str(&format!(
        "\n- {} Foreign key constraints intact ({}/{} present and validated)\n\
         - {} Indexes present ({}/{})\n",
        mark(r.foreign_keys_valid == r.foreign_keys_expected && !r.tables.is_empty()),
        r.foreign_keys_valid,
        r.foreign_keys_expected,
        mark(r.indexes_present == r.indexes_expected && !r.tables.is_empty()),
        r.indexes_present,
        r.indexes_expected
    ));
    if r.large_objects_expected > 0 {
        s.push_str(&format!(
            "- {} Large objects restored with their size and SHA-256 ({}/{})\n",
            mark(r.large_objects_ok == r.large_objects_expected),
            r.large_objects_ok,
            r.large_objects_expected
        ));
    }
    for m in &r.missing {
        s.push_str(&format!("- ✗ missing: {m}\n"));
    }
    s.push_str(&format!("\n**Result: {}**\n\nNotes:\n", r.result));
    for n in &r.notes {
        s.push_str(&format!("- {n}\n"));
    }
    if !r.cleaned_up {
        s.push_str("- the restored objects were left in the scratch database\n");
    }
    s
}
