//! Export: an archived backup's tables as Parquet (or Arrow IPC) files, with no
//! database running. Chunks hold whole COPY tuples, so each file of each table is
//! decoded and encoded on its own: files run in parallel on a rayon pool of `jobs`
//! threads, each holding one chunk and one row group at a time, whatever the table's
//! size.

pub mod build;
pub mod decode;
pub mod kind;
#[cfg(test)]
mod props;
pub mod sink;

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use arrow_schema::{ArrowError, Schema, SchemaRef};
use rayon::prelude::*;
use thiserror::Error;

use self::build::{Lossy, Problem};
use self::decode::{DecodeError, PushError, TableDecoder};
use self::kind::{Kind, Text, TypeChoices, TypeMap};
use self::sink::{Codec, Destination, FileFormat, FileMetadata, FileSink, Gate, SinkOptions};
use crate::archive::{ArchiveError, BackupReader, CopyFormat, TableRecord};
use crate::catalog::Table;
use crate::error::{Class, Classify};
use crate::plan::scope::Scope;
use crate::progress::Progress;
use crate::store::StoreError;

/// A file holds about this much COPY data, so a big table is written as several
/// files in parallel and no single file grows without bound.
const FILE_TARGET_BYTES: u64 = 256 << 20;

/// Record batches handed to the writers hold at most this many rows.
const BATCH_ROWS: usize = 65_536;

/// The version of what an export writes (layout, metadata keys, type mapping).
pub const EXPORT_FORMAT_VERSION: &str = "1";

#[derive(Debug, Error)]
pub enum ExportError {
    #[error(
        "cannot export {} column(s) with no Arrow mapping: {}",
        .0.len(),
        .0.join("; ")
    )]
    Unsupported(Vec<String>),
    #[error("{table}, column {column} ({pg_type}), row {row}: {what} has no exact Arrow value")]
    Special {
        table: String,
        column: String,
        pg_type: String,
        row: u64,
        what: String,
    },
    #[error("{table}, column {column} ({pg_type}), row {row}: the value is malformed: {problem}")]
    Malformed {
        table: String,
        column: String,
        pg_type: String,
        row: u64,
        problem: String,
    },
    #[error("{0} already exists; an export never overwrites files")]
    Exists(String),
    #[error("{0}")]
    Usage(String),
    #[error("the export was stopped before it finished")]
    Cancelled,
    #[error("could not write {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not encode the file: {0}")]
    Encode(String),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("masking failed: {0}")]
    Mask(Box<crate::mask::MaskError>),
}

impl ExportError {
    pub fn io(path: &Path, source: std::io::Error) -> ExportError {
        ExportError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

impl From<ArrowError> for ExportError {
    fn from(e: ArrowError) -> Self {
        match e {
            ArrowError::IoError(msg, source) => ExportError::Io { path: msg, source },
            e => ExportError::Encode(e.to_string()),
        }
    }
}

impl From<parquet::errors::ParquetError> for ExportError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        ExportError::Encode(e.to_string())
    }
}

/// Boxed: a masking failure is rare and its error large.
impl From<crate::mask::MaskError> for ExportError {
    fn from(e: crate::mask::MaskError) -> Self {
        ExportError::Mask(Box::new(e))
    }
}

impl Classify for ExportError {
    fn class(&self) -> Class {
        match self {
            ExportError::Unsupported(_)
            | ExportError::Special { .. }
            | ExportError::Exists(_)
            | ExportError::Usage(_) => Class::Usage,
            ExportError::Malformed { .. } => Class::Corrupt,
            ExportError::Io { .. } | ExportError::Encode(_) => Class::Io,
            ExportError::Cancelled => Class::Interrupted,
            ExportError::Archive(e) => e.class(),
            ExportError::Store(e) => e.class(),
            ExportError::Mask(e) => e.class(),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            ExportError::Unsupported(_) => Some(
                "leave those tables out with -T, or export such columns as their PostgreSQL \
                 binary form with --unsupported binary"
                    .into(),
            ),
            ExportError::Special { .. } => Some(
                "with --on-special null (the default) such values become NULL and are \
                 counted in a warning"
                    .into(),
            ),
            ExportError::Exists(_) => Some("export into an empty folder or prefix".into()),
            ExportError::Malformed { .. } => Some(
                "the backup passed its checksums, so this is a bug or a type whose binary \
                 form pgbunker misreads: please report it with the column's type; \
                 --unsupported binary does not help here, -T leaves the table out"
                    .into(),
            ),
            ExportError::Archive(e) => e.hint(),
            ExportError::Store(e) => e.hint(),
            ExportError::Mask(e) => e.hint(),
            _ => None,
        }
    }
}

