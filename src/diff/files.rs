//! Changed rows as one file per table, CSV or Parquet, in a folder: each row carries
//! the number of its change in the table, what the change was and which side it is
//! (`old`: the earlier snapshot's row, `new`: the later's; an update has both, under
//! one number), then the columns both snapshots hold alike, typed like `export`'s.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::Value;

use super::render::{decode, json_rows};
use super::table::{Change, Columns, Side};
use super::DiffError;
use crate::export::path_segment;

/// How changed rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum RowsFormat {
    /// One JSON line per change, every table in one file.
    Jsonl,
    /// A folder of `<schema>.<table>.csv` files.
    Csv,
    /// A folder of `<schema>.<table>.parquet` files.
    Parquet,
}

enum Writer {
    Csv(csv::Writer<File>),
    Parquet(ArrowWriter<File>),
}

/// One table's file, opened at its first changed row.
pub struct TableFile {
    path: PathBuf,
    format: RowsFormat,
    writer: Option<Writer>,
    /// Changes written so far: the next one's number.
    changes: u64,
}

impl TableFile {
    pub fn new(dir: &Path, schema: &str, name: &str, format: RowsFormat) -> TableFile {
        let ext = if format == RowsFormat::Csv {
            "csv"
        } else {
            "parquet"
        };
        TableFile {
            path: dir.join(format!(
                "{}.{}.{ext}",
                path_segment(schema),
                path_segment(name)
            )),
            format,
            writer: None,
            changes: 0,
        }
    }

    /// Writes a batch of changes; returns the values written as null because Arrow
    /// cannot hold them.
    pub fn write(
        &mut self,
        a: &Side<'_>,
        b: &Side<'_>,
        cols: &Columns,
        changes: &[Change],
    ) -> Result<u64, DiffError> {
        let (mut olds, mut news) = (Vec::new(), Vec::new());
        for (i, c) in changes.iter().enumerate() {
            let no = self.changes + i as u64;
            match c {
                Change::Insert(new) => news.push((no, "insert", new.as_slice())),
                Change::Delete(old) => olds.push((no, "delete", old.as_slice())),
                Change::Update { old, new, .. } => {
                    olds.push((no, "update", old.as_slice()));
                    news.push((no, "update", new.as_slice()));
                }
            }
        }
        self.changes += changes.len() as u64;
        let mut nulled = 0;
        for (side, label, rows) in [(a, "old", olds), (b, "new", news)] {
            if rows.is_empty() {
                continue;
            }
            let raws: Vec<&[u8]> = rows.iter().map(|r| r.2).collect();
            let d = decode(side, &raws)?;
            nulled += d.nulled;
            let mut at = 0;
            for batch in &d.batches {
                let these = &rows[at..at + batch.num_rows()];
                at += batch.num_rows();
                let batch = framed(batch, cols, label, these)?;
                self.append(&batch, &d.json_columns)?;
            }
        }
        Ok(nulled)
    }

    fn append(&mut self, batch: &RecordBatch, json_columns: &[String]) -> Result<(), DiffError> {
        let io = |e: std::io::Error| DiffError::Io(e);
        let writer = match &mut self.writer {
            Some(w) => w,
            None => {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&self.path)
                    .map_err(io)?;
                let w = if self.format == RowsFormat::Csv {
                    let mut w = csv::Writer::from_writer(file);
                    let schema = batch.schema();
                    let header: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
                    w.write_record(header).map_err(csv_error)?;
                    Writer::Csv(w)
                } else {
                    let props = WriterProperties::builder()
                        .set_compression(Compression::ZSTD(ZstdLevel::default()))
                        .build();
                    Writer::Parquet(
                        ArrowWriter::try_new(file, batch.schema(), Some(props))
                            .map_err(|e| DiffError::Decode(e.to_string()))?,
                    )
                };
                self.writer.insert(w)
            }
        };
        match writer {
            Writer::Parquet(w) => w.write(batch).map_err(|e| DiffError::Decode(e.to_string())),
            Writer::Csv(w) => {
                let schema = batch.schema();
                for row in json_rows(std::slice::from_ref(batch), json_columns)? {
                    let record = schema.fields().iter().map(|f| match row.get(f.name()) {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                    });
                    w.write_record(record.collect::<Vec<_>>())
                        .map_err(csv_error)?;
                }
                Ok(())
            }
        }
    }

    /// Closes the file, if any row was written.
    pub fn finish(self) -> Result<(), DiffError> {
        match self.writer {
            None => Ok(()),
            Some(Writer::Csv(w)) => {
                let file = w.into_inner().map_err(|e| DiffError::Io(e.into_error()))?;
                file.sync_all()?;
                Ok(())
            }
            Some(Writer::Parquet(w)) => {
                let file = w
                    .into_inner()
                    .map_err(|e| DiffError::Decode(e.to_string()))?;
                file.sync_all()?;
                Ok(())
            }
        }
    }
}

fn csv_error(e: csv::Error) -> DiffError {
    DiffError::Io(std::io::Error::other(e))
}

/// `batch` cut to the columns both snapshots hold alike, behind the change's number,
/// kind and side.
fn framed(
    batch: &RecordBatch,
    cols: &Columns,
    side: &str,
    rows: &[(u64, &str, &[u8])],
) -> Result<RecordBatch, DiffError> {
    let schema = batch.schema();
    let mut fields = vec![
        Field::new("pgbunker_change_no", DataType::UInt64, false),
        Field::new("pgbunker_change", DataType::Utf8, false),
        Field::new("pgbunker_side", DataType::Utf8, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|_| side))),
    ];
    for name in &cols.names {
        let (i, f) = schema
            .column_with_name(name)
            .ok_or_else(|| DiffError::Decode(format!("no column {name} in the decoded rows")))?;
        fields.push(f.clone());
        columns.push(Arc::clone(batch.column(i)));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| DiffError::Decode(e.to_string()))
}
