//! Drawing progress: indicatif bars on a terminal, log lines elsewhere.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use pgbunker::progress::Progress;

/// Bars on stderr when it is a terminal: bytes, throughput and ETA on the bar; streams
/// done, rows and the tables in flight in its message.
pub struct Bars {
    state: Mutex<BarState>,
}

#[derive(Default)]
struct BarState {
    bar: Option<ProgressBar>,
    streams: u64,
    done: u64,
    rows: u64,
    /// Tables being streamed now, with how many of their parts are in flight.
    in_flight: BTreeMap<String, u32>,
}

impl BarState {
    fn refresh(&self) {
        if let Some(b) = &self.bar {
            let mut names: Vec<&str> = self.in_flight.keys().map(String::as_str).take(3).collect();
            let more = format!("+{}", self.in_flight.len().saturating_sub(3));
            if self.in_flight.len() > 3 {
                names.push(&more);
            }
            b.set_message(format!(
                "{}/{} · {} rows · {}",
                self.done,
                self.streams,
                self.rows,
                names.join(", ")
            ));
        }
    }
}

impl Bars {
    pub fn new() -> Self {
        Bars {
            state: Mutex::new(BarState::default()),
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
        *self.state.lock().expect("progress lock") = BarState {
            bar: Some(bar),
            streams: tables,
            ..Default::default()
        };
    }

    fn table_started(&self, label: &str) {
        let mut s = self.state.lock().expect("progress lock");
        *s.in_flight.entry(label.to_owned()).or_default() += 1;
        s.refresh();
    }

    fn chunk_done(&self, _label: &str, raw_bytes: u64, rows: u64) {
        let mut s = self.state.lock().expect("progress lock");
        s.rows += rows;
        if let Some(b) = &s.bar {
            b.inc(raw_bytes);
            if b.position() > b.length().unwrap_or(0) {
                b.set_length(b.position());
            }
        }
        s.refresh();
    }

    fn table_finished(&self, label: &str, _rows: u64) {
        let mut s = self.state.lock().expect("progress lock");
        s.done += 1;
        if let Some(n) = s.in_flight.get_mut(label) {
            *n -= 1;
            if *n == 0 {
                s.in_flight.remove(label);
            }
        }
        s.refresh();
    }

    fn phase(&self, name: &str) {
        self.finish();
        eprintln!("· {name}");
    }

    fn finish(&self) {
        if let Some(b) = self.state.lock().expect("progress lock").bar.take() {
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
