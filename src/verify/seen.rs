//! Chunks one verify run has checked already. A content-addressed chunk (format 5)
//! that many backups list is downloaded and opened once; its verdict then counts for
//! every backup that lists it, damage included, so each of them reports it.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::archive::ChunkRecord;
use crate::pgcopy::TupleStats;

/// What a check of one chunk found: its tuples' stats when it was opened, or why it
/// failed.
pub(super) type ChunkOutcome = Result<Option<TupleStats>, String>;

/// The chunk's id with everything a manifest says about it: two manifests that
/// disagree on its length or rows get a check each.
type Key = (String, u64, u64, u64, bool);

#[derive(Default)]
pub struct SeenChunks(Mutex<HashMap<Key, ChunkOutcome>>);

fn key(c: &ChunkRecord, read: bool) -> Option<Key> {
    Some((c.id.clone()?, c.ct_len, c.raw_len, c.rows, read))
}

impl SeenChunks {
    /// The outcome of an earlier check of `c` (`read`: downloaded, or only its
    /// presence checked).
    pub(super) fn get(&self, c: &ChunkRecord, read: bool) -> Option<ChunkOutcome> {
        let key = key(c, read)?;
        self.0.lock().expect("not poisoned").get(&key).cloned()
    }

    pub(super) fn put(&self, c: &ChunkRecord, read: bool, outcome: &ChunkOutcome) {
        if let Some(key) = key(c, read) {
            self.0
                .lock()
                .expect("not poisoned")
                .insert(key, outcome.clone());
        }
    }
}
