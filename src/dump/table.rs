//! Streams one work unit (a table, or one page range of it): COPY out → tuple (or
//! text row) scanner → sealed chunks → store.

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::{DumpError, DumpOptions};
use crate::archive::{BackupWriter, ChunkRecord, CopyFormat};
use crate::catalog::text_session;
use crate::catalog::Table;
use crate::codec::on_cpu_pool;
use crate::pg::PgError;
use crate::pgcopy::{Cut, Scanner, TupleStats};
use crate::plan::WorkUnit;
use crate::progress::Progress;

/// Chunks read ahead of the uploader per unit: bounds memory at about
/// `(2 + QUEUE) × chunk_bytes` per worker whatever the table's size, and a slow
/// destination slows the reader instead of growing memory.
const QUEUE: usize = 2;

struct Piece {
    index: u64,
    is_final: bool,
    cut: Cut,
}

/// What one unit produced.
pub(super) struct UnitResult {
    pub unit: WorkUnit,
    pub stats: TupleStats,
    pub raw_bytes: u64,
    pub chunks: Vec<ChunkRecord>,
}

/// The COPY statement of a unit: the whole table, or a TID range scan of its pages.
fn copy_sql(table: &Table, unit: &WorkUnit, format: CopyFormat) -> String {
    let options = copy_options(format);
    match unit.pages {
        None => table.copy_statement("TO STDOUT", options),
        Some(r) => {
            let cols = table.copy_column_list();
            let cols = if cols.is_empty() { "".into() } else { cols };
            let upper = r
                .end
                .map(|e| format!(" AND ctid < '({e},0)'::pg_catalog.tid"))
                .unwrap_or_default();
            format!(
                "COPY (SELECT {cols} FROM ONLY {} WHERE ctid >= '({},0)'::pg_catalog.tid{upper}) \
                 TO STDOUT ({options})",
                table.name, r.start
            )
        }
    }
}

/// The COPY option list that writes `format`.
pub(super) fn copy_options(format: CopyFormat) -> &'static str {
    match format {
        CopyFormat::Binary => "FORMAT binary",
        CopyFormat::Text => "FORMAT text",
    }
}

/// One unit to read, and the statements that start its transaction.
pub(super) struct Unit<'a> {
    pub table: &'a Table,
    pub format: CopyFormat,
    pub unit: WorkUnit,
    /// Sent in the same round trip as the unit's LOCK.
    pub begin: &'a str,
}

