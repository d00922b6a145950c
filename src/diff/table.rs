//! One table in two snapshots, row by row: the chunks both list (same id, so the same
//! rows) are skipped unread, the rest are opened and their rows matched by key.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::key::MatchBy;
use super::rows::{each_row, encode, fields_of};
use super::spill::Spill;
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
        self.table.copy_columns()
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
    /// Both sides copy the same columns in the same order: equal tuples are then
    /// equal rows, so chunks with the same id may be skipped.
    pub fn same_layout(&self) -> bool {
        self.added.is_empty()
            && self.dropped.is_empty()
            && self
                .common
                .iter()
                .enumerate()
                .all(|(i, &(a, b))| a == i && b == i)
    }

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
    /// The parts the rows were spilled to disk in, when they did not fit in memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spilled_parts: Option<u64>,
}

/// Takes each batch of changed rows, in order (the rows file, the append-only check).
pub type Sink<'s> = &'s mut (dyn FnMut(&[Change]) -> Result<(), DiffError> + Send);

/// Changed rows handed to the sink at once.
const SINK_BATCH: usize = 4096;

/// Memory a held row costs beyond its key and bytes (map entry, vectors).
const ROW_OVERHEAD: usize = 64;

/// Compares the rows of one table from the chunks each side does not share (`a_bytes`:
/// the raw bytes of the first side's). The first side's rows are held by key within
/// `memory_bytes`; when they would not fit, both sides are spilled by key hash to
/// sealed temporary files and matched part by part (see [`super::spill`]).
pub async fn compare(
    (a, mut a_chunks, (a_bytes, a_rows)): (Side<'_>, Chunks<'_>, (u64, u64)),
    (b, mut b_chunks): (Side<'_>, Chunks<'_>),
    cols: &Columns,
    by: &MatchBy,
    memory_bytes: usize,
    sink: Option<Sink<'_>>,
) -> Result<TableCounts, DiffError> {
    let key_at: Vec<usize> = by
        .columns()
        .iter()
        .map(|k| cols.names.iter().position(|n| n == k).expect("usable"))
        .collect();
    let (a_key, b_key): (Vec<usize>, Vec<usize>) = if *by == MatchBy::WholeRows {
        cols.common.iter().copied().unzip()
    } else {
        key_at.iter().map(|&i| cols.common[i]).unzip()
    };
    let mut m = Matcher {
        by,
        cols,
        a_format: a.format,
        held: HashMap::new(),
        held_bytes: 0,
        memory_bytes,
        table: b.table.name.plain(),
        counts: TableCounts::default(),
        per_column: vec![0; cols.common.len()],
        pending: Vec::new(),
        sink,
    };
    // A held row costs its bytes, its key (at most as much again) and its entry.
    let need = (a_bytes as usize)
        .saturating_mul(2)
        .saturating_add((a_rows as usize).saturating_mul(ROW_OVERHEAD));
    let mut spill = if need > memory_bytes {
        Some(Spill::new(need.div_ceil(memory_bytes / 2).min(MAX_PARTS))?)
    } else {
        None
    };
    while let Some(chunk) = a_chunks.try_next().await? {
        m.counts.chunks_read += 1;
        m.counts.bytes_read += chunk.len() as u64;
        each_row(&chunk, a.format, |row| {
            let key = encode(&row.fields, a_key.iter().copied());
            match spill.as_mut() {
                Some(s) => s.put(0, &key, row.raw),
                None => m.hold(key, row.raw),
            }
        })?;
    }
    while let Some(chunk) = b_chunks.try_next().await? {
        m.counts.chunks_read += 1;
        m.counts.bytes_read += chunk.len() as u64;
        each_row(&chunk, b.format, |row| {
            let key = encode(&row.fields, b_key.iter().copied());
            match spill.as_mut() {
                Some(s) => s.put(1, &key, row.raw),
                None => m.meet(&key, row.raw, &row.fields),
            }
        })?;
    }
    match spill.as_mut() {
        None => m.gone()?,
        Some(s) => {
            m.counts.spilled_parts = Some(s.parts() as u64);
            s.flush()?;
            for part in 0..s.parts() {
                s.each(part, 0, |key, raw| m.hold(key.to_vec(), raw))?;
                s.each(part, 1, |key, raw| {
                    let fields = fields_of(raw, b.format)?;
                    m.meet(key, raw, &fields)
                })?;
                m.gone()?;
            }
        }
    }
    m.send()?;
    let Matcher {
        mut counts,
        per_column,
        ..
    } = m;
    counts.changed_columns = cols
        .names
        .iter()
        .zip(per_column)
        .filter(|(_, n)| *n > 0)
        .map(|(c, n)| (c.clone(), n))
        .collect();
    Ok(counts)
}

/// Parts a spilled table is matched in, at most (two files each).
const MAX_PARTS: usize = 1024;

