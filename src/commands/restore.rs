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
//! report then lists what succeeded and what failed, and the command fails with it
//! ([`CommandError::RestoreIncomplete`]).

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::audit::Audit;
use super::{CommandError, RepoAccess};
use crate::archive::lock::{LockGuard, LockKind};
use crate::archive::BackupReader;
use crate::catalog::Catalog;
use crate::ddl;
use crate::load::restore::Steps;
use crate::load::{self, Failure, LoadOptions};
use crate::pg::ConnSpec;
use crate::plan::relocate::relocate;
use crate::plan::scope::{scope, Scope};
use crate::plan::select::Selection;
use crate::progress::Progress;
use crate::verify::{plural, BackupVerdict};

/// No `Debug`: the connection string may carry a password.
pub struct RestoreOptions {
    pub repo: RepoAccess,
    /// A backup id or `latest`.
    pub backup: String,
    pub target: Option<String>,
    pub load: LoadOptions,
    /// Run the pre-flight check. It reads the restored tables' chunks once more
    /// before loading; skip it only when the backup was just verified.
    pub preflight: bool,
    /// `-t/-n/-T/-N`: what to restore; everything when empty.
    pub selection: Selection,
    /// Also restore what the chosen tables need (see [`crate::plan::scope`]).
    pub with_dependencies: bool,
    /// Restore the chosen tables under this schema, beside the live ones.
    pub into_schema: Option<String>,
    /// Create the target database first (`--clean` drops it first).
    pub create: bool,
}

impl RestoreOptions {
    /// Options for restoring a whole backup with the defaults.
    pub fn whole(repo: RepoAccess, backup: String, target: Option<String>) -> RestoreOptions {
        RestoreOptions {
            repo,
            backup,
            target,
            load: LoadOptions::default(),
            preflight: true,
            selection: Selection::default(),
            with_dependencies: false,
            into_schema: None,
            create: false,
        }
    }
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
}

impl RestoreReport {
    /// Whether every table and statement succeeded.
    pub fn complete(&self) -> bool {
        self.failed.is_empty() && self.tables.iter().all(|t| t.error.is_none())
    }

    /// One line naming what failed.
    pub fn failure(&self) -> String {
        let tables: Vec<&str> = self
            .tables
            .iter()
            .filter(|t| t.error.is_some())
            .map(|t| t.table.as_str())
            .collect();
        let mut parts = Vec::new();
        if !tables.is_empty() {
            parts.push(format!(
                "{} of {} tables failed and were rolled back ({})",
                tables.len(),
                self.tables.len(),
                tables.join(", ")
            ));
        }
        if !self.failed.is_empty() {
            parts.push(format!("{} statements failed", self.failed.len()));
        }
        format!("restore incomplete: {}", parts.join("; "))
    }
}

/// The message of restore's refusal: the problems themselves (a few), since restore
/// prints no report.
pub(crate) fn preflight_failure(v: &BackupVerdict) -> String {
    const SHOWN: usize = 10;
    let mut out = format!(
        "restore refused: backup {} failed the pre-flight check with {}; nothing was \
         written to the target",
        v.backup_id,
        plural(v.problem_count(), "problem")
    );
    for p in v.problems.iter().take(SHOWN) {
        out.push_str(&format!("\n  {p}"));
    }
    let more = v.problem_count().saturating_sub(SHOWN as u64);
    if more > 0 {
        out.push_str(&format!("\n  … and {more} more"));
    }
    out
}

/// The part of the backup the options choose, as the restore will create it.
pub fn restore_scope(
    cat: &Catalog,
    opts: &RestoreOptions,
) -> Result<(Scope, Vec<String>), CommandError> {
    let mut scope = scope(cat, &opts.selection, opts.with_dependencies)
        .map_err(|e| CommandError::Usage(e.to_string()))?;
    ddl::map_roles(&mut scope.catalog, &opts.load.roles.map);
    let mut notes = Vec::new();
    if let Some(schema) = &opts.into_schema {
        let moved =
            relocate(scope.catalog, schema).map_err(|e| CommandError::Usage(e.to_string()))?;
        scope.catalog = moved.catalog;
        scope.ensure_schemas = vec![schema.clone()];
        scope.partial = true;
        notes = moved.notes;
    }
    Ok((scope, notes))
}

/// The load options as the restore runs them: beside the live tables, the copies get
/// no privileges (see [`crate::plan::relocate`]); with `--create`, `--clean` dropped
/// the whole database and there is nothing left to drop in it.
fn load_options(opts: &RestoreOptions) -> LoadOptions {
    let mut load = opts.load.clone();
    if opts.into_schema.is_some() {
        load.ddl.privileges = false;
    }
    if opts.create {
        load.clean = None;
    }
    load
}

pub async fn restore(
    opts: &RestoreOptions,
    progress: Arc<dyn Progress>,
) -> Result<RestoreReport, CommandError> {
    let started = Instant::now();
    let target = ConnSpec::parse(opts.target.as_deref())?;
    let repo = opts.repo.open().await?;
    let live = repo.resolve(&opts.backup).await?;
    let load_opts = load_options(opts);
    // The lock keeps prune away while we read; resolving again after taking it closes
    // the window in which prune could have tombstoned the backup.
    let lock = LockGuard::acquire(&repo, LockKind::Restore, &live.bid).await?;
    let loaded = async {
        let live = repo.resolve(&live.bid).await?;
        let reader = BackupReader::open(&repo, &live).await?;
        let (scope, notes) = restore_scope(&reader.manifest().catalog, opts)?;
        let steps = Steps {
            preflight: opts.preflight,
            create: opts.create.then_some(opts.load.clean),
        };
        let (mut out, preflight) =
            load::restore::restore(&target, &repo, &reader, &scope, &load_opts, steps, progress)
                .await?;
        out.warnings.splice(0..0, notes);
        Ok::<_, CommandError>((out, preflight, scope.partial))
    }
    .await;
    lock.release().await?;
    let (out, preflight_seconds, partial) = loaded?;
    let report = RestoreReport {
        backup_id: live.bid,
        target: target.to_string(),
        partial,
        rows: out.tables.iter().map(|t| t.rows).sum(),
        tables: out
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
            .collect(),
        statements: out.statements,
        failed: out.failed.clone(),
        warnings: out.warnings.clone(),
        preflight_seconds,
        seconds: started.elapsed().as_secs_f64(),
    };
    match out.failure_class() {
        None => Ok(report),
        Some(class) => Err(CommandError::RestoreIncomplete(Box::new(report), class)),
    }
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
            "rows": self.rows,
            "seconds": self.seconds,
        })
    }
}
