//! Content-addressed chunks (format 5). A chunk is named by a keyed MAC of its tuples
//! and stored once, however many backups list it. So its header binds the id, the raw
//! length, the repository key and (through the AAD) the repository, never a backup or
//! a position: the manifest, sealed on its own, binds which chunks and in what order.
//!
//! ```text
//! 0  8  magic "PGBKCHK\x01"      32 32 chunk id
//! 8  1  version 2                64 12 nonce
//! 9  1  aead_id                  76 4  reserved (0)
//! 10 1  comp_id                  80 32·n base ids (DELTA only)
//! 11 1  flags (bit 1 COLUMNS,    …     sealed zstd frame, AAD = header ‖ repo_id ‖
//!       bit 2 DELTA)                   "pgbunker/v5/chunk"
//! 12 1  n: base count (DELTA: 1 to 3; else 0)
//! 13 3  reserved (0)
//! 16 8  rk_id (zeros when plaintext)
//! 24 8  raw_len
//! ```
//!
//! A DELTA chunk's frame was compressed against its bases, other chunks' tuples (never
//! a delta's) one after another, as a zstd raw-content dictionary: the new version of a
//! chunk whose rows changed here and there, moved to a neighbour, or grew at the end,
//! then costs about what changed.
//!
//! A reader checks the header against the id and length it expects, authenticates,
//! decompresses with the output capped, and then computes the id of what it got: a
//! chunk object copied over another's name, or a forged one, never passes for it.

use std::fmt;

use super::aead::{random_nonce, AeadId, NONCE_LEN};
use super::chunk::{open_behind, seal_behind, Sealed, SealedChunk};
use super::{columns, CodecError, RepoKey, SecretKey};

pub const SHARED_HEADER_LEN: usize = 80;
/// A delta names at most this many bases: the chunk at its place and its neighbours.
pub const MAX_BASES: usize = 3;
const MAGIC: &[u8; 8] = b"PGBKCHK\x01";
const VERSION: u8 = 2;
const COMP_ZSTD: u8 = 1;
const FLAG_COLUMNS: u8 = 2;
const FLAG_DELTA: u8 = 4;
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

/// The chunk a new one is stored as a delta against: its id and its tuples.
#[derive(Clone, Copy)]
pub struct Base<'a> {
    pub id: ChunkId,
    pub tuples: &'a [u8],
}

/// The dictionary: the bases' tuples one after another, each in the layout the delta's
/// payload has.
fn dict(bases: &[Base<'_>], columns: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for b in bases {
        match columns.then(|| columns::split(b.tuples)).flatten() {
            Some(by_column) => out.extend_from_slice(&by_column),
            None => out.extend_from_slice(b.tuples),
        }
    }
    out
}

/// A sealed chunk, and whether it is a delta against the bases it was offered.
pub struct SharedSealed {
    pub chunk: SealedChunk,
    pub delta: bool,
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
        bases: &[Base<'_>],
    ) -> Vec<u8> {
        let mut h = vec![0u8; SHARED_HEADER_LEN];
        h[..8].copy_from_slice(MAGIC);
        h[8] = VERSION;
        h[9] = self.aead() as u8;
        h[10] = COMP_ZSTD;
        h[11] = if columns { FLAG_COLUMNS } else { 0 };
        if !bases.is_empty() {
            h[11] |= FLAG_DELTA;
        }
        h[12] = bases.len() as u8;
        h[16..24].copy_from_slice(&self.rk_id);
        h[24..32].copy_from_slice(&(raw_len as u64).to_be_bytes());
        h[32..64].copy_from_slice(&id.0);
        h[64..76].copy_from_slice(nonce);
        for b in bases {
            h.extend_from_slice(&b.id.0);
        }
        h
    }

