//! Prune's sweep: what the retention decision tombstoned, and what interrupted
//! backups left behind, loses its objects once its grace period is over and no one
//! holds it. Prune acts on what the repository says, so grace periods count from
//! when this machine first saw a tombstone or a complete-looking leftover (its trust
//! trail), never from a time someone wrote; locks dated in the future count from when
//! they were first seen.

use time::OffsetDateTime;

use super::chunk_sweep::{sweep_chunks, ChunkSweep};
use super::lock::{self, LockInfo, LockKind};
use super::retention::KeepWithin;
use super::timestamp::Timestamp;
use super::trust::{self, Notice, CLOCK_SKEW};
use super::{backup_started_at, ArchiveError, Repository, BACKUPS_DIR};

/// What the sweep deleted, or (in a dry run) would delete, and what still waits.
#[derive(Debug, Default)]
pub struct Swept {
    /// Tombstoned backups whose objects went.
    pub deleted: Vec<String>,
    /// Tombstoned backups inside their grace period or in use.
    pub waiting: Vec<String>,
    pub leftovers_deleted: Vec<String>,
    pub objects_deleted: u64,
    /// The shared chunks (format 5) no manifest lists any more.
    pub chunks: ChunkSweep,
}

/// Sweeps with `grace` (`None`: none) at `now`. Without a state folder nothing is
/// deleted: grace periods cannot be counted. `would_tombstone` (a dry run's
/// decisions) shows as waiting.
pub async fn sweep(
    repo: &Repository,
    grace: Option<&KeepWithin>,
    now: OffsetDateTime,
    dry_run: bool,
    would_tombstone: &[String],
) -> Result<Swept, ArchiveError> {
    let past_grace = |t: OffsetDateTime| match grace {
        None => true,
        Some(g) => g.cutoff(now).is_some_and(|c| t <= c),
    };
    let state = repo.state_dir().cloned();
    let mut out = Swept::default();
    // Sweep: tombstones past the grace period (counted from when this machine first
    // saw them) and not in use lose their objects. Reading the catalog records when
    // new tombstones were first seen.
    let cat = repo.catalog().await?;
    let trail = match &state {
        Some(dir) => Some(trust::load_trail(dir, repo)?),
        None => None,
    };
    let first_seen = |bid: &str| trail.as_ref().and_then(|t| t.first_seen(bid));
    let mut swept = Vec::new();
    for t in &cat.tombstones {
        let seen = first_seen(&t.bid).unwrap_or(now);
        // Locks are read again right before deleting: a restore may have started
        // since this run began.
        if state.is_none()
            || !past_grace(seen)
            || locked(repo, &t.bid, LockKind::Restore, now).await?
        {
            out.waiting.push(t.bid.clone());
            continue;
        }
        if !dry_run {
            out.objects_deleted += repo.delete_backup_objects(&t.bid).await?.unwrap_or(0);
        }
        swept.push(t.bid.clone());
    }
    if !dry_run {
        repo.forget_tombstones(&swept).await?;
    }
    out.deleted = swept;
    if dry_run {
        // What this run would tombstone starts its grace period now.
        out.waiting.extend(would_tombstone.iter().cloned());
    }

    // Leftovers: folders no catalog entry names, older than the grace period, not
    // held by a running backup. One that looks complete may be a committed backup
    // whose catalog entries were deleted: its grace also counts from when this
    // machine first saw it so.
    let named = |bid: &str| {
        cat.live.iter().any(|b| b.bid == bid) || cat.tombstones.iter().any(|t| t.bid == bid)
    };
    let dirs = repo.store().list_dirs(BACKUPS_DIR).await?;
    let mut complete = Vec::new();
    for bid in &dirs {
        if !named(bid) && trust::complete_looking(repo, bid).await? {
            complete.push(bid.clone());
        }
    }
    if let Some(dir) = &state {
        let now_text = Timestamp::from(now);
        trust::update_trail(dir, repo, |t| {
            for bid in &complete {
                t.first_seen
                    .entry(bid.clone())
                    .or_insert_with(|| now_text.clone());
            }
            // Forget what is gone for good.
            t.first_seen.retain(|bid, _| {
                dirs.contains(bid) || cat.tombstones.iter().any(|x| &x.bid == bid)
            });
        })?;
    }
    let trail = match &state {
        Some(dir) => Some(trust::load_trail(dir, repo)?),
        None => None,
    };
    for bid in dirs {
        if named(&bid) || !past_grace(backup_started_at(&bid).unwrap_or(now)) {
            continue;
        }
        if complete.contains(&bid) {
            let seen = trail.as_ref().and_then(|t| t.first_seen(&bid));
            if !past_grace(seen.unwrap_or(now)) {
                continue;
            }
        }
        // A backup writes its lock before its first object: read the locks now, after
        // listing, so a backup that started meanwhile is seen.
        if state.is_none() || locked(repo, &bid, LockKind::Backup, now).await? {
            continue;
        }
        if dry_run {
            out.leftovers_deleted.push(bid);
        } else if let Some(n) = repo.delete_backup_objects(&bid).await? {
            // `None`: it committed since we looked; it is no leftover.
            out.objects_deleted += n;
            out.leftovers_deleted.push(bid);
        }
    }

    // Chunks last, once the backups above lost their manifests. Their grace counts
    // from when the store last wrote them (the store's clock, not a writer's).
    let cutoff = grace.map(|g| g.cutoff(now).unwrap_or(OffsetDateTime::UNIX_EPOCH));
    out.chunks = sweep_chunks(repo, cutoff, now, dry_run).await?;

    // Locks whose holder died long ago are only clutter.
    if !dry_run {
        for (key, refreshed) in lock_view(repo, now).await?.stale {
            if past_grace(refreshed) {
                repo.store().delete(&key).await?;
            }
        }
    }

    Ok(out)
}

