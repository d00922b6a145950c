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
    /// A prune deleting shared chunks (format 5): backups wait for it to end.
    Sweep,
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
    /// The holder's host name: on that host a lock whose process is gone is dead at
    /// once, without waiting [`STALE_AFTER`]. Absent in locks of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl LockInfo {
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.is_live_since(now, self.refreshed_at)
    }

    /// Like [`LockInfo::is_live`], with the refresh time the caller believes: the
    /// object is unauthenticated, and a `refreshed_at` in 2099 must not keep a backup
    /// from ever being pruned (see `trust::believed_refresh`).
    pub fn is_live_since(&self, now: OffsetDateTime, refreshed: OffsetDateTime) -> bool {
        now - refreshed < STALE_AFTER && !self.holder_gone()
    }

    /// True when the lock was taken on this host by a process that no longer runs
    /// (a backup that failed while storage was down could not delete its lock).
    fn holder_gone(&self) -> bool {
        if self.host.as_deref() != Some(host_name().as_str()) {
            return false;
        }
        let Ok(pid) = libc::pid_t::try_from(self.pid) else {
            return false;
        };
        // SAFETY: kill with signal 0 only checks that the process exists.
        let rc = unsafe { libc::kill(pid, 0) };
        rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    }
}

/// This machine's host name ("unknown" if it has none).
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// A held lock. Call [`LockGuard::release`] when done. Dropped without it (a command
/// abandoned on SIGINT or SIGTERM), it deletes itself from a task that
/// [`crate::teardown::finish`] waits for; if the process dies outright, the heartbeat
/// stops and the lock goes stale.
pub struct LockGuard {
    store: Store,
    key: String,
    heartbeat: JoinHandle<()>,
    released: std::sync::atomic::AtomicBool,
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
            host: Some(host_name()),
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
            released: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub async fn release(self) -> Result<(), ArchiveError> {
        self.delete().await
    }

    /// Whether the lock object at `key` is this one.
    pub fn is(&self, key: &str) -> bool {
        self.key == key
    }

    /// Deletes the lock now: for holders that share the guard.
    pub async fn delete(&self) -> Result<(), ArchiveError> {
        self.heartbeat.abort();
        self.store.delete(&self.key).await?;
        self.released
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.heartbeat.abort();
        if self.released.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let (store, key) = (self.store.clone(), self.key.clone());
        crate::teardown::spawn(async move {
            let _ = store.delete(&key).await;
        });
    }
}

fn encode(info: &LockInfo) -> Bytes {
    Bytes::from(serde_json::to_vec_pretty(info).expect("lock serializes"))
}

/// The lock objects of a repository: the readable ones with their keys, and the
/// others with why they are not locks.
#[derive(Debug, Default)]
pub struct LockScan {
    pub locks: Vec<(String, LockInfo)>,
    pub malformed: Vec<(String, String)>,
}

/// Every lock object. Lock objects are unauthenticated: one that does not parse is
/// reported, not fatal, or a single planted file would stop every prune.
pub async fn all_locks(repo: &Repository) -> Result<LockScan, ArchiveError> {
    let mut out = LockScan::default();
    for key in repo.store().list(layout::LOCKS).await? {
        let Some(bytes) = repo.store().get_opt(&key).await? else {
            continue; // released while we listed
        };
        match serde_json::from_slice::<LockInfo>(&bytes) {
            Ok(info) => out.locks.push((key, info)),
            Err(e) => out.malformed.push((key, e.to_string())),
        }
    }
    Ok(out)
}
