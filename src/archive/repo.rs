//! Opening and creating repositories.

use bytes::Bytes;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::chain::{self, CatalogState, RingDecl};
use super::keyerror::KeyError;
use super::keymgmt::{self, KeyAdded, KeyRotation, KeyStatus, SlotRemoval};
use super::keyring::KeyRing;
use super::keyslot::{self, SlotInfo};
use super::keysource::KeySource;
use super::timestamp::Timestamp;
use super::trust::{self, MarkFile, MarkImport, Notice, Trust, TrustError, TrustOptions};
use super::watermark::{Mark, StateDir};
use super::{layout, ArchiveError};
use crate::store::Store;

/// The repository format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 5;

/// The newest format whose backups are full copies. Any write brings an older
/// repository's keys (and its version) up to it; only `upgrade` goes on to
/// [`FORMAT_VERSION`], whose backups share content-addressed chunks.
pub const FULL_COPY_VERSION: u32 = 4;

/// `pgbunker.json`: the only object readable without a key besides summaries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoConfig {
    pub format: String,
    pub version: u32,
    pub repo_id: String,
    pub created_at: Timestamp,
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
    trust: Trust,
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
            created_at: Timestamp::now(),
            encryption: if plaintext { "none" } else { "aes-256-gcm-siv" }.into(),
        };
        let mut repo = Repository {
            store,
            config,
            repo_id: id,
            keys: None,
            state: None,
            trust: Trust::default(),
        };
        let mut slot = None;
        if !plaintext {
            let source = key.expect("checked above");
            let ring = keymgmt::create(&repo.store, &repo.repo_id, source).await?;
            slot = Some(ring.kek_id());
            repo.keys = Some(ring);
        }
        // Entry 0 announces generation 1, which holds the first repository key.
        let first = CatalogState {
            ring: repo.keys.as_ref().map(|r| RingDecl {
                generation: r.generation,
                ring_key_id: r.ring_key_id().expect("a new ring lives in keyring/"),
            }),
            ..CatalogState::default()
        };
        chain::write_entry(&repo, &first).await?;
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
            trust: Trust::default(),
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
            encrypted: Some(self.is_encrypted()),
            generation: self.keys.as_ref().and_then(KeyRing::bound_generation),
        })
    }

    pub(crate) fn state_dir(&self) -> Option<&StateDir> {
        self.state.as_ref()
    }

    /// Applies the user's trust settings (`--expect-seq`, `--force`, the clock).
    pub fn with_trust(mut self, options: TrustOptions) -> Self {
        self.trust.options = options;
        self
    }

    pub(crate) fn trust(&self) -> &Trust {
        &self.trust
    }

    /// What this repository's commands noticed so far (a first contact, another
    /// client's removals, malformed locks), each already shown on stderr.
    pub fn notices(&self) -> Vec<Notice> {
        self.trust.notices()
    }

    /// The catalog entry this machine trusted on first contact in this run, if any.
    pub fn first_contact(&self) -> Option<trust::Contact> {
        self.notices().into_iter().find_map(|n| match n {
            Notice::FirstContact(c) => Some(c),
            _ => None,
        })
    }

    /// The newest catalog entry as a mark file, for a host that has never seen the
    /// repository (`pgbunker mark export`).
    pub async fn export_mark(&self) -> Result<MarkFile, ArchiveError> {
        let (state, sha) = chain::read_checked(self).await?;
        Ok(MarkFile {
            format: MarkFile::FORMAT.into(),
            version: 1,
            repo_id: self.config.repo_id.clone(),
            location: crate::store::shown_location(self.store.location()),
            seq: state.seq,
            sha256: sha,
            exported_at: Timestamp::from(self.trust.now()),
        })
    }

    /// Makes `mark` this machine's high-water mark of the repository after checking
    /// that the repository still holds the entry it names, unchanged, and nothing
    /// older as its newest. A higher mark already kept here stays.
    pub async fn import_mark(&self, mark: &MarkFile) -> Result<MarkImport, ArchiveError> {
        let dir = self.state.as_ref().ok_or(TrustError::NoStateDir)?;
        let location = self.store.location();
        let foreign = |found: &str| TrustError::MarkForAnotherRepository {
            mark: mark.repo_id.clone(),
            location: crate::store::shown_location(location),
            found: found.into(),
        };
        if mark.repo_id != self.config.repo_id {
            return Err(foreign(&self.config.repo_id).into());
        }
        let mark_file = dir.mark_file(location).display().to_string();
        if let Some(old) = dir.load(location)? {
            if old.repo_id != mark.repo_id {
                return Err(ArchiveError::Swapped {
                    location: location.into(),
                    pinned: old.repo_id,
                    found: mark.repo_id.clone(),
                    mark_file,
                });
            }
        }
        let (state, _) = chain::read_latest(self).await?;
        if state.seq < mark.seq {
            return Err(ArchiveError::RolledBack {
                seen: mark.seq,
                found: state.seq,
                mark_file,
            });
        }
        match chain::read_entry(self, mark.seq).await? {
            Some((_, sha)) if sha == mark.sha256 => {}
            _ => {
                return Err(ArchiveError::Forked {
                    seq: mark.seq,
                    mark_file,
                })
            }
        }
        chain::raise_mark(self, mark.seq, &mark.sha256)?;
        Ok(MarkImport {
            repo_id: mark.repo_id.clone(),
            seq: mark.seq,
            newest_seq: state.seq,
        })
    }

    /// The newest catalog entry, its chain link to the previous one checked, and
    /// checked against this machine's high-water mark.
    pub async fn catalog(&self) -> Result<CatalogState, ArchiveError> {
        Ok(chain::read_checked(self).await?.0)
    }

    /// Resolves `latest`, a backup id, or a unique start of an id or of its random
    /// part (`8850cd42` of `20261124T094649Z-8850cd42`, at least four characters),
    /// to a committed backup.
    pub async fn resolve(&self, which: &str) -> Result<chain::LiveBackup, ArchiveError> {
        let cat = self.catalog().await?;
        if which == "latest" {
            let latest = trust::newest(&cat.live).cloned();
            // Deleting the newest catalog entries leaves their backups' objects behind:
            // `latest` must not quietly mean an older backup then.
            if !self.trust.options.force {
                let hidden = trust::hidden_backups(self, &cat).await?;
                if !hidden.is_empty() {
                    return Err(TrustError::HiddenBackups {
                        latest: latest.map(|b| b.bid),
                        hidden,
                        purpose: trust::Purpose::Latest,
                    }
                    .into());
                }
            }
            return latest.ok_or(ArchiveError::NoBackups);
        }
        let ids: Vec<&str> = cat.live.iter().map(|b| b.bid.as_str()).collect();
        let id = pick_backup(&ids, which)?;
        Ok(cat
            .live
            .iter()
            .find(|b| b.bid == id)
            .cloned()
            .expect("picked among them"))
    }
}

