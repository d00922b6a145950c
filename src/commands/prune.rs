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
use time::OffsetDateTime;

use super::audit::Audit;
use super::{CommandError, RepoAccess};
use crate::archive::lock::LockKind;
use crate::archive::retention::{self, Candidate, KeepWithin, RetentionPolicy};
use crate::archive::sweep::{lock_view, sweep};
use crate::archive::Timestamp;
use crate::archive::{backup_started_at, trust, ArchiveError, Contact, TrustError};
use crate::error::Outcome;

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
    pub created_at: Timestamp,
    pub reasons: Vec<String>,
}

/// The sweep of shared chunks: a chunk goes once no backup lists it and the grace
/// period since it was written is over.
#[derive(Debug, Default, Serialize)]
pub struct ChunksSwept {
    pub referenced: u64,
    pub deleted: u64,
    pub deleted_bytes: u64,
    /// Listed by no backup, but written inside the grace period.
    pub waiting: u64,
    /// Why the sweep did not run this time (it runs again with the next prune).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deferred: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    pub now: Timestamp,
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
    /// The shared chunks (format 5) no backup lists any more.
    pub chunks: ChunksSwept,
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

/// Without a state folder this machine cannot know when it first saw a tombstone nor
/// which catalog entries it wrote: deleting would mean trusting times and removals
/// anyone holding the key can write.
const NO_STATE: &str = "no state folder: prune counts grace periods from when this machine                         first saw a tombstone or leftover and must know which catalog entries                         it wrote, so it deletes nothing; set PGBUNKER_STATE_DIR (or --state-dir)";

pub async fn prune(opts: &PruneOptions) -> Result<PruneReport, CommandError> {
    let now = opts.now.unwrap_or_else(OffsetDateTime::now_utc);
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
            created_at: b
                .created_at
                .time()
                .or_else(|| backup_started_at(&b.bid))
                .unwrap_or(now),
            legal_hold: b.legal_hold,
            keep_until: b.keep_until.as_ref().map(|t| {
                // Unparsable means "protect": far future.
                t.time().unwrap_or(now + time::Duration::days(365 * 100))
            }),
            in_use: in_use(&b.bid, LockKind::Restore),
        })
        .collect();
    let decisions = retention::decide(&opts.policy, &candidates, now)?;
    let created = |bid: &str| {
        candidates
            .iter()
            .find(|c| c.bid == bid)
            .map(|c| Timestamp::from(c.created_at))
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
        now: now.into(),
        kept,
        tombstoned: Vec::new(),
        deleted: Vec::new(),
        waiting: Vec::new(),
        leftovers_deleted: Vec::new(),
        objects_deleted: 0,
        chunks: ChunksSwept::default(),
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

    let swept = sweep(
        &repo,
        opts.grace.as_ref(),
        now,
        opts.dry_run,
        if opts.dry_run {
            &report.tombstoned[..]
        } else {
            &[]
        },
    )
    .await?;
    report.deleted = swept.deleted;
    report.waiting = swept.waiting;
    report.leftovers_deleted = swept.leftovers_deleted;
    report.objects_deleted = swept.objects_deleted;
    report.chunks = ChunksSwept {
        referenced: swept.chunks.referenced,
        deleted: swept.chunks.deleted,
        deleted_bytes: swept.chunks.deleted_bytes,
        waiting: swept.chunks.waiting,
        deferred: swept.chunks.deferred,
    };
    report.first_contact = repo.first_contact();
    Ok(report)
}

impl Outcome for PruneReport {}

impl Audit for PruneReport {
    fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "dry_run": self.dry_run,
            "kept": self.kept.len(),
            "tombstoned": self.tombstoned,
            "deleted": self.deleted,
            "leftovers_deleted": self.leftovers_deleted,
            "objects_deleted": self.objects_deleted,
            "chunks_deleted": self.chunks.deleted,
            "chunk_bytes_deleted": self.chunks.deleted_bytes,
        })
    }
}
