//! Chunk objects: a 64-byte header, then one zstd frame of whole COPY tuples (binary
//! ones laid out by column, `columns`) sealed with AES-256-GCM-SIV. The header is the AAD (with the repository id), so a chunk
//! moved to another table, index, backup or repository fails to open.

use std::cell::RefCell;

use sha2::{Digest, Sha256};
use zstd::zstd_safe::{CParameter, DParameter};

use xxhash_rust::xxh3::xxh3_128;

use super::aead::{decrypt_in_place, encrypt_in_place, random_nonce, AeadId, NONCE_LEN, TAG_LEN};
use super::{columns, CodecError, SecretKey};

pub const CHUNK_HEADER_LEN: usize = 64;
const MAGIC: &[u8; 8] = b"PGBKCHK\x01";
const FORMAT_VERSION: u8 = 1;
const FLAG_FINAL: u8 = 1;
/// The payload is the tuples laid out by column (`columns`), since format 4.
const FLAG_COLUMNS: u8 = 2;
const AAD_DOMAIN: &[u8] = b"pgbunker/v1/chunk";

thread_local! {
    /// One zstd context per thread, kept: making one per chunk (and the megabyte of
    /// tables it maps and faults in) cost more than compressing a small table's chunk.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
    /// Where [`check_opens`] decrypts a sealed body again, kept like the contexts.
    static CHECK_COPY: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Compresses `payload` at `level` into `out`, with this thread's context, or against
/// `dict` (raw content: the previous version of a chunk) with a context of its own.
fn compress_into(
    level: i32,
    payload: &[u8],
    dict: Option<&[u8]>,
    out: &mut std::io::Cursor<Vec<u8>>,
) -> std::io::Result<usize> {
    if let Some(d) = dict {
        // zstd's patch-from mode: the dictionary as a prefix, a window over all of it
        // and long-distance matching. (As a loaded dictionary, a fast level indexes
        // little of it, and long-distance matching none: 268 KB instead of 1.3 KB for
        // 2.4 MB of patients of which 40 rows changed.)
        let mut c = zstd::zstd_safe::CCtx::create();
        c.set_parameter(CParameter::CompressionLevel(level))
            .map_err(zstd_error)?;
        c.set_parameter(CParameter::WindowLog(window_log(d.len() + payload.len())))
            .map_err(zstd_error)?;
        c.set_parameter(CParameter::EnableLongDistanceMatching(true))
            .map_err(zstd_error)?;
        c.ref_prefix(d).map_err(zstd_error)?;
        return c.compress2(out, payload).map_err(zstd_error);
    }
    COMPRESSOR.with_borrow_mut(|slot| {
        if !matches!(slot, Some((l, _)) if *l == level) {
            *slot = Some((level, zstd::bulk::Compressor::new(level)?));
        }
        let (_, c) = slot.as_mut().expect("set above");
        c.compress_to_buffer(payload, out)
    })
}

fn zstd_error(code: usize) -> std::io::Error {
    std::io::Error::other(zstd::zstd_safe::get_error_name(code))
}

/// The largest window a delta is compressed with (128 MiB): its dictionary and tuples
/// are kept below it, and it is zstd's default limit for decompression.
pub(super) const MAX_WINDOW_LOG: u32 = 27;

/// The window that spans `bytes`.
fn window_log(bytes: usize) -> u32 {
    (usize::BITS - bytes.max(1024).next_power_of_two().leading_zeros() - 1).min(MAX_WINDOW_LOG)
}

/// Decompresses one frame of at most `cap` bytes, with this thread's context, or
/// against `dict` (see [`compress_into`]).
fn decompress(compressed: &[u8], cap: usize, dict: Option<&[u8]>) -> std::io::Result<Vec<u8>> {
    if let Some(d) = dict {
        let mut dec = zstd::zstd_safe::DCtx::create();
        dec.set_parameter(DParameter::WindowLogMax(MAX_WINDOW_LOG))
            .map_err(zstd_error)?;
        dec.ref_prefix(d).map_err(zstd_error)?;
        let mut out = Vec::with_capacity(cap);
        dec.decompress(&mut out, compressed).map_err(zstd_error)?;
        return Ok(out);
    }
    DECOMPRESSOR.with_borrow_mut(|slot| {
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        slot.as_mut()
            .expect("set above")
            .decompress(compressed, cap)
    })
}

/// Compression of the chunk payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CompId {
    Zstd = 1,
}

