//! Incremental scanner that turns the raw `COPY TO STDOUT` byte stream into chunks of
//! whole tuples, cut where the [`Cutter`] says.

use bytes::{Bytes, BytesMut};

use super::cutter::{Closed, Cutter, ALONE_FROM};
use super::{tuple_hash, tuple_len, CopyFormatError, TupleEnd, TupleStats, SIGNATURE};

/// A run of whole tuples cut from the stream, ready to be sealed as one chunk.
#[derive(Debug, Clone)]
pub struct Cut {
    pub data: Bytes,
    pub stats: TupleStats,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Header,
    Tuples,
    Done,
}

/// Feeds on arbitrary slices of a PGCOPY binary stream and hands out chunks of whole
/// tuples where its [`Cutter`] places boundaries. Memory is bounded by the largest
/// chunk plus the largest single tuple: bytes are kept only until they are cut.
pub struct TupleScanner {
    state: State,
    buf: BytesMut,
    /// `buf[..complete]` holds whole tuples not yet cut.
    complete: usize,
    cutter: Cutter,
}

impl TupleScanner {
    pub fn new(cutter: Cutter) -> Self {
        TupleScanner {
            state: State::Header,
            buf: BytesMut::new(),
            complete: 0,
            cutter,
        }
    }

    /// Like [`TupleScanner::feed`], but a tuple of [`ALONE_FROM`] bytes or more that
    /// arrives as a piece of its own is kept as it is: the server sends each row in a
    /// message of its own, and a row holding a 1 GB value then costs its size once
    /// here, not twice.
    pub fn feed_bytes(&mut self, mut data: Bytes) -> Result<(), CopyFormatError> {
        // The server sends the stream's header with the first row: it is taken off
        // here, so that row may be kept as it came too.
        if self.state == State::Header && self.buf.is_empty() && data.len() >= ALONE_FROM {
            if let Some(len) = header_len(&data)? {
                data = data.slice(len..);
                self.state = State::Tuples;
            }
        }
        if self.state == State::Tuples
            && self.complete == self.buf.len()
            && data.len() >= ALONE_FROM
            && tuple_len(&data)? == TupleEnd::Tuple(data.len())
        {
            let hash = tuple_hash(&data);
            self.cutter.kept(data, hash);
            return Ok(());
        }
        self.feed(&data)
    }

    /// Appends stream bytes and advances over every tuple they complete.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), CopyFormatError> {
        if self.state == State::Done {
            if data.is_empty() {
                return Ok(());
            }
            return Err(CopyFormatError::TrailingData);
        }
        self.buf.extend_from_slice(data);
        if self.state == State::Header && !self.parse_header()? {
            return Ok(());
        }
        loop {
            match tuple_len(&self.buf[self.complete..])? {
                TupleEnd::Tuple(len) => {
                    let hash = tuple_hash(&self.buf[self.complete..self.complete + len]);
                    self.cutter.tuple(len, hash);
                    self.complete += len;
                }
                TupleEnd::Trailer => {
                    if self.buf.len() > self.complete + 2 {
                        return Err(CopyFormatError::TrailingData);
                    }
                    self.buf.truncate(self.complete);
                    self.state = State::Done;
                    return Ok(());
                }
                TupleEnd::Incomplete => return Ok(()),
            }
        }
    }

    /// Returns `true` once the header has been consumed.
    fn parse_header(&mut self) -> Result<bool, CopyFormatError> {
        let Some(len) = header_len(&self.buf)? else {
            return Ok(false);
        };
        let _ = self.buf.split_to(len);
        self.state = State::Tuples;
        Ok(true)
    }

    /// The next chunk whose end the cutter has placed.
    pub fn next_cut(&mut self) -> Option<Cut> {
        let (closed, stats) = self.cutter.pop()?;
        let data = match closed {
            Closed::Front(n) => {
                self.complete -= n;
                self.buf.split_to(n).freeze()
            }
            Closed::Kept(tuple) => tuple,
        };
        Some(Cut { data, stats })
    }

    /// Ends the stream once every cut was taken: the trailer must have been seen and no
    /// partial tuple remain. Returns the last (possibly empty) chunk.
    pub fn finish(mut self) -> Result<Cut, CopyFormatError> {
        if self.state != State::Done {
            return Err(CopyFormatError::Truncated);
        }
        let (n, stats) = self.cutter.rest();
        Ok(Cut {
            data: self.buf.split_to(n).freeze(),
            stats,
        })
    }
}

/// The length of the stream header `data` starts with; `None` while it is incomplete.
fn header_len(data: &[u8]) -> Result<Option<usize>, CopyFormatError> {
    const FIXED: usize = 11 + 4 + 4;
    if data.len() < SIGNATURE.len() {
        if !SIGNATURE.starts_with(data) {
            return Err(CopyFormatError::BadSignature);
        }
        return Ok(None);
    }
    if &data[..11] != SIGNATURE {
        return Err(CopyFormatError::BadSignature);
    }
    if data.len() < FIXED {
        return Ok(None);
    }
    let flags = u32::from_be_bytes(data[11..15].try_into().expect("4 bytes"));
    // Bit 16 is "OIDs included"; bits 0-15 are critical per the protocol.
    if flags & 0x0001_ffff != 0 {
        return Err(CopyFormatError::UnsupportedFlags(flags));
    }
    let ext = u32::from_be_bytes(data[15..19].try_into().expect("4 bytes")) as usize;
    if ext > super::MAX_FIELD_LEN {
        return Err(CopyFormatError::Truncated);
    }
    Ok((data.len() >= FIXED + ext).then_some(FIXED + ext))
}

