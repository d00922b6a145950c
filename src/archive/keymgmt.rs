//! Key management: what `init`, unlocking and `key add|list|remove|rotate` do with the
//! key slots, the key ring and the catalog together. Any one slot holder can change the
//! keys, every change keeps each backup readable and never leaves the repository
//! without a slot, and every change of generation is announced in the catalog first,
//! so that from the announcement on nothing sealed under an older generation is
//! accepted (see `schema/FORMAT.md`, Key management).

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Serialize;

use super::chain::{self, RingDecl};
use super::keyerror::KeyError;
use super::keyring::{self, KeyRing, NextGeneration};
use super::keyslot::{self, OpenedSlot, SlotContent, SlotInfo};
use super::keysource::KeySource;
use super::repo::{Repository, FULL_COPY_VERSION};
use super::timestamp::Timestamp;
use super::{layout, ArchiveError};
use crate::codec::{RepoKey, RingKey};
use crate::store::{Store, StoreError};

/// Key changes racing for one generation retry from the winner's ring.
const ATTEMPTS: usize = 50;

/// What `key add` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct KeyAdded {
    pub kek_id: String,
    pub kind: String,
    /// Whether this call moved an older repository to the current format first.
    pub upgraded: bool,
}

/// What `key remove` did.
#[derive(Debug, Clone, Serialize)]
pub struct SlotRemoval {
    pub kek_id: String,
    pub remaining: Vec<String>,
    /// The presented key opened the removed slot: it no longer opens the repository.
    pub was_unlocking: bool,
    /// The key ring generation that revokes the removed key.
    pub generation: u64,
}

/// One generation of the ring as `key list` shows it: ids only, no key material.
#[derive(Debug, Clone, Serialize)]
pub struct GenerationInfo {
    /// 0 stands for a version-1 ring, kept inside its key slot.
    pub generation: u64,
    pub created_at: Option<Timestamp>,
    pub current: String,
    pub rk_ids: Vec<String>,
    /// The ring key that sealed it (format 3 generations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ring_key_id: Option<String>,
}

/// The slots and the ring as the presented key sees them.
#[derive(Debug, Clone, Serialize)]
pub struct KeyStatus {
    pub unlocked_with: String,
    pub slots: Vec<SlotInfo>,
    pub generations: Vec<GenerationInfo>,
}

/// What a rotation wrote: the generation and the repository key new backups now use.
#[derive(Debug, Clone, Serialize)]
pub struct KeyRotation {
    pub generation: u64,
    pub rk_id: String,
    pub previous_rk_id: String,
    /// Whether the rotation first moved an older repository to the current format.
    pub upgraded: bool,
}

