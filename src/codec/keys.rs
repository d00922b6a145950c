//! The key hierarchy: key-encryption keys (from a passphrase, a key file or the
//! environment), the repository key, and one data key per backup.

use std::fmt;

use base64::Engine;
use hkdf::Hkdf;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::CodecError;

/// 32 secret bytes that wipe themselves on drop and never print.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    pub fn from_bytes(b: [u8; 32]) -> Self {
        SecretKey(b)
    }

    pub fn random() -> Self {
        let mut b = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut b);
        SecretKey(b)
    }

    /// The raw bytes; call sites are few and deliberate.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// HKDF-SHA256 with domain separation through `info`.
    fn derive(&self, salt: &[u8], info: &str) -> [u8; 32] {
        let hk = Hkdf::<Sha256>::new(Some(salt), &self.0);
        let mut out = [0u8; 32];
        hk.expand(info.as_bytes(), &mut out)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        out
    }

    fn derive_key(&self, salt: &[u8], info: &str) -> SecretKey {
        SecretKey(self.derive(salt, info))
    }

    fn derive_id(&self, salt: &[u8], info: &str) -> String {
        hex::encode(&self.derive(salt, info)[..8])
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

/// Parses key material given as exactly 32 raw bytes, 64 hex characters or base64 of
/// 32 bytes (surrounding whitespace ignored). Anything else is refused: a short or
/// padded key is a mistake, never something to stretch.
pub fn parse_key_bytes(input: &[u8]) -> Result<SecretKey, CodecError> {
    if input.len() == 32 && std::str::from_utf8(input).map_or(true, |s| s.trim().len() != 32) {
        return Ok(SecretKey(input.try_into().expect("32 bytes")));
    }
    let text = std::str::from_utf8(input)
        .map_err(|_| CodecError::BadKey(format!("{} bytes of binary data", input.len())))?
        .trim();
    if text.len() == 64 && text.bytes().all(|c| c.is_ascii_hexdigit()) {
        let mut b = [0u8; 32];
        hex::decode_to_slice(text, &mut b).expect("64 hex digits");
        return Ok(SecretKey(b));
    }
    if let Ok(mut v) = base64::engine::general_purpose::STANDARD.decode(text) {
        if v.len() == 32 {
            let key = SecretKey(v.as_slice().try_into().expect("32 bytes"));
            v.zeroize();
            return Ok(key);
        }
        v.zeroize();
    }
    let what = if text.bytes().all(|c| c.is_ascii_hexdigit()) {
        format!("{} hex characters", text.len())
    } else {
        format!(
            "{} characters that are neither hex nor base64 of 32 bytes",
            text.len()
        )
    };
    Err(CodecError::BadKey(what))
}

/// Argon2id cost parameters, stored with each passphrase key slot so they can be raised
/// later without breaking old slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Argon2Params {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        // 64 MiB, 3 passes: about a quarter second here, costly for a guesser.
        Argon2Params {
            m_kib: 64 * 1024,
            t: 3,
            p: 1,
        }
    }
}

/// Stretches a passphrase into a key-encryption key.
pub fn kek_from_passphrase(
    passphrase: &str,
    salt: &[u8],
    params: Argon2Params,
) -> Result<Kek, CodecError> {
    if passphrase.is_empty() {
        return Err(CodecError::EmptyPassphrase);
    }
    let p = argon2::Params::new(params.m_kib, params.t, params.p, Some(32))
        .map_err(|e| CodecError::Kdf(e.to_string()))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut out = [0u8; 32];
    a.hash_password_into(passphrase.as_bytes(), salt, &mut out)
        .map_err(|e| CodecError::Kdf(e.to_string()))?;
    let k = SecretKey(out);
    out.zeroize();
    Ok(Kek(k))
}

/// A key-encryption key: opens one key slot.
#[derive(Debug, Clone)]
pub struct Kek(SecretKey);

impl Kek {
    pub fn new(key: SecretKey) -> Self {
        Kek(key)
    }

    /// Public identifier of this KEK (names its key slot); reveals nothing of the key.
    pub fn id(&self) -> String {
        self.0.derive_id(b"", "pgbunker/v1/kek-id")
    }

    /// The key that wraps the repository key ring in this KEK's slot.
    pub fn wrapping_key(&self) -> SecretKey {
        self.0.derive_key(b"", "pgbunker/v1/kek-wrap")
    }
}

/// The repository key: wraps per-backup data keys and encrypts the catalog.
#[derive(Debug, Clone)]
pub struct RepoKey(SecretKey);

impl RepoKey {
    pub fn new(key: SecretKey) -> Self {
        RepoKey(key)
    }

    pub fn generate() -> Self {
        RepoKey(SecretKey::random())
    }

    pub fn secret(&self) -> &SecretKey {
        &self.0
    }

    /// Names the key generation; stored in clear next to what it encrypts.
    pub fn id(&self) -> String {
        self.0.derive_id(b"", "pgbunker/v1/rk-id")
    }

    pub fn catalog_key(&self) -> SecretKey {
        self.0.derive_key(b"", "pgbunker/v1/catalog")
    }

