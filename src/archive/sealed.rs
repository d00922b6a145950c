//! Small JSON objects sealed under the repository key: catalog entries and audit
//! records share one layout, so one reader checks them all the same way.
//!
//! ```text
//! 0   8   magic
//! 8   1   version: 2 (format 3), or 1 (written before key generations bound objects)
//! 9   1   aead_id (0 = none for plaintext repositories, 1 = AES-256-GCM-SIV)
//! 10  2   reserved
//! 12  16  repo_id
//! 28  8   tag (the catalog's seq; zeros for audit records)
//! 36  8   rk_id (binary; zeros when unencrypted)
//! 44  8   generation: the key ring generation whose current RK sealed it (version 2
//!         only; zeros when unencrypted)
//! …       nonce ‖ AES-256-GCM-SIV(catalog key of rk_id, AAD = header ‖ domain, JSON)
//! ```
//!
//! The generation is in the header, and so in the AAD: whoever holds an older RK can
//! seal an object that names an older generation only, which readers then refuse where
//! a newer one is in force (see `chain`).

use super::keyring::KeyRing;
use super::repo::Repository;
use super::ArchiveError;
use crate::codec::{open_blob, seal_blob, AeadId};

const V1_HEADER_LEN: usize = 8 + 1 + 1 + 2 + 16 + 8 + 8;
const V2_HEADER_LEN: usize = V1_HEADER_LEN + 8;

/// What an object kind is: its magic and its AAD domain (so a catalog entry can never
/// be passed off as an audit record, or the other way round).
pub(crate) struct Kind {
    pub magic: &'static [u8; 8],
    pub domain: &'static [u8],
    pub what: &'static str,
}

/// An opened object and what its header says about how it was sealed.
pub(crate) struct Opened {
    pub json: Vec<u8>,
    /// `None` for a version-1 header (no generation); `Some(0)` when unsealed.
    pub generation: Option<u64>,
    pub sealed: bool,
}

/// How an object was sealed, read from its header alone (no key needed): enough to
/// tell a plaintext object placed after sealed ones.
pub(crate) fn is_sealed(kind: &Kind, bytes: &[u8]) -> Option<bool> {
    (bytes.len() >= V1_HEADER_LEN && &bytes[..8] == kind.magic)
        .then(|| bytes[9] != AeadId::None as u8)
}

/// The generation a version-2 header names, read without a key.
pub(crate) fn header_generation(bytes: &[u8]) -> Option<u64> {
    (bytes.len() >= V2_HEADER_LEN && bytes[8] == 2)
        .then(|| u64::from_be_bytes(bytes[44..52].try_into().expect("8 bytes")))
}

pub(crate) fn seal(
    repo: &Repository,
    kind: &Kind,
    tag: u64,
    json: &[u8],
) -> Result<Vec<u8>, ArchiveError> {
    seal_with(repo.keys(), repo.repo_id(), kind, tag, json)
}

/// Seals under `ring`'s current key, naming its generation when it binds one (format 3);
/// a ring still in format 1 or 2 writes the version-1 header, which only the upgrade to
/// format 3 does.
pub(crate) fn seal_with(
    ring: Option<&KeyRing>,
    repo_id: &[u8; 16],
    kind: &Kind,
    tag: u64,
    json: &[u8],
) -> Result<Vec<u8>, ArchiveError> {
    let rk = ring.map(|k| k.current.clone());
    let generation = match ring {
        Some(r) => r.bound_generation(),
        None => Some(0),
    };
    let mut h = Vec::with_capacity(V2_HEADER_LEN + json.len() + 64);
    h.extend_from_slice(kind.magic);
    h.push(if generation.is_some() { 2 } else { 1 });
    h.push(if rk.is_some() {
        AeadId::Aes256GcmSiv
    } else {
        AeadId::None
    } as u8);
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(repo_id);
    h.extend_from_slice(&tag.to_be_bytes());
    let mut rk_id = [0u8; 8];
    if let Some(rk) = &rk {
        hex::decode_to_slice(rk.id(), &mut rk_id).expect("rk ids are 16 hex digits");
    }
    h.extend_from_slice(&rk_id);
    if let Some(g) = generation {
        h.extend_from_slice(&g.to_be_bytes());
    }
    let body = match &rk {
        Some(rk) => {
            let aad = [h.as_slice(), kind.domain].concat();
            seal_blob(&rk.catalog_key(), &aad, json)
                .map_err(|e| ArchiveError::codec(format!("seal {}", kind.what), e))?
        }
        None => json.to_vec(),
    };
    h.extend(body);
    Ok(h)
}

