//! The key ring's storage: write-once `keyring/<generation>` objects, each sealed under
//! a ring key the slots hold, holding the repository keys (RK) that wrap every backup's
//! data key. Format 1 kept the ring inside its single slot instead; its JSON has the
//! same `current` and `keys`.
//!
//! A format-3 generation (object version 2) also names its ring key in the header, the
//! catalog entry after which it is in force (`from_seq`), the current RK of every
//! format-3 generation (so a catalog entry's claim "sealed under generation g" can be
//! checked against the key that sealed it) and each slot's pinned public key.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::keyerror::KeyError;
use super::timestamp::Timestamp;
use super::{layout, ArchiveError};
use crate::codec::{open_blob, seal_blob, AeadId, Kek, RepoKey, RingKey, SecretKey, SlotKeyPair};
use crate::store::Store;

const MAGIC: &[u8; 8] = b"PGBKRNG\x01";
const HEADER_LEN: usize = 8 + 1 + 1 + 2 + 16 + 8;
/// Object version 2 adds the ring key's id after the generation.
const HEADER_V2_LEN: usize = HEADER_LEN + 8;
const AAD_DOMAIN: &[u8] = b"pgbunker/v2/keyring";
const AAD_DOMAIN_V3: &[u8] = b"pgbunker/v3/keyring";

/// The ring as JSON: inside a version-1 slot (`current`, `keys`) or a `keyring/`
/// generation (every field).
#[derive(Serialize, Deserialize)]
pub(super) struct RingJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    generation: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_at: Option<Timestamp>,
    current: String,
    keys: BTreeMap<String, String>,
    /// Format 3: catalog entries after this sequence number must be sealed under this
    /// generation or a newer one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from_seq: Option<u64>,
    /// Format 3: the current RK id of every format-3 generation up to this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    currents: Option<BTreeMap<u64, String>>,
    /// Format 3: each version-3 slot's public key (hex), pinned when the slot was
    /// written, so new ring keys go to the slot's owner and not to a swapped-in key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    slot_keys: Option<BTreeMap<String, String>>,
}

impl RingJson {
    pub(super) fn created_at(&self) -> Option<&Timestamp> {
        self.created_at.as_ref()
    }

    /// Whether this is a format-3 generation.
    pub(super) fn is_bound(&self) -> bool {
        self.from_seq.is_some()
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
    /// Sealed the newest generation; `None` while the ring still lives in a version-1
    /// slot.
    pub(super) ring_key: Option<RingKey>,
    /// Every ring key the slot holds (older ones open older generations).
    pub(super) ring_keys: Vec<RingKey>,
    /// What a format-3 newest generation binds; `None` for older rings.
    pub(super) bound: Option<Bound>,
    /// The KEK that opened the ring: names the slot, and rewraps it on upgrade.
    pub(super) kek: Kek,
    /// A version-3 slot's key pair; `None` for older slots.
    pub(super) pair: Option<SlotKeyPair>,
}

/// What a format-3 generation says beyond its keys.
#[derive(Debug, Clone, Default)]
pub(super) struct Bound {
    pub from_seq: u64,
    pub currents: BTreeMap<u64, String>,
    pub slot_keys: BTreeMap<String, [u8; 32]>,
}

impl KeyRing {
    pub fn get(&self, rk_id: &str) -> Option<&RepoKey> {
        self.all.iter().find(|k| k.id() == rk_id)
    }

    /// The slot the presented key opened.
    pub(super) fn kek_id(&self) -> String {
        self.kek.id()
    }

    /// The generation new objects are sealed under, when it binds them (format 3).
    pub(crate) fn bound_generation(&self) -> Option<u64> {
        self.bound.as_ref().map(|_| self.generation)
    }

    /// The current RK of format-3 generation `generation`, if the ring knows it.
    pub(crate) fn current_of(&self, generation: u64) -> Option<&RepoKey> {
        let id = self.bound.as_ref()?.currents.get(&generation)?;
        self.get(id)
    }

    pub(crate) fn in_force_after(&self) -> Option<u64> {
        self.bound.as_ref().map(|b| b.from_seq)
    }

    pub(crate) fn ring_key_id(&self) -> Option<String> {
        self.ring_key.as_ref().map(RingKey::id)
    }
}

/// A format-3 generation about to be written.
pub(super) struct NextGeneration<'a> {
    pub generation: u64,
    pub ring_key: &'a RingKey,
    pub current: &'a RepoKey,
    pub all: &'a [RepoKey],
    pub from_seq: u64,
    pub currents: BTreeMap<u64, String>,
    pub slot_keys: BTreeMap<String, [u8; 32]>,
}

