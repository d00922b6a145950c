//! What the repository already stores (format 5): the content-addressed chunks the
//! live backups list, by id, so a backup seals and uploads only chunks that are new.
//!
//! Built from the live manifests of the current repository key (chunks sealed under an
//! older key are never reused: a removed key must not be able to vouch for new
//! backups). About 85 bytes per chunk in memory: at 2 MiB per chunk, some 45 MB per TB
//! of distinct raw table data, whatever the number of backups listing it.

use std::collections::HashMap;

use futures::StreamExt;
use std::sync::Mutex;

use super::{ArchiveError, BackupReader, ChunkBase, Manifest, Repository};
use crate::codec::{ChunkId, MAX_BASES};
use crate::error::{Class, Classify};

/// A stored chunk's object, as the manifests that list it record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub ct_len: u64,
    pub sha256: [u8; 32],
    /// The chunks it is a delta against.
    pub bases: Vec<ChunkBase>,
}

/// Manifests read at once while the index is built.
const OPEN_AT_ONCE: usize = 8;

/// Bases larger than this are not offered, nor are chunks larger than this sealed as
/// deltas: with three bases and the chunk, a delta stays within zstd's 128 MiB window.
pub const MAX_BASE_BYTES: u64 = 32 << 20;

/// Where a chunk sits in a backup: the table's OID (0 for the large objects), the
/// part and the index in it.
pub type Position = (u32, u32, u64);

/// The chunks stored already: those of live backups, and those this backup wrote.
#[derive(Debug, Default)]
pub struct ChunkIndex {
    live: HashMap<ChunkId, StoredObject>,
    written: Mutex<HashMap<ChunkId, StoredObject>>,
    /// The newest live backup's whole chunks by position (a delta's bases stand for
    /// it), which a new version there may be a delta against: never a chain.
    previous: HashMap<Position, Vec<(ChunkId, u64)>>,
}

impl ChunkIndex {
    /// Reads every live manifest sealed under the repository key `rk_id`. A manifest
    /// that does not open is passed over with a warning: its chunks are then written
    /// again if needed (create-only), never assumed; `verify` is where it is reported.
    pub async fn load(repo: &Repository, rk_id: &[u8; 8]) -> Result<ChunkIndex, ArchiveError> {
        let mut live = HashMap::new();
        let mut previous = HashMap::new();
        let mut newest = None;
        // Opened several at a time: each is a download, an unwrap and a parse.
        let backups = repo.catalog().await?.live;
        let mut opened = futures::stream::iter(backups)
            .map(|backup| async move {
                let reader = BackupReader::open(repo, &backup).await;
                (backup, reader)
            })
            .buffer_unordered(OPEN_AT_ONCE);
        while let Some((backup, reader)) = opened.next().await {
            let reader = match reader {
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
            let m = reader.manifest();
            let when = (backup.created_at.time(), backup.bid.clone());
            if newest.as_ref().is_none_or(|n| when > *n) {
                newest = Some(when);
                previous = positions(m);
            }
            for c in m.all_chunks() {
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
                        bases: c.bases.clone(),
                    },
                );
            }
        }
        Ok(ChunkIndex {
            live,
            written: Mutex::default(),
            previous,
        })
    }

    pub fn get(&self, id: &ChunkId) -> Option<StoredObject> {
        self.live
            .get(id)
            .cloned()
            .or_else(|| self.written.lock().expect("not poisoned").get(id).cloned())
    }

    /// The whole chunks the newest live backup had at `at` and beside it (rows move
    /// between neighbours when a boundary moves): what a changed chunk there is tried
    /// as a delta against, at most `MAX_BASES`, each once.
    pub fn previous(&self, at: Position) -> Vec<(ChunkId, u64)> {
        let (oid, part, index) = at;
        let around = [index.checked_sub(1), Some(index), index.checked_add(1)];
        let mut out: Vec<(ChunkId, u64)> = Vec::new();
        for i in around.into_iter().flatten() {
            for w in self.previous.get(&(oid, part, i)).into_iter().flatten() {
                // A chunk of one huge value is no dictionary worth holding in memory.
                if w.1 <= MAX_BASE_BYTES && !out.iter().any(|(id, _)| *id == w.0) {
                    out.push(*w);
                }
            }
        }
        out.truncate(MAX_BASES);
        out
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

/// A manifest's chunks by position, each as whole chunks (a delta's bases).
fn positions(m: &Manifest) -> HashMap<Position, Vec<(ChunkId, u64)>> {
    let mut out = HashMap::new();
    for t in m.tables.iter().chain(m.large_object_data()) {
        for c in &t.chunks {
            let whole: Vec<(ChunkId, u64)> = if c.bases.is_empty() {
                c.id.as_deref()
                    .and_then(ChunkId::parse)
                    .map(|id| (id, c.raw_len))
                    .into_iter()
                    .collect()
            } else {
                c.bases
                    .iter()
                    .filter_map(|b| ChunkId::parse(&b.id).map(|id| (id, b.raw_len)))
                    .collect()
            };
            out.insert((t.oid, c.part, c.index), whole);
        }
    }
    out
}