    pub fn dek_wrapping_key(&self) -> SecretKey {
        self.0.derive_key(b"", "pgbunker/v1/dek-wrap")
    }

    /// Seals the content-addressed chunks of format 5: they belong to every backup
    /// that lists them, so no backup's data key can seal them.
    pub fn shared_chunk_key(&self) -> SecretKey {
        self.0.derive_key(b"", "pgbunker/v5/chunk")
    }

    /// Names a content-addressed chunk (a keyed MAC of its tuples): a plain hash would
    /// let whoever reads the bucket confirm a guessed row.
    pub fn chunk_id_key(&self) -> SecretKey {
        self.0.derive_key(b"", "pgbunker/v5/chunk-id")
    }

    /// Decides where chunks end (a PRF of each tuple), so chunk sizes say nothing
    /// about the rows to someone without the key.
    pub fn boundary_key(&self) -> SecretKey {
        self.0.derive_key(b"", "pgbunker/v5/boundary")
    }
}

/// The key every version-2 key slot wraps. It seals the key ring's generations, so one
/// slot holder can rotate the repository key and every other slot sees the new ring
/// without being rewritten.
#[derive(Debug, Clone)]
pub struct RingKey(SecretKey);

impl RingKey {
    pub fn new(key: SecretKey) -> Self {
        RingKey(key)
    }

    pub fn generate() -> Self {
        RingKey(SecretKey::random())
    }

    pub fn secret(&self) -> &SecretKey {
        &self.0
    }

    /// Seals `keyring/<generation>` objects; never used directly as an AEAD key so
    /// the wrapped bytes in the slots and the ring objects stay domain-separated.
    pub fn sealing_key(&self) -> SecretKey {
        self.0.derive_key(b"", "pgbunker/v2/keyring")
    }

    /// Names the ring key in generation headers and catalog entries, so a reader knows
    /// which of its slot's ring keys opens a generation and a generation sealed under
    /// a key nobody announced is refused.
    pub fn id(&self) -> String {
        self.0.derive_id(b"", "pgbunker/v3/ring-key-id")
    }
}

/// A key slot's X25519 key pair (format 3). The public half lets any slot holder wrap
/// a new ring key for every other slot without knowing their keys, which is what makes
/// `key remove` a revocation: the removed slot is simply not given the new ring key.
#[derive(Clone)]
pub struct SlotKeyPair(x25519_dalek::StaticSecret);

impl fmt::Debug for SlotKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SlotKeyPair([redacted])")
    }
}

const SLOT_SEAL_INFO: &str = "pgbunker/v3/slot-seal";

fn slot_seal_key(
    shared: &x25519_dalek::SharedSecret,
    eph: &[u8; 32],
    public: &[u8; 32],
) -> SecretKey {
    let salt = [eph.as_slice(), public.as_slice()].concat();
    SecretKey::from_bytes(*shared.as_bytes()).derive_key(&salt, SLOT_SEAL_INFO)
}

impl SlotKeyPair {
    pub fn generate() -> Self {
        SlotKeyPair(x25519_dalek::StaticSecret::random_from_rng(
            rand::rngs::OsRng,
        ))
    }

    pub fn from_secret(key: &SecretKey) -> Self {
        SlotKeyPair(x25519_dalek::StaticSecret::from(*key.expose()))
    }

    pub fn secret(&self) -> SecretKey {
        SecretKey::from_bytes(self.0.to_bytes())
    }

    pub fn public(&self) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&self.0).to_bytes()
    }

    /// Opens a blob made by [`seal_to_slot`] for this key pair.
    pub fn open(&self, aad: &[u8], blob: &[u8]) -> Result<Vec<u8>, CodecError> {
        if blob.len() < 32 {
            return Err(CodecError::TooShort(blob.len()));
        }
        let eph: [u8; 32] = blob[..32].try_into().expect("32 bytes");
        let shared = self.0.diffie_hellman(&x25519_dalek::PublicKey::from(eph));
        // A low-order point makes the shared secret public: such a blob is a forgery.
        if !shared.was_contributory() {
            return Err(CodecError::Decrypt);
        }
        let key = slot_seal_key(&shared, &eph, &self.public());
        super::open_blob(&key, aad, &blob[32..])
    }
}

/// Seals `msg` to a slot's public key (ephemeral X25519, HKDF, AES-256-GCM-SIV):
/// `ephemeral public key ‖ nonce ‖ ciphertext+tag`. Anyone can seal to a slot, so what
/// such a blob holds is trusted only once something the sender could not forge (the
/// catalog's announcement of the ring key) vouches for it.
pub fn seal_to_slot(public: &[u8; 32], aad: &[u8], msg: &[u8]) -> Result<Vec<u8>, CodecError> {
    let eph = x25519_dalek::StaticSecret::random_from_rng(rand::rngs::OsRng);
    let eph_pub = x25519_dalek::PublicKey::from(&eph).to_bytes();
    let shared = eph.diffie_hellman(&x25519_dalek::PublicKey::from(*public));
    let key = slot_seal_key(&shared, &eph_pub, public);
    let mut out = eph_pub.to_vec();
    out.extend(super::seal_blob(&key, aad, msg)?);
    Ok(out)
}

