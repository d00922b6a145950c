//! Key slots: each key-encryption key (passphrase, key file, environment key) wraps the
//! repository key ring in its own slot, so keys can be added and changed without
//! re-encrypting any data.

use std::collections::BTreeMap;

use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::layout;
use super::ArchiveError;
use crate::codec::{
    kek_from_passphrase, open_blob, parse_key_bytes, seal_blob, Argon2Params, Kek, RepoKey,
    SecretKey,
};
use crate::store::Store;

/// Where the key-encryption key comes from. Built from the environment (never from
/// command-line values, which other users can see in `ps`).
pub enum KeySource {
    Key(SecretKey),
    Passphrase(Zeroizing<String>),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Key(_) => f.write_str("KeySource::Key([redacted])"),
            KeySource::Passphrase(_) => f.write_str("KeySource::Passphrase([redacted])"),
        }
    }
}

/// Reads a key or passphrase file. The error names the variable, never its value: a
/// user who put the secret itself in `PGBUNKER_KEY_FILE` must not see it echoed.
fn read_secret_file(var: &str, path: &str) -> Result<Zeroizing<Vec<u8>>, ArchiveError> {
    std::fs::read(path).map(Zeroizing::new).map_err(|e| {
        ArchiveError::BadKeyInput(format!("cannot read the file named by {var}: {}", e.kind()))
    })
}

impl KeySource {
    /// Reads `PGBUNKER_KEY_FILE`, `PGBUNKER_KEY`, `PGBUNKER_PASSPHRASE_FILE` or
    /// `PGBUNKER_PASSPHRASE`. More than one of them set is an error: guessing which one
    /// the user meant could lock them out of their backups.
    pub fn from_env() -> Result<Option<KeySource>, ArchiveError> {
        let vars = [
            "PGBUNKER_KEY_FILE",
            "PGBUNKER_KEY",
            "PGBUNKER_PASSPHRASE_FILE",
            "PGBUNKER_PASSPHRASE",
        ];
        let set: Vec<(&str, Zeroizing<String>)> = vars
            .iter()
            .filter_map(|v| std::env::var(v).ok().map(|val| (*v, Zeroizing::new(val))))
            .collect();
        if set.len() > 1 {
            let names: Vec<&str> = set.iter().map(|(n, _)| *n).collect();
            return Err(ArchiveError::BadKeyInput(format!(
                "{} are all set; set exactly one",
                names.join(" and ")
            )));
        }
        let Some((var, val)) = set.into_iter().next() else {
            return Ok(None);
        };
        let key = |bytes: &[u8]| {
            parse_key_bytes(bytes)
                .map(KeySource::Key)
                .map_err(|e| ArchiveError::codec(format!("{var} is not a valid key"), e))
        };
        match var {
            "PGBUNKER_KEY_FILE" => key(&read_secret_file(var, &val)?),
            "PGBUNKER_KEY" => key(val.as_bytes()),
            "PGBUNKER_PASSPHRASE_FILE" => {
                let bytes = read_secret_file(var, &val)?;
                let text = std::str::from_utf8(&bytes).map_err(|_| {
                    ArchiveError::BadKeyInput(format!("{var}: the passphrase file is not UTF-8"))
                })?;
                let line = text.strip_suffix('\n').unwrap_or(text);
                let line = line.strip_suffix('\r').unwrap_or(line);
                Self::passphrase(line)
            }
            _ => Self::passphrase(&val),
        }
        .map(Some)
    }

    /// A key file named in the settings file: the same rules as `PGBUNKER_KEY_FILE`.
    pub fn from_key_file(path: &std::path::Path) -> Result<KeySource, ArchiveError> {
        let bytes = read_secret_file("key_file", &path.to_string_lossy())?;
        parse_key_bytes(&bytes)
            .map(KeySource::Key)
            .map_err(|e| ArchiveError::codec("key_file is not a valid key", e))
    }

    fn passphrase(p: &str) -> Result<KeySource, ArchiveError> {
        if p.is_empty() {
            return Err(ArchiveError::BadKeyInput("the passphrase is empty".into()));
        }
        Ok(KeySource::Passphrase(Zeroizing::new(p.to_owned())))
    }
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    algorithm: String,
    #[serde(flatten)]
    params: Argon2Params,
    salt: String,
}

/// `keys/<kek_id>`: one slot.
#[derive(Serialize, Deserialize)]
struct KeySlot {
    version: u32,
    kek_id: String,
    /// "key" (key file or environment key) or "passphrase".
    kind: String,
    #[serde(default)]
    kdf: Option<Kdf>,
    created_at: String,
    /// base64 of nonce ‖ AES-256-GCM-SIV(key ring JSON).
    keyring: String,
}

