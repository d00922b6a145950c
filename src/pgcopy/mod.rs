//! PGCOPY binary framing: the file header, the trailer, and a tuple scanner.
//!
//! `COPY … (FORMAT binary)` sends an 11-byte signature, flags, a header extension, then
//! tuples (`i16` field count, per field an `i32` length or -1 for NULL, then the bytes),
//! then a trailer (`i16` -1). PostgreSQL's CopyData messages are not aligned to tuples,
//! so the backup cuts the raw stream here, at tuple boundaries, which is what lets every
//! chunk be decoded, counted and checksummed on its own. Tables binary COPY cannot
//! carry are copied in text format instead ([`text`]). Pure code: no I/O, no async.

mod cutter;
#[cfg(test)]
mod props;
pub mod remap;
mod scanner;
pub mod text;
pub mod value;

pub use cutter::{Cutter, ALONE_FROM};
pub use scanner::{Cut, TupleScanner};
pub use text::{scan_text_rows, Scanner, TextScanner};

use thiserror::Error;

/// The fixed signature every PGCOPY binary stream starts with.
pub const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// The trailer: a field count of -1.
pub const TRAILER: [u8; 2] = [0xff, 0xff];

/// PostgreSQL never stores a field larger than 1 GiB; anything larger is garbage.
pub const MAX_FIELD_LEN: usize = 1 << 30;

/// PostgreSQL tables have at most 1600 columns.
pub const MAX_FIELDS: i16 = 1600;

/// The header we write in front of restored data: signature, no flags, no extension.
pub fn header() -> [u8; 19] {
    let mut h = [0u8; 19];
    h[..11].copy_from_slice(SIGNATURE);
    h
}

/// A malformed PGCOPY stream. Any of these means the data cannot be trusted.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CopyFormatError {
    #[error("the COPY stream does not start with the PGCOPY signature")]
    BadSignature,
    #[error("the COPY stream sets unsupported header flags {0:#x} (OIDs are not supported)")]
    UnsupportedFlags(u32),
    #[error("a tuple declares {0} fields; PostgreSQL allows 0 to {MAX_FIELDS}")]
    BadFieldCount(i16),
    #[error("a field declares length {0}, which PostgreSQL cannot produce")]
    BadFieldLength(i32),
    #[error("the COPY stream ended inside a tuple or before its trailer")]
    Truncated,
    #[error("data follows the COPY trailer")]
    TrailingData,
    #[error("the text COPY data ends inside a row (no newline after its last row)")]
    UnterminatedRow,
}

/// What a run of whole tuples contains: how many, and an order-independent checksum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TupleStats {
    pub rows: u64,
    pub checksum: u128,
}

impl TupleStats {
    /// Folds another run into this one. Addition commutes, so the table's checksum
    /// does not depend on how the table was split into chunks or in which order rows
    /// came back, yet a duplicated or missing row changes it.
    pub fn merge(&mut self, other: TupleStats) {
        self.rows += other.rows;
        self.checksum = self.checksum.wrapping_add(other.checksum);
    }
}

/// Hash of one tuple's bytes (field count, lengths and values) for [`TupleStats`].
pub fn tuple_hash(tuple: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(tuple)
}

/// Scans a buffer that must hold only whole tuples (a chunk's plaintext) and returns
/// their count and checksum. Used by restore and verify to check chunks independently.
pub fn scan_tuples(data: &[u8]) -> Result<TupleStats, CopyFormatError> {
    let mut stats = TupleStats::default();
    let mut pos = 0;
    while pos < data.len() {
        match tuple_len(&data[pos..])? {
            TupleEnd::Tuple(len) => {
                stats.rows += 1;
                stats.checksum = stats
                    .checksum
                    .wrapping_add(tuple_hash(&data[pos..pos + len]));
                pos += len;
            }
            TupleEnd::Trailer => return Err(CopyFormatError::TrailingData),
            TupleEnd::Incomplete => return Err(CopyFormatError::Truncated),
        }
    }
    Ok(stats)
}

/// Iterates the tuples of a buffer that must hold only whole tuples (a chunk's
/// plaintext), yielding each tuple's fields. Framing is checked before a tuple is
/// handed out, so its fields can be walked without further checks.
pub fn tuples(data: &[u8]) -> Tuples<'_> {
    Tuples { data, pos: 0 }
}

pub struct Tuples<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Tuples<'a> {
    /// Reports `e` once and ends the iteration.
    fn fail(&mut self, e: CopyFormatError) -> Option<Result<Fields<'a>, CopyFormatError>> {
        self.pos = self.data.len();
        Some(Err(e))
    }
}

