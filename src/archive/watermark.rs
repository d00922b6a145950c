//! The client-side high-water mark: what this machine last saw of each repository.
//!
//! The hash chain proves that entries link up, but not that the newest entry is still
//! there: whoever can write the bucket can delete `catalog/<n>` (hiding the newest
//! backup), put an older chain back, or swap in another repository under the same
//! URL. Each client therefore remembers `{repo_id, max_seq, sha256}` per location and
//! refuses a repository that went backwards, forked or changed identity.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ArchiveError;

/// The record kind of the high-water mark (`repo-<hash>.json`).
const MARK: &str = "repo";

/// The record kind of the same mark keyed by repository id (`id-<hash>.json`).
const MARK_BY_ID: &str = "id";

/// The folder holding one mark file per repository location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir(PathBuf);

/// What the client last saw of one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub location: String,
    pub repo_id: String,
    pub max_seq: u64,
    pub sha256: String,
    /// Whether the repository was encrypted when this machine saw it: pgbunker.json is
    /// plaintext, so a later "none" there must not turn backups into plaintext ones.
    /// `None` in marks written before this was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    /// The newest key ring generation this machine has seen: a repository whose newest
    /// generation is older had key ring objects deleted, which would undo a revocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
}

impl StateDir {
    pub fn new(path: impl Into<PathBuf>) -> StateDir {
        StateDir(path.into())
    }

    /// `PGBUNKER_STATE_DIR`, else `$XDG_STATE_HOME/pgbunker`, else
    /// `~/.local/state/pgbunker`; `None` when there is no home to keep it in.
    pub fn from_env() -> Option<StateDir> {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        if let Some(d) = var("PGBUNKER_STATE_DIR") {
            return Some(StateDir(d.into()));
        }
        if let Some(d) = var("XDG_STATE_HOME") {
            return Some(StateDir(PathBuf::from(d).join("pgbunker")));
        }
        var("HOME").map(|h| StateDir(PathBuf::from(h).join(".local/state/pgbunker")))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// One file per location; the name hides the location (bucket names can be
    /// telling) and the body repeats it for humans.
    pub fn mark_file(&self, location: &str) -> PathBuf {
        self.record_file(MARK, location)
    }

    /// The file of a per-location record named `kind` (`<kind>-<hash>.json`): the mark,
    /// and whatever else a client remembers about a repository (which sample `verify`
    /// checks next).
    pub fn record_file(&self, kind: &str, location: &str) -> PathBuf {
        let h = hex::encode(&Sha256::digest(location.as_bytes())[..16]);
        self.0.join(format!("{kind}-{h}.json"))
    }

    pub fn load(&self, location: &str) -> Result<Option<Mark>, ArchiveError> {
        self.load_record(MARK, location)
    }

    /// Reads the record `kind` of `location`; `None` when there is none yet.
    pub fn load_record<T: DeserializeOwned>(
        &self,
        kind: &str,
        location: &str,
    ) -> Result<Option<T>, ArchiveError> {
        let file = self.record_file(kind, location);
        match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ArchiveError::json(file.display().to_string(), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(state_io(&file, e)),
        }
    }

    /// Writes the mark atomically (temp file, fsync, rename), never lowering it: a
    /// slower concurrent run must not undo what a faster one saw.
    pub fn raise(&self, mark: &Mark) -> Result<(), ArchiveError> {
        // Read-compare-write under an exclusive lock: two runs on this machine must
        // not lower each other's mark.
        let _guard = self.lock(&mark.location)?;
        let mut mark = mark.clone();
        if let Some(old) = self.load(&mark.location)? {
            if old.repo_id == mark.repo_id && old.max_seq > mark.max_seq {
                return Ok(());
            }
            // What this machine once saw stays seen.
            if old.repo_id == mark.repo_id {
                mark.encrypted = old.encrypted.max(mark.encrypted);
                mark.generation = old.generation.max(mark.generation);
            }
        }
        self.store(&mark)
    }

    /// Reads, changes and writes the record `kind` of `location` under the location's
    /// lock, so two runs on this machine never lose each other's changes. `change`
    /// returns the record to write (`None`: leave the file as it is) and a result.
    pub(crate) fn update_record<T: Serialize + DeserializeOwned, R>(
        &self,
        kind: &str,
        location: &str,
        change: impl FnOnce(Option<T>) -> (Option<T>, R),
    ) -> Result<R, ArchiveError> {
        let _guard = self.lock(location)?;
        let (new, out) = change(self.load_record(kind, location)?);
        if let Some(new) = new {
            self.store_record(kind, location, &new)?;
        }
        Ok(out)
    }

    /// The mark of repository `repo_id` wherever this machine last reached it: a
    /// repository met under a new URL (another endpoint, a copy in another region)
    /// is still checked against what this machine saw of it.
    pub fn load_by_id(&self, repo_id: &str) -> Result<Option<Mark>, ArchiveError> {
        Ok(self
            .load_record::<Mark>(MARK_BY_ID, repo_id)?
            .filter(|m| m.repo_id == repo_id))
    }

    /// Raises the mark kept by repository id, never lowering it.
    pub fn raise_by_id(&self, mark: &Mark) -> Result<(), ArchiveError> {
        self.update_record(MARK_BY_ID, &mark.repo_id, |old: Option<Mark>| {
            let higher = old.is_some_and(|o| o.repo_id == mark.repo_id && o.max_seq > mark.max_seq);
            ((!higher).then(|| mark.clone()), ())
        })
    }

    /// The folder, owner-only when this creates it: its files name the repositories
    /// this machine backs up to.
    fn create_dir(&self) -> Result<(), ArchiveError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.0)
            .map_err(|e| state_io(&self.0, e))
    }

    /// An exclusive `flock` on the location's lock file, released on drop.
    fn lock(&self, location: &str) -> Result<std::fs::File, ArchiveError> {
        use std::os::fd::AsRawFd;
        self.create_dir()?;
        let path = self.record_file("lock", location);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| state_io(&path, e))?;
        // SAFETY: flock on a descriptor we own; the lock goes with the file.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(state_io(&path, std::io::Error::last_os_error()));
        }
        Ok(f)
    }

    /// Replaces the mark whatever it held (a deliberate `init` at a location).
    pub fn store(&self, mark: &Mark) -> Result<(), ArchiveError> {
        self.store_record(MARK, &mark.location, mark)
    }

    /// Replaces the record `kind` of `location` atomically (temp file, fsync, rename),
    /// so a crash never leaves half a file that would block the next run.
    pub fn store_record<T: Serialize>(
        &self,
        kind: &str,
        location: &str,
        value: &T,
    ) -> Result<(), ArchiveError> {
        let file = self.record_file(kind, location);
        self.create_dir()?;
        let mut salt = [0u8; 4];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
        let tmp = file.with_extension(format!("tmp{}-{}", std::process::id(), hex::encode(salt)));
        let json = serde_json::to_vec_pretty(value).expect("state records serialize");
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &file)
        };
        write().map_err(|e| state_io(&file, e))
    }
}

