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
    #[error(
        "this key (slot {kek_id}) was removed from the repository: it cannot open key ring \
         generation {generation}, so it can still read backups written before its removal \
         but can write nothing"
    )]
    Revoked { kek_id: String, generation: u64 },
    #[error(
        "key slot(s) {} have no public key in the key ring yet, so the new ring key cannot \
         be handed to them; nothing was removed",
        kek_ids.join(", ")
    )]
    SlotNotUpgraded { kek_ids: Vec<String> },
    #[error(
        "an unfinished key change declared key ring generation {generation} under ring key \
         {ring_key_id}, which this key slot was not given"
    )]
    PendingGeneration {
        generation: u64,
        ring_key_id: String,
    },
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
            KeyError::SlotNotUpgraded { .. } => Class::Usage,
            KeyError::SeveralV1Slots { .. }
            | KeyError::UnfinishedUpgrade { .. }
            | KeyError::NewerSlot { .. }
            | KeyError::Revoked { .. }
            | KeyError::PendingGeneration { .. } => Class::Key,
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
                KeyError::Revoked { .. } => {
                    "use a key that still has a slot (`pgbunker key list` shows them); if this \
                     key should open the repository again, have a key holder add it with \
                     `pgbunker key add`"
                }
                KeyError::SlotNotUpgraded { .. } => {
                    "run one command that writes (for example `pgbunker key rotate`) with each \
                     of those keys first, so their slots get a public key, then remove again"
                }
                KeyError::PendingGeneration { .. } => {
                    "run the command again with the key that made the key change, or with \
                     another key that still has a slot, to finish it"
                }
            }
            .into(),
        )
    }
}