impl<'a> Iterator for Tuples<'a> {
    type Item = Result<Fields<'a>, CopyFormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.data.len() {
            return None;
        }
        let rest = &self.data[self.pos..];
        let end = match tuple_len(rest) {
            Ok(TupleEnd::Tuple(len)) => len,
            Ok(TupleEnd::Trailer) => return self.fail(CopyFormatError::TrailingData),
            Ok(TupleEnd::Incomplete) => return self.fail(CopyFormatError::Truncated),
            Err(e) => return self.fail(e),
        };
        let tuple = &rest[..end];
        self.pos += end;
        let count = i16::from_be_bytes([tuple[0], tuple[1]]) as usize;
        Some(Ok(Fields {
            tuple,
            pos: 2,
            left: count,
        }))
    }
}

/// The fields of one framing-checked tuple: `None` for NULL.
pub struct Fields<'a> {
    tuple: &'a [u8],
    pos: usize,
    left: usize,
}

impl<'a> Fields<'a> {
    /// The tuple's size in bytes, framing included.
    pub fn byte_len(&self) -> usize {
        self.tuple.len()
    }

    /// The whole tuple, as the stream framed it.
    pub fn tuple(&self) -> &'a [u8] {
        self.tuple
    }

    /// How many fields are left, which for a fresh tuple is its field count.
    pub fn remaining(&self) -> usize {
        self.left
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Option<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let len = i32::from_be_bytes(
            self.tuple[self.pos..self.pos + 4]
                .try_into()
                .expect("framing checked"),
        );
        self.pos += 4;
        if len < 0 {
            return Some(None);
        }
        let v = &self.tuple[self.pos..self.pos + len as usize];
        self.pos += len as usize;
        Some(Some(v))
    }
}

/// Where the tuple starting at the front of `buf` ends.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TupleEnd {
    /// A whole tuple of this many bytes.
    Tuple(usize),
    /// The trailer (2 bytes).
    Trailer,
    /// More bytes are needed.
    Incomplete,
}

pub(crate) fn tuple_len(buf: &[u8]) -> Result<TupleEnd, CopyFormatError> {
    if buf.len() < 2 {
        return Ok(TupleEnd::Incomplete);
    }
    let nfields = i16::from_be_bytes([buf[0], buf[1]]);
    if nfields == -1 {
        return Ok(TupleEnd::Trailer);
    }
    if !(0..=MAX_FIELDS).contains(&nfields) {
        return Err(CopyFormatError::BadFieldCount(nfields));
    }
    let mut pos = 2usize;
    for _ in 0..nfields {
        if buf.len() < pos + 4 {
            return Ok(TupleEnd::Incomplete);
        }
        let len = i32::from_be_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]);
        pos += 4;
        if len == -1 {
            continue;
        }
        if len < 0 || len as usize > MAX_FIELD_LEN {
            return Err(CopyFormatError::BadFieldLength(len));
        }
        pos += len as usize;
        if buf.len() < pos {
            return Ok(TupleEnd::Incomplete);
        }
    }
    Ok(TupleEnd::Tuple(pos))
}

#[cfg(test)]
mod tests {
    use super::*;
    pub(crate) use crate::testing::tuple;

    #[test]
    fn scan_counts_and_checksums_independent_of_order() {
        let a = tuple(&[Some(b"1"), None]);
        let b = tuple(&[Some(b"22"), Some(b"")]);
        let ab = [a.clone(), b.clone()].concat();
        let ba = [b, a].concat();
        let s1 = scan_tuples(&ab).unwrap();
        let s2 = scan_tuples(&ba).unwrap();
        assert_eq!(s1.rows, 2);
        assert_eq!(s1, s2);
        assert_ne!(s1.checksum, 0);
    }

    #[test]
    fn scan_rejects_truncation_and_garbage() {
        let a = tuple(&[Some(b"hello")]);
        assert_eq!(
            scan_tuples(&a[..a.len() - 1]),
            Err(CopyFormatError::Truncated)
        );
        assert_eq!(
            scan_tuples(&[0x7f, 0xff]),
            Err(CopyFormatError::BadFieldCount(0x7fff))
        );
        assert_eq!(
            scan_tuples(&[0, 1, 0x80, 0, 0, 0]),
            Err(CopyFormatError::BadFieldLength(i32::MIN))
        );
        assert_eq!(scan_tuples(&TRAILER), Err(CopyFormatError::TrailingData));
    }
}
