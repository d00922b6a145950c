//! `pgbunker verify --restore-test`: the runbook's monthly restore test as one
//! command. Restores a backup into a scratch database, then checks it independently of
//! the loader: row counts and content checksums read back from the server against the
//! manifest, every foreign key present and validated, every index present. Writes the
//! report as JSON and Markdown (the fields of the runbook's template), then drops what
//! it restored.

mod report;

pub use report::markdown;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use time::OffsetDateTime;

use super::audit::{who, Audit};
use super::{CommandError, RepoAccess};
use crate::archive::Timestamp;
use crate::archive::{BackupLayout, Manifest, OpenBackup, Repository, Summary};
use crate::error::{Class, Classify, Failed, Outcome};
use crate::load::plan::PlanOptions;
use crate::load::{self, LoadOptions};
use crate::pg::ConnSpec;
use crate::progress::Progress;
use crate::restored::{self, RestoredCheck};

/// No `Debug`: the scratch connection string may carry a password.
pub struct RestoreTestOptions {
    pub repo: RepoAccess,
    /// A backup id or `latest`.
    pub backup: String,
    /// The scratch database the backup is restored into.
    pub scratch: Option<String>,
    pub jobs: usize,
    /// Where the JSON and Markdown reports go.
    pub report_dir: PathBuf,
    /// Leave the restored objects in the scratch database for inspection.
    pub keep_scratch: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreTestReport {
    pub result: String,
    pub backup_id: String,
    pub backup_date: Option<Timestamp>,
    pub backup_stored_bytes: Option<u64>,
    pub backup_raw_bytes: Option<u64>,
    pub tester: String,
    pub scratch_database: String,
    pub restore_start: Timestamp,
    pub restore_end: Timestamp,
    pub restore_seconds: f64,
    #[serde(flatten)]
    pub check: RestoredCheck,
    pub notes: Vec<String>,
    pub cleaned_up: bool,
    pub report_json: String,
    pub report_markdown: String,
    /// Why the test failed, as an exit code tells it: `Corrupt` when the backup did
    /// not come back whole, the restore's own class when it could not run.
    #[serde(skip)]
    pub failure_class: Option<Class>,
}

impl RestoreTestReport {
    pub fn passed(&self) -> bool {
        self.result == "PASS"
    }
}

impl Outcome for RestoreTestReport {
    fn failed(&self) -> Option<Failed> {
        Some(Failed {
            class: self.failure_class?,
            message: format!(
                "restore test FAILED for backup {}: {}",
                self.backup_id,
                self.notes.first().map_or("see the report", String::as_str)
            ),
            hint: Some(format!(
                "read {} for the details; `pgbunker verify --data {}` locates damage",
                self.report_markdown, self.backup_id
            )),
        })
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
            "tables": self.check.tables.len(),
            "failed_checks": self.check.failures(),
            "report": self.report_json,
        })
    }
}

/// Runs the test. A failed test is still a report (written to disk) whose verdict
/// fails. A test that could not run (scratch unreachable, wrong key) is an error,
/// after its report is written.
pub async fn restore_test(
    opts: &RestoreTestOptions,
    progress: Arc<dyn Progress>,
) -> Result<RestoreTestReport, CommandError> {
    let scratch = ConnSpec::parse(opts.scratch.as_deref())?;
    let repo = opts.repo.open().await?;
    let backup = OpenBackup::open(&repo, &opts.backup).await?;
    let outcome = run(opts, &repo, &scratch, &backup, progress).await;
    backup.release().await?;
    let (mut report, error) = outcome?;
    report::write(&opts.report_dir, &mut report)?;
    match error {
        Some(e) if e.class() != Class::Corrupt => Err(e),
        _ => Ok(report),
    }
}

