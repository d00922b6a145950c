//! `pgbunker restore`: a backup, or chosen tables of it, into an empty database, a new
//! one (`--create`), or one that already has them (`--clean`, `--data-only`).
//!
//! Loading checks every chunk as it goes, but by then the target already holds the
//! schema and the tables loaded so far: a damaged backup would leave a half-restored
//! database behind. So a pre-flight check first downloads every chunk of the restored
//! tables and compares its SHA-256 with the manifest (the `stored` depth of `verify`),
//! and restore refuses a damaged backup before writing anything.
//!
//! Once writing has begun, a table that fails is rolled back and the others go on; the
//! report then lists what succeeded and what failed, and its verdict fails the run.
//! `--dry-run` shows the same plan the restore executes ([`plan`]).

mod merge;

pub use merge::{merge, MergeReport};

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::audit::Audit;
use super::{CommandError, RepoAccess};
use crate::archive::OpenBackup;
use crate::error::{Class, Failed, Outcome};
use crate::load::plan::PlanOptions;
pub use crate::load::plan::{DryRun, Script};
use crate::load::restore::Restored;
use crate::load::{self, Failure};
use crate::mask::{LargeObjects, MaskRequest, MaskSummary};
use crate::pg::ConnSpec;
use crate::progress::Progress;
use crate::verify::BackupVerdict;

