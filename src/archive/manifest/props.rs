//! Properties of the manifest parser on any input: a manifest seals and opens back;
//! random bytes, damaged manifests and manifests whose JSON was changed before sealing
//! are errors (or, for a plaintext repository's JSON, some other valid manifest),
//! never a panic. Fixed budget and seed, as in `pgcopy`'s properties.

use proptest::prelude::*;

use super::*;
use crate::codec::SecretKey;

const BID: &str = "20260101T000000Z-00000000";
const RK: &str = "00112233aabbccdd";

fn chunk() -> impl Strategy<Value = ChunkRecord> {
    (
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(part, index, ct_len, raw_len, rows)| ChunkRecord {
            part,
            index,
            ct_len,
            ct_sha256: "00".repeat(32),
            raw_len,
            rows,
            id: None,
            bases: vec![],
        })
}

fn manifest() -> impl Strategy<Value = Manifest> {
    let table = (
        any::<u32>(),
        any::<u32>(),
        "[a-z_]{1,12}",
        "\\PC{0,12}",
        prop::collection::vec(chunk(), 0..4),
    )
        .prop_map(|(table_no, oid, schema, name, chunks)| TableRecord {
            table_no,
            oid,
            schema,
            name,
            rows: chunks.iter().map(|c| c.rows).fold(0, u64::wrapping_add),
            raw_bytes: 0,
            checksum: "0".into(),
            chunks,
            parts: vec![],
            // Text tables raise the header version: both kinds must round-trip.
            copy_format: if oid % 2 == 0 {
                CopyFormat::Text
            } else {
                CopyFormat::Binary
            },
        });
    (
        prop::collection::vec(table, 0..4),
        "\\PC{0,20}",
        prop::collection::vec("\\PC{0,20}", 0..3),
    )
        .prop_map(|(tables, database, not_covered)| Manifest {
            format_version: 1,
            tool_version: "t".into(),
            backup_id: BID.into(),
            started_at: "s".into(),
            finished_at: "f".into(),
            source: SourceInfo {
                server_version: "15".into(),
                server_version_num: 150000,
                system_identifier: None,
                database,
                snapshot: "x".into(),
                lsn: None,
                in_recovery: false,
            },
            params: BackupParams {
                jobs: 1,
                chunk_bytes: 1,
                compress_level: 3,
            },
            catalog: Catalog::default(),
            tables,
            not_covered,
            selection: None,
            summary_sha256: String::new(),
            large_objects: None,
        })
}

fn dek(sealed: bool) -> Option<DataKey> {
    sealed.then(|| DataKey::new(SecretKey::from_bytes([4; 32]), BID))
}

const REPO: [u8; 16] = [1; 16];
const BACKUP: [u8; 16] = [2; 16];

proptest! {
    #![proptest_config(crate::testing::proptest_config())]

    #[test]
    fn manifests_round_trip(m in manifest(), sealed in any::<bool>()) {
        let dek = dek(sealed);
        let bytes = encode(&m, &REPO, &BACKUP, dek.as_ref(), RK).unwrap();
        let back = decode(&bytes, &REPO, &BACKUP, dek.as_ref()).unwrap();
        prop_assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&m).unwrap()
        );
    }

    #[test]
    fn any_bytes_are_refused_without_panic(
        body in prop::collection::vec(any::<u8>(), 0..600),
        sealed in any::<bool>(),
        with_header in any::<bool>(),
    ) {
        let dek = dek(sealed);
        let mut bytes = if with_header {
            header(1, &REPO, &BACKUP, dek.as_ref(), RK)
        } else {
            Vec::new()
        };
        bytes.extend(&body);
        let _ = rk_id_of(&bytes);
        let decoded = decode(&bytes, &REPO, &BACKUP, dek.as_ref());
        // Random bytes never authenticate.
        prop_assert!(!(sealed && decoded.is_ok()));
    }

    #[test]
    fn a_damaged_manifest_is_an_error(
        m in manifest(),
        sealed in any::<bool>(),
        cut in any::<prop::sample::Index>(),
        flip in (any::<prop::sample::Index>(), 1u8..=255),
    ) {
        let dek = dek(sealed);
        let bytes = encode(&m, &REPO, &BACKUP, dek.as_ref(), RK).unwrap();
        let short = &bytes[..cut.index(bytes.len())];
        prop_assert!(decode(short, &REPO, &BACKUP, dek.as_ref()).is_err());
        let mut bad = bytes.clone();
        let i = flip.0.index(bad.len());
        bad[i] ^= flip.1;
        let r = decode(&bad, &REPO, &BACKUP, dek.as_ref());
        // Sealed: authenticated, so always refused. Plaintext: the header is checked;
        // a changed zstd frame may still decode (its checksum is optional), which the
        // catalog's hash of the manifest catches.
        if sealed || i < HEADER_LEN {
            // In plaintext the reserved bytes (10, 11) and the repository key id
            // (44..52, which only names a key) are not checked.
            if sealed || !((10..12).contains(&i) || (44..52).contains(&i)) {
                prop_assert!(r.is_err(), "byte {} changed", i);
            }
        }
    }

    #[test]
    fn changed_json_is_refused_or_parsed_without_panic(
        m in manifest(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        // What a plaintext repository's manifest could hold after tampering: JSON
        // that is not what pgbunker wrote, compressed and framed correctly.
        let mut json = serde_json::to_vec(&m).unwrap();
        for (i, b) in edits {
            let i = i.index(json.len());
            json[i] = b;
        }
        if let Some(c) = cut {
            json.truncate(c.index(json.len()));
        }
        let mut bytes = header(1, &REPO, &BACKUP, None, RK);
        bytes.extend(zstd::bulk::compress(&json, 1).unwrap());
        let _ = decode(&bytes, &REPO, &BACKUP, None);
    }
}
