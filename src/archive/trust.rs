//! What a client believes of a repository beyond what the keys prove.
//!
//! The AEAD proves that whoever sealed a catalog entry held the repository key; it
//! does not prove that the times in it are honest, that the entry is the newest one,
//! or that its author meant well. A leaked key (or a storage account that can delete
//! objects) is exactly the case this module is for, so:
//!
//! * times in the catalog may not lie in the future beyond [`CLOCK_SKEW`]: a
//!   `created_at` in 2099 would keep a forged backup `latest` forever;
//! * a tombstone's grace period counts from when *this machine* first saw it, never
//!   from the `at` its author wrote;
//! * an entry that takes several live backups out of the catalog at once, or the
//!   newest one, must be one this machine wrote, or one the operator accepted, before
//!   prune deletes anything because of it;
//! * a machine that meets a repository for the first time says which catalog entry it
//!   is trusting, and `--expect-seq` or an imported mark let it check that;
//! * a complete-looking backup that the catalog does not list and that is newer than
//!   the newest committed one is a sign of deleted catalog entries: `latest` and prune
//!   refuse rather than pick an older backup or delete it as a leftover.
//!
//! What this machine remembers for that lives in the state folder beside the
//! high-water mark, in one `trail-<hash>.json` per location.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use time::OffsetDateTime;

use super::chain::{CatalogState, LiveBackup};
use super::layout::{self, BackupLayout};
use super::lock::{self, LockKind};
use super::repo::Repository;
use super::timestamp::Timestamp;
use super::watermark::StateDir;
use super::ArchiveError;
use crate::error::{Class, Classify};

/// How far ahead of this machine's clock a time written by another machine may be.
/// Machines that take backups keep their clocks within seconds of each other (NTP);
/// ten minutes is generous for that and short enough that a wrongly set clock shows
/// up at once, and heals by itself once real time catches up.
pub const CLOCK_SKEW: time::Duration = time::Duration::minutes(10);

/// The record kind of the trail in the state folder.
const TRAIL: &str = "trail";

/// The user's instructions about trust, from the command line.
#[derive(Debug, Clone, Default)]
pub struct TrustOptions {
    /// The newest catalog entry must be at least this one (`--expect-seq`): what a
    /// host without a mark knows from elsewhere (the primary's `mark export`).
    pub expect_seq: Option<u64>,
    /// Go on although a complete-looking backup newer than every committed one is
    /// missing from the catalog (`--force`).
    pub force: bool,
    /// The clock; `None` is now. Tests and `prune --now` inject time here.
    pub now: Option<OffsetDateTime>,
}

/// The trust settings of an open repository and what it noticed so far. Clones share
/// the notices, so a command sees what any step of it noticed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Trust {
    pub options: TrustOptions,
    notices: Notices,
}

impl Trust {
    pub fn now(&self) -> OffsetDateTime {
        self.options.now.unwrap_or_else(OffsetDateTime::now_utc)
    }

    pub fn notices(&self) -> Vec<Notice> {
        self.notices.all()
    }

    /// Records a notice once and shows it on stderr at once: a first contact matters
    /// before an hour-long restore starts, not after.
    pub fn notice(&self, n: Notice) {
        self.notices.record(n);
    }
}

#[derive(Debug, Clone, Default)]
struct Notices(Arc<Mutex<Vec<Notice>>>);

impl Notices {
    fn record(&self, n: Notice) {
        let mut seen = self.0.lock().expect("notices lock");
        if !seen.contains(&n) {
            eprintln!("warning: {n}");
            seen.push(n);
        }
    }

    fn all(&self) -> Vec<Notice> {
        self.0.lock().expect("notices lock").clone()
    }
}

