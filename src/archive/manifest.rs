//! The manifest: one per backup, immutable, encrypted and authenticated. It holds the
//! Catalog model and, per table, its chunks with lengths, hashes and row counts.

use serde::{Deserialize, Serialize};

use super::timestamp::Timestamp;
use super::ArchiveError;
use crate::catalog::{Catalog, LargeObject};
use crate::codec::{open_blob, seal_blob, AeadId, DataKey};

const MAGIC: &[u8; 8] = b"PGBKMAN\x01";
const HEADER_LEN: usize = 8 + 1 + 1 + 2 + 16 + 16 + 8 + 32;
const AAD_DOMAIN: &[u8] = b"pgbunker/v1/manifest";
const AAD_DOMAIN_V3: &[u8] = b"pgbunker/v3/manifest";

/// The AAD of a sealed manifest. From format 3 it names the key ring generation the
/// backup was sealed under (the catalog lists it beside the manifest's hash), so the
/// header layout, which older readers check, stays the same.
fn aad(header: &[u8], generation: Option<u64>) -> Vec<u8> {
    match generation {
        Some(g) => [header, AAD_DOMAIN_V3, &g.to_be_bytes()].concat(),
        None => [header, AAD_DOMAIN].concat(),
    }
}

/// The header version of a manifest holding what a pgbunker from before would misread
/// instead of refusing, since readers ignore JSON fields they do not know: large
/// objects (it would restore without them) and tables copied in text format (it would
/// take their rows for binary tuples). Such a pgbunker refuses any version but 1;
/// manifests holding neither keep version 1 and stay readable by it.
const VERSION_2: u8 = 2;

/// The header version of a deduplicated manifest (repository format 5): its chunks are
/// content-addressed (`chunks/…`), which a pgbunker from before would look for under
/// the backup's folder and report missing.
const VERSION_3: u8 = 3;

/// The number that stands for the large objects' content in chunk headers, where
/// tables have their position in the catalog: a chunk of one can never pass for the
/// other.
pub const LARGE_OBJECTS_TABLE_NO: u32 = u32::MAX;

/// Facts about the source server and the snapshot the backup saw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceInfo {
    pub server_version: String,
    pub server_version_num: i32,
    #[serde(default)]
    pub system_identifier: Option<String>,
    pub database: String,
    pub snapshot: String,
    #[serde(default)]
    pub lsn: Option<String>,
    #[serde(default)]
    pub in_recovery: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRecord {
    /// The table part this chunk belongs to (0 when the table is not split).
    #[serde(default)]
    pub part: u32,
    pub index: u64,
    /// Length of the stored object (header included).
    pub ct_len: u64,
    pub ct_sha256: String,
    /// Length of the tuples once opened; also the decompression cap.
    pub raw_len: u64,
    pub rows: u64,
    /// A content-addressed chunk's id (format 5), hex: it lives at
    /// `chunks/<id[..2]>/<id>`, shared by every backup that lists it. Absent: the chunk
    /// is the backup's own, under its folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The chunks this one is a delta against (format 5), in order: read them first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bases: Vec<ChunkBase>,
}

/// A delta chunk's base: another content-addressed chunk, never a delta itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkBase {
    pub id: String,
    pub raw_len: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableRecord {
    pub table_no: u32,
    pub oid: u32,
    pub schema: String,
    pub name: String,
    pub rows: u64,
    pub raw_bytes: u64,
    /// Order-independent checksum of the table's tuples (`pgcopy::TupleStats`), hex.
    pub checksum: String,
    /// Every chunk, ordered by part, then index. Each part ends with a FINAL chunk.
    pub chunks: Vec<ChunkRecord>,
    /// The ctid page ranges of a table that was split; empty when it was streamed whole.
    #[serde(default)]
    pub parts: Vec<PartRecord>,
    /// The COPY format of every chunk of the table; absent means binary.
    #[serde(default, skip_serializing_if = "CopyFormat::is_binary")]
    pub copy_format: CopyFormat,
}

/// How a table's rows are framed in its chunks. Binary unless a column's type has no
/// binary send/receive functions or is a reg* type, whose binary form is a bare OID
/// (see `pgcopy::text`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CopyFormat {
    #[default]
    Binary,
    Text,
}

impl CopyFormat {
    pub fn is_binary(&self) -> bool {
        *self == CopyFormat::Binary
    }
}

