//! AES-256-GCM-SIV sealing of small blobs (key slots, wrapped keys, manifests, catalog).

use aes_gcm_siv::aead::{Aead, AeadInPlace, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use rand::RngCore;

use super::{CodecError, SecretKey};

/// The AEAD recorded in object headers. `None` exists only for repositories created
/// with the explicit plaintext flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum AeadId {
    None = 0,
    Aes256GcmSiv = 1,
}

impl AeadId {
    pub fn from_u8(v: u8) -> Result<Self, CodecError> {
        match v {
            0 => Ok(AeadId::None),
            1 => Ok(AeadId::Aes256GcmSiv),
            id => Err(CodecError::Unsupported { what: "AEAD", id }),
        }
    }
}

pub(crate) const NONCE_LEN: usize = 12;

pub(crate) fn random_nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut n);
    n
}

pub(crate) fn encrypt(
    key: &SecretKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    msg: &[u8],
) -> Result<Vec<u8>, CodecError> {
    let cipher = Aes256GcmSiv::new_from_slice(key.expose()).map_err(|_| CodecError::Encrypt)?;
    cipher
        .encrypt(Nonce::from_slice(nonce), Payload { msg, aad })
        .map_err(|_| CodecError::Encrypt)
}

/// Length of the tag that follows a ciphertext.
pub(crate) const TAG_LEN: usize = 16;

/// Encrypts `buf` where it lies and returns the tag: a chunk of a 1 GB value is not
/// copied once more.
pub(crate) fn encrypt_in_place(
    key: &SecretKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
) -> Result<[u8; TAG_LEN], CodecError> {
    let cipher = Aes256GcmSiv::new_from_slice(key.expose()).map_err(|_| CodecError::Encrypt)?;
    cipher
        .encrypt_in_place_detached(Nonce::from_slice(nonce), aad, buf)
        .map(Into::into)
        .map_err(|_| CodecError::Encrypt)
}

/// Decrypts `buf` where it lies, authenticated by `tag`.
pub(crate) fn decrypt_in_place(
    key: &SecretKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), CodecError> {
    let cipher = Aes256GcmSiv::new_from_slice(key.expose()).map_err(|_| CodecError::Decrypt)?;
    cipher
        .decrypt_in_place_detached(Nonce::from_slice(nonce), aad, buf, tag.into())
        .map_err(|_| CodecError::Decrypt)
}

pub(crate) fn decrypt(
    key: &SecretKey,
    nonce: &[u8],
    aad: &[u8],
    ct: &[u8],
) -> Result<Vec<u8>, CodecError> {
    if nonce.len() != NONCE_LEN {
        return Err(CodecError::Decrypt);
    }
    let cipher = Aes256GcmSiv::new_from_slice(key.expose()).map_err(|_| CodecError::Decrypt)?;
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| CodecError::Decrypt)
}

/// Seals `msg` as `nonce ‖ ciphertext+tag`, bound to `aad`.
pub fn seal_blob(key: &SecretKey, aad: &[u8], msg: &[u8]) -> Result<Vec<u8>, CodecError> {
    let nonce = random_nonce();
    let mut out = nonce.to_vec();
    out.extend(encrypt(key, &nonce, aad, msg)?);
    Ok(out)
}

/// Opens a blob made by [`seal_blob`] with the same `aad`.
pub fn open_blob(key: &SecretKey, aad: &[u8], blob: &[u8]) -> Result<Vec<u8>, CodecError> {
    if blob.len() < NONCE_LEN + 16 {
        return Err(CodecError::TooShort(blob.len()));
    }
    decrypt(key, &blob[..NONCE_LEN], aad, &blob[NONCE_LEN..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_round_trip_and_aad_binding() {
        let k = SecretKey::from_bytes([7u8; 32]);
        let b = seal_blob(&k, b"ctx", b"secret").unwrap();
        assert_eq!(open_blob(&k, b"ctx", &b).unwrap(), b"secret");
        assert!(matches!(
            open_blob(&k, b"other", &b),
            Err(CodecError::Decrypt)
        ));
        let k2 = SecretKey::from_bytes([8u8; 32]);
        assert!(matches!(
            open_blob(&k2, b"ctx", &b),
            Err(CodecError::Decrypt)
        ));
    }
}
