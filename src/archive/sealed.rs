//! Small JSON objects sealed under the repository key: catalog entries and audit
//! records share one layout, so one reader checks them all the same way.
//!
//! ```text
//! 0   8   magic
//! 8   1   version = 1
//! 9   1   aead_id (0 = none for plaintext repositories, 1 = AES-256-GCM-SIV)
//! 10  2   reserved
//! 12  16  repo_id
//! 28  8   tag (the catalog's seq; zeros for audit records)
//! 36  8   rk_id (binary; zeros when unencrypted)
//! 44  …   nonce ‖ AES-256-GCM-SIV(catalog key of rk_id, AAD = header ‖ domain, JSON)
//! ```

use super::repo::Repository;
use super::ArchiveError;
use crate::codec::{open_blob, seal_blob, AeadId};

pub(crate) const HEADER_LEN: usize = 8 + 1 + 1 + 2 + 16 + 8 + 8;

/// What an object kind is: its magic and its AAD domain (so a catalog entry can never
/// be passed off as an audit record, or the other way round).
pub(crate) struct Kind {
    pub magic: &'static [u8; 8],
    pub domain: &'static [u8],
    pub what: &'static str,
}

pub(crate) fn seal(
    repo: &Repository,
    kind: &Kind,
    tag: u64,
    json: &[u8],
) -> Result<Vec<u8>, ArchiveError> {
    let rk = repo.keys().map(|k| k.current.clone());
    let mut h = Vec::with_capacity(HEADER_LEN + json.len() + 64);
    h.extend_from_slice(kind.magic);
    h.push(1);
    h.push(if rk.is_some() {
        AeadId::Aes256GcmSiv
    } else {
        AeadId::None
    } as u8);
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(repo.repo_id());
    h.extend_from_slice(&tag.to_be_bytes());
    let mut rk_id = [0u8; 8];
    if let Some(rk) = &rk {
        hex::decode_to_slice(rk.id(), &mut rk_id).expect("rk ids are 16 hex digits");
    }
    h.extend_from_slice(&rk_id);
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
    let bad = |why: &str| ArchiveError::Corrupt(format!("{name}: {why}"));
    if bytes.len() < HEADER_LEN || &bytes[..8] != kind.magic {
        return Err(bad(&format!("not {}", kind.what)));
    }
    if bytes[8] != 1 {
        return Err(bad("unknown version"));
    }
    if &bytes[12..28] != repo.repo_id() {
        return Err(bad("it belongs to another repository"));
    }
    if bytes[28..36] != tag.to_be_bytes() {
        return Err(bad("its sequence number does not match its name"));
    }
    let (h, body) = bytes.split_at(HEADER_LEN);
    match (AeadId::from_u8(h[9]), repo.keys()) {
        (Ok(AeadId::Aes256GcmSiv), Some(ring)) => {
            let rk_id = hex::encode(&h[36..44]);
            let rk = ring
                .get(&rk_id)
                .ok_or_else(|| bad("sealed with a repository key this key slot does not hold"))?;
            let aad = [h, kind.domain].concat();
            open_blob(&rk.catalog_key(), &aad, body)
                .map_err(|e| ArchiveError::codec(format!("open {name}"), e))
        }
        (Ok(AeadId::None), None) => Ok(body.to_vec()),
        _ => Err(bad("its encryption does not match the repository's")),
    }
}