fn to_json(generation: u64, current: &RepoKey, all: &[RepoKey]) -> RingJson {
    RingJson {
        generation: Some(generation),
        created_at: Some(Timestamp::now()),
        current: current.id(),
        keys: all
            .iter()
            .map(|k| (k.id(), hex::encode(k.secret().expose())))
            .collect(),
        from_seq: None,
        currents: None,
        slot_keys: None,
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

fn header(repo_id: &[u8; 16], generation: u64, ring_key_id: Option<&str>) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_V2_LEN);
    h.extend_from_slice(MAGIC);
    h.push(if ring_key_id.is_some() { 2 } else { 1 });
    h.push(AeadId::Aes256GcmSiv as u8);
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(repo_id);
    h.extend_from_slice(&generation.to_be_bytes());
    if let Some(id) = ring_key_id {
        let mut b = [0u8; 8];
        hex::decode_to_slice(id, &mut b).expect("ring key ids are 16 hex digits");
        h.extend_from_slice(&b);
    }
    h
}

/// The ring key id a generation object names; `None` for object version 1, which any
/// of the slot's ring keys may open.
fn ring_key_id_of(generation: u64, bytes: &[u8]) -> Result<Option<String>, ArchiveError> {
    let bad = |why: &str| ArchiveError::Corrupt(format!("key ring generation {generation}: {why}"));
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err(bad("not a key ring object"));
    }
    match bytes[8] {
        1 => Ok(None),
        2 if bytes.len() >= HEADER_V2_LEN => Ok(Some(hex::encode(&bytes[36..44]))),
        _ => Err(bad("unknown version or encryption")),
    }
}

fn open(
    repo_id: &[u8; 16],
    ring_key: &RingKey,
    generation: u64,
    bytes: &[u8],
) -> Result<RingJson, ArchiveError> {
    let bad = |why: &str| ArchiveError::Corrupt(format!("key ring generation {generation}: {why}"));
    let named = ring_key_id_of(generation, bytes)?;
    let (len, domain) = match &named {
        None => (HEADER_LEN, AAD_DOMAIN),
        Some(_) => (HEADER_V2_LEN, AAD_DOMAIN_V3),
    };
    let (h, body) = bytes.split_at(len);
    if h[9] != AeadId::Aes256GcmSiv as u8 {
        return Err(bad("unknown version or encryption"));
    }
    if &h[12..28] != repo_id {
        return Err(bad("it belongs to another repository"));
    }
    if h[28..36] != generation.to_be_bytes() {
        return Err(bad("its generation does not match its name"));
    }
    if named.as_ref().is_some_and(|id| *id != ring_key.id()) {
        return Err(bad("it names another ring key"));
    }
    let json = Zeroizing::new(
        open_blob(&ring_key.sealing_key(), &[h, domain].concat(), body).map_err(|e| {
            ArchiveError::codec(format!("open key ring generation {generation}"), e)
        })?,
    );
    let ring: RingJson =
        serde_json::from_slice(&json).map_err(|e| ArchiveError::json("the key ring", e))?;
    if ring.generation != Some(generation) {
        return Err(bad("its body names another generation"));
    }
    if named.is_some() != (ring.from_seq.is_some() && ring.currents.is_some()) {
        return Err(bad("its header and body disagree on the format"));
    }
    Ok(ring)
}

/// Opens generation `generation` with whichever of `ring_keys` sealed it. A format-3
/// generation names its ring key: one the slot does not hold means the slot was left
/// out when the ring key changed, which is what `key remove` does to the removed slot.
fn open_any(
    repo_id: &[u8; 16],
    ring_keys: &[RingKey],
    kek_id: &str,
    generation: u64,
    bytes: &[u8],
) -> Result<(RingJson, RingKey), ArchiveError> {
    match ring_key_id_of(generation, bytes)? {
        Some(id) => {
            let key = ring_keys.iter().find(|k| k.id() == id).ok_or_else(|| {
                ArchiveError::from(KeyError::Revoked {
                    kek_id: kek_id.into(),
                    generation,
                })
            })?;
            Ok((open(repo_id, key, generation, bytes)?, key.clone()))
        }
        None => {
            let mut last = None;
            for key in ring_keys {
                match open(repo_id, key, generation, bytes) {
                    Ok(ring) => return Ok((ring, key.clone())),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| {
                ArchiveError::Corrupt(format!("key slot {kek_id} holds no ring key"))
            }))
        }
    }
}

/// Writes a format-2 generation create-only (only the upgrade of a format-1 ring does):
/// a conflict means another writer took it.
pub(super) async fn write(
    store: &Store,
    repo_id: &[u8; 16],
    ring_key: &RingKey,
    generation: u64,
    current: &RepoKey,
    all: &[RepoKey],
) -> Result<(), ArchiveError> {
    let json = to_json(generation, current, all);
    put(store, repo_id, ring_key, generation, &json, false).await
}

/// Writes a format-3 generation create-only.
pub(super) async fn write_bound(
    store: &Store,
    repo_id: &[u8; 16],
    next: NextGeneration<'_>,
) -> Result<(), ArchiveError> {
    let mut json = to_json(next.generation, next.current, next.all);
    let mut currents = next.currents;
    currents.insert(next.generation, next.current.id());
    json.from_seq = Some(next.from_seq);
    json.currents = Some(currents);
    json.slot_keys = Some(
        next.slot_keys
            .iter()
            .map(|(k, v)| (k.clone(), hex::encode(v)))
            .collect(),
    );
    put(store, repo_id, next.ring_key, next.generation, &json, true).await
}

