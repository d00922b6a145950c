//! Key slots: each key-encryption key (passphrase, key file, environment key) gets its
//! own `keys/<kek_id>` slot, so keys can be added and removed without re-encrypting any
//! data. A version-3 slot holds an X25519 key pair (the private half wrapped by the
//! slot's key) and the ring keys sealed to its public half, so any slot holder can hand
//! a new ring key to every other slot and `key remove` can leave the removed one out. A
//! version-2 slot wraps one ring key; a version-1 slot wrapped the key ring itself. Both
//! stay readable.

use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::keyerror::KeyError;
use super::keysource::KeySource;
use super::layout;
use super::timestamp::Timestamp;
use super::ArchiveError;
use crate::codec::{
    kek_from_passphrase, open_blob, seal_blob, seal_to_slot, Argon2Params, Kek, RingKey, SecretKey,
    SlotKeyPair,
};
use crate::store::{Store, StoreError};

#[derive(Serialize, Deserialize)]
struct Kdf {
    algorithm: String,
    #[serde(flatten)]
    params: Argon2Params,
    salt: String,
}

/// `keys/<kek_id>`: one slot, plaintext JSON except for the wrapped secret.
#[derive(Serialize, Deserialize)]
struct KeySlot {
    version: u32,
    kek_id: String,
    /// "key" (key file or environment key) or "passphrase".
    kind: String,
    #[serde(default)]
    kdf: Option<Kdf>,
    created_at: Timestamp,
    /// Version 1: base64 of nonce ‖ AES-256-GCM-SIV(key ring JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keyring: Option<String>,
    /// Version 2: base64 of nonce ‖ AES-256-GCM-SIV(ring key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ring_key: Option<String>,
    /// Version 3: the slot's X25519 public key, base64. Informative: writers hand new
    /// ring keys to the copy pinned in the sealed key ring, never to this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    public_key: Option<String>,
    /// Version 3: base64 of nonce ‖ AES-256-GCM-SIV(X25519 private key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    private_key: Option<String>,
    /// Version 3: every ring key the slot was given, each base64 of ephemeral public
    /// key ‖ nonce ‖ AES-256-GCM-SIV(ring key), oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ring_keys: Option<Vec<String>>,
}

/// A key slot as `key list` shows it: all of it is plaintext in the repository anyway.
#[derive(Debug, Clone, Serialize)]
pub struct SlotInfo {
    pub kek_id: String,
    /// `key` (a key file or environment key) or `passphrase`.
    pub kind: String,
    pub version: u32,
    pub created_at: Timestamp,
    /// A passphrase slot's Argon2id cost, so slots with weak old parameters stand out.
    pub argon2: Option<Argon2Params>,
    /// Whether the key given to this command opened this slot.
    pub unlocked_with: bool,
}

/// What an opened slot holds.
pub(super) enum SlotContent {
    /// Version 1: the key ring JSON itself.
    Ring(Zeroizing<Vec<u8>>),
    /// Versions 2 and 3: the keys that open `keyring/` generations (one for version 2),
    /// and a version-3 slot's key pair.
    RingKeys {
        keys: Vec<RingKey>,
        pair: Option<SlotKeyPair>,
    },
}

pub(super) struct OpenedSlot {
    pub kek: Kek,
    pub content: SlotContent,
}

const V1_DOMAIN: &str = "pgbunker/v1/keyslot";
const V2_DOMAIN: &str = "pgbunker/v2/keyslot";
const V3_DOMAIN: &str = "pgbunker/v3/keyslot";
const V3_PRIVATE_DOMAIN: &str = "pgbunker/v3/keyslot-private";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// The AAD of the private key binds its public half, so a slot whose public key was
/// swapped no longer opens.
fn private_aad(repo_id: &str, kek_id: &str, public: &[u8; 32]) -> Vec<u8> {
    let mut aad = slot_aad(V3_PRIVATE_DOMAIN, repo_id, kek_id);
    aad.push(0);
    aad.extend_from_slice(hex::encode(public).as_bytes());
    aad
}