/// The clear header of a chunk. Readers rebuild the expected header from the manifest
/// and compare it byte for byte (all but the nonce) before decrypting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkHeader {
    pub aead: AeadId,
    pub comp: CompId,
    pub is_final: bool,
    /// Set by [`seal_chunk`] when it laid the tuples out by column; asked for by
    /// setting it before, for binary COPY tuples.
    pub columns: bool,
    pub table_no: u32,
    /// The part of a table split into page ranges (0 when not split).
    pub part: u32,
    pub index: u64,
    pub backup: [u8; 16],
    pub dek_id: [u8; 8],
    pub nonce: [u8; NONCE_LEN],
}

impl ChunkHeader {
    pub fn encode(&self) -> [u8; CHUNK_HEADER_LEN] {
        let mut h = [0u8; CHUNK_HEADER_LEN];
        h[..8].copy_from_slice(MAGIC);
        h[8] = FORMAT_VERSION;
        h[9] = self.aead as u8;
        h[10] = self.comp as u8;
        h[11] = if self.is_final { FLAG_FINAL } else { 0 }
            | if self.columns { FLAG_COLUMNS } else { 0 };
        h[12..16].copy_from_slice(&self.table_no.to_be_bytes());
        h[16..24].copy_from_slice(&self.index.to_be_bytes());
        h[24..40].copy_from_slice(&self.backup);
        h[40..48].copy_from_slice(&self.dek_id);
        h[48..60].copy_from_slice(&self.nonce);
        h[60..64].copy_from_slice(&self.part.to_be_bytes());
        h
    }

    pub fn decode(b: &[u8]) -> Result<Self, CodecError> {
        if b.len() < CHUNK_HEADER_LEN {
            return Err(CodecError::TooShort(b.len()));
        }
        if &b[..8] != MAGIC {
            return Err(CodecError::HeaderMismatch("magic"));
        }
        if b[8] != FORMAT_VERSION {
            return Err(CodecError::Unsupported {
                what: "chunk format version",
                id: b[8],
            });
        }
        if b[10] != CompId::Zstd as u8 {
            return Err(CodecError::Unsupported {
                what: "compression",
                id: b[10],
            });
        }
        if b[11] & !(FLAG_FINAL | FLAG_COLUMNS) != 0 {
            return Err(CodecError::HeaderMismatch("reserved bits"));
        }
        Ok(ChunkHeader {
            aead: AeadId::from_u8(b[9])?,
            comp: CompId::Zstd,
            is_final: b[11] & FLAG_FINAL != 0,
            columns: b[11] & FLAG_COLUMNS != 0,
            table_no: u32::from_be_bytes(b[12..16].try_into().expect("4")),
            part: u32::from_be_bytes(b[60..64].try_into().expect("4")),
            index: u64::from_be_bytes(b[16..24].try_into().expect("8")),
            backup: b[24..40].try_into().expect("16"),
            dek_id: b[40..48].try_into().expect("8"),
            nonce: b[48..60].try_into().expect("12"),
        })
    }
}

fn aad(header: &[u8; CHUNK_HEADER_LEN], repo_id: &[u8; 16]) -> Vec<u8> {
    let mut a = Vec::with_capacity(CHUNK_HEADER_LEN + 16 + AAD_DOMAIN.len());
    a.extend_from_slice(header);
    a.extend_from_slice(repo_id);
    a.extend_from_slice(AAD_DOMAIN);
    a
}

/// A chunk ready to upload, with what the manifest records about it.
pub struct SealedChunk {
    pub bytes: Vec<u8>,
    pub sha256: [u8; 32],
}

