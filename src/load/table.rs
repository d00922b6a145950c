//! Loads one table, or one part of a split table: chunks fetched and opened ahead
//! (bounded), checked against the manifest, type OIDs inside values rewritten for the
//! target, streamed into `COPY … FROM STDIN (FORMAT binary)` in one transaction. A
//! table the backup copied in text format is streamed into `COPY … FROM STDIN` in
//! text format, as is: its values name objects, never OIDs.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt, StreamExt, TryStreamExt};
use tokio_postgres::Client;

use super::{LoadError, LoadedTable};
use crate::archive::{ArchiveError, BackupReader, ChunkRecord, CopyFormat, TableRecord};
use crate::catalog::text_session;
use crate::catalog::types::{TypeInfo, TypeShape};
use crate::catalog::Table;
use crate::codec::on_cpu_pool;
use crate::mask::rewrite::TableMask;
use crate::pg::PgError;
use crate::pgcopy::remap::{RemapError, Remapper, Shape, TypeGraph};
use crate::pgcopy::{header, scan_text_rows, scan_tuples, TupleStats, TRAILER};
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

fn shape(s: &TypeShape) -> Shape {
    match s {
        TypeShape::Scalar => Shape::Opaque,
        TypeShape::Array { elem } => Shape::Array { elem: *elem },
        TypeShape::Composite { fields } => Shape::Composite {
            fields: fields.clone(),
        },
        TypeShape::Domain { base } => Shape::Domain { base: *base },
        TypeShape::Range { subtype } => Shape::Range { subtype: *subtype },
        TypeShape::Multirange { range } => Shape::Multirange { range: *range },
    }
}

/// How to rewrite the type OIDs inside this table's values for the target database
/// `client` is connected to (source OIDs, as in `types`, to the target's). Most tables
/// carry none: then nothing is asked of the server and the remapper is the identity.
/// Otherwise the target's OIDs are looked up by type name, in one query.
///
/// Its [`Remapper::inverse`] turns a restored table's binary COPY back into the bytes
/// the backup holds, so that its checksum can be compared with the manifest's.
pub async fn type_remapper(
    client: &Client,
    table: &Table,
    types: &[TypeInfo],
) -> Result<Remapper, LoadError> {
    let label = table.name.plain();
    let remap_err = |source| LoadError::Remap {
        table: label.clone(),
        chunk: None,
        source,
    };
    let graph = TypeGraph::new(types.iter().map(|t| (t.oid, shape(&t.shape))));
    // The columns COPY carries, in its order (see `Table::copy_column_list`).
    let columns: Vec<u32> = table.copy_columns().map(|c| c.type_oid).collect();
    let needed: Vec<u32> = graph
        .embedded_oids(&columns)
        .map_err(remap_err)?
        .into_iter()
        .collect();
    if needed.is_empty() {
        return Ok(Remapper::default());
    }
    let names: HashMap<u32, &str> = types.iter().map(|t| (t.oid, t.name.as_str())).collect();
    let wanted: Vec<&str> = needed
        .iter()
        .map(|o| names.get(o).copied().ok_or(RemapError::NoTarget(*o)))
        .collect::<Result<_, _>>()
        .map_err(remap_err)?;
    let rows = client
        .query(
            "SELECT pg_catalog.to_regtype(u.n)::pg_catalog.oid \
             FROM pg_catalog.unnest($1::pg_catalog.text[]) WITH ORDINALITY AS u(n, i) \
             ORDER BY u.i",
            &[&wanted],
        )
        .await
        .map_err(|e| PgError::query(format!("look up the types inside {label}"), e))?;
    let mut target = HashMap::new();
    let mut missing = Vec::new();
    for ((oid, name), row) in needed.iter().zip(&wanted).zip(&rows) {
        match row.get::<_, Option<u32>>(0) {
            Some(new) => {
                target.insert(*oid, new);
            }
            None => missing.push(name.to_string()),
        }
    }
    if !missing.is_empty() {
        return Err(LoadError::MissingTypes {
            table: label,
            types: missing,
        });
    }
    graph.remapper(&columns, &target).map_err(remap_err)
}

/// One part of a table to load, and how.
pub(super) struct Part<'a> {
    pub table: &'a Table,
    /// The table's number in the manifest.
    pub table_no: u32,
    pub part: u32,
    pub freeze: bool,
    /// Masks applied to its rows on the way in (`--mask`).
    pub mask: Option<Arc<TableMask>>,
}

