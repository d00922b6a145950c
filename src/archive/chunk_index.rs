//! What the repository already stores (format 5): the content-addressed chunks the
//! live backups list, by id, so a backup seals and uploads only chunks that are new.
//!
//! Built from the live manifests of the current repository key (chunks sealed under an
//! older key are never reused: a removed key must not be able to vouch for new
//! backups). About 85 bytes per chunk in memory: at 2 MiB per chunk, some 45 MB per TB
//! of distinct raw table data, whatever the number of backups listing it.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{ArchiveError, BackupReader, Repository};
use crate::codec::ChunkId;
use crate::error::{Class, Classify};

/// A stored chunk's object, as the manifests that list it record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredObject {
    pub ct_len: u64,
    pub sha256: [u8; 32],
}

/// The chunks stored already: those of live backups, and those this backup wrote.
#[derive(Debug, Default)]
pub struct ChunkIndex {
    live: HashMap<ChunkId, StoredObject>,
    written: Mutex<HashMap<ChunkId, StoredObject>>,
}

impl ChunkIndex {
    /// Reads every live manifest sealed under the repository key `rk_id`. A manifest
    /// that does not open is passed over with a warning: its chunks are then written
    /// again if needed (create-only), never assumed; `verify` is where it is reported.
    pub async fn load(repo: &Repository, rk_id: &[u8; 8]) -> Result<ChunkIndex, ArchiveError> {
        let mut live = HashMap::new();
        for backup in repo.catalog().await?.live {
            let reader = match BackupReader::open(repo, &backup).await {
                Ok(r) => r,
                Err(e) if e.class() == Class::Corrupt => {
                    tracing::warn!(
                        "backup {} does not open ({e}): its chunks are not reused",
                        backup.bid
                    );
                    continue;
                }
                Err(e) => return Err(e),
            };
            if reader.chunk_keys().rk_id() != *rk_id {
                continue;
            }
            for c in reader.manifest().all_chunks() {
                let (Some(id), Ok(sha)) = (
                    c.id.as_deref().and_then(ChunkId::parse),
                    hex::decode(&c.ct_sha256),
                ) else {
                    continue;
                };
                let Ok(sha256) = <[u8; 32]>::try_from(sha.as_slice()) else {
                    continue;
                };
                live.insert(
                    id,
                    StoredObject {
                        ct_len: c.ct_len,
                        sha256,
                    },
                );
            }
        }
        Ok(ChunkIndex {
            live,
            written: Mutex::default(),
        })
    }

    pub fn get(&self, id: &ChunkId) -> Option<StoredObject> {
        self.live
            .get(id)
            .copied()
            .or_else(|| self.written.lock().expect("not poisoned").get(id).copied())
    }

    /// Remembers a chunk this backup stored, so other tables that hold the same tuples
    /// list it instead of writing it again.
    pub fn wrote(&self, id: ChunkId, object: StoredObject) {
        self.written
            .lock()
            .expect("not poisoned")
            .insert(id, object);
    }

    /// Chunks the live backups list.
    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }
}
