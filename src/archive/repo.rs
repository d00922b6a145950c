//! Opening and creating repositories.

use bytes::Bytes;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::chain::{self, CatalogState};
use super::keyerror::KeyError;
use super::keymgmt::{self, KeyAdded, KeyRotation, KeyStatus, SlotRemoval};
use super::keyring::KeyRing;
use super::keyslot::{self, SlotInfo};
use super::keysource::KeySource;
use super::watermark::{Mark, StateDir};
use super::{layout, ArchiveError};
use crate::store::Store;

/// The repository format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 2;

/// The first format whose key ring lives in `keyring/`: a version-1 repository is
/// raised to it when its ring moves there, so older pgbunkers refuse it cleanly.
const KEYRING_FORMAT: u32 = 2;

/// `pgbunker.json`: the only object readable without a key besides summaries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoConfig {
    pub format: String,
    pub version: u32,
    pub repo_id: String,
    pub created_at: String,
    /// `aes-256-gcm-siv`, or `none` for repositories created with the plaintext flag.
    pub encryption: String,
}

/// An open repository: its location, identity and (when encrypted) unlocked keys.
#[derive(Debug, Clone)]
pub struct Repository {
    store: Store,
    config: RepoConfig,
    repo_id: [u8; 16],
    keys: Option<KeyRing>,
    state: Option<StateDir>,
}

async fn read_config(store: &Store) -> Result<RepoConfig, ArchiveError> {
    let Some(bytes) = store.get_opt(layout::CONFIG).await? else {
        return Err(ArchiveError::NotARepository(store.location().into()));
    };
    let cfg: RepoConfig =
        serde_json::from_slice(&bytes).map_err(|e| ArchiveError::json(layout::CONFIG, e))?;
    if cfg.format != "pgbunker" {
        return Err(ArchiveError::NotARepository(store.location().into()));
    }
    if cfg.version > FORMAT_VERSION {
        return Err(ArchiveError::NewerFormat(cfg.version));
    }
    Ok(cfg)
}

fn parse_repo_id(cfg: &RepoConfig) -> Result<[u8; 16], ArchiveError> {
    let mut id = [0u8; 16];
    hex::decode_to_slice(&cfg.repo_id, &mut id).map_err(|_| {
        ArchiveError::Corrupt("repo_id in pgbunker.json is not 32 hex digits".into())
    })?;
    Ok(id)
}

impl Repository {
    /// Creates a repository: a fresh repository id and key, one key slot for `key`,
    /// the first (empty) catalog entry, and `pgbunker.json` last, so an interrupted
    /// init never looks like a usable repository.
    pub async fn init(
        store: Store,
        key: Option<&KeySource>,
        plaintext: bool,
    ) -> Result<(Repository, Option<String>), ArchiveError> {
        if store.get_opt(layout::CONFIG).await?.is_some() {
            return Err(ArchiveError::AlreadyInitialized(store.location().into()));
        }
        if key.is_none() && !plaintext {
            return Err(ArchiveError::NoKey);
        }
        store.check_create_only().await?;
        let mut id = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let config = RepoConfig {
            format: "pgbunker".into(),
            version: FORMAT_VERSION,
            repo_id: hex::encode(id),
            created_at: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .expect("formatting now"),
            encryption: if plaintext { "none" } else { "aes-256-gcm-siv" }.into(),
        };
        let mut repo = Repository {
            store,
            config,
            repo_id: id,
            keys: None,
            state: None,
        };
        let mut slot = None;
        if !plaintext {
            let source = key.expect("checked above");
            let ring = keymgmt::create(&repo.store, &repo.repo_id, source).await?;
            slot = Some(ring.kek_id());
            repo.keys = Some(ring);
        }
        chain::write_entry(&repo, &CatalogState::default()).await?;
        let json = serde_json::to_vec_pretty(&repo.config).expect("config serializes");
        repo.store
            .put_new(layout::CONFIG, Bytes::from(json))
            .await
            .map_err(|e| match e {
                crate::store::StoreError::AlreadyExists(_) => {
                    ArchiveError::AlreadyInitialized(repo.store.location().into())
                }
                e => e.into(),
            })?;
        Ok((repo, slot))
    }

