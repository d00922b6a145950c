//! Streams one work unit (a table, or one page range of it): COPY out → tuple (or
//! text row) scanner → sealed chunks → store.

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::{DumpError, DumpOptions};
use crate::archive::{BackupWriter, ChunkWritten, CopyFormat};
use crate::catalog::text_session;
use crate::catalog::Table;
use crate::pg::PgError;
use crate::pgcopy::{Cut, Cutter, Scanner, TupleStats};
use crate::plan::WorkUnit;
use crate::progress::Progress;

/// Chunks read ahead of the uploader per unit: bounds memory at about
/// `(2 + QUEUE) × 4 × chunk_bytes` (the largest chunk) per worker whatever the
/// table's size, and a slow destination slows the reader instead of growing memory.
const QUEUE: usize = 2;

/// What one unit produced.
pub(super) struct UnitResult {
    pub unit: WorkUnit,
    pub stats: TupleStats,
    pub raw_bytes: u64,
    pub chunks: Vec<ChunkWritten>,
}

/// The COPY statement of a unit: the whole table, or a TID range scan of its pages.
/// `diff --live` reads a table with the same statements, so its rows come in the same
/// order and cut into the same chunks.
pub fn copy_sql(table: &Table, unit: &WorkUnit, format: CopyFormat) -> String {
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

/// One unit to read.
pub(super) struct Unit<'a> {
    pub table: &'a Table,
    pub format: CopyFormat,
    pub unit: WorkUnit,
}

