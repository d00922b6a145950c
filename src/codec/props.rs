//! Properties of the chunk reader and the blob sealer on any input: a chunk seals and
//! opens back to its bytes; anything else (another header, a truncated, bit-flipped or
//! random object, a forged length) is an error, never a panic or an allocation the
//! object does not justify. Fixed budget and seed, as in `pgcopy`'s properties.

use proptest::prelude::*;

use super::aead::NONCE_LEN;
use super::{open_blob, open_chunk, seal_blob, seal_chunk, AeadId, ChunkHeader, CompId, SecretKey};

fn header_strategy() -> impl Strategy<Value = ChunkHeader> {
    (
        any::<bool>(),
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        any::<[u8; 16]>(),
        any::<[u8; 8]>(),
    )
        .prop_map(
            |(is_final, table_no, part, index, backup, dek_id)| ChunkHeader {
                aead: AeadId::Aes256GcmSiv,
                comp: CompId::Zstd,
                is_final,
                columns: false,
                table_no,
                part,
                index,
                backup,
                dek_id,
                nonce: [0; NONCE_LEN],
            },
        )
}

/// Plaintext that compresses well and badly.
fn plaintext() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..4096),
        (any::<u8>(), 0usize..100_000).prop_map(|(b, n)| vec![b; n]),
    ]
}

/// A key, or `None` for a plaintext repository; the header says which.
fn sealed(
    key: &Option<SecretKey>,
    mut h: ChunkHeader,
    repo: &[u8; 16],
    data: &[u8],
) -> (ChunkHeader, Vec<u8>) {
    if key.is_none() {
        h.aead = AeadId::None;
    }
    let s = seal_chunk(key.as_ref(), h.clone(), repo, data, 1).unwrap();
    (h, s.bytes)
}

fn key_strategy() -> impl Strategy<Value = Option<SecretKey>> {
    prop::option::weighted(0.8, any::<[u8; 32]>().prop_map(SecretKey::from_bytes))
}

proptest! {
    #![proptest_config(crate::testing::proptest_config())]

    #[test]
    fn a_sealed_chunk_opens_to_its_bytes(
        key in key_strategy(),
        h in header_strategy(),
        repo in any::<[u8; 16]>(),
        data in plaintext(),
    ) {
        let (h, bytes) = sealed(&key, h, &repo, &data);
        prop_assert_eq!(open_chunk(key.as_ref(), &h, &repo, bytes.clone(), data.len()).unwrap(), data);
    }

    #[test]
    fn a_damaged_chunk_is_an_error(
        key in key_strategy(),
        h in header_strategy(),
        repo in any::<[u8; 16]>(),
        data in plaintext(),
        cut in any::<prop::sample::Index>(),
        flip in (any::<prop::sample::Index>(), 1u8..=255),
    ) {
        let (h, bytes) = sealed(&key, h, &repo, &data);
        // Truncated anywhere.
        let short = &bytes[..cut.index(bytes.len())];
        prop_assert!(open_chunk(key.as_ref(), &h, &repo, short.to_vec(), data.len()).is_err());
        // One byte changed: always caught under a key (authentication); without one,
        // a change in the header is, and a change in the zstd frame either is or
        // yields other bytes of the recorded length (the manifest's checksums and row
        // counts catch those).
        let mut bad = bytes.clone();
        let i = flip.0.index(bad.len());
        bad[i] ^= flip.1;
        let opened = open_chunk(key.as_ref(), &h, &repo, bad.clone(), data.len());
        // (The nonce of a plaintext chunk means nothing and is not checked.)
        let plaintext_nonce = key.is_none() && (48..60).contains(&i);
        if key.is_some() || (i < super::CHUNK_HEADER_LEN && !plaintext_nonce) {
            prop_assert!(opened.is_err());
        } else if let Ok(out) = opened {
            prop_assert_eq!(out.len(), data.len());
        }
        // Opened as another chunk, or with another length.
        let mut other = h.clone();
        other.index = other.index.wrapping_add(1);
        prop_assert!(open_chunk(key.as_ref(), &other, &repo, bytes.clone(), data.len()).is_err());
        prop_assert!(open_chunk(key.as_ref(), &h, &repo, bytes.clone(), data.len() + 1).is_err());
        if !data.is_empty() {
            prop_assert!(open_chunk(key.as_ref(), &h, &repo, bytes.clone(), data.len() - 1).is_err());
        }
    }

    #[test]
    fn any_object_is_refused_without_panic(
        key in key_strategy(),
        h in header_strategy(),
        repo in any::<[u8; 16]>(),
        body in prop::collection::vec(any::<u8>(), 0..2000),
        raw_len in prop_oneof![0usize..100_000, Just(1usize << 40), Just(usize::MAX / 2)],
        with_header in any::<bool>(),
    ) {
        let mut h = h;
        if key.is_none() {
            h.aead = AeadId::None;
        }
        // A header that passes every check, then garbage: plaintext goes straight to
        // zstd with a forged length, which must not become an allocation that size.
        let mut object = if with_header { h.encode().to_vec() } else { Vec::new() };
        object.extend(&body);
        if let Ok(out) = open_chunk(key.as_ref(), &h, &repo, object.clone(), raw_len) {
            prop_assert!(key.is_none());
            prop_assert_eq!(out.len(), raw_len);
        }
    }

    #[test]
    fn blobs_round_trip_and_refuse_anything_else(
        k in any::<[u8; 32]>(),
        aad in prop::collection::vec(any::<u8>(), 0..40),
        msg in prop::collection::vec(any::<u8>(), 0..500),
        junk in prop::collection::vec(any::<u8>(), 0..80),
        cut in any::<prop::sample::Index>(),
    ) {
        let key = SecretKey::from_bytes(k);
        let b = seal_blob(&key, &aad, &msg).unwrap();
        prop_assert_eq!(open_blob(&key, &aad, &b).unwrap(), msg);
        prop_assert!(open_blob(&key, &aad, &b[..cut.index(b.len())]).is_err());
        prop_assert!(open_blob(&key, &aad, &junk).is_err());
    }
}