/// A backup's data key. Everything of one backup derives from it (salted with the
/// backup id), so one leaked data key exposes one backup only.
#[derive(Debug, Clone)]
pub struct DataKey {
    key: SecretKey,
    backup_id: String,
}

impl DataKey {
    pub fn new(key: SecretKey, backup_id: &str) -> Self {
        DataKey {
            key,
            backup_id: backup_id.to_owned(),
        }
    }

    pub fn secret(&self) -> &SecretKey {
        &self.key
    }

    pub fn chunk_key(&self) -> SecretKey {
        self.key
            .derive_key(self.backup_id.as_bytes(), "pgbunker/v1/chunk")
    }

    pub fn manifest_key(&self) -> SecretKey {
        self.key
            .derive_key(self.backup_id.as_bytes(), "pgbunker/v1/manifest")
    }

    /// Identifies the data key in chunk headers.
    pub fn id(&self) -> [u8; 8] {
        let d = self
            .key
            .derive(self.backup_id.as_bytes(), "pgbunker/v1/dek-id");
        d[..8].try_into().expect("8 bytes")
    }

    /// Key commitment: recorded in the manifest header so a different key that happens
    /// to decrypt (it cannot with GCM-SIV tags, but defence in depth) is still refused.
    pub fn commitment(&self) -> [u8; 32] {
        self.key
            .derive(self.backup_id.as_bytes(), "pgbunker/v1/dek-commit")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_parsing_accepts_hex_base64_raw_and_refuses_the_rest() {
        let hex64 = "00".repeat(31) + "ff";
        assert_eq!(
            parse_key_bytes(hex64.as_bytes()).unwrap().expose()[31],
            0xff
        );
        let with_nl = format!("{hex64}\n");
        assert!(parse_key_bytes(with_nl.as_bytes()).is_ok());
        let b64 = base64::engine::general_purpose::STANDARD.encode([3u8; 32]);
        assert_eq!(
            parse_key_bytes(b64.as_bytes()).unwrap().expose(),
            &[3u8; 32]
        );
        let raw = [0xffu8; 32];
        assert_eq!(parse_key_bytes(&raw).unwrap().expose(), &raw);
        let e = parse_key_bytes(b"abcd").unwrap_err().to_string();
        assert!(e.contains("4 hex characters"), "{e}");
        assert!(parse_key_bytes(b"not a key at all, clearly").is_err());
    }

    #[test]
    fn derived_material_is_separated_and_redacted() {
        let rk = RepoKey::new(SecretKey::from_bytes([1; 32]));
        assert_ne!(rk.catalog_key(), rk.dek_wrapping_key());
        let v5 = [rk.shared_chunk_key(), rk.chunk_id_key(), rk.boundary_key()];
        assert!(v5
            .iter()
            .all(|k| *k != rk.catalog_key() && *k != rk.dek_wrapping_key()));
        assert!(v5[0] != v5[1] && v5[1] != v5[2] && v5[0] != v5[2]);
        let ring = RingKey::new(SecretKey::from_bytes([1; 32]));
        assert_ne!(&ring.sealing_key(), ring.secret());
        assert_ne!(ring.sealing_key(), rk.catalog_key());
        assert!(!format!("{ring:?}").contains("1, 1"));
        let d1 = DataKey::new(SecretKey::from_bytes([2; 32]), "a");
        let d2 = DataKey::new(SecretKey::from_bytes([2; 32]), "b");
        let pair = SlotKeyPair::generate();
        let blob = seal_to_slot(&pair.public(), b"aad", b"ring key").unwrap();
        assert_eq!(pair.open(b"aad", &blob).unwrap(), b"ring key");
        assert!(pair.open(b"other", &blob).is_err());
        assert!(SlotKeyPair::generate().open(b"aad", &blob).is_err());
        let again = SlotKeyPair::from_secret(&pair.secret());
        assert_eq!(again.public(), pair.public());
        assert!(!format!("{pair:?}").contains(&hex::encode(pair.secret().expose())));
        assert_ne!(d1.chunk_key(), d2.chunk_key());
        assert_ne!(d1.id(), d2.id());
        assert!(!format!("{:?}", d1).contains("2, 2"));
    }

    #[test]
    fn passphrase_kek_is_deterministic_per_salt_and_refuses_empty() {
        let p = Argon2Params {
            m_kib: 256,
            t: 1,
            p: 1,
        };
        let a = kek_from_passphrase("pw", b"saltsaltsaltsalt", p).unwrap();
        let b = kek_from_passphrase("pw", b"saltsaltsaltsalt", p).unwrap();
        let c = kek_from_passphrase("pw", b"othersaltothersa", p).unwrap();
        assert_eq!(a.id(), b.id());
        assert_ne!(a.id(), c.id());
        assert!(matches!(
            kek_from_passphrase("", b"saltsaltsaltsalt", p),
            Err(CodecError::EmptyPassphrase)
        ));
    }
}