async fn put(
    store: &Store,
    repo_id: &[u8; 16],
    ring_key: &RingKey,
    generation: u64,
    ring: &RingJson,
    bound: bool,
) -> Result<(), ArchiveError> {
    let json = Zeroizing::new(serde_json::to_vec(ring).expect("key ring serializes"));
    let id = bound.then(|| ring_key.id());
    let h = header(repo_id, generation, id.as_deref());
    let domain = if bound { AAD_DOMAIN_V3 } else { AAD_DOMAIN };
    let sealed = seal_blob(
        &ring_key.sealing_key(),
        &[h.as_slice(), domain].concat(),
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

/// Generation `generation`, opened with whichever of `ring_keys` sealed it.
pub(super) async fn read(
    store: &Store,
    repo_id: &[u8; 16],
    ring_keys: &[RingKey],
    kek_id: &str,
    generation: u64,
) -> Result<(RingJson, RingKey), ArchiveError> {
    let bytes = store.get(&layout::keyring_generation(generation)).await?;
    open_any(repo_id, ring_keys, kek_id, generation, &bytes)
}

/// The newest generation number. Generations run 1, 2, … without gaps: a hole means
/// objects were deleted, and is reported rather than read around.
pub(super) async fn newest(store: &Store) -> Result<u64, ArchiveError> {
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
    Ok(last)
}

/// The ring as of its newest generation, opened with the keys of one slot.
pub(super) async fn load(
    store: &Store,
    repo_id: &[u8; 16],
    kek: Kek,
    ring_keys: Vec<RingKey>,
    pair: Option<SlotKeyPair>,
) -> Result<KeyRing, ArchiveError> {
    let generation = newest(store).await?;
    let (json, ring_key) = read(store, repo_id, &ring_keys, &kek.id(), generation).await?;
    if json.is_bound() && generation > 1 {
        // Older ring keys stay in the slots, so someone who held only an older one (a
        // removed key) could seal a generation the slots still open. A real generation
        // carries every key and every current of the one before it, which that person
        // cannot read.
        let (prev, _) = read(store, repo_id, &ring_keys, &kek.id(), generation - 1).await?;
        let kept = prev.keys.iter().all(|(id, k)| json.keys.get(id) == Some(k))
            && prev
                .currents
                .iter()
                .flatten()
                .all(|(g, id)| json.currents.as_ref().and_then(|c| c.get(g)) == Some(id));
        if !kept {
            return Err(ArchiveError::Corrupt(format!(
                "key ring generation {generation} does not carry the keys of generation {}: \
                 it was planted",
                generation - 1
            )));
        }
    }
    let (current, all) = keys_of(&json)?;
    let bound = match (json.from_seq, &json.currents) {
        (Some(from_seq), Some(currents)) => {
            let mut slot_keys = BTreeMap::new();
            for (id, public) in json.slot_keys.iter().flatten() {
                let mut b = [0u8; 32];
                hex::decode_to_slice(public, &mut b).map_err(|_| {
                    ArchiveError::Corrupt(format!(
                        "key ring generation {generation}: slot {id}'s public key is not hex"
                    ))
                })?;
                slot_keys.insert(id.clone(), b);
            }
            if currents.get(&generation) != Some(&current.id()) {
                return Err(ArchiveError::Corrupt(format!(
                    "key ring generation {generation}: its current key is not its own"
                )));
            }
            Some(Bound {
                from_seq,
                currents: currents.clone(),
                slot_keys,
            })
        }
        _ => None,
    };
    Ok(KeyRing {
        current,
        all,
        generation,
        ring_key: Some(ring_key),
        ring_keys,
        bound,
        kek,
        pair,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[tokio::test]
    async fn generation_objects_are_bound_to_their_repository_number_and_ring_key() {
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

        // A format-3 generation names its ring key: a slot without it is revoked.
        let next = NextGeneration {
            generation: 2,
            ring_key: &ring_key,
            current: &rk,
            all: std::slice::from_ref(&rk),
            from_seq: 4,
            currents: BTreeMap::new(),
            slot_keys: BTreeMap::new(),
        };
        write_bound(&s, &a, next).await.unwrap();
        let bound = s.get(&layout::keyring_generation(2)).await.unwrap();
        let keys = [RingKey::generate(), ring_key.clone()];
        let (ring, _) = open_any(&a, &keys, "k", 2, &bound).unwrap();
        assert_eq!(ring.from_seq, Some(4));
        let e = open_any(&a, &[RingKey::generate()], "k", 2, &bound)
            .err()
            .expect("refused");
        assert!(
            matches!(
                e,
                ArchiveError::Keys(KeyError::Revoked { generation: 2, .. })
            ),
            "{e}"
        );
    }
}
