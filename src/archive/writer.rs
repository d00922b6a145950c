//! Writing one backup: data key first, then chunks, then summary and manifest, then the
//! catalog commit. Until the commit a backup is incomplete and never restorable.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::chain::{self, LiveBackup};
use super::layout::{new_backup_id, BackupLayout};
use super::lock::{LockGuard, LockKind};
use super::manifest::{self, ChunkRecord, Manifest};
use super::repo::Repository;
use super::timestamp::Timestamp;
use super::ArchiveError;
use crate::codec::{
    seal_blob, seal_chunk, AeadId, ChunkHeader, CompId, DataKey, SealedChunk, SecretKey,
};

/// A backup's totals. `summary.json` holds only what anyone who can list the bucket
/// sees anyway (times, stored bytes, chunk count, key ids); [`Summary::public`] strips
/// the rest, which lives in the sealed manifest. Summaries written before that carry
/// the row, table and byte totals and the server's build, and still read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    pub format_version: u32,
    pub backup_id: String,
    pub tool_version: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub duration_ms: u64,
    /// The source server's exact build: tells an attacker which flaws it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    /// Table count, rows and raw bytes track the number of patients over time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tables: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_bytes: Option<u64>,
    pub stored_bytes: u64,
    pub chunks: u64,
    pub encrypted: bool,
    #[serde(default)]
    pub rk_id: Option<String>,
    #[serde(default)]
    pub dek_id: Option<String>,
}

impl Summary {
    /// What `summary.json` may show to whoever can read the bucket.
    pub fn public(&self) -> Summary {
        Summary {
            server_version: None,
            tables: None,
            rows: None,
            raw_bytes: None,
            ..self.clone()
        }
    }
}

/// The AAD of a wrapped data key. From format 3 it names the key ring generation, so a
/// data key wrapped under an older generation's RK cannot pass for a newer backup's.
pub(crate) fn dek_aad(
    repo: &Repository,
    bid: &str,
    rk_id: &str,
    generation: Option<u64>,
) -> Vec<u8> {
    let repo_id = &repo.config().repo_id;
    match generation {
        Some(g) => format!("pgbunker/v3/dek\0{repo_id}\0{bid}\0{rk_id}\0{g}").into_bytes(),
        None => format!("pgbunker/v1/dek\0{repo_id}\0{bid}\0{rk_id}").into_bytes(),
    }
}

/// Everything a worker needs to seal chunks of one backup; cheap to clone into rayon.
#[derive(Clone)]
pub struct ChunkSealer {
    key: Option<SecretKey>,
    repo_id: [u8; 16],
    backup: [u8; 16],
    dek_id: [u8; 8],
    level: i32,
}

impl ChunkSealer {
    /// Compresses and encrypts whole tuples, by column when they are `binary` COPY
    /// tuples. CPU-bound: call it off the async runtime.
    pub fn seal(
        &self,
        table_no: u32,
        part: u32,
        index: u64,
        is_final: bool,
        binary: bool,
        tuples: &[u8],
    ) -> Result<SealedChunk, ArchiveError> {
        let header = ChunkHeader {
            aead: AeadId::None,
            comp: CompId::Zstd,
            is_final,
            columns: binary,
            table_no,
            part,
            index,
            backup: self.backup,
            dek_id: self.dek_id,
            nonce: [0; 12],
        };
        seal_chunk(self.key.as_ref(), header, &self.repo_id, tuples, self.level)
            .map_err(|e| ArchiveError::codec("seal a chunk", e))
    }
}

/// A backup being written.
pub struct BackupWriter {
    repo: Repository,
    layout: BackupLayout,
    /// Keeps prune away from this backup's objects until it commits.
    lock: LockGuard,
    dek: Option<DataKey>,
    sealer: ChunkSealer,
    /// Chunks written but not yet flushed to disk (local folders): all are flushed
    /// before the manifest that names them.
    unsynced: std::sync::Mutex<Vec<String>>,
}

impl BackupWriter {
    /// Starts a backup: a new id and data key; the wrapped key is written first so
    /// even an interrupted backup's objects can be attributed (and pruned) later.
    pub async fn begin(repo: &Repository, compress_level: i32) -> Result<Self, ArchiveError> {
        // Check the catalog (chain, high-water mark, repository identity) before the
        // first object goes up, not only at the commit; then bring the keys to the
        // current format, so this backup is sealed under the generation in force.
        repo.catalog().await?;
        let mut repo = repo.clone();
        if repo.is_encrypted() {
            repo.upgrade_keys().await?;
        }
        let repo = &repo;
        let bid = new_backup_id();
        let layout = BackupLayout::new(&bid);
        let lock = LockGuard::acquire(repo, LockKind::Backup, &bid).await?;
        let dek = repo.keys().map(|_| DataKey::new(SecretKey::random(), &bid));
        if let (Some(ring), Some(dek)) = (repo.keys(), &dek) {
            let rk = &ring.current;
            let wrapped = seal_blob(
                &rk.dek_wrapping_key(),
                &dek_aad(repo, &bid, &rk.id(), ring.bound_generation()),
                dek.secret().expose(),
            )
            .map_err(|e| ArchiveError::codec("wrap the data key", e))?;
            repo.store()
                .put_new(&layout.dek(&rk.id()), Bytes::from(wrapped))
                .await?;
        }
        let sealer = ChunkSealer {
            key: dek.as_ref().map(DataKey::chunk_key),
            repo_id: *repo.repo_id(),
            backup: layout.id_bytes(),
            dek_id: dek.as_ref().map(DataKey::id).unwrap_or([0; 8]),
            level: compress_level,
        };
        Ok(BackupWriter {
            repo: repo.clone(),
            layout,
            lock,
            dek,
            sealer,
            unsynced: std::sync::Mutex::default(),
        })
    }

