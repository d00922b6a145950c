//! Loads one table, or one part of a split table: chunks fetched and opened ahead
//! (bounded), checked against the manifest, streamed into
//! `COPY … FROM STDIN (FORMAT binary)` in one transaction.

use bytes::Bytes;
use futures::{SinkExt, StreamExt, TryStreamExt};
use tokio_postgres::Client;

use super::{LoadError, LoadedTable};
use crate::archive::{ArchiveError, BackupReader, ChunkRecord, TableRecord};
use crate::catalog::Table;
use crate::codec::on_cpu_pool;
use crate::pg::PgError;
use crate::pgcopy::{header, scan_tuples, TupleStats, TRAILER};
use crate::progress::Progress;

/// Chunks fetched and opened ahead of the one being sent.
const READ_AHEAD: usize = 2;

/// The rows and checksum the manifest promises for a part (or the whole table).
fn expected(rec: &TableRecord, part: u32) -> Result<(u64, String), ArchiveError> {
    rec.effective_parts()
        .into_iter()
        .find(|p| p.part == part)
        .map(|p| (p.rows, p.checksum))
        .ok_or_else(|| {
            ArchiveError::Corrupt(format!(
                "the manifest has chunks of {}.{} part {part} but no such part",
                rec.schema, rec.name
            ))
        })
}

pub(super) async fn load_unit(
    client: &Client,
    table: &Table,
    table_no: u32,
    part: u32,
    reader: &BackupReader,
    progress: &dyn Progress,
) -> Result<LoadedTable, LoadError> {
    let label = table.name.plain();
    let rec = reader
        .manifest()
        .table(table_no)
        .ok_or_else(|| ArchiveError::Corrupt(format!("the manifest has no data for {label}")))?
        .clone();
    let (want_rows, want_checksum) = expected(&rec, part)?;
    progress.table_started(&label);
    let pg = |what: &str, e| PgError::query(format!("{what} {label}"), e);
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| pg("start loading", e))?;
    // A table loaded whole is emptied in the loading transaction: then COPY may write
    // its rows already frozen, sparing the first VACUUM a full rewrite of hint bits.
    // Parts of a split table share the table with concurrent loaders, so they cannot.
    let whole = rec.parts.is_empty();
    if whole {
        client
            .batch_execute(&format!("TRUNCATE {}", table.name))
            .await
            .map_err(|e| pg("empty", e))?;
    }
    let options = if whole {
        "FORMAT binary, FREEZE"
    } else {
        "FORMAT binary"
    };
    let sql = table.copy_statement("FROM STDIN", options);
    let sink = client
        .copy_in::<_, Bytes>(&sql)
        .await
        .map_err(|e| pg("copy into", e))?;
    futures::pin_mut!(sink);
    sink.send(Bytes::copy_from_slice(&header()))
        .await
        .map_err(|e| pg("copy into", e))?;

    let chunks: Vec<ChunkRecord> = rec.part_chunks(part).cloned().collect();
    let opened = futures::stream::iter(chunks)
        .map(|chunk| {
            let (reader, rec, label) = (reader.clone(), rec.clone(), label.clone());
            async move {
                let object = reader.fetch_chunk(&rec, &chunk).await?;
                let index = chunk.index;
                on_cpu_pool(move || -> Result<(Vec<u8>, TupleStats, u64), LoadError> {
                    let data = reader.open_chunk(&rec, &chunk, &object)?;
                    let stats = scan_tuples(&data).map_err(|source| LoadError::Tuples {
                        table: label.clone(),
                        chunk: index,
                        source,
                    })?;
                    if stats.rows != chunk.rows {
                        return Err(LoadError::Mismatch {
                            table: label,
                            what: format!("the row count of chunk {index}"),
                            got: stats.rows.to_string(),
                            want: chunk.rows.to_string(),
                        });
                    }
                    Ok((data, stats, index))
                })
                .await
                .ok_or_else(|| LoadError::Worker("a decoding thread panicked".into()))?
            }
        })
        .buffered(READ_AHEAD);
    futures::pin_mut!(opened);

    let mut total = TupleStats::default();
    let mut raw = 0u64;
    while let Some((data, stats, _)) = opened.try_next().await? {
        total.merge(stats);
        raw += data.len() as u64;
        progress.chunk_done(&label, data.len() as u64, stats.rows);
        sink.send(Bytes::from(data))
            .await
            .map_err(|e| pg("copy into", e))?;
    }
    if format!("{:032x}", total.checksum) != want_checksum {
        return Err(LoadError::Mismatch {
            table: label.clone(),
            what: "the content checksum".into(),
            got: format!("{:032x}", total.checksum),
            want: want_checksum,
        });
    }
    sink.send(Bytes::from_static(&TRAILER))
        .await
        .map_err(|e| pg("copy into", e))?;
    let rows = sink
        .as_mut()
        .finish()
        .await
        .map_err(|e| pg("copy into", e))?;
    if rows != want_rows {
        return Err(LoadError::Mismatch {
            table: label.clone(),
            what: "the number of rows loaded".into(),
            got: rows.to_string(),
            want: want_rows.to_string(),
        });
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| pg("commit", e))?;
    progress.table_finished(&label, rows);
    Ok(LoadedTable {
        name: label.clone(),
        rows,
        raw_bytes: raw,
    })
}
