//! Where chunks end: between tuples, where a keyed PRF of the tuple says so. A boundary
//! then depends only on the tuples around it, so rows appended to a table, or a few
//! changed, change only the chunks around them, and the chunks of unchanged rows come
//! out byte for byte as in the previous backup (and are stored once).
//!
//! The PRF is AES-256 under the repository's boundary key applied to the tuple's
//! XXH3-128 (already computed for the checksum): one block per tuple. A gear or buzhash
//! table keyed by a secret is not used: its linear structure lets the key be recovered
//! from observed chunk sizes; a block cipher has no such structure.
//!
//! A tuple of `len` bytes ends a chunk with probability `len / (target − min)`, once the
//! chunk holds `min = target / 4` bytes, so chunks average `target` bytes whatever the
//! width of the rows; a chunk ends at `4 × target` at the latest, and a tuple of
//! [`ALONE_FROM`] bytes or more is a chunk of its own (it can then be kept as the
//! server sent it, without a copy).

use std::collections::VecDeque;

use aes::cipher::{BlockEncrypt, KeyInit};
use bytes::Bytes;

use super::TupleStats;

/// Tuples this large are chunks of their own.
pub const ALONE_FROM: usize = 1 << 20;

/// Where a closed chunk's bytes are.
#[derive(Debug)]
pub(super) enum Closed {
    /// The next `n` bytes at the front of the scanner's buffer.
    Front(usize),
    /// A tuple kept as it came.
    Kept(Bytes),
}

/// Decides boundaries tuple by tuple and keeps what each closed chunk holds.
pub struct Cutter {
    prf: aes::Aes256,
    min: usize,
    max: usize,
    /// `target − min`: the mean of the geometric part of a chunk's size.
    spread: u128,
    open_len: usize,
    open: TupleStats,
    closed: VecDeque<(Closed, TupleStats)>,
}

impl Cutter {
    /// `key` is the repository's boundary key; `target` the average chunk size.
    pub fn new(key: &[u8; 32], target: usize) -> Cutter {
        let target = target.max(64);
        let min = target / 4;
        Cutter {
            prf: aes::Aes256::new(key.into()),
            min,
            max: target * 4,
            spread: (target - min) as u128,
            open_len: 0,
            open: TupleStats::default(),
            closed: VecDeque::new(),
        }
    }

    fn ends_chunk(&self, len: usize, hash: u128) -> bool {
        if self.open_len >= self.max {
            return true;
        }
        if self.open_len < self.min {
            return false;
        }
        let mut block = hash.to_be_bytes().into();
        self.prf.encrypt_block(&mut block);
        let draw = u64::from_be_bytes(block[..8].try_into().expect("8 bytes"));
        let threshold = ((len as u128) << 64) / self.spread;
        u128::from(draw) < threshold
    }

    fn close_open(&mut self) {
        if self.open_len > 0 {
            let stats = std::mem::take(&mut self.open);
            self.closed
                .push_back((Closed::Front(std::mem::take(&mut self.open_len)), stats));
        }
    }

    /// A tuple that went into the scanner's buffer.
    pub(super) fn tuple(&mut self, len: usize, hash: u128) {
        if len >= ALONE_FROM {
            self.close_open();
        }
        self.open.rows += 1;
        self.open.checksum = self.open.checksum.wrapping_add(hash);
        self.open_len += len;
        if len >= ALONE_FROM || self.ends_chunk(len, hash) {
            self.close_open();
        }
    }

    /// A tuple of [`ALONE_FROM`] bytes or more, kept as it came: the chunk before it
    /// closes, and it is a chunk of its own.
    pub(super) fn kept(&mut self, tuple: Bytes, hash: u128) {
        debug_assert!(tuple.len() >= ALONE_FROM);
        self.close_open();
        let stats = TupleStats {
            rows: 1,
            checksum: hash,
        };
        self.closed.push_back((Closed::Kept(tuple), stats));
    }

    pub(super) fn pop(&mut self) -> Option<(Closed, TupleStats)> {
        self.closed.pop_front()
    }

    /// The last chunk: what is open (every closed one must have been taken).
    pub(super) fn rest(&mut self) -> (usize, TupleStats) {
        debug_assert!(self.closed.is_empty());
        (
            std::mem::take(&mut self.open_len),
            std::mem::take(&mut self.open),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunk lengths for a run of tuples of `len` bytes with hashes from `seed`.
    fn lengths(c: &mut Cutter, tuples: impl Iterator<Item = (usize, u128)>) -> Vec<usize> {
        let mut out = Vec::new();
        for (len, h) in tuples {
            c.tuple(len, h);
            while let Some((Closed::Front(n), _)) = c.pop() {
                out.push(n);
            }
        }
        out
    }

    fn hashes(n: u128, len: usize) -> impl Iterator<Item = (usize, u128)> {
        (0..n).map(move |i| (len, xxhash_rust::xxh3::xxh3_128(&i.to_be_bytes())))
    }

    #[test]
    fn chunks_average_the_target_within_their_bounds() {
        let mut c = Cutter::new(&[1; 32], 64 << 10);
        let l = lengths(&mut c, hashes(200_000, 100));
        let mean = l.iter().sum::<usize>() / l.len();
        assert!((48 << 10..80 << 10).contains(&mean), "mean {mean}");
        assert!(l
            .iter()
            .all(|&n| (16 << 10..=(256 << 10) + 100).contains(&n)));
        // Wide rows: the same average in bytes.
        let mut c = Cutter::new(&[1; 32], 64 << 10);
        let l = lengths(&mut c, hashes(20_000, 1000));
        let mean = l.iter().sum::<usize>() / l.len();
        assert!((48 << 10..80 << 10).contains(&mean), "mean {mean}");
    }

    #[test]
    fn boundaries_resynchronise_after_an_insertion_and_depend_on_the_key() {
        let run = |key: u8, skip: Option<u128>| {
            let mut c = Cutter::new(&[key; 32], 16 << 10);
            let tuples = hashes(50_000, 100)
                .enumerate()
                .filter(move |(i, _)| Some(*i as u128) != skip);
            let mut ends = Vec::new();
            let mut at = 0usize;
            for (i, (len, h)) in tuples {
                c.tuple(len, h);
                at = i;
                while c.pop().is_some() {
                    ends.push(at);
                }
            }
            let _ = at;
            ends
        };
        let (a, b) = (run(1, None), run(1, Some(1000)));
        // After the removed tuple, the boundaries fall on the same tuples again.
        let tail = |v: &Vec<usize>| v.iter().copied().filter(|&i| i > 5000).collect::<Vec<_>>();
        assert_eq!(tail(&a), tail(&b));
        assert_ne!(a, run(2, None), "another key, other boundaries");
    }

    #[test]
    fn a_huge_tuple_stands_alone() {
        let mut c = Cutter::new(&[1; 32], 4 << 20);
        c.tuple(10, 1);
        c.kept(Bytes::from(vec![0u8; ALONE_FROM]), 2);
        c.tuple(ALONE_FROM + 5, 3);
        c.tuple(10, 4);
        let got: Vec<(usize, u64)> = std::iter::from_fn(|| c.pop())
            .map(|(closed, s)| match closed {
                Closed::Front(n) => (n, s.rows),
                Closed::Kept(b) => (b.len(), s.rows),
            })
            .collect();
        assert_eq!(got, vec![(10, 1), (ALONE_FROM, 1), (ALONE_FROM + 5, 1)]);
        assert_eq!(c.rest().0, 10);
    }
}
