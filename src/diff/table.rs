//! One table in two snapshots, row by row: the chunks both list (same id, so the same
//! rows) are skipped unread, the rest are opened and their rows matched by key.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::key::{match_by, MatchBy};
use super::rows::{each_row, encode, fields_of};
use super::DiffError;
use crate::archive::{BackupReader, ChunkRecord, CopyFormat, TableRecord};
use crate::catalog::{Catalog, Table};
use crate::codec::on_cpu_pool;

/// Chunks fetched and opened at once per table.
const CHUNKS_AT_ONCE: usize = 8;

/// A table as one snapshot holds it: a backup, or the live database.
#[derive(Clone, Copy)]
pub struct Side<'a> {
    /// The catalog the table's column types are read in.
    pub catalog: &'a Catalog,
    pub table: &'a Table,
    pub format: CopyFormat,
}

impl Side<'_> {
    /// The columns COPY carries, in order: generated columns are never copied.
    pub fn copy_columns(&self) -> impl Iterator<Item = &crate::catalog::Column> {
        self.table.columns.iter().filter(|c| c.generated.is_none())
    }
}

/// The tuples of the chunks one side does not share with the other, in order.
pub type Chunks<'a> = BoxStream<'a, Result<Bytes, DiffError>>;

/// A changed row, as the chunks hold it, for the rows file.
#[derive(Debug, Clone)]
pub enum Change {
    Insert(Vec<u8>),
    Delete(Vec<u8>),
    /// `columns`: positions in [`Columns::common`] whose values differ.
    Update {
        old: Vec<u8>,
        new: Vec<u8>,
        columns: Vec<usize>,
    },
}

/// The columns both snapshots hold with the same name and type, by position on each
/// side; the others are named.
#[derive(Debug, Clone)]
pub struct Columns {
    pub common: Vec<(usize, usize)>,
    pub names: Vec<String>,
    pub added: Vec<String>,
    pub dropped: Vec<String>,
}

impl Columns {
    pub fn of(a: &Side<'_>, b: &Side<'_>) -> Columns {
        let a_cols: Vec<_> = a.copy_columns().collect();
        let b_cols: Vec<_> = b.copy_columns().collect();
        let mut common = Vec::new();
        let mut names = Vec::new();
        let mut dropped = Vec::new();
        for (ia, ca) in a_cols.iter().enumerate() {
            match b_cols
                .iter()
                .position(|cb| cb.name == ca.name && cb.type_sql == ca.type_sql)
            {
                Some(ib) => {
                    common.push((ia, ib));
                    names.push(ca.name.clone());
                }
                None => dropped.push(format!("{} {}", ca.name, ca.type_sql)),
            }
        }
        let added = b_cols
            .iter()
            .enumerate()
            .filter(|(ib, _)| !common.iter().any(|(_, c)| c == ib))
            .map(|(_, c)| format!("{} {}", c.name, c.type_sql))
            .collect();
        Columns {
            common,
            names,
            added,
            dropped,
        }
    }
}

/// What changed in one table.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TableCounts {
    pub inserted: u64,
    pub deleted: u64,
    pub updated: u64,
    /// Updated rows per column whose value changed, in column order.
    pub changed_columns: Vec<(String, u64)>,
    /// Chunks both snapshots list, skipped without being read.
    pub chunks_skipped: u64,
    pub chunks_read: u64,
    /// Raw bytes of the chunks read.
    pub bytes_read: u64,
}

