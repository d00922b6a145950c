//! The key ring's storage: write-once `keyring/<generation>` objects, each sealed under
//! the ring key that every version-2 slot wraps, holding the repository keys (RK) that
//! wrap every backup's data key. Format 1 kept the ring inside its single slot instead;
//! its JSON has the same `current` and `keys`.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::keyslot;
use super::{layout, ArchiveError};
use crate::codec::{open_blob, seal_blob, AeadId, Kek, RepoKey, RingKey, SecretKey};
use crate::store::Store;

const MAGIC: &[u8; 8] = b"PGBKRNG\x01";
const HEADER_LEN: usize = 8 + 1 + 1 + 2 + 16 + 8;
const AAD_DOMAIN: &[u8] = b"pgbunker/v2/keyring";

/// The ring as JSON: inside a version-1 slot (`current`, `keys`) or a `keyring/`
/// generation (every field).
#[derive(Serialize, Deserialize)]
pub(super) struct RingJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    generation: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
    current: String,
    keys: BTreeMap<String, String>,
}

impl RingJson {
    pub(super) fn created_at(&self) -> Option<&str> {
        self.created_at.as_deref()
    }
}

impl Drop for RingJson {
    fn drop(&mut self) {
        for v in self.keys.values_mut() {
            v.zeroize();
        }
    }
}

/// The repository keys a slot unlocks, and what is needed to change them.
#[derive(Debug, Clone)]
pub struct KeyRing {
    pub current: RepoKey,
    pub all: Vec<RepoKey>,
    /// The `keyring/` generation; 0 for a version-1 ring kept inside its slot.
    pub(super) generation: u64,
    /// Opens `keyring/`; `None` while the ring still lives in a version-1 slot.
    pub(super) ring_key: Option<RingKey>,
    /// The KEK that opened the ring: names the slot, and rewraps it on upgrade.
    pub(super) kek: Kek,
}

impl KeyRing {
    pub fn get(&self, rk_id: &str) -> Option<&RepoKey> {
        self.all.iter().find(|k| k.id() == rk_id)
    }

    /// The slot the presented key opened.
    pub(super) fn kek_id(&self) -> String {
        self.kek.id()
    }
}

fn to_json(generation: u64, current: &RepoKey, all: &[RepoKey]) -> RingJson {
    RingJson {
        generation: Some(generation),
        created_at: Some(keyslot::now()),
        current: current.id(),
        keys: all
            .iter()
            .map(|k| (k.id(), hex::encode(k.secret().expose())))
            .collect(),
    }
}

pub(super) fn keys_of(json: &RingJson) -> Result<(RepoKey, Vec<RepoKey>), ArchiveError> {
    let mut all = Vec::new();
    for (id, hexkey) in &json.keys {
        let mut b = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(hexkey, b.as_mut())
            .map_err(|_| ArchiveError::Corrupt("a repository key is not hex".into()))?;
        let rk = RepoKey::new(SecretKey::from_bytes(*b));
        if &rk.id() != id {
            return Err(ArchiveError::Corrupt(format!(
                "repository key {id} does not match its id"
            )));
        }
        all.push(rk);
    }
    let current = all
        .iter()
        .find(|k| k.id() == json.current)
        .cloned()
        .ok_or_else(|| ArchiveError::Corrupt("the current repository key is missing".into()))?;
    Ok((current, all))
}

fn header(repo_id: &[u8; 16], generation: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(MAGIC);
    h.push(1);
    h.push(AeadId::Aes256GcmSiv as u8);
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(repo_id);
    h.extend_from_slice(&generation.to_be_bytes());
    h
}

fn open(
    repo_id: &[u8; 16],
    ring_key: &RingKey,
    generation: u64,
    bytes: &[u8],
) -> Result<RingJson, ArchiveError> {
    let bad = |why: &str| ArchiveError::Corrupt(format!("key ring generation {generation}: {why}"));
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err(bad("not a key ring object"));
    }
    let (h, body) = bytes.split_at(HEADER_LEN);
    if h[8] != 1 || h[9] != AeadId::Aes256GcmSiv as u8 {
        return Err(bad("unknown version or encryption"));
    }
    if &h[12..28] != repo_id {
        return Err(bad("it belongs to another repository"));
    }
    if h[28..36] != generation.to_be_bytes() {
        return Err(bad("its generation does not match its name"));
    }
    let json = Zeroizing::new(
        open_blob(&ring_key.sealing_key(), &[h, AAD_DOMAIN].concat(), body).map_err(|e| {
            ArchiveError::codec(format!("open key ring generation {generation}"), e)
        })?,
    );
    let ring: RingJson =
        serde_json::from_slice(&json).map_err(|e| ArchiveError::json("the key ring", e))?;
    if ring.generation != Some(generation) {
        return Err(bad("its body names another generation"));
    }
    Ok(ring)
}

