//! Key management: what `init`, unlocking and `key add|list|remove|rotate` do with the
//! key slots and the key ring together. Any one slot holder can change the keys, and
//! every change keeps each backup readable and never leaves the repository without a
//! slot.

use serde::Serialize;

use super::keyerror::KeyError;
use super::keyring::{self, KeyRing};
use super::keyslot::{self, OpenedSlot, SlotContent, SlotInfo};
use super::keysource::KeySource;
use super::{layout, ArchiveError};
use crate::codec::{RepoKey, RingKey};
use crate::store::{Store, StoreError};

/// Rotations racing for one generation retry from the winner's ring.
const ATTEMPTS: usize = 50;

/// What `key add` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct KeyAdded {
    pub kek_id: String,
    pub kind: String,
    /// Whether this call moved a version-1 repository's key ring to `keyring/`.
    pub upgraded: bool,
}

/// What `key remove` did.
#[derive(Debug, Clone, Serialize)]
pub struct SlotRemoval {
    pub kek_id: String,
    pub remaining: Vec<String>,
    /// The presented key opened the removed slot: it no longer opens the repository.
    pub was_unlocking: bool,
}

/// One generation of the ring as `key list` shows it: ids only, no key material.
#[derive(Debug, Clone, Serialize)]
pub struct GenerationInfo {
    /// 0 stands for a version-1 ring, kept inside its key slot.
    pub generation: u64,
    pub created_at: Option<String>,
    pub current: String,
    pub rk_ids: Vec<String>,
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
    /// Whether the rotation first moved a version-1 repository's ring to `keyring/`.
    pub upgraded: bool,
}

/// Deletes slot `kek_id` unless it is the last one; returns the ids left. Two removals
/// racing for the last two slots could each see the other's slot and delete their own,
/// so the one that finds none left afterwards puts its slot back.
pub(super) async fn remove(store: &Store, kek_id: &str) -> Result<Vec<String>, ArchiveError> {
    let no_such = || -> ArchiveError {
        KeyError::NoSuchSlot {
            kek_id: kek_id.into(),
        }
        .into()
    };
    if !keyslot::is_kek_id(kek_id) {
        return Err(no_such());
    }
    let ids: Vec<String> = keyslot::list(store)
        .await?
        .into_iter()
        .map(|s| s.kek_id)
        .collect();
    if !ids.iter().any(|id| id == kek_id) {
        return Err(no_such());
    }
    if ids.len() == 1 {
        return Err(KeyError::LastSlot {
            kek_id: kek_id.into(),
        }
        .into());
    }
    let key = layout::key_slot(kek_id);
    let bytes = store.get(&key).await?;
    store.delete(&key).await?;
    let left: Vec<String> = keyslot::list(store)
        .await?
        .into_iter()
        .map(|s| s.kek_id)
        .collect();
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

async fn from_slot(
    store: &Store,
    repo_id: &[u8; 16],
    slot: OpenedSlot,
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
                kek: slot.kek,
            })
        }
        SlotContent::RingKey(ring_key) => keyring::load(store, repo_id, slot.kek, ring_key).await,
    }
}

/// A new repository's keys: a ring key, generation 1 holding a first repository key,
/// and one slot for `source`. The ring is written first so a slot never points at
/// nothing.
pub(super) async fn create(
    store: &Store,
    repo_id: &[u8; 16],
    source: &KeySource,
) -> Result<KeyRing, ArchiveError> {
    let slot = keyslot::prepare(store, source).await?;
    let ring_key = RingKey::generate();
    let rk = RepoKey::generate();
    keyring::write(store, repo_id, &ring_key, 1, &rk, std::slice::from_ref(&rk)).await?;
    let kek = keyslot::write(store, &hex::encode(repo_id), slot, &ring_key).await?;
    Ok(KeyRing {
        current: rk.clone(),
        all: vec![rk],
        generation: 1,
        ring_key: Some(ring_key),
        kek,
    })
}

/// Opens the ring through the slot `source` opens.
pub(super) async fn unlock(
    store: &Store,
    repo_id: &[u8; 16],
    source: &KeySource,
) -> Result<KeyRing, ArchiveError> {
    let slot = keyslot::open(store, &hex::encode(repo_id), source).await?;
    from_slot(store, repo_id, slot).await
}

