//! Reading a backup under a reader's lock, so prune cannot delete its chunks meanwhile
//! (a sound backup would otherwise look damaged, or a restore would stop midway).
//!
//! The order matters and is kept here once: resolve the name, take the lock, then
//! resolve again, since prune may have tombstoned the backup between the first
//! resolve and the lock. Writers own their lock the same way ([`super::BackupWriter`]).

use super::chain::LiveBackup;
use super::lock::{LockGuard, LockKind};
use super::{ArchiveError, BackupReader, Repository};

/// A reader's lock on one backup, or none where the caller accepted reading without
/// (credentials that cannot write, for a check that only reads).
pub struct ReadLock {
    live: LiveBackup,
    guard: Option<LockGuard>,
}

/// Whether a reader may go on without a lock when it cannot take one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockNeed {
    Required,
    /// Warn and read unlocked: fit for checks, which only report.
    BestEffort,
}

impl ReadLock {
    /// Locks `live` for reading and resolves it again under the lock. A backup pruned
    /// in between is the resolve's error, and the lock is gone again.
    pub async fn take(
        repo: &Repository,
        live: &LiveBackup,
        need: LockNeed,
    ) -> Result<ReadLock, ArchiveError> {
        let guard = match LockGuard::acquire(repo, LockKind::Restore, &live.bid).await {
            Ok(guard) => guard,
            Err(e) if need == LockNeed::BestEffort => {
                tracing::warn!(
                    "could not take a lock on backup {} ({e}); reading without one: a \
                     prune running meanwhile could make chunks look missing",
                    live.bid
                );
                return Ok(ReadLock {
                    live: live.clone(),
                    guard: None,
                });
            }
            Err(e) => return Err(e),
        };
        match repo.resolve(&live.bid).await {
            Ok(live) => Ok(ReadLock {
                live,
                guard: Some(guard),
            }),
            Err(e) => {
                guard.release().await?;
                Err(e)
            }
        }
    }

    /// The backup as resolved under the lock.
    pub fn live(&self) -> &LiveBackup {
        &self.live
    }

    /// Deletes the lock now. Dropped instead, the lock is deleted on the way out of
    /// the process ([`crate::teardown`]).
    pub async fn release(self) -> Result<(), ArchiveError> {
        match self.guard {
            Some(guard) => guard.release().await,
            None => Ok(()),
        }
    }
}

/// A backup opened for reading under its lock.
pub struct OpenBackup {
    reader: BackupReader,
    lock: ReadLock,
}

impl OpenBackup {
    /// Resolves `which` (an id or `latest`), locks it and opens it.
    pub async fn open(repo: &Repository, which: &str) -> Result<OpenBackup, ArchiveError> {
        let live = repo.resolve(which).await?;
        let lock = ReadLock::take(repo, &live, LockNeed::Required).await?;
        match BackupReader::open(repo, lock.live()).await {
            Ok(reader) => Ok(OpenBackup { reader, lock }),
            Err(e) => {
                lock.release().await?;
                Err(e)
            }
        }
    }

    pub fn reader(&self) -> &BackupReader {
        &self.reader
    }

    pub fn live(&self) -> &LiveBackup {
        self.lock.live()
    }

    pub async fn release(self) -> Result<(), ArchiveError> {
        self.lock.release().await
    }
}
