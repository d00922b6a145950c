//! `--sample`: which share of the chunks a run reads. Chunks fall into buckets by a
//! stable hash; the caller remembers how many sampled runs came before, so successive
//! runs read successive buckets.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::archive::ChunkRecord;

/// Which share of the chunks a sampled run read.
#[derive(Debug, Clone, Serialize)]
pub struct SampleRun {
    pub percent: u8,
    /// The chunks fall into this many buckets (floor(100 / percent)).
    pub buckets: u64,
    /// The share this run really reads: 100 / buckets, never below `percent`.
    pub share_percent: f64,
    /// The bucket this run read, from 0.
    pub bucket: u64,
    /// `true` when the client state folder remembers the bucket, so the next run reads
    /// the next one; `false` when there is no state folder and the bucket was random.
    pub rotating: bool,
}

/// The chunks a sampled run reads.
pub struct Sample {
    pub run: SampleRun,
    /// Sampled runs before this one (the next bucket to read, modulo the buckets).
    pub runs: u64,
}

impl Sample {
    /// About `percent` of the chunks (1–100): the bucket after the `remembered` runs
    /// before this one, or a random bucket when nothing is remembered.
    pub fn new(percent: u8, remembered: Option<u64>) -> Sample {
        // floor(100 / percent) buckets: each run reads at least the share asked for.
        let buckets = (100 / u64::from(percent)).max(1);
        let (runs, rotating) = match remembered {
            Some(runs) => (runs, true),
            None => (rand::random::<u64>(), false),
        };
        Sample {
            run: SampleRun {
                percent,
                buckets,
                share_percent: 100.0 / buckets as f64,
                bucket: runs % buckets,
                rotating,
            },
            runs,
        }
    }

    pub(super) fn picks(&self, bid: &str, table_no: u32, chunk: &ChunkRecord) -> bool {
        bucket_of(bid, table_no, chunk.part, chunk.index, self.run.buckets) == self.run.bucket
    }
}

/// A stable bucket for a chunk: the same on every run and every machine, so buckets
/// read one after another cover everything exactly once.
fn bucket_of(bid: &str, table_no: u32, part: u32, index: u64, buckets: u64) -> u64 {
    let mut h = Sha256::new();
    h.update(b"pgbunker/v1/verify-sample\0");
    h.update(bid.as_bytes());
    h.update(table_no.to_be_bytes());
    h.update(part.to_be_bytes());
    h.update(index.to_be_bytes());
    let first: [u8; 8] = h.finalize()[..8].try_into().expect("8 bytes");
    u64::from_be_bytes(first) % buckets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_partition_the_chunks_and_every_bucket_gets_some() {
        let bid = "20260101T000000Z-00000000";
        for buckets in [1u64, 2, 3, 10] {
            let mut per = vec![0u32; buckets as usize];
            for t in 0..20u32 {
                for i in 0..50u64 {
                    let b = bucket_of(bid, t, 0, i, buckets);
                    assert_eq!(b, bucket_of(bid, t, 0, i, buckets), "stable");
                    per[b as usize] += 1;
                }
            }
            assert!(per.iter().all(|&n| n > 0), "{buckets}: {per:?}");
            assert_eq!(per.iter().sum::<u32>(), 1000);
        }
    }
}