/// The ring in `keyring/` and its ring key, moving a version-1 ring there first
/// (`true` when this call did). Order: generation 1 (create-only), then the slot is
/// rewritten to wrap the ring key; until then the version-1 slot still holds the
/// whole ring, so an interruption loses nothing.
pub(super) async fn upgraded(
    store: &Store,
    repo_id: &[u8; 16],
    ring: &KeyRing,
) -> Result<(KeyRing, RingKey, bool), ArchiveError> {
    if let Some(k) = &ring.ring_key {
        return Ok((ring.clone(), k.clone(), false));
    }
    let repo_hex = hex::encode(repo_id);
    let count = keyslot::list(store).await?.len();
    if count > 1 {
        return Err(KeyError::SeveralV1Slots { count }.into());
    }
    if !keyring::generations(store).await?.is_empty() {
        return Err(KeyError::UnfinishedUpgrade {
            kek_id: ring.kek_id(),
        }
        .into());
    }
    let ring_key = RingKey::generate();
    match keyring::write(store, repo_id, &ring_key, 1, &ring.current, &ring.all).await {
        Ok(()) => {}
        Err(ArchiveError::Store(StoreError::AlreadyExists(_))) => {
            // Another pgbunker upgraded at the same moment: carry on with its ring once
            // it has rewritten the slot.
            return match keyslot::reopen(store, &repo_hex, &ring.kek).await?.content {
                SlotContent::RingKey(k) => {
                    let ring = keyring::load(store, repo_id, ring.kek.clone(), k.clone()).await?;
                    Ok((ring, k, false))
                }
                SlotContent::Ring(_) => Err(KeyError::UnfinishedUpgrade {
                    kek_id: ring.kek_id(),
                }
                .into()),
            };
        }
        Err(e) => return Err(e),
    }
    keyslot::upgrade(store, &repo_hex, &ring.kek, &ring_key).await?;
    let next = KeyRing {
        current: ring.current.clone(),
        all: ring.all.clone(),
        generation: 1,
        ring_key: Some(ring_key.clone()),
        kek: ring.kek.clone(),
    };
    Ok((next, ring_key, true))
}

/// Writes the next generation: the newest ring plus a fresh repository key as current.
/// Built from the newest generation in the store, not from `ring`, so a rotation by
/// another slot holder in between is kept.
pub(super) async fn rotate(
    store: &Store,
    repo_id: &[u8; 16],
    ring: &KeyRing,
    ring_key: &RingKey,
) -> Result<(KeyRing, KeyRotation), ArchiveError> {
    let rk = RepoKey::generate();
    for _ in 0..ATTEMPTS {
        let (generation, json) = keyring::latest(store, repo_id, ring_key).await?;
        let (previous, mut all) = keyring::keys_of(&json)?;
        all.push(rk.clone());
        let next = generation + 1;
        match keyring::write(store, repo_id, ring_key, next, &rk, &all).await {
            Ok(()) => {
                let rotation = KeyRotation {
                    generation: next,
                    rk_id: rk.id(),
                    previous_rk_id: previous.id(),
                    upgraded: false,
                };
                let ring = KeyRing {
                    current: rk,
                    all,
                    generation: next,
                    ring_key: Some(ring_key.clone()),
                    kek: ring.kek.clone(),
                };
                return Ok((ring, rotation));
            }
            Err(ArchiveError::Store(StoreError::AlreadyExists(_))) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ArchiveError::Corrupt(format!(
        "could not write a key ring generation after {ATTEMPTS} attempts (too many \
         concurrent rotations?)"
    )))
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
    let info = |generation, created_at, current: &RepoKey, all: &[RepoKey]| GenerationInfo {
        generation,
        created_at,
        current: current.id(),
        rk_ids: all.iter().map(RepoKey::id).collect(),
    };
    let Some(ring_key) = &ring.ring_key else {
        return Ok(vec![info(ring.generation, None, &ring.current, &ring.all)]);
    };
    let mut out = Vec::new();
    for generation in keyring::generations(store).await? {
        let json = keyring::read(store, repo_id, ring_key, generation).await?;
        let (current, all) = keyring::keys_of(&json)?;
        out.push(info(
            generation,
            json.created_at().map(str::to_owned),
            &current,
            &all,
        ));
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
        assert_eq!(
            (rotation.generation, rotation.previous_rk_id.as_str()),
            (2, first.as_str())
        );

        let other = Repository::open(store(dir.path()), Some(&key(2)))
            .await
            .unwrap();
        let ring = other.keys().unwrap();
        assert_eq!(ring.current.id(), rotation.rk_id);
        assert!(ring.get(&first).is_some(), "old keys still read");
        let status = other.key_status().await.unwrap();
        assert_eq!(status.unlocked_with, added.kek_id);
        assert_eq!(status.generations.len(), 2);
        assert_eq!(status.generations[1].rk_ids.len(), 2);

        let secret = hex::encode(ring.current.secret().expose());
        let shown = format!("{ring:?} {status:?}");
        assert!(
            !shown.contains(&secret) && shown.contains("redacted"),
            "{shown}"
        );
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
        assert_eq!(config_version(dir.path()), 2);
        let slot: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("keys/b745e18ada677dd7")).unwrap(),
        )
        .unwrap();
        assert_eq!(slot["version"], 2);
        assert!(slot.get("keyring").is_none(), "the ring left the slot");

        let other = Repository::open(store(dir.path()), Some(&key(2)))
            .await
            .unwrap();
        assert_eq!(other.keys().unwrap().current.id(), v1_rk);
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
        let two = Repository::open(store(dir.path()), Some(&key(2)))
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
                            KeyError::LastSlot { .. } | KeyError::ConcurrentRemoval { .. }
                        ))
                ),
                "{r:?}"
            );
        }
    }
}