/// Export's jobs when none are asked for: one file per CPU, since decoding and
/// encoding are CPU work.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// How to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub format: FileFormat,
    pub codec: Codec,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Fail on values Arrow cannot hold instead of exporting NULL.
    pub on_special_fail: bool,
    pub types: TypeChoices,
    /// Files encoded at once.
    pub jobs: usize,
    /// `--mask`: rows are masked before they are decoded.
    pub mask: Option<Arc<crate::mask::Masking>>,
}

/// One exported table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportedTable {
    pub schema: String,
    pub name: String,
    pub rows: u64,
    pub raw_bytes: u64,
    /// Keys of the files, relative to the destination, in row order.
    pub files: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ExportOutcome {
    pub tables: Vec<ExportedTable>,
    pub warnings: Vec<String>,
}

/// A table's export plan: its record, columns and Arrow schema.
struct TablePlan {
    table: Table,
    record: TableRecord,
    kinds: Vec<Kind>,
    schema: SchemaRef,
    metadata: FileMetadata,
    dir: String,
    mask: Option<Arc<crate::mask::rewrite::TableMask>>,
}

/// One file: a run of a table's chunks.
struct FileTask {
    plan: usize,
    file_no: usize,
    chunks: Range<usize>,
    /// Rows of the table before this file's first chunk (for error messages).
    first_row: u64,
    raw_bytes: u64,
}

struct FileDone {
    plan: usize,
    file_no: usize,
    key: String,
    rows: u64,
    lossy: Vec<Lossy>,
}

/// Exports the tables of `scope` from `reader` to `dest`.
pub async fn run(
    reader: &BackupReader,
    scope: &Scope,
    dest: &Destination,
    opts: &ExportOptions,
    progress: Arc<dyn Progress>,
) -> Result<ExportOutcome, ExportError> {
    let (plans, mut warnings) = plan_tables(reader, scope, opts)?;
    let tasks = plan_files(&plans);
    let keys: Vec<String> = tasks
        .iter()
        .map(|t| file_key(&plans[t.plan], t.file_no, opts.format))
        .collect();
    dest.check_free(SUMMARY_KEY).await?;
    for k in &keys {
        dest.check_free(k).await?;
    }
    // From here on, whatever ends the export early (an error, a signal dropping this
    // future) removes every file it wrote: only a complete export stays.
    let mut cleanup = Cleanup {
        dest: dest.clone(),
        keys,
        gate: Arc::new(Gate::default()),
        armed: true,
    };
    progress.start(
        "export",
        tasks.len() as u64,
        tasks.iter().map(|t| t.raw_bytes).sum(),
    );
    let plans = Arc::new(plans);
    let results = {
        let (plans, reader, dest, opts) = (
            Arc::clone(&plans),
            reader.clone(),
            dest.clone(),
            opts.clone(),
        );
        let progress = Arc::clone(&progress);
        let gate = Arc::clone(&cleanup.gate);
        let rt = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let scratch =
                tempfile::tempdir().map_err(|e| ExportError::io(Path::new("$TMPDIR"), e))?;
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(opts.jobs.max(1))
                .build()
                .map_err(|e| {
                    ExportError::Usage(format!("cannot start {} threads: {e}", opts.jobs))
                })?;
            let ctx = FileCtx {
                gate: &gate,
                reader: &reader,
                dest: &dest,
                opts: &opts,
                rt: &rt,
                scratch: scratch.path(),
                progress: progress.as_ref(),
            };
            Ok::<_, ExportError>(pool.install(|| {
                tasks
                    .par_iter()
                    .with_max_len(1)
                    .map(|t| {
                        let r = ctx.run(&plans[t.plan], t);
                        if r.is_err() {
                            // One failed file fails the export: the others stop early.
                            ctx.gate.close();
                        }
                        r
                    })
                    .collect::<Vec<_>>()
            }))
        })
        .await
        .map_err(|e| ExportError::Encode(format!("an export worker failed: {e}")))??
    };
    progress.finish();
    let mut done = Vec::new();
    let mut first_error = None;
    for r in results {
        match r {
            Ok(d) => done.push(d),
            // Files stopped because another one failed say nothing new.
            Err(ExportError::Cancelled) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        // Whole files of other tables would look like a complete export: the cleanup
        // removes them.
        cleanup.remove_all().await;
        return Err(e);
    }
    done.sort_by_key(|d| (d.plan, d.file_no));
    let mut tables: Vec<ExportedTable> = plans
        .iter()
        .map(|p| ExportedTable {
            schema: p.table.name.schema.clone(),
            name: p.table.name.name.clone(),
            rows: 0,
            raw_bytes: p.record.raw_bytes,
            files: Vec::new(),
        })
        .collect();
    let mut lossy: Vec<Vec<Lossy>> = plans
        .iter()
        .map(|p| vec![Lossy::default(); p.kinds.len()])
        .collect();
    for d in done {
        tables[d.plan].rows += d.rows;
        tables[d.plan].files.push(d.key);
        for (acc, l) in lossy[d.plan].iter_mut().zip(d.lossy) {
            acc.nulled += l.nulled;
            acc.flattened += l.flattened;
            if acc.example.is_none() {
                acc.example = l.example;
            }
        }
    }
    for (p, cols) in plans.iter().zip(&lossy) {
        for ((c, l), k) in p.table.copy_columns().zip(cols).zip(&p.kinds) {
            let at = format!("{}, column {} ({})", p.table.name, c.name, c.type_sql);
            if l.nulled > 0 {
                warnings.push(format!(
                    "{at}: {} value(s) Arrow cannot hold exactly were exported as NULL, \
                     e.g. {}",
                    l.nulled,
                    l.example.as_deref().unwrap_or("?")
                ));
            }
            if l.flattened > 0 {
                warnings.push(format!(
                    "{at}: {} multi-dimensional array(s) were flattened into one list \
                     (row-major order; the dimensions are not kept)",
                    l.flattened
                ));
            }
            if *k == Kind::Raw {
                warnings.push(format!(
                    "{at}: exported as its PostgreSQL binary send form (--unsupported binary)"
                ));
            }
        }
    }
    let summary = serde_json::json!({
        "export_format": EXPORT_FORMAT_VERSION,
        "backup_id": reader.manifest().backup_id,
        "snapshot_time": reader.manifest().started_at,
        "format": opts.format.extension(),
        "tables": tables,
        "warnings": warnings,
        // Whoever finds the files learns they are masked, and by which rules.
        "masked": opts.mask.as_ref().map(|m| m.summary()),
    });
    let summary = serde_json::to_vec_pretty(&summary).expect("JSON of plain values");
    dest.put_small(SUMMARY_KEY, summary).await?;
    cleanup.armed = false;
    Ok(ExportOutcome { tables, warnings })
}