/// The test and its report, with the error that stopped it, if any.
async fn run(
    opts: &RestoreTestOptions,
    repo: &Repository,
    scratch: &ConnSpec,
    backup: &OpenBackup,
    progress: Arc<dyn Progress>,
) -> Result<(RestoreTestReport, Option<CommandError>), CommandError> {
    let (live, reader) = (backup.live(), backup.reader());
    let manifest = reader.manifest();
    let summary: Option<Summary> = repo
        .store()
        .get_opt(&BackupLayout::new(&live.bid).summary())
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok());
    let plan = load::plan::plan(
        &manifest.catalog,
        &PlanOptions {
            load: LoadOptions {
                jobs: opts.jobs,
                analyze: false,
                ..LoadOptions::default()
            },
            ..PlanOptions::default()
        },
    )?;
    // Only a scratch database that holds none of the backup's tables is ours to clean
    // up afterwards, whatever happens in between. Cleaning up unlinks the backup's
    // large objects' OIDs: they must not be someone else's.
    load::check_target(scratch, &plan.scope, &plan.load).await?;
    load::check_large_objects(scratch, manifest, &plan.scope, &plan.load).await?;
    let started = OffsetDateTime::now_utc();
    let clock = Instant::now();
    let mut report = RestoreTestReport {
        result: "FAIL".into(),
        backup_id: live.bid.clone(),
        backup_date: Some(live.created_at.clone()),
        backup_stored_bytes: summary.as_ref().map(|s| s.stored_bytes),
        backup_raw_bytes: crate::archive::backup_totals(repo, live, summary.as_ref())
            .await
            .map(|t| t.2),
        tester: who(),
        scratch_database: scratch.to_string(),
        restore_start: started.into(),
        restore_end: Timestamp::default(),
        restore_seconds: 0.0,
        check: RestoredCheck::default(),
        notes: Vec::new(),
        cleaned_up: false,
        report_json: String::new(),
        report_markdown: String::new(),
        failure_class: None,
    };
    let restored = load::restore::restore(scratch, repo, reader, &plan, progress).await;
    report.restore_end = Timestamp::now();
    report.restore_seconds = clock.elapsed().as_secs_f64();
    let mut error: Option<CommandError> = None;
    match restored.map(|r| r.failure()) {
        Err(e) => {
            report.notes.push(format!("the restore failed: {e}"));
            error = Some(e.into());
        }
        Ok(Some((class, why))) => {
            report.notes.push(format!("the restore failed: {why}"));
            report.failure_class = Some(class);
        }
        Ok(None) => match restored::check(scratch, manifest).await {
            Ok(check) => report.check = check,
            Err(e) => {
                report
                    .notes
                    .push(format!("could not inspect the scratch database: {e}"));
                error = Some(e.into());
            }
        },
    }
    if !opts.keep_scratch {
        clean_up(scratch, manifest, &mut report).await;
    }
    if let Some(e) = &error {
        report.failure_class = Some(e.class());
    }
    if report.failure_class.is_none() && report.check.failures() > 0 {
        report.failure_class = Some(Class::Corrupt);
        report.notes.push(format!(
            "{} check(s) failed: see the tables and the missing objects above",
            report.check.failures()
        ));
    }
    if report.failure_class.is_none() {
        report.result = "PASS".into();
        report
            .notes
            .push("all data restored and checked; no errors encountered".into());
    }
    Ok((report, error))
}

/// Drops what the restore made, noting what stayed.
async fn clean_up(scratch: &ConnSpec, manifest: &Manifest, report: &mut RestoreTestReport) {
    if let Err(e) = restored::drop_large_objects(scratch, manifest).await {
        report
            .notes
            .push(format!("could not drop the restored large objects: {e}"));
    }
    match restored::drop_restored(scratch, &manifest.catalog).await {
        Ok(leftover) => {
            report.cleaned_up = leftover.is_empty();
            report.notes.extend(leftover);
        }
        Err(e) => report
            .notes
            .push(format!("could not drop the restored objects: {e}")),
    }
}