/// Deletes slot `kek_id` unless it is the last one; returns the ids left. Two removals
/// racing for the last two slots could each see the other's slot and delete their own,
/// so the one that finds none left afterwards puts its slot back.
async fn delete_slot(store: &Store, kek_id: &str) -> Result<Vec<String>, ArchiveError> {
    let key = layout::key_slot(kek_id);
    let Some(bytes) = store.get_opt(&key).await? else {
        return slot_ids(store).await;
    };
    store.delete(&key).await?;
    let left = slot_ids(store).await?;
    if left.is_empty() {
        match store.put_new(&key, bytes).await {
            Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
        return Err(KeyError::ConcurrentRemoval {
            kek_id: kek_id.into(),
        }
        .into());
    }
    Ok(left)
}

async fn slot_ids(store: &Store) -> Result<Vec<String>, ArchiveError> {
    Ok(keyslot::list(store)
        .await?
        .into_iter()
        .map(|s| s.kek_id)
        .collect())
}

async fn from_slot(
    store: &Store,
    repo_id: &[u8; 16],
    slot: OpenedSlot,
    extra: Option<&RingKey>,
) -> Result<KeyRing, ArchiveError> {
    match slot.content {
        SlotContent::Ring(json) => {
            // A version-1 slot holds the ring as it was before the upgrade (generation
            // 1; an interrupted upgrade may leave both). Beside a rotated ring it is an
            // old slot put back to roll the keys back.
            if store.size(&layout::keyring_generation(2)).await?.is_some() {
                return Err(ArchiveError::Corrupt(
                    "a version-1 key slot sits beside a rotated key ring: an old slot was \
                     put back (remove it with `pgbunker key remove` using another key)"
                        .into(),
                ));
            }
            let ring: keyring::RingJson =
                serde_json::from_slice(&json).map_err(|e| ArchiveError::json("the key ring", e))?;
            let (current, all) = keyring::keys_of(&ring)?;
            Ok(KeyRing {
                current,
                all,
                generation: 0,
                ring_key: None,
                ring_keys: Vec::new(),
                bound: None,
                kek: slot.kek,
                pair: None,
            })
        }
        SlotContent::RingKeys { mut keys, pair } => {
            keys.extend(extra.cloned());
            keyring::load(store, repo_id, slot.kek, keys, pair).await
        }
    }
}

/// A new repository's keys: a ring key, generation 1 holding a first repository key
/// and pinning the first slot's public key, then the slot. The ring is written first
/// so a slot never points at nothing; the slot's key pair is made first so the ring can
/// pin it.
pub(super) async fn create(
    store: &Store,
    repo_id: &[u8; 16],
    source: &KeySource,
) -> Result<KeyRing, ArchiveError> {
    let slot = keyslot::prepare(store, source).await?;
    let ring_key = RingKey::generate();
    let rk = RepoKey::generate();
    let (kek, public) = keyslot::write(
        store,
        &hex::encode(repo_id),
        slot,
        std::slice::from_ref(&ring_key),
    )
    .await?;
    let next = NextGeneration {
        generation: 1,
        ring_key: &ring_key,
        current: &rk,
        all: std::slice::from_ref(&rk),
        from_seq: 0,
        currents: BTreeMap::new(),
        slot_keys: BTreeMap::from([(kek.id(), public)]),
    };
    keyring::write_bound(store, repo_id, next).await?;
    let opened = keyslot::reopen(store, &hex::encode(repo_id), &kek).await?;
    from_slot(store, repo_id, opened, None).await
}

/// Opens the ring through the slot `source` opens.
pub(super) async fn unlock(
    store: &Store,
    repo_id: &[u8; 16],
    source: &KeySource,
) -> Result<KeyRing, ArchiveError> {
    let slot = keyslot::open(store, &hex::encode(repo_id), source).await?;
    from_slot(store, repo_id, slot, None).await
}

/// The ring as stored now, through the slot `ring` was opened with (plus `extra`, a
/// ring key this process made and may not have handed to its own slot).
pub(crate) async fn reload(
    store: &Store,
    repo_id: &[u8; 16],
    ring: &KeyRing,
    extra: Option<&RingKey>,
) -> Result<KeyRing, ArchiveError> {
    let slot = keyslot::reopen(store, &hex::encode(repo_id), &ring.kek).await?;
    from_slot(store, repo_id, slot, extra).await
}

/// Moves a version-1 ring to `keyring/` (generation 1, create-only, then the slot is
/// rewritten to hold the ring key; until then the version-1 slot still holds the whole
/// ring, so an interruption loses nothing).
async fn upgraded_v1(
    store: &Store,
    repo_id: &[u8; 16],
    ring: &KeyRing,
) -> Result<KeyRing, ArchiveError> {
    let repo_hex = hex::encode(repo_id);
    let count = keyslot::list(store).await?.len();
    if count > 1 {
        return Err(KeyError::SeveralV1Slots { count }.into());
    }
    if !keyring::generations(store).await?.is_empty() {
        // Another pgbunker may have upgraded at the same moment: carry on with its ring
        // once it has rewritten the slot.
        let opened = keyslot::reopen(store, &repo_hex, &ring.kek).await?;
        if matches!(opened.content, SlotContent::Ring(_)) {
            return Err(KeyError::UnfinishedUpgrade {
                kek_id: ring.kek_id(),
            }
            .into());
        }
        return from_slot(store, repo_id, opened, None).await;
    }
    let ring_key = RingKey::generate();
    keyring::write(store, repo_id, &ring_key, 1, &ring.current, &ring.all).await?;
    keyslot::upgrade_v3(store, &repo_hex, &ring.kek, std::slice::from_ref(&ring_key)).await?;
    reload(store, repo_id, ring, None).await
}

/// Brings the keys of an encrypted repository to format 3 before anything is written:
/// a version-1 ring moves to `keyring/`; the presented key's slot becomes version 3;
/// a ring whose newest generation binds nothing, or that has not pinned this slot's
/// public key, gets a new generation (announced in the catalog, see [`advance`]); and
/// `pgbunker.json` says the current version, last (a plaintext repository only gets
/// that). Returns the ring to write with, `None` for a plaintext repository.
pub(crate) async fn ensure_current(
    repo: &Repository,
) -> Result<(Option<KeyRing>, bool), ArchiveError> {
    let Some(ring) = repo.keys() else {
        say_version(repo, FULL_COPY_VERSION).await?;
        return Ok((None, false));
    };
    let (store, repo_id) = (repo.store(), repo.repo_id());
    let mut upgraded = false;
    let mut ring = if ring.ring_key.is_none() {
        upgraded = true;
        upgraded_v1(store, repo_id, ring).await?
    } else {
        ring.clone()
    };
    let pinned = ring
        .bound
        .as_ref()
        .is_some_and(|b| b.slot_keys.contains_key(&ring.kek_id()));
    if ring.pair.is_none() || !pinned {
        upgraded |= ring.bound.is_none();
        if ring.pair.is_none() {
            keyslot::upgrade_v3(store, &hex::encode(repo_id), &ring.kek, &ring.ring_keys).await?;
            ring = reload(store, repo_id, &ring, None).await?;
        }
        let public = ring.pair.as_ref().map(|p| p.public());
        let pin = public.map(|p| (ring.kek_id(), p));
        ring = advance(repo, &ring, None, pin, None).await?;
    }
    say_version(repo, FULL_COPY_VERSION).await?;
    Ok((Some(ring), upgraded))
}

/// Rewrites `pgbunker.json` to say format `version` at least, so that an older
/// pgbunker refuses the repository instead of misreading what this one writes.
pub(crate) async fn say_version(repo: &Repository, version: u32) -> Result<(), ArchiveError> {
    if repo.config().version < version {
        let mut config = repo.config().clone();
        config.version = version;
        let json = serde_json::to_vec_pretty(&config).expect("config serializes");
        repo.store()
            .put_overwrite(layout::CONFIG, Bytes::from(json))
            .await?;
    }
    Ok(())
}

/// Starts generation N + 1 of the ring: (1) a catalog entry, sealed under generation
/// N, announces N + 1 and the ring key that will seal it; (2) generation N + 1 is
/// written under that ring key, holding every RK plus a fresh one as current and
/// `from_seq` = the announcing entry. From the announcement on every catalog entry must
/// be sealed under N + 1 or later, so nothing anyone seals with an older RK after it is
/// accepted. The catalog's create-only put orders the announcement against every
/// concurrent commit, which is why it comes before the generation object.
pub(super) async fn advance(
    repo: &Repository,
    ring: &KeyRing,
    new_ring_key: Option<&RingKey>,
    pin: Option<(String, [u8; 32])>,
    unpin: Option<&str>,
) -> Result<KeyRing, ArchiveError> {
    let (store, repo_id) = (repo.store(), repo.repo_id());
    let mut ring = reload(store, repo_id, ring, new_ring_key).await?;
    for _ in 0..ATTEMPTS {
        let ring_key = match new_ring_key {
            Some(k) => k.clone(),
            None => ring
                .ring_key
                .clone()
                .expect("a ring in keyring/ has a ring key"),
        };
        let next = ring.generation + 1;
        let decl = RingDecl {
            generation: next,
            ring_key_id: ring_key.id(),
        };
        let base = ring.generation;
        let announced = chain::commit_raw(repo, Some(&ring), move |current, entry| {
            // Someone else's key change came first: announce on top of its ring.
            if current.in_force() > base {
                return Err(ArchiveError::KeysChanged {
                    what: "this key change".into(),
                    generation: base,
                    required: current.in_force(),
                });
            }
            entry.ring = Some(decl.clone());
            Ok(())
        })
        .await;
        let announced = match announced {
            Ok((state, _)) => state,
            // Another key change got there first: start again from its ring.
            Err(ArchiveError::KeysChanged { .. }) => {
                ring = reload(store, repo_id, &ring, new_ring_key).await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut slot_keys = ring
            .bound
            .as_ref()
            .map(|b| b.slot_keys.clone())
            .unwrap_or_default();
        if let Some((id, public)) = &pin {
            slot_keys.insert(id.clone(), *public);
        }
        if let Some(id) = unpin {
            slot_keys.remove(id);
        }
        let rk = RepoKey::generate();
        let mut all = ring.all.clone();
        all.push(rk.clone());
        let generation = NextGeneration {
            generation: next,
            ring_key: &ring_key,
            current: &rk,
            all: &all,
            from_seq: announced.seq,
            currents: ring
                .bound
                .as_ref()
                .map(|b| b.currents.clone())
                .unwrap_or_default(),
            slot_keys,
        };
        match keyring::write_bound(store, repo_id, generation).await {
            // A writer that found the announcement may have finished it meanwhile.
            Ok(()) | Err(ArchiveError::Store(StoreError::AlreadyExists(_))) => {}
            Err(e) => return Err(e),
        }
        return reload(store, repo_id, &ring, new_ring_key).await;
    }
    Err(ArchiveError::Corrupt(format!(
        "could not write a key ring generation after {ATTEMPTS} attempts (too many \
         concurrent key changes?)"
    )))
}

/// Finishes a key change that announced generation `decl` in catalog entry
/// `announced_at` but stopped before writing it: the same generation, under the
/// announced ring key, which this slot must have been given.
pub(crate) async fn finish_pending(
    store: &Store,
    repo_id: &[u8; 16],
    ring: &KeyRing,
    decl: &RingDecl,
    announced_at: u64,
) -> Result<KeyRing, ArchiveError> {
    if decl.generation != ring.generation + 1 {
        return Err(ArchiveError::Corrupt(format!(
            "the catalog announces key ring generation {}, but the newest one is {}",
            decl.generation, ring.generation
        )));
    }
    let Some(ring_key) = ring.ring_keys.iter().find(|k| k.id() == decl.ring_key_id) else {
        return Err(KeyError::PendingGeneration {
            generation: decl.generation,
            ring_key_id: decl.ring_key_id.clone(),
        }
        .into());
    };
    let rk = RepoKey::generate();
    let mut all = ring.all.clone();
    all.push(rk.clone());
    let bound = ring.bound.clone().unwrap_or_default();
    let next = NextGeneration {
        generation: decl.generation,
        ring_key,
        current: &rk,
        all: &all,
        from_seq: announced_at,
        currents: bound.currents,
        slot_keys: bound.slot_keys,
    };
    match keyring::write_bound(store, repo_id, next).await {
        Ok(()) | Err(ArchiveError::Store(StoreError::AlreadyExists(_))) => {}
        Err(e) => return Err(e),
    }
    reload(store, repo_id, ring, None).await
}

/// Adds a version-3 slot for `new` holding every ring key this slot holds, then a
/// generation that pins its public key (so later key changes can hand it new ring
/// keys). The new slot must open the ring before anyone relies on it.
pub(crate) async fn add(
    repo: &Repository,
    ring: &KeyRing,
    new: &KeySource,
) -> Result<(KeyRing, String), ArchiveError> {
    let (store, repo_id) = (repo.store(), repo.repo_id());
    let slot = keyslot::prepare(store, new).await?;
    let (kek, public) = keyslot::write(store, &hex::encode(repo_id), slot, &ring.ring_keys).await?;
    let ring = advance(repo, ring, None, Some((kek.id(), public)), None).await?;
    let ring = activate(repo, ring).await?;
    unlock(store, repo_id, new).await?;
    Ok((ring, kek.id()))
}

/// Commits an entry sealed under the ring's newest generation, the first one: readers
/// that meet it need not look further back (see `chain`).
async fn activate(repo: &Repository, ring: KeyRing) -> Result<KeyRing, ArchiveError> {
    chain::commit_raw(repo, Some(&ring), |_, _| Ok(())).await?;
    Ok(ring)
}

/// Revokes slot `kek_id`: a new ring key is sealed to every other slot's pinned public
/// key, generation N + 1 is announced and written under it (holding every RK, so old
/// backups stay readable, and a fresh current RK), then the slot is deleted. Whoever
/// kept a copy of the removed slot holds only older ring keys, which open no generation
/// from N + 1 on, and whatever they seal with an older RK is refused after the
/// announcement.
pub(crate) async fn remove(
    repo: &Repository,
    ring: &KeyRing,
    kek_id: &str,
) -> Result<(Option<KeyRing>, SlotRemoval), ArchiveError> {
    let store = repo.store();
    let no_such = || -> ArchiveError {
        KeyError::NoSuchSlot {
            kek_id: kek_id.into(),
        }
        .into()
    };
    if !keyslot::is_kek_id(kek_id) {
        return Err(no_such());
    }
    let ids = slot_ids(store).await?;
    if !ids.iter().any(|id| id == kek_id) {
        return Err(no_such());
    }
    if ids.len() == 1 {
        return Err(KeyError::LastSlot {
            kek_id: kek_id.into(),
        }
        .into());
    }
    let pins = ring
        .bound
        .as_ref()
        .map(|b| b.slot_keys.clone())
        .unwrap_or_default();
    let others: Vec<&String> = ids.iter().filter(|id| *id != kek_id).collect();
    let unpinned: Vec<String> = others
        .iter()
        .filter(|id| !pins.contains_key(id.as_str()))
        .map(|id| id.to_string())
        .collect();
    if !unpinned.is_empty() {
        return Err(KeyError::SlotNotUpgraded { kek_ids: unpinned }.into());
    }
    let ring_key = RingKey::generate();
    let repo_hex = hex::encode(repo.repo_id());
    for id in &others {
        keyslot::grant(store, &repo_hex, id, &pins[id.as_str()], &ring_key).await?;
    }
    let was_unlocking = ring.kek_id() == kek_id;
    let next = advance(repo, ring, Some(&ring_key), None, Some(kek_id)).await?;
    let generation = next.generation;
    let remaining = delete_slot(store, kek_id).await?;
    let next = if was_unlocking {
        None
    } else {
        Some(activate(repo, reload(store, repo.repo_id(), &next, None).await?).await?)
    };
    Ok((
        next,
        SlotRemoval {
            kek_id: kek_id.into(),
            remaining,
            was_unlocking,
            generation,
        },
    ))
}

/// Writes the next generation with a fresh repository key as current (the ring key
/// stays), announced in the catalog first.
pub(crate) async fn rotate(
    repo: &Repository,
    ring: &KeyRing,
) -> Result<(KeyRing, KeyRotation), ArchiveError> {
    let previous = ring.current.id();
    let next = activate(repo, advance(repo, ring, None, None, None).await?).await?;
    let rotation = KeyRotation {
        generation: next.generation,
        rk_id: next.current.id(),
        previous_rk_id: previous,
        upgraded: false,
    };
    Ok((next, rotation))
}

/// The slots, marking the one `ring` was opened with, and every generation.
pub(super) async fn status(
    store: &Store,
    repo_id: &[u8; 16],
    ring: &KeyRing,
) -> Result<KeyStatus, ArchiveError> {
    let unlocked_with = ring.kek_id();
    let mut slots = keyslot::list(store).await?;
    for s in &mut slots {
        s.unlocked_with = s.kek_id == unlocked_with;
    }
    Ok(KeyStatus {
        unlocked_with,
        slots,
        generations: history(store, repo_id, ring).await?,
    })
}

/// Every generation of the ring, oldest first.
async fn history(
    store: &Store,
    repo_id: &[u8; 16],
    ring: &KeyRing,
) -> Result<Vec<GenerationInfo>, ArchiveError> {
    if ring.ring_key.is_none() {
        return Ok(vec![GenerationInfo {
            generation: ring.generation,
            created_at: None,
            current: ring.current.id(),
            rk_ids: ring.all.iter().map(RepoKey::id).collect(),
            ring_key_id: None,
        }]);
    }
    let mut out = Vec::new();
    for generation in keyring::generations(store).await? {
        let (json, key) =
            keyring::read(store, repo_id, &ring.ring_keys, &ring.kek_id(), generation).await?;
        let (current, all) = keyring::keys_of(&json)?;
        out.push(GenerationInfo {
            generation,
            created_at: json.created_at().cloned(),
            current: current.id(),
            rk_ids: all.iter().map(RepoKey::id).collect(),
            ring_key_id: json.is_bound().then(|| key.id()),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::archive::Repository;
    use crate::codec::SecretKey;

    /// The key `fixtures/repo-v1` was written with (public test data).
    const FIXTURE_KEY: [u8; 32] = [
        0x6f, 0x1b, 0x0c, 0x2d, 0x3e, 0x4f, 0x5a, 0x6b, 0x7c, 0x8d, 0x9e, 0x0f, 0x1a, 0x2b, 0x3c,
        0x4d, 0x5e, 0x6f, 0x7a, 0x8b, 0x9c, 0x0d, 0x1e, 0x2f, 0x3a, 0x4b, 0x5c, 0x6d, 0x7e, 0x8f,
        0x9a, 0x0b,
    ];

    fn key(b: u8) -> KeySource {
        KeySource::Key(SecretKey::from_bytes([b; 32]))
    }

    fn store(dir: &Path) -> Store {
        Store::create(dir.to_str().unwrap()).unwrap()
    }

    async fn new_repo(dir: &Path) -> Repository {
        Repository::init(store(dir), Some(&key(1)), false)
            .await
            .unwrap()
            .0
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.path().is_dir() {
                copy_dir(&e.path(), &to.join(e.file_name()));
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }

    /// A copy of the committed version-1 repository, opened with its key.
    async fn v1_repo(dir: &Path) -> Repository {
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/repo-v1/repo"),
            dir,
        );
        let fixture_key = KeySource::Key(SecretKey::from_bytes(FIXTURE_KEY));
        Repository::open(store(dir), Some(&fixture_key))
            .await
            .unwrap()
    }

    fn config_version(dir: &Path) -> u64 {
        let cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("pgbunker.json")).unwrap()).unwrap();
        cfg["version"].as_u64().unwrap()
    }

    #[tokio::test]
    async fn a_rotation_through_one_slot_is_seen_through_every_other() {
        let dir = tempfile::tempdir().unwrap();
        let mut repo = new_repo(dir.path()).await;
        let added = repo.add_key(&key(2)).await.unwrap();
        assert!(!added.upgraded);
        let first = repo.keys().unwrap().current.id();
        let rotation = repo.rotate_key().await.unwrap();
        // Generation 1 from init, 2 from the addition (it pins the new slot's public
        // key), 3 from the rotation.
        assert_eq!(
            (rotation.generation, rotation.previous_rk_id.as_str()),
            (3, first.as_str())
        );

        let other = Repository::open(store(dir.path()), Some(&key(2)))
            .await
            .unwrap();
        let ring = other.keys().unwrap();
        assert_eq!(ring.current.id(), rotation.rk_id);
        assert!(ring.get(&first).is_some(), "old keys still read");
        let status = other.key_status().await.unwrap();
        assert_eq!(status.unlocked_with, added.kek_id);
        assert_eq!(status.generations.len(), 3);
        assert_eq!(status.generations[2].rk_ids.len(), 3);

        let secret = hex::encode(ring.current.secret().expose());
        let shown = format!("{ring:?} {status:?}");
        assert!(
            !shown.contains(&secret) && shown.contains("redacted"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn a_removed_key_neither_opens_nor_plants_a_generation() {
        let dir = tempfile::tempdir().unwrap();
        let mut repo = new_repo(dir.path()).await;
        let removed = repo.add_key(&key(2)).await.unwrap().kek_id;
        let attacker = Repository::open(store(dir.path()), Some(&key(2)))
            .await
            .unwrap();
        let slot = std::fs::read(dir.path().join("keys").join(&removed)).unwrap();
        let removal = repo.remove_key(&removed).await.unwrap();
        std::fs::write(dir.path().join("keys").join(&removed), slot).unwrap();
        let e = Repository::open(store(dir.path()), Some(&key(2)))
            .await
            .unwrap_err();
        assert!(
            matches!(e, ArchiveError::Keys(KeyError::Revoked { generation, .. }) if generation == removal.generation),
            "{e}"
        );

        // With the old ring key it still holds, it seals a generation of its own.
        let old = attacker.keys().unwrap();
        let rk = RepoKey::generate();
        let next = NextGeneration {
            generation: removal.generation + 1,
            ring_key: old.ring_key.as_ref().unwrap(),
            current: &rk,
            all: std::slice::from_ref(&rk),
            from_seq: 0,
            currents: BTreeMap::from([(removal.generation + 1, rk.id())]),
            slot_keys: BTreeMap::new(),
        };
        keyring::write_bound(&store(dir.path()), repo.repo_id(), next)
            .await
            .unwrap();
        let e = Repository::open(store(dir.path()), Some(&key(1)))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("it was planted"), "{e}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_rotations_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let repo = new_repo(dir.path()).await;
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let mut repo = repo.clone();
            tasks.push(tokio::spawn(async move { repo.rotate_key().await }));
        }
        let mut new_ids = Vec::new();
        for t in tasks {
            new_ids.push(t.await.unwrap().unwrap().rk_id);
        }
        let again = Repository::open(store(dir.path()), Some(&key(1)))
            .await
            .unwrap();
        let ring = again.keys().unwrap();
        assert_eq!(ring.generation, 9);
        assert_eq!(ring.all.len(), 9);
        assert!(new_ids.iter().all(|id| ring.get(id).is_some()));
    }

    #[tokio::test]
    async fn a_missing_generation_is_reported_not_read_around() {
        let dir = tempfile::tempdir().unwrap();
        let mut repo = new_repo(dir.path()).await;
        repo.rotate_key().await.unwrap();
        repo.rotate_key().await.unwrap();
        std::fs::remove_file(dir.path().join("keyring/00000000000000000002")).unwrap();
        let e = Repository::open(store(dir.path()), Some(&key(1)))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("generation 2 is missing"), "{e}");
    }

    #[tokio::test]
    async fn a_version_1_repository_upgrades_once_and_keeps_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut repo = v1_repo(dir.path()).await;
        let v1_rk = repo.keys().unwrap().current.id();
        assert_eq!(repo.keys().unwrap().generation, 0);
        // A refused addition upgrades nothing.
        let same = KeySource::Key(SecretKey::from_bytes(FIXTURE_KEY));
        let e = repo.add_key(&same).await.unwrap_err();
        assert!(
            matches!(e, ArchiveError::Keys(KeyError::SlotExists { .. })),
            "{e}"
        );
        assert_eq!(config_version(dir.path()), 1);
        assert!(!dir.path().join("keyring").exists());
        let added = repo.add_key(&key(2)).await.unwrap();
        assert!(added.upgraded);
        assert_eq!(config_version(dir.path()), u64::from(FULL_COPY_VERSION));
        let slot: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("keys/b745e18ada677dd7")).unwrap(),
        )
        .unwrap();
        assert_eq!(slot["version"], 3);
        assert!(slot.get("keyring").is_none(), "the ring left the slot");

        let other = Repository::open(store(dir.path()), Some(&key(2)))
            .await
            .unwrap();
        // The upgrade starts a generation with a fresh current key; the old one reads.
        assert_ne!(other.keys().unwrap().current.id(), v1_rk);
        assert!(other.keys().unwrap().get(&v1_rk).is_some());
        assert_eq!(other.catalog().await.unwrap().live.len(), 1);
        assert!(!repo.rotate_key().await.unwrap().upgraded);
    }

    #[tokio::test]
    async fn ambiguous_or_interrupted_upgrades_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut repo = v1_repo(dir.path()).await;
        let slot = dir.path().join("keys/b745e18ada677dd7");
        let mut twin: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&slot).unwrap()).unwrap();
        twin["kek_id"] = "0123456789abcdef".into();
        let twin_path = dir.path().join("keys/0123456789abcdef");
        std::fs::write(&twin_path, serde_json::to_vec(&twin).unwrap()).unwrap();
        let e = repo.rotate_key().await.unwrap_err();
        assert!(
            matches!(e, ArchiveError::Keys(KeyError::SeveralV1Slots { count: 2 })),
            "{e}"
        );
        assert!(!dir.path().join("keyring").exists());
        std::fs::remove_file(twin_path).unwrap();

        // A generation nobody can open: what an upgrade interrupted before it rewrote
        // the slot leaves behind.
        std::fs::create_dir(dir.path().join("keyring")).unwrap();
        std::fs::write(dir.path().join("keyring/00000000000000000001"), b"junk").unwrap();
        let e = repo.add_key(&key(2)).await.unwrap_err();
        assert!(
            matches!(e, ArchiveError::Keys(KeyError::UnfinishedUpgrade { .. })),
            "{e}"
        );
        assert_eq!(config_version(dir.path()), 1);
        let slot: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&slot).unwrap()).unwrap();
        assert_eq!(slot["version"], 1);
        assert_eq!(
            std::fs::read_dir(dir.path().join("keys")).unwrap().count(),
            1
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn removals_never_leave_the_repository_without_a_slot() {
        let dir = tempfile::tempdir().unwrap();
        let mut one = new_repo(dir.path()).await;
        let id_one = one.keys().unwrap().kek_id();
        let id_two = one.add_key(&key(2)).await.unwrap().kek_id;
        let mut two = Repository::open(store(dir.path()), Some(&key(2)))
            .await
            .unwrap();
        // Each removes the other's slot at once: both may see two slots first.
        let (a, b) = tokio::join!(one.remove_key(&id_two), two.remove_key(&id_one));
        let left = keyslot::list(&store(dir.path())).await.unwrap();
        assert!(!left.is_empty(), "{a:?} {b:?}");
        for r in [a, b] {
            assert!(
                matches!(
                    r,
                    Ok(_)
                        | Err(ArchiveError::Keys(
                            KeyError::LastSlot { .. }
                                | KeyError::ConcurrentRemoval { .. }
                                | KeyError::PendingGeneration { .. }
                                | KeyError::Revoked { .. }
                        ))
                        | Err(ArchiveError::WrongKey)
                ),
                "{r:?}"
            );
        }
        // And a key that still has a slot opens the repository and reads its catalog.
        let mut opened = 0;
        for k in [key(1), key(2)] {
            if let Ok(r) = Repository::open(store(dir.path()), Some(&k)).await {
                r.catalog().await.unwrap();
                opened += 1;
            }
        }
        assert!(opened >= 1);
    }
}