    /// Opens a repository and unlocks it with `key` (ignored for plaintext ones).
    pub async fn open(store: Store, key: Option<&KeySource>) -> Result<Repository, ArchiveError> {
        let config = read_config(&store).await?;
        let repo_id = parse_repo_id(&config)?;
        let keys = match config.encryption.as_str() {
            // pgbunker.json is plaintext: anyone with write access could flip it to
            // "none" to make the next backup upload everything in the clear. A key
            // given for an unencrypted repository means exactly that.
            "none" if key.is_some() => return Err(ArchiveError::UnexpectedPlaintext),
            "none" => None,
            "aes-256-gcm-siv" => {
                let source = key.ok_or(ArchiveError::NoKey)?;
                Some(keymgmt::unlock(&store, &repo_id, source).await?)
            }
            other => {
                return Err(ArchiveError::Corrupt(format!(
                    "unknown encryption {other:?} in pgbunker.json"
                )))
            }
        };
        Ok(Repository {
            store,
            config,
            repo_id,
            keys,
            state: None,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    pub fn repo_id(&self) -> &[u8; 16] {
        &self.repo_id
    }

    pub fn is_encrypted(&self) -> bool {
        self.keys.is_some()
    }

    pub(crate) fn keys(&self) -> Option<&KeyRing> {
        self.keys.as_ref()
    }

    /// Checks the catalog against (and raises) this machine's high-water mark in
    /// `dir` from now on.
    pub fn with_state(mut self, dir: StateDir) -> Self {
        self.state = Some(dir);
        self
    }

    /// Pins a repository this machine just created, replacing any mark left by an
    /// older repository at the same location (only `init` may do that: anything else
    /// replacing a repository is what the mark exists to catch).
    pub async fn pin_new(&self) -> Result<(), ArchiveError> {
        let Some(dir) = &self.state else {
            return Ok(());
        };
        let (state, sha) = chain::read_latest(self).await?;
        dir.store(&Mark {
            location: self.store.location().into(),
            repo_id: self.config.repo_id.clone(),
            max_seq: state.seq,
            sha256: sha,
        })
    }

    pub(crate) fn state_dir(&self) -> Option<&StateDir> {
        self.state.as_ref()
    }

    /// The newest catalog entry, its chain link to the previous one checked, and
    /// checked against this machine's high-water mark.
    pub async fn catalog(&self) -> Result<CatalogState, ArchiveError> {
        Ok(chain::read_checked(self).await?.0)
    }

    /// Resolves `latest` or a backup id to a committed backup.
    pub async fn resolve(&self, which: &str) -> Result<chain::LiveBackup, ArchiveError> {
        let cat = self.catalog().await?;
        if which == "latest" {
            // Ids carry whole seconds only; the commit time breaks ties between
            // backups started in the same second.
            let when = |b: &chain::LiveBackup| {
                time::OffsetDateTime::parse(
                    &b.created_at,
                    &time::format_description::well_known::Rfc3339,
                )
                .ok()
            };
            return cat
                .live
                .iter()
                .max_by(|a, b| (when(a), &a.bid).cmp(&(when(b), &b.bid)))
                .cloned()
                .ok_or(ArchiveError::NoBackups);
        }
        cat.live
            .iter()
            .find(|b| b.bid == which)
            .cloned()
            .ok_or_else(|| ArchiveError::NoSuchBackup(which.into()))
    }
}

/// Key management: slots are added and removed, the ring rotated, without
/// re-encrypting any data.
impl Repository {
    /// The key slots of a repository, read without a key: they are plaintext, and
    /// someone who lost every key still needs to see which ones would open it.
    pub async fn key_slots(store: &Store) -> Result<(RepoConfig, Vec<SlotInfo>), ArchiveError> {
        let config = read_config(store).await?;
        if config.encryption == "none" {
            return Err(KeyError::NotEncrypted.into());
        }
        let slots = keyslot::list(store).await?;
        Ok((config, slots))
    }

    /// The slots (marking the one the presented key opened) and the ring's generations.
    pub async fn key_status(&self) -> Result<KeyStatus, ArchiveError> {
        keymgmt::status(&self.store, &self.repo_id, self.ring()?).await
    }

    /// Adds a slot for `new` that wraps this repository's ring key.
    pub async fn add_key(&mut self, new: &KeySource) -> Result<KeyAdded, ArchiveError> {
        let slot = keyslot::prepare(&self.store, new).await?;
        let (ring_key, upgraded) = self.upgrade_keys().await?;
        let kek = keyslot::write(&self.store, &self.config.repo_id, slot, &ring_key).await?;
        // The new slot must open the ring before anyone relies on it.
        keymgmt::unlock(&self.store, &self.repo_id, new).await?;
        Ok(KeyAdded {
            kek_id: kek.id(),
            kind: new.kind().into(),
            upgraded,
        })
    }

    /// Removes slot `kek_id`, refusing to remove the last one.
    pub async fn remove_key(&self, kek_id: &str) -> Result<SlotRemoval, ArchiveError> {
        let was_unlocking = self.ring()?.kek_id() == kek_id;
        let remaining = keymgmt::remove(&self.store, kek_id).await?;
        Ok(SlotRemoval {
            kek_id: kek_id.into(),
            remaining,
            was_unlocking,
        })
    }

    /// Starts a new repository key for new backups; every older key still reads.
    pub async fn rotate_key(&mut self) -> Result<KeyRotation, ArchiveError> {
        let (ring_key, upgraded) = self.upgrade_keys().await?;
        let (ring, mut rotation) =
            keymgmt::rotate(&self.store, &self.repo_id, self.ring()?, &ring_key).await?;
        self.keys = Some(ring);
        rotation.upgraded = upgraded;
        Ok(rotation)
    }

    fn ring(&self) -> Result<&KeyRing, ArchiveError> {
        self.keys
            .as_ref()
            .ok_or_else(|| KeyError::NotEncrypted.into())
    }

    /// Moves a version-1 ring to `keyring/` (`true` when this call did) and raises
    /// `pgbunker.json` to the keyring format, last: an interruption before that leaves
    /// a repository this version still opens, and the next key change finishes it.
    async fn upgrade_keys(&mut self) -> Result<(crate::codec::RingKey, bool), ArchiveError> {
        let (ring, ring_key, upgraded) =
            keymgmt::upgraded(&self.store, &self.repo_id, self.ring()?).await?;
        self.keys = Some(ring);
        if self.config.version < KEYRING_FORMAT {
            self.config.version = KEYRING_FORMAT;
            let json = serde_json::to_vec_pretty(&self.config).expect("config serializes");
            self.store
                .put_overwrite(layout::CONFIG, Bytes::from(json))
                .await?;
        }
        Ok((ring_key, upgraded))
    }
}
