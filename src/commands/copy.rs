//! `pgbunker copy`: backups of one repository re-sealed into another and committed to
//! its catalog (3-2-1: a second copy off-site, under its own keys, with its own catalog
//! chain). What the second repository lists already is skipped, so `copy … all` from
//! cron copies what is new and a copy that stopped midway is finished by running it
//! again.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::audit::Audit;
use super::{CommandError, RepoAccess};
use crate::archive::copy::{copy_backup, Copied};
use crate::archive::{LiveBackup, LockNeed, ReadLock};
use crate::error::Outcome;
use crate::progress::Progress;

pub struct CopyOptions {
    pub from: RepoAccess,
    pub to: RepoAccess,
    /// A backup id (or a unique start of one), `latest`, or `all`.
    pub backup: String,
}

#[derive(Debug, Serialize)]
pub struct CopyReport {
    pub from: String,
    pub to: String,
    pub copied: Vec<Copied>,
    /// Backups the second repository lists already.
    pub skipped: Vec<String>,
    pub seconds: f64,
}

impl Outcome for CopyReport {}

/// Ids and counts only.
impl Audit for CopyReport {
    fn backup_id(&self) -> Option<String> {
        (self.copied.len() == 1).then(|| self.copied[0].backup_id.clone())
    }
    fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "copied": self.copied.iter().map(|c| &c.backup_id).collect::<Vec<_>>(),
            "skipped": self.skipped.len(),
            "new_chunks": self.copied.iter().map(|c| c.new_chunks).sum::<u64>(),
            "new_bytes": self.copied.iter().map(|c| c.new_bytes).sum::<u64>(),
            "seconds": self.seconds,
        })
    }
}

pub async fn copy(
    opts: &CopyOptions,
    progress: Arc<dyn Progress>,
) -> Result<CopyReport, CommandError> {
    let started = Instant::now();
    if opts.from.location == opts.to.location {
        return Err(CommandError::Usage(
            "--from and --to name the same repository".into(),
        ));
    }
    let from = opts.from.open().await?;
    let to = opts.to.open().await?;
    let mut wanted: Vec<LiveBackup> = if opts.backup == "all" {
        from.catalog().await?.live
    } else {
        vec![from.resolve(&opts.backup).await?]
    };
    // Oldest first: each copy can then store its chunks as deltas of the one before.
    wanted.sort_by(|a, b| a.bid.cmp(&b.bid));
    let there = to.catalog().await?.live;
    let (skipped, wanted): (Vec<LiveBackup>, Vec<LiveBackup>) = wanted
        .into_iter()
        .partition(|b| there.iter().any(|t| t.bid == b.bid));
    let mut copied = Vec::new();
    for live in &wanted {
        // Keeps prune in the first repository away from the backup while it is read.
        let lock = ReadLock::take(&from, live, LockNeed::Required).await?;
        let result = copy_backup(&from, &to, lock.live(), progress.as_ref()).await;
        lock.release().await?;
        copied.push(result?);
    }
    progress.finish();
    Ok(CopyReport {
        from: opts.from.location.clone(),
        to: opts.to.location.clone(),
        copied,
        skipped: skipped.into_iter().map(|b| b.bid).collect(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
