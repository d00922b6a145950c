//! `pgbunker list`: the backups in a repository, newest first.

use serde::Serialize;

use super::{CommandError, RepoAccess};
use crate::archive::{BackupLayout, Summary};

#[derive(Debug)]
pub struct ListOptions {
    pub repo: RepoAccess,
}

#[derive(Debug, Serialize)]
pub struct BackupLine {
    pub backup_id: String,
    /// `complete` when the catalog lists it; `tombstoned` when prune removed it (its
    /// objects go after the grace period); `incomplete` for leftovers of an
    /// interrupted or failed run. Only `complete` backups are restorable.
    pub status: String,
    pub legal_hold: bool,
    pub keep_until: Option<String>,
    pub created_at: Option<String>,
    pub duration_ms: Option<u64>,
    pub tables: Option<u64>,
    pub rows: Option<u64>,
    pub raw_bytes: Option<u64>,
    pub stored_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct ListReport {
    pub location: String,
    pub repo_id: String,
    pub backups: Vec<BackupLine>,
}

pub async fn list(opts: &ListOptions) -> Result<ListReport, CommandError> {
    let repo = opts.repo.open().await?;
    let cat = repo.catalog().await?;
    let dirs = repo.store().list_dirs(crate::archive::BACKUPS_DIR).await?;
    let mut ids: Vec<String> = cat.live.iter().map(|b| b.bid.clone()).collect();
    ids.extend(
        dirs.into_iter()
            .filter(|d| !ids.contains(d))
            .collect::<Vec<_>>(),
    );
    let mut backups = Vec::new();
    for bid in ids {
        let live = cat.live.iter().find(|b| b.bid == bid);
        let summary: Option<Summary> = repo
            .store()
            .get_opt(&BackupLayout::new(&bid).summary())
            .await?
            .and_then(|b| serde_json::from_slice(&b).ok());
        let tombstoned = cat.tombstones.iter().any(|t| t.bid == bid);
        backups.push(BackupLine {
            status: match (live, tombstoned) {
                (Some(_), _) => "complete",
                (None, true) => "tombstoned",
                (None, false) => "incomplete",
            }
            .into(),
            legal_hold: live.is_some_and(|l| l.legal_hold),
            keep_until: live.and_then(|l| l.keep_until.clone()),
            created_at: live
                .map(|l| l.created_at.clone())
                .or_else(|| summary.as_ref().map(|s| s.finished_at.clone())),
            duration_ms: summary.as_ref().map(|s| s.duration_ms),
            tables: summary.as_ref().map(|s| s.tables),
            rows: summary.as_ref().map(|s| s.rows),
            raw_bytes: summary.as_ref().map(|s| s.raw_bytes),
            stored_bytes: summary.as_ref().map(|s| s.stored_bytes),
            backup_id: bid,
        });
    }
    // Newest first. Ids carry whole seconds; the commit time orders backups that
    // started in the same second.
    let when = |b: &BackupLine| {
        b.created_at
            .as_deref()
            .and_then(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .or_else(|| crate::archive::backup_started_at(&b.backup_id))
    };
    backups.sort_by(|a, b| (when(b), &b.backup_id).cmp(&(when(a), &a.backup_id)));
    Ok(ListReport {
        location: repo.store().location().into(),
        repo_id: repo.config().repo_id.clone(),
        backups,
    })
}
