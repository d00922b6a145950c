//! Diff: what changed in each table between two snapshots, row by row, with no
//! database running. Chunks both snapshots list (format 5: same id, same rows) are
//! skipped without being read or decrypted; only the rows of the others are decoded
//! and matched, by primary key, else by a unique NOT NULL key, else as a multiset of
//! whole rows (see [`key`]). Older formats have no ids: every chunk is read.

mod files;
pub mod key;
mod live;
pub mod merge;
mod render;
mod rows;
mod spill;
mod table;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use thiserror::Error;

pub use self::files::RowsFormat;
use self::files::TableFile;
use self::key::MatchBy;
pub use self::live::Live;
use self::live::LiveTable;
use self::table::{Change, Columns, Side, TableCounts};
use crate::archive::{ArchiveError, BackupReader, ChunkRecord, TableRecord};
use crate::catalog::{Catalog, QualName};
use crate::error::{Class, Classify};
use crate::pg::PgError;
use crate::pgcopy::CopyFormatError;
use crate::plan::pattern::Pattern;
use crate::plan::select::{SelectError, Selection};
use crate::progress::Progress;

/// Memory for the first snapshot's rows of the chunks that differ, per table.
pub const DEFAULT_MEMORY_BYTES: usize = 128 << 20;

/// Rows of an append-only table named in the report, at most.
const NAMED_ROWS: usize = 20;

#[derive(Debug, Error)]
pub enum DiffError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("a chunk's rows are malformed: {0}")]
    Format(#[from] CopyFormatError),
    #[error(
        "{table}: the rows that differ between the snapshots need more than {} MiB of \
         memory",
        bytes >> 20
    )]
    TooManyChanges { table: String, bytes: usize },
    #[error("cannot write the changed rows: {0}")]
    Decode(String),
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error("could not write the rows file: {0}")]
    Io(#[from] std::io::Error),
    #[error("a diff worker failed")]
    Worker,
    #[error("the rows spilled to a temporary file could not be read back: {0}")]
    Spill(String),
    #[error(transparent)]
    Pg(#[from] PgError),
    #[error("cannot merge {0}")]
    Merge(String),
    #[error(
        "{0}: the live table read differently the second time (it should not, inside \
         one transaction): run the diff again"
    )]
    Unstable(String),
}

