//! Writing one backup: data key first, then chunks, then summary and manifest, then the
//! catalog commit. Until the commit a backup is incomplete and never restorable.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use std::sync::Arc;

use super::chain::{self, LiveBackup};
use super::chunk_index::{ChunkIndex, Position, StoredObject, MAX_BASE_BYTES};
use super::layout::{self, new_backup_id, BackupLayout};
use super::lock::{LockGuard, LockKind};
use super::manifest::{self, ChunkBase, ChunkRecord, Manifest};
use super::repo::{Repository, FORMAT_VERSION};
use super::timestamp::Timestamp;
use super::ArchiveError;
use crate::codec::{
    on_cpu_pool, on_cpu_pool_from, seal_blob, Base, ChunkId, ChunkKeys, DataKey, SealedChunk,
    SecretKey, SharedSealed, IN_ORDER_INLINE_BYTES,
};
use crate::store::StoreError;

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
    /// Bytes of every chunk the backup lists, stored by it or before it.
    pub stored_bytes: u64,
    pub chunks: u64,
    /// What this backup uploaded (format 5): the chunks no live backup stored yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_chunks: Option<u64>,
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

/// Looks at the other backups writing into the repository now, in one listing of the
/// locks. Another one under `bid` (a copy run twice at once) is refused: it would swap
/// the data key under the first one's manifest. Others are only warned about: two at
/// once (two cron lines for one database, a manual run during the nightly one) share
/// the server's and the storage's capacity and each reads its own snapshot, which may
/// be meant, and prune keeps both safe.
async fn check_other_writers(
    repo: &Repository,
    bid: &str,
    mine: &LockGuard,
) -> Result<(), ArchiveError> {
    let now = time::OffsetDateTime::now_utc();
    let scan = super::lock::all_locks(repo).await?;
    let live = scan
        .locks
        .iter()
        .filter(|(key, l)| l.kind == LockKind::Backup && l.is_live(now) && !mine.is(key));
    for (_, l) in live {
        let host = l.host.as_deref().unwrap_or("an unknown host");
        if l.bid == bid {
            return Err(ArchiveError::SameBackupBusy {
                bid: bid.into(),
                pid: l.pid,
                host: host.into(),
                since: l.created_at.to_string(),
            });
        }
        tracing::warn!(
            "another backup ({}) has been writing into this repository since {} (pid {} on \
             {host}): two at once share the database server's and the storage's capacity",
            l.bid,
            l.created_at,
            l.pid,
        );
    }
    Ok(())
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

/// Everything a worker needs to name and seal chunks of one backup; cheap to clone
/// into rayon.
#[derive(Clone)]
pub struct ChunkSealer {
    keys: ChunkKeys,
    repo_id: [u8; 16],
    level: i32,
    stored: Arc<ChunkIndex>,
}

impl ChunkSealer {
    /// The key of the PRF that places chunk boundaries.
    pub fn boundary_key(&self) -> &[u8; 32] {
        self.keys.boundary_key().expose()
    }

    /// Compresses and encrypts whole tuples (by column when they are `binary` COPY
    /// tuples), as a delta against `bases` when that is at most half the size.
    /// CPU-bound: call it off the async runtime.
    fn seal(
        &self,
        id: ChunkId,
        tuples: &[u8],
        binary: bool,
        bases: &[Base<'_>],
    ) -> Result<SharedSealed, ArchiveError> {
        self.keys
            .seal(id, &self.repo_id, tuples, binary, self.level, bases)
            .map_err(|e| ArchiveError::codec("seal a chunk", e))
    }
}

/// A chunk of the backup, as its manifest lists it.
pub struct ChunkWritten {
    pub record: ChunkRecord,
    /// Uploaded by this backup (not stored already).
    pub new: bool,
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
    /// Bases opened lately: neighbouring chunks offer the same ones.
    bases_opened: std::sync::Mutex<std::collections::VecDeque<(ChunkId, Arc<Vec<u8>>)>>,
}

/// Bases kept open at most (each at most 4 chunk sizes of memory).
const BASES_KEPT: usize = 6;

impl BackupWriter {
    /// Starts a backup: a new id and data key; the wrapped key is written first so
    /// even an interrupted backup's objects can be attributed (and pruned) later.
    /// Once no chunk sweep runs (see `chunk_sweep`), the chunks the live
    /// backups store are read, to be reused.
    pub async fn begin(repo: &Repository, compress_level: i32) -> Result<Self, ArchiveError> {
        Self::start(repo, compress_level, &new_backup_id(), false).await
    }

    /// [`BackupWriter::begin`] under a given id: a backup copied from another
    /// repository keeps the id it has there. What an attempt that stopped midway left
    /// of that id (its data key, a manifest never committed) goes first; the shared
    /// chunks it stored stay, to be reused.
    pub async fn begin_as(
        repo: &Repository,
        compress_level: i32,
        bid: &str,
    ) -> Result<Self, ArchiveError> {
        Self::start(repo, compress_level, bid, true).await
    }

    async fn start(
        repo: &Repository,
        compress_level: i32,
        bid: &str,
        leftovers: bool,
    ) -> Result<Self, ArchiveError> {
        if repo.config().version < FORMAT_VERSION {
            return Err(ArchiveError::NeedsUpgrade(repo.config().version));
        }
        // Check the catalog (chain, high-water mark, repository identity) before the
        // first object goes up, not only at the commit; then bring the keys to the
        // current format, so this backup is sealed under the generation in force.
        repo.catalog().await?;
        let mut repo = repo.clone();
        if repo.is_encrypted() {
            repo.upgrade_keys().await?;
        }
        let repo = &repo;
        let layout = BackupLayout::new(bid);
        let lock = LockGuard::acquire(repo, LockKind::Backup, bid).await?;
        if let Err(e) = check_other_writers(repo, bid, &lock).await {
            let _ = lock.delete().await;
            return Err(e);
        }
        // Only once the id is ours: a fresh one has nothing to clean.
        if leftovers {
            repo.delete_backup_objects(bid).await?;
        }
        let dek = repo.keys().map(|_| DataKey::new(SecretKey::random(), bid));
        if let (Some(ring), Some(dek)) = (repo.keys(), &dek) {
            let rk = &ring.current;
            let wrapped = seal_blob(
                &rk.dek_wrapping_key(),
                &dek_aad(repo, bid, &rk.id(), ring.bound_generation()),
                dek.secret().expose(),
            )
            .map_err(|e| ArchiveError::codec("wrap the data key", e))?;
            repo.store()
                .put_new(&layout.dek(&rk.id()), Bytes::from(wrapped))
                .await?;
        }
        // Our lock is written: a sweep that starts from now on sees it and waits. One
        // that started before must be over before we trust what the manifests list.
        super::chunk_sweep::wait_for_sweeps(repo).await?;
        let keys = ChunkKeys::new(repo.keys().map(|k| &k.current));
        let stored = ChunkIndex::load(repo, &keys.rk_id()).await?;
        tracing::debug!("{} chunks stored already", stored.len());
        let sealer = ChunkSealer {
            keys,
            repo_id: *repo.repo_id(),
            level: compress_level,
            stored: Arc::new(stored),
        };
        Ok(BackupWriter {
            repo: repo.clone(),
            layout,
            lock,
            dek,
            sealer,
            unsynced: std::sync::Mutex::default(),
            bases_opened: std::sync::Mutex::default(),
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

    /// Names one chunk of whole tuples at `at` (table OID, part, index) and, unless
    /// the repository stores it already (an unchanged chunk costs a keyed hash, not a
    /// compression), seals it on the CPU pool, as a delta against the chunk the newest
    /// backup had there when that is at most half the size, and uploads it. Returns its
    /// manifest record.
    pub async fn store_chunk(
        &self,
        at: Position,
        tuples: bytes::Bytes,
        rows: u64,
        binary: bool,
    ) -> Result<ChunkWritten, ArchiveError> {
        let raw_len = tuples.len() as u64;
        let keys = self.sealer.keys.clone();
        let named = tuples.clone();
        // This unit's chunks come one after another: sealed on the calling thread.
        let id = on_cpu_pool_from(IN_ORDER_INLINE_BYTES, tuples.len(), move || {
            keys.id_of(&named)
        })
        .await
        .ok_or_else(|| ArchiveError::Corrupt("the sealing thread panicked".into()))?;
        let (object, new) = match self.sealer.stored.get(&id) {
            Some(object) => (object, false),
            None => {
                let mut bases = Vec::new();
                let offered = if raw_len <= MAX_BASE_BYTES {
                    self.sealer.stored.previous(at)
                } else {
                    Vec::new()
                };
                for (base, len) in offered {
                    if base == id {
                        continue;
                    }
                    match self.base_tuples(base, len).await? {
                        Some(tuples) => bases.push((base, tuples)),
                        // Without one of them a delta would lose what it held.
                        None => {
                            bases.clear();
                            break;
                        }
                    }
                }
                let sealer = self.sealer.clone();
                let sealed = on_cpu_pool_from(IN_ORDER_INLINE_BYTES, tuples.len(), move || {
                    let offered: Vec<Base<'_>> = bases
                        .iter()
                        .map(|(id, t)| Base { id: *id, tuples: t })
                        .collect();
                    let named: Vec<ChunkBase> = bases
                        .iter()
                        .map(|(id, t)| ChunkBase {
                            id: id.to_string(),
                            raw_len: t.len() as u64,
                        })
                        .collect();
                    sealer
                        .seal(id, &tuples, binary, &offered)
                        .map(|s| (s, named))
                })
                .await
                .ok_or_else(|| ArchiveError::Corrupt("the sealing thread panicked".into()))??;
                let (sealed, named) = sealed;
                let bases = if sealed.delta { named } else { Vec::new() };
                self.upload(&id, sealed.chunk, raw_len, bases).await?
            }
        };
        Ok(ChunkWritten {
            record: ChunkRecord {
                part: at.1,
                index: at.2,
                ct_len: object.ct_len,
                ct_sha256: hex::encode(object.sha256),
                raw_len,
                rows,
                id: Some(id.to_string()),
                bases: object.bases,
            },
            new,
        })
    }

    /// The tuples of the stored chunk `id`, to seal a new version against; `None` (and
    /// a whole chunk then) when it is gone or does not open.
    async fn base_tuples(
        &self,
        id: ChunkId,
        raw_len: u64,
    ) -> Result<Option<Arc<Vec<u8>>>, ArchiveError> {
        let kept = |opened: &std::collections::VecDeque<(ChunkId, Arc<Vec<u8>>)>| {
            opened
                .iter()
                .find(|(b, _)| *b == id)
                .map(|(_, t)| t.clone())
        };
        if let Some(t) = kept(&self.bases_opened.lock().expect("not poisoned")) {
            return Ok(Some(t));
        }
        let key = layout::shared_chunk(&id.to_string());
        let Some(bytes) = self.repo.store().get_opt(&key).await? else {
            return Ok(None);
        };
        let (keys, repo_id) = (self.sealer.keys.clone(), *self.repo.repo_id());
        let opened = on_cpu_pool(bytes.len(), move || {
            keys.open(&repo_id, &id, Vec::from(bytes), raw_len as usize, &[])
        })
        .await;
        Ok(match opened {
            Some(Ok(tuples)) => {
                let tuples = Arc::new(tuples);
                let mut kept = self.bases_opened.lock().expect("not poisoned");
                if kept.len() == BASES_KEPT {
                    kept.pop_front();
                }
                kept.push_back((id, tuples.clone()));
                Some(tuples)
            }
            _ => {
                tracing::warn!("chunk {key} does not open: the chunk after it is stored whole");
                None
            }
        })
    }

    /// Uploads a new chunk (create-only). An object of that id may be there already,
    /// written by a backup that did not commit or by another table of this one at the
    /// same moment: it is kept when it opens as the chunk its name says, and replaced
    /// otherwise (cut short by a crash, or damaged), since this backup holds exactly
    /// what the name stands for. Returns the stored object and whether it is ours.
    async fn upload(
        &self,
        id: &ChunkId,
        sealed: SealedChunk,
        raw_len: u64,
        bases: Vec<ChunkBase>,
    ) -> Result<(StoredObject, bool), ArchiveError> {
        let key = layout::shared_chunk(&id.to_string());
        let ours = StoredObject {
            ct_len: sealed.bytes.len() as u64,
            sha256: sealed.sha256,
            bases,
        };
        let bytes = Bytes::from(sealed.bytes);
        let store = self.repo.store();
        for _ in 0..3 {
            match store.put_new_unsynced(&key, bytes.clone()).await {
                Ok(()) => {
                    self.unsynced.lock().expect("not poisoned").push(key);
                    self.sealer.stored.wrote(*id, ours.clone());
                    return Ok((ours, true));
                }
                Err(StoreError::AlreadyExists(_)) => {
                    if let Some(theirs) = self.sound_object(id, &key, raw_len).await? {
                        self.sealer.stored.wrote(*id, theirs.clone());
                        return Ok((theirs, false));
                    }
                    tracing::warn!(
                        "chunk {key} does not open as the chunk it is named for: writing it again"
                    );
                    store.delete(&key).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ArchiveError::Corrupt(format!(
            "chunk {key} was replaced by something else three times while this backup wrote \
             it; nothing was committed, run the backup again"
        )))
    }

    /// The object stored at `key`, if it opens as the chunk `id` of `raw_len` bytes.
    async fn sound_object(
        &self,
        id: &ChunkId,
        key: &str,
        raw_len: u64,
    ) -> Result<Option<StoredObject>, ArchiveError> {
        let store = self.repo.store();
        let Some(bytes) = store.get_opt(key).await? else {
            return Ok(None);
        };
        // A delta is opened through the bases its header names (whole chunks, or it is
        // not sound): another table of this backup, or another backup, may have
        // sealed the same tuples against other bases.
        let Some((_, named)) = ChunkKeys::header_of(&bytes) else {
            return Ok(None);
        };
        let mut bases = Vec::with_capacity(named.len());
        for base in named {
            let Some(object) = store
                .get_opt(&layout::shared_chunk(&base.to_string()))
                .await?
            else {
                return Ok(None);
            };
            let Some((len, _)) = ChunkKeys::header_of(&object) else {
                return Ok(None);
            };
            bases.push((base, len, object));
        }
        let object = StoredObject {
            ct_len: bytes.len() as u64,
            sha256: Sha256::digest(&bytes).into(),
            bases: bases
                .iter()
                .map(|(id, len, _)| ChunkBase {
                    id: id.to_string(),
                    raw_len: *len,
                })
                .collect(),
        };
        let (keys, repo_id, id) = (self.sealer.keys.clone(), *self.repo.repo_id(), *id);
        let sound = on_cpu_pool(bytes.len(), move || {
            let mut opened = Vec::with_capacity(bases.len());
            for (base, len, object) in bases {
                match keys.open(&repo_id, &base, Vec::from(object), len as usize, &[]) {
                    Ok(tuples) => opened.push((base, tuples)),
                    Err(_) => return false,
                }
            }
            let bases: Vec<Base<'_>> = opened
                .iter()
                .map(|(id, t)| Base { id: *id, tuples: t })
                .collect();
            keys.open(&repo_id, &id, Vec::from(bytes), raw_len as usize, &bases)
                .is_ok()
        })
        .await
        .unwrap_or(false);
        Ok(sound.then_some(object))
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