/// Streams one part (or the whole table, part 0) into `COPY … FROM STDIN`, inside
/// the caller's transaction. `freeze` when the caller created or emptied the table in
/// that transaction: COPY then writes the rows already frozen, sparing the first
/// VACUUM a rewrite of every page.
pub(super) async fn copy_part(
    client: &Client,
    target: Part<'_>,
    reader: &BackupReader,
    progress: &dyn Progress,
) -> Result<LoadedTable, LoadError> {
    let Part {
        table,
        table_no,
        part,
        freeze,
        mask,
    } = target;
    let label = table.name.plain();
    let rec = reader
        .manifest()
        .table(table_no)
        .ok_or_else(|| ArchiveError::Corrupt(format!("the manifest has no data for {label}")))?
        .clone();
    let (want_rows, want_checksum) = expected(&rec, part)?;
    let text = rec.copy_format == CopyFormat::Text;
    let remap = Arc::new(if text {
        Remapper::default()
    } else {
        type_remapper(client, table, &reader.manifest().catalog.types).await?
    });
    progress.table_started(&label);
    let pg = |what: &str, e| PgError::query(format!("{what} {label}"), e);
    if text {
        // The values were printed under these settings; read them back under them.
        client
            .batch_execute(&text_session(true))
            .await
            .map_err(|e| pg("fix the settings text COPY depends on for", e))?;
    }
    let chunks: Vec<ChunkRecord> = rec.part_chunks(part).cloned().collect();
    let opened = futures::stream::iter(chunks)
        .map(|chunk| {
            let (reader, rec, label) = (reader.clone(), rec.clone(), label.clone());
            let (remap, mask) = (remap.clone(), mask.clone());
            async move {
                let object = reader.fetch_chunk(&rec, &chunk).await?;
                let index = chunk.index;
                on_cpu_pool(
                    chunk.raw_len as usize,
                    move || -> Result<(Vec<u8>, TupleStats, u64), LoadError> {
                        let mut data = reader.open_chunk(&rec, &chunk, object)?;
                        let scanned = if text {
                            scan_text_rows(&data)
                        } else {
                            scan_tuples(&data)
                        };
                        let stats = scanned.map_err(|source| LoadError::Tuples {
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
                        // After the checksum, which covers the bytes as backed up.
                        remap
                            .rewrite(&mut data)
                            .map_err(|source| LoadError::Remap {
                                table: label,
                                chunk: Some(index),
                                source,
                            })?;
                        if let Some(mask) = &mask {
                            data = mask.rewrite(&data)?;
                        }
                        Ok((data, stats, index))
                    },
                )
                .await
                .ok_or_else(|| LoadError::Worker("a decoding thread panicked".into()))?
            }
        })
        .buffered(READ_AHEAD);
    futures::pin_mut!(opened);
    // The first chunk is fetched and opened before COPY starts: the server's
    // transaction then never waits on the store, and a small table's rows go out at
    // once, header and trailer with them.
    let first = opened.try_next().await?;

    let options = match (text, freeze) {
        (false, true) => "FORMAT binary, FREEZE",
        (false, false) => "FORMAT binary",
        (true, true) => "FORMAT text, FREEZE",
        (true, false) => "FORMAT text",
    };
    let sql = table.copy_statement("FROM STDIN", options);
    let sink = client
        .copy_in::<_, Bytes>(&sql)
        .await
        .map_err(|e| pg("copy into", e))?;
    futures::pin_mut!(sink);
    // Queued, not sent: it goes out with the first chunk.
    if !text {
        sink.feed(Bytes::copy_from_slice(&header()))
            .await
            .map_err(|e| pg("copy into", e))?;
    }

    let mut total = TupleStats::default();
    let mut raw = 0u64;
    let mut next = first;
    while let Some((data, stats, _)) = next {
        total.merge(stats);
        raw += data.len() as u64;
        progress.chunk_done(&label, data.len() as u64, stats.rows);
        sink.send(Bytes::from(data))
            .await
            .map_err(|e| pg("copy into", e))?;
        next = opened.try_next().await?;
    }
    if format!("{:032x}", total.checksum) != want_checksum {
        return Err(LoadError::Mismatch {
            table: label.clone(),
            what: "the content checksum".into(),
            got: format!("{:032x}", total.checksum),
            want: want_checksum,
        });
    }
    if !text {
        sink.send(Bytes::from_static(&TRAILER))
            .await
            .map_err(|e| pg("copy into", e))?;
    }
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
    Ok(LoadedTable {
        name: label.clone(),
        rows,
        raw_bytes: raw,
        error: None,
    })
}
