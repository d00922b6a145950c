//! A whole restore into one database, the path `restore` and `demo` both run: the
//! target's checks, the pre-flight check of every chunk to load (so a damaged backup
//! is refused before anything is written), `--create`'s database, the load, and the
//! database's own settings last. The caller opens the backup and holds its lock.
//! A pre-flight that finds damage is an outcome, not an error: the verdict is the
//! answer, and nothing was written.

use std::sync::Arc;
use std::time::Instant;

use thiserror::Error;

use super::database::{
    check_database, create_database, drop_created_database, maintenance, set_database_settings,
    DatabaseError,
};
use super::plan::Plan;
use super::{LoadError, LoadOutcome};
use crate::archive::{ArchiveError, BackupReader, Repository, LARGE_OBJECTS_TABLE_NO};
use crate::error::Class;
use crate::pg::{ConnSpec, PgError};
use crate::progress::Progress;
use crate::verify::{self, BackupVerdict};

/// The steps around the load.
#[derive(Debug, Clone, Copy, Default)]
pub struct Steps {
    /// Run the pre-flight check. It reads the restored tables' chunks once more before
    /// loading; skip it only when the backup was just verified.
    pub preflight: bool,
    /// `--create`: make the target database first, with `--clean`'s value (it drops
    /// the database first); `None` restores into a database that exists.
    pub create: Option<Option<bool>>,
}

#[derive(Debug, Error)]
pub enum RestoreError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Pg(#[from] PgError),
}

/// How a restore that ran its course ended.
#[derive(Debug)]
pub enum Restored {
    /// The load ran (some tables may have failed: the outcome says), after a
    /// pre-flight check that took these seconds (`None` when skipped).
    Loaded(LoadOutcome, Option<f64>),
    /// The pre-flight check found damage, and nothing was written.
    Refused(Box<BackupVerdict>),
}

impl Restored {
    /// When the restore refused or some of it failed: the class and the error line.
    pub fn failure(&self) -> Option<(Class, String)> {
        match self {
            Restored::Loaded(out, _) => out.incomplete(),
            Restored::Refused(v) => Some((Class::Corrupt, refusal(v))),
        }
    }
}

/// The message of a refusal: the problems themselves (a few), since a refused
/// restore prints no report.
fn refusal(v: &BackupVerdict) -> String {
    const SHOWN: usize = 10;
    let mut out = format!(
        "restore refused: backup {} failed the pre-flight check with {}; nothing was \
         written to the target",
        v.backup_id,
        verify::plural(v.problem_count(), "problem")
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

/// Runs `plan` for the backup `reader` opened into `target` (see the restore verb).
pub async fn restore(
    target: &ConnSpec,
    repo: &Repository,
    reader: &BackupReader,
    plan: &Plan,
    progress: Arc<dyn Progress>,
) -> Result<Restored, RestoreError> {
    let (scope, opts, steps) = (&plan.scope, &plan.load, plan.steps);
    // A target that cannot take the restore must not cost a whole pre-flight first.
    if let Some(clean) = steps.create {
        check_database(target, clean.is_some()).await?;
        let client = maintenance(target).connect().await?;
        super::check_roles(&client, scope, opts).await?;
    } else {
        super::check_target(target, scope, opts).await?;
        super::check_large_objects(target, reader.manifest(), scope, opts).await?;
    }
    let checked = Instant::now();
    let preflight = if steps.preflight && opts.sections.data {
        progress.phase("pre-flight check: every chunk's presence, length and SHA-256");
        let mut tables: Vec<u32> = scope.table_numbers.clone();
        if super::includes_large_objects(reader.manifest(), scope, opts) {
            tables.push(LARGE_OBJECTS_TABLE_NO);
        }
        let verdict =
            verify::preflight(repo, reader, &tables, opts.jobs, progress.as_ref()).await?;
        if !verdict.ok {
            return Ok(Restored::Refused(Box::new(verdict)));
        }
        Some(checked.elapsed().as_secs_f64())
    } else {
        None
    };
    if let Some(clean) = steps.create {
        create_database(target, &scope.catalog, clean, opts).await?;
    }
    let out = match super::run(target, reader, scope, opts, progress).await {
        Ok(out) => out,
        // What --create made and the restore could not fill goes again, so that the
        // same command can simply be run once more.
        Err(e) if steps.create.is_some() => {
            drop_created_database(target).await;
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    if steps.create.is_some() {
        set_database_settings(target, &scope.catalog).await?;
    }
    Ok(Restored::Loaded(out, preflight))
}
