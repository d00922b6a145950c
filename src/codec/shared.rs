//! Content-addressed chunks (format 5). A chunk is named by a keyed MAC of its tuples
//! and stored once, however many backups list it. So its header binds the id, the raw
//! length, the repository key and (through the AAD) the repository, never a backup or
//! a position: the manifest, sealed on its own, binds which chunks and in what order.
//!
//! ```text
//! 0  8  magic "PGBKCHK\x01"      32 32 chunk id
//! 8  1  version 2                64 12 nonce
//! 9  1  aead_id                  76 4  reserved (0)
//! 10 1  comp_id                  80 …  sealed zstd frame, AAD = header ‖ repo_id ‖
//! 11 1  flags (bit 1 COLUMNS)          "pgbunker/v5/chunk"
//! 12 4  reserved (0)
//! 16 8  rk_id (zeros when plaintext)
//! 24 8  raw_len
//! ```
//!
//! A reader checks the header against the id and length it expects, authenticates,
//! decompresses with the output capped, and then computes the id of what it got: a
//! chunk object copied over another's name, or a forged one, never passes for it.

use std::fmt;

use super::aead::{random_nonce, AeadId, NONCE_LEN};
use super::chunk::{open_behind, seal_behind, Sealed, SealedChunk};
use super::{columns, CodecError, RepoKey, SecretKey};

pub const SHARED_HEADER_LEN: usize = 80;
const MAGIC: &[u8; 8] = b"PGBKCHK\x01";
const VERSION: u8 = 2;
const COMP_ZSTD: u8 = 1;
const FLAG_COLUMNS: u8 = 2;
const AAD_DOMAIN: &[u8] = b"pgbunker/v5/chunk";

/// A chunk's name: the keyed BLAKE3 of its tuples under the repository key's chunk-id
/// key, so equal tuples under one key share one object and nobody without the key can
/// tell what a name stands for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkId(pub [u8; 32]);

impl ChunkId {
    pub fn parse(hex_id: &str) -> Option<ChunkId> {
        let mut b = [0u8; 32];
        hex::decode_to_slice(hex_id, &mut b).ok()?;
        (hex::encode(b) == hex_id).then_some(ChunkId(b))
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkId({self})")
    }
}

/// The keys of content addressing under one repository key. A plaintext repository
/// uses public constants: it hides nothing, and its ids still catch damage.
#[derive(Clone)]
pub struct ChunkKeys {
    seal: Option<SecretKey>,
    id: SecretKey,
    boundary: SecretKey,
    rk_id: [u8; 8],
}

impl fmt::Debug for ChunkKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkKeys(rk {})", hex::encode(self.rk_id))
    }
}

impl ChunkKeys {
    pub fn new(rk: Option<&RepoKey>) -> ChunkKeys {
        match rk {
            Some(rk) => {
                let mut rk_id = [0u8; 8];
                hex::decode_to_slice(rk.id(), &mut rk_id).expect("a key id is 16 hex digits");
                ChunkKeys {
                    seal: Some(rk.shared_chunk_key()),
                    id: rk.chunk_id_key(),
                    boundary: rk.boundary_key(),
                    rk_id,
                }
            }
            None => ChunkKeys {
                seal: None,
                id: SecretKey::from_bytes(blake3::derive_key(
                    "pgbunker/v5 plaintext chunk id",
                    b"",
                )),
                boundary: SecretKey::from_bytes(blake3::derive_key(
                    "pgbunker/v5 plaintext boundary",
                    b"",
                )),
                rk_id: [0; 8],
            },
        }
    }

    /// The repository key these keys derive from (zeros when plaintext).
    pub fn rk_id(&self) -> [u8; 8] {
        self.rk_id
    }

    /// The key of the PRF that places chunk boundaries between tuples.
    pub fn boundary_key(&self) -> &SecretKey {
        &self.boundary
    }

    pub fn id_of(&self, tuples: &[u8]) -> ChunkId {
        ChunkId(*blake3::keyed_hash(self.id.expose(), tuples).as_bytes())
    }

