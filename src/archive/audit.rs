//! The audit trail: one immutable, sealed object per operation under `audit/`.
//!
//! HIPAA asks who touched the backups, when, and with what result. Records live in the
//! repository itself (so they travel with the backups and need no database), are
//! written create-only (nobody rewrites history through pgbunker), and are sealed like
//! the catalog: an error text may name a table, and table names are protected data.

use bytes::Bytes;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::repo::Repository;
use super::sealed::{self, Kind};
use super::ArchiveError;

pub const AUDIT_DIR: &str = "audit";

const KIND: Kind = Kind {
    magic: b"PGBKAUD\x01",
    domain: b"pgbunker/v1/audit",
    what: "an audit record",
};

/// One operation, as it ended. Never holds a secret or a row value: errors are
/// pgbunker's own messages (connection strings redacted, server DETAIL dropped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub id: String,
    /// `init`, `backup`, `restore`, `verify`, `prune`, `hold`, `key add`, `check`, …
    pub operation: String,
    #[serde(default)]
    pub backup_id: Option<String>,
    /// The OS user that ran pgbunker.
    pub user: String,
    pub host: String,
    pub started_at: String,
    pub ended_at: String,
    pub duration_ms: u64,
    /// `ok` or `failed`.
    pub result: String,
    pub exit_code: i32,
    #[serde(default)]
    pub error: Option<String>,
    /// Sizes and counts of the operation (rows, bytes, tables, kept/removed, …).
    #[serde(default)]
    pub details: serde_json::Value,
    pub tool_version: String,
}

/// A record id: its time (so ids sort by time, to the microsecond) and 32 random bits.
pub fn new_audit_id(at: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[year][month][day]T[hour][minute][second].[subsecond digits:6]Z"
    );
    let mut r = [0u8; 4];
    rand::rngs::OsRng.fill_bytes(&mut r);
    format!(
        "{}-{}",
        at.to_offset(time::UtcOffset::UTC)
            .format(&fmt)
            .expect("formatting a UTC timestamp"),
        hex::encode(r)
    )
}

/// `audit/<id>.<operation>`: the operation is in the name (it is not sensitive) so
/// readers can pick records without opening them.
fn object_key(r: &AuditRecord) -> String {
    format!("{AUDIT_DIR}/{}.{}", r.id, op_suffix(&r.operation))
}

fn op_suffix(operation: &str) -> String {
    operation
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

const ID_LEN: usize = 32;

fn valid_id(id: &str) -> bool {
    id.len() == ID_LEN
        && id
            .bytes()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, b'T' | b'Z' | b'-' | b'.'))
}

impl Repository {
    /// Appends a record (create-only).
    pub async fn append_audit(&self, record: &AuditRecord) -> Result<(), ArchiveError> {
        if !valid_id(&record.id) {
            return Err(ArchiveError::Corrupt(format!(
                "invalid audit record id {:?}",
                record.id
            )));
        }
        let json = serde_json::to_vec(record).expect("audit records serialize");
        let bytes = sealed::seal(self, &KIND, 0, &json)?;
        self.store()
            .put_new(&object_key(record), Bytes::from(bytes))
            .await?;
        Ok(())
    }

    /// Every record whose id (its time) is at or after `since`, of `operation` when
    /// given, oldest first. Both filters work on object names, so a monitoring check
    /// fetches only what it reads. A record that fails its checks is an error: a
    /// forged entry must not pass quietly.
    pub async fn audit_records(
        &self,
        since: Option<OffsetDateTime>,
        operation: Option<&str>,
    ) -> Result<Vec<AuditRecord>, ArchiveError> {
        let from = since.map(new_audit_id);
        let suffix = operation.map(op_suffix);
        let mut out = Vec::new();
        for key in self.store().list(AUDIT_DIR).await? {
            let name = key.rsplit('/').next().unwrap_or_default();
            // Ids have a fixed length; the operation follows after a dot.
            let id = name.get(..ID_LEN).unwrap_or(name);
            let op = name.get(ID_LEN + 1..).unwrap_or("");
            if from.as_deref().is_some_and(|f| id < &f[..23]) {
                continue;
            }
            if suffix.as_deref().is_some_and(|s| s != op) {
                continue;
            }
            let bytes = self.store().get(&key).await?;
            let json = sealed::open(self, &KIND, 0, &key, &bytes)?;
            let rec: AuditRecord =
                serde_json::from_slice(&json).map_err(|e| ArchiveError::json(key.as_str(), e))?;
            if rec.id != id || op_suffix(&rec.operation) != op {
                return Err(ArchiveError::Corrupt(format!(
                    "{key}: the record inside names another id or operation"
                )));
            }
            out.push(rec);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_are_checked() {
        let t = time::macros::datetime!(2026-11-23 10:00:00.123456 UTC);
        let a = new_audit_id(t);
        let b = new_audit_id(t + time::Duration::microseconds(1));
        assert!(a < b, "{a} {b}");
        assert!(valid_id(&a), "{a}");
        assert!(a.starts_with("20261123T100000.123456Z-"));
        assert!(!valid_id("../catalog/00000000000000000001"));
        assert_eq!(op_suffix("key add"), "key-add");
    }
}
