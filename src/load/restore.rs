//! A whole restore into one database, the path `restore` and `demo` both run: the
//! target's checks, the pre-flight check of every chunk to load (so a damaged backup
//! is refused before anything is written), `--create`'s database, the load, and the
//! database's own settings last. The caller opens the backup and holds its lock.

use std::sync::Arc;
use std::time::Instant;

use thiserror::Error;

use super::database::{
    check_database, create_database, drop_created_database, maintenance, set_database_settings,
    DatabaseError,
};
use super::{LoadError, LoadOptions, LoadOutcome};
use crate::archive::{ArchiveError, BackupReader, Repository, LARGE_OBJECTS_TABLE_NO};
use crate::pg::{ConnSpec, PgError};
use crate::plan::scope::Scope;
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
    /// The pre-flight check found damage; nothing was written.
    #[error("backup {} failed the pre-flight check", .0.backup_id)]
    Preflight(Box<BackupVerdict>),
}

/// Restores `scope` of the backup `reader` opened into `target` with `opts` as they
/// run (see the restore verb). Returns what the load did and the seconds the
/// pre-flight check took (`None` when skipped).
pub async fn restore(
    target: &ConnSpec,
    repo: &Repository,
    reader: &BackupReader,
    scope: &Scope,
    opts: &LoadOptions,
    steps: Steps,
    progress: Arc<dyn Progress>,
) -> Result<(LoadOutcome, Option<f64>), RestoreError> {
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
            return Err(RestoreError::Preflight(Box::new(verdict)));
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
    Ok((out, preflight))
}