/// Matches the later side's rows against the earlier side's, held by key.
struct Matcher<'m, 's> {
    by: &'m MatchBy,
    cols: &'m Columns,
    a_format: CopyFormat,
    held: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    held_bytes: usize,
    memory_bytes: usize,
    table: String,
    counts: TableCounts,
    per_column: Vec<u64>,
    pending: Vec<Change>,
    sink: Option<Sink<'s>>,
}

impl Matcher<'_, '_> {
    fn hold(&mut self, key: Vec<u8>, raw: &[u8]) -> Result<(), DiffError> {
        self.held_bytes += key.len() + raw.len() + ROW_OVERHEAD;
        if self.held_bytes > self.memory_bytes {
            return Err(DiffError::TooManyChanges {
                table: self.table.clone(),
                bytes: self.memory_bytes,
            });
        }
        self.held.entry(key).or_default().push(raw.to_vec());
        Ok(())
    }

    /// A row of the later side: inserted, unchanged, or updated.
    fn meet(&mut self, key: &[u8], raw: &[u8], fields: &[Option<&[u8]>]) -> Result<(), DiffError> {
        let Some(olds) = self.held.get_mut(key) else {
            self.counts.inserted += 1;
            return self.changed(|| Change::Insert(raw.to_vec()));
        };
        let old = olds.pop().expect("no empty list is held");
        if olds.is_empty() {
            self.held.remove(key);
        }
        self.held_bytes -= key.len() + old.len() + ROW_OVERHEAD;
        if *self.by == MatchBy::WholeRows {
            return Ok(());
        }
        let old_fields = fields_of(&old, self.a_format)?;
        let columns: Vec<usize> = self
            .cols
            .common
            .iter()
            .enumerate()
            .filter(|(_, (ia, ib))| old_fields.get(*ia) != fields.get(*ib))
            .map(|(i, _)| i)
            .collect();
        if columns.is_empty() {
            return Ok(());
        }
        self.counts.updated += 1;
        for &i in &columns {
            self.per_column[i] += 1;
        }
        self.changed(|| Change::Update {
            new: raw.to_vec(),
            old: old.clone(),
            columns,
        })
    }

    /// The held rows no later row matched: deleted, in key order, so two runs list
    /// them alike.
    fn gone(&mut self) -> Result<(), DiffError> {
        let mut gone: Vec<_> = std::mem::take(&mut self.held).into_iter().collect();
        self.held_bytes = 0;
        gone.sort_unstable_by(|x, y| x.0.cmp(&y.0));
        for (_, olds) in gone {
            for old in olds {
                self.counts.deleted += 1;
                self.changed(move || Change::Delete(old))?;
            }
        }
        Ok(())
    }

    fn changed(&mut self, change: impl FnOnce() -> Change) -> Result<(), DiffError> {
        if self.sink.is_some() {
            self.pending.push(change());
            if self.pending.len() >= SINK_BATCH {
                self.send()?;
            }
        }
        Ok(())
    }

    fn send(&mut self) -> Result<(), DiffError> {
        if let Some(sink) = self.sink.as_mut() {
            if !self.pending.is_empty() {
                sink(&self.pending)?;
            }
        }
        self.pending.clear();
        Ok(())
    }
}

/// The chunks of each backup that the other does not list (by id, counted: a chunk
/// listed twice on one side and once on the other is read once), and how many were
/// skipped in all. Chunks without ids (formats before 5), or of tables whose columns
/// are not laid out alike on both sides, are all read.
pub fn unshared<'r>(
    a: &'r TableRecord,
    b: &'r TableRecord,
    cols: &Columns,
) -> (Vec<&'r ChunkRecord>, Vec<&'r ChunkRecord>, u64) {
    if !cols.same_layout() {
        return (a.chunks.iter().collect(), b.chunks.iter().collect(), 0);
    }
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
pub fn comparable(a: &Side<'_>, b: &Side<'_>, cols: &Columns) -> Result<(), String> {
    if a.format != b.format {
        return Err(format!(
            "the table was copied in COPY {} format in one snapshot and {} in the other",
            format_name(a.format),
            format_name(b.format)
        ));
    }
    // Binary arrays and composites carry their element types' OIDs: in a database
    // where those types have other OIDs, every such value would differ.
    let (ac, bc): (Vec<_>, Vec<_>) = (a.copy_columns().collect(), b.copy_columns().collect());
    let moved: Vec<&str> = cols
        .common
        .iter()
        .filter(|&&(i, j)| ac[i].type_oid != bc[j].type_oid)
        .map(|&(i, _)| ac[i].name.as_str())
        .collect();
    if a.format == CopyFormat::Binary && !moved.is_empty() {
        return Err(format!(
            "the types of {} have other OIDs in one snapshot than in the other (another \
             database): their binary values cannot be compared",
            moved.join(", ")
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
