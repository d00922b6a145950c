//! The audit trail: one immutable, sealed object per operation under `audit/`.
//!
//! HIPAA asks who touched the backups, when, and with what result. Records live in the
//! repository itself (so they travel with the backups and need no database), are
//! written create-only (nobody rewrites history through pgbunker), and are sealed like
//! the catalog: an error text may name a table, and table names are protected data.
//!
//! Create-only puts stop pgbunker from rewriting history, not someone with write access
//! to the bucket from deleting a record (say, the failed verify that makes `check`
//! CRITICAL). So records are chained: each names the records it follows by id,
//! operation and the SHA-256 of their objects, and a reader reports a record that a
//! later one names but that is gone or changed. Two commands that append at once both
//! name the same predecessor (a fork); the next record names both branches, so a fork
//! is never taken for tampering. The newest record is named by nothing yet: this
//! machine remembers the newest one it wrote or saw in its state folder and refuses a
//! trail that lost it.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::repo::Repository;
use super::sealed::{self, Kind};
use super::timestamp::Timestamp;
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
    pub started_at: Timestamp,
    pub ended_at: Timestamp,
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
    /// The records this one follows, set when it is appended: the newest record its
    /// writer saw and any written beside that one. Empty for the first record of a
    /// trail; `None` for records written before records were chained (they still read).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub prev: Option<Vec<AuditLink>>,
}

/// A record named by a later one: enough to say what went missing, and the hash that
/// shows whether it is still the record that was named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLink {
    pub id: String,
    pub operation: String,
    /// SHA-256 of the named record's object as stored (hex).
    pub sha256: String,
}

/// `"prev": null` (the first record of a trail) must differ from a missing `prev` (a
/// record from before chaining): a present field is always `Some`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<AuditLink>>, D::Error> {
    Option::<Vec<AuditLink>>::deserialize(d).map(|v| Some(v.unwrap_or_default()))
}

/// What is wrong with an audit trail. Each one means that someone with write access
/// to the repository deleted, replaced or forged audit records (or that storage lost
/// them): never a concurrency accident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuditProblem {
    /// A later record names it, and it is gone.
    Missing { record: AuditLink, named_by: String },
    /// A later record names it, and what is stored under its name is another object.
    Replaced { record: AuditLink, named_by: String },
    /// The object does not open: forged, sealed for another repository, or damaged.
    Unreadable { object: String, error: String },
    /// The newest record this machine wrote or saw is gone (the deletion of a newest
    /// record, which no later record names yet).
    AnchorMissing {
        record: AuditLink,
        state_file: String,
    },
    /// The newest record this machine wrote or saw is another object now.
    AnchorReplaced {
        record: AuditLink,
        state_file: String,
    },
}

impl std::fmt::Display for AuditProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditProblem::Missing { record, named_by } => write!(
                f,
                "audit record {} is missing: the later record {named_by} names it, so it was \
                 deleted",
                described(record)
            ),
            AuditProblem::Replaced { record, named_by } => write!(
                f,
                "audit record {} is not the one the later record {named_by} names: it was \
                 replaced",
                described(record)
            ),
            AuditProblem::Unreadable { object, error } => {
                write!(f, "audit record {object} fails its checks: {error}")
            }
            AuditProblem::AnchorMissing { record, state_file } => write!(
                f,
                "audit record {}, the newest this machine wrote or saw ({state_file}), is \
                 missing: it was deleted",
                described(record)
            ),
            AuditProblem::AnchorReplaced { record, state_file } => write!(
                f,
                "audit record {}, the newest this machine wrote or saw ({state_file}), is \
                 another object now: it was replaced",
                described(record)
            ),
        }
    }
}

/// `<id> (<operation> at <time>)`: the id alone does not tell a reader which operation
/// disappeared.
fn described(l: &AuditLink) -> String {
    match id_time(&l.id) {
        Some(t) => format!("{} ({} at {t})", l.id, l.operation),
        None => format!("{} ({})", l.id, l.operation),
    }
}