fn state_io(path: &Path, e: std::io::Error) -> ArchiveError {
    ArchiveError::State(format!("{}: {e}", path.display()))
}

/// Compares what this machine saw of the repository's keys with what it shows now: a
/// repository once seen encrypted stays encrypted, and its key ring never goes back.
pub(crate) fn check_keys(
    state: &StateDir,
    mark: &Mark,
    seen: &Seen<'_>,
    encrypted: bool,
    ring: Option<&super::keyring::KeyRing>,
) -> Result<(), ArchiveError> {
    if mark.encrypted == Some(true) && !encrypted {
        return Err(ArchiveError::Downgraded {
            what: format!(
                "pgbunker.json now says it is not (this machine saw it encrypted; mark {})",
                state.mark_file(seen.location).display()
            ),
        });
    }
    let found = ring.and_then(super::keyring::KeyRing::bound_generation);
    if let (Some(seen_gen), Some(found)) = (mark.generation, found) {
        if found < seen_gen {
            return Err(ArchiveError::RingRolledBack {
                seen: seen_gen,
                found,
                mark_file: state.mark_file(seen.location).display().to_string(),
            });
        }
    }
    Ok(())
}

/// What the repository shows now.
pub(crate) struct Seen<'a> {
    pub location: &'a str,
    pub repo_id: &'a str,
    pub seq: u64,
}

/// Compares what the repository shows now with the mark. `old_entry_sha` is the
/// SHA-256 of the entry at the marked sequence number as stored now (`None` if gone).
pub(crate) fn check(
    state: &StateDir,
    mark: &Mark,
    seen: &Seen<'_>,
    old_entry_sha: Option<&str>,
) -> Result<(), ArchiveError> {
    let file = state.mark_file(seen.location).display().to_string();
    if mark.repo_id != seen.repo_id {
        return Err(ArchiveError::Swapped {
            location: seen.location.into(),
            pinned: mark.repo_id.clone(),
            found: seen.repo_id.into(),
            mark_file: file,
        });
    }
    if seen.seq < mark.max_seq {
        return Err(ArchiveError::RolledBack {
            seen: mark.max_seq,
            found: seen.seq,
            mark_file: file,
        });
    }
    if old_entry_sha != Some(mark.sha256.as_str()) {
        return Err(ArchiveError::Forked {
            seq: mark.max_seq,
            mark_file: file,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(seq: u64) -> Mark {
        Mark {
            location: "s3://b/p".into(),
            repo_id: "aa".into(),
            max_seq: seq,
            sha256: format!("sha{seq}"),
            encrypted: None,
            generation: None,
        }
    }

    #[test]
    fn marks_only_rise_and_checks_catch_rollback_fork_and_swap() {
        let dir = tempfile::tempdir().unwrap();
        let st = StateDir::new(dir.path().join("state"));
        assert_eq!(st.load("s3://b/p").unwrap(), None);
        st.raise(&mark(5)).unwrap();
        st.raise(&mark(3)).unwrap();
        assert_eq!(st.load("s3://b/p").unwrap(), Some(mark(5)));

        let m = mark(5);
        let seen = |seq, repo_id| Seen {
            location: "s3://b/p",
            repo_id,
            seq,
        };
        check(&st, &m, &seen(7, "aa"), Some("sha5")).unwrap();
        check(&st, &m, &seen(5, "aa"), Some("sha5")).unwrap();
        assert!(matches!(
            check(&st, &m, &seen(4, "aa"), Some("sha5")),
            Err(ArchiveError::RolledBack {
                seen: 5,
                found: 4,
                ..
            })
        ));
        assert!(matches!(
            check(&st, &m, &seen(7, "aa"), Some("other")),
            Err(ArchiveError::Forked { seq: 5, .. })
        ));
        assert!(matches!(
            check(&st, &m, &seen(7, "aa"), None),
            Err(ArchiveError::Forked { .. })
        ));
        assert!(matches!(
            check(&st, &m, &seen(7, "bb"), Some("sha5")),
            Err(ArchiveError::Swapped { .. })
        ));
    }
}
