//! `pgbunker prune`: apply the retention policy, tombstone first, delete after the
//! grace period, and clean up leftovers of interrupted backups.

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::audit::Audit;
use super::{CommandError, RepoAccess};
use crate::archive::lock::{self, LockKind};
use crate::archive::retention::{self, Candidate, KeepWithin, RetentionPolicy};
use crate::archive::{backup_started_at, BACKUPS_DIR};

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
}

fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("formatting a timestamp")
}

fn parse_ts(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

pub async fn prune(opts: &PruneOptions) -> Result<PruneReport, CommandError> {
    let now = opts.now.unwrap_or_else(OffsetDateTime::now_utc);
    let past_grace = |t: OffsetDateTime| match &opts.grace {
        None => true,
        Some(g) => g.cutoff(now).is_some_and(|c| t <= c),
    };
    let repo = opts.repo.open().await?;
    let cat = repo.catalog().await?;
    let locks = live_locks(&repo, now).await?;
    let in_use = |bid: &str, kind| locks.iter().any(|l| l.bid == bid && l.kind == kind);

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
    };
    report.tombstoned = if opts.dry_run {
        doomed
    } else {
        repo.tombstone(&doomed, now).await?
    };

    // Sweep: tombstones past the grace period and not in use lose their objects.
    let cat = repo.catalog().await?;
    let mut swept = Vec::new();
    for t in &cat.tombstones {
        let at = parse_ts(&t.at).unwrap_or(now);
        // Locks are read again right before deleting: a restore may have started
        // since this run began.
        if !past_grace(at) || locked(&repo, &t.bid, LockKind::Restore, now).await? {
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
    // held by a running backup.
    let named = |bid: &str| {
        cat.live.iter().any(|b| b.bid == bid) || cat.tombstones.iter().any(|t| t.bid == bid)
    };
    for bid in repo.store().list_dirs(BACKUPS_DIR).await? {
        if named(&bid) || !past_grace(backup_started_at(&bid).unwrap_or(now)) {
            continue;
        }
        // A backup writes its lock before its first object: read the locks now, after
        // listing, so a backup that started meanwhile is seen.
        if locked(&repo, &bid, LockKind::Backup, now).await? {
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
        for (key, l) in lock::all_locks(&repo).await? {
            if !l.is_live(now) && past_grace(l.refreshed_at) {
                repo.store().delete(&key).await?;
            }
        }
    }
    Ok(report)
}

async fn live_locks(
    repo: &crate::archive::Repository,
    now: OffsetDateTime,
) -> Result<Vec<lock::LockInfo>, CommandError> {
    Ok(lock::all_locks(repo)
        .await?
        .into_iter()
        .filter(|(_, l)| l.is_live(now))
        .map(|(_, l)| l)
        .collect())
}

async fn locked(
    repo: &crate::archive::Repository,
    bid: &str,
    kind: LockKind,
    now: OffsetDateTime,
) -> Result<bool, CommandError> {
    Ok(live_locks(repo, now)
        .await?
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
