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
    let mut names: Vec<String> = units.iter().map(|u| u.table.name.to_string()).collect();
    names.dedup();
    let lock_sql = format!(
        "{begin}; LOCK TABLE {} IN ACCESS SHARE MODE NOWAIT",
        names.join(", ")
    );
    let labels = || {
        let mut labels: Vec<String> = units.iter().map(|u| u.table.name.plain()).collect();
        labels.dedup();
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
    let mut done = Vec::with_capacity(units.len());
    for (unit, statement) in units.into_iter().zip(statements) {
        let label = unit.table.name.plain();
        let statement = statement.map_err(|e| PgError::query(format!("copy out {label}"), e))?;
        done.push(dump_unit(client, unit, statement, writer, opts, progress).await?);
    }
    Ok(done)
}

/// Streams one unit whose COPY statement is prepared.
async fn dump_unit(
    client: &Client,
    Unit {
        table,
        format,
        unit,
    }: Unit<'_>,
    statement: tokio_postgres::Statement,
    writer: &Arc<BackupWriter>,
    opts: &DumpOptions,
    progress: &dyn Progress,
) -> Result<UnitResult, DumpError> {
    let label = table.name.plain();
    progress.table_started(&label);
    let copy_err = |e| PgError::query(format!("copy out {label}"), e);
    if format == CopyFormat::Text {
        client
            .batch_execute(&text_session(false))
            .await
            .map_err(|e| PgError::query("fix the settings text COPY depends on", e))?;
    }
    let stream = client.copy_out(&statement).await.map_err(copy_err)?;
    futures::pin_mut!(stream);

    let (tx, rx) = mpsc::channel::<Cut>(QUEUE);
    let uploader = tokio::spawn(upload(
        writer.clone(),
        table.oid,
        unit.part,
        format == CopyFormat::Binary,
        rx,
    ));

    let cutter = Cutter::new(writer.sealer().boundary_key(), opts.chunk_bytes);
    let mut scanner = Scanner::new(format == CopyFormat::Text, cutter);
    let mut stats = TupleStats::default();
    let mut raw = 0u64;
    let mut any_sent = false;
    let format_err = |source| DumpError::Copy {
        table: label.clone(),
        source,
    };
    let mut send = |cut: Cut, tx: mpsc::Sender<Cut>| {
        stats.merge(cut.stats);
        raw += cut.data.len() as u64;
        progress.chunk_done(&label, cut.data.len() as u64, cut.stats.rows);
        async move { tx.send(cut).await.is_ok() }
    };
    while let Some(data) = stream.next().await {
        let data = data.map_err(copy_err)?;
        scanner.feed(data).map_err(format_err)?;
        while let Some(cut) = scanner.next_cut() {
            if !send(cut, tx.clone()).await {
                // The uploader stopped: its error is the real cause.
                drop(tx);
                return Err(uploader_error(uploader).await);
            }
            any_sent = true;
        }
    }
    let last = scanner.finish().map_err(format_err)?;
    // An empty unit still gets one (empty) chunk: "no rows" ≠ "missing".
    let ok = (last.data.is_empty() && any_sent) || send(last, tx.clone()).await;
    drop(tx);
    if !ok {
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
