//! Errors of key management (adding, removing and rotating keys). Kept apart from
//! [`super::ArchiveError`]'s general variants because each one needs its own advice:
//! a wrong step here can lock every user out of their backups.

use thiserror::Error;

use crate::error::{Class, Classify};

/// Why a key change was refused; each hint says what to do instead.
#[derive(Debug, Error)]
pub enum KeyError {
    #[error("a key slot for this key already exists (keys/{kek_id})")]
    SlotExists { kek_id: String },
    #[error("the repository has no key slot {kek_id:?}")]
    NoSuchSlot { kek_id: String },
    #[error(
        "key slot {kek_id} is the only one: removing it would lock everyone out of the \
         repository for good; nothing was removed"
    )]
    LastSlot { kek_id: String },
    #[error(
        "another key removal ran at the same time and no key slot would have been left; \
         key slot {kek_id} was put back"
    )]
    ConcurrentRemoval { kek_id: String },
    #[error("no new key given")]
    NoNewKey,
    #[error("the two passphrases typed differ; nothing was changed")]
    PassphrasesDiffer,
    #[error("the repository is not encrypted: it has no keys to manage")]
    NotEncrypted,
    #[error(
        "this version-1 repository has {count} key slots, but version 1 only ever wrote \
         one; pgbunker will not guess which one to upgrade"
    )]
    SeveralV1Slots { count: usize },
    #[error(
        "an earlier upgrade of the keys to format 2 did not finish: keyring/ exists but \
         key slot {kek_id} is still version 1"
    )]
    UnfinishedUpgrade { kek_id: String },
    #[error("key slot {kek_id} has version {version}, newer than this pgbunker understands")]
    NewerSlot { kek_id: String, version: u32 },
}

impl Classify for KeyError {
    fn class(&self) -> Class {
        match self {
            KeyError::SlotExists { .. }
            | KeyError::NoSuchSlot { .. }
            | KeyError::LastSlot { .. }
            | KeyError::ConcurrentRemoval { .. }
            | KeyError::NoNewKey
            | KeyError::PassphrasesDiffer
            | KeyError::NotEncrypted => Class::Usage,
            KeyError::SeveralV1Slots { .. }
            | KeyError::UnfinishedUpgrade { .. }
            | KeyError::NewerSlot { .. } => Class::Key,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(
            match self {
                KeyError::SlotExists { .. } => {
                    "that key already opens the repository; `pgbunker key list` shows the slots"
                }
                KeyError::NoSuchSlot { .. } => {
                    "`pgbunker key list` shows the slot ids (16 hex digits)"
                }
                KeyError::LastSlot { .. } => {
                    "add another key first (`pgbunker key add`), check that it opens the \
                     repository, then remove this one"
                }
                KeyError::ConcurrentRemoval { .. } => {
                    "run `pgbunker key list` and remove one slot at a time"
                }
                KeyError::NoNewKey => {
                    "set PGBUNKER_NEW_KEY_FILE (a file with 64 hex characters), \
                     PGBUNKER_NEW_KEY, PGBUNKER_NEW_PASSPHRASE_FILE or PGBUNKER_NEW_PASSPHRASE, \
                     or run in a terminal to type a new passphrase"
                }
                KeyError::PassphrasesDiffer => "type the same new passphrase twice",
                KeyError::NotEncrypted => {
                    "a plaintext repository cannot be encrypted in place: create an encrypted \
                     one with `pgbunker init` and back up into it"
                }
                KeyError::SeveralV1Slots { .. } => {
                    "move every slot except the one of the key you use out of keys/, run the \
                     command again, then add the other keys with `pgbunker key add`"
                }
                KeyError::UnfinishedUpgrade { .. } => {
                    "if no other pgbunker is changing this repository's keys right now, move \
                     the keyring/ folder aside (it holds only copies of keys the version-1 \
                     slot still has) and run the command again"
                }
                KeyError::NewerSlot { .. } => "upgrade pgbunker",
            }
            .into(),
        )
    }
}