/// One page range of a split table, streamed and restored on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    pub part: u32,
    pub start_page: u64,
    /// `None`: to the end of the table.
    pub end_page: Option<u64>,
    pub rows: u64,
    pub raw_bytes: u64,
    pub checksum: String,
}

impl TableRecord {
    pub fn stored_bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.ct_len).sum()
    }

    /// The chunks of one part, in order.
    pub fn part_chunks(&self, part: u32) -> impl Iterator<Item = &ChunkRecord> {
        self.chunks.iter().filter(move |c| c.part == part)
    }

    /// Whether `chunk` is the last of its part (and so must carry the FINAL flag).
    pub fn is_final(&self, chunk: &ChunkRecord) -> bool {
        self.part_chunks(chunk.part).map(|c| c.index).max() == Some(chunk.index)
    }

    /// The parts readers restore and check on their own: the recorded ones, or the
    /// whole table as part 0 (tables streamed whole, and every table written before
    /// parts existed, carry their totals on the table itself).
    pub fn effective_parts(&self) -> Vec<PartRecord> {
        if !self.parts.is_empty() {
            return self.parts.clone();
        }
        vec![PartRecord {
            part: 0,
            start_page: 0,
            end_page: None,
            rows: self.rows,
            raw_bytes: self.raw_bytes,
            checksum: self.checksum.clone(),
        }]
    }
}

/// One large object: its metadata, which content stream (part) holds it, and what its
/// content must add up to once restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LargeObjectRecord {
    #[serde(flatten)]
    pub object: LargeObject,
    pub part: u32,
    pub size: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
}

/// The large objects of a backup. `data` holds their content like a table's rows,
/// numbered [`LARGE_OBJECTS_TABLE_NO`]: each part is one stream of
/// `(oid, offset, bytes)` tuples, a large object's slices in order within its part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LargeObjects {
    pub objects: Vec<LargeObjectRecord>,
    pub data: TableRecord,
}

/// Options the backup ran with, kept for reports and reproducibility.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupParams {
    pub jobs: usize,
    pub chunk_bytes: usize,
    pub compress_level: i32,
}

/// The `-t`/`-n`/`-T`/`-N` patterns of a partial backup, as given, so a reader knows the
/// backup holds only part of the database and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectionRecord {
    #[serde(default)]
    pub tables: Vec<String>,
    #[serde(default)]
    pub schemas: Vec<String>,
    #[serde(default)]
    pub exclude_tables: Vec<String>,
    #[serde(default)]
    pub exclude_schemas: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub tool_version: String,
    pub backup_id: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub source: SourceInfo,
    pub params: BackupParams,
    pub catalog: Catalog,
    pub tables: Vec<TableRecord>,
    /// Objects the source held that this backup does not contain ("kind: name").
    #[serde(default)]
    pub not_covered: Vec<String>,
    /// `None` for a backup of the whole database (and every backup written before
    /// partial backups existed).
    #[serde(default)]
    pub selection: Option<SelectionRecord>,
    /// SHA-256 of `summary.json`, so an edited summary shows up at verification.
    #[serde(default)]
    pub summary_sha256: String,
    /// `None` when the backup holds no large objects (none existed, or they were left
    /// out and are then listed in `not_covered`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub large_objects: Option<LargeObjects>,
}

impl Manifest {
    pub fn table(&self, table_no: u32) -> Option<&TableRecord> {
        self.tables.iter().find(|t| t.table_no == table_no)
    }

    /// The content record of the large objects, when the backup holds any.
    pub fn large_object_data(&self) -> Option<&TableRecord> {
        self.large_objects.as_ref().map(|l| &l.data)
    }

    /// Every chunk record, the large objects' included.
    pub fn all_chunks(&self) -> impl Iterator<Item = &ChunkRecord> {
        self.tables
            .iter()
            .chain(self.large_object_data())
            .flat_map(|t| &t.chunks)
    }

    /// Whether the chunks are content-addressed (format 5).
    pub fn deduplicated(&self) -> bool {
        self.all_chunks().any(|c| c.id.is_some())
    }

    /// The header version this manifest needs (see [`VERSION_2`], [`VERSION_3`]).
    fn header_version(&self) -> u8 {
        let text = self.tables.iter().any(|t| !t.copy_format.is_binary());
        if self.deduplicated() {
            VERSION_3
        } else if self.large_objects.is_some() || text {
            VERSION_2
        } else {
            1
        }
    }
}

