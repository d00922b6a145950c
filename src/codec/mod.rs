//! Bytes ⇄ sealed objects: zstd, then AES-256-GCM-SIV, with the key hierarchy of the
//! repository format (KEK → repository key → per-backup data key, HKDF, Argon2id).
//!
//! Pure and synchronous so it can run on the rayon pool and be property-tested without
//! any I/O. Every key type zeroizes on drop and prints as `[redacted]`.

mod aead;
mod chunk;
mod columns;
mod keys;
mod pool;
#[cfg(test)]
mod props;
mod shared;

pub use aead::{open_blob, seal_blob, AeadId};
pub use chunk::{open_chunk, seal_chunk, ChunkHeader, CompId, SealedChunk, CHUNK_HEADER_LEN};
pub use keys::{
    kek_from_passphrase, parse_key_bytes, seal_to_slot, Argon2Params, DataKey, Kek, RepoKey,
    RingKey, SecretKey, SlotKeyPair,
};
pub use pool::{on_cpu_pool, on_cpu_pool_from, IN_ORDER_INLINE_BYTES};
pub use shared::{Base, ChunkId, ChunkKeys, SharedSealed, MAX_BASES};

use thiserror::Error;

use crate::error::{Class, Classify};

#[derive(Debug, Error)]
pub enum CodecError {
    #[error("decryption failed: the key is wrong or the data was altered")]
    Decrypt,
    #[error("encryption failed")]
    Encrypt,
    #[error("the object header does not match what the manifest expects ({0})")]
    HeaderMismatch(&'static str),
    #[error("the object is too short to hold a header ({0} bytes)")]
    TooShort(usize),
    #[error("unsupported {what} id {id} (written by a newer pgbunker?)")]
    Unsupported { what: &'static str, id: u8 },
    #[error("decompressed data exceeds the {0} bytes the manifest allows")]
    TooLarge(usize),
    #[error("the chunk's tuples do not match its id (a chunk stored under another's name)")]
    IdMismatch,
    #[error("decompressed data is {got} bytes, the manifest says {want}")]
    LengthMismatch { got: usize, want: usize },
    #[error("the opened data is malformed: {0}")]
    Malformed(String),
    #[error("zstd failed: {0}")]
    Compression(String),
    #[error("sealed data did not decrypt back to the input: refusing to write it")]
    SelfCheck,
    #[error("a key must be exactly 32 bytes (64 hex characters or base64); got {0}")]
    BadKey(String),
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    #[error("key derivation failed: {0}")]
    Kdf(String),
}

impl Classify for CodecError {
    fn class(&self) -> Class {
        match self {
            CodecError::BadKey(_) | CodecError::EmptyPassphrase | CodecError::Kdf(_) => Class::Key,
            CodecError::Encrypt | CodecError::SelfCheck => Class::Internal,
            _ => Class::Corrupt,
        }
    }
}