/// Written last, listing every table and file: its presence says the export in this
/// folder is complete (the same rule as a backup's commit).
pub const SUMMARY_KEY: &str = "_pgbunker_export.json";

/// Removes what an export that did not finish had written.
struct Cleanup {
    dest: Destination,
    keys: Vec<String>,
    gate: Arc<Gate>,
    armed: bool,
}

impl Cleanup {
    async fn remove_all(&mut self) {
        self.armed = false;
        for k in &self.keys {
            self.dest.remove(k).await;
        }
    }
}

impl Drop for Cleanup {
    /// The export's future was dropped (a signal): stop the workers at their next
    /// chunk and delete what they wrote. Local files go now; objects go in a
    /// [`crate::teardown`] task once the uploads under way have ended.
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // Once closed, no worker creates or renames a file any more.
        self.gate.close();
        match &self.dest {
            Destination::Local(dir) => {
                for k in &self.keys {
                    let _ = std::fs::remove_file(dir.join(k));
                    let _ = std::fs::remove_file(dir.join(format!("{k}.tmp")));
                }
            }
            Destination::Store(_) => {
                let (dest, keys) = (self.dest.clone(), std::mem::take(&mut self.keys));
                let gate = Arc::clone(&self.gate);
                crate::teardown::spawn(async move {
                    gate.drained().await;
                    for k in &keys {
                        dest.remove(k).await;
                    }
                });
            }
        }
    }
}