/// The time in a record id, as RFC 3339 to the second.
fn id_time(id: &str) -> Option<String> {
    let d = |r: std::ops::Range<usize>| id.get(r).filter(|s| s.bytes().all(|b| b.is_ascii_digit()));
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        d(0..4)?,
        d(4..6)?,
        d(6..8)?,
        d(9..11)?,
        d(11..13)?,
        d(13..15)?
    ))
}

/// The whole trail as read and checked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditTrail {
    /// Every record that opened, oldest first.
    pub records: Vec<AuditRecord>,
    pub problems: Vec<AuditProblem>,
    /// How many records predate chaining: a deletion among them cannot be seen.
    pub unchained: usize,
}

/// What this machine remembers of a repository's audit trail
/// (`audit-<hash of URL>.json` in the state folder).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AuditAnchor {
    location: String,
    repo_id: String,
    newest: AuditLink,
}

const ANCHOR: &str = "audit";

/// Records read in parallel: a trail holds one per operation, hourly checks included.
const READ_AHEAD: usize = 16;

/// At most this many records written beside the newest one are named: concurrent
/// writers are few, and junk objects must not make every append read the bucket.
const MAX_LINKS: usize = 16;

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

/// Every operation an audit record names, as [`op_suffix`] spells them.
pub const OPERATIONS: &[&str] = &[
    "init",
    "backup",
    "restore",
    "restore-test",
    "verify",
    "export",
    "diff",
    "copy",
    "mask-check",
    "prune",
    "check",
    "hold",
    "upgrade",
    "key-add",
    "key-remove",
    "key-rotate",
];

