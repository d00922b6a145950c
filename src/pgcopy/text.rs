//! COPY's text format, for the tables binary COPY cannot carry faithfully: a column of
//! a type without binary send/receive functions (`aclitem`, C types made with text I/O
//! only), or of a reg* type, whose binary form is a bare OID that names another object,
//! or none, in the restored database, while its text form is the object's name.
//!
//! `COPY … TO STDOUT` in text format writes one line per row: fields separated by a tab,
//! the row ended by a newline, NULL as `\N`, and every backslash, newline, carriage
//! return and tab inside a value escaped with a backslash. A newline byte is therefore
//! always the end of a row, which is what lets the stream be cut into chunks of whole
//! rows, counted and checksummed just as binary tuples are (the checksum of a row is
//! [`tuple_hash`] of its line, newline included). The client encoding is UTF-8 in
//! every pgbunker session, where no multibyte character contains a newline byte.
//!
//! The text form of some types depends on session settings; `catalog::text_session`
//! fixes them wherever rows are copied out, copied in or compared. Pure code: no I/O.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};

use super::cutter::{Closed, Cutter};
use super::{tuple_hash, CopyFormatError, Cut, TupleScanner, TupleStats};

/// Scans a buffer that must hold only whole rows (a text chunk's plaintext) and returns
/// their count and checksum.
pub fn scan_text_rows(data: &[u8]) -> Result<TupleStats, CopyFormatError> {
    if data.last().is_some_and(|&b| b != b'\n') {
        return Err(CopyFormatError::UnterminatedRow);
    }
    let mut stats = TupleStats::default();
    for row in data.split_inclusive(|&b| b == b'\n') {
        stats.rows += 1;
        stats.checksum = stats.checksum.wrapping_add(tuple_hash(row));
    }
    Ok(stats)
}

/// Feeds on arbitrary slices of a text COPY stream and hands out chunks of whole rows
/// where its [`Cutter`] places boundaries; memory is bounded as for [`TupleScanner`].
pub struct TextScanner {
    buf: BytesMut,
    /// `buf[..complete]` holds whole rows not yet cut.
    complete: usize,
    /// Bytes from `complete` on already searched for a newline.
    searched: usize,
    cutter: Cutter,
}

impl TextScanner {
    pub fn new(cutter: Cutter) -> Self {
        TextScanner {
            buf: BytesMut::new(),
            complete: 0,
            searched: 0,
            cutter,
        }
    }

    /// Appends stream bytes and counts every row they complete.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        while let Some(at) = self.buf[self.searched..].iter().position(|&b| b == b'\n') {
            let end = self.searched + at + 1;
            let row = &self.buf[self.complete..end];
            self.cutter.tuple(row.len(), tuple_hash(row));
            self.complete = end;
            self.searched = end;
        }
        self.searched = self.buf.len();
    }

    /// The next chunk whose end the cutter has placed.
    pub fn next_cut(&mut self) -> Option<Cut> {
        let (closed, stats) = self.cutter.pop()?;
        let Closed::Front(n) = closed else {
            unreachable!("rows are never kept apart: they are copied into the buffer")
        };
        self.complete -= n;
        self.searched -= n;
        Some(Cut {
            data: self.buf.split_to(n).freeze(),
            stats,
        })
    }

    /// Ends the stream once every cut was taken: no partial row may remain. Returns the
    /// last (possibly empty) chunk.
    pub fn finish(mut self) -> Result<Cut, CopyFormatError> {
        if self.complete != self.buf.len() {
            return Err(CopyFormatError::UnterminatedRow);
        }
        let (n, stats) = self.cutter.rest();
        let data: Bytes = self.buf.split_to(n).freeze();
        Ok(Cut { data, stats })
    }
}

/// A scanner for either framing, so the code that streams a table does not care which
/// one the table is copied in.
pub enum Scanner {
    Binary(TupleScanner),
    Text(TextScanner),
}

impl Scanner {
    pub fn new(text: bool, cutter: Cutter) -> Self {
        if text {
            Scanner::Text(TextScanner::new(cutter))
        } else {
            Scanner::Binary(TupleScanner::new(cutter))
        }
    }

    pub fn feed(&mut self, data: bytes::Bytes) -> Result<(), CopyFormatError> {
        match self {
            Scanner::Binary(s) => s.feed_bytes(data),
            Scanner::Text(s) => {
                s.feed(&data);
                Ok(())
            }
        }
    }

    pub fn next_cut(&mut self) -> Option<Cut> {
        match self {
            Scanner::Binary(s) => s.next_cut(),
            Scanner::Text(s) => s.next_cut(),
        }
    }

    pub fn finish(self) -> Result<Cut, CopyFormatError> {
        match self {
            Scanner::Binary(s) => s.finish(),
            Scanner::Text(s) => s.finish(),
        }
    }
}

/// The rows of a buffer of whole rows, each as its raw fields (still escaped).
pub fn text_rows(data: &[u8]) -> TextRows<'_> {
    TextRows { data, pos: 0 }
}

pub struct TextRows<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for TextRows<'a> {
    type Item = Result<TextRow<'a>, CopyFormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.data[self.pos..];
        if rest.is_empty() {
            return None;
        }
        match rest.iter().position(|&b| b == b'\n') {
            Some(end) => {
                self.pos += end + 1;
                Some(Ok(TextRow { line: &rest[..end] }))
            }
            None => {
                self.pos = self.data.len();
                Some(Err(CopyFormatError::UnterminatedRow))
            }
        }
    }
}

