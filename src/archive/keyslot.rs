//! Key slots: each key-encryption key (passphrase, key file, environment key) gets its
//! own `keys/<kek_id>` slot, so keys can be added and removed without re-encrypting any
//! data. A version-2 slot wraps the ring key that opens `keyring/`; a version-1 slot
//! wrapped the key ring itself and stays readable.

use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::keyerror::KeyError;
use super::keysource::KeySource;
use super::layout;
use super::ArchiveError;
use crate::codec::{
    kek_from_passphrase, open_blob, seal_blob, Argon2Params, Kek, RingKey, SecretKey,
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
    created_at: String,
    /// Version 1: base64 of nonce ‖ AES-256-GCM-SIV(key ring JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keyring: Option<String>,
    /// Version 2: base64 of nonce ‖ AES-256-GCM-SIV(ring key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ring_key: Option<String>,
}

/// A key slot as `key list` shows it: all of it is plaintext in the repository anyway.
#[derive(Debug, Clone, Serialize)]
pub struct SlotInfo {
    pub kek_id: String,
    /// `key` (a key file or environment key) or `passphrase`.
    pub kind: String,
    pub version: u32,
    pub created_at: String,
    /// A passphrase slot's Argon2id cost, so slots with weak old parameters stand out.
    pub argon2: Option<Argon2Params>,
    /// Whether the key given to this command opened this slot.
    pub unlocked_with: bool,
}

/// What an opened slot holds.
pub(super) enum SlotContent {
    /// Version 1: the key ring JSON itself.
    Ring(Zeroizing<Vec<u8>>),
    /// Version 2: the key that opens `keyring/`.
    RingKey(RingKey),
}

pub(super) struct OpenedSlot {
    pub kek: Kek,
    pub content: SlotContent,
}

const V1_DOMAIN: &str = "pgbunker/v1/keyslot";
const V2_DOMAIN: &str = "pgbunker/v2/keyslot";

fn slot_aad(domain: &str, repo_id: &str, kek_id: &str) -> Vec<u8> {
    format!("{domain}\0{repo_id}\0{kek_id}").into_bytes()
}

/// Slot names are key ids; anything else under `keys/` (a console's folder marker, a
/// crafted `../` id) is never read as a slot nor used to build a path.
pub(super) fn is_kek_id(name: &str) -> bool {
    name.len() == 16 && name.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

pub(super) fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formatting now")
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

fn seal_v2(
    repo_id: &str,
    kek: &Kek,
    kind: String,
    kdf: Option<Kdf>,
    created_at: String,
    ring_key: &RingKey,
) -> Result<KeySlot, ArchiveError> {
    let kek_id = kek.id();
    let blob = seal_blob(
        &kek.wrapping_key(),
        &slot_aad(V2_DOMAIN, repo_id, &kek_id),
        ring_key.secret().expose(),
    )
    .map_err(|e| ArchiveError::codec("seal the key slot", e))?;
    Ok(KeySlot {
        version: 2,
        kek_id,
        kind,
        kdf,
        created_at,
        keyring: None,
        ring_key: Some(base64::engine::general_purpose::STANDARD.encode(blob)),
    })
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

/// Writes a prepared slot wrapping `ring_key` (create-only) and returns its KEK.
pub(super) async fn write(
    store: &Store,
    repo_id: &str,
    new: NewSlot,
    ring_key: &RingKey,
) -> Result<Kek, ArchiveError> {
    let slot = seal_v2(repo_id, &new.kek, new.kind.into(), new.kdf, now(), ring_key)?;
    match store
        .put_new(&layout::key_slot(&slot.kek_id), encode(&slot))
        .await
    {
        Ok(()) => Ok(new.kek),
        Err(StoreError::AlreadyExists(_)) => Err(KeyError::SlotExists {
            kek_id: slot.kek_id,
        }
        .into()),
        Err(e) => Err(e.into()),
    }
}

/// Replaces the version-1 slot of `kek` with a version-2 slot wrapping `ring_key`. The
/// kind, Argon2 parameters and salt stay, so the same key or passphrase opens it.
pub(super) async fn upgrade(
    store: &Store,
    repo_id: &str,
    kek: &Kek,
    ring_key: &RingKey,
) -> Result<(), ArchiveError> {
    let kek_id = kek.id();
    let old = read(store, &kek_id).await?.ok_or(ArchiveError::WrongKey)?;
    if old.version != 1 {
        return Err(ArchiveError::Corrupt(format!(
            "key slot {kek_id} changed while it was being upgraded"
        )));
    }
    let slot = seal_v2(repo_id, kek, old.kind, old.kdf, old.created_at, ring_key)?;
    store
        .put_overwrite(&layout::key_slot(&kek_id), encode(&slot))
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
        if let Some(slot) = read(store, name).await? {
            out.push(slot);
        }
    }
    Ok(out)
}

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
    let kek_id = &slot.kek_id;
    let (domain, field) = match slot.version {
        1 => (V1_DOMAIN, &slot.keyring),
        2 => (V2_DOMAIN, &slot.ring_key),
        version => {
            return Err(KeyError::NewerSlot {
                kek_id: kek_id.clone(),
                version,
            }
            .into())
        }
    };
    let blob = field
        .as_deref()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .ok_or_else(|| {
            ArchiveError::Corrupt(format!("key slot {kek_id} holds no base64 wrapped key"))
        })?;
    let plain = Zeroizing::new(
        open_blob(
            &kek.wrapping_key(),
            &slot_aad(domain, repo_id, kek_id),
            &blob,
        )
        .map_err(|e| ArchiveError::codec(format!("open key slot {kek_id}"), e))?,
    );
    let content = if slot.version == 1 {
        SlotContent::Ring(plain)
    } else {
        let mut raw = Zeroizing::new([0u8; 32]);
        if plain.len() != raw.len() {
            return Err(ArchiveError::Corrupt(format!(
                "key slot {kek_id} wraps a ring key of the wrong size"
            )));
        }
        raw.copy_from_slice(&plain);
        SlotContent::RingKey(RingKey::new(SecretKey::from_bytes(*raw)))
    };
    Ok(OpenedSlot { kek, content })
}

async fn find_passphrase_slot(
    store: &Store,
    pass: &str,
) -> Result<Option<(Kek, KeySlot)>, ArchiveError> {
    for slot in all_slots(store).await? {
        let Some(kdf) = &slot.kdf else { continue };
        if slot.kind != "passphrase" || kdf.algorithm != "argon2id" {
            continue;
        }
        // Slots are not authenticated until opened: a planted slot must not make us
        // allocate terabytes or spin for hours.
        let p = kdf.params;
        if p.m_kib > 4 * 1024 * 1024 || p.t > 16 || p.p > 16 {
            return Err(ArchiveError::Corrupt(format!(
                "key slot {} asks for Argon2id parameters beyond any sane cost",
                slot.kek_id
            )));
        }
        let salt = hex::decode(&kdf.salt)
            .map_err(|_| ArchiveError::Corrupt(format!("key slot {} salt", slot.kek_id)))?;
        let kek = kek_from_passphrase(pass, &salt, kdf.params)
            .map_err(|e| ArchiveError::codec("derive the key from the passphrase", e))?;
        if kek.id() == slot.kek_id {
            return Ok(Some((kek, slot)));
        }
    }
    Ok(None)
}