/// Writes generation `generation` create-only: a conflict means another writer took it.
pub(super) async fn write(
    store: &Store,
    repo_id: &[u8; 16],
    ring_key: &RingKey,
    generation: u64,
    current: &RepoKey,
    all: &[RepoKey],
) -> Result<(), ArchiveError> {
    let json = Zeroizing::new(
        serde_json::to_vec(&to_json(generation, current, all)).expect("key ring serializes"),
    );
    let h = header(repo_id, generation);
    let sealed = seal_blob(
        &ring_key.sealing_key(),
        &[h.as_slice(), AAD_DOMAIN].concat(),
        &json,
    )
    .map_err(|e| ArchiveError::codec("seal the key ring", e))?;
    let object = [h, sealed].concat();
    // Never publish a generation that would not open again: it would become the ring.
    open(repo_id, ring_key, generation, &object)?;
    store
        .put_new(&layout::keyring_generation(generation), Bytes::from(object))
        .await?;
    Ok(())
}

pub(super) async fn generations(store: &Store) -> Result<Vec<u64>, ArchiveError> {
    let mut gens: Vec<u64> = store
        .list(layout::KEYRING)
        .await?
        .iter()
        .filter_map(|k| layout::parse_keyring_generation(k))
        .collect();
    gens.sort_unstable();
    Ok(gens)
}

pub(super) async fn read(
    store: &Store,
    repo_id: &[u8; 16],
    ring_key: &RingKey,
    generation: u64,
) -> Result<RingJson, ArchiveError> {
    let bytes = store.get(&layout::keyring_generation(generation)).await?;
    open(repo_id, ring_key, generation, &bytes)
}

/// The newest generation, which is the ring. Generations run 1, 2, … without gaps: a
/// hole means objects were deleted, and is reported rather than read around.
pub(super) async fn latest(
    store: &Store,
    repo_id: &[u8; 16],
    ring_key: &RingKey,
) -> Result<(u64, RingJson), ArchiveError> {
    let gens = generations(store).await?;
    let Some(&last) = gens.last() else {
        return Err(ArchiveError::Corrupt(
            "the key ring is missing (keyring/ is empty)".into(),
        ));
    };
    if let Some(missing) = (1..=last).find(|g| gens.binary_search(g).is_err()) {
        return Err(ArchiveError::Corrupt(format!(
            "key ring generation {missing} is missing"
        )));
    }
    Ok((last, read(store, repo_id, ring_key, last).await?))
}

pub(super) async fn load(
    store: &Store,
    repo_id: &[u8; 16],
    kek: Kek,
    ring_key: RingKey,
) -> Result<KeyRing, ArchiveError> {
    let (generation, json) = latest(store, repo_id, &ring_key).await?;
    let (current, all) = keys_of(&json)?;
    Ok(KeyRing {
        current,
        all,
        generation,
        ring_key: Some(ring_key),
        kek,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[tokio::test]
    async fn generation_objects_are_bound_to_their_repository_and_number() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::create(dir.path().to_str().unwrap()).unwrap();
        let (ring_key, rk) = (RingKey::generate(), RepoKey::generate());
        let (a, b) = ([1u8; 16], [2u8; 16]);
        write(&s, &a, &ring_key, 1, &rk, std::slice::from_ref(&rk))
            .await
            .unwrap();
        let bytes = s.get(&layout::keyring_generation(1)).await.unwrap();
        assert_eq!(open(&a, &ring_key, 1, &bytes).unwrap().current, rk.id());
        let err = |r: Result<RingJson, ArchiveError>| r.err().expect("refused").to_string();
        assert!(err(open(&b, &ring_key, 1, &bytes)).contains("another repository"));
        assert!(err(open(&a, &ring_key, 2, &bytes)).contains("does not match its name"));
        assert!(err(open(&a, &RingKey::generate(), 1, &bytes)).contains("decryption failed"));
        let mut flipped = bytes.to_vec();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(err(open(&a, &ring_key, 1, &flipped)).contains("decryption failed"));
        // Create-only: a second writer of the same generation loses.
        assert!(matches!(
            write(&s, &a, &ring_key, 1, &rk, std::slice::from_ref(&rk)).await,
            Err(ArchiveError::Store(StoreError::AlreadyExists(_)))
        ));
    }
}