    /// Compresses (by column when `binary` tuples allow it) and seals whole tuples
    /// whose id (`id_of`) is `id`; offered `bases` (at most [`MAX_BASES`] are used),
    /// also against them, and keeps the delta when it is at most half the whole one.
    /// CPU-bound: call it off the async runtime.
    pub fn seal(
        &self,
        id: ChunkId,
        repo_id: &[u8; 16],
        tuples: &[u8],
        binary: bool,
        level: i32,
        bases: &[Base<'_>],
    ) -> Result<SharedSealed, CodecError> {
        debug_assert_eq!(id, self.id_of(tuples));
        let by_column = if binary { columns::split(tuples) } else { None };
        let sealed = |bases: &[Base<'_>], columns: bool| {
            let payload = if columns {
                by_column.as_deref().expect("split above")
            } else {
                tuples
            };
            let nonce = if self.seal.is_some() {
                random_nonce()
            } else {
                [0; NONCE_LEN]
            };
            let h = self.header(&id, tuples.len(), columns, &nonce, bases);
            let dict = (!bases.is_empty()).then(|| dict(bases, columns));
            seal_behind(
                self.seal.as_ref(),
                &h,
                &aad(&h, repo_id),
                &nonce,
                payload,
                level,
                dict.as_deref(),
            )
        };
        let columns = by_column.is_some();
        let bases = &bases[..bases.len().min(MAX_BASES)];
        if bases.is_empty() || bases.iter().any(|b| b.id == id) {
            return Ok(SharedSealed {
                chunk: sealed(&[], columns)?,
                delta: false,
            });
        }
        // Rows that moved or changed here and there match their old versions best as
        // rows: a delta that small is kept without sealing the chunk whole to compare
        // (it is below half of anything that compresses less than 16 times).
        let by_rows = sealed(bases, false)?;
        if by_rows.bytes.len() * 32 <= tuples.len() {
            return Ok(SharedSealed {
                chunk: by_rows,
                delta: true,
            });
        }
        // Rows appended compress best by column.
        let mut delta = by_rows;
        if columns {
            let by_column = sealed(bases, true)?;
            if by_column.bytes.len() < delta.bytes.len() {
                delta = by_column;
            }
        }
        let full = sealed(&[], columns)?;
        Ok(if delta.bytes.len() * 2 <= full.bytes.len() {
            SharedSealed {
                chunk: delta,
                delta: true,
            }
        } else {
            SharedSealed {
                chunk: full,
                delta: false,
            }
        })
    }

    /// What an object's header says of it, unauthenticated until it is opened: its raw
    /// length and the bases it names.
    pub fn header_of(object: &[u8]) -> Option<(u64, Vec<ChunkId>)> {
        let h = object.get(..SHARED_HEADER_LEN)?;
        let n = usize::from(h[12]).min(MAX_BASES);
        let bases = object
            .get(SHARED_HEADER_LEN..SHARED_HEADER_LEN + 32 * n)?
            .chunks(32)
            .map(|b| ChunkId(b.try_into().expect("32 bytes")))
            .collect();
        Some((
            u64::from_be_bytes(h[24..32].try_into().expect("8 bytes")),
            bases,
        ))
    }

    /// Opens the object stored as `id` (a delta against `bases`, which its header must
    /// name in that order): header, AEAD, capped decompression, then the id of the
    /// tuples themselves.
    pub fn open(
        &self,
        repo_id: &[u8; 16],
        id: &ChunkId,
        object: Vec<u8>,
        raw_len: usize,
        bases: &[Base<'_>],
    ) -> Result<Vec<u8>, CodecError> {
        let n = usize::from(*object.get(12).ok_or(CodecError::TooShort(object.len()))?);
        if n > MAX_BASES {
            return Err(CodecError::HeaderMismatch("delta base count"));
        }
        let header_len = SHARED_HEADER_LEN + 32 * n;
        let h = object
            .get(..header_len)
            .ok_or(CodecError::TooShort(object.len()))?
            .to_vec();
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
        let delta = h[11] & FLAG_DELTA != 0;
        if h[11] & !(FLAG_COLUMNS | FLAG_DELTA) != 0
            || delta != (n > 0)
            || h[13..16] != [0; 3]
            || h[76..80] != [0; 4]
        {
            return Err(CodecError::HeaderMismatch("reserved bits"));
        }
        let named: Vec<&[u8]> = h[SHARED_HEADER_LEN..].chunks(32).collect();
        let offered: Vec<&[u8]> = bases.iter().map(|b| &b.id.0[..]).collect();
        let checks: [(bool, &'static str); 5] = [
            (AeadId::from_u8(h[9])? == self.aead(), "encryption"),
            (h[16..24] == self.rk_id, "repository key"),
            (h[24..32] == (raw_len as u64).to_be_bytes(), "raw length"),
            (h[32..64] == id.0, "chunk id"),
            (named == offered, "delta base"),
        ];
        if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
            return Err(CodecError::HeaderMismatch(what));
        }
        let nonce: [u8; NONCE_LEN] = h[64..76].try_into().expect("12 bytes");
        let columns = h[11] & FLAG_COLUMNS != 0;
        let dict = delta.then(|| dict(bases, columns));
        let sealed = Sealed {
            key: self.seal.as_ref(),
            aead: self.aead(),
            nonce: &nonce,
            aad: &aad(&h, repo_id),
            columns,
            dict: dict.as_deref(),
        };
        let tuples = open_behind(object, header_len, &sealed, raw_len)?;
        if self.id_of(&tuples) != *id {
            return Err(CodecError::IdMismatch);
        }
        Ok(tuples)
    }
}

fn aad(header: &[u8], repo_id: &[u8; 16]) -> Vec<u8> {
    [header, repo_id, AAD_DOMAIN].concat()
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

    /// Seals `data` whole.
    fn whole(k: &ChunkKeys, repo: &[u8; 16], data: &[u8], binary: bool) -> (ChunkId, Vec<u8>) {
        let id = k.id_of(data);
        let s = k.seal(id, repo, data, binary, 3, &[]).unwrap();
        assert!(!s.delta);
        (id, s.chunk.bytes)
    }

    #[test]
    fn a_sealed_chunk_opens_only_as_itself() {
        let (k, repo) = (keys(1), [7u8; 16]);
        let data = tuples(1000);
        let (id, s) = whole(&k, &repo, &data, true);
        assert_eq!(s[11] & FLAG_COLUMNS, FLAG_COLUMNS, "laid out by column");
        assert_eq!(
            k.open(&repo, &id, s.clone(), data.len(), &[]).unwrap(),
            data
        );
        // Another id, length, repository or key.
        let (other_id, other) = whole(&k, &repo, &tuples(999), true);
        assert!(k
            .open(&repo, &other_id, s.clone(), data.len(), &[])
            .is_err());
        assert!(k.open(&repo, &id, other.clone(), data.len(), &[]).is_err());
        assert!(k.open(&repo, &id, s.clone(), data.len() - 1, &[]).is_err());
        assert!(matches!(
            k.open(&[8; 16], &id, s.clone(), data.len(), &[]),
            Err(CodecError::Decrypt)
        ));
        assert!(keys(2)
            .open(&repo, &id, s.clone(), data.len(), &[])
            .is_err());
        // The header says another id, and the AAD catches it.
        let mut renamed = other.clone();
        renamed[32..64].copy_from_slice(&id.0);
        renamed[24..32].copy_from_slice(&(data.len() as u64).to_be_bytes());
        assert!(k.open(&repo, &id, renamed, data.len(), &[]).is_err());
        // Whoever holds the key can seal anything, but not under another chunk's id.
        let fake = tuples(999);
        let h = k.header(&id, fake.len(), false, &[0; NONCE_LEN], &[]);
        let forged = seal_behind(
            k.seal.as_ref(),
            &h,
            &aad(&h, &repo),
            &[0; NONCE_LEN],
            &fake,
            3,
            None,
        )
        .unwrap();
        assert!(matches!(
            k.open(&repo, &id, forged.bytes, fake.len(), &[]),
            Err(CodecError::IdMismatch)
        ));
    }

    #[test]
    fn a_changed_chunk_is_a_small_delta_that_opens_only_against_its_base() {
        let (k, repo) = (keys(1), [7u8; 16]);
        // Yesterday's tail chunk, and today's: the same rows and some more.
        let (yesterday, today) = (tuples(20_000), tuples(20_500));
        let (base_id, _) = whole(&k, &repo, &yesterday, true);
        let base = Base {
            id: base_id,
            tuples: &yesterday,
        };
        let id = k.id_of(&today);
        let (_, full) = whole(&k, &repo, &today, true);
        let d = k.seal(id, &repo, &today, true, 3, &[base]).unwrap();
        assert!(d.delta, "a delta when it is at most half the size");
        assert!(
            d.chunk.bytes.len() * 4 < full.len(),
            "{} vs {}",
            d.chunk.bytes.len(),
            full.len()
        );
        let opened = k.open(&repo, &id, d.chunk.bytes.clone(), today.len(), &[base]);
        assert_eq!(opened.unwrap(), today);
        // Without its base, or against another one, it does not open.
        assert!(k
            .open(&repo, &id, d.chunk.bytes.clone(), today.len(), &[])
            .is_err());
        let other = tuples(20_001);
        let wrong = Base {
            id: k.id_of(&other),
            tuples: &other,
        };
        assert!(k
            .open(&repo, &id, d.chunk.bytes.clone(), today.len(), &[wrong])
            .is_err());
        let liar = Base {
            id: base_id,
            tuples: &other,
        };
        assert!(k
            .open(&repo, &id, d.chunk.bytes, today.len(), &[liar])
            .is_err());
        // A whole chunk offered a base it does not name does not open either.
        assert!(k.open(&repo, &id, full, today.len(), &[base]).is_err());
        // Unrelated rows: stored whole.
        let unrelated: Vec<u8> = tuples(20_000).iter().map(|b| b ^ 0x5a).collect();
        let s = k
            .seal(k.id_of(&unrelated), &repo, &unrelated, false, 3, &[base])
            .unwrap();
        assert!(!s.delta);
    }

    #[test]
    fn plaintext_chunks_are_still_named_and_checked() {
        let (k, repo) = (ChunkKeys::new(None), [7u8; 16]);
        let (id, s) = whole(&k, &repo, b"rows\n", false);
        assert_eq!(k.open(&repo, &id, s.clone(), 5, &[]).unwrap(), b"rows\n");
        let mut bad = s.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(k.open(&repo, &id, bad, 5, &[]).is_err());
        assert!(keys(1).open(&repo, &id, s, 5, &[]).is_err());
    }
}
