//! Drawing progress: indicatif bars on a terminal, log lines elsewhere.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use pgbunker::progress::Progress;

/// Bars on stderr when it is a terminal.
pub struct Bars {
    bar: Mutex<Option<ProgressBar>>,
    tables: AtomicU64,
    done: AtomicU64,
}

impl Bars {
    pub fn new() -> Self {
        Bars {
            bar: Mutex::new(None),
            tables: AtomicU64::new(0),
            done: AtomicU64::new(0),
        }
    }

    fn with(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(b) = self.bar.lock().expect("progress lock").as_ref() {
            f(b)
        }
    }
}

impl Progress for Bars {
    fn start(&self, phase: &str, tables: u64, estimated_bytes: u64) {
        let bar = ProgressBar::new(estimated_bytes.max(1));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
            )
            .expect("valid template"),
        );
        bar.set_prefix(phase.to_owned());
        self.tables.store(tables, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        *self.bar.lock().expect("progress lock") = Some(bar);
    }

    fn table_started(&self, label: &str) {
        self.with(|b| b.set_message(label.to_owned()));
    }

    fn chunk_done(&self, _label: &str, raw_bytes: u64, _rows: u64) {
        self.with(|b| {
            b.inc(raw_bytes);
            if b.position() > b.length().unwrap_or(0) {
                b.set_length(b.position());
            }
        });
    }

    fn table_finished(&self, label: &str, _rows: u64) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.tables.load(Ordering::Relaxed);
        self.with(|b| b.set_message(format!("{done}/{total} tables, last {label}")));
    }

    fn phase(&self, name: &str) {
        self.finish();
        eprintln!("· {name}");
    }

    fn finish(&self) {
        if let Some(b) = self.bar.lock().expect("progress lock").take() {
            b.finish_and_clear();
        }
    }
}

/// Log lines (through tracing) when stderr is not a terminal.
pub struct Lines;

impl Progress for Lines {
    fn start(&self, phase: &str, tables: u64, estimated_bytes: u64) {
        tracing::info!("{phase}: {tables} tables, about {estimated_bytes} bytes on disk");
    }

    fn table_finished(&self, label: &str, rows: u64) {
        tracing::info!("{label}: {rows} rows");
    }

    fn phase(&self, name: &str) {
        tracing::info!("{name}");
    }
}