/// Something the user must know about the repository although the command goes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// This machine had no mark of the repository and trusts what it found.
    FirstContact(Contact),
    /// Another client took several backups, or the newest, out of the catalog.
    ForeignRemoval(Removal),
    /// A lock object that is not a lock; prune ignores it.
    MalformedLock { key: String, error: String },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::FirstContact(c) => c.fmt(f),
            Notice::ForeignRemoval(r) => write!(
                f,
                "{}; prune will not delete them until you run \
                 `pgbunker prune --accept-removal {}`",
                r.describe(),
                r.seq
            ),
            Notice::MalformedLock { key, error } => write!(
                f,
                "ignoring {key}: it is not a lock ({error}); it protects nothing, delete it \
                 unless a newer pgbunker wrote it"
            ),
        }
    }
}

/// The catalog entry a machine trusted on first contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    pub seq: u64,
    pub sha256: String,
    /// `--expect-seq`, when given (and met).
    pub expected_seq: Option<u64>,
    /// Whether a state folder keeps the mark for next time.
    pub remembered: bool,
}

impl fmt::Display for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.expected_seq {
            Some(n) => write!(
                f,
                "first contact with this repository: trusting catalog seq {} (sha {}), at \
                 least the expected {n}",
                self.seq, self.sha256
            )?,
            None => write!(
                f,
                "first contact with this repository: trusting catalog seq {} (sha {}); pass \
                 --expect-seq or import a mark to check it",
                self.seq, self.sha256
            )?,
        }
        if !self.remembered {
            f.write_str(
                " (no state folder: this machine remembers nothing between runs; set \
                 PGBUNKER_STATE_DIR)",
            )?;
        }
        Ok(())
    }
}

/// A catalog entry that took live backups out of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removal {
    pub seq: u64,
    pub sha256: String,
    pub removed: Vec<String>,
    /// The newest live backup before the entry, when the entry removed it.
    #[serde(default)]
    pub newest: Option<String>,
}

impl Removal {
    /// Whether prune may act on it without asking: one backup, not the newest, is
    /// what a prune run on another machine takes out each night.
    fn needs_acceptance(&self) -> bool {
        self.removed.len() > 1 || self.newest.is_some()
    }

    fn describe(&self) -> String {
        let newest = match &self.newest {
            Some(b) => format!(", the newest backup {b} among them,"),
            None => String::new(),
        };
        format!(
            "catalog entry {} took {} backup{} out of the catalog at once ({}){newest} and \
             this machine did not write it",
            self.seq,
            self.removed.len(),
            if self.removed.len() == 1 { "" } else { "s" },
            self.removed.join(", ")
        )
    }
}

/// A catalog entry named by its sequence number and the SHA-256 of its object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRef {
    pub seq: u64,
    pub sha256: String,
}

/// A lock whose `refreshed_at` lies in the future, and when this machine first saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LockSeen {
    pub refreshed_at: Timestamp,
    pub first_seen: Timestamp,
}

/// What this machine remembers of one repository besides the high-water mark.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Trail {
    pub repo_id: String,
    /// Entries this client committed that took backups out of `live`: prune acts on
    /// its own removals without asking.
    #[serde(default)]
    pub written: Vec<EntryRef>,
    /// Other clients' removals that prune must not act on until accepted.
    #[serde(default)]
    pub pending: Vec<Removal>,
    #[serde(default)]
    pub accepted: Vec<EntryRef>,
    /// When this machine first saw each tombstone and complete-looking leftover (bid →
    /// RFC 3339): grace periods count from here.
    #[serde(default)]
    pub first_seen: BTreeMap<String, Timestamp>,
    /// Locks dated in the future, by object key.
    #[serde(default)]
    pub locks: BTreeMap<String, LockSeen>,
}

impl Trail {
    /// When this machine first saw `bid` tombstoned or left over; `None` if never.
    pub fn first_seen(&self, bid: &str) -> Option<OffsetDateTime> {
        self.first_seen.get(bid).and_then(Timestamp::time)
    }
}

