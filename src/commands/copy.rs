//! `pgbunker copy`: backups of one repository re-sealed into another and committed to
//! its catalog (3-2-1: a second copy off-site, under its own keys, with its own catalog
//! chain). `all` means what is newer than the newest backup the second repository holds,
//! so `copy … all` from cron copies what is new, never brings back what the second
//! repository's own retention pruned, and finishes a copy that stopped midway. A backup
//! that cannot be copied is named and the others go on.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::audit::Audit;
use super::{CommandError, RepoAccess};
use crate::archive::copy::{copy_backup, Copied};
use crate::archive::{LiveBackup, LockNeed, ReadLock};
use crate::error::{Class, Classify, Failed, Outcome};
use crate::progress::Progress;

pub struct CopyOptions {
    pub from: RepoAccess,
    pub to: RepoAccess,
    /// A backup id (or a unique start of one), `latest`, or `all`.
    pub backup: String,
}

/// A backup that could not be copied; the others went on.
#[derive(Debug, Serialize)]
pub struct NotCopied {
    pub backup_id: String,
    pub error: String,
    #[serde(skip)]
    class: Class,
}

#[derive(Debug, Serialize)]
pub struct CopyReport {
    pub from: String,
    pub to: String,
    pub copied: Vec<Copied>,
    /// Backups the second repository lists already, or pruned.
    pub skipped: Vec<String>,
    pub failed: Vec<NotCopied>,
    pub seconds: f64,
}

impl Outcome for CopyReport {
    fn failed(&self) -> Option<Failed> {
        let first = self.failed.first()?;
        Some(Failed {
            class: first.class,
            message: format!(
                "{} backup(s) not copied, the first {}: {}",
                self.failed.len(),
                first.backup_id,
                first.error
            ),
            hint: Some(
                "the others were copied; `pgbunker verify --data` on the first repository \
                 shows what is wrong with a backup that does not read, and the same copy \
                 command run again copies the rest"
                    .into(),
            ),
        })
    }
}

/// Ids and counts only.
impl Audit for CopyReport {
    fn backup_id(&self) -> Option<String> {
        (self.copied.len() == 1).then(|| self.copied[0].backup_id.clone())
    }
    fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "copied": self.copied.iter().map(|c| &c.backup_id).collect::<Vec<_>>(),
            "skipped": self.skipped.len(),
            "failed": self.failed.iter().map(|f| &f.backup_id).collect::<Vec<_>>(),
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
    let there = to.catalog().await?;
    // What the second repository has, or had and pruned: its retention decides there.
    let had = |b: &LiveBackup| {
        there.live.iter().any(|t| t.bid == b.bid) || there.tombstones.iter().any(|t| t.bid == b.bid)
    };
    let mut wanted: Vec<LiveBackup> = if opts.backup == "all" {
        // Newer than the newest it holds: the older ones were copied, or pruned there.
        let newest = crate::archive::trust::newest(&there.live).map(|b| b.created_at.time());
        from.catalog()
            .await?
            .live
            .into_iter()
            .filter(|b| newest.is_none_or(|n| b.created_at.time() > n))
            .collect()
    } else {
        vec![from.resolve(&opts.backup).await?]
    };
    // Oldest first: each copy can then store its chunks as deltas of the one before.
    wanted.sort_by(|a, b| (a.created_at.time(), &a.bid).cmp(&(b.created_at.time(), &b.bid)));
    let (skipped, wanted): (Vec<LiveBackup>, Vec<LiveBackup>) = wanted.into_iter().partition(had);
    let mut copied = Vec::new();
    let mut failed = Vec::new();
    for live in &wanted {
        // Keeps prune in the first repository away from the backup while it is read.
        let lock = ReadLock::take(&from, live, LockNeed::Required).await?;
        let result = copy_backup(&from, &to, lock.live(), progress.as_ref()).await;
        lock.release().await?;
        match result {
            Ok(c) => copied.push(c),
            // One backup that does not read must not keep the newer ones from going
            // off-site.
            Err(e) => failed.push(NotCopied {
                backup_id: live.bid.clone(),
                class: e.class(),
                error: e.to_string(),
            }),
        }
    }
    progress.finish();
    Ok(CopyReport {
        from: opts.from.location.clone(),
        to: opts.to.location.clone(),
        copied,
        skipped: skipped.into_iter().map(|b| b.bid).collect(),
        failed,
        seconds: started.elapsed().as_secs_f64(),
    })
}
