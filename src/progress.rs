//! Progress events emitted by long operations.
//!
//! The library never draws anything: it reports events through this trait, and the
//! binary decides between progress bars, log lines or nothing. Implementations must be
//! cheap and thread-safe because workers call them from many tasks at once.

/// Receives progress events from backup and restore.
pub trait Progress: Send + Sync {
    /// The operation knows its total amount of work: how many tables and roughly how
    /// many bytes.
    fn start(&self, _phase: &str, _tables: u64, _estimated_bytes: u64) {}
    /// A table, or one part of a split table, started streaming. `label` is the
    /// qualified table name: show it locally, it is never written to the repository
    /// in clear.
    fn table_started(&self, _label: &str) {}
    /// A chunk of a table was processed.
    fn chunk_done(&self, _label: &str, _raw_bytes: u64, _rows: u64) {}
    /// A table finished: all its parts.
    fn table_finished(&self, _label: &str, _rows: u64) {}
    /// A phase outside table streaming (pre-data, sequence values, ...) began.
    fn phase(&self, _name: &str) {}
    /// Statements run beside and after the tables (keys, indexes, foreign keys,
    /// ANALYZE): how many there are, announced once.
    fn steps(&self, _total: u64) {}
    /// One of them began; `label` is its first line.
    fn step_started(&self, _label: &str) {}
    /// One of them ended (succeeded or not).
    fn step_finished(&self, _label: &str) {}
    /// The operation ended (successfully or not); drawers should clear themselves.
    fn finish(&self) {}
}

/// Parts still to come and rows so far, per table: backup and restore stream a big
/// table in several parts, and progress counts tables.
pub struct TableTally(std::sync::Mutex<Vec<(u32, u64)>>);

impl TableTally {
    /// `parts[i]`: how many parts table (slot) `i` comes in; 0 for none.
    pub fn new(parts: Vec<u32>) -> Self {
        TableTally(std::sync::Mutex::new(
            parts.into_iter().map(|p| (p, 0)).collect(),
        ))
    }

    /// Tables with at least one part.
    pub fn tables(&self) -> u64 {
        let t = self.0.lock().expect("tally lock");
        t.iter().filter(|(p, _)| *p > 0).count() as u64
    }

    /// Counts `parts` of table `slot` done with `rows`; the table's rows once it is
    /// whole, to report it finished.
    pub fn done(&self, slot: usize, parts: u32, rows: u64) -> Option<u64> {
        let mut t = self.0.lock().expect("tally lock");
        let (left, total) = &mut t[slot];
        *left -= parts;
        *total += rows;
        (*left == 0).then_some(*total)
    }
}

/// A progress sink that ignores everything, for tests and `--no-progress`.
pub struct NoProgress;

impl Progress for NoProgress {}
