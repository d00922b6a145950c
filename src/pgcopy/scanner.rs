//! Incremental scanner that turns the raw `COPY TO STDOUT` byte stream into chunks of
//! whole tuples.

use bytes::{Bytes, BytesMut};

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

/// Feeds on arbitrary slices of a PGCOPY binary stream and hands out cuts of whole
/// tuples. Memory is bounded by the cut size plus the largest single tuple: bytes are
/// kept only until they are cut.
pub struct TupleScanner {
    state: State,
    buf: BytesMut,
    /// `buf[..complete]` holds whole tuples not yet cut.
    complete: usize,
    stats: TupleStats,
}

impl Default for TupleScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl TupleScanner {
    pub fn new() -> Self {
        TupleScanner {
            state: State::Header,
            buf: BytesMut::new(),
            complete: 0,
            stats: TupleStats::default(),
        }
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
                    let t = &self.buf[self.complete..self.complete + len];
                    self.stats.rows += 1;
                    self.stats.checksum = self.stats.checksum.wrapping_add(tuple_hash(t));
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
        const FIXED: usize = 11 + 4 + 4;
        if self.buf.len() < SIGNATURE.len() {
            if !SIGNATURE.starts_with(&self.buf) {
                return Err(CopyFormatError::BadSignature);
            }
            return Ok(false);
        }
        if &self.buf[..11] != SIGNATURE {
            return Err(CopyFormatError::BadSignature);
        }
        if self.buf.len() < FIXED {
            return Ok(false);
        }
        let flags = u32::from_be_bytes(self.buf[11..15].try_into().expect("4 bytes"));
        // Bit 16 is "OIDs included"; bits 0-15 are critical per the protocol.
        if flags & 0x0001_ffff != 0 {
            return Err(CopyFormatError::UnsupportedFlags(flags));
        }
        let ext = u32::from_be_bytes(self.buf[15..19].try_into().expect("4 bytes")) as usize;
        if ext > super::MAX_FIELD_LEN {
            return Err(CopyFormatError::Truncated);
        }
        if self.buf.len() < FIXED + ext {
            return Ok(false);
        }
        let _ = self.buf.split_to(FIXED + ext);
        self.state = State::Tuples;
        Ok(true)
    }

    /// Bytes of whole tuples waiting to be cut.
    pub fn ready_bytes(&self) -> usize {
        self.complete
    }

    /// Cuts every whole tuple scanned so far.
    pub fn cut(&mut self) -> Cut {
        let data = self.buf.split_to(self.complete).freeze();
        self.complete = 0;
        Cut {
            data,
            stats: std::mem::take(&mut self.stats),
        }
    }

    /// Ends the stream: the trailer must have been seen and no partial tuple remain.
    /// Returns the last (possibly empty) cut.
    pub fn finish(mut self) -> Result<Cut, CopyFormatError> {
        if self.state != State::Done {
            return Err(CopyFormatError::Truncated);
        }
        Ok(self.cut())
    }
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

    #[test]
    fn cuts_fall_on_tuple_boundaries_whatever_the_feed_sizes() {
        let tuples: Vec<Vec<u8>> = (0..200)
            .map(|i| {
                let v = vec![b'x'; i % 37];
                tuple(&[Some(&v), if i % 3 == 0 { None } else { Some(b"abc") }])
            })
            .collect();
        let s = stream(&tuples);
        let whole = scan_tuples(&tuples.concat()).unwrap();
        for piece in [1usize, 2, 5, 19, 64, 1000, s.len()] {
            let mut sc = TupleScanner::new();
            let mut cuts = Vec::new();
            for part in s.chunks(piece) {
                sc.feed(part).unwrap();
                if sc.ready_bytes() >= 300 {
                    cuts.push(sc.cut());
                }
            }
            cuts.push(sc.finish().unwrap());
            let mut total = TupleStats::default();
            for c in &cuts {
                assert_eq!(scan_tuples(&c.data).unwrap(), c.stats);
                total.merge(c.stats);
            }
            assert_eq!(total, whole, "piece size {piece}");
        }
    }

    #[test]
    fn missing_trailer_is_truncation() {
        let s = stream(&[tuple(&[Some(b"a")])]);
        let mut sc = TupleScanner::new();
        sc.feed(&s[..s.len() - 2]).unwrap();
        assert_eq!(sc.finish().unwrap_err(), CopyFormatError::Truncated);
    }

    #[test]
    fn bad_signature_and_trailing_garbage_are_errors() {
        let mut sc = TupleScanner::new();
        assert_eq!(sc.feed(b"COPY").unwrap_err(), CopyFormatError::BadSignature);
        let mut s = stream(&[]);
        s.push(0);
        let mut sc = TupleScanner::new();
        assert_eq!(sc.feed(&s).unwrap_err(), CopyFormatError::TrailingData);
    }
}
