//! Mark and sweep of the content-addressed chunks (format 5): a chunk goes only when
//! no manifest still in the repository lists it, as a chunk or as a delta's base (live
//! backups, and tombstoned ones whose objects are not deleted yet), and it was last
//! written before the grace period.
//!
//! The race restic's prune is known for, a backup reusing a chunk that prune is
//! deleting, cannot happen: a backup writes its lock, then waits for any sweep to end
//! ([`wait_for_sweeps`]) before it reads which chunks are stored; a sweep writes its
//! lock, then gives up if any backup holds one. Each writes before it reads, so at
//! least one of them sees the other. A backup's lock stays until it commits, so every
//! chunk it relies on is listed by a manifest before any later sweep can start.

use std::collections::HashSet;
use std::time::Duration;

use time::OffsetDateTime;

use super::chain::LiveBackup;
use super::layout::{self, BackupLayout};
use super::lock::{LockGuard, LockKind, STALE_AFTER};
use super::sweep::lock_view;
use super::{ArchiveError, BackupReader, Repository};

/// What the sweep of shared chunks did (or, in a dry run, would do).
#[derive(Debug, Default, Clone)]
pub struct ChunkSweep {
    /// Chunks some manifest lists.
    pub referenced: u64,
    pub deleted: u64,
    pub deleted_bytes: u64,
    /// Listed by no manifest, but written inside the grace period.
    pub waiting: u64,
    /// Why nothing was swept this time (a backup was running, a manifest did not open).
    pub deferred: Option<String>,
}

/// Deletes the chunks no manifest lists that were last written at or before `cutoff`
/// (`None`: at any time).
pub async fn sweep_chunks(
    repo: &Repository,
    cutoff: Option<OffsetDateTime>,
    now: OffsetDateTime,
    dry_run: bool,
) -> Result<ChunkSweep, ArchiveError> {
    let listed = repo.store().list_meta(layout::CHUNKS).await?;
    if listed.is_empty() {
        return Ok(ChunkSweep::default());
    }
    // A dry run deletes nothing, so it need not keep backups from starting.
    let guard = if dry_run {
        None
    } else {
        Some(LockGuard::acquire(repo, LockKind::Sweep, "chunks").await?)
    };
    let out = match running_backup(repo, now).await? {
        Some(bid) => Ok(ChunkSweep {
            deferred: Some(format!("backup {bid} is running")),
            ..Default::default()
        }),
        None => sweep_unlisted(repo, listed, cutoff, dry_run).await,
    };
    if let Some(g) = guard {
        g.release().await?;
    }
    out
}

async fn running_backup(
    repo: &Repository,
    now: OffsetDateTime,
) -> Result<Option<String>, ArchiveError> {
    Ok(lock_view(repo, now)
        .await?
        .live
        .into_iter()
        .find(|l| l.kind == LockKind::Backup)
        .map(|l| l.bid))
}

async fn sweep_unlisted(
    repo: &Repository,
    listed: Vec<crate::store::Listed>,
    cutoff: Option<OffsetDateTime>,
    dry_run: bool,
) -> Result<ChunkSweep, ArchiveError> {
    let referenced = match referenced_chunks(repo).await? {
        Ok(ids) => ids,
        Err(why) => {
            return Ok(ChunkSweep {
                deferred: Some(why),
                ..Default::default()
            })
        }
    };
    let mut out = ChunkSweep {
        referenced: referenced.len() as u64,
        ..Default::default()
    };
    for object in listed {
        let Some(id) = layout::parse_shared_chunk(&object.key) else {
            continue; // not a chunk: nothing of ours to judge
        };
        if referenced.contains(id) {
            continue;
        }
        if cutoff.is_some_and(|c| object.modified > c) {
            out.waiting += 1;
            continue;
        }
        if !dry_run {
            repo.store().delete(&object.key).await?;
        }
        out.deleted += 1;
        out.deleted_bytes += object.size;
    }
    if !dry_run {
        repo.store().remove_empty_dirs(layout::CHUNKS);
    }
    Ok(out)
}

/// The ids every manifest still in the repository lists, or why they cannot all be
/// known (then nothing may be deleted).
pub async fn referenced_chunks(
    repo: &Repository,
) -> Result<Result<HashSet<String>, String>, ArchiveError> {
    let cat = repo.catalog().await?;
    let mut manifests: Vec<LiveBackup> = cat.live.clone();
    for t in &cat.tombstones {
        let layout = BackupLayout::new(&t.bid);
        let Some(head) = repo.store().get_opt(&layout.manifest()).await? else {
            continue; // its objects are gone already
        };
        match &t.manifest_sha256 {
            Some(sha) => manifests.push(LiveBackup {
                bid: t.bid.clone(),
                manifest_sha256: sha.clone(),
                created_at: t.at.clone(),
                keep_until: None,
                legal_hold: false,
                generation: t.generation,
            }),
            // Tombstoned before tombstones kept their manifest's hash: a full copy
            // lists no shared chunk, anything else cannot be read safely.
            None if super::manifest::lists_shared_chunks(&head) => {
                return Ok(Err(format!(
                    "tombstoned backup {} lists shared chunks, but its tombstone does not say \
                     which manifest is its own",
                    t.bid
                )))
            }
            None => {}
        }
    }
    let mut ids = HashSet::new();
    for live in &manifests {
        let reader = match BackupReader::open(repo, live).await {
            Ok(r) => r,
            Err(e) => {
                return Ok(Err(format!(
                    "the manifest of backup {} does not open ({e})",
                    live.bid
                )))
            }
        };
        for c in reader.manifest().all_chunks() {
            // A delta's base is kept as long as the delta is.
            ids.extend(c.id.iter().chain(c.bases.iter().map(|b| &b.id)).cloned());
        }
    }
    Ok(Ok(ids))
}

/// Waits while a sweep of shared chunks runs (its lock is live); called by a backup
/// once its own lock is written, before it reads which chunks are stored.
pub(crate) async fn wait_for_sweeps(repo: &Repository) -> Result<(), ArchiveError> {
    let started = std::time::Instant::now();
    loop {
        let now = OffsetDateTime::now_utc();
        let sweeping = lock_view(repo, now)
            .await?
            .live
            .iter()
            .any(|l| l.kind == LockKind::Sweep);
        if !sweeping {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(STALE_AFTER.whole_seconds() as u64) {
            return Err(ArchiveError::Corrupt(
                "a prune has been sweeping chunks for 10 minutes; try again later".into(),
            ));
        }
        tracing::info!("waiting for a prune to finish sweeping chunks");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