fn plan_tables(
    reader: &BackupReader,
    scope: &Scope,
    opts: &ExportOptions,
) -> Result<(Vec<TablePlan>, Vec<String>), ExportError> {
    let manifest = reader.manifest();
    let choices = TypeChoices {
        interval_as_struct: opts.format == FileFormat::Parquet,
        ..opts.types
    };
    let types = TypeMap::new(&manifest.catalog, choices);
    let mut plans = Vec::new();
    let mut unsupported = Vec::new();
    let mut warnings = Vec::new();
    for (table, &no) in scope.catalog.tables.iter().zip(&scope.table_numbers) {
        if !table.has_data() {
            continue;
        }
        let record = manifest.table(no).ok_or_else(|| {
            ArchiveError::Corrupt(format!(
                "the manifest has no data for table {} (number {no})",
                table.name
            ))
        })?;
        let columns: Vec<_> = table.copy_columns().collect();
        if columns.is_empty() {
            warnings.push(format!(
                "{}: no columns to export ({} row(s)); Parquet files need at least one column",
                table.name, record.rows
            ));
            continue;
        }
        let mut kinds = Vec::with_capacity(columns.len());
        let mut fields = Vec::with_capacity(columns.len());
        let mut described = Vec::with_capacity(columns.len());
        // The backup holds such a table's values only as PostgreSQL prints them.
        let text = record.copy_format == CopyFormat::Text;
        if text {
            warnings.push(format!(
                "{}: the backup holds this table in COPY text format (a column's type has \
                 no binary form, is a reg* type or a base type of the database): every column \
                 is exported as UTF-8 text \
                 as PostgreSQL prints it",
                table.name
            ));
        }
        for c in &columns {
            let kind = if text {
                Ok(Kind::Text(Text::Plain))
            } else {
                types.column(c.type_oid, &c.type_sql)
            };
            match kind {
                Ok(k) => {
                    let mut f = k.field(&c.name, !c.not_null || k.may_become_null());
                    let mut md: HashMap<String, String> = f.metadata().clone().into();
                    md.insert("pgbunker.pg_type".into(), c.type_sql.clone());
                    if k == Kind::Money {
                        md.insert("pgbunker.unit".into(), "minor currency units".into());
                    }
                    f = f.with_metadata(md);
                    described.push(serde_json::json!({
                        "name": c.name,
                        "pg_type": c.type_sql,
                        "arrow_type": f.data_type().to_string(),
                    }));
                    fields.push(f);
                    kinds.push(k);
                }
                Err(inner) => unsupported.push(format!(
                    "{}, column {} of type {}{}",
                    table.name,
                    c.name,
                    c.type_sql,
                    if inner == c.type_sql {
                        String::new()
                    } else {
                        format!(" (made of {inner})")
                    }
                )),
            }
        }
        let c = &manifest;
        let metadata: FileMetadata = HashMap::from([
            (
                "pgbunker.export_format".into(),
                EXPORT_FORMAT_VERSION.into(),
            ),
            ("pgbunker.backup_id".into(), c.backup_id.clone()),
            ("pgbunker.snapshot_time".into(), c.started_at.to_string()),
            ("pgbunker.table".into(), table.name.to_string()),
            (
                "pgbunker.source_server_version".into(),
                c.catalog.server_version_num.to_string(),
            ),
            (
                "pgbunker.columns".into(),
                serde_json::Value::Array(described).to_string(),
            ),
        ]);
        plans.push(TablePlan {
            dir: format!(
                "{}.{}",
                path_segment(&table.name.schema),
                path_segment(&table.name.name)
            ),
            table: table.clone(),
            record: record.clone(),
            kinds,
            schema: Arc::new(Schema::new(fields)),
            metadata,
            mask: opts.mask.as_ref().and_then(|m| m.table(table.oid)),
        });
    }
    if !unsupported.is_empty() {
        return Err(ExportError::Unsupported(unsupported));
    }
    Ok((plans, warnings))
}

/// Cuts each table's chunks into files of about [`FILE_TARGET_BYTES`], biggest first
/// so the pool ends with small work.
fn plan_files(plans: &[TablePlan]) -> Vec<FileTask> {
    let mut tasks = Vec::new();
    for (i, p) in plans.iter().enumerate() {
        let chunks = &p.record.chunks;
        let (mut start, mut raw, mut rows, mut first_row, mut file_no) = (0, 0u64, 0u64, 0u64, 0);
        for (j, c) in chunks.iter().enumerate() {
            if raw > 0 && raw + c.raw_len > FILE_TARGET_BYTES {
                tasks.push(FileTask {
                    plan: i,
                    file_no,
                    chunks: start..j,
                    first_row,
                    raw_bytes: raw,
                });
                file_no += 1;
                start = j;
                first_row += rows;
                raw = 0;
                rows = 0;
            }
            raw += c.raw_len;
            rows += c.rows;
        }
        tasks.push(FileTask {
            plan: i,
            file_no,
            chunks: start..chunks.len(),
            first_row,
            raw_bytes: raw,
        });
    }
    tasks.sort_by_key(|t| std::cmp::Reverse(t.raw_bytes));
    tasks
}

fn file_key(plan: &TablePlan, file_no: usize, format: FileFormat) -> String {
    format!("{}/part-{file_no:05}.{}", plan.dir, format.extension())
}