/// Why the catalog or an operation on it is refused.
#[derive(Debug, Error)]
pub enum TrustError {
    #[error(
        "catalog entry {seq} says backup {bid} was {what} at {at}, later than this machine's \
         clock allows ({now} plus 10 minutes): refusing the catalog"
    )]
    FutureTime {
        seq: u64,
        bid: String,
        what: TimeField,
        at: Timestamp,
        now: Timestamp,
    },
    #[error(
        "the repository's newest catalog entry is {found}, but --expect-seq says it has at \
         least {expected}: the newest entries may have been deleted"
    )]
    BehindExpected { expected: u64, found: u64 },
    #[error(
        "backup {} looks complete (its manifest and summary are there) but no catalog entry \
         lists it, and it is newer than {}: the newest catalog entries may have been deleted; \
         {}",
        .hidden.join(", "),
        .latest.as_deref().map_or_else(|| "every committed backup".to_owned(),
            |b| format!("the newest committed backup {b}")),
        .purpose
    )]
    HiddenBackups {
        latest: Option<String>,
        hidden: Vec<String>,
        purpose: Purpose,
    },
    #[error(
        "{}: refusing to prune, which would delete them{}",
        .0[0].describe(),
        if .0.len() > 1 {
            format!(" (entries {} too)", .0[1..].iter().map(|r| r.seq.to_string())
                .collect::<Vec<_>>().join(", "))
        } else { String::new() }
    )]
    UnacceptedRemoval(Vec<Removal>),
    #[error("{path}: {why}")]
    BadMarkFile { path: String, why: String },
    #[error("the mark is for repository {mark}, but the repository at {location} is {found}")]
    MarkForAnotherRepository {
        mark: String,
        location: String,
        found: String,
    },
    #[error("no state folder to keep the mark in")]
    NoStateDir,
}

/// Which time of a catalog entry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeField {
    Created,
    Tombstoned,
}

impl fmt::Display for TimeField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeField::Created => "created",
            TimeField::Tombstoned => "tombstoned",
        })
    }
}

/// What a refusal about hidden backups protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Latest,
    Prune,
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Purpose::Latest => "refusing to resolve `latest` to an older backup",
            Purpose::Prune => "refusing to prune, which would delete it as a leftover",
        })
    }
}

impl Classify for TrustError {
    fn class(&self) -> Class {
        match self {
            TrustError::BadMarkFile { .. } => Class::Usage,
            TrustError::NoStateDir => Class::Io,
            _ => Class::Corrupt,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            TrustError::FutureTime { .. } => "no pgbunker writes times in the future: if this \
                 machine's clock is behind, fix it (NTP); otherwise someone holding the \
                 repository key sealed this entry: treat the key as leaked and check the \
                 storage's access logs"
                .into(),
            TrustError::BehindExpected { .. } => "put the missing catalog/ objects back from a \
                 copy and check the storage's access logs; lower --expect-seq only if you know \
                 the entries were never written"
                .into(),
            TrustError::HiddenBackups { purpose, .. } => format!(
                "check the storage's access logs and put the missing catalog/ objects back; if \
                 a backup failed just before its commit, the next successful backup clears \
                 this; to go on without it, pass --force{}",
                match purpose {
                    Purpose::Latest => " or name a backup id",
                    Purpose::Prune => " (it is then kept for the grace period)",
                }
            ),
            TrustError::UnacceptedRemoval(r) => format!(
                "if another machine's prune wrote it, or the backups were removed on purpose, \
                 run `pgbunker prune --accept-removal {}`; otherwise someone holding the \
                 repository key removed them: their objects stay until you accept, check the \
                 storage's access logs",
                r[0].seq
            ),
            TrustError::BadMarkFile { .. } => {
                "use a file written by `pgbunker mark export` (schema/mark.schema.json)".into()
            }
            TrustError::MarkForAnotherRepository { .. } => {
                "import the mark exported from this repository".into()
            }
            TrustError::NoStateDir => {
                "set PGBUNKER_STATE_DIR (or --state-dir), or pass --expect-seq instead".into()
            }
        })
    }
}

