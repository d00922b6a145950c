//! The repository format (see `schema/FORMAT.md`): layout, key slots, per-backup data
//! keys, chunks, the encrypted manifest, the plaintext summary, and the hash-chained
//! catalog that commits backups.

pub mod audit;
mod chain;
mod chunk_index;
pub mod chunk_sweep;
pub mod copy;
mod keyerror;
mod keymgmt;
mod keyring;
mod keyslot;
mod keysource;
mod layout;
mod lifecycle;
pub mod lock;
mod manifest;
mod reader;
mod reading;
mod repo;
pub mod retention;
mod sealed;
pub mod sweep;
mod timestamp;
pub mod trust;
mod watermark;
mod writer;

pub use chain::{CatalogState, LiveBackup, Tombstone};
pub use keyerror::KeyError;
pub use keymgmt::{GenerationInfo, KeyAdded, KeyRotation, KeyStatus, SlotRemoval};
pub use keyslot::SlotInfo;
pub use keysource::{read_secret_file, KeySource};
pub use layout::{
    backup_started_at, new_backup_id, parse_shared_chunk, shared_chunk, BackupLayout,
    BACKUPS as BACKUPS_DIR, CHUNKS as CHUNKS_DIR,
};
pub use lifecycle::HoldChange;
pub use manifest::{
    BackupParams, ChunkBase, ChunkRecord, CopyFormat, LargeObjectRecord, LargeObjects, Manifest,
    PartRecord, SelectionRecord, SourceInfo, TableRecord, LARGE_OBJECTS_TABLE_NO,
};
pub use reader::{backup_totals, BackupReader, Fetched};
pub use reading::{LockNeed, OpenBackup, ReadLock};
pub use repo::{RepoConfig, Repository, FORMAT_VERSION};
pub use timestamp::Timestamp;
pub use trust::{
    Contact, MarkFile, MarkImport, Notice, Purpose, Removal, TimeField, TrustError, TrustOptions,
    CLOCK_SKEW,
};
pub use watermark::{Mark, StateDir};
pub use writer::{BackupWriter, ChunkSealer, ChunkWritten, Summary};

use thiserror::Error;

use crate::codec::CodecError;
use crate::error::{Class, Classify};
use crate::store::StoreError;

#[derive(Debug, Error)]
pub enum ArchiveError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{what}: {source}")]
    Codec {
        what: String,
        #[source]
        source: CodecError,
    },
    #[error("{0} is not a pgbunker repository (no pgbunker.json)")]
    NotARepository(String),
    #[error("{0} already holds a pgbunker repository")]
    AlreadyInitialized(String),
    #[error(
        "repository format version {0} is newer than this pgbunker understands ({max})",
        max = FORMAT_VERSION
    )]
    NewerFormat(u32),
    #[error(
        "this repository is format {0}: each of its backups is a full copy, and this \
         pgbunker writes deduplicated backups (format {max}) only",
        max = FORMAT_VERSION
    )]
    NeedsUpgrade(u32),
    #[error("no encryption key given")]
    NoKey,
    #[error(
        "a key was given, but pgbunker.json says this repository is unencrypted: refusing \
         to write or read anything in the clear"
    )]
    UnexpectedPlaintext,
    #[error("the key does not open this repository (no key slot matches it)")]
    WrongKey,
    #[error("{0}")]
    BadKeyInput(String),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error("the repository is corrupt: {0}")]
    Corrupt(String),
    #[error("backup {id:?} not found")]
    NoSuchBackup {
        id: String,
        /// Committed backups whose id looks like it: a typo's likely targets.
        near: Vec<String>,
    },
    #[error("{id:?} is the start of {} backups: {}", .matches.len(), .matches.join(", "))]
    AmbiguousBackup { id: String, matches: Vec<String> },
    #[error("the repository holds no complete backup yet")]
    NoBackups,
    #[error("the client state folder: {0}")]
    State(String),
    #[error(
        "the repository at {location} is not the one this machine knows: its id is {found}, \
         this machine pinned {pinned}"
    )]
    Swapped {
        location: String,
        pinned: String,
        found: String,
        mark_file: String,
    },
    #[error(
        "the repository's catalog went backwards: this machine saw entry {seen}, the newest \
         now is {found}; the newest backups may have been hidden"
    )]
    RolledBack {
        seen: u64,
        found: u64,
        mark_file: String,
    },
    #[error("catalog entry {seq} is not the one this machine saw: the catalog was rewritten")]
    Forked { seq: u64, mark_file: String },
    #[error(
        "{what} is sealed under key ring generation {generation}, but generation {required} \
         was already in force when it was written: it was sealed with a removed or \
         rotated-out key, so it is refused"
    )]
    StaleGeneration {
        what: String,
        generation: u64,
        required: u64,
    },
    #[error("refusing a downgrade to plaintext: the repository is encrypted, but {what}")]
    Downgraded { what: String },
    #[error(
        "the repository's keys changed while {what} was being written (it was sealed under \
         key ring generation {generation}, generation {required} is now in force); nothing \
         was committed"
    )]
    KeysChanged {
        what: String,
        generation: u64,
        required: u64,
    },
    #[error(
        "this machine has seen key ring generation {seen} of this repository, but its \
         newest generation now is {found}: key ring objects were deleted"
    )]
    RingRolledBack {
        seen: u64,
        found: u64,
        mark_file: String,
    },
    /// Another process writes a backup under the same id now: a copy run twice at once.
    #[error(
        "backup {bid} is being written into this repository by another process (pid {pid} \
         on {host}, since {since}): a copy running twice at once"
    )]
    SameBackupBusy {
        bid: String,
        pid: u32,
        host: String,
        since: String,
    },
    #[error("invalid JSON in {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