fn header(
    version: u8,
    repo_id: &[u8; 16],
    backup: &[u8; 16],
    dek: Option<&DataKey>,
    rk_id: &str,
) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(MAGIC);
    h.push(version);
    h.push(if dek.is_some() {
        AeadId::Aes256GcmSiv
    } else {
        AeadId::None
    } as u8);
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(repo_id);
    h.extend_from_slice(backup);
    let mut rk = [0u8; 8];
    if dek.is_some() {
        hex::decode_to_slice(rk_id, &mut rk).expect("rk ids are 16 hex digits");
    }
    h.extend_from_slice(&rk);
    h.extend_from_slice(&dek.map(DataKey::commitment).unwrap_or([0; 32]));
    h
}

#[cfg(test)]
pub(crate) fn encode(
    m: &Manifest,
    repo_id: &[u8; 16],
    backup: &[u8; 16],
    dek: Option<&DataKey>,
    rk_id: &str,
) -> Result<Vec<u8>, ArchiveError> {
    encode_bound(m, repo_id, backup, dek, rk_id, None)
}

/// Encodes a manifest sealed under key ring generation `generation` (`None`: the
/// layout from before format 3, kept for tests of old readers' objects).
pub(crate) fn encode_bound(
    m: &Manifest,
    repo_id: &[u8; 16],
    backup: &[u8; 16],
    dek: Option<&DataKey>,
    rk_id: &str,
    generation: Option<u64>,
) -> Result<Vec<u8>, ArchiveError> {
    // Serialized straight into the compressor: the JSON of a catalog of 30,000 tables
    // is tens of megabytes that need never be held whole. Through a buffer: serde
    // writes a few bytes at a time, and a compressor call per token was most of the
    // time a 3000-table backup spent on its manifest.
    let compress_err =
        |e: std::io::Error| ArchiveError::Corrupt(format!("compressing the manifest: {e}"));
    let encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).map_err(compress_err)?;
    let mut buffered = std::io::BufWriter::with_capacity(1 << 16, encoder);
    serde_json::to_writer(&mut buffered, m).map_err(|e| compress_err(e.into()))?;
    let encoder = buffered
        .into_inner()
        .map_err(|e| compress_err(e.into_error()))?;
    let packed = encoder.finish().map_err(compress_err)?;
    let mut out = header(m.header_version(), repo_id, backup, dek, rk_id);
    match dek {
        Some(k) => {
            let aad = aad(&out, generation);
            out.extend(
                seal_blob(&k.manifest_key(), &aad, &packed)
                    .map_err(|e| ArchiveError::codec("seal the manifest", e))?,
            );
        }
        None => out.extend(packed),
    }
    Ok(out)
}

/// The rk_id a manifest names, to pick the wrapped data key.
pub(crate) fn rk_id_of(bytes: &[u8]) -> Result<Option<String>, ArchiveError> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err(ArchiveError::Corrupt(
            "a manifest has no valid header".into(),
        ));
    }
    Ok((bytes[9] == AeadId::Aes256GcmSiv as u8).then(|| hex::encode(&bytes[44..52])))
}

/// Whether a manifest (only its clear header is read) may list content-addressed
/// chunks: one whose header cannot be read may.
pub(crate) fn lists_shared_chunks(bytes: &[u8]) -> bool {
    bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC || bytes[8] >= VERSION_3
}

/// Manifests are small, but a forged one must not make us allocate without bound.
const MAX_MANIFEST_JSON: usize = 1 << 30;

#[cfg(test)]
pub(crate) fn decode(
    bytes: &[u8],
    repo_id: &[u8; 16],
    backup: &[u8; 16],
    dek: Option<&DataKey>,
) -> Result<Manifest, ArchiveError> {
    decode_bound(bytes, repo_id, backup, dek, None)
}