/// One row, without its newline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRow<'a> {
    line: &'a [u8],
}

impl<'a> TextRow<'a> {
    /// The row's size in bytes, newline included.
    pub fn byte_len(&self) -> usize {
        self.line.len() + 1
    }

    /// The row without its newline.
    pub fn line(&self) -> &'a [u8] {
        self.line
    }

    /// The raw fields, split at the tabs (a tab inside a value is escaped).
    pub fn fields(&self) -> impl Iterator<Item = &'a [u8]> {
        self.line.split(|&b| b == b'\t')
    }

    /// How many fields the row has.
    pub fn field_count(&self) -> usize {
        self.line.iter().filter(|&&b| b == b'\t').count() + 1
    }
}

/// A field's value: `None` for NULL (`\N`), else the bytes with COPY's backslash
/// escapes decoded as `COPY FROM` decodes them (`\b \f \n \r \t \v \\`, octal `\ooo`,
/// hex `\xhh`, and any other escaped character standing for itself).
pub fn decode_text_field(raw: &[u8]) -> Option<Cow<'_, [u8]>> {
    if raw == b"\\N" {
        return None;
    }
    if !raw.contains(&b'\\') {
        return Some(Cow::Borrowed(raw));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        i += 1;
        if b != b'\\' || i == raw.len() {
            // A trailing lone backslash is kept, as COPY FROM keeps it.
            out.push(b);
            continue;
        }
        let c = raw[i];
        i += 1;
        match c {
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                // COPY FROM keeps the low byte of `\777`.
                out.push(v as u8);
            }
            b'x' if raw.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut v = hex_digit(raw[i]);
                i += 1;
                if let Some(&d) = raw.get(i).filter(|d| d.is_ascii_hexdigit()) {
                    v = v * 16 + hex_digit(d);
                    i += 1;
                }
                out.push(v);
            }
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            other => out.push(other),
        }
    }
    Some(Cow::Owned(out))
}

fn hex_digit(d: u8) -> u8 {
    match d {
        b'0'..=b'9' => d - b'0',
        b'a'..=b'f' => d - b'a' + 10,
        _ => d - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_fall_on_row_boundaries_whatever_the_feed_sizes() {
        let rows: Vec<Vec<u8>> = (0..200)
            .map(|i| format!("{i}\tsome\\ttext{}\t\\N\n", "x".repeat(i % 37)).into_bytes())
            .collect();
        let stream = rows.concat();
        let whole = scan_text_rows(&stream).unwrap();
        assert_eq!(whole.rows, 200);
        let mut reference = None;
        for piece in [stream.len(), 1usize, 2, 5, 19, 64, 1000] {
            let mut sc = TextScanner::new(Cutter::new(&[4; 32], 300));
            let mut cuts = Vec::new();
            for part in stream.chunks(piece) {
                sc.feed(part);
                cuts.extend(std::iter::from_fn(|| sc.next_cut()));
            }
            cuts.push(sc.finish().unwrap());
            let lens: Vec<usize> = cuts.iter().map(|c| c.data.len()).collect();
            assert!(lens.len() > 5, "{lens:?}");
            assert_eq!(
                reference.get_or_insert(lens.clone()),
                &lens,
                "the same cuts"
            );
            let mut total = TupleStats::default();
            for c in &cuts {
                assert!(c.data.is_empty() || c.data.ends_with(b"\n"));
                assert_eq!(scan_text_rows(&c.data).unwrap(), c.stats);
                total.merge(c.stats);
            }
            assert_eq!(total, whole, "piece size {piece}");
        }
    }

    #[test]
    fn checksums_ignore_order_and_see_a_changed_row() {
        let a = scan_text_rows(b"1\ta\n2\tb\n").unwrap();
        let b = scan_text_rows(b"2\tb\n1\ta\n").unwrap();
        assert_eq!(a, b);
        let c = scan_text_rows(b"1\ta\n2\tc\n").unwrap();
        assert_ne!(a.checksum, c.checksum);
        assert_eq!(scan_text_rows(b"").unwrap(), TupleStats::default());
        // An empty line is a row too (one empty field, or a table of no columns).
        assert_eq!(scan_text_rows(b"\n\n").unwrap().rows, 2);
    }

    #[test]
    fn a_row_cut_short_is_an_error() {
        assert_eq!(
            scan_text_rows(b"1\ta\n2\tb"),
            Err(CopyFormatError::UnterminatedRow)
        );
        let mut sc = TextScanner::new(Cutter::new(&[4; 32], 1024));
        sc.feed(b"1\ta\n2");
        assert_eq!(sc.finish().unwrap_err(), CopyFormatError::UnterminatedRow);
        let rows: Vec<_> = text_rows(b"1\n2").collect();
        assert!(rows[0].is_ok());
        assert_eq!(rows[1], Err(CopyFormatError::UnterminatedRow));
    }

    #[test]
    fn fields_decode_as_copy_from_reads_them() {
        let row = text_rows(b"a\\tb\t\\N\t\\\\N\t\t\\101\\x41\\x4\\q\\b\\f\\n\\r\\v\\\n")
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(row.field_count(), 5);
        let got: Vec<Option<Vec<u8>>> = row
            .fields()
            .map(|f| decode_text_field(f).map(Cow::into_owned))
            .collect();
        assert_eq!(
            got,
            vec![
                Some(b"a\tb".to_vec()),
                None,
                Some(b"\\N".to_vec()),
                Some(vec![]),
                Some(b"AA\x04q\x08\x0c\n\r\x0b\\".to_vec()),
            ]
        );
    }
}
