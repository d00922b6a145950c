//! `pgbunker list`: the backups in a repository, newest first.

use serde::Serialize;

use futures::StreamExt;

use super::{CommandError, RepoAccess};
use crate::archive::Timestamp;
use crate::archive::{BackupLayout, BackupReader, Repository, Summary};

/// Manifests read at once by `list`.
const READ_AHEAD: usize = 8;

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
    pub keep_until: Option<Timestamp>,
    pub created_at: Option<Timestamp>,
    pub duration_ms: Option<u64>,
    /// The database it was taken from (from its sealed manifest: complete backups).
    pub database: Option<String>,
    pub tables: Option<u64>,
    pub rows: Option<u64>,
    pub raw_bytes: Option<u64>,
    pub stored_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct ListReport {
    pub location: String,
    pub repo_id: String,
    /// The newest catalog entry: what a DR host passes as `--expect-seq`.
    pub catalog_seq: u64,
    /// The catalog entry this machine trusted without a mark to check it against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_contact: Option<crate::archive::Contact>,
    pub backups: Vec<BackupLine>,
}

impl crate::error::Outcome for ListReport {}

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
    let lines: Vec<Result<BackupLine, CommandError>> = futures::stream::iter(ids)
        .map(|bid| line(&repo, &cat, bid))
        .buffered(READ_AHEAD)
        .collect()
        .await;
    let mut backups = lines.into_iter().collect::<Result<Vec<_>, _>>()?;
    // Newest first. Ids carry whole seconds; the commit time orders backups that
    // started in the same second.
    let when = |b: &BackupLine| {
        b.created_at
            .as_ref()
            .and_then(Timestamp::time)
            .or_else(|| crate::archive::backup_started_at(&b.backup_id))
    };
    backups.sort_by(|a, b| (when(b), &b.backup_id).cmp(&(when(a), &a.backup_id)));
    Ok(ListReport {
        location: repo.store().location().into(),
        repo_id: repo.config().repo_id.clone(),
        catalog_seq: cat.seq,
        first_contact: repo.first_contact(),
        backups,
    })
}

/// One backup's line: its status from the catalog, times and stored size from its
/// summary, source database and totals from its manifest.
async fn line(
    repo: &Repository,
    cat: &crate::archive::CatalogState,
    bid: String,
) -> Result<BackupLine, CommandError> {
    let live = cat.live.iter().find(|b| b.bid == bid);
    let summary: Option<Summary> = repo
        .store()
        .get_opt(&BackupLayout::new(&bid).summary())
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok());
    let manifest = match live {
        Some(l) => BackupReader::open(repo, l).await.ok(),
        None => None,
    };
    let manifest = manifest.as_ref().map(BackupReader::manifest);
    let totals = manifest.map(|m| {
        (
            m.tables.len() as u64,
            m.tables.iter().map(|t| t.rows).sum::<u64>(),
            m.tables.iter().map(|t| t.raw_bytes).sum::<u64>(),
        )
    });
    let tombstoned = cat.tombstones.iter().any(|t| t.bid == bid);
    Ok(BackupLine {
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
        database: manifest.map(|m| m.source.database.clone()),
        tables: totals.map(|t| t.0),
        rows: totals.map(|t| t.1),
        raw_bytes: totals.map(|t| t.2),
        stored_bytes: summary.as_ref().map(|s| s.stored_bytes),
        backup_id: bid,
    })
}
