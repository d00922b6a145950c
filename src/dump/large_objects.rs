//! Large objects' content: read with `lo_get` in slices inside the backup's snapshot
//! (any role that may read a large object may call it, unlike `pg_largeobject`, which
//! only superusers read), as `(oid, offset, bytes)` tuples in PGCOPY binary framing,
//! so they are cut, sealed and checked exactly like table rows.
//!
//! The large objects are dealt round-robin into parts, one per worker at most; each
//! part is one stream of chunks that runs beside the tables on the same workers.
//! Memory stays at about three chunks per part whatever the objects' sizes: a slice
//! at a time is read, and one chunk is sealed and uploaded while the next one fills.

use std::sync::Arc;

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use super::DumpError;
use crate::archive::{BackupWriter, ChunkWritten};
use crate::pg::PgError;
use crate::pgcopy::{header, Cut, Cutter, TupleScanner, TupleStats, TRAILER};
use crate::progress::Progress;

/// How progress names the large objects, whatever their part.
pub(super) const LABEL: &str = "large objects";

/// Bytes one `lo_get` reads: big enough that a round trip carries real work, small
/// enough to be nothing next to a chunk.
pub(super) const SLICE: usize = 256 << 10;

/// Large objects whose first slice one query reads: databases often hold many small
/// ones, and a round trip each would dominate.
const BATCH: usize = 256;

/// The large objects one worker streams.
pub(super) struct LoUnit {
    pub part: u32,
    pub oids: Vec<u32>,
}

/// What one part produced.
pub(super) struct LoResult {
    pub part: u32,
    pub stats: TupleStats,
    pub raw_bytes: u64,
    pub chunks: Vec<ChunkWritten>,
    pub objects: Vec<LoContent>,
}

/// What one large object's content adds up to.
pub(super) struct LoContent {
    pub oid: u32,
    pub size: u64,
    pub sha256: String,
}

/// Deals the large objects round-robin into at most `jobs` parts: their sizes are
/// unknown until read (only superusers may sum `pg_largeobject`).
pub(super) fn units(oids: &[u32], jobs: usize) -> Vec<LoUnit> {
    let n = jobs.clamp(1, oids.len().max(1));
    let mut units: Vec<LoUnit> = (0..n as u32)
        .map(|part| LoUnit {
            part,
            oids: Vec::new(),
        })
        .collect();
    for (i, oid) in oids.iter().enumerate() {
        units[i % n].oids.push(*oid);
    }
    units.retain(|u| !u.oids.is_empty());
    units
}

/// One stream tuple: the oid (`oid`), the offset (`int8`) and the bytes (`bytea`).
fn tuple(oid: u32, offset: u64, data: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(26 + data.len());
    t.extend_from_slice(&3i16.to_be_bytes());
    t.extend_from_slice(&4i32.to_be_bytes());
    t.extend_from_slice(&oid.to_be_bytes());
    t.extend_from_slice(&8i32.to_be_bytes());
    t.extend_from_slice(&(offset as i64).to_be_bytes());
    t.extend_from_slice(&(data.len() as i32).to_be_bytes());
    t.extend_from_slice(data);
    t
}

/// Streams the large objects of `unit`; the worker's session is attached to the
/// backup's snapshot, which `lo_get` reads under.
pub(super) async fn dump_part(
    client: &Client,
    unit: LoUnit,
    writer: &Arc<BackupWriter>,
    chunk_bytes: usize,
    progress: &dyn Progress,
) -> Result<LoResult, DumpError> {
    let label = format!("large objects (part {})", unit.part);
    progress.table_started(LABEL);
    let pg = |e| PgError::query("read large objects", e);
    let first = client
        .prepare(
            "SELECT u.o, pg_catalog.lo_get(u.o, 0, $2) \
             FROM pg_catalog.unnest($1::pg_catalog.oid[]) WITH ORDINALITY AS u(o, n) \
             ORDER BY u.n",
        )
        .await
        .map_err(pg)?;
    let next = client
        .prepare("SELECT pg_catalog.lo_get($1::pg_catalog.oid, $2::pg_catalog.int8, $3::pg_catalog.int4)")
        .await
        .map_err(pg)?;
    let mut out = Stream::new(writer.clone(), unit.part, chunk_bytes, label.clone())?;
    let mut objects = Vec::with_capacity(unit.oids.len());
    let slice = SLICE as i32;
    for batch in unit.oids.chunks(BATCH) {
        let batch = batch.to_vec();
        // Objects whose first slice was full: read on after the batch's rows.
        let mut longer = Vec::new();
        let params: [&(dyn ToSql + Sync); 2] = [&batch, &slice];
        let rows = client.query_raw(&first, params).await.map_err(pg)?;
        futures::pin_mut!(rows);
        while let Some(row) = rows.next().await {
            let row = row.map_err(pg)?;
            let oid: u32 = row.get(0);
            let data: &[u8] = row.get(1);
            let mut hash = Sha256::new();
            hash.update(data);
            out.push(oid, 0, data, progress).await?;
            if data.len() == SLICE {
                longer.push((oid, hash));
            } else {
                objects.push(LoContent {
                    oid,
                    size: data.len() as u64,
                    sha256: hex::encode(hash.finalize()),
                });
            }
        }
        for (oid, mut hash) in longer {
            let mut size = SLICE as u64;
            loop {
                let row = client
                    .query_one(&next, &[&oid, &(size as i64), &slice])
                    .await
                    .map_err(pg)?;
                let data: &[u8] = row.get(0);
                if !data.is_empty() {
                    hash.update(data);
                    out.push(oid, size, data, progress).await?;
                    size += data.len() as u64;
                }
                if data.len() < SLICE {
                    break;
                }
            }
            objects.push(LoContent {
                oid,
                size,
                sha256: hex::encode(hash.finalize()),
            });
        }
    }
    let (chunks, stats, raw_bytes) = out.finish(progress).await?;
    Ok(LoResult {
        part: unit.part,
        stats,
        raw_bytes,
        chunks,
        objects,
    })
}