/// Decodes a manifest sealed under key ring generation `generation`, as the catalog
/// lists it (`None` for backups from before format 3).
pub(crate) fn decode_bound(
    bytes: &[u8],
    repo_id: &[u8; 16],
    backup: &[u8; 16],
    dek: Option<&DataKey>,
    generation: Option<u64>,
) -> Result<Manifest, ArchiveError> {
    let bad = |why: &str| ArchiveError::Corrupt(format!("manifest: {why}"));
    let rk_id = rk_id_of(bytes)?;
    let version = bytes[8];
    if !(1..=VERSION_3).contains(&version) {
        return Err(bad("unknown manifest version: upgrade pgbunker"));
    }
    // A header that says "plaintext" while we hold a data key (or the other way
    // round) cannot name the key it was sealed with.
    if rk_id.is_some() != dek.is_some() {
        return Err(bad("its encryption does not match the backup's"));
    }
    let (h, body) = bytes.split_at(HEADER_LEN);
    let expected = header(
        version,
        repo_id,
        backup,
        dek,
        rk_id.as_deref().unwrap_or(""),
    );
    if h[28..44] != expected[28..44] {
        return Err(bad("it belongs to another backup"));
    }
    if h[12..28] != expected[12..28] {
        return Err(bad("it belongs to another repository"));
    }
    if h[52..84] != expected[52..84] || h[9] != expected[9] {
        return Err(bad("the data key does not match its commitment"));
    }
    let packed = match dek {
        Some(k) => open_blob(&k.manifest_key(), &aad(h, generation), body)
            .map_err(|e| ArchiveError::codec("open the manifest", e))?,
        None => body.to_vec(),
    };
    let mut json = Vec::new();
    let decoder = zstd::stream::read::Decoder::new(packed.as_slice())
        .map_err(|e| bad(&format!("cannot decompress: {e}")))?;
    std::io::Read::read_to_end(
        &mut std::io::Read::take(decoder, MAX_MANIFEST_JSON as u64),
        &mut json,
    )
    .map_err(|e| bad(&format!("cannot decompress: {e}")))?;
    let m: Manifest =
        serde_json::from_slice(&json).map_err(|e| ArchiveError::json("the manifest", e))?;
    if version != m.header_version() {
        return Err(bad(
            "its header version does not match whether it holds large objects, text tables \
             or content-addressed chunks",
        ));
    }
    if version == VERSION_3 && m.all_chunks().any(|c| c.id.is_none()) {
        return Err(bad("it mixes content-addressed chunks with a backup's own"));
    }
    if m.all_chunks()
        .any(|c| !c.bases.is_empty() && c.id.is_none())
    {
        return Err(bad("a chunk of a backup's own names a delta base"));
    }
    Ok(m)
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::SecretKey;

    fn sample() -> Manifest {
        Manifest {
            format_version: 1,
            tool_version: "t".into(),
            backup_id: "20260101T000000Z-00000000".into(),
            started_at: "s".into(),
            finished_at: "f".into(),
            source: SourceInfo {
                server_version: "15".into(),
                server_version_num: 150000,
                system_identifier: None,
                database: "clinic".into(),
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
            tables: vec![],
            not_covered: vec![],
            selection: None,
            summary_sha256: String::new(),
            large_objects: None,
        }
    }

    #[test]
    fn sealed_manifest_round_trips_and_refuses_substitution() {
        let bid = "20260101T000000Z-00000000";
        let dek = DataKey::new(SecretKey::from_bytes([4; 32]), bid);
        let (repo, backup) = ([1u8; 16], [2u8; 16]);
        let bytes = encode(&sample(), &repo, &backup, Some(&dek), "00112233aabbccdd").unwrap();
        assert!(
            !bytes.windows(6).any(|w| w == b"clinic"),
            "database name is sealed"
        );
        let m = decode(&bytes, &repo, &backup, Some(&dek)).unwrap();
        assert_eq!(m.source.database, "clinic");
        assert!(
            decode(&bytes, &repo, &[3; 16], Some(&dek)).is_err(),
            "another backup"
        );
        assert!(
            decode(&bytes, &[9; 16], &backup, Some(&dek)).is_err(),
            "another repository"
        );
        let other = DataKey::new(SecretKey::from_bytes([5; 32]), bid);
        let e = decode(&bytes, &repo, &backup, Some(&other))
            .unwrap_err()
            .to_string();
        assert!(e.contains("commitment"), "{e}");
        let mut bad = bytes.clone();
        let n = bad.len() - 3;
        bad[n] ^= 1;
        assert!(
            decode(&bad, &repo, &backup, Some(&dek)).is_err(),
            "flipped bit"
        );
    }

    #[test]
    fn only_manifests_with_large_objects_need_a_reader_that_knows_them() {
        let (repo, backup) = ([1u8; 16], [2u8; 16]);
        let plain = encode(&sample(), &repo, &backup, None, "").unwrap();
        assert_eq!(plain[8], 1, "no large objects: readable by older pgbunker");
        let mut m = sample();
        m.large_objects = Some(LargeObjects {
            objects: vec![LargeObjectRecord {
                object: LargeObject {
                    oid: 4242,
                    owner: Some("o".into()),
                    acl: None,
                    comment: None,
                },
                part: 0,
                size: 0,
                sha256: String::new(),
            }],
            data: TableRecord {
                table_no: LARGE_OBJECTS_TABLE_NO,
                oid: 0,
                schema: String::new(),
                name: String::new(),
                rows: 0,
                raw_bytes: 0,
                checksum: String::new(),
                chunks: vec![],
                parts: vec![],
                copy_format: CopyFormat::Binary,
            },
        });
        let mut bytes = encode(&m, &repo, &backup, None, "").unwrap();
        assert_eq!(bytes[8], VERSION_2);
        let back = decode(&bytes, &repo, &backup, None).unwrap();
        assert_eq!(back.large_objects.unwrap().objects[0].object.oid, 4242);
        // What an older pgbunker checks first: it refuses, never drops them.
        bytes[8] = 1;
        let e = decode(&bytes, &repo, &backup, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("header version"), "{e}");
    }

    #[test]
    fn only_manifests_with_text_tables_need_a_reader_that_knows_them() {
        let (repo, backup) = ([1u8; 16], [2u8; 16]);
        let table = |copy_format| TableRecord {
            table_no: 0,
            oid: 16384,
            schema: "public".into(),
            name: "t".into(),
            rows: 0,
            raw_bytes: 0,
            checksum: format!("{:032x}", 0),
            chunks: vec![],
            parts: vec![],
            copy_format,
        };
        let mut m = sample();
        m.tables = vec![table(CopyFormat::Binary)];
        let bytes = encode(&m, &repo, &backup, None, "").unwrap();
        assert_eq!(bytes[8], 1, "binary tables only: readable by older readers");
        let json = serde_json::to_string(&m.tables[0]).unwrap();
        assert!(!json.contains("copy_format"), "{json}");

        m.tables.push(TableRecord {
            table_no: 1,
            ..table(CopyFormat::Text)
        });
        let mut bytes = encode(&m, &repo, &backup, None, "").unwrap();
        assert_eq!(bytes[8], VERSION_2);
        let back = decode(&bytes, &repo, &backup, None).unwrap();
        assert_eq!(back.tables[1].copy_format, CopyFormat::Text);
        assert_eq!(back.tables[0].copy_format, CopyFormat::Binary);
        // An older pgbunker refuses version 2; a version 1 header on text tables is a
        // forgery or a bug, never read as binary.
        bytes[8] = 1;
        let e = decode(&bytes, &repo, &backup, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("header version"), "{e}");
    }

    #[test]
    fn deduplicated_manifests_say_so_and_never_mix() {
        let (repo, backup) = ([1u8; 16], [2u8; 16]);
        let chunk = |id: Option<&str>| ChunkRecord {
            part: 0,
            index: 0,
            ct_len: 10,
            ct_sha256: "00".repeat(32),
            raw_len: 0,
            rows: 0,
            id: id.map(str::to_owned),
            bases: vec![],
        };
        let mut m = sample();
        m.tables = vec![TableRecord {
            table_no: 0,
            oid: 16384,
            schema: "public".into(),
            name: "t".into(),
            rows: 0,
            raw_bytes: 0,
            checksum: format!("{:032x}", 0),
            chunks: vec![chunk(Some(&"ab".repeat(32)))],
            parts: vec![],
            copy_format: CopyFormat::Text,
        }];
        let mut bytes = encode(&m, &repo, &backup, None, "").unwrap();
        assert_eq!(bytes[8], VERSION_3, "older readers refuse it");
        assert!(decode(&bytes, &repo, &backup, None).unwrap().deduplicated());
        bytes[8] = VERSION_2;
        assert!(decode(&bytes, &repo, &backup, None).is_err());
        m.tables[0].chunks.push(chunk(None));
        let bytes = encode(&m, &repo, &backup, None, "").unwrap();
        let e = decode(&bytes, &repo, &backup, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("mixes"), "{e}");
    }
}