/// Compares the rows of one table from the chunks each side does not share; `keep`
/// collects each changed row for the rows file. Holds the first snapshot's rows of
/// those chunks, up to `memory_bytes`.
pub async fn compare(
    (a, mut a_chunks): (Side<'_>, Chunks<'_>),
    (b, mut b_chunks): (Side<'_>, Chunks<'_>),
    cols: &Columns,
    memory_bytes: usize,
    mut keep: Option<&mut Vec<Change>>,
) -> Result<(MatchBy, TableCounts), DiffError> {
    let by = match_by(b.table, |k| cols.names.iter().any(|n| n == k));
    let key_at: Vec<usize> = by
        .columns()
        .iter()
        .map(|k| cols.names.iter().position(|n| n == k).expect("usable"))
        .collect();
    let (a_key, b_key): (Vec<usize>, Vec<usize>) = if by == MatchBy::WholeRows {
        cols.common.iter().copied().unzip()
    } else {
        key_at.iter().map(|&i| cols.common[i]).unzip()
    };
    let mut counts = TableCounts::default();
    let mut per_column = vec![0u64; cols.common.len()];
    let table_name = b.table.name.plain();

    // The first snapshot's rows of the chunks that differ, by key.
    let mut held: HashMap<Vec<u8>, Vec<Vec<u8>>> = HashMap::new();
    let mut held_bytes = 0usize;
    while let Some(chunk) = a_chunks.try_next().await? {
        counts.chunks_read += 1;
        counts.bytes_read += chunk.len() as u64;
        each_row(&chunk, a.format, |row| {
            let key = encode(&row.fields, a_key.iter().copied());
            held_bytes += key.len() + row.raw.len() + 64;
            if held_bytes > memory_bytes {
                return Err(DiffError::TooManyChanges {
                    table: table_name.clone(),
                    bytes: memory_bytes,
                });
            }
            held.entry(key).or_default().push(row.raw.to_vec());
            Ok(())
        })?;
    }
    while let Some(chunk) = b_chunks.try_next().await? {
        counts.chunks_read += 1;
        counts.bytes_read += chunk.len() as u64;
        each_row(&chunk, b.format, |row| {
            let key = encode(&row.fields, b_key.iter().copied());
            let Some(olds) = held.get_mut(&key) else {
                counts.inserted += 1;
                if let Some(k) = keep.as_deref_mut() {
                    k.push(Change::Insert(row.raw.to_vec()));
                }
                return Ok(());
            };
            let old = olds.pop().expect("no empty list is held");
            if olds.is_empty() {
                held.remove(&key);
            }
            if by == MatchBy::WholeRows {
                return Ok(());
            }
            let old_fields = fields_of(&old, a.format)?;
            let changed: Vec<usize> = cols
                .common
                .iter()
                .enumerate()
                .filter(|(_, (ia, ib))| old_fields.get(*ia) != row.fields.get(*ib))
                .map(|(i, _)| i)
                .collect();
            if changed.is_empty() {
                return Ok(());
            }
            counts.updated += 1;
            for &i in &changed {
                per_column[i] += 1;
            }
            if let Some(k) = keep.as_deref_mut() {
                k.push(Change::Update {
                    new: row.raw.to_vec(),
                    old,
                    columns: changed,
                });
            }
            Ok::<_, DiffError>(())
        })?;
    }
    // Deleted rows in key order, so two runs list them alike.
    let mut gone: Vec<_> = held.into_iter().collect();
    gone.sort_unstable_by(|x, y| x.0.cmp(&y.0));
    for (_, olds) in gone {
        counts.deleted += olds.len() as u64;
        if let Some(k) = keep.as_deref_mut() {
            k.extend(olds.into_iter().map(Change::Delete));
        }
    }
    counts.changed_columns = cols
        .names
        .iter()
        .zip(per_column)
        .filter(|(_, n)| *n > 0)
        .map(|(c, n)| (c.clone(), n))
        .collect();
    Ok((by, counts))
}

/// The chunks of each backup that the other does not list (by id, counted: a chunk
/// listed twice on one side and once on the other is read once), and how many were
/// skipped in all. Chunks without ids (formats before 5) are all read.
pub fn unshared<'r>(
    a: &'r TableRecord,
    b: &'r TableRecord,
) -> (Vec<&'r ChunkRecord>, Vec<&'r ChunkRecord>, u64) {
    let mut shared = ids(a);
    let in_b = ids(b);
    shared.retain(|id, n| {
        *n = (*n).min(in_b.get(id).copied().unwrap_or(0));
        *n > 0
    });
    let skipped = 2 * shared.values().sum::<usize>() as u64;
    (not_in(a, shared.clone()), not_in(b, shared), skipped)
}

/// How many times `r` lists each chunk id.
pub fn ids(r: &TableRecord) -> HashMap<&str, usize> {
    let mut m: HashMap<&str, usize> = HashMap::new();
    for id in r.chunks.iter().filter_map(|c| c.id.as_deref()) {
        *m.entry(id).or_default() += 1;
    }
    m
}

/// The chunks of `r` left once each id of `shared` is taken as many times as it says.
pub fn not_in<'r>(r: &'r TableRecord, mut shared: HashMap<&str, usize>) -> Vec<&'r ChunkRecord> {
    r.chunks
        .iter()
        .filter(
            |c| match c.id.as_deref().and_then(|id| shared.get_mut(id)) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    false
                }
                _ => true,
            },
        )
        .collect()
}

/// A backup's chunks' tuples, fetched and opened a few at a time, in order.
pub fn open_chunks<'s>(
    reader: &'s BackupReader,
    record: &'s TableRecord,
    chunks: Vec<&'s ChunkRecord>,
) -> Chunks<'s> {
    let shared = Arc::new(record.clone());
    futures::stream::iter(chunks)
        .map(move |chunk| {
            let record = Arc::clone(&shared);
            async move {
                let fetched = reader.fetch_chunk(&record, chunk).await?;
                let (reader, chunk) = (reader.clone(), chunk.clone());
                on_cpu_pool(chunk.raw_len as usize, move || {
                    reader.open_chunk(&record, &chunk, fetched)
                })
                .await
                .ok_or(DiffError::Worker)?
                .map(Bytes::from)
                .map_err(DiffError::from)
            }
        })
        .buffered(CHUNKS_AT_ONCE)
        .boxed()
}

/// Whether the two sides' rows can be compared field by field.
pub fn comparable(a: &Side<'_>, b: &Side<'_>) -> Result<(), String> {
    if a.format != b.format {
        return Err(format!(
            "the table was copied in COPY {} format in one snapshot and {} in the other",
            format_name(a.format),
            format_name(b.format)
        ));
    }
    Ok(())
}

fn format_name(f: CopyFormat) -> &'static str {
    match f {
        CopyFormat::Binary => "binary",
        CopyFormat::Text => "text",
    }
}