/// The backup `latest` means: the newest by commit time, ties broken by id (ids carry
/// whole seconds only).
pub(crate) fn newest(live: &[LiveBackup]) -> Option<&LiveBackup> {
    live.iter()
        .max_by(|a, b| (a.created_at.time(), &a.bid).cmp(&(b.created_at.time(), &b.bid)))
}

/// The first time in `state` that lies beyond the allowed skew, as an error naming
/// `seq` (the caller finds the entry that introduced it).
pub(crate) fn future_time(state: &CatalogState, now: OffsetDateTime) -> Option<TrustError> {
    let limit = now + CLOCK_SKEW;
    let too_late = |t: &Timestamp| t.time().is_some_and(|t| t > limit);
    let times = state
        .live
        .iter()
        .map(|b| (&b.bid, &b.created_at, TimeField::Created))
        .chain(
            state
                .tombstones
                .iter()
                .map(|t| (&t.bid, &t.at, TimeField::Tombstoned)),
        );
    for (bid, at, what) in times {
        if too_late(at) {
            return Some(TrustError::FutureTime {
                seq: state.seq,
                bid: bid.clone(),
                what,
                at: at.clone(),
                now: Timestamp::from(now),
            });
        }
    }
    None
}

/// Whether `state` still carries the time `e` complains about (to find the entry that
/// introduced it by walking back).
pub(crate) fn carries(state: &CatalogState, e: &TrustError) -> bool {
    let TrustError::FutureTime { bid, what, at, .. } = e else {
        return false;
    };
    match what {
        TimeField::Created => state
            .live
            .iter()
            .any(|b| &b.bid == bid && &b.created_at == at),
        TimeField::Tombstoned => state
            .tombstones
            .iter()
            .any(|t| &t.bid == bid && &t.at == at),
    }
}

/// The live backups `next` took out of `prev`'s catalog, if any.
pub(crate) fn removal(prev: &CatalogState, next: &CatalogState, next_sha: &str) -> Option<Removal> {
    let removed: Vec<String> = prev
        .live
        .iter()
        .filter(|b| !next.live.iter().any(|n| n.bid == b.bid))
        .map(|b| b.bid.clone())
        .collect();
    if removed.is_empty() {
        return None;
    }
    let newest = newest(&prev.live)
        .filter(|b| removed.contains(&b.bid))
        .map(|b| b.bid.clone());
    Some(Removal {
        seq: next.seq,
        sha256: next_sha.into(),
        removed,
        newest,
    })
}

/// Refuses a catalog whose newest entry is below `--expect-seq`.
pub(crate) fn check_expected(trust: &Trust, state: &CatalogState) -> Result<(), TrustError> {
    match trust.options.expect_seq {
        Some(expected) if state.seq < expected => Err(TrustError::BehindExpected {
            expected,
            found: state.seq,
        }),
        _ => Ok(()),
    }
}

/// Reads and changes the trail of `repo` under the state folder's lock; a trail left
/// by another repository at the same location starts afresh.
pub(crate) fn update_trail<R>(
    dir: &StateDir,
    repo: &Repository,
    change: impl FnOnce(&mut Trail) -> R,
) -> Result<R, ArchiveError> {
    let location = repo.store().location();
    let repo_id = repo.config().repo_id.clone();
    dir.update_record(TRAIL, location, |old: Option<Trail>| {
        let mut trail = old
            .filter(|t| t.repo_id == repo_id)
            .unwrap_or_else(|| Trail {
                repo_id: repo_id.clone(),
                ..Trail::default()
            });
        let before = trail.clone();
        let out = change(&mut trail);
        let changed = trail != before;
        (changed.then_some(trail), out)
    })
}

