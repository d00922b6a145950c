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
    /// Whole tuples taken over as they came (see [`TupleScanner::feed_bytes`]); while
    /// it holds some, `buf` is empty.
    adopted: Option<Bytes>,
    buf: BytesMut,
    /// `buf[..complete]` holds whole tuples not yet cut.
    complete: usize,
    stats: TupleStats,
}

/// Pieces this large that hold whole tuples are kept without a copy.
const ADOPT_FROM: usize = 1 << 20;

impl Default for TupleScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl TupleScanner {
    pub fn new() -> Self {
        TupleScanner {
            state: State::Header,
            adopted: None,
            buf: BytesMut::new(),
            complete: 0,
            stats: TupleStats::default(),
        }
    }

    /// Like [`TupleScanner::feed`], but a large piece of whole tuples that arrives when
    /// nothing else waits is kept as it is: the server sends each row in a message of
    /// its own, and a row holding a 1 GB value then costs its size once here, not twice.
    pub fn feed_bytes(&mut self, mut data: Bytes) -> Result<(), CopyFormatError> {
        // The server sends the stream's header with the first row: it is taken off
        // here, so that row may be kept as it came too.
        if self.state == State::Header && self.buf.is_empty() && data.len() >= ADOPT_FROM {
            if let Some(len) = header_len(&data)? {
                data = data.slice(len..);
                self.state = State::Tuples;
            }
        }
        if self.state == State::Tuples
            && self.adopted.is_none()
            && self.buf.is_empty()
            && data.len() >= ADOPT_FROM
        {
            if let Some(stats) = whole_tuples(&data)? {
                self.stats.merge(stats);
                self.adopted = Some(data);
                return Ok(());
            }
        }
        self.feed(&data)
    }

    /// Appends stream bytes and advances over every tuple they complete.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), CopyFormatError> {
        if let Some(adopted) = self.adopted.take() {
            self.buf.extend_from_slice(&adopted);
            self.complete = adopted.len();
        }
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
        let Some(len) = header_len(&self.buf)? else {
            return Ok(false);
        };
        let _ = self.buf.split_to(len);
        self.state = State::Tuples;
        Ok(true)
    }

    /// Bytes of whole tuples waiting to be cut.
    pub fn ready_bytes(&self) -> usize {
        self.adopted.as_ref().map_or(self.complete, Bytes::len)
    }

    /// Cuts every whole tuple scanned so far.
    pub fn cut(&mut self) -> Cut {
        let data = match self.adopted.take() {
            Some(adopted) => adopted,
            None => self.buf.split_to(self.complete).freeze(),
        };
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

/// The stats of `data` when it is whole tuples and nothing else.
fn whole_tuples(data: &[u8]) -> Result<Option<TupleStats>, CopyFormatError> {
    let (mut at, mut stats) = (0, TupleStats::default());
    while at < data.len() {
        match tuple_len(&data[at..])? {
            TupleEnd::Tuple(len) => {
                stats.rows += 1;
                stats.checksum = stats.checksum.wrapping_add(tuple_hash(&data[at..at + len]));
                at += len;
            }
            TupleEnd::Trailer | TupleEnd::Incomplete => return Ok(None),
        }
    }
    Ok(Some(stats))
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
    fn a_large_piece_of_whole_tuples_is_kept_as_it_came() {
        let big = tuple(&[Some(&vec![7u8; ADOPT_FROM])]);
        let small = tuple(&[Some(b"x")]);
        let mut sc = TupleScanner::new();
        sc.feed(&header()).unwrap();
        let piece = Bytes::from(big.clone());
        sc.feed_bytes(piece.clone()).unwrap();
        assert_eq!(sc.ready_bytes(), big.len());
        let cut = sc.cut();
        assert_eq!(cut.data.as_ptr(), piece.as_ptr(), "no copy");
        assert_eq!(cut.stats.rows, 1);
        // Adopted, then more: the same cut as if fed byte by byte.
        sc.feed_bytes(piece).unwrap();
        sc.feed_bytes(Bytes::from(small.clone())).unwrap();
        sc.feed(&TRAILER).unwrap();
        let last = sc.finish().unwrap();
        assert_eq!(last.data.len(), big.len() + small.len());
        assert_eq!(last.stats, scan_tuples(&[big, small].concat()).unwrap());
    }

    #[test]
    fn a_large_first_row_sent_with_the_header_is_kept_as_it_came() {
        let big = tuple(&[Some(&vec![7u8; ADOPT_FROM])]);
        let piece = Bytes::from([header().to_vec(), big.clone()].concat());
        let mut sc = TupleScanner::new();
        sc.feed_bytes(piece.clone()).unwrap();
        let cut = sc.cut();
        assert_eq!(cut.data, big);
        assert_eq!(
            cut.data.as_ptr(),
            piece[header().len()..].as_ptr(),
            "no copy"
        );
        assert_eq!(cut.stats, scan_tuples(&big).unwrap());
        sc.feed(&TRAILER).unwrap();
        assert!(sc.finish().unwrap().data.is_empty());
        // A bad signature is still refused.
        let mut bad = piece.to_vec();
        bad[0] ^= 1;
        assert!(TupleScanner::new().feed_bytes(Bytes::from(bad)).is_err());
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
