//! `pgbunker restore`: a backup into an empty database.
//!
//! Loading checks every chunk as it goes, but by then the target already holds the
//! schema and the tables loaded so far: a damaged backup would leave a half-restored
//! database behind. So a pre-flight check first downloads every chunk and compares its
//! SHA-256 with the manifest (the `stored` depth of `verify`), and restore refuses a
//! damaged backup before writing anything.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::audit::Audit;
use super::{verify, CommandError, RepoAccess};
use crate::archive::lock::{LockGuard, LockKind};
use crate::archive::BackupReader;
use crate::load::{self, LoadOptions};
use crate::pg::ConnSpec;
use crate::progress::Progress;

/// No `Debug`: the connection string may carry a password.
pub struct RestoreOptions {
    pub repo: RepoAccess,
    /// A backup id or `latest`.
    pub backup: String,
    pub target: Option<String>,
    pub load: LoadOptions,
    /// Run the pre-flight check. It reads the whole backup once more before loading;
    /// skip it only when the backup was just verified.
    pub preflight: bool,
}

#[derive(Debug, Serialize)]
pub struct RestoredTable {
    pub table: String,
    pub rows: u64,
}

#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub backup_id: String,
    pub target: String,
    pub tables: Vec<RestoredTable>,
    pub rows: u64,
    pub statements: usize,
    /// Steps that failed without harming the restored data (an ANALYZE).
    pub warnings: Vec<String>,
    /// Time spent in the pre-flight check (`None` when skipped), part of `seconds`.
    pub preflight_seconds: Option<f64>,
    pub seconds: f64,
}

pub async fn restore(
    opts: &RestoreOptions,
    progress: Arc<dyn Progress>,
) -> Result<RestoreReport, CommandError> {
    let started = Instant::now();
    let target = ConnSpec::parse(opts.target.as_deref())?;
    let repo = opts.repo.open().await?;
    let live = repo.resolve(&opts.backup).await?;
    // The lock keeps prune away while we read; resolving again after taking it closes
    // the window in which prune could have tombstoned the backup.
    let lock = LockGuard::acquire(&repo, LockKind::Restore, &live.bid).await?;
    let loaded = async {
        let live = repo.resolve(&live.bid).await?;
        let reader = BackupReader::open(&repo, &live).await?;
        // A target that cannot take the restore must not cost a whole pre-flight first.
        load::check_target(&target, &reader).await?;
        let checked = Instant::now();
        let preflight = if opts.preflight {
            progress.phase("pre-flight check: every chunk's presence, length and SHA-256");
            verify::preflight(&repo, &reader, opts.load.jobs, progress.as_ref()).await?;
            Some(checked.elapsed().as_secs_f64())
        } else {
            None
        };
        let out = load::run(&target, &reader, &opts.load, progress).await?;
        Ok::<_, CommandError>((out, preflight))
    }
    .await;
    lock.release().await?;
    let (out, preflight_seconds) = loaded?;
    Ok(RestoreReport {
        backup_id: live.bid,
        target: target.to_string(),
        rows: out.tables.iter().map(|t| t.rows).sum(),
        tables: out
            .tables
            .into_iter()
            .map(|t| RestoredTable {
                table: t.name,
                rows: t.rows,
            })
            .collect(),
        statements: out.statements,
        warnings: out.warnings,
        preflight_seconds,
        seconds: started.elapsed().as_secs_f64(),
    })
}

impl Audit for RestoreReport {
    fn backup_id(&self) -> Option<String> {
        Some(self.backup_id.clone())
    }
    fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "target": self.target,
            "tables": self.tables.len(),
            "rows": self.rows,
            "seconds": self.seconds,
        })
    }
}