    fn aead(&self) -> AeadId {
        if self.seal.is_some() {
            AeadId::Aes256GcmSiv
        } else {
            AeadId::None
        }
    }

    fn header(
        &self,
        id: &ChunkId,
        raw_len: usize,
        columns: bool,
        nonce: &[u8; NONCE_LEN],
    ) -> [u8; SHARED_HEADER_LEN] {
        let mut h = [0u8; SHARED_HEADER_LEN];
        h[..8].copy_from_slice(MAGIC);
        h[8] = VERSION;
        h[9] = self.aead() as u8;
        h[10] = COMP_ZSTD;
        h[11] = if columns { FLAG_COLUMNS } else { 0 };
        h[16..24].copy_from_slice(&self.rk_id);
        h[24..32].copy_from_slice(&(raw_len as u64).to_be_bytes());
        h[32..64].copy_from_slice(&id.0);
        h[64..76].copy_from_slice(nonce);
        h
    }

    /// Compresses (by column when `binary` tuples allow it) and seals whole tuples
    /// whose id (`id_of`) is `id`. CPU-bound: call it off the async runtime.
    pub fn seal(
        &self,
        id: ChunkId,
        repo_id: &[u8; 16],
        tuples: &[u8],
        binary: bool,
        level: i32,
    ) -> Result<(ChunkId, SealedChunk), CodecError> {
        debug_assert_eq!(id, self.id_of(tuples));
        let by_column = if binary { columns::split(tuples) } else { None };
        let nonce = if self.seal.is_some() {
            random_nonce()
        } else {
            [0; NONCE_LEN]
        };
        let h = self.header(&id, tuples.len(), by_column.is_some(), &nonce);
        let payload = by_column.as_deref().unwrap_or(tuples);
        let sealed = seal_behind(
            self.seal.as_ref(),
            &h,
            &aad(&h, repo_id),
            &nonce,
            payload,
            level,
        )?;
        Ok((id, sealed))
    }

    /// Opens the object stored as `id`: header, AEAD, capped decompression, then the id
    /// of the tuples themselves.
    pub fn open(
        &self,
        repo_id: &[u8; 16],
        id: &ChunkId,
        object: Vec<u8>,
        raw_len: usize,
    ) -> Result<Vec<u8>, CodecError> {
        let h: [u8; SHARED_HEADER_LEN] = object
            .get(..SHARED_HEADER_LEN)
            .ok_or(CodecError::TooShort(object.len()))?
            .try_into()
            .expect("80 bytes");
        if &h[..8] != MAGIC {
            return Err(CodecError::HeaderMismatch("magic"));
        }
        if h[8] != VERSION {
            return Err(CodecError::Unsupported {
                what: "content-addressed chunk version",
                id: h[8],
            });
        }
        if h[10] != COMP_ZSTD {
            return Err(CodecError::Unsupported {
                what: "compression",
                id: h[10],
            });
        }
        if h[11] & !FLAG_COLUMNS != 0 || h[12..16] != [0; 4] || h[76..80] != [0; 4] {
            return Err(CodecError::HeaderMismatch("reserved bits"));
        }
        let checks: [(bool, &'static str); 4] = [
            (AeadId::from_u8(h[9])? == self.aead(), "encryption"),
            (h[16..24] == self.rk_id, "repository key"),
            (h[24..32] == (raw_len as u64).to_be_bytes(), "raw length"),
            (h[32..64] == id.0, "chunk id"),
        ];
        if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
            return Err(CodecError::HeaderMismatch(what));
        }
        let nonce: [u8; NONCE_LEN] = h[64..76].try_into().expect("12 bytes");
        let sealed = Sealed {
            key: self.seal.as_ref(),
            aead: self.aead(),
            nonce: &nonce,
            aad: &aad(&h, repo_id),
            columns: h[11] & FLAG_COLUMNS != 0,
        };
        let tuples = open_behind(object, SHARED_HEADER_LEN, &sealed, raw_len)?;
        if self.id_of(&tuples) != *id {
            return Err(CodecError::IdMismatch);
        }
        Ok(tuples)
    }
}