pub(super) async fn dump_unit(
    client: &Client,
    Unit {
        table,
        format,
        unit,
        begin,
    }: Unit<'_>,
    writer: &Arc<BackupWriter>,
    opts: &DumpOptions,
    progress: &dyn Progress,
) -> Result<UnitResult, DumpError> {
    let label = table.name.plain();
    let table_no = unit.table as u32;
    progress.table_started(&label);
    // The leader holds ACCESS SHARE already; if DDL queued for an exclusive lock
    // since, a plain COPY would wait behind it forever (a wait the server cannot see
    // as a deadlock). Fail at once instead, like pg_dump's workers do. The COPY is
    // parsed in the same round trip (a failed lock fails it too, and is the error
    // reported): on thousands of small tables round trips are what a backup waits on.
    let copy_err = |e| PgError::query(format!("copy out {label}"), e);
    let lock_sql = format!(
        "{begin}; LOCK TABLE {} IN ACCESS SHARE MODE NOWAIT",
        table.name
    );
    let copy_sql = copy_sql(table, &unit, format);
    let (locked, statement) =
        futures::join!(client.batch_execute(&lock_sql), client.prepare(&copy_sql));
    locked.map_err(|e| {
        let what = if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
            format!("lock {label} (another session waits for an exclusive lock on it)")
        } else {
            format!("start reading {label} on the backup's snapshot")
        };
        PgError::query(what, e)
    })?;
    let statement = statement.map_err(copy_err)?;
    if format == CopyFormat::Text {
        client
            .batch_execute(&text_session(false))
            .await
            .map_err(|e| PgError::query("fix the settings text COPY depends on", e))?;
    }
    let stream = client.copy_out(&statement).await.map_err(copy_err)?;
    futures::pin_mut!(stream);

    let (tx, rx) = mpsc::channel::<Piece>(QUEUE);
    let uploader = tokio::spawn(upload(
        writer.clone(),
        table_no,
        unit.part,
        format == CopyFormat::Binary,
        rx,
    ));

    let mut scanner = Scanner::new(format == CopyFormat::Text);
    let mut held: Option<Cut> = None;
    let mut index = 0u64;
    let mut stats = TupleStats::default();
    let mut raw = 0u64;
    let format_err = |source| DumpError::Copy {
        table: label.clone(),
        source,
    };
    // One cut is held back so the last one can be sealed with the FINAL flag.
    let mut send = |cut: Cut, is_final: bool, tx: mpsc::Sender<Piece>| {
        stats.merge(cut.stats);
        raw += cut.data.len() as u64;
        progress.chunk_done(&label, cut.data.len() as u64, cut.stats.rows);
        let piece = Piece {
            index,
            is_final,
            cut,
        };
        index += 1;
        async move { tx.send(piece).await.is_ok() }
    };
    while let Some(data) = stream.next().await {
        let data = data.map_err(copy_err)?;
        scanner.feed(data).map_err(format_err)?;
        if scanner.ready_bytes() >= opts.chunk_bytes {
            let cut = scanner.cut();
            if let Some(prev) = held.replace(cut) {
                if !send(prev, false, tx.clone()).await {
                    // The uploader stopped: its error is the real cause.
                    drop(tx);
                    return Err(uploader_error(uploader).await);
                }
            }
        }
    }
    let last = scanner.finish().map_err(format_err)?;
    let sent = match held {
        Some(prev) if last.data.is_empty() => send(prev, true, tx.clone()).await,
        Some(prev) => send(prev, false, tx.clone()).await && send(last, true, tx.clone()).await,
        // An empty unit still gets one (empty) FINAL chunk: "no rows" ≠ "missing".
        None => send(last, true, tx.clone()).await,
    };
    drop(tx);
    if !sent {
        return Err(uploader_error(uploader).await);
    }
    let chunks = uploader
        .await
        .map_err(|e| DumpError::Worker(e.to_string()))??;
    Ok(UnitResult {
        unit,
        stats,
        raw_bytes: raw,
        chunks,
    })
}

/// The error that made the uploader stop early.
async fn uploader_error(
    uploader: tokio::task::JoinHandle<Result<Vec<ChunkRecord>, DumpError>>,
) -> DumpError {
    match uploader.await {
        Ok(Err(e)) => e,
        Ok(Ok(_)) => DumpError::Worker("the uploader stopped without an error".into()),
        Err(e) => DumpError::Worker(e.to_string()),
    }
}

/// Seals each piece on the rayon pool and uploads it, in order.
async fn upload(
    writer: Arc<BackupWriter>,
    table_no: u32,
    part: u32,
    binary: bool,
    mut rx: mpsc::Receiver<Piece>,
) -> Result<Vec<ChunkRecord>, DumpError> {
    let sealer = writer.sealer();
    let mut records = Vec::new();
    while let Some(p) = rx.recv().await {
        let s = sealer.clone();
        let data = p.cut.data.clone();
        let (index, is_final) = (p.index, p.is_final);
        let sealed = on_cpu_pool(data.len(), move || {
            s.seal(table_no, part, index, is_final, binary, &data)
        })
        .await
        .ok_or_else(|| DumpError::Worker("the sealing thread panicked".into()))??;
        let rec = writer
            .put_chunk(
                table_no,
                part,
                p.index,
                sealed,
                p.cut.data.len() as u64,
                p.cut.stats.rows,
            )
            .await?;
        records.push(rec);
    }
    Ok(records)
}
