//! A chunk's rows as field lists, whatever COPY format the table was backed up in:
//! binary tuples, or text rows whose fields are compared as PostgreSQL printed them
//! (escapes and all: the same value always prints the same way).

use crate::archive::CopyFormat;
use crate::pgcopy::text::text_rows;
use crate::pgcopy::{self, CopyFormatError};

/// One row: its bytes as the chunk holds them (a text row with its newline) and its
/// fields, `None` for NULL.
pub struct Row<'a> {
    pub raw: &'a [u8],
    pub fields: Vec<Option<&'a [u8]>>,
}

/// Calls `f` with every row of `chunk`.
pub fn each_row<'a, E: From<CopyFormatError>>(
    chunk: &'a [u8],
    format: CopyFormat,
    mut f: impl FnMut(Row<'a>) -> Result<(), E>,
) -> Result<(), E> {
    match format {
        CopyFormat::Binary => {
            for tuple in pgcopy::tuples(chunk) {
                let fields = tuple?;
                let raw = fields.tuple();
                f(Row {
                    raw,
                    fields: fields.collect(),
                })?;
            }
        }
        CopyFormat::Text => {
            let mut at = 0;
            for row in text_rows(chunk) {
                let row = row?;
                let raw = &chunk[at..at + row.byte_len()];
                at += row.byte_len();
                f(Row {
                    raw,
                    fields: row.fields().map(|v| (v != b"\\N").then_some(v)).collect(),
                })?;
            }
        }
    }
    Ok(())
}

/// The fields of one row's bytes, as [`each_row`] gave them.
pub fn fields_of(raw: &[u8], format: CopyFormat) -> Result<Vec<Option<&[u8]>>, CopyFormatError> {
    let mut out = None;
    each_row(raw, format, |row| {
        out = Some(row.fields);
        Ok::<_, CopyFormatError>(())
    })?;
    out.ok_or(CopyFormatError::Truncated)
}

/// The chosen fields of a row as one byte string that two rows share exactly when
/// those fields are equal (each one length-prefixed, NULL as -1).
pub fn encode(fields: &[Option<&[u8]>], chosen: impl Iterator<Item = usize>) -> Vec<u8> {
    let mut out = Vec::new();
    for i in chosen {
        match fields.get(i).copied().flatten() {
            Some(v) => {
                out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                out.extend_from_slice(v);
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    out
}