/// Compresses and seals whole tuples, by column when `header.columns` asks for it and
/// the tuples allow it. `key` is `None` only for plaintext repositories. The result is
/// decrypted again before it is returned, so a fault in this process never uploads a
/// chunk that cannot be read back.
pub fn seal_chunk(
    key: Option<&SecretKey>,
    mut header: ChunkHeader,
    repo_id: &[u8; 16],
    plaintext: &[u8],
    level: i32,
) -> Result<SealedChunk, CodecError> {
    let by_column = if header.columns {
        columns::split(plaintext)
    } else {
        None
    };
    header.columns = by_column.is_some();
    header.aead = if key.is_some() {
        AeadId::Aes256GcmSiv
    } else {
        AeadId::None
    };
    header.nonce = if key.is_some() {
        random_nonce()
    } else {
        [0; NONCE_LEN]
    };
    let h = header.encode();
    let payload = by_column.as_deref().unwrap_or(plaintext);
    seal_behind(
        key,
        &h,
        &aad(&h, repo_id),
        &header.nonce,
        payload,
        level,
        None,
    )
}

/// Compresses `payload` behind `header` and encrypts it where it lies (the object is
/// the only copy of the chunk's size besides its tuples), then decrypts it again as a
/// reader would: a fault here never uploads a chunk that cannot be read back.
pub(super) fn seal_behind(
    key: Option<&SecretKey>,
    header: &[u8],
    aad: &[u8],
    nonce: &[u8; NONCE_LEN],
    payload: &[u8],
    level: i32,
    dict: Option<&[u8]>,
) -> Result<SealedChunk, CodecError> {
    let bound = zstd::zstd_safe::compress_bound(payload.len());
    let mut out = std::io::Cursor::new(Vec::with_capacity(header.len() + bound + TAG_LEN));
    out.get_mut().extend_from_slice(header);
    out.set_position(header.len() as u64);
    compress_into(level, payload, dict, &mut out)
        .map_err(|e| CodecError::Compression(e.to_string()))?;
    let mut bytes = out.into_inner();
    if let Some(k) = key {
        let body = &mut bytes[header.len()..];
        let compressed = xxh3_128(body);
        let tag = encrypt_in_place(k, nonce, aad, body)?;
        check_opens(k, nonce, aad, body, &tag, compressed)?;
        bytes.extend_from_slice(&tag);
    }
    let sha256 = Sha256::digest(&bytes).into();
    Ok(SealedChunk { bytes, sha256 })
}

/// Sealed bodies up to this size are checked in a copy; larger ones where they lie.
const CHECK_IN_COPY_MAX: usize = 16 << 20;

/// Decrypts a sealed `body` again as a reader would and compares it with the
/// compressed bytes it came from (`compressed`, their xxh3): a fault in this process
/// never uploads a chunk that cannot be read back. Up to [`CHECK_IN_COPY_MAX`] in this
/// thread's copy (one AEAD pass); beyond, in place and encrypted once more, which must
/// give the same bytes (AES-GCM-SIV is deterministic for a nonce): no second copy of a
/// chunk that may hold a 1 GB value.
fn check_opens(
    k: &SecretKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    body: &mut [u8],
    tag: &[u8; TAG_LEN],
    compressed: u128,
) -> Result<(), CodecError> {
    if body.len() <= CHECK_IN_COPY_MAX {
        return CHECK_COPY.with_borrow_mut(|copy| {
            copy.clear();
            copy.extend_from_slice(body);
            decrypt_in_place(k, nonce, aad, copy, tag)?;
            if xxh3_128(copy) != compressed {
                return Err(CodecError::SelfCheck);
            }
            Ok(())
        });
    }
    let sealed = xxh3_128(body);
    decrypt_in_place(k, nonce, aad, body, tag)?;
    if xxh3_128(body) != compressed
        || encrypt_in_place(k, nonce, aad, body)? != *tag
        || xxh3_128(body) != sealed
    {
        return Err(CodecError::SelfCheck);
    }
    Ok(())
}