    pub fn backup_id(&self) -> &str {
        &self.layout.bid
    }

    pub fn sealer(&self) -> ChunkSealer {
        self.sealer.clone()
    }

    pub fn rk_id(&self) -> Option<String> {
        self.repo.keys().map(|k| k.current.id())
    }

    /// The key ring generation this backup is sealed under (format 3).
    fn generation(&self) -> Option<u64> {
        self.repo.keys().and_then(|k| k.bound_generation())
    }

    pub fn dek_id(&self) -> Option<String> {
        self.dek.as_ref().map(|d| hex::encode(d.id()))
    }

    /// Uploads a sealed chunk (create-only) and returns its manifest record.
    pub async fn put_chunk(
        &self,
        table_no: u32,
        part: u32,
        index: u64,
        sealed: SealedChunk,
        raw_len: u64,
        rows: u64,
    ) -> Result<ChunkRecord, ArchiveError> {
        let record = ChunkRecord {
            part,
            index,
            ct_len: sealed.bytes.len() as u64,
            ct_sha256: hex::encode(sealed.sha256),
            raw_len,
            rows,
        };
        let key = self.layout.chunk(table_no, part, index);
        self.repo
            .store()
            .put_new_unsynced(&key, Bytes::from(sealed.bytes))
            .await?;
        self.unsynced.lock().expect("not poisoned").push(key);
        Ok(record)
    }

    /// Ends a backup that failed: deletes what it wrote (best effort: what stays is
    /// a leftover for prune) and its lock, so nothing of it holds prune back. Both go
    /// at once: when storage is what failed, the cleanup waits out one retry budget,
    /// not two.
    pub async fn abandon(&self) -> Result<(), ArchiveError> {
        let (cleaned, unlocked) = tokio::join!(
            self.repo.delete_backup_objects(&self.layout.bid),
            self.lock.delete()
        );
        unlocked?;
        cleaned.map(|_| ())
    }

    /// Writes summary and manifest, then commits the backup to the catalog. Only after
    /// this returns is the backup complete.
    pub async fn commit(
        self,
        mut manifest: Manifest,
        summary: Summary,
    ) -> Result<LiveBackup, ArchiveError> {
        // The catalog entry must never survive a power loss its chunks did not.
        let unsynced = std::mem::take(&mut *self.unsynced.lock().expect("not poisoned"));
        self.repo.store().sync_written(unsynced).await?;
        let summary_json =
            serde_json::to_vec_pretty(&summary.public()).expect("summary serializes");
        manifest.summary_sha256 = hex::encode(Sha256::digest(&summary_json));
        self.repo
            .store()
            .put_new(&self.layout.summary(), Bytes::from(summary_json))
            .await?;
        let rk_id = self.rk_id().unwrap_or_default();
        let bytes = manifest::encode_bound(
            &manifest,
            self.repo.repo_id(),
            &self.layout.id_bytes(),
            self.dek.as_ref(),
            &rk_id,
            self.generation(),
        )?;
        let live = LiveBackup {
            bid: self.layout.bid.clone(),
            manifest_sha256: hex::encode(Sha256::digest(&bytes)),
            created_at: manifest.finished_at.clone(),
            keep_until: None,
            legal_hold: false,
            generation: self.generation(),
        };
        self.repo
            .store()
            .put_new(&self.layout.manifest(), Bytes::from(bytes))
            .await?;
        // A prune that ran with no grace period while this backup was being written
        // may have taken its objects for leftovers: never commit a backup whose data
        // key is gone.
        if let Some(rk_id) = self.rk_id() {
            if self
                .repo
                .store()
                .size(&self.layout.dek(&rk_id))
                .await?
                .is_none()
            {
                return Err(ArchiveError::Corrupt(format!(
                    "the objects of backup {} were deleted while it ran (a prune with \
                     --grace 0?); nothing was committed, run the backup again",
                    self.layout.bid
                )));
            }
        }
        let entry = live.clone();
        chain::commit(&self.repo, move |state| {
            // Idempotent: a retried commit must never list the backup twice.
            if !state.live.iter().any(|b| b.bid == entry.bid) {
                state.live.push(entry.clone());
            }
        })
        .await?;
        self.lock.release().await?;
        Ok(live)
    }
}