/// The trail of `repo`, or an empty one.
pub(crate) fn load_trail(dir: &StateDir, repo: &Repository) -> Result<Trail, ArchiveError> {
    let location = repo.store().location();
    let repo_id = &repo.config().repo_id;
    Ok(dir
        .load_record::<Trail>(TRAIL, location)?
        .filter(|t| &t.repo_id == repo_id)
        .unwrap_or_default())
}

/// Remembers, before the put, that this client is about to commit an entry that
/// takes backups out of the catalog. Recorded first so a concurrent run on this
/// machine that reads the entry at once never takes it for someone else's.
pub(crate) fn record_written(repo: &Repository, entry: EntryRef) -> Result<(), ArchiveError> {
    let Some(dir) = repo.state_dir() else {
        return Ok(());
    };
    update_trail(dir, repo, |t| {
        if !t.written.contains(&entry) {
            t.written.push(entry);
        }
    })
}

/// Notes the removals among entries this machine has not seen before (each entry
/// compared with its predecessor), and when it first saw each tombstone.
pub(crate) fn note(
    repo: &Repository,
    dir: &StateDir,
    removals: Vec<Removal>,
    state: &CatalogState,
    now: OffsetDateTime,
) -> Result<(), ArchiveError> {
    let now_text = Timestamp::from(now);
    let foreign = update_trail(dir, repo, |t| {
        let mut foreign = Vec::new();
        for r in removals {
            let entry = EntryRef {
                seq: r.seq,
                sha256: r.sha256.clone(),
            };
            if !r.needs_acceptance() || t.written.contains(&entry) || t.accepted.contains(&entry) {
                continue;
            }
            if !t.pending.contains(&r) {
                t.pending.push(r.clone());
            }
            foreign.push(r);
        }
        for tomb in &state.tombstones {
            t.first_seen
                .entry(tomb.bid.clone())
                .or_insert_with(|| now_text.clone());
        }
        // Our own entries matter while a run on this machine that started from an
        // older mark may still walk past them; commits raise the mark beyond them.
        t.written.retain(|w| w.seq >= state.seq.saturating_sub(64));
        foreign
    })?;
    for r in foreign {
        repo.trust().notice(Notice::ForeignRemoval(r));
    }
    Ok(())
}

/// Tells the user which entry this machine now trusts without having checked it.
pub(crate) fn first_contact(repo: &Repository, state: &CatalogState, sha: &str) {
    repo.trust().notice(Notice::FirstContact(Contact {
        seq: state.seq,
        sha256: sha.into(),
        expected_seq: repo.trust().options.expect_seq,
        remembered: repo.state_dir().is_some(),
    }));
}

/// Complete-looking backups (manifest and summary present) that no entry of `cat`
/// names, newer than its newest live backup, and not being written by a live backup
/// right now: what the deletion of the newest catalog entries leaves behind.
pub(crate) async fn hidden_backups(
    repo: &Repository,
    cat: &CatalogState,
) -> Result<Vec<String>, ArchiveError> {
    let latest = newest(&cat.live).map(|b| b.bid.clone());
    let named = |bid: &str| {
        cat.live.iter().any(|b| b.bid == bid) || cat.tombstones.iter().any(|t| t.bid == bid)
    };
    let mut hidden = Vec::new();
    // Backup ids sort by their time to the second and then by a random suffix: two
    // backups taken within one second sort either way, so only an older second is
    // certainly older.
    let second = |bid: &str| bid.get(..16).unwrap_or(bid).to_owned();
    for bid in repo.store().list_dirs(layout::BACKUPS).await? {
        if named(&bid) || latest.as_deref().is_some_and(|l| second(&bid) < second(l)) {
            continue;
        }
        if complete_looking(repo, &bid).await? {
            hidden.push(bid);
        }
    }
    if hidden.is_empty() {
        return Ok(hidden);
    }
    // A backup between its manifest and its commit looks the same for a moment.
    let now = repo.trust().now();
    let scan = lock::all_locks(repo).await?;
    hidden.retain(|bid| {
        !scan
            .locks
            .iter()
            .any(|(_, l)| l.kind == LockKind::Backup && &l.bid == bid && l.is_live(now))
    });
    Ok(hidden)
}