impl ArchiveError {
    pub(crate) fn codec(what: impl Into<String>, source: CodecError) -> Self {
        ArchiveError::Codec {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        ArchiveError::Json {
            what: what.into(),
            source,
        }
    }
}

impl Classify for ArchiveError {
    fn class(&self) -> Class {
        match self {
            ArchiveError::Store(e) => e.class(),
            ArchiveError::Keys(e) => e.class(),
            ArchiveError::Trust(e) => e.class(),
            ArchiveError::Codec { source, .. } => source.class(),
            ArchiveError::NoKey | ArchiveError::WrongKey | ArchiveError::BadKeyInput(_) => {
                Class::Key
            }
            ArchiveError::UnexpectedPlaintext => Class::Corrupt,
            ArchiveError::Corrupt(_)
            | ArchiveError::Json { .. }
            | ArchiveError::Swapped { .. }
            | ArchiveError::RolledBack { .. }
            | ArchiveError::Forked { .. }
            | ArchiveError::StaleGeneration { .. }
            | ArchiveError::Downgraded { .. }
            | ArchiveError::RingRolledBack { .. } => Class::Corrupt,
            ArchiveError::State(_) => Class::Io,
            ArchiveError::NoSuchBackup { .. } | ArchiveError::AmbiguousBackup { .. } => {
                Class::Usage
            }
            _ => Class::Repository,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            ArchiveError::Store(e) => e.hint(),
            ArchiveError::Keys(e) => e.hint(),
            ArchiveError::Trust(e) => e.hint(),
            ArchiveError::SameBackupBusy { .. } => Some(
                "nothing was written; run it again when the other one has ended (the lock of a \
                 process that died ends on its host at once, elsewhere after a few minutes)"
                    .into(),
            ),
            ArchiveError::Codec { source, .. } if source.class() == Class::Key => Some(
                "PGBUNKER_KEY must be 64 hex characters; a key file must hold 32 raw bytes, \
                 64 hex characters or base64 of 32 bytes"
                    .into(),
            ),
            ArchiveError::NoKey => Some(
                "set PGBUNKER_KEY_FILE (a file with 64 hex characters), PGBUNKER_KEY, or \
                 PGBUNKER_PASSPHRASE / PGBUNKER_PASSPHRASE_FILE"
                    .into(),
            ),
            ArchiveError::WrongKey => Some(
                "use a key or passphrase that has a slot in this repository \
                 (`pgbunker key list` shows the slots, even without a key)"
                    .into(),
            ),
            ArchiveError::NotARepository(_) => {
                Some("create one with `pgbunker init --repo <PATH>`".into())
            }
            ArchiveError::NoSuchBackup { near, .. } if !near.is_empty() => Some(format!(
                "did you mean {}? `pgbunker list --repo <PATH>` shows the backups",
                near.join(" or ")
            )),
            ArchiveError::NoSuchBackup { .. } | ArchiveError::NoBackups => {
                Some("`pgbunker list --repo <PATH>` shows the backups".into())
            }
            ArchiveError::AmbiguousBackup { .. } => Some(
                "give more of the id (or of its last part, after the dash), or the whole id".into(),
            ),
            ArchiveError::NewerFormat(_) => Some("upgrade pgbunker".into()),
            ArchiveError::NeedsUpgrade(_) => Some(
                "run `pgbunker upgrade --repo <PATH>` once (it changes no backup: every one \
                 stays readable as it is), then back up again; older pgbunker versions can \
                 no longer write to it after that"
                    .into(),
            ),
            ArchiveError::UnexpectedPlaintext => Some(
                "if this repository was created with --insecure-plaintext, unset the key; \
                 otherwise its pgbunker.json was tampered with: check the storage's access logs"
                    .into(),
            ),
            ArchiveError::Swapped { mark_file, .. } => Some(format!(
                "if the repository was replaced on purpose, delete {mark_file}; otherwise \
                 treat the storage as tampered with and check its access logs"
            )),
            ArchiveError::RolledBack { mark_file, .. } | ArchiveError::Forked { mark_file, .. } => {
                Some(format!(
                    "someone with write access deleted or replaced catalog objects: put the \
                     missing catalog/ objects back from a copy and check the storage's access \
                     logs; delete {mark_file} only if you accept the loss"
                ))
            }
            ArchiveError::StaleGeneration { .. } => Some(
                "someone holding a removed or old key wrote to the repository: do not trust \
                 its newest catalog entries; move the refused catalog/ objects aside, check the \
                 storage's access logs, and remove any key that may have leaked"
                    .into(),
            ),
            ArchiveError::Downgraded { .. } => Some(
                "pgbunker.json or the catalog was tampered with: restore the original \
                 pgbunker.json (\"encryption\": \"aes-256-gcm-siv\"), move unencrypted \
                 catalog/ objects aside, and check the storage's access logs"
                    .into(),
            ),
            ArchiveError::KeysChanged { .. } => {
                Some("run the command again: it will use the new keys".into())
            }
            ArchiveError::RingRolledBack { mark_file, .. } => Some(format!(
                "put the missing keyring/ objects back from a copy and check the storage's \
                 access logs; delete {mark_file} only if you accept the loss"
            )),
            ArchiveError::State(_) => Some(
                "set PGBUNKER_STATE_DIR to a writable folder for pgbunker's client state".into(),
            ),
            _ => None,
        }
    }
}
