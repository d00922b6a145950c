//! Reading one committed backup: its manifest (checked against the catalog's hash and
//! the data key's commitment) and its chunks (checked against the manifest).

use sha2::{Digest, Sha256};

use super::chain::LiveBackup;
use super::layout::{self, is_valid_backup_id, BackupLayout};
use super::manifest::{self, ChunkRecord, Manifest, TableRecord};
use super::repo::Repository;
use super::writer::dek_aad;
use super::{ArchiveError, Summary};
use crate::codec::{
    open_blob, open_chunk, AeadId, Base, ChunkHeader, ChunkId, ChunkKeys, CompId, DataKey,
    SecretKey,
};

/// A chunk's object as fetched, with its base's when it is a delta.
pub struct Fetched {
    object: bytes::Bytes,
    bases: Vec<bytes::Bytes>,
}

impl Fetched {
    /// The bytes downloaded.
    pub fn len(&self) -> usize {
        self.object.len() + self.bases.iter().map(bytes::Bytes::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An opened backup. Cheap to clone; chunk reads may run concurrently.
#[derive(Clone)]
pub struct BackupReader {
    repo: Repository,
    layout: BackupLayout,
    dek: Option<DataKey>,
    /// Opens the content-addressed chunks (format 5), under the backup's repository key.
    chunk_keys: ChunkKeys,
    manifest: std::sync::Arc<Manifest>,
}

impl BackupReader {
    pub async fn open(repo: &Repository, live: &LiveBackup) -> Result<Self, ArchiveError> {
        if !is_valid_backup_id(&live.bid) {
            return Err(ArchiveError::Corrupt(format!(
                "the catalog lists an invalid backup id {:?}",
                live.bid
            )));
        }
        let layout = BackupLayout::new(&live.bid);
        let bytes = repo.store().get(&layout.manifest()).await?;
        if hex::encode(Sha256::digest(&bytes)) != live.manifest_sha256 {
            return Err(ArchiveError::Corrupt(format!(
                "the manifest of backup {} does not match the catalog's hash",
                live.bid
            )));
        }
        let mut chunk_keys = ChunkKeys::new(None);
        let dek = match (manifest::rk_id_of(&bytes)?, repo.keys()) {
            (Some(rk_id), Some(ring)) => {
                // A backup of format 3 names its generation in the authenticated
                // catalog: its key must be that generation's current one.
                let rk = match live.generation {
                    Some(g) => ring.current_of(g).filter(|k| k.id() == rk_id),
                    None => ring.get(&rk_id),
                };
                let rk = rk.ok_or_else(|| {
                    ArchiveError::Corrupt(format!(
                        "backup {} was written with repository key {rk_id}, which is not \
                         {} of this key ring",
                        live.bid,
                        match live.generation {
                            Some(g) => format!("the current key of generation {g}"),
                            None => "a key".into(),
                        }
                    ))
                })?;
                let wrapped = repo.store().get(&layout.dek(&rk_id)).await?;
                let raw = open_blob(
                    &rk.dek_wrapping_key(),
                    &dek_aad(repo, &live.bid, &rk_id, live.generation),
                    &wrapped,
                )
                .map_err(|e| {
                    ArchiveError::codec(format!("unwrap the data key of {}", live.bid), e)
                })?;
                let raw: [u8; 32] = raw.as_slice().try_into().map_err(|_| {
                    ArchiveError::Corrupt("a wrapped data key has the wrong size".into())
                })?;
                chunk_keys = ChunkKeys::new(Some(rk));
                Some(DataKey::new(SecretKey::from_bytes(raw), &live.bid))
            }
            (None, None) => None,
            _ => {
                return Err(ArchiveError::Corrupt(format!(
                    "the encryption of backup {} does not match the repository's",
                    live.bid
                )))
            }
        };
        let manifest = manifest::decode_bound(
            &bytes,
            repo.repo_id(),
            &layout.id_bytes(),
            dek.as_ref(),
            live.generation,
        )?;
        if manifest.backup_id != live.bid {
            return Err(ArchiveError::Corrupt(
                "the manifest names another backup".into(),
            ));
        }
        Ok(BackupReader {
            repo: repo.clone(),
            layout,
            dek,
            chunk_keys,
            manifest: std::sync::Arc::new(manifest),
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The keys its content-addressed chunks were sealed with.
    pub fn chunk_keys(&self) -> &ChunkKeys {
        &self.chunk_keys
    }

    /// Where a chunk of this backup lives: in the shared chunk store when it has an id,
    /// else in the backup's folder.
    pub fn chunk_path(&self, table: &TableRecord, chunk: &ChunkRecord) -> String {
        match &chunk.id {
            Some(id) => layout::shared_chunk(id),
            None => self.layout.chunk(table.table_no, chunk.part, chunk.index),
        }
    }

    /// Fetches a chunk's object, checked against the manifest's length and SHA-256,
    /// with the objects of its bases when it is a delta.
    pub async fn fetch_chunk(
        &self,
        table: &TableRecord,
        chunk: &ChunkRecord,
    ) -> Result<Fetched, ArchiveError> {
        let key = self.chunk_path(table, chunk);
        let store = self.repo.store();
        let base_keys: Vec<String> = chunk
            .bases
            .iter()
            .map(|b| layout::shared_chunk(&b.id))
            .collect();
        let (bytes, bases) = futures::try_join!(
            store.get(&key),
            futures::future::try_join_all(base_keys.iter().map(|k| store.get(k)))
        )?;
        if bytes.len() as u64 != chunk.ct_len {
            return Err(ArchiveError::Corrupt(format!(
                "chunk {key} is {} bytes, the manifest says {}",
                bytes.len(),
                chunk.ct_len
            )));
        }
        if hex::encode(Sha256::digest(&bytes)) != chunk.ct_sha256 {
            return Err(ArchiveError::Corrupt(format!(
                "chunk {key} does not match its SHA-256 in the manifest"
            )));
        }
        Ok(Fetched {
            object: bytes,
            bases,
        })
    }

    /// Authenticates, decrypts and decompresses a fetched chunk, which it takes over
    /// (decrypted in place when nothing else holds it). CPU-bound.
    pub fn open_chunk(
        &self,
        table: &TableRecord,
        chunk: &ChunkRecord,
        fetched: Fetched,
    ) -> Result<Vec<u8>, ArchiveError> {
        let Fetched { object, bases } = fetched;
        if let Some(hex_id) = &chunk.id {
            let what = |hex_id: &str| format!("chunk {}", layout::shared_chunk(hex_id));
            let parse = |hex_id: &str| {
                ChunkId::parse(hex_id).ok_or_else(|| {
                    ArchiveError::Corrupt(format!(
                        "{}: the manifest's id is malformed",
                        what(hex_id)
                    ))
                })
            };
            let id = parse(hex_id)?;
            let repo_id = self.repo.repo_id();
            // A base is a whole chunk: one that is itself a delta does not open here.
            let mut opened = Vec::with_capacity(bases.len());
            for (b, object) in chunk.bases.iter().zip(bases) {
                let base_id = parse(&b.id)?;
                let tuples = self
                    .chunk_keys
                    .open(
                        repo_id,
                        &base_id,
                        Vec::from(object),
                        b.raw_len as usize,
                        &[],
                    )
                    .map_err(|e| ArchiveError::codec(what(&b.id), e))?;
                opened.push((base_id, tuples));
            }
            let bases: Vec<Base<'_>> = opened
                .iter()
                .map(|(id, t)| Base { id: *id, tuples: t })
                .collect();
            return self
                .chunk_keys
                .open(
                    repo_id,
                    &id,
                    Vec::from(object),
                    chunk.raw_len as usize,
                    &bases,
                )
                .map_err(|e| ArchiveError::codec(what(hex_id), e));
        }
        let expected = ChunkHeader {
            aead: if self.dek.is_some() {
                AeadId::Aes256GcmSiv
            } else {
                AeadId::None
            },
            comp: CompId::Zstd,
            is_final: table.is_final(chunk),
            columns: false,
            table_no: table.table_no,
            part: chunk.part,
            index: chunk.index,
            backup: self.layout.id_bytes(),
            dek_id: self.dek.as_ref().map(DataKey::id).unwrap_or([0; 8]),
            nonce: [0; 12],
        };
        let key = self.dek.as_ref().map(DataKey::chunk_key);
        open_chunk(
            key.as_ref(),
            &expected,
            self.repo.repo_id(),
            Vec::from(object),
            chunk.raw_len as usize,
        )
        .map_err(|e| ArchiveError::codec(format!("chunk {}", self.chunk_path(table, chunk)), e))
    }
}

/// Table count, rows and raw bytes of a backup. `summary.json` no longer shows them
/// (they track the number of patients); the sealed manifest does. Old summaries still
/// carry them and spare the manifest read. `None` when the manifest does not open:
/// `verify` is the place to say why.
pub async fn backup_totals(
    repo: &Repository,
    live: &LiveBackup,
    summary: Option<&Summary>,
) -> Option<(u64, u64, u64)> {
    if let Some(Summary {
        tables: Some(t),
        rows: Some(r),
        raw_bytes: Some(b),
        ..
    }) = summary
    {
        return Some((*t, *r, *b));
    }
    let reader = BackupReader::open(repo, live).await.ok()?;
    let tables = &reader.manifest().tables;
    Some((
        tables.len() as u64,
        tables.iter().map(|t| t.rows).sum(),
        tables.iter().map(|t| t.raw_bytes).sum(),
    ))
}
