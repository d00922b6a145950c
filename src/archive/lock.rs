//! Non-exclusive locks: `locks/<id>.json`, one per running backup or restore, so that
//! prune never deletes a backup a restore is reading, nor the objects of a backup
//! still being written. A lock is a heartbeat, refreshed while its holder runs; one
//! not refreshed for [`STALE_AFTER`] belongs to a crashed process and is ignored.

use std::time::Duration;

use bytes::Bytes;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::task::JoinHandle;

use super::repo::Repository;
use super::{layout, ArchiveError};
use crate::store::Store;

pub const REFRESH_EVERY: Duration = Duration::from_secs(60);
pub const STALE_AFTER: time::Duration = time::Duration::minutes(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    Backup,
    Restore,
}

/// The body of a lock object: no names, no values, only what prune and an operator
/// need to decide whether it is alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub kind: LockKind,
    pub bid: String,
    pub pid: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub refreshed_at: OffsetDateTime,
}

impl LockInfo {
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        now - self.refreshed_at < STALE_AFTER
    }
}

/// A held lock. Call [`LockGuard::release`] when done; if the process dies instead,
/// the heartbeat stops and the lock goes stale.
pub struct LockGuard {
    store: Store,
    key: String,
    heartbeat: JoinHandle<()>,
}

impl LockGuard {
    pub async fn acquire(
        repo: &Repository,
        kind: LockKind,
        bid: &str,
    ) -> Result<LockGuard, ArchiveError> {
        let mut id = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let key = layout::lock(&hex::encode(id));
        let now = OffsetDateTime::now_utc();
        let mut info = LockInfo {
            kind,
            bid: bid.into(),
            pid: std::process::id(),
            created_at: now,
            refreshed_at: now,
        };
        let store = repo.store().clone();
        store.put_new(&key, encode(&info)).await?;
        let (s, k) = (store.clone(), key.clone());
        let heartbeat = tokio::spawn(async move {
            loop {
                tokio::time::sleep(REFRESH_EVERY).await;
                info.refreshed_at = OffsetDateTime::now_utc();
                // A missed beat is retried at the next one; staleness needs ten.
                let _ = s.put_overwrite(&k, encode(&info)).await;
            }
        });
        Ok(LockGuard {
            store,
            key,
            heartbeat,
        })
    }

    pub async fn release(self) -> Result<(), ArchiveError> {
        self.heartbeat.abort();
        self.store.delete(&self.key).await?;
        Ok(())
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

fn encode(info: &LockInfo) -> Bytes {
    Bytes::from(serde_json::to_vec_pretty(info).expect("lock serializes"))
}

/// Every lock object with its key. An unreadable one stops the caller: guessing it
/// dead could delete a backup that is in use.
pub async fn all_locks(repo: &Repository) -> Result<Vec<(String, LockInfo)>, ArchiveError> {
    let mut out = Vec::new();
    for key in repo.store().list(layout::LOCKS).await? {
        let Some(bytes) = repo.store().get_opt(&key).await? else {
            continue; // released while we listed
        };
        let info: LockInfo =
            serde_json::from_slice(&bytes).map_err(|e| ArchiveError::json(key.as_str(), e))?;
        out.push((key, info));
    }
    Ok(out)
}