impl Classify for DiffError {
    fn class(&self) -> Class {
        match self {
            DiffError::Archive(e) => e.class(),
            DiffError::Format(_) => Class::Corrupt,
            DiffError::Select(_) | DiffError::Merge(_) => Class::Usage,
            DiffError::Pg(e) => e.class(),
            DiffError::Io(_) => Class::Io,
            DiffError::TooManyChanges { .. }
            | DiffError::Decode(_)
            | DiffError::Worker
            | DiffError::Spill(_)
            | DiffError::Unstable(_) => Class::Internal,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            DiffError::Archive(e) => e.hint(),
            DiffError::Pg(e) => e.hint(),
            DiffError::TooManyChanges { .. } => Some(
                "diff fewer tables at once (-t), or give it more memory with --memory-mb".into(),
            ),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DiffOptions {
    /// Tables that may only grow: any row updated or deleted there is a violation.
    pub expect_append_only: Vec<Pattern>,
    pub memory_bytes: usize,
}

/// Where one table stands between the two snapshots.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Both,
    /// Only in the first snapshot: dropped since.
    OnlyFirst,
    /// Only in the second: created since.
    OnlySecond,
    /// In one snapshot only, the other being a partial backup (`-t`, `-n`) that left it
    /// out: nothing is known of its rows there.
    NotHeld,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableDiff {
    pub schema: String,
    pub name: String,
    pub presence: Presence,
    pub rows_first: u64,
    pub rows_second: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_by: Option<MatchBy>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub counts: Option<TableCounts>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub columns_added: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub columns_dropped: Vec<String>,
    /// Why the rows were not compared, when they were not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_compared: Option<String>,
    pub append_only: bool,
}

impl TableDiff {
    pub fn changed(&self) -> bool {
        !matches!(self.presence, Presence::Both)
            || self.not_compared.is_some()
            || !self.columns_added.is_empty()
            || !self.columns_dropped.is_empty()
            || self
                .counts
                .as_ref()
                .is_some_and(|c| c.inserted + c.deleted + c.updated > 0)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffOutcome {
    pub tables: Vec<TableDiff>,
    /// Lines written to the rows file.
    pub rows_written: u64,
    /// Append-only tables whose rows were updated or deleted, each with what and
    /// which rows.
    pub violations: Vec<String>,
    pub warnings: Vec<String>,
}

/// The later snapshot: another backup, or the database as it is now.
pub enum Later<'a> {
    Backup(&'a BackupReader),
    Live(&'a Live),
}

impl Later<'_> {
    /// A backup of some tables only (the live database holds them all).
    fn is_partial(&self) -> bool {
        matches!(self, Later::Backup(r) if r.manifest().selection.is_some())
    }

    fn catalog(&self) -> &Catalog {
        match self {
            Later::Backup(r) => &r.manifest().catalog,
            Later::Live(l) => &l.introspection.catalog,
        }
    }
}

/// Where changed rows go.
pub enum RowsOut<'w> {
    /// One JSON line per change, every table in one stream.
    JsonLines(&'w mut (dyn Write + Send)),
    /// One file per table in this (new, owner-only) folder.
    Files { dir: &'w Path, format: RowsFormat },
}

/// Compares the tables `sel` chooses (in either snapshot) between `first` and
/// `second`, writing every changed row to `rows` when given.
pub async fn run(
    first: &BackupReader,
    second: Later<'_>,
    sel: &Selection,
    opts: &DiffOptions,
    mut rows: Option<RowsOut<'_>>,
    progress: Arc<dyn Progress>,
) -> Result<DiffOutcome, DiffError> {
    let names = chosen_tables(&first.manifest().catalog, second.catalog(), sel)?;
    let mut out = DiffOutcome {
        tables: Vec::new(),
        rows_written: 0,
        violations: Vec::new(),
        warnings: Vec::new(),
    };
    progress.start("diff", names.len() as u64, 0);
    for name in &names {
        let label = name.plain();
        progress.table_started(&label);
        let a = side(first, name)?;
        let b = match &second {
            Later::Backup(r) => side(r, name)?.map(|(s, rec)| (s, Some(rec))),
            Later::Live(l) => l
                .introspection
                .catalog
                .tables
                .iter()
                .find(|t| t.name == *name && t.has_data())
                .map(|t| {
                    let side = Side {
                        catalog: &l.introspection.catalog,
                        table: t,
                        format: l.format(t),
                    };
                    (side, None)
                }),
        };
        let append_only = opts
            .expect_append_only
            .iter()
            .any(|p| p.matches_table(&name.schema, &name.name));
        let mut d = TableDiff {
            schema: name.schema.clone(),
            name: name.name.clone(),
            presence: Presence::Both,
            rows_first: a.map_or(0, |(_, r)| r.rows),
            rows_second: b.and_then(|(_, r)| r).map_or(0, |r| r.rows),
            matched_by: None,
            counts: None,
            columns_added: Vec::new(),
            columns_dropped: Vec::new(),
            not_compared: None,
            append_only,
        };
        match (a, b) {
            (Some((a, a_rec)), Some((b, b_rec))) => {
                let cols = Columns::of(&a, &b);
                d.columns_added.clone_from(&cols.added);
                d.columns_dropped.clone_from(&cols.dropped);
                if let Err(why) = table::comparable(&a, &b, &cols) {
                    d.not_compared = Some(why);
                } else {
                    let bytes = |c: &[&ChunkRecord]| {
                        (
                            c.iter().map(|c| c.raw_len).sum(),
                            c.iter().map(|c| c.rows).sum(),
                        )
                    };
                    let (a_chunks, a_bytes, b_chunks, skipped, memory) = match (&second, b_rec) {
                        (Later::Backup(r), Some(b_rec)) => {
                            let (ua, ub, skipped) = table::unshared(a_rec, b_rec, &cols);
                            let a_bytes = bytes(&ua);
                            let (ca, cb) = (
                                table::open_chunks(first, a_rec, ua),
                                table::open_chunks(r, b_rec, ub),
                            );
                            (ca, a_bytes, cb, skipped, opts.memory_bytes)
                        }
                        (Later::Backup(_), None) => {
                            unreachable!("a backup's table has its record")
                        }
                        (Later::Live(l), _) => {
                            let t = LiveTable {
                                table: b.table,
                                earlier: a_rec,
                                keys: first.chunk_keys(),
                                chunk_bytes: first.manifest().params.chunk_bytes,
                                match_ids: cols.same_layout(),
                            };
                            let scanned = l.scan(t, opts.memory_bytes).await?;
                            d.rows_second = scanned.rows;
                            let a_bytes = bytes(&scanned.left);
                            (
                                table::open_chunks(first, a_rec, scanned.left),
                                a_bytes,
                                scanned.chunks,
                                scanned.skipped,
                                opts.memory_bytes.saturating_sub(scanned.held_bytes),
                            )
                        }
                    };
                    let by =
                        key::shared_key(a.table, b.table, |k| cols.names.iter().any(|n| n == k));
                    let keep = rows.is_some() || append_only;
                    // Changed rows go to the rows file as they are found; an
                    // append-only table keeps the first few it must not have.
                    let mut broken: Vec<Change> = Vec::new();
                    let mut file = match &rows {
                        Some(RowsOut::Files { dir, format }) => {
                            Some(TableFile::new(dir, &name.schema, &name.name, *format))
                        }
                        _ => None,
                    };
                    let (mut lines, mut nulled) = (0u64, 0u64);
                    let mut sink = |batch: &[Change]| -> Result<(), DiffError> {
                        if append_only && broken.len() < NAMED_ROWS {
                            let room = NAMED_ROWS - broken.len();
                            broken.extend(
                                batch
                                    .iter()
                                    .filter(|c| !matches!(c, Change::Insert(_)))
                                    .take(room)
                                    .cloned(),
                            );
                        }
                        match rows.as_mut() {
                            Some(RowsOut::JsonLines(w)) => {
                                let (l, n) = render::write_changes(*w, &a, &b, &cols, &by, batch)?;
                                lines += l;
                                nulled += n;
                            }
                            Some(RowsOut::Files { .. }) => {
                                let f = file.as_mut().expect("made for a folder");
                                nulled += f.write(&a, &b, &cols, batch)?;
                                lines += batch.len() as u64;
                            }
                            None => {}
                        }
                        Ok(())
                    };
                    let mut counts = table::compare(
                        (a, a_chunks, a_bytes),
                        (b, b_chunks),
                        &cols,
                        &by,
                        memory,
                        if keep { Some(&mut sink) } else { None },
                    )
                    .await?;
                    counts.chunks_skipped = skipped;
                    if let Some(f) = file {
                        f.finish()?;
                        if lines > 0 && !(cols.added.is_empty() && cols.dropped.is_empty()) {
                            out.warnings.push(format!(
                                "{label}: its file holds the columns both snapshots have \
                                 alike, not those added, dropped or retyped"
                            ));
                        }
                    }
                    out.rows_written += lines;
                    if nulled > 0 {
                        out.warnings.push(format!(
                            "{label}: {nulled} value(s) JSON cannot hold (±infinity) \
                             were written as null in the rows file"
                        ));
                    }
                    if append_only && counts.updated + counts.deleted > 0 {
                        out.violations
                            .push(violation(&label, &counts, &by, &a, &b, &cols, &broken)?);
                    }
                    d.matched_by = Some(by);
                    progress.chunk_done(&label, counts.bytes_read, 0);
                    d.counts = Some(counts);
                }
            }
            (Some(_), None) if second.is_partial() => d.presence = Presence::NotHeld,
            (None, Some(_)) if first.manifest().selection.is_some() => {
                d.presence = Presence::NotHeld
            }
            (Some(_), None) => d.presence = Presence::OnlyFirst,
            (None, Some(_)) => d.presence = Presence::OnlySecond,
            (None, None) => unreachable!("chosen from one of the snapshots"),
        }
        if append_only && d.not_compared.is_some() {
            out.violations.push(format!(
                "{label}: not compared ({}), so not proven append-only",
                d.not_compared.as_deref().unwrap_or_default()
            ));
        }
        if append_only && matches!(d.presence, Presence::OnlyFirst) {
            out.violations
                .push(format!("{label}: dropped ({} row(s) gone)", d.rows_first));
        }
        progress.table_finished(&label, d.rows_second);
        out.tables.push(d);
    }
    progress.finish();
    for p in &opts.expect_append_only {
        if !names.iter().any(|n| p.matches_table(&n.schema, &n.name)) {
            out.violations.push(format!(
                "--expect-append-only {p}: no table of either snapshot matches it"
            ));
        }
    }
    let sequences = |c: &Catalog| c.sequences.len();
    let large_objects = |r: &BackupReader| r.manifest().large_objects.is_some();
    let second_los = matches!(&second, Later::Backup(r) if large_objects(r));
    if sequences(&first.manifest().catalog) + sequences(second.catalog()) > 0
        || large_objects(first)
        || second_los
    {
        out.warnings.push(
            "diff compares the rows of tables: sequence values and large objects are not \
             compared"
                .into(),
        );
    }
    if rows.is_some() {
        let unlisted: u64 = out
            .tables
            .iter()
            .filter(|t| !matches!(t.presence, Presence::Both))
            .count() as u64;
        if unlisted > 0 {
            out.warnings.push(format!(
                "{unlisted} table(s) exist in only one snapshot: their rows are counted, \
                 not written to the rows file"
            ));
        }
    }
    Ok(out)
}

/// The tables `sel` chooses from either snapshot, so a table dropped or created in
/// between is compared too; every pattern must match in one of them.
fn chosen_tables(a: &Catalog, b: &Catalog, sel: &Selection) -> Result<Vec<QualName>, DiffError> {
    let mut union = b.clone();
    let in_b: BTreeSet<&QualName> = b.tables.iter().map(|t| &t.name).collect();
    union
        .tables
        .extend(a.tables.iter().filter(|t| !in_b.contains(&t.name)).cloned());
    union.schemas.extend(a.schemas.iter().cloned());
    let chosen = sel.choose(&union)?;
    Ok(union
        .tables
        .iter()
        .filter(|t| t.has_data() && chosen.keep_table(&t.name))
        .map(|t| t.name.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect())
}

/// The table `name` as one backup holds it, if it does, with its record.
fn side<'r>(
    reader: &'r BackupReader,
    name: &QualName,
) -> Result<Option<(Side<'r>, &'r TableRecord)>, DiffError> {
    let m = reader.manifest();
    let Some((no, table)) = m
        .catalog
        .tables
        .iter()
        .enumerate()
        .find(|(_, t)| t.name == *name && t.has_data())
    else {
        return Ok(None);
    };
    let record = m.table(no as u32).ok_or_else(|| {
        ArchiveError::Corrupt(format!(
            "the manifest of backup {} has no data for table {name} (number {no})",
            m.backup_id
        ))
    })?;
    let side = Side {
        catalog: &m.catalog,
        table,
        format: record.copy_format,
    };
    Ok(Some((side, record)))
}

/// What broke an append-only table's promise, naming the rows by key (whole rows
/// are data, so a table without a key points at the rows file instead).
fn violation(
    label: &str,
    counts: &TableCounts,
    by: &MatchBy,
    a: &Side<'_>,
    b: &Side<'_>,
    cols: &Columns,
    changes: &[Change],
) -> Result<String, DiffError> {
    let mut what = format!(
        "{label}: {} row(s) updated, {} deleted",
        counts.updated, counts.deleted
    );
    if *by == MatchBy::WholeRows {
        what.push_str(" (no key: the rows file lists them)");
        return Ok(what);
    }
    let broken: Vec<Change> = changes
        .iter()
        .filter(|c| !matches!(c, Change::Insert(_)))
        .take(NAMED_ROWS)
        .map(Change::clone)
        .collect();
    let mut lines = Vec::new();
    render::write_changes(&mut lines, a, b, cols, by, &broken)?;
    let keys: Vec<String> = lines
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .map(|v| format!("{} {}", v["change"].as_str().unwrap_or("?"), v["key"]))
        .collect();
    what.push_str(&format!(": {}", keys.join(", ")));
    let shown = broken.len() as u64;
    if counts.updated + counts.deleted > shown {
        what.push_str(&format!(
            ", and {} more",
            counts.updated + counts.deleted - shown
        ));
    }
    Ok(what)
}