/// No `Debug`: the connection string may carry a password.
pub struct RestoreOptions {
    pub repo: RepoAccess,
    /// A backup id or `latest`.
    pub backup: String,
    pub target: Option<String>,
    pub plan: PlanOptions,
    /// `--mask`: the rules file.
    pub mask: Option<std::path::PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct RestoredTable {
    pub table: String,
    pub rows: u64,
    /// `restored`, or `failed` (rolled back: none of its rows were restored).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub backup_id: String,
    pub target: String,
    /// Only some tables were restored (`-t`, `-n`, …).
    pub partial: bool,
    pub tables: Vec<RestoredTable>,
    pub rows: u64,
    pub statements: usize,
    /// Statements that failed while the rest of the restore went on.
    pub failed: Vec<Failure>,
    /// Steps that failed or were left out without harming the restored data.
    pub warnings: Vec<String>,
    /// Time spent in the pre-flight check (`None` when skipped), part of `seconds`.
    pub preflight_seconds: Option<f64>,
    pub seconds: f64,
    /// The pre-flight check found this damage, and nothing was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<Box<BackupVerdict>>,
    /// `--mask`: the target holds masked rows, by these rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked: Option<MaskSummary>,
    /// The first failure's class (which the exit code tells) and the error line.
    #[serde(skip)]
    pub failure: Option<(Class, String)>,
}

impl RestoreReport {
    /// Whether every table and statement succeeded.
    pub fn complete(&self) -> bool {
        self.failure.is_none()
    }
}

impl Outcome for RestoreReport {
    fn failed(&self) -> Option<Failed> {
        let (class, message) = self.failure.clone()?;
        let hint = match &self.refused {
            Some(v) => format!(
                "`pgbunker verify --data {}` lists every problem; restore an older backup \
                 (`pgbunker verify all` shows which are sound)",
                v.backup_id
            ),
            None if self.tables.iter().all(|t| t.error.is_none()) => {
                "every table was restored; the statements named above failed (a foreign key \
                 that rows of the target violate, …): fix what they report, then run them \
                 again (`restore --sql` prints them whole)"
                    .into()
            }
            None => "the failed tables were rolled back and the report says why; fix the \
                     cause, then re-run the same restore with --clean (or --data-only for \
                     the failed tables) to complete it"
                .into(),
        };
        Some(Failed {
            class,
            message,
            hint: Some(hint),
        })
    }
}

/// `--dry-run`: the plan the restore would execute, from the manifest alone (no
/// target, no lock).
pub async fn plan(opts: &RestoreOptions) -> Result<DryRun, CommandError> {
    let (bid, reader, plan) = planned(opts).await?;
    Ok(plan.describe(&bid, reader.manifest()))
}

/// `--sql`: the restore written out as an SQL script, from the manifest alone.
pub async fn script(opts: &RestoreOptions) -> Result<Script, CommandError> {
    let (bid, reader, plan) = planned(opts).await?;
    Ok(plan.script(&bid, reader.manifest()))
}

/// The backup's id, its manifest and the plan, without a target or a lock.
async fn planned(
    opts: &RestoreOptions,
) -> Result<(String, crate::archive::BackupReader, load::plan::Plan), CommandError> {
    opts.plan.check()?;
    let repo = opts.repo.open().await?;
    let live = repo.resolve(&opts.backup).await?;
    let reader = crate::archive::BackupReader::open(&repo, &live).await?;
    let plan = load::plan::plan(&reader.manifest().catalog, &opts.plan)?;
    Ok((live.bid, reader, plan))
}

pub async fn restore(
    opts: &RestoreOptions,
    progress: Arc<dyn Progress>,
) -> Result<RestoreReport, CommandError> {
    opts.plan.check()?;
    let started = Instant::now();
    let target = ConnSpec::parse(opts.target.as_deref())?;
    let mask = opts.mask.as_deref().map(MaskRequest::read).transpose()?;
    let repo = opts.repo.open().await?;
    let backup = OpenBackup::open(&repo, &opts.backup).await?;
    let restored = async {
        let reader = backup.reader();
        let mut plan = load::plan::plan(&reader.manifest().catalog, &opts.plan)?;
        let masked = match &mask {
            Some(m) => Some(masked_plan(m, reader, opts, &mut plan).await?),
            None => None,
        };
        let restored = load::restore::restore(&target, &repo, reader, &plan, progress).await?;
        Ok::<_, CommandError>((restored, plan, masked))
    }
    .await;
    let backup_id = backup.live().bid.clone();
    backup.release().await?;
    let (restored, plan, masked) = restored?;
    let mut report = RestoreReport {
        backup_id,
        target: target.to_string(),
        partial: plan.scope.partial,
        tables: Vec::new(),
        rows: 0,
        statements: 0,
        failed: Vec::new(),
        warnings: Vec::new(),
        preflight_seconds: None,
        seconds: 0.0,
        refused: None,
        masked,
        failure: restored.failure(),
    };
    match restored {
        Restored::Refused(verdict) => report.refused = Some(verdict),
        Restored::Loaded(out, preflight_seconds) => {
            report.rows = out.tables.iter().map(|t| t.rows).sum();
            report.tables = out
                .tables
                .iter()
                .map(|t| RestoredTable {
                    table: t.name.clone(),
                    rows: t.rows,
                    status: if t.error.is_some() {
                        "failed"
                    } else {
                        "restored"
                    },
                    error: t.error.as_ref().map(|f| f.error.clone()),
                })
                .collect();
            report.statements = out.statements;
            report.failed = out.failed;
            report.warnings = plan.notes.into_iter().chain(out.warnings).collect();
            report.preflight_seconds = preflight_seconds;
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Compiles the rules for the chosen tables (by the backup's names, before any
/// `--into-schema` move) and makes the plan mask: rows masked on their way in, the
/// source's planner statistics left behind (they hold sample values), large objects
/// left out unless the rules keep them.
async fn masked_plan(
    mask: &MaskRequest,
    reader: &crate::archive::BackupReader,
    opts: &RestoreOptions,
    plan: &mut load::plan::Plan,
) -> Result<MaskSummary, CommandError> {
    let manifest = reader.manifest();
    let scope = crate::plan::scope::scope(
        &manifest.catalog,
        &opts.plan.selection,
        opts.plan.with_dependencies,
    )
    .map_err(load::plan::PlanError::from)?;
    let masking = mask.prepare(reader, &scope).await?;
    plan.notes.extend(masking.notes.iter().cloned());
    if masking.large_objects == LargeObjects::Drop
        && load::includes_large_objects(manifest, &plan.scope, &plan.load)
    {
        plan.load.large_objects = Some(false);
        plan.notes.push(format!(
            "{} large object(s) were not restored: their contents cannot be masked \
             (`large_objects = \"keep\"` in the rules carries them as they are)",
            manifest
                .large_objects
                .as_ref()
                .map_or(0, |l| l.objects.len())
        ));
    }
    let summary = masking.summary();
    plan.load.mask = Some(Arc::new(masking));
    Ok(summary)
}

impl Audit for RestoreReport {
    fn backup_id(&self) -> Option<String> {
        Some(self.backup_id.clone())
    }
    fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "target": self.target,
            "partial": self.partial,
            "tables": self.tables.len(),
            "failed": self.tables.iter().filter(|t| t.error.is_some()).count() + self.failed.len(),
            "preflight_problems": self.refused.as_ref().map(|v| v.problem_count()),
            "masked": self.masked.as_ref().map(|m| serde_json::json!({
                "rules_sha256": m.rules_sha256,
                "columns": m.columns.len(),
            })),
            "rows": self.rows,
            "seconds": self.seconds,
        })
    }
}