/// Shortest start of an id or of its random part that [`Repository::resolve`] takes.
const MIN_PREFIX: usize = 4;

/// The id among `ids` that `which` names: itself, or the one id it is a unique start
/// of (or of whose random part, after the last dash).
fn pick_backup(ids: &[&str], which: &str) -> Result<String, ArchiveError> {
    if let Some(id) = ids.iter().find(|id| **id == which) {
        return Ok((*id).to_owned());
    }
    let suffix = |id: &str| id.rsplit('-').next().unwrap_or(id).to_owned();
    let matches: Vec<String> = if which.len() >= MIN_PREFIX {
        ids.iter()
            .filter(|id| id.starts_with(which) || suffix(id).starts_with(which))
            .map(|id| (*id).to_owned())
            .collect()
    } else {
        Vec::new()
    };
    match matches.len() {
        1 => Ok(matches.into_iter().next().expect("one")),
        0 => {
            // Near: one or two typed characters away from an id or its random part.
            let mut near: Vec<(usize, &str)> = ids
                .iter()
                .map(|id| {
                    let d =
                        strsim::levenshtein(which, id).min(strsim::levenshtein(which, &suffix(id)));
                    (d, *id)
                })
                .filter(|(d, _)| *d <= 2)
                .collect();
            near.sort();
            Err(ArchiveError::NoSuchBackup {
                id: which.into(),
                near: near
                    .into_iter()
                    .take(3)
                    .map(|(_, id)| id.to_owned())
                    .collect(),
            })
        }
        _ => Err(ArchiveError::AmbiguousBackup {
            id: which.into(),
            matches,
        }),
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

    /// Adds a slot for `new` holding this repository's ring keys; a new generation pins
    /// its public key so later key changes can hand it new ring keys.
    pub async fn add_key(&mut self, new: &KeySource) -> Result<KeyAdded, ArchiveError> {
        keyslot::prepare(&self.store, new).await?;
        let upgraded = self.upgrade_keys().await?;
        let (ring, kek_id) = keymgmt::add(self, self.ring()?, new).await?;
        self.keys = Some(ring);
        Ok(KeyAdded {
            kek_id,
            kind: new.kind().into(),
            upgraded,
        })
    }

    /// Revokes slot `kek_id` (a new ring key for every other slot, a new generation),
    /// refusing to remove the last one.
    pub async fn remove_key(&mut self, kek_id: &str) -> Result<SlotRemoval, ArchiveError> {
        self.upgrade_keys().await?;
        let (ring, removal) = keymgmt::remove(self, self.ring()?, kek_id).await?;
        if let Some(ring) = ring {
            self.keys = Some(ring);
        }
        Ok(removal)
    }

    /// Starts a new repository key for new backups; every older key still reads, and
    /// from now on catalog entries must be sealed under the new generation.
    pub async fn rotate_key(&mut self) -> Result<KeyRotation, ArchiveError> {
        let upgraded = self.upgrade_keys().await?;
        let (ring, mut rotation) = keymgmt::rotate(self, self.ring()?).await?;
        self.keys = Some(ring);
        rotation.upgraded = upgraded;
        Ok(rotation)
    }

    /// Brings the repository to the current format before it is written to (see
    /// `keymgmt::ensure_current`); `true` when this call changed the format.
    pub(crate) async fn upgrade_keys(&mut self) -> Result<bool, ArchiveError> {
        self.ring()?;
        let (ring, upgraded) = keymgmt::ensure_current(self).await?;
        self.keys = ring;
        self.config.version = self.config.version.max(FULL_COPY_VERSION);
        Ok(upgraded)
    }

    /// Brings the repository to [`FORMAT_VERSION`] (deduplicated backups): its keys
    /// first, then `pgbunker.json`. No backup is rewritten; every one reads as it is.
    /// Returns the version it had.
    pub async fn upgrade(&mut self) -> Result<u32, ArchiveError> {
        let before = self.config.version;
        if self.is_encrypted() {
            self.upgrade_keys().await?;
        }
        keymgmt::say_version(self, FORMAT_VERSION).await?;
        self.config.version = FORMAT_VERSION;
        Ok(before)
    }

    /// The bytes of a catalog entry for `state` sealed with this repository's keys as
    /// they were when it was opened. For tools and tests that inspect or craft entries:
    /// committing goes through the checks of the catalog, which this does not.
    pub fn seal_catalog_entry(&self, state: &CatalogState) -> Result<Vec<u8>, ArchiveError> {
        chain::encode(self, state)
    }

    fn ring(&self) -> Result<&KeyRing, ArchiveError> {
        self.keys
            .as_ref()
            .ok_or_else(|| KeyError::NotEncrypted.into())
    }
}

#[cfg(test)]
mod pick_tests {
    use super::*;

    const IDS: [&str; 3] = [
        "20261124T094649Z-8850cd42",
        "20261124T101500Z-8850ffee",
        "20261125T020000Z-1234abcd",
    ];

    #[test]
    fn whole_ids_and_unique_starts_pick_one_backup() {
        assert_eq!(pick_backup(&IDS, IDS[2]).unwrap(), IDS[2]);
        assert_eq!(pick_backup(&IDS, "8850cd42").unwrap(), IDS[0]);
        assert_eq!(pick_backup(&IDS, "8850cd").unwrap(), IDS[0]);
        assert_eq!(pick_backup(&IDS, "20261125").unwrap(), IDS[2]);
        assert_eq!(pick_backup(&IDS, "1234").unwrap(), IDS[2]);
    }

    #[test]
    fn ambiguous_short_and_unknown_ids_are_refused_with_what_would_do() {
        match pick_backup(&IDS, "8850") {
            Err(ArchiveError::AmbiguousBackup { matches, .. }) => assert_eq!(matches.len(), 2),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            pick_backup(&IDS, "885"),
            Err(ArchiveError::NoSuchBackup { .. })
        ));
        match pick_backup(&IDS, "8850cd24") {
            Err(ArchiveError::NoSuchBackup { near, .. }) => assert_eq!(near, vec![IDS[0]]),
            other => panic!("{other:?}"),
        }
        match pick_backup(&IDS, "nothing-like-it") {
            Err(ArchiveError::NoSuchBackup { near, .. }) => assert!(near.is_empty()),
            other => panic!("{other:?}"),
        }
    }
}