/// Checks the header (kind, version, repository, tag) and opens the body. `name`
/// says which object failed, for the error.
pub(crate) fn open(
    repo: &Repository,
    kind: &Kind,
    tag: u64,
    name: &str,
    bytes: &[u8],
) -> Result<Vec<u8>, ArchiveError> {
    open_with(repo.keys(), repo.repo_id(), kind, tag, name, bytes).map(|o| o.json)
}

/// Like [`open`], with the ring to open it given, and saying how it was sealed. An
/// object that names a generation must have been sealed by that generation's current
/// RK: an older RK cannot pass its object off as newer.
pub(crate) fn open_with(
    ring: Option<&KeyRing>,
    repo_id: &[u8; 16],
    kind: &Kind,
    tag: u64,
    name: &str,
    bytes: &[u8],
) -> Result<Opened, ArchiveError> {
    let bad = |why: &str| ArchiveError::Corrupt(format!("{name}: {why}"));
    if bytes.len() < V1_HEADER_LEN || &bytes[..8] != kind.magic {
        return Err(bad(&format!("not {}", kind.what)));
    }
    let len = match bytes[8] {
        1 => V1_HEADER_LEN,
        2 if bytes.len() >= V2_HEADER_LEN => V2_HEADER_LEN,
        _ => return Err(bad("unknown version")),
    };
    if &bytes[12..28] != repo_id {
        return Err(bad("it belongs to another repository"));
    }
    if bytes[28..36] != tag.to_be_bytes() {
        return Err(bad("its sequence number does not match its name"));
    }
    let (h, body) = bytes.split_at(len);
    let generation =
        (len == V2_HEADER_LEN).then(|| u64::from_be_bytes(h[44..52].try_into().expect("8 bytes")));
    let json = match (AeadId::from_u8(h[9]), ring) {
        (Ok(AeadId::Aes256GcmSiv), Some(ring)) => {
            let rk_id = hex::encode(&h[36..44]);
            let rk = match generation {
                None => ring.get(&rk_id).ok_or_else(|| {
                    bad("sealed with a repository key this key slot does not hold")
                })?,
                Some(g) => {
                    let rk = ring.current_of(g).ok_or_else(|| {
                        bad(&format!(
                            "sealed under key ring generation {g}, which this key ring \
                             (newest generation {}) does not have",
                            ring.generation
                        ))
                    })?;
                    if rk.id() != rk_id {
                        return Err(bad(&format!(
                            "it claims key ring generation {g} but was sealed with another \
                             repository key: forged"
                        )));
                    }
                    rk
                }
            };
            let aad = [h, kind.domain].concat();
            open_blob(&rk.catalog_key(), &aad, body)
                .map_err(|e| ArchiveError::codec(format!("open {name}"), e))?
        }
        (Ok(AeadId::None), None) if generation.unwrap_or(0) == 0 => body.to_vec(),
        (Ok(AeadId::None), Some(_)) => {
            return Err(ArchiveError::Downgraded {
                what: format!("{name} is not encrypted"),
            })
        }
        (Ok(AeadId::Aes256GcmSiv), None) => {
            return Err(ArchiveError::Downgraded {
                what: format!("pgbunker.json says it is not, and {name} is encrypted"),
            })
        }
        _ => return Err(bad("its encryption does not match the repository's")),
    };
    Ok(Opened {
        json,
        generation,
        sealed: h[9] != AeadId::None as u8,
    })
}
