//! Drawing progress: indicatif bars on a terminal, log lines elsewhere.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// Plain lines on stderr when it is not a terminal (cron, CI, log files): the phases,
/// then a progress line at most every ten seconds, and per-table lines with `-v`.
pub struct Lines {
    state: Mutex<LineState>,
}

struct LineState {
    phase: String,
    tables: u64,
    done: u64,
    bytes: u64,
    rows: u64,
    started: Instant,
    last: Instant,
}

const EVERY: Duration = Duration::from_secs(10);

impl Lines {
    pub fn new() -> Self {
        let now = Instant::now();
        Lines {
            state: Mutex::new(LineState {
                phase: String::new(),
                tables: 0,
                done: 0,
                bytes: 0,
                rows: 0,
                started: now,
                last: now,
            }),
        }
    }
}

fn line(s: &LineState) -> String {
    let secs = s.started.elapsed().as_secs_f64().max(0.001);
    format!(
        "{}: {}/{} tables, {} rows, {} raw, {:.1} MiB/s, {:.0} s",
        s.phase,
        s.done,
        s.tables,
        s.rows,
        crate::render::size(s.bytes),
        s.bytes as f64 / secs / (1 << 20) as f64,
        secs
    )
}

impl Progress for Lines {
    fn start(&self, phase: &str, tables: u64, _estimated_bytes: u64) {
        let mut s = self.state.lock().expect("progress lock");
        let now = Instant::now();
        *s = LineState {
            phase: phase.to_owned(),
            tables,
            done: 0,
            bytes: 0,
            rows: 0,
            started: now,
            last: now,
        };
        eprintln!("{phase}: {tables} tables");
    }

    fn chunk_done(&self, _label: &str, raw_bytes: u64, rows: u64) {
        let mut s = self.state.lock().expect("progress lock");
        s.bytes += raw_bytes;
        s.rows += rows;
        if s.last.elapsed() >= EVERY {
            s.last = Instant::now();
            eprintln!("{}", line(&s));
        }
    }

    fn table_finished(&self, label: &str, rows: u64) {
        let mut s = self.state.lock().expect("progress lock");
        s.done += 1;
        tracing::info!("{label}: {rows} rows");
    }

    fn phase(&self, name: &str) {
        eprintln!("{name}");
    }

    fn finish(&self) {
        let mut s = self.state.lock().expect("progress lock");
        if !s.phase.is_empty() {
            eprintln!("{}", line(&s));
            s.phase.clear();
        }
    }
}
