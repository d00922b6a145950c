//! `pgbunker prune`: apply the retention policy, tombstone first, delete after the
//! grace period, and clean up leftovers of interrupted backups.
//!
//! Prune is the one command that destroys data, and it acts on what the repository
//! says; so it believes the repository only as far as this machine can check it (see
//! `archive::trust`). Grace periods count from when this machine first saw a
//! tombstone or a complete-looking leftover, never from a time someone wrote; removals
//! made by another client in bulk (or of the newest backup) wait for `--accept-removal`;
//! a complete-looking backup newer than every committed one stops the run, because it
//! is what deleting the newest catalog entries leaves behind.

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::audit::Audit;
use super::{CommandError, RepoAccess};
use crate::archive::lock::{self, LockInfo, LockKind};
use crate::archive::retention::{self, Candidate, KeepWithin, RetentionPolicy};
use crate::archive::{
    backup_started_at, trust, ArchiveError, Contact, Notice, Repository, TrustError, BACKUPS_DIR,
    CLOCK_SKEW,
};

/// Tombstoned backups and leftovers younger than this are left alone: a restore
/// may still be reading them, a backup may still be writing them.
pub const DEFAULT_GRACE: &str = "24h";

#[derive(Debug)]
pub struct PruneOptions {
    pub repo: RepoAccess,
    pub policy: RetentionPolicy,
    /// `None` deletes tombstoned backups and leftovers at once.
    pub grace: Option<KeepWithin>,
    /// Decide and report, change nothing.
    pub dry_run: bool,
    /// The clock; `None` is now. Tests inject time here.
    pub now: Option<OffsetDateTime>,
    /// Catalog entries of other clients that removed several backups (or the newest)
    /// and that the operator accepts (`--accept-removal SEQ`).
    pub accept_removals: Vec<u64>,
    /// Go on although complete-looking backups newer than every committed one are
    /// missing from the catalog (`--force`); they still wait out the grace period.
    pub force: bool,
}

#[derive(Debug, Serialize)]
pub struct KeptLine {
    pub backup_id: String,
    pub created_at: String,
    pub reasons: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    pub now: String,
    /// Live backups the policy keeps, with why.
    pub kept: Vec<KeptLine>,
    /// Backups tombstoned by this run (no longer restorable; objects deleted after the
    /// grace period).
    pub tombstoned: Vec<String>,
    /// Tombstoned backups whose objects this run deleted.
    pub deleted: Vec<String>,
    /// Tombstoned backups still inside the grace period or in use.
    pub waiting: Vec<String>,
    /// Leftovers of interrupted or failed backups that this run deleted.
    pub leftovers_deleted: Vec<String>,
    pub objects_deleted: u64,
    /// The catalog entry this machine trusted without a mark to check it against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_contact: Option<Contact>,
    /// Other clients' removals accepted by this run (`--accept-removal`).
    pub accepted_removals: Vec<u64>,
    /// Complete-looking backups newer than every committed one, kept (`--force`).
    pub unlisted_kept: Vec<String>,
    /// Lock objects that did not parse, with why: ignored, they protect nothing.
    pub malformed_locks: Vec<String>,
    /// Why nothing was deleted although the grace period allowed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletions_skipped: Option<String>,
}

fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("formatting a timestamp")
}