/// Whether a backup folder holds what a commit needs: its manifest and summary.
pub(crate) async fn complete_looking(repo: &Repository, bid: &str) -> Result<bool, ArchiveError> {
    let l = BackupLayout::new(bid);
    Ok(repo.store().size(&l.manifest()).await?.is_some()
        && repo.store().size(&l.summary()).await?.is_some())
}

/// The mark file `pgbunker mark export` writes and `mark import` reads: enough for a
/// host that never saw the repository to check the catalog it finds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkFile {
    /// Always `pgbunker-mark`.
    pub format: String,
    /// Always 1.
    pub version: u32,
    pub repo_id: String,
    /// Where the exporting machine reached the repository (for humans: the importing
    /// host may reach it under another URL).
    pub location: String,
    pub seq: u64,
    pub sha256: String,
    pub exported_at: Timestamp,
}

impl MarkFile {
    pub const FORMAT: &'static str = "pgbunker-mark";

    /// Parses and checks a mark file's bytes; `path` names it in errors.
    pub fn parse(path: &str, bytes: &[u8]) -> Result<MarkFile, TrustError> {
        let bad = |why: String| TrustError::BadMarkFile {
            path: path.into(),
            why,
        };
        let m: MarkFile =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not a mark file: {e}")))?;
        if m.format != Self::FORMAT || m.version != 1 {
            return Err(bad(format!(
                "format {:?} version {}, expected {:?} version 1",
                m.format,
                m.version,
                Self::FORMAT
            )));
        }
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|c| c.is_ascii_hexdigit());
        if !hex(&m.repo_id, 32) || !hex(&m.sha256, 64) {
            return Err(bad("repo_id must be 32 and sha256 64 hex digits".to_owned()));
        }
        Ok(m)
    }
}

/// What `mark import` did.
#[derive(Debug, Clone, Serialize)]
pub struct MarkImport {
    pub repo_id: String,
    /// The entry the mark named, found unchanged.
    pub seq: u64,
    /// The newest entry now, at or above `seq`.
    pub newest_seq: u64,
}

impl crate::error::Outcome for MarkImport {}

