//! A backup copied from one repository into another (3-2-1: a second copy off-site),
//! re-sealed under the second repository's keys and committed to its catalog, so the
//! copy has its own catalog chain and high-water mark instead of a mirror of the
//! first's objects that no catalog vouches for.
//!
//! The copy keeps the backup's id, manifest and every chunk's rows, part and index;
//! each chunk is opened (checked against the first repository's manifest) and stored
//! in the second the way a backup stores it: named by the second repository's chunk
//! key, uploaded only when that repository does not hold it already, sealed as a delta
//! against the chunk its newest backup had there when that is smaller. A copy that
//! stops midway commits nothing; its chunks stay and are found by the next attempt,
//! which deletes the unfinished backup's own objects first.

use std::sync::Arc;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};

use super::chain::LiveBackup;
use super::manifest::{ChunkRecord, Manifest, TableRecord};
use super::reader::BackupReader;
use super::writer::{BackupWriter, Summary};
use super::{ArchiveError, Repository};
use crate::codec::on_cpu_pool;
use crate::progress::Progress;

/// Chunks read, opened and stored at once.
const IN_FLIGHT: usize = 4;

/// One backup copied.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Copied {
    pub backup_id: String,
    pub chunks: u64,
    /// Chunks the second repository did not hold yet, and their stored bytes.
    pub new_chunks: u64,
    pub new_bytes: u64,
    pub raw_bytes: u64,
    pub seconds: f64,
}

/// Copies `live` of `from` into `to`, which must not list it yet.
pub async fn copy_backup(
    from: &Repository,
    to: &Repository,
    live: &LiveBackup,
    progress: &dyn Progress,
) -> Result<Copied, ArchiveError> {
    let started = Instant::now();
    let reader = BackupReader::open(from, live).await?;
    let source = reader.manifest().clone();
    let writer =
        Arc::new(BackupWriter::begin_as(to, source.params.compress_level, &live.bid).await?);
    let copied = async {
        let mut manifest = source.clone();
        // Its chunks are now named and sealed as this version stores them.
        manifest.format_version = super::FORMAT_VERSION;
        let mut tally = Tally::default();
        progress.start(
            "copy",
            source.tables.len() as u64,
            source.all_chunks().map(|c| c.raw_len).sum(),
        );
        for (i, table) in source.tables.iter().enumerate() {
            let oid = source
                .catalog
                .tables
                .get(table.table_no as usize)
                .map_or(0, |t| t.oid);
            manifest.tables[i].chunks =
                copy_chunks(&reader, &writer, table, oid, &mut tally, progress).await?;
            progress.table_finished(&format!("{}.{}", table.schema, table.name), table.rows);
        }
        if let (Some(los), Some(out)) = (&source.large_objects, manifest.large_objects.as_mut()) {
            out.data.chunks =
                copy_chunks(&reader, &writer, &los.data, 0, &mut tally, progress).await?;
        }
        Ok::<_, ArchiveError>((manifest, tally))
    }
    .await;
    let (manifest, tally) = match copied {
        Ok(done) => done,
        Err(e) => {
            let _ = writer.abandon().await;
            return Err(e);
        }
    };
    let summary = summary(&writer, &manifest, &tally);
    let writer = Arc::try_unwrap(writer)
        .map_err(|_| ArchiveError::Corrupt("a copy task still held the backup writer".into()))?;
    writer.commit(manifest, summary).await?;
    Ok(Copied {
        backup_id: live.bid.clone(),
        chunks: tally.chunks,
        new_chunks: tally.new_chunks,
        new_bytes: tally.new_bytes,
        raw_bytes: tally.raw_bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[derive(Debug, Default)]
struct Tally {
    chunks: u64,
    new_chunks: u64,
    new_bytes: u64,
    raw_bytes: u64,
}

/// One table's chunks, in order, as the second repository stores them.
async fn copy_chunks(
    reader: &BackupReader,
    writer: &Arc<BackupWriter>,
    table: &TableRecord,
    oid: u32,
    tally: &mut Tally,
    progress: &dyn Progress,
) -> Result<Vec<ChunkRecord>, ArchiveError> {
    let binary = table.copy_format.is_binary();
    let label = format!("{}.{}", table.schema, table.name);
    let written: Vec<_> = futures::stream::iter(table.chunks.iter().cloned())
        .map(|chunk| {
            let (reader, writer, record) = (reader.clone(), writer.clone(), table.clone());
            async move {
                let fetched = reader.fetch_chunk(&record, &chunk).await?;
                let (r, c) = (record.clone(), chunk.clone());
                let tuples = on_cpu_pool(chunk.raw_len as usize, move || {
                    reader.open_chunk(&r, &c, fetched)
                })
                .await
                .ok_or_else(|| ArchiveError::Corrupt("an opening thread panicked".into()))??;
                let at = (oid, chunk.part, chunk.index);
                let w = writer
                    .store_chunk(at, bytes::Bytes::from(tuples), chunk.rows, binary)
                    .await?;
                Ok::<_, ArchiveError>((chunk, w))
            }
        })
        .buffered(IN_FLIGHT)
        .try_collect()
        .await?;
    Ok(written
        .into_iter()
        .map(|(source, w)| {
            tally.chunks += 1;
            tally.raw_bytes += source.raw_len;
            if w.new {
                tally.new_chunks += 1;
                tally.new_bytes += w.record.ct_len;
            }
            progress.chunk_done(&label, source.raw_len, source.rows);
            w.record
        })
        .collect())
}

/// The copy's `summary.json`: the source's times, this repository's chunks and keys.
fn summary(writer: &BackupWriter, m: &Manifest, tally: &Tally) -> Summary {
    let records = || m.tables.iter().chain(m.large_object_data());
    Summary {
        format_version: super::FORMAT_VERSION,
        backup_id: m.backup_id.clone(),
        tool_version: m.tool_version.clone(),
        started_at: m.started_at.clone(),
        finished_at: m.finished_at.clone(),
        duration_ms: match (m.started_at.time(), m.finished_at.time()) {
            (Some(a), Some(b)) => (b - a).whole_milliseconds().max(0) as u64,
            _ => 0,
        },
        server_version: Some(m.source.server_version.clone()),
        tables: Some(m.tables.len() as u64),
        rows: Some(m.tables.iter().map(|t| t.rows).sum()),
        raw_bytes: Some(m.tables.iter().map(|t| t.raw_bytes).sum()),
        stored_bytes: records().map(TableRecord::stored_bytes).sum(),
        chunks: tally.chunks,
        new_bytes: Some(tally.new_bytes),
        new_chunks: Some(tally.new_chunks),
        encrypted: writer.dek_id().is_some(),
        rk_id: writer.rk_id(),
        dek_id: writer.dek_id(),
    }
}