/// A schema or table name as one path segment: letters, digits, `_`, `-` kept, every
/// other byte (`.`, `/`, spaces, quotes, non-ASCII) as `%XX`, so names never collide
/// or escape the destination.
pub fn path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What every file task shares.
struct FileCtx<'a> {
    /// Closed when the export is abandoned: workers stop at their next chunk.
    gate: &'a Gate,
    reader: &'a BackupReader,
    dest: &'a Destination,
    opts: &'a ExportOptions,
    rt: &'a tokio::runtime::Handle,
    scratch: &'a Path,
    progress: &'a dyn Progress,
}

impl FileCtx<'_> {
    fn run(&self, plan: &TablePlan, task: &FileTask) -> Result<FileDone, ExportError> {
        let key = file_key(plan, task.file_no, self.opts.format);
        let label = plan.table.name.to_string();
        self.progress.table_started(&label);
        let mut sink = FileSink::create(
            self.gate,
            self.dest,
            self.scratch,
            &key,
            Arc::clone(&plan.schema),
            plan.metadata.clone(),
            &SinkOptions {
                format: self.opts.format,
                codec: self.opts.codec,
                row_group_rows: self.opts.row_group_rows,
            },
        )?;
        let batch_rows = self.opts.row_group_rows.clamp(1, BATCH_ROWS);
        let mut decoder = TableDecoder::new(
            Arc::clone(&plan.schema),
            &plan.kinds,
            batch_rows,
            self.opts.on_special_fail,
        );
        if plan.record.copy_format == CopyFormat::Text {
            decoder = decoder.text_rows();
        }
        let chunks = &plan.record.chunks[task.chunks.clone()];
        // The next chunk downloads while this one is decoded.
        let fetch = |i: usize| {
            let (reader, record, chunk) =
                (self.reader.clone(), plan.record.clone(), chunks[i].clone());
            self.rt
                .spawn(async move { reader.fetch_chunk(&record, &chunk).await })
        };
        let mut next = (!chunks.is_empty()).then(|| fetch(0));
        for (i, chunk) in chunks.iter().enumerate() {
            if self.gate.is_closed() {
                return Err(ExportError::Cancelled);
            }
            let object = self
                .rt
                .block_on(next.take().expect("fetched ahead"))
                .map_err(|e| ExportError::Encode(format!("a download task failed: {e}")))??;
            next = (i + 1 < chunks.len()).then(|| fetch(i + 1));
            let mut plain = self.reader.open_chunk(&plan.record, chunk, object)?;
            if let Some(mask) = &plan.mask {
                plain = mask.rewrite(&plain)?;
            }
            decoder
                .push(&plain, &mut |batch| sink.write(&batch))
                .map_err(|e| match e {
                    PushError::Emit(e) => e,
                    PushError::Decode(d) => {
                        decode_error(plan, task.first_row + decoder.total_rows + 1, d)
                    }
                })?;
            self.progress.chunk_done(&label, chunk.raw_len, chunk.rows);
        }
        if let Some(batch) = decoder.flush() {
            sink.write(&batch)?;
        }
        let key = sink.finish(self.gate, self.dest, self.rt)?;
        self.progress.table_finished(&label, decoder.total_rows);
        Ok(FileDone {
            plan: task.plan,
            file_no: task.file_no,
            key,
            rows: decoder.total_rows,
            lossy: decoder.lossy().to_vec(),
        })
    }
}

/// Names the table, column, type and row (1-based within the table) of a value that
/// could not be exported.
fn decode_error(plan: &TablePlan, row: u64, e: DecodeError) -> ExportError {
    let table = plan.table.name.to_string();
    let column_of = |i: usize| plan.table.copy_columns().nth(i);
    match e {
        DecodeError::Value { column, problem } => {
            let c = column_of(column).expect("one kind per copied column");
            let (column, pg_type) = (c.name.clone(), c.type_sql.clone());
            match problem {
                Problem::Special(what) => ExportError::Special {
                    table,
                    column,
                    pg_type,
                    row,
                    what,
                },
                Problem::Malformed(p) => ExportError::Malformed {
                    table,
                    column,
                    pg_type,
                    row,
                    problem: p.to_string(),
                },
            }
        }
        DecodeError::FieldCount { expected, found } => ExportError::Malformed {
            table,
            column: "-".into(),
            pg_type: "-".into(),
            row,
            problem: format!("the tuple has {found} fields, the table copies {expected}"),
        },
        DecodeError::Framing(f) => ExportError::Malformed {
            table,
            column: "-".into(),
            pg_type: "-".into(),
            row,
            problem: f.to_string(),
        },
    }
}
