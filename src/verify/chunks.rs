//! Reading chunks: one download checked against the manifest's length and SHA-256,
//! at depth data opened and its tuples counted; then each part whose every chunk was
//! read compared with the manifest's rows and content checksum.

use std::collections::HashMap;
use std::sync::Arc;

use super::findings::{reason, Findings};
use super::manifest::parse_checksum;
use super::Depth;
use crate::archive::{ArchiveError, BackupReader, ChunkRecord, CopyFormat, Fetched, TableRecord};
use crate::codec::on_cpu_pool;
use crate::error::{Class, Classify};
use crate::pgcopy::{scan_text_rows, scan_tuples, TupleStats};
use crate::store::StoreError;

/// One chunk to download, and where it lives.
pub(super) struct ChunkJob {
    pub(super) table: usize,
    pub(super) chunk: ChunkRecord,
    pub(super) path: String,
}

/// A downloaded chunk: its stats at depth data, or why it failed.
pub(super) struct ChunkDone {
    pub(super) job: ChunkJob,
    pub(super) bytes: u64,
    pub(super) outcome: Result<Option<TupleStats>, String>,
}

#[derive(Default)]
pub(super) struct ReadTotals {
    pub(super) chunks: u64,
    pub(super) bytes: u64,
    pub(super) rows: u64,
    /// Per (table, part): the chunks that passed, and their tuples folded together.
    pub(super) parts: HashMap<(usize, u32), PartAcc>,
}

#[derive(Default)]
pub(super) struct PartAcc {
    pub(super) chunks_ok: usize,
    pub(super) stats: TupleStats,
}

/// Downloads one chunk and checks its length and SHA-256; at depth data also opens it
/// (header, AEAD, bounded decompression) and counts its tuples, on the CPU pool.
/// Damage is an outcome; only a failure to check (storage down) is an error.
pub(super) async fn read_one(
    reader: BackupReader,
    rec: Arc<TableRecord>,
    job: ChunkJob,
    depth: Depth,
) -> Result<ChunkDone, ArchiveError> {
    let object = match reader.fetch_chunk(&rec, &job.chunk).await {
        Ok(o) => o,
        Err(e) if e.class() == Class::Corrupt => {
            let why = match &e {
                ArchiveError::Store(StoreError::NotFound(_)) => {
                    format!("chunk {} is missing", job.path)
                }
                e => reason(e),
            };
            return Ok(ChunkDone {
                job,
                bytes: 0,
                outcome: Err(why),
            });
        }
        Err(e) => return Err(e),
    };
    let bytes = object.len() as u64;
    if depth < Depth::Data {
        return Ok(ChunkDone {
            job,
            bytes,
            outcome: Ok(None),
        });
    }
    let done = on_cpu_pool(job.chunk.raw_len as usize, move || {
        let outcome = open_and_scan(&reader, &rec, &job, object).map(Some);
        ChunkDone {
            job,
            bytes,
            outcome,
        }
    })
    .await
    .expect("rayon aborts the process when a task panics, so the task always answers");
    Ok(done)
}

fn open_and_scan(
    reader: &BackupReader,
    rec: &TableRecord,
    job: &ChunkJob,
    object: Fetched,
) -> Result<TupleStats, String> {
    let data = reader
        .open_chunk(rec, &job.chunk, object)
        .map_err(|e| reason(&e))?;
    let stats = match rec.copy_format {
        CopyFormat::Binary => scan_tuples(&data),
        CopyFormat::Text => scan_text_rows(&data),
    }
    .map_err(|e| format!("chunk {}: its tuples are malformed: {e}", job.path))?;
    if stats.rows != job.chunk.rows {
        return Err(format!(
            "chunk {} holds {} rows, the manifest says {}",
            job.path, stats.rows, job.chunk.rows
        ));
    }
    Ok(stats)
}

/// Compares each part whose every chunk was read and passed with the manifest's rows
/// and content checksum; returns how many parts were compared.
pub(super) fn compare_parts(
    tables: &[Arc<TableRecord>],
    read: &HashMap<(usize, u32), PartAcc>,
    found: &mut Findings,
) -> u64 {
    let mut compared = 0;
    for (t, rec) in tables.iter().enumerate() {
        for part in rec.effective_parts() {
            let Some(acc) = read.get(&(t, part.part)) else {
                continue;
            };
            if acc.chunks_ok != rec.part_chunks(part.part).count() {
                continue;
            }
            compared += 1;
            let whose = if rec.parts.is_empty() {
                "the table".to_string()
            } else {
                format!("part {}", part.part)
            };
            if acc.stats.rows != part.rows {
                found.table(
                    rec,
                    format!(
                        "{whose} holds {} rows, the manifest says {}",
                        acc.stats.rows, part.rows
                    ),
                );
            }
            if parse_checksum(&part.checksum) != Some(acc.stats.checksum) {
                found.table(
                    rec,
                    format!(
                        "the content checksum of {whose} is {:032x}, the manifest says {}",
                        acc.stats.checksum, part.checksum
                    ),
                );
            }
        }
    }
    compared
}