/// Cuts tuples into chunks and uploads them, one upload under way while the next
/// chunk fills.
struct Stream {
    writer: Arc<BackupWriter>,
    part: u32,
    label: String,
    scanner: Option<TupleScanner>,
    stats: TupleStats,
    raw: u64,
    pending: Option<JoinHandle<Result<ChunkWritten, DumpError>>>,
    chunks: Vec<ChunkWritten>,
}

impl Stream {
    fn new(
        writer: Arc<BackupWriter>,
        part: u32,
        chunk_bytes: usize,
        label: String,
    ) -> Result<Self, DumpError> {
        let cutter = Cutter::new(writer.sealer().boundary_key(), chunk_bytes);
        let mut scanner = TupleScanner::new(cutter);
        let mut s = Stream {
            writer,
            part,
            label,
            scanner: None,
            stats: TupleStats::default(),
            raw: 0,
            pending: None,
            chunks: Vec::new(),
        };
        scanner.feed(&header()).map_err(|e| s.format_err(e))?;
        s.scanner = Some(scanner);
        Ok(s)
    }

    fn format_err(&self, source: crate::pgcopy::CopyFormatError) -> DumpError {
        DumpError::Copy {
            table: self.label.clone(),
            source,
        }
    }

    async fn push(
        &mut self,
        oid: u32,
        offset: u64,
        data: &[u8],
        progress: &dyn Progress,
    ) -> Result<(), DumpError> {
        let scanner = self.scanner.as_mut().expect("open until finish");
        if let Err(e) = scanner.feed(&tuple(oid, offset, data)) {
            return Err(self.format_err(e));
        }
        while let Some(cut) = self.scanner.as_mut().and_then(TupleScanner::next_cut) {
            self.send(cut, progress).await?;
        }
        Ok(())
    }

    async fn settle(&mut self) -> Result<(), DumpError> {
        if let Some(p) = self.pending.take() {
            let rec = p.await.map_err(|e| DumpError::Worker(e.to_string()))??;
            self.chunks.push(rec);
        }
        Ok(())
    }

    async fn send(&mut self, cut: Cut, progress: &dyn Progress) -> Result<(), DumpError> {
        self.settle().await?;
        self.stats.merge(cut.stats);
        self.raw += cut.data.len() as u64;
        progress.chunk_done(&self.label, cut.data.len() as u64, cut.stats.rows);
        let (writer, part, index) = (self.writer.clone(), self.part, self.chunks.len() as u64);
        self.pending = Some(tokio::spawn(async move {
            Ok(writer
                .store_chunk((0, part, index), cut.data, cut.stats.rows, false)
                .await?)
        }));
        Ok(())
    }

    async fn finish(
        mut self,
        progress: &dyn Progress,
    ) -> Result<(Vec<ChunkWritten>, TupleStats, u64), DumpError> {
        let mut scanner = self.scanner.take().expect("open until finish");
        let last = scanner
            .feed(&TRAILER)
            .and_then(|()| scanner.finish())
            .map_err(|e| self.format_err(e))?;
        self.settle().await?;
        // A part always ends with a chunk, an empty one if need be.
        if !last.data.is_empty() || self.chunks.is_empty() {
            self.send(last, progress).await?;
            self.settle().await?;
        }
        Ok((self.chunks, self.stats, self.raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_share_the_objects_round_robin_and_none_is_empty() {
        let oids: Vec<u32> = (1..=5).collect();
        let u = units(&oids, 2);
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].oids, vec![1, 3, 5]);
        assert_eq!(u[1].oids, vec![2, 4]);
        assert_eq!(units(&oids[..1], 8).len(), 1);
        assert!(units(&[], 4).is_empty());
    }

    #[test]
    fn a_stream_tuple_is_a_pgcopy_tuple_of_three_fields() {
        let t = tuple(7, 9, b"ab");
        let stats = crate::pgcopy::scan_tuples(&t).unwrap();
        assert_eq!(stats.rows, 1);
        let fields: Vec<_> = crate::pgcopy::tuples(&t).next().unwrap().unwrap().collect();
        assert_eq!(fields.len(), 3);
        assert_eq!(fields[2], Some(&b"ab"[..]));
    }
}