/// Reads `units` in one new transaction on the snapshot, which `begin` ends the
/// session's last one and starts. Its start, the units' LOCK and their COPY statements
/// go in one round trip: on thousands of small tables round trips are what a backup
/// waits on.
pub(super) async fn dump_units(
    client: &Client,
    units: Vec<Unit<'_>>,
    begin: &str,
    writer: &Arc<BackupWriter>,
    opts: &DumpOptions,
    progress: &dyn Progress,
) -> Result<Vec<UnitResult>, DumpError> {
    // The leader holds ACCESS SHARE already; if DDL queued for an exclusive lock
    // since, a plain COPY would wait behind it forever (a wait the server cannot see
    // as a deadlock). Fail at once instead, like pg_dump's workers do. The COPY
    // statements are parsed in the same round trip (a failed lock fails them too, and
    // is the error reported).
    // A job holds one part of a table, or several whole tables: each named once.
    let names: Vec<String> = units.iter().map(|u| u.table.name.to_string()).collect();
    let lock_sql = format!(
        "{begin}; LOCK TABLE {} IN ACCESS SHARE MODE NOWAIT",
        names.join(", ")
    );
    let labels = || {
        let labels: Vec<String> = units.iter().map(|u| u.table.name.plain()).collect();
        labels.join(", ")
    };
    let copies: Vec<String> = units
        .iter()
        .map(|u| copy_sql(u.table, &u.unit, u.format))
        .collect();
    let prepared = futures::future::join_all(copies.iter().map(|sql| client.prepare(sql)));
    let (locked, statements) = futures::join!(client.batch_execute(&lock_sql), prepared);
    locked.map_err(|e| {
        let what = if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
            format!(
                "lock {} (another session waits for an exclusive lock on it)",
                labels()
            )
        } else {
            format!("start reading {} on the backup's snapshot", labels())
        };
        PgError::query(what, e)
    })?;
    let statements = units
        .iter()
        .zip(statements)
        .map(|(u, statement)| {
            statement.map_err(|e| PgError::query(format!("copy out {}", u.table.name.plain()), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Each binary COPY is sent while the one before streams, so the server goes from
    // one to the next without waiting for us. Text COPY first changes the session's
    // settings, so it is sent when its turn comes.
    let start = |k: usize| {
        let mut copy = Box::pin(futures::future::maybe_done(client.copy_out(&statements[k])));
        if units[k].format == CopyFormat::Binary {
            // Polled once: that sends it; its responses queue behind the one before's.
            let _ = futures::FutureExt::now_or_never(copy.as_mut());
        }
        copy
    };
    let mut done = Vec::with_capacity(units.len());
    let mut next = (!units.is_empty()).then(|| start(0));
    for k in 0..units.len() {
        let mut copy = next.take().expect("started");
        let unit = &units[k];
        let label = unit.table.name.plain();
        progress.table_started(&label);
        if unit.format == CopyFormat::Text {
            client
                .batch_execute(&text_session(false))
                .await
                .map_err(|e| PgError::query("fix the settings text COPY depends on", e))?;
        }
        copy.as_mut().await;
        let stream = copy
            .as_mut()
            .take_output()
            .expect("a finished COPY start holds its outcome")
            .map_err(|e| PgError::query(format!("copy out {label}"), e))?;
        next = (k + 1 < units.len()).then(|| start(k + 1));
        done.push(dump_unit(unit, stream, writer, opts, progress).await?);
    }
    Ok(done)
}

/// Streams one unit's COPY out into chunks. A unit that fits in one chunk (most
/// small tables) stores it here; a bigger one hands its chunks to an uploader task so
/// reading goes on while they are sealed and written.
async fn dump_unit(
    &Unit {
        table,
        format,
        ref unit,
    }: &Unit<'_>,
    stream: tokio_postgres::CopyOutStream,
    writer: &Arc<BackupWriter>,
    opts: &DumpOptions,
    progress: &dyn Progress,
) -> Result<UnitResult, DumpError> {
    let label = table.name.plain();
    let copy_err = |e| PgError::query(format!("copy out {label}"), e);
    futures::pin_mut!(stream);
    let binary = format == CopyFormat::Binary;
    let cutter = Cutter::new(writer.sealer().boundary_key(), opts.chunk_bytes);
    let mut scanner = Scanner::new(!binary, cutter);
    let mut stats = TupleStats::default();
    let mut raw = 0u64;
    let format_err = |source| DumpError::Copy {
        table: label.clone(),
        source,
    };
    let mut count = |cut: &Cut| {
        stats.merge(cut.stats);
        raw += cut.data.len() as u64;
        progress.chunk_done(&label, cut.data.len() as u64, cut.stats.rows);
    };
    let mut uploader: Option<(mpsc::Sender<Cut>, tokio::task::JoinHandle<_>)> = None;
    while let Some(data) = stream.next().await {
        let data = data.map_err(copy_err)?;
        scanner.feed(data).map_err(format_err)?;
        while let Some(cut) = scanner.next_cut() {
            count(&cut);
            let (tx, _) = uploader.get_or_insert_with(|| {
                let (tx, rx) = mpsc::channel::<Cut>(QUEUE);
                let task = tokio::spawn(upload(writer.clone(), table.oid, unit.part, binary, rx));
                (tx, task)
            });
            if tx.send(cut).await.is_err() {
                // The uploader stopped: its error is the real cause.
                let (_, task) = uploader.take().expect("spawned");
                return Err(uploader_error(task).await);
            }
        }
    }
    let last = scanner.finish().map_err(format_err)?;
    let chunks = match uploader {
        // An empty unit still gets one (empty) chunk: "no rows" ≠ "missing".
        None => {
            count(&last);
            let at = (table.oid, unit.part, 0);
            vec![
                writer
                    .store_chunk(at, last.data, last.stats.rows, binary)
                    .await?,
            ]
        }
        Some((tx, task)) => {
            if !last.data.is_empty() {
                count(&last);
                if tx.send(last).await.is_err() {
                    return Err(uploader_error(task).await);
                }
            }
            drop(tx);
            task.await.map_err(|e| DumpError::Worker(e.to_string()))??
        }
    };
    Ok(UnitResult {
        unit: unit.clone(),
        stats,
        raw_bytes: raw,
        chunks,
    })
}

/// The error that made the uploader stop early.
async fn uploader_error(
    uploader: tokio::task::JoinHandle<Result<Vec<ChunkWritten>, DumpError>>,
) -> DumpError {
    match uploader.await {
        Ok(Err(e)) => e,
        Ok(Ok(_)) => DumpError::Worker("the uploader stopped without an error".into()),
        Err(e) => DumpError::Worker(e.to_string()),
    }
}

/// Names, seals and uploads each chunk (unless it is stored already), in order.
async fn upload(
    writer: Arc<BackupWriter>,
    oid: u32,
    part: u32,
    binary: bool,
    mut rx: mpsc::Receiver<Cut>,
) -> Result<Vec<ChunkWritten>, DumpError> {
    let mut records = Vec::new();
    while let Some(cut) = rx.recv().await {
        let index = records.len() as u64;
        records.push(
            writer
                .store_chunk((oid, part, index), cut.data, cut.stats.rows, binary)
                .await?,
        );
    }
    Ok(records)
}