fn slot_aad(domain: &str, repo_id: &str, kek_id: &str) -> Vec<u8> {
    format!("{domain}\0{repo_id}\0{kek_id}").into_bytes()
}

/// Slot names are key ids; anything else under `keys/` (a console's folder marker, a
/// crafted `../` id) is never read as a slot nor used to build a path.
pub(super) fn is_kek_id(name: &str) -> bool {
    name.len() == 16 && name.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Derives the KEK for a new slot (a fresh salt for passphrases).
fn new_kek(source: &KeySource) -> Result<(Kek, Option<Kdf>), ArchiveError> {
    match source {
        KeySource::Key(k) => Ok((Kek::new(k.clone()), None)),
        KeySource::Passphrase(p) => {
            let mut salt = [0u8; 16];
            rand::rngs::OsRng.fill_bytes(&mut salt);
            let params = Argon2Params::default();
            let kek = kek_from_passphrase(p, &salt, params)
                .map_err(|e| ArchiveError::codec("derive the key from the passphrase", e))?;
            let kdf = Kdf {
                algorithm: "argon2id".into(),
                params,
                salt: hex::encode(salt),
            };
            Ok((kek, Some(kdf)))
        }
    }
}

/// A version-3 slot for `kek`: a fresh key pair, and `ring_keys` sealed to it.
fn seal_v3(
    repo_id: &str,
    kek: &Kek,
    kind: String,
    kdf: Option<Kdf>,
    created_at: Timestamp,
    ring_keys: &[RingKey],
) -> Result<(KeySlot, SlotKeyPair), ArchiveError> {
    let kek_id = kek.id();
    let pair = SlotKeyPair::generate();
    let public = pair.public();
    let private = seal_blob(
        &kek.wrapping_key(),
        &private_aad(repo_id, &kek_id, &public),
        pair.secret().expose(),
    )
    .map_err(|e| ArchiveError::codec("seal the key slot", e))?;
    let mut sealed = Vec::new();
    for k in ring_keys {
        sealed.push(b64(&seal_ring_key(repo_id, &kek_id, &public, k)?));
    }
    let slot = KeySlot {
        version: 3,
        kek_id,
        kind,
        kdf,
        created_at,
        keyring: None,
        ring_key: None,
        public_key: Some(b64(&public)),
        private_key: Some(b64(&private)),
        ring_keys: Some(sealed),
    };
    Ok((slot, pair))
}

fn seal_ring_key(
    repo_id: &str,
    kek_id: &str,
    public: &[u8; 32],
    key: &RingKey,
) -> Result<Vec<u8>, ArchiveError> {
    seal_to_slot(
        public,
        &slot_aad(V3_DOMAIN, repo_id, kek_id),
        key.secret().expose(),
    )
    .map_err(|e| ArchiveError::codec("seal a ring key to a key slot", e))
}

fn encode(slot: &KeySlot) -> bytes::Bytes {
    serde_json::to_vec_pretty(slot)
        .expect("slot serializes")
        .into()
}

/// A slot about to be written: its KEK is derived (a fresh salt for a passphrase) and
/// checked to be new before anything in the repository changes.
pub(super) struct NewSlot {
    kek: Kek,
    kind: &'static str,
    kdf: Option<Kdf>,
}

/// Derives the KEK for a new slot. A key that already has a slot is refused, and so is
/// a passphrase that already opens one: its fresh salt would give it a second id, and
/// two slots for one secret make removing it later error-prone.
pub(super) async fn prepare(store: &Store, source: &KeySource) -> Result<NewSlot, ArchiveError> {
    let exists = |kek_id: String| -> ArchiveError { KeyError::SlotExists { kek_id }.into() };
    if let KeySource::Passphrase(p) = source {
        if let Some((_, slot)) = find_passphrase_slot(store, p).await? {
            return Err(exists(slot.kek_id));
        }
    }
    let (kek, kdf) = new_kek(source)?;
    if read(store, &kek.id()).await?.is_some() {
        return Err(exists(kek.id()));
    }
    Ok(NewSlot {
        kek,
        kind: source.kind(),
        kdf,
    })
}

/// Writes a prepared version-3 slot holding `ring_keys` (create-only); returns its KEK
/// and public key, which the caller pins in the key ring.
pub(super) async fn write(
    store: &Store,
    repo_id: &str,
    new: NewSlot,
    ring_keys: &[RingKey],
) -> Result<(Kek, [u8; 32]), ArchiveError> {
    let (slot, pair) = seal_v3(
        repo_id,
        &new.kek,
        new.kind.into(),
        new.kdf,
        Timestamp::now(),
        ring_keys,
    )?;
    match store
        .put_new(&layout::key_slot(&slot.kek_id), encode(&slot))
        .await
    {
        Ok(()) => Ok((new.kek, pair.public())),
        Err(StoreError::AlreadyExists(_)) => Err(KeyError::SlotExists {
            kek_id: slot.kek_id,
        }
        .into()),
        Err(e) => Err(e.into()),
    }
}

/// Rewrites the slot of `kek` (any version) as version 3 holding `ring_keys`, keeping its
/// kind, Argon2 parameters, salt and creation time so the same key or passphrase opens
/// it. Returns the new public key.
pub(super) async fn upgrade_v3(
    store: &Store,
    repo_id: &str,
    kek: &Kek,
    ring_keys: &[RingKey],
) -> Result<[u8; 32], ArchiveError> {
    let kek_id = kek.id();
    let old = read(store, &kek_id).await?.ok_or(ArchiveError::WrongKey)?;
    let (slot, pair) = seal_v3(repo_id, kek, old.kind, old.kdf, old.created_at, ring_keys)?;
    store
        .put_overwrite(&layout::key_slot(&kek_id), encode(&slot))
        .await?;
    Ok(pair.public())
}

/// Hands `key` to slot `kek_id` by sealing it to `public` (the copy pinned in the key
/// ring, never the one in the slot file, which anyone who can write the bucket could
/// have swapped for their own).
pub(super) async fn grant(
    store: &Store,
    repo_id: &str,
    kek_id: &str,
    public: &[u8; 32],
    key: &RingKey,
) -> Result<(), ArchiveError> {
    let Some(mut slot) = read(store, kek_id).await? else {
        return Ok(());
    };
    if slot.version != 3 {
        return Err(KeyError::SlotNotUpgraded {
            kek_ids: vec![kek_id.into()],
        }
        .into());
    }
    let sealed = b64(&seal_ring_key(repo_id, kek_id, public, key)?);
    slot.ring_keys.get_or_insert_with(Vec::new).push(sealed);
    store
        .put_overwrite(&layout::key_slot(kek_id), encode(&slot))
        .await?;
    Ok(())
}

async fn read(store: &Store, kek_id: &str) -> Result<Option<KeySlot>, ArchiveError> {
    let Some(bytes) = store.get_opt(&layout::key_slot(kek_id)).await? else {
        return Ok(None);
    };
    let slot: KeySlot = serde_json::from_slice(&bytes)
        .map_err(|e| ArchiveError::json(format!("key slot {kek_id}"), e))?;
    if slot.kek_id != kek_id {
        return Err(ArchiveError::Corrupt(format!(
            "key slot {kek_id} names itself {:?}",
            slot.kek_id
        )));
    }
    Ok(Some(slot))
}

async fn all_slots(store: &Store) -> Result<Vec<KeySlot>, ArchiveError> {
    let mut out = Vec::new();
    for key in store.list(layout::KEYS).await? {
        let Some(name) = key.strip_prefix(&format!("{}/", layout::KEYS)) else {
            continue;
        };
        if !is_kek_id(name) {
            continue;
        }
        // Slots are plaintext that anyone with write access can plant: one that does
        // not parse must not lock every key out of the repository.
        match read(store, name).await {
            Ok(Some(slot)) => out.push(slot),
            Ok(None) => {}
            Err(ArchiveError::Store(e)) => return Err(e.into()),
            Err(e) => tracing::warn!("key slot {name} is not a key slot ({e}): skipped"),
        }
    }
    Ok(out)
}

/// The most Argon2id work a slot may ask for: 16 times the memory and three times the
/// passes of the default. A planted slot beyond it is never run, so it cannot make
/// every passphrase user allocate gigabytes or wait for hours.
const MAX_M_KIB: u32 = 1024 * 1024;
const MAX_T: u32 = 10;
const MAX_P: u32 = 8;

/// Every slot, oldest first; `unlocked_with` is left for the caller to set.
pub(super) async fn list(store: &Store) -> Result<Vec<SlotInfo>, ArchiveError> {
    let mut slots: Vec<SlotInfo> = all_slots(store)
        .await?
        .into_iter()
        .map(|s| SlotInfo {
            argon2: s.kdf.as_ref().map(|k| k.params),
            kek_id: s.kek_id,
            kind: s.kind,
            version: s.version,
            created_at: s.created_at,
            unlocked_with: false,
        })
        .collect();
    slots.sort_by(|a, b| (&a.created_at, &a.kek_id).cmp(&(&b.created_at, &b.kek_id)));
    Ok(slots)
}

/// Finds the slot `source` opens and unwraps it.
pub(super) async fn open(
    store: &Store,
    repo_id: &str,
    source: &KeySource,
) -> Result<OpenedSlot, ArchiveError> {
    let found = match source {
        KeySource::Key(k) => {
            let kek = Kek::new(k.clone());
            read(store, &kek.id()).await?.map(|slot| (kek, slot))
        }
        KeySource::Passphrase(p) => find_passphrase_slot(store, p).await?,
    };
    let (kek, slot) = found.ok_or(ArchiveError::WrongKey)?;
    unwrap(repo_id, kek, slot)
}

/// Opens the slot of a KEK derived earlier (to see what a concurrent upgrade wrote).
pub(super) async fn reopen(
    store: &Store,
    repo_id: &str,
    kek: &Kek,
) -> Result<OpenedSlot, ArchiveError> {
    let slot = read(store, &kek.id())
        .await?
        .ok_or(ArchiveError::WrongKey)?;
    unwrap(repo_id, kek.clone(), slot)
}

fn unwrap(repo_id: &str, kek: Kek, slot: KeySlot) -> Result<OpenedSlot, ArchiveError> {
    let kek_id = slot.kek_id.clone();
    let corrupt = |why: &str| ArchiveError::Corrupt(format!("key slot {kek_id} {why}"));
    let open_with =
        |domain: &str, blob: &Option<String>| -> Result<Zeroizing<Vec<u8>>, ArchiveError> {
            let blob = blob
                .as_deref()
                .and_then(unb64)
                .ok_or_else(|| corrupt("holds no base64 wrapped key"))?;
            open_blob(
                &kek.wrapping_key(),
                &slot_aad(domain, repo_id, &kek_id),
                &blob,
            )
            .map(Zeroizing::new)
            .map_err(|e| ArchiveError::codec(format!("open key slot {kek_id}"), e))
        };
    let content = match slot.version {
        1 => SlotContent::Ring(open_with(V1_DOMAIN, &slot.keyring)?),
        2 => SlotContent::RingKeys {
            keys: vec![ring_key_of(&open_with(V2_DOMAIN, &slot.ring_key)?)
                .ok_or_else(|| corrupt("wraps a ring key of the wrong size"))?],
            pair: None,
        },
        3 => {
            let public: [u8; 32] = slot
                .public_key
                .as_deref()
                .and_then(unb64)
                .and_then(|p| p.try_into().ok())
                .ok_or_else(|| corrupt("holds no public key"))?;
            let private = slot
                .private_key
                .as_deref()
                .and_then(unb64)
                .ok_or_else(|| corrupt("holds no private key"))?;
            let secret = Zeroizing::new(
                open_blob(
                    &kek.wrapping_key(),
                    &private_aad(repo_id, &kek_id, &public),
                    &private,
                )
                .map_err(|e| ArchiveError::codec(format!("open key slot {kek_id}"), e))?,
            );
            let secret: [u8; 32] = secret
                .as_slice()
                .try_into()
                .map_err(|_| corrupt("holds a private key of the wrong size"))?;
            let pair = SlotKeyPair::from_secret(&SecretKey::from_bytes(secret));
            // Ring keys anyone may have sealed to the public key: one that does not open
            // is skipped; what the others open is only trusted once the catalog names it.
            let aad = slot_aad(V3_DOMAIN, repo_id, &kek_id);
            let keys = slot
                .ring_keys
                .iter()
                .flatten()
                .filter_map(|b| unb64(b))
                .filter_map(|b| pair.open(&aad, &b).ok().map(Zeroizing::new))
                .filter_map(|k| ring_key_of(&k))
                .collect();
            SlotContent::RingKeys {
                keys,
                pair: Some(pair),
            }
        }
        version => return Err(KeyError::NewerSlot { kek_id, version }.into()),
    };
    Ok(OpenedSlot { kek, content })
}

fn ring_key_of(plain: &[u8]) -> Option<RingKey> {
    let raw: [u8; 32] = plain.try_into().ok()?;
    Some(RingKey::new(SecretKey::from_bytes(raw)))
}

async fn find_passphrase_slot(
    store: &Store,
    pass: &str,
) -> Result<Option<(Kek, KeySlot)>, ArchiveError> {
    let mut slots = all_slots(store).await?;
    // Cheapest first: the slots pgbunker wrote (default cost) are tried before any
    // planted one that asks for more, and the search stops at the match.
    let cost = |s: &KeySlot| {
        s.kdf
            .as_ref()
            .map_or(0, |k| u64::from(k.params.m_kib) * u64::from(k.params.t))
    };
    slots.sort_by(|a, b| (cost(a), &a.kek_id).cmp(&(cost(b), &b.kek_id)));
    for slot in slots {
        let Some(kdf) = &slot.kdf else { continue };
        if slot.kind != "passphrase" || kdf.algorithm != "argon2id" {
            continue;
        }
        // Slots are not authenticated until opened: a planted slot must not make us
        // allocate terabytes or spin for hours, nor stop us trying the others.
        let p = kdf.params;
        if p.m_kib > MAX_M_KIB || p.t > MAX_T || p.p > MAX_P {
            tracing::warn!(
                "key slot {} asks for Argon2id m_kib={} t={} p={}, beyond what pgbunker runs \
                 (m_kib {MAX_M_KIB}, t {MAX_T}, p {MAX_P}): skipped",
                slot.kek_id,
                p.m_kib,
                p.t,
                p.p
            );
            continue;
        }
        let Ok(salt) = hex::decode(&kdf.salt) else {
            tracing::warn!(
                "key slot {} has a salt that is not hex: skipped",
                slot.kek_id
            );
            continue;
        };
        let kek = match kek_from_passphrase(pass, &salt, kdf.params) {
            Ok(kek) => kek,
            Err(e @ crate::codec::CodecError::EmptyPassphrase) => {
                return Err(ArchiveError::codec("derive the key from the passphrase", e))
            }
            Err(e) => {
                tracing::warn!(
                    "key slot {} has unusable Argon2id parameters ({e}): skipped",
                    slot.kek_id
                );
                continue;
            }
        };
        if kek.id() == slot.kek_id {
            return Ok(Some((kek, slot)));
        }
    }
    Ok(None)
}