/// Opens a chunk: checks its header against `expected` (all fields but the nonce),
/// authenticates and decrypts, then decompresses with the output capped at `raw_len`
/// so a forged chunk cannot make us allocate without bound.
pub fn open_chunk(
    key: Option<&SecretKey>,
    expected: &ChunkHeader,
    repo_id: &[u8; 16],
    object: Vec<u8>,
    raw_len: usize,
) -> Result<Vec<u8>, CodecError> {
    let got = ChunkHeader::decode(&object)?;
    let checks: [(bool, &'static str); 7] = [
        (got.is_final == expected.is_final, "final flag"),
        (got.table_no == expected.table_no, "table number"),
        (got.part == expected.part, "table part"),
        (got.index == expected.index, "chunk index"),
        (got.backup == expected.backup, "backup id"),
        (got.dek_id == expected.dek_id, "data key id"),
        (got.aead == expected.aead, "encryption"),
    ];
    if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
        return Err(CodecError::HeaderMismatch(what));
    }
    let h: [u8; CHUNK_HEADER_LEN] = object[..CHUNK_HEADER_LEN].try_into().expect("64");
    let sealed = Sealed {
        key,
        aead: got.aead,
        nonce: &got.nonce,
        aad: &aad(&h, repo_id),
        columns: got.columns,
        dict: None,
    };
    open_behind(object, CHUNK_HEADER_LEN, &sealed, raw_len)
}

/// How the body of a chunk object was sealed, as its header says.
pub(super) struct Sealed<'a> {
    pub key: Option<&'a SecretKey>,
    pub aead: AeadId,
    pub nonce: &'a [u8; NONCE_LEN],
    pub aad: &'a [u8],
    pub columns: bool,
    /// The dictionary a delta chunk was compressed against.
    pub dict: Option<&'a [u8]>,
}