#[cfg(test)]
mod tests {
    use super::super::{header, scan_tuples, tests::tuple, TRAILER};
    use super::*;

    fn stream(tuples: &[Vec<u8>]) -> Vec<u8> {
        let mut s = header().to_vec();
        for t in tuples {
            s.extend_from_slice(t);
        }
        s.extend_from_slice(&TRAILER);
        s
    }

    fn scanner(target: usize) -> TupleScanner {
        TupleScanner::new(Cutter::new(&[3; 32], target))
    }

    /// Feeds `s` in pieces of `piece` bytes (as `Bytes`) and takes every cut.
    fn cuts(s: &[u8], piece: usize, target: usize) -> Vec<Cut> {
        let mut sc = scanner(target);
        let mut out = Vec::new();
        for part in s.chunks(piece) {
            sc.feed_bytes(Bytes::copy_from_slice(part)).unwrap();
            out.extend(std::iter::from_fn(|| sc.next_cut()));
        }
        out.push(sc.finish().unwrap());
        out
    }

    #[test]
    fn a_huge_tuple_is_kept_as_it_came() {
        let big = tuple(&[Some(&vec![7u8; ALONE_FROM])]);
        let small = tuple(&[Some(b"x")]);
        let mut sc = scanner(64 << 10);
        sc.feed(&header()).unwrap();
        sc.feed(&small).unwrap();
        let piece = Bytes::from(big.clone());
        sc.feed_bytes(piece.clone()).unwrap();
        let before = sc.next_cut().unwrap();
        assert_eq!(before.data, small, "the chunk before it closes");
        let cut = sc.next_cut().unwrap();
        assert_eq!(cut.data.as_ptr(), piece.as_ptr(), "no copy");
        assert_eq!(cut.stats, scan_tuples(&big).unwrap());
        sc.feed(&small).unwrap();
        sc.feed(&TRAILER).unwrap();
        assert!(sc.next_cut().is_none());
        assert_eq!(sc.finish().unwrap().data, small);
    }

    #[test]
    fn a_large_first_row_sent_with_the_header_is_kept_as_it_came() {
        let big = tuple(&[Some(&vec![7u8; ALONE_FROM])]);
        let piece = Bytes::from([header().to_vec(), big.clone()].concat());
        let mut sc = scanner(64 << 10);
        sc.feed_bytes(piece.clone()).unwrap();
        let cut = sc.next_cut().unwrap();
        assert_eq!(cut.data, big);
        assert_eq!(
            cut.data.as_ptr(),
            piece[header().len()..].as_ptr(),
            "no copy"
        );
        sc.feed(&TRAILER).unwrap();
        assert!(sc.finish().unwrap().data.is_empty());
        // A bad signature is still refused.
        let mut bad = piece.to_vec();
        bad[0] ^= 1;
        assert!(scanner(64 << 10).feed_bytes(Bytes::from(bad)).is_err());
    }

    #[test]
    fn cuts_fall_on_the_same_tuples_whatever_the_feed_sizes() {
        let tuples: Vec<Vec<u8>> = (0..2000)
            .map(|i| {
                let v = vec![b'x'; i % 37];
                tuple(&[Some(&v), if i % 3 == 0 { None } else { Some(b"abc") }])
            })
            .collect();
        let s = stream(&tuples);
        let whole = scan_tuples(&tuples.concat()).unwrap();
        let reference: Vec<Bytes> = cuts(&s, s.len(), 1024)
            .into_iter()
            .map(|c| c.data)
            .collect();
        assert!(reference.len() > 10, "{} cuts", reference.len());
        for piece in [1usize, 2, 5, 19, 64, 1000] {
            let got = cuts(&s, piece, 1024);
            let mut total = TupleStats::default();
            for c in &got {
                assert_eq!(scan_tuples(&c.data).unwrap(), c.stats);
                total.merge(c.stats);
            }
            assert_eq!(total, whole, "piece size {piece}");
            let data: Vec<Bytes> = got.into_iter().map(|c| c.data).collect();
            assert_eq!(data, reference, "piece size {piece}");
        }
    }

    #[test]
    fn missing_trailer_is_truncation() {
        let s = stream(&[tuple(&[Some(b"a")])]);
        let mut sc = scanner(1024);
        sc.feed(&s[..s.len() - 2]).unwrap();
        assert_eq!(sc.finish().unwrap_err(), CopyFormatError::Truncated);
    }

    #[test]
    fn bad_signature_and_trailing_garbage_are_errors() {
        let mut sc = scanner(1024);
        assert_eq!(sc.feed(b"COPY").unwrap_err(), CopyFormatError::BadSignature);
        let mut s = stream(&[]);
        s.push(0);
        let mut sc = scanner(1024);
        assert_eq!(sc.feed(&s).unwrap_err(), CopyFormatError::TrailingData);
    }
}