fn parse_ts(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Without a state folder this machine cannot know when it first saw a tombstone nor
/// which catalog entries it wrote: deleting would mean trusting times and removals
/// anyone holding the key can write.
const NO_STATE: &str = "no state folder: prune counts grace periods from when this machine                         first saw a tombstone or leftover and must know which catalog entries                         it wrote, so it deletes nothing; set PGBUNKER_STATE_DIR (or --state-dir)";

pub async fn prune(opts: &PruneOptions) -> Result<PruneReport, CommandError> {
    let now = opts.now.unwrap_or_else(OffsetDateTime::now_utc);
    let past_grace = |t: OffsetDateTime| match &opts.grace {
        None => true,
        Some(g) => g.cutoff(now).is_some_and(|c| t <= c),
    };
    let repo = opts.repo.open().await?;
    let repo = repo.clone().with_trust(crate::archive::TrustOptions {
        now: Some(now),
        force: opts.force || repo.trust().options.force,
        ..repo.trust().options.clone()
    });
    let cat = repo.catalog().await?;
    let state = repo.state_dir().cloned();

    // Refuse before changing anything.
    let mut accepted = Vec::new();
    if let Some(dir) = &state {
        let trail = trust::load_trail(dir, &repo)?;
        let (ok, refused): (Vec<_>, Vec<_>) = trail
            .pending
            .into_iter()
            .partition(|r| opts.accept_removals.contains(&r.seq));
        if !refused.is_empty() {
            return Err(ArchiveError::from(TrustError::UnacceptedRemoval(refused)).into());
        }
        accepted = ok;
    }
    let hidden = trust::hidden_backups(&repo, &cat).await?;
    if !hidden.is_empty() && !repo.trust().options.force {
        return Err(ArchiveError::from(TrustError::HiddenBackups {
            latest: trust::newest(&cat.live).map(|b| b.bid.clone()),
            hidden,
            purpose: trust::Purpose::Prune,
        })
        .into());
    }
    if let (Some(dir), false, false) = (&state, accepted.is_empty(), opts.dry_run) {
        trust::update_trail(dir, &repo, |t| {
            for r in &accepted {
                t.pending.retain(|p| p != r);
                let entry = trust::EntryRef {
                    seq: r.seq,
                    sha256: r.sha256.clone(),
                };
                if !t.accepted.contains(&entry) {
                    t.accepted.push(entry);
                }
            }
        })?;
    }

    let locks = lock_view(&repo, now).await?;
    let in_use = |bid: &str, kind| locks.live.iter().any(|l| l.bid == bid && l.kind == kind);
    let candidates: Vec<Candidate> = cat
        .live
        .iter()
        .map(|b| Candidate {
            bid: b.bid.clone(),
            created_at: parse_ts(&b.created_at)
                .or_else(|| backup_started_at(&b.bid))
                .unwrap_or(now),
            legal_hold: b.legal_hold,
            keep_until: b.keep_until.as_deref().map(|t| {
                // Unparsable means "protect": far future.
                parse_ts(t).unwrap_or(now + time::Duration::days(365 * 100))
            }),
            in_use: in_use(&b.bid, LockKind::Restore),
        })
        .collect();
    let decisions = retention::decide(&opts.policy, &candidates, now)
        .map_err(|e| CommandError::Usage(e.to_string()))?;
    let created = |bid: &str| {
        candidates
            .iter()
            .find(|c| c.bid == bid)
            .map(|c| ts(c.created_at))
            .unwrap_or_default()
    };
    let kept: Vec<KeptLine> = decisions
        .iter()
        .filter(|d| d.keep)
        .map(|d| KeptLine {
            backup_id: d.bid.clone(),
            created_at: created(&d.bid),
            reasons: d.reasons.clone(),
        })
        .collect();
    let doomed: Vec<String> = decisions
        .iter()
        .filter(|d| !d.keep)
        .map(|d| d.bid.clone())
        .collect();

    let mut report = PruneReport {
        dry_run: opts.dry_run,
        now: ts(now),
        kept,
        tombstoned: Vec::new(),
        deleted: Vec::new(),
        waiting: Vec::new(),
        leftovers_deleted: Vec::new(),
        objects_deleted: 0,
        first_contact: None,
        accepted_removals: accepted.iter().map(|r| r.seq).collect(),
        unlisted_kept: hidden,
        malformed_locks: locks
            .malformed
            .iter()
            .map(|(k, why)| format!("{k}: {why}"))
            .collect(),
        deletions_skipped: state.is_none().then(|| NO_STATE.to_owned()),
    };
    report.tombstoned = if opts.dry_run {
        doomed
    } else {
        repo.tombstone(&doomed, now).await?
    };

    // Sweep: tombstones past the grace period (counted from when this machine first
    // saw them) and not in use lose their objects. Reading the catalog records when
    // new tombstones were first seen.
    let cat = repo.catalog().await?;
    let trail = match &state {
        Some(dir) => Some(trust::load_trail(dir, &repo)?),
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
            || locked(&repo, &t.bid, LockKind::Restore, now).await?
        {
            report.waiting.push(t.bid.clone());
            continue;
        }
        if !opts.dry_run {
            report.objects_deleted += repo.delete_backup_objects(&t.bid).await?.unwrap_or(0);
        }
        swept.push(t.bid.clone());
    }
    if !opts.dry_run {
        repo.forget_tombstones(&swept).await?;
    }
    report.deleted = swept;
    if opts.dry_run {
        // What this run would tombstone starts its grace period now.
        report.waiting.extend(report.tombstoned.iter().cloned());
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
        if !named(bid) && trust::complete_looking(&repo, bid).await? {
            complete.push(bid.clone());
        }
    }
    if let Some(dir) = &state {
        let now_text = ts(now);
        trust::update_trail(dir, &repo, |t| {
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
        Some(dir) => Some(trust::load_trail(dir, &repo)?),
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
        if state.is_none() || locked(&repo, &bid, LockKind::Backup, now).await? {
            continue;
        }
        if opts.dry_run {
            report.leftovers_deleted.push(bid);
        } else if let Some(n) = repo.delete_backup_objects(&bid).await? {
            // `None`: it committed since we looked; it is no leftover.
            report.objects_deleted += n;
            report.leftovers_deleted.push(bid);
        }
    }

    // Locks whose holder died long ago are only clutter.
    if !opts.dry_run {
        for (key, refreshed) in lock_view(&repo, now).await?.stale {
            if past_grace(refreshed) {
                repo.store().delete(&key).await?;
            }
        }
    }
    report.first_contact = repo.first_contact();
    Ok(report)
}

/// The locks as prune believes them: live ones, dead ones with the refresh time they
/// are believed to have, and objects that are no locks.
struct LockView {
    live: Vec<LockInfo>,
    stale: Vec<(String, OffsetDateTime)>,
    malformed: Vec<(String, String)>,
}

/// Reads the locks. A `refreshed_at` in the future beyond the clock skew counts from
/// when this machine first saw it (without a state folder: from now), so a planted
/// lock dies like any lock whose holder stopped refreshing.
async fn lock_view(repo: &Repository, now: OffsetDateTime) -> Result<LockView, CommandError> {
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
) -> Result<bool, CommandError> {
    Ok(lock_view(repo, now)
        .await?
        .live
        .iter()
        .any(|l| l.bid == bid && l.kind == kind))
}

impl Audit for PruneReport {
    fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "dry_run": self.dry_run,
            "kept": self.kept.len(),
            "tombstoned": self.tombstoned,
            "deleted": self.deleted,
            "leftovers_deleted": self.leftovers_deleted,
            "objects_deleted": self.objects_deleted,
        })
    }
}