fn aad(header: &[u8; SHARED_HEADER_LEN], repo_id: &[u8; 16]) -> Vec<u8> {
    [header.as_slice(), repo_id, AAD_DOMAIN].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(b: u8) -> ChunkKeys {
        ChunkKeys::new(Some(&RepoKey::new(SecretKey::from_bytes([b; 32]))))
    }

    fn tuples(n: u32) -> Vec<u8> {
        (0..n)
            .flat_map(|i| {
                let mut t = 1i16.to_be_bytes().to_vec();
                t.extend(4i32.to_be_bytes());
                t.extend(i.to_be_bytes());
                t
            })
            .collect()
    }

    #[test]
    fn equal_tuples_share_an_id_under_one_key_only() {
        let (k, other) = (keys(1), keys(2));
        let data = tuples(100);
        assert_eq!(k.id_of(&data), k.id_of(&data.clone()));
        assert_ne!(k.id_of(&data), other.id_of(&data));
        assert_ne!(k.id_of(&data), k.id_of(&tuples(101)));
        let plain = ChunkKeys::new(None);
        assert_ne!(plain.id_of(&data), k.id_of(&data));
        let id = k.id_of(&data);
        assert_eq!(ChunkId::parse(&id.to_string()), Some(id));
        assert_eq!(ChunkId::parse("AB"), None);
        assert!(!format!("{k:?}").contains(&hex::encode(k.id.expose())));
    }

    #[test]
    fn a_sealed_chunk_opens_only_as_itself() {
        let (k, repo) = (keys(1), [7u8; 16]);
        let data = tuples(1000);
        let (id, s) = k.seal(k.id_of(&data), &repo, &data, true, 3).unwrap();
        assert_eq!(
            s.bytes[11] & FLAG_COLUMNS,
            FLAG_COLUMNS,
            "laid out by column"
        );
        assert_eq!(
            k.open(&repo, &id, s.bytes.clone(), data.len()).unwrap(),
            data
        );
        // Another id, length, repository or key.
        let (other_id, other) = k
            .seal(k.id_of(&tuples(999)), &repo, &tuples(999), true, 3)
            .unwrap();
        assert!(k
            .open(&repo, &other_id, s.bytes.clone(), data.len())
            .is_err());
        assert!(k.open(&repo, &id, other.bytes.clone(), data.len()).is_err());
        assert!(k.open(&repo, &id, s.bytes.clone(), data.len() - 1).is_err());
        assert!(matches!(
            k.open(&[8; 16], &id, s.bytes.clone(), data.len()),
            Err(CodecError::Decrypt)
        ));
        assert!(keys(2)
            .open(&repo, &id, s.bytes.clone(), data.len())
            .is_err());
        // The header says another id, and the AAD catches it.
        let mut renamed = other.bytes.clone();
        renamed[32..64].copy_from_slice(&id.0);
        renamed[24..32].copy_from_slice(&(data.len() as u64).to_be_bytes());
        assert!(k.open(&repo, &id, renamed, data.len()).is_err());
        // Whoever holds the key can seal anything, but not under another chunk's id.
        let fake = tuples(999);
        let mut forged = k.header(&id, fake.len(), false, &[0; NONCE_LEN]).to_vec();
        let body = seal_behind(
            k.seal.as_ref(),
            &forged.clone(),
            &aad(&forged.clone().try_into().unwrap(), &repo),
            &[0; NONCE_LEN],
            &fake,
            3,
        )
        .unwrap();
        forged = body.bytes;
        assert!(matches!(
            k.open(&repo, &id, forged, fake.len()),
            Err(CodecError::IdMismatch)
        ));
    }

    #[test]
    fn plaintext_chunks_are_still_named_and_checked() {
        let (k, repo) = (ChunkKeys::new(None), [7u8; 16]);
        let (id, s) = k
            .seal(k.id_of(b"rows\n"), &repo, b"rows\n", false, 1)
            .unwrap();
        assert_eq!(k.open(&repo, &id, s.bytes.clone(), 5).unwrap(), b"rows\n");
        let mut bad = s.bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(k.open(&repo, &id, bad, 5).is_err());
        assert!(keys(1).open(&repo, &id, s.bytes, 5).is_err());
    }
}
