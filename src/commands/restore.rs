//! `pgbunker restore`: a backup into an empty database.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::{CommandError, RepoAccess};
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
        Ok::<_, CommandError>(load::run(&target, &reader, &opts.load, progress).await?)
    }
    .await;
    lock.release().await?;
    let out = loaded?;
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
        seconds: started.elapsed().as_secs_f64(),
    })
}