/// Authenticates and decrypts the body behind a `header_len`-byte header where it lies
/// (the object and its tuples are the only copies of a chunk's size at any time), then
/// decompresses it with the output capped at `raw_len` and puts columns back in rows.
pub(super) fn open_behind(
    mut object: Vec<u8>,
    header_len: usize,
    s: &Sealed<'_>,
    raw_len: usize,
) -> Result<Vec<u8>, CodecError> {
    let compressed: &[u8] = match (s.key, s.aead) {
        (Some(k), AeadId::Aes256GcmSiv) => {
            let body = &mut object[header_len..];
            let Some(split) = body.len().checked_sub(TAG_LEN) else {
                return Err(CodecError::Decrypt);
            };
            let (ct, tag) = body.split_at_mut(split);
            let tag: [u8; TAG_LEN] = (&*tag).try_into().expect("16 bytes");
            decrypt_in_place(k, s.nonce, s.aad, ct, &tag)?;
            ct
        }
        (None, AeadId::None) => &object[header_len..],
        _ => return Err(CodecError::HeaderMismatch("encryption")),
    };
    // A chunk is one zstd frame that declares its size: more than the header allows is
    // refused before any work. (Data that hides its size and is larger fails the
    // decompression below.) The column layout is at most its header longer.
    let cap = if s.columns {
        raw_len + columns::HEADER_LEN
    } else {
        raw_len
    };
    if let Ok(Some(n)) = zstd::zstd_safe::get_frame_content_size(compressed) {
        if n > cap as u64 {
            return Err(CodecError::TooLarge(raw_len));
        }
    }
    let out =
        decompress(compressed, cap, s.dict).map_err(|e| CodecError::Compression(e.to_string()))?;
    let out = if s.columns {
        columns::join(&out, raw_len)?
    } else {
        out
    };
    if out.len() != raw_len {
        return Err(CodecError::LengthMismatch {
            got: out.len(),
            want: raw_len,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(index: u64, is_final: bool) -> ChunkHeader {
        ChunkHeader {
            aead: AeadId::Aes256GcmSiv,
            comp: CompId::Zstd,
            is_final,
            columns: false,
            table_no: 3,
            part: 0,
            index,
            backup: [9; 16],
            dek_id: [4; 8],
            nonce: [0; NONCE_LEN],
        }
    }

    #[test]
    fn round_trip_and_every_binding_is_checked() {
        let k = SecretKey::from_bytes([5; 32]);
        let repo = [1u8; 16];
        let data = b"some tuples ".repeat(1000);
        let s = seal_chunk(Some(&k), header(2, true), &repo, &data, 3).unwrap();
        assert!(s.bytes.len() < data.len());
        assert_eq!(
            open_chunk(
                Some(&k),
                &header(2, true),
                &repo,
                s.bytes.clone(),
                data.len()
            )
            .unwrap(),
            data
        );
        // Moved to another place, or the FINAL flag stripped.
        assert!(open_chunk(
            Some(&k),
            &header(3, true),
            &repo,
            s.bytes.clone(),
            data.len()
        )
        .is_err());
        assert!(open_chunk(
            Some(&k),
            &header(2, false),
            &repo,
            s.bytes.clone(),
            data.len()
        )
        .is_err());
        let mut other_part = header(2, true);
        other_part.part = 1;
        assert!(open_chunk(Some(&k), &other_part, &repo, s.bytes.clone(), data.len()).is_err());
        // Another repository, another key.
        assert!(matches!(
            open_chunk(
                Some(&k),
                &header(2, true),
                &[2; 16],
                s.bytes.clone(),
                data.len()
            ),
            Err(CodecError::Decrypt)
        ));
        let k2 = SecretKey::from_bytes([6; 32]);
        assert!(open_chunk(
            Some(&k2),
            &header(2, true),
            &repo,
            s.bytes.clone(),
            data.len()
        )
        .is_err());
        // A flipped bit anywhere in the body.
        let mut bad = s.bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(open_chunk(Some(&k), &header(2, true), &repo, bad, data.len()).is_err());
        // The size cap holds.
        assert!(open_chunk(Some(&k), &header(2, true), &repo, s.bytes.clone(), 10).is_err());
    }

    #[test]
    fn a_body_too_large_to_check_in_a_copy_is_checked_where_it_lies() {
        let k = SecretKey::from_bytes([5; 32]);
        let repo = [1u8; 16];
        // Incompressible (xorshift), so the sealed body is above CHECK_IN_COPY_MAX.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..CHECK_IN_COPY_MAX / 8 + 1024)
            .flat_map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()
            })
            .collect();
        let s = seal_chunk(Some(&k), header(0, true), &repo, &data, 1).unwrap();
        assert!(s.bytes.len() > CHECK_IN_COPY_MAX);
        let back = open_chunk(Some(&k), &header(0, true), &repo, s.bytes, data.len()).unwrap();
        assert!(back == data);
    }

    #[test]
    fn binary_tuples_are_sealed_by_column_and_open_as_they_were() {
        let k = SecretKey::from_bytes([5; 32]);
        let repo = [1u8; 16];
        let tuples: Vec<u8> = (0..1000u32)
            .flat_map(|i| {
                let mut t = 2i16.to_be_bytes().to_vec();
                t.extend(4i32.to_be_bytes());
                t.extend(i.to_be_bytes());
                t.extend((-1i32).to_be_bytes());
                t
            })
            .collect();
        let mut asked = header(0, true);
        asked.columns = true;
        let s = seal_chunk(Some(&k), asked.clone(), &repo, &tuples, 3).unwrap();
        assert!(ChunkHeader::decode(&s.bytes).unwrap().columns);
        // Readers do not expect a layout: the header says which it is.
        let opened = open_chunk(
            Some(&k),
            &header(0, true),
            &repo,
            s.bytes.clone(),
            tuples.len(),
        );
        assert_eq!(opened.unwrap(), tuples);
        // Not tuples: the chunk keeps its rows, and says so.
        let s = seal_chunk(Some(&k), asked, &repo, b"some text rows\n", 3).unwrap();
        assert!(!ChunkHeader::decode(&s.bytes).unwrap().columns);
        let opened = open_chunk(Some(&k), &header(0, true), &repo, s.bytes.clone(), 15);
        assert_eq!(opened.unwrap(), b"some text rows\n");
    }

    #[test]
    fn plaintext_mode_still_checks_header_and_length() {
        let repo = [1u8; 16];
        let mut h = header(0, true);
        h.aead = AeadId::None;
        let s = seal_chunk(None, h.clone(), &repo, b"abc", 1).unwrap();
        assert_eq!(
            open_chunk(None, &h, &repo, s.bytes.clone(), 3).unwrap(),
            b"abc"
        );
        assert!(open_chunk(None, &h, &repo, s.bytes.clone(), 2).is_err());
    }
}
