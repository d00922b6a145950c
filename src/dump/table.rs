//! Streams one table: COPY out → tuple scanner → sealed chunks → store.

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::{DumpError, DumpOptions};
use crate::archive::{BackupWriter, ChunkRecord, TableRecord};
use crate::catalog::Table;
use crate::codec::on_cpu_pool;
use crate::pg::PgError;
use crate::pgcopy::{Cut, TupleScanner, TupleStats};
use crate::progress::Progress;

/// Chunks read ahead of the uploader per table: bounds memory at about
/// `(2 + QUEUE) × chunk_bytes` per worker whatever the table's size.
const QUEUE: usize = 2;

struct Piece {
    index: u64,
    is_final: bool,
    cut: Cut,
}

pub(super) async fn dump_table(
    client: &Client,
    table: &Table,
    table_no: u32,
    writer: &Arc<BackupWriter>,
    opts: &DumpOptions,
    progress: &dyn Progress,
) -> Result<TableRecord, DumpError> {
    let label = table.name.plain();
    progress.table_started(&label);
    let sql = table.copy_statement("TO STDOUT");
    let copy_err = |e| PgError::query(format!("copy out {label}"), e);
    let stream = client.copy_out(&sql).await.map_err(copy_err)?;
    futures::pin_mut!(stream);

    let (tx, rx) = mpsc::channel::<Piece>(QUEUE);
    let uploader = tokio::spawn(upload(writer.clone(), table_no, rx));

    let mut scanner = TupleScanner::new();
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
        scanner.feed(&data).map_err(format_err)?;
        if scanner.ready_bytes() >= opts.chunk_bytes {
            let cut = scanner.cut();
            if let Some(prev) = held.replace(cut) {
                if !send(prev, false, tx.clone()).await {
                    break;
                }
            }
        }
    }
    let last = scanner.finish().map_err(format_err)?;
    match held {
        Some(prev) if last.data.is_empty() => {
            send(prev, true, tx.clone()).await;
        }
        Some(prev) => {
            send(prev, false, tx.clone()).await;
            send(last, true, tx.clone()).await;
        }
        // An empty table still gets one (empty) FINAL chunk: "no rows" ≠ "missing".
        None => {
            send(last, true, tx.clone()).await;
        }
    }
    drop(tx);
    let chunks = uploader
        .await
        .map_err(|e| DumpError::Worker(e.to_string()))??;
    progress.table_finished(&label, stats.rows);
    Ok(TableRecord {
        table_no,
        oid: table.oid,
        schema: table.name.schema.clone(),
        name: table.name.name.clone(),
        rows: stats.rows,
        raw_bytes: raw,
        checksum: format!("{:032x}", stats.checksum),
        chunks,
    })
}

/// Seals each piece on the rayon pool and uploads it, in order.
async fn upload(
    writer: Arc<BackupWriter>,
    table_no: u32,
    mut rx: mpsc::Receiver<Piece>,
) -> Result<Vec<ChunkRecord>, DumpError> {
    let sealer = writer.sealer();
    let mut records = Vec::new();
    while let Some(p) = rx.recv().await {
        let s = sealer.clone();
        let data = p.cut.data.clone();
        let (index, is_final) = (p.index, p.is_final);
        let sealed = on_cpu_pool(move || s.seal(table_no, index, is_final, &data))
            .await
            .ok_or_else(|| DumpError::Worker("the sealing thread panicked".into()))??;
        let rec = writer
            .put_chunk(
                table_no,
                p.index,
                sealed,
                p.cut.data.len() as u64,
                p.cut.stats.rows,
            )
            .await
            .map_err(DumpError::from)?;
        records.push(rec);
    }
    Ok(records)
}