/// How a future-dated lock counts: as refreshed when this machine first saw that
/// time, so it dies after [`lock::STALE_AFTER`] like any lock whose holder stopped.
pub(crate) fn believed_refresh(
    trail: &mut Trail,
    key: &str,
    info: &lock::LockInfo,
    now: OffsetDateTime,
) -> OffsetDateTime {
    if info.refreshed_at <= now + CLOCK_SKEW {
        trail.locks.remove(key);
        return info.refreshed_at;
    }
    let written = Timestamp::from(info.refreshed_at);
    match trail.locks.get(key) {
        Some(seen) if seen.refreshed_at == written => seen.first_seen.time().unwrap_or(now),
        _ => {
            trail.locks.insert(
                key.into(),
                LockSeen {
                    refreshed_at: written,
                    first_seen: Timestamp::from(now),
                },
            );
            now
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn live(bid: &str, at: &str) -> LiveBackup {
        serde_json::from_value(serde_json::json!({
            "bid": bid, "manifest_sha256": "0".repeat(64), "created_at": at,
        }))
        .unwrap()
    }

    fn state(seq: u64, live: Vec<LiveBackup>) -> CatalogState {
        CatalogState {
            seq,
            live,
            ..CatalogState::default()
        }
    }

    #[test]
    fn removals_say_how_many_went_and_whether_the_newest_did() {
        let a = live("a", "2026-01-01T00:00:00Z");
        let b = live("b", "2026-01-02T00:00:00Z");
        let c = live("c", "2026-01-03T00:00:00Z");
        let prev = state(4, vec![a.clone(), b.clone(), c.clone()]);
        assert_eq!(removal(&prev, &state(5, prev.live.clone()), "s"), None);
        let one = removal(&prev, &state(5, vec![b.clone(), c.clone()]), "s").unwrap();
        assert_eq!(
            (one.removed.clone(), one.newest.clone()),
            (vec!["a".into()], None)
        );
        assert!(!one.needs_acceptance());
        let newest = removal(&prev, &state(5, vec![a.clone(), b.clone()]), "s").unwrap();
        assert_eq!(newest.newest.as_deref(), Some("c"));
        assert!(newest.needs_acceptance());
        let two = removal(&prev, &state(5, vec![c]), "s").unwrap();
        assert!(two.needs_acceptance());
        assert!(two
            .describe()
            .contains("took 2 backups out of the catalog at once (a, b)"));
    }

    #[test]
    fn times_beyond_the_skew_are_refused_and_within_it_accepted() {
        let now = datetime!(2026-06-01 12:00 UTC);
        let ok = state(3, vec![live("a", "2026-06-01T12:09:00Z")]);
        assert!(future_time(&ok, now).is_none());
        let bad = state(3, vec![live("a", "2099-01-01T00:00:00Z")]);
        let e = future_time(&bad, now).unwrap();
        assert!(carries(&bad, &e));
        assert_eq!(
            e.to_string(),
            "catalog entry 3 says backup a was created at 2099-01-01T00:00:00Z, later than \
             this machine's clock allows (2026-06-01T12:00:00Z plus 10 minutes): refusing the \
             catalog"
        );
        let mut tomb = state(4, Vec::new());
        tomb.tombstones.push(super::super::chain::Tombstone {
            bid: "b".into(),
            at: "2026-06-01T13:00:00Z".into(),
            manifest_sha256: None,
            generation: None,
        });
        assert!(matches!(
            future_time(&tomb, now),
            Some(TrustError::FutureTime {
                what: TimeField::Tombstoned,
                ..
            })
        ));
    }

    #[test]
    fn mark_files_are_checked() {
        let good = serde_json::json!({
            "format": "pgbunker-mark", "version": 1, "repo_id": "ab".repeat(16),
            "location": "/r", "seq": 4, "sha256": "cd".repeat(32),
            "exported_at": "2026-01-01T00:00:00Z"
        });
        let bytes = serde_json::to_vec(&good).unwrap();
        assert_eq!(MarkFile::parse("m", &bytes).unwrap().seq, 4);
        let mut wrong = good.clone();
        wrong["version"] = 2.into();
        let e = MarkFile::parse("m", &serde_json::to_vec(&wrong).unwrap()).unwrap_err();
        assert!(
            e.to_string()
                .contains("expected \"pgbunker-mark\" version 1"),
            "{e}"
        );
        let e = MarkFile::parse("m", b"{}").unwrap_err();
        assert!(e.to_string().starts_with("m: not a mark file"), "{e}");
    }

    #[test]
    fn a_lock_dated_in_the_future_counts_from_when_it_was_first_seen() {
        let now = datetime!(2026-06-01 12:00 UTC);
        let info = lock::LockInfo {
            kind: LockKind::Restore,
            bid: "b".into(),
            pid: 1,
            created_at: datetime!(2099-01-01 00:00 UTC),
            refreshed_at: datetime!(2099-01-01 00:00 UTC),
            host: None,
        };
        let mut trail = Trail::default();
        assert_eq!(believed_refresh(&mut trail, "k", &info, now), now);
        let later = now + time::Duration::minutes(11);
        assert_eq!(believed_refresh(&mut trail, "k", &info, later), now);
        assert!(!info.is_live_since(later, now));
        // An honest refresh replaces what was remembered.
        let honest = lock::LockInfo {
            refreshed_at: later,
            ..info
        };
        assert_eq!(believed_refresh(&mut trail, "k", &honest, later), later);
        assert!(trail.locks.is_empty());
    }
}
