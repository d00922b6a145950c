//! The findings of a check: each problem names its table and chunk; a backup's
//! verdict counts every problem and lists the first ones, in a stable order.

use std::fmt;

use serde::Serialize;

use crate::archive::{ArchiveError, ChunkRecord, LiveBackup, TableRecord};

/// One thing wrong with a backup: which table and chunk, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// `schema.name`, when the problem belongs to one table.
    pub table: Option<String>,
    pub chunk: Option<ChunkRef>,
    pub reason: String,
}

/// Where a damaged chunk is, so it can be inspected or restored from a copy of the
/// repository; `part` and `index` are repeated because the path encodes them only by
/// convention.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkRef {
    pub path: String,
    pub part: u32,
    pub index: u64,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.table, &self.chunk) {
            (Some(t), Some(c)) => write!(f, "{t} [part {}, chunk {}]: ", c.part, c.index)?,
            (Some(t), None) => write!(f, "{t}: ")?,
            _ => {}
        }
        f.write_str(&self.reason)
    }
}

/// The verdict on one backup.
#[derive(Debug, Clone, Serialize)]
pub struct BackupVerdict {
    pub backup_id: String,
    pub ok: bool,
    pub tables: u64,
    pub chunks: u64,
    /// Chunks this run downloaded or tried to (every chunk at depths stored and data,
    /// a share of them with a sample), damaged ones included.
    pub chunks_read: u64,
    pub bytes_read: u64,
    /// Rows parsed and counted (depth data).
    pub rows_read: u64,
    /// Parts (a table streamed whole is one part) in the backup, and those whose rows
    /// and content checksum were recomputed and compared: every chunk of the part must
    /// have been read, so a sample compares only the parts it covered whole.
    pub parts: u64,
    pub parts_checksummed: u64,
    /// The first problems found (the report holds at most [`MAX_PROBLEMS`](super::MAX_PROBLEMS)).
    pub problems: Vec<Problem>,
    /// Problems found beyond those listed.
    pub unlisted_problems: u64,
}

impl BackupVerdict {
    pub fn problem_count(&self) -> u64 {
        self.problems.len() as u64 + self.unlisted_problems
    }
}

/// A backup whose manifest (or data key) cannot even be opened.
pub fn unreadable(live: &LiveBackup, e: &ArchiveError, room: usize) -> BackupVerdict {
    let mut found = Findings::new(room);
    found.add(Problem {
        table: None,
        chunk: None,
        reason: reason(e),
    });
    found.verdict(&live.bid, Counts::default())
}

/// An error's own sentence, without the generic "the repository is corrupt" prefix.
pub(super) fn reason(e: &ArchiveError) -> String {
    match e {
        ArchiveError::Corrupt(why) => why.clone(),
        other => other.to_string(),
    }
}

/// The problems of one backup: all counted, the first `room` kept.
pub(super) struct Findings {
    pub(super) listed: Vec<Problem>,
    unlisted: u64,
    room: usize,
}

impl Findings {
    pub(super) fn new(room: usize) -> Self {
        Findings {
            listed: Vec::new(),
            unlisted: 0,
            room,
        }
    }

    pub(super) fn add(&mut self, p: Problem) {
        if self.listed.len() < self.room {
            self.listed.push(p);
        } else {
            self.unlisted += 1;
        }
    }

    pub(super) fn table(&mut self, rec: &TableRecord, reason: String) {
        self.add(Problem {
            table: Some(label(rec)),
            chunk: None,
            reason,
        });
    }

    pub(super) fn chunk(
        &mut self,
        rec: &TableRecord,
        chunk: &ChunkRecord,
        path: &str,
        reason: String,
    ) {
        self.add(Problem {
            table: Some(label(rec)),
            chunk: Some(ChunkRef {
                path: path.into(),
                part: chunk.part,
                index: chunk.index,
            }),
            reason,
        });
    }

    fn is_empty(&self) -> bool {
        self.listed.is_empty() && self.unlisted == 0
    }

    /// Chunks finish in any order; the report lists the backup's own problems first,
    /// then by table name, each table's own problems before its chunks', chunks in
    /// order: the same on every run.
    pub(super) fn verdict(mut self, bid: &str, counts: Counts) -> BackupVerdict {
        self.listed
            .sort_by_cached_key(|p| (p.table.clone(), p.chunk.as_ref().map(|c| (c.part, c.index))));
        BackupVerdict {
            backup_id: bid.into(),
            ok: self.is_empty(),
            tables: counts.tables,
            chunks: counts.chunks,
            chunks_read: counts.chunks_read,
            bytes_read: counts.bytes_read,
            rows_read: counts.rows_read,
            parts: counts.parts,
            parts_checksummed: counts.parts_checksummed,
            problems: self.listed,
            unlisted_problems: self.unlisted,
        }
    }
}

#[derive(Default)]
pub(super) struct Counts {
    pub(super) tables: u64,
    pub(super) chunks: u64,
    pub(super) chunks_read: u64,
    pub(super) bytes_read: u64,
    pub(super) rows_read: u64,
    pub(super) parts: u64,
    pub(super) parts_checksummed: u64,
}

pub(super) fn label(rec: &TableRecord) -> String {
    format!("{}.{}", rec.schema, rec.name)
}

pub(crate) fn plural(n: u64, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_count_everything_but_list_only_what_fits() {
        let mut f = Findings::new(2);
        for i in 0..5 {
            f.add(Problem {
                table: None,
                chunk: None,
                reason: format!("p{i}"),
            });
        }
        let v = f.verdict("b", Counts::default());
        assert_eq!((v.problems.len(), v.problem_count(), v.ok), (2, 5, false));
    }
}