#[derive(Serialize, Deserialize)]
struct KeyRingJson {
    current: String,
    keys: BTreeMap<String, String>,
}

impl Drop for KeyRingJson {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for v in self.keys.values_mut() {
            v.zeroize();
        }
    }
}

/// The repository keys a slot unlocks: the newest writes, every one reads.
#[derive(Debug, Clone)]
pub struct KeyRing {
    pub current: RepoKey,
    pub all: Vec<RepoKey>,
}

impl KeyRing {
    pub fn new(rk: RepoKey) -> Self {
        KeyRing {
            current: rk.clone(),
            all: vec![rk],
        }
    }

    pub fn get(&self, rk_id: &str) -> Option<&RepoKey> {
        self.all.iter().find(|k| k.id() == rk_id)
    }
}

fn slot_aad(repo_id: &str, kek_id: &str) -> Vec<u8> {
    format!("pgbunker/v1/keyslot\0{repo_id}\0{kek_id}").into_bytes()
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formatting now")
}

/// Derives the KEK for a new slot (a fresh salt for passphrases).
fn new_kek(source: &KeySource) -> Result<(Kek, &'static str, Option<Kdf>), ArchiveError> {
    match source {
        KeySource::Key(k) => Ok((Kek::new(k.clone()), "key", None)),
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
            Ok((kek, "passphrase", Some(kdf)))
        }
    }
}

/// Writes a slot for `source` that wraps `ring`. Returns the slot's id.
pub async fn write_slot(
    store: &Store,
    repo_id: &str,
    source: &KeySource,
    ring: &KeyRing,
) -> Result<String, ArchiveError> {
    let (kek, kind, kdf) = new_kek(source)?;
    let kek_id = kek.id();
    let plain = KeyRingJson {
        current: ring.current.id(),
        keys: ring
            .all
            .iter()
            .map(|k| (k.id(), hex::encode(k.secret().expose())))
            .collect(),
    };
    let json = Zeroizing::new(serde_json::to_vec(&plain).expect("key ring serializes"));
    let blob = seal_blob(&kek.wrapping_key(), &slot_aad(repo_id, &kek_id), &json)
        .map_err(|e| ArchiveError::codec("seal the key slot", e))?;
    let slot = KeySlot {
        version: 1,
        kek_id: kek_id.clone(),
        kind: kind.into(),
        kdf,
        created_at: now(),
        keyring: base64::engine::general_purpose::STANDARD.encode(blob),
    };
    let bytes = serde_json::to_vec_pretty(&slot).expect("slot serializes");
    store
        .put_new(&layout::key_slot(&kek_id), bytes.into())
        .await?;
    Ok(kek_id)
}

/// Finds the slot `source` opens and unwraps the key ring.
pub async fn unlock(
    store: &Store,
    repo_id: &str,
    source: &KeySource,
) -> Result<KeyRing, ArchiveError> {
    let (kek, slot) = match source {
        KeySource::Key(k) => {
            let kek = Kek::new(k.clone());
            let Some(bytes) = store.get_opt(&layout::key_slot(&kek.id())).await? else {
                return Err(ArchiveError::WrongKey);
            };
            let slot: KeySlot =
                serde_json::from_slice(&bytes).map_err(|e| ArchiveError::json("a key slot", e))?;
            (kek, slot)
        }
        KeySource::Passphrase(p) => find_passphrase_slot(store, p).await?,
    };
    let blob = base64::engine::general_purpose::STANDARD
        .decode(&slot.keyring)
        .map_err(|_| ArchiveError::Corrupt(format!("key slot {} is not base64", slot.kek_id)))?;
    let json = Zeroizing::new(
        open_blob(&kek.wrapping_key(), &slot_aad(repo_id, &slot.kek_id), &blob)
            .map_err(|e| ArchiveError::codec(format!("open key slot {}", slot.kek_id), e))?,
    );
    let ring: KeyRingJson =
        serde_json::from_slice(&json).map_err(|e| ArchiveError::json("the key ring", e))?;
    let mut all = Vec::new();
    for (id, hexkey) in &ring.keys {
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
        .find(|k| k.id() == ring.current)
        .cloned()
        .ok_or_else(|| ArchiveError::Corrupt("the current repository key is missing".into()))?;
    Ok(KeyRing { current, all })
}

async fn find_passphrase_slot(store: &Store, pass: &str) -> Result<(Kek, KeySlot), ArchiveError> {
    for key in store.list(layout::KEYS).await? {
        let bytes = store.get(&key).await?;
        let slot: KeySlot =
            serde_json::from_slice(&bytes).map_err(|e| ArchiveError::json("a key slot", e))?;
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
            return Ok((kek, slot));
        }
    }
    Err(ArchiveError::WrongKey)
}