/// An operation as object names spell it (`key add` → `key-add`); filters accept
/// either spelling.
pub fn op_suffix(operation: &str) -> String {
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

/// An object under `audit/` by name: its id and the operation as the name spells it.
struct Named {
    key: String,
    id: String,
    op: String,
}

fn named(key: String) -> Named {
    let name = key.rsplit('/').next().unwrap_or_default();
    // Ids have a fixed length; the operation follows after a dot.
    let id = name.get(..ID_LEN).unwrap_or(name).to_owned();
    let op = name.get(ID_LEN + 1..).unwrap_or("").to_owned();
    Named { key, id, op }
}

/// A stored record: what it holds (or why it does not open) and its object's hash.
struct Read {
    named: Named,
    sha256: String,
    record: Result<AuditRecord, ArchiveError>,
}

impl Read {
    fn link(&self) -> AuditLink {
        AuditLink {
            id: self.named.id.clone(),
            operation: self
                .record
                .as_ref()
                .map_or_else(|_| self.named.op.clone(), |r| r.operation.clone()),
            sha256: self.sha256.clone(),
        }
    }
}

impl Repository {
    /// Appends a record (create-only), chained to the newest records in the trail, and
    /// remembers it as this machine's newest. Returns the record as written.
    pub async fn append_audit(&self, record: &AuditRecord) -> Result<AuditRecord, ArchiveError> {
        if !valid_id(&record.id) {
            return Err(ArchiveError::Corrupt(format!(
                "invalid audit record id {:?}",
                record.id
            )));
        }
        let mut record = record.clone();
        record.prev = Some(self.audit_links(&record.id).await?);
        let json = serde_json::to_vec(&record).expect("audit records serialize");
        let bytes = sealed::seal(self, &KIND, 0, &json)?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        self.store()
            .put_new(&object_key(&record), Bytes::from(bytes))
            .await?;
        self.raise_audit_anchor(&AuditLink {
            id: record.id.clone(),
            operation: record.operation.clone(),
            sha256,
        })?;
        Ok(record)
    }

    /// The links for a new record `own`: the newest record, and every record newer than
    /// what the newest itself follows (its siblings from a concurrent append, which no
    /// record names yet).
    async fn audit_links(&self, own: &str) -> Result<Vec<AuditLink>, ArchiveError> {
        let mut all: Vec<Named> = self
            .store()
            .list(AUDIT_DIR)
            .await?
            .into_iter()
            .map(named)
            .filter(|n| n.id != own)
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        let Some(newest) = all.pop() else {
            return Ok(Vec::new());
        };
        let newest = self.read_audit(newest).await?;
        let since = match &newest.record {
            Ok(AuditRecord {
                prev: Some(links), ..
            }) => links.iter().map(|l| l.id.clone()).max(),
            _ => None,
        };
        let mut links = vec![newest.link()];
        if let Some(since) = since {
            let siblings: Vec<Named> = all
                .into_iter()
                .rev()
                .take_while(|n| n.id > since)
                .take(MAX_LINKS)
                .collect();
            for n in siblings {
                links.push(self.read_audit(n).await?.link());
            }
        }
        links.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(links)
    }

    /// Reads one record. A record that does not open is a finding, not an error;
    /// storage failing is an error.
    async fn read_audit(&self, n: Named) -> Result<Read, ArchiveError> {
        let bytes = self.store().get(&n.key).await?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let record = sealed::open(self, &KIND, 0, &n.key, &bytes).and_then(|json| {
            let rec: AuditRecord =
                serde_json::from_slice(&json).map_err(|e| ArchiveError::json(n.key.as_str(), e))?;
            if rec.id != n.id || op_suffix(&rec.operation) != n.op {
                return Err(ArchiveError::Corrupt(format!(
                    "{}: the record inside names another id or operation",
                    n.key
                )));
            }
            Ok(rec)
        });
        Ok(Read {
            named: n,
            sha256,
            record,
        })
    }

    /// Reads every record and checks the chain: each link must find the record it
    /// names, unchanged, and this machine's newest record must still be there. When
    /// nothing is wrong, the newest record becomes this machine's anchor.
    pub async fn audit_trail(&self) -> Result<AuditTrail, ArchiveError> {
        // The anchor is read before the listing: a concurrent run may raise it to a
        // record written after our listing, which would look deleted.
        let anchor = self.audit_anchor()?;
        let names: Vec<Named> = self
            .store()
            .list(AUDIT_DIR)
            .await?
            .into_iter()
            .map(named)
            .collect();
        let mut reads: Vec<Read> = futures::stream::iter(names)
            .map(|n| self.read_audit(n))
            .buffered(READ_AHEAD)
            .try_collect()
            .await?;
        reads.sort_by(|a, b| a.named.id.cmp(&b.named.id));
        let stored: BTreeMap<&str, &str> = reads
            .iter()
            .map(|r| (r.named.id.as_str(), r.sha256.as_str()))
            .collect();
        let mut trail = AuditTrail::default();
        // A record named by several later ones is reported once.
        let mut reported = BTreeSet::new();
        for r in &reads {
            let rec = match &r.record {
                Ok(rec) => rec,
                Err(e) => {
                    trail.problems.push(AuditProblem::Unreadable {
                        object: r.named.key.clone(),
                        error: e.to_string(),
                    });
                    continue;
                }
            };
            match &rec.prev {
                None => trail.unchained += 1,
                Some(links) => {
                    for l in links {
                        if !reported.insert(l.id.clone()) {
                            continue;
                        }
                        let named_by = rec.id.clone();
                        match stored.get(l.id.as_str()) {
                            None => trail.problems.push(AuditProblem::Missing {
                                record: l.clone(),
                                named_by,
                            }),
                            Some(sha) if *sha != l.sha256 => {
                                trail.problems.push(AuditProblem::Replaced {
                                    record: l.clone(),
                                    named_by,
                                })
                            }
                            Some(_) => {
                                reported.remove(&l.id);
                            }
                        }
                    }
                }
            }
        }
        if let Some((anchor, file)) = anchor {
            let state_file = file.display().to_string();
            let record = anchor.newest;
            match stored.get(record.id.as_str()) {
                None => trail
                    .problems
                    .push(AuditProblem::AnchorMissing { record, state_file }),
                Some(sha) if *sha != record.sha256 => trail
                    .problems
                    .push(AuditProblem::AnchorReplaced { record, state_file }),
                Some(_) => {}
            }
        }
        if trail.problems.is_empty() {
            if let Some(newest) = reads.last() {
                self.raise_audit_anchor(&newest.link())?;
            }
        }
        trail.records = reads.into_iter().filter_map(|r| r.record.ok()).collect();
        Ok(trail)
    }

    /// This machine's anchor for this repository, with its file; `None` without a state
    /// folder, before the first record, or for another repository that was at this
    /// location before (the catalog's mark reports a swapped repository).
    fn audit_anchor(&self) -> Result<Option<(AuditAnchor, std::path::PathBuf)>, ArchiveError> {
        let Some(dir) = self.state_dir() else {
            return Ok(None);
        };
        let location = self.store().location();
        let anchor: Option<AuditAnchor> = dir.load_record(ANCHOR, location)?;
        Ok(anchor
            .filter(|a| a.repo_id == self.config().repo_id)
            .map(|a| (a, dir.record_file(ANCHOR, location))))
    }

    /// Remembers `newest` unless this machine already knows a newer record: the anchor
    /// only moves forward, so a slower concurrent run cannot make it forget one.
    fn raise_audit_anchor(&self, newest: &AuditLink) -> Result<(), ArchiveError> {
        let Some(dir) = self.state_dir() else {
            return Ok(());
        };
        if let Some((old, _)) = self.audit_anchor()? {
            if old.newest.id >= newest.id {
                return Ok(());
            }
        }
        let location = self.store().location();
        dir.store_record(
            ANCHOR,
            location,
            &AuditAnchor {
                location: location.into(),
                repo_id: self.config().repo_id.clone(),
                newest: newest.clone(),
            },
        )
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

    fn record(prev: &str) -> AuditRecord {
        serde_json::from_str(&format!(
            r#"{{"id":"20261123T100000.123456Z-0a0b0c0d","operation":"verify","user":"u",
               "host":"h","started_at":"s","ended_at":"e","duration_ms":1,"result":"ok",
               "exit_code":0,"tool_version":"0"{prev}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn unchained_first_and_linked_records_read_apart() {
        assert_eq!(record("").prev, None);
        assert_eq!(record(r#","prev":null"#).prev, Some(vec![]));
        assert_eq!(record(r#","prev":[]"#).prev, Some(vec![]));
        let linked = record(
            r#","prev":[{"id":"20261123T090000.000001Z-01020304","operation":"restore","sha256":"ab"}]"#,
        );
        assert_eq!(linked.prev.as_ref().unwrap()[0].operation, "restore");
        // Written and read back, each keeps its meaning.
        for r in [record(""), record(r#","prev":[]"#), linked] {
            let back: AuditRecord =
                serde_json::from_slice(&serde_json::to_vec(&r).unwrap()).unwrap();
            assert_eq!(back, r);
        }
    }

    #[test]
    fn problems_name_the_record_its_operation_and_time() {
        let p = AuditProblem::Missing {
            record: AuditLink {
                id: "20261123T100000.123456Z-0a0b0c0d".into(),
                operation: "restore".into(),
                sha256: "00".into(),
            },
            named_by: "20261123T110000.000000Z-01010101".into(),
        };
        assert_eq!(
            p.to_string(),
            "audit record 20261123T100000.123456Z-0a0b0c0d (restore at 2026-11-23T10:00:00Z) \
             is missing: the later record 20261123T110000.000000Z-01010101 names it, so it was \
             deleted"
        );
        assert_eq!(id_time("garbage"), None);
    }
}
