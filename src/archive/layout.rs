//! Where things live in a repository. Paths carry no schema or table names: a name
//! like `hiv_results` is itself sensitive, so tables are numbered.

use rand::RngCore;
use sha2::{Digest, Sha256};

pub const CONFIG: &str = "pgbunker.json";
pub const KEYS: &str = "keys";
/// Outside `keys/` because unlocking with a passphrase tries every object there.
pub const KEYRING: &str = "keyring";
pub const CATALOG: &str = "catalog";
pub const BACKUPS: &str = "backups";
pub const LOCKS: &str = "locks";
/// Content-addressed chunks (format 5), shared by every backup that lists them.
pub const CHUNKS: &str = "chunks";

/// Where the content-addressed chunk `id` (hex) lives: 256 folders by its first byte,
/// so no folder or listing page grows with the whole repository.
pub fn shared_chunk(id: &str) -> String {
    format!("{CHUNKS}/{}/{id}", id.get(..2).unwrap_or("00"))
}

/// The id of a content-addressed chunk's object key.
pub fn parse_shared_chunk(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("chunks/")?;
    let (dir, id) = rest.split_once('/')?;
    (id.len() == 64 && id.starts_with(dir) && dir.len() == 2).then_some(id)
}

pub fn lock(id: &str) -> String {
    format!("{LOCKS}/{id}.json")
}

/// When a backup id says its backup started (ids begin with the UTC start time).
pub fn backup_started_at(bid: &str) -> Option<time::OffsetDateTime> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(bid.get(..16)?, &fmt)
        .ok()
        .map(|t| t.assume_utc())
}

pub fn key_slot(kek_id: &str) -> String {
    format!("{KEYS}/{kek_id}")
}

pub fn keyring_generation(generation: u64) -> String {
    format!("{KEYRING}/{generation:020}")
}

pub fn parse_keyring_generation(key: &str) -> Option<u64> {
    key.strip_prefix("keyring/")?.parse().ok()
}

pub fn catalog_entry(seq: u64) -> String {
    format!("{CATALOG}/{seq:020}")
}

pub fn parse_catalog_seq(key: &str) -> Option<u64> {
    key.strip_prefix("catalog/")?.parse().ok()
}

/// A new backup id: UTC time (so ids sort by time) and 32 random bits.
pub fn new_backup_id() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let mut r = [0u8; 4];
    rand::rngs::OsRng.fill_bytes(&mut r);
    format!(
        "{}-{}",
        now.format(&fmt).expect("formatting a UTC timestamp"),
        hex::encode(r)
    )
}

/// Backup ids are made only by [`new_backup_id`]; anything else in a path is refused
/// so a crafted id cannot escape the backup's folder.
pub fn is_valid_backup_id(bid: &str) -> bool {
    bid.len() == 25
        && bid.bytes().all(|c| {
            c.is_ascii_digit() || c.is_ascii_hexdigit() || c == b'T' || c == b'Z' || c == b'-'
        })
}

/// Paths of one backup's objects.
#[derive(Debug, Clone)]
pub struct BackupLayout {
    pub bid: String,
}

impl BackupLayout {
    pub fn new(bid: &str) -> Self {
        BackupLayout { bid: bid.into() }
    }

    pub fn dir(&self) -> String {
        format!("{BACKUPS}/{}", self.bid)
    }

    pub fn manifest(&self) -> String {
        format!("{}/manifest", self.dir())
    }

    pub fn summary(&self) -> String {
        format!("{}/summary.json", self.dir())
    }

    pub fn dek(&self, rk_id: &str) -> String {
        format!("{}/dek.{rk_id}", self.dir())
    }

    /// Part 0 (every table that is not split) keeps the short name `<index>.chk`.
    /// The large objects' content has a folder of its own.
    pub fn chunk(&self, table_no: u32, part: u32, index: u64) -> String {
        match (table_no, part) {
            (super::manifest::LARGE_OBJECTS_TABLE_NO, p) => {
                format!("{}/lo/{p}.{index}.chk", self.dir())
            }
            (_, 0) => format!("{}/t{table_no}/{index}.chk", self.dir()),
            (_, p) => format!("{}/t{table_no}/{p}.{index}.chk", self.dir()),
        }
    }

    /// The 16 bytes that stand for the backup id in binary headers.
    pub fn id_bytes(&self) -> [u8; 16] {
        let mut h = Sha256::new();
        h.update(b"pgbunker/v1/backup-id\0");
        h.update(self.bid.as_bytes());
        h.finalize()[..16].try_into().expect("16 bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_ids_are_valid_and_sort_by_time() {
        let a = new_backup_id();
        assert!(is_valid_backup_id(&a), "{a}");
        assert!(!is_valid_backup_id("../../etc/passwd"));
        assert_eq!(parse_catalog_seq(&catalog_entry(42)), Some(42));
        let l = BackupLayout::new(&a);
        assert_eq!(l.chunk(3, 0, 7), format!("backups/{a}/t3/7.chk"));
        assert_eq!(l.chunk(3, 2, 7), format!("backups/{a}/t3/2.7.chk"));
        assert_eq!(l.chunk(u32::MAX, 0, 7), format!("backups/{a}/lo/0.7.chk"));
        let t = backup_started_at("20261122T140000Z-3f9a0000").unwrap();
        assert_eq!((t.year(), t.hour(), t.minute()), (2026, 14, 0));
        assert!(backup_started_at("garbage").is_none());
    }
}