/// The locks as prune believes them: live ones, dead ones with the refresh time they
/// are believed to have, and objects that are no locks.
pub struct LockView {
    pub live: Vec<LockInfo>,
    pub stale: Vec<(String, OffsetDateTime)>,
    pub malformed: Vec<(String, String)>,
}

/// Reads the locks. A `refreshed_at` in the future beyond the clock skew counts from
/// when this machine first saw it (without a state folder: from now), so a planted
/// lock dies like any lock whose holder stopped refreshing.
pub async fn lock_view(repo: &Repository, now: OffsetDateTime) -> Result<LockView, ArchiveError> {
    let scan = lock::all_locks(repo).await?;
    for (key, error) in &scan.malformed {
        repo.trust().notice(Notice::MalformedLock {
            key: key.clone(),
            error: error.clone(),
        });
    }
    let believed: Vec<OffsetDateTime> = match repo.state_dir() {
        Some(dir) => trust::update_trail(dir, repo, |t| {
            let out = scan
                .locks
                .iter()
                .map(|(key, info)| trust::believed_refresh(t, key, info, now))
                .collect();
            t.locks
                .retain(|key, _| scan.locks.iter().any(|(k, _)| k == key));
            out
        })?,
        None => scan
            .locks
            .iter()
            .map(|(_, l)| {
                if l.refreshed_at > now + CLOCK_SKEW {
                    now
                } else {
                    l.refreshed_at
                }
            })
            .collect(),
    };
    let mut view = LockView {
        live: Vec::new(),
        stale: Vec::new(),
        malformed: scan.malformed,
    };
    for ((key, info), refreshed) in scan.locks.into_iter().zip(believed) {
        if info.is_live_since(now, refreshed) {
            view.live.push(info);
        } else {
            view.stale.push((key, refreshed));
        }
    }
    Ok(view)
}

async fn locked(
    repo: &Repository,
    bid: &str,
    kind: LockKind,
    now: OffsetDateTime,
) -> Result<bool, ArchiveError> {
    Ok(lock_view(repo, now)
        .await?
        .live
        .iter()
        .any(|l| l.bid == bid && l.kind == kind))
}
