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
    /// Tables being streamed now, with how many of their parts started.
    in_flight: BTreeMap<String, u32>,
    /// Post-data statements: how many, how many ended, and those running.
    steps: Steps,
    /// The bar counts statements, not bytes (a restore of post-data only).
    counts_steps: bool,
}

#[derive(Default)]
struct Steps {
    total: u64,
    done: u64,
    running: BTreeMap<String, u32>,
}

impl Steps {
    fn started(&mut self, label: &str) {
        *self.running.entry(label.to_owned()).or_default() += 1;
    }

    fn finished(&mut self, label: &str) {
        self.done += 1;
        if let Some(n) = self.running.get_mut(label) {
            *n -= 1;
            if *n == 0 {
                self.running.remove(label);
            }
        }
    }

    /// `post-data 5/40: CREATE INDEX …`, or nothing before the first statement.
    fn describe(&self) -> Option<String> {
        (self.total > 0 && (self.done > 0 || !self.running.is_empty())).then(|| {
            let running: Vec<&str> = self.running.keys().map(String::as_str).collect();
            let running = if running.is_empty() {
                String::new()
            } else {
                format!(": {}", running.join(", "))
            };
            format!("post-data {}/{}{running}", self.done, self.total)
        })
    }
}

impl BarState {
    fn refresh(&self) {
        if let Some(b) = &self.bar {
            let mut parts = Vec::new();
            if !self.counts_steps {
                parts.push(format!("{}/{}", self.done, self.streams));
                parts.push(format!("{} rows", self.rows));
                let mut names: Vec<&str> =
                    self.in_flight.keys().map(String::as_str).take(3).collect();
                let more = format!("+{}", self.in_flight.len().saturating_sub(3));
                if self.in_flight.len() > 3 {
                    names.push(&more);
                }
                if !names.is_empty() {
                    parts.push(names.join(", "));
                }
            }
            parts.extend(self.steps.describe());
            b.set_message(parts.join(" · "));
        }
    }
}

/// Fits 80 columns: the message takes what is left of the line and is cut there.
const TEMPLATE: &str =
    "{prefix:>8} {elapsed:>4} {bar:20} {bytes:>10}/{total_bytes:<10} ETA {eta:>3} {wide_msg}";
const STEPS_TEMPLATE: &str = "{prefix:>8} {elapsed:>4} {bar:20} {pos}/{len} {wide_msg}";

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
        bar.set_style(ProgressStyle::with_template(TEMPLATE).expect("valid template"));
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
        s.in_flight.remove(label);
        s.refresh();
    }

    fn phase(&self, name: &str) {
        self.finish();
        eprintln!("· {name}");
    }

    fn steps(&self, total: u64) {
        let mut s = self.state.lock().expect("progress lock");
        s.steps = Steps {
            total,
            ..Default::default()
        };
        if s.bar.is_none() {
            let bar = ProgressBar::new(total);
            bar.set_style(ProgressStyle::with_template(STEPS_TEMPLATE).expect("valid template"));
            bar.set_prefix("restore");
            s.bar = Some(bar);
            s.counts_steps = true;
        }
    }

    fn step_started(&self, label: &str) {
        let mut s = self.state.lock().expect("progress lock");
        s.steps.started(label);
        s.refresh();
    }

    fn step_finished(&self, label: &str) {
        let mut s = self.state.lock().expect("progress lock");
        s.steps.finished(label);
        if s.counts_steps {
            if let Some(b) = &s.bar {
                b.inc(1);
            }
        }
        s.refresh();
    }

    fn finish(&self) {
        let mut s = self.state.lock().expect("progress lock");
        if let Some(b) = s.bar.take() {
            b.finish_and_clear();
        }
        s.steps = Steps::default();
        s.counts_steps = false;
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
    steps: Steps,
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
                steps: Steps::default(),
                started: now,
                last: now,
            }),
        }
    }
}

fn line(s: &LineState) -> String {
    let secs = s.started.elapsed().as_secs_f64().max(0.001);
    let steps = s
        .steps
        .describe()
        .map(|d| format!(", {d}"))
        .unwrap_or_default();
    format!(
        "{}: {}/{} tables, {} rows, {} raw, {:.1} MiB/s, {:.0} s{steps}",
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
            steps: Steps::default(),
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

    fn steps(&self, total: u64) {
        let mut s = self.state.lock().expect("progress lock");
        s.steps = Steps {
            total,
            ..Default::default()
        };
        if s.phase.is_empty() {
            s.phase = "restore".into();
        }
    }

    fn step_started(&self, label: &str) {
        self.state
            .lock()
            .expect("progress lock")
            .steps
            .started(label);
    }

    fn step_finished(&self, label: &str) {
        let mut s = self.state.lock().expect("progress lock");
        s.steps.finished(label);
        if s.last.elapsed() >= EVERY {
            s.last = Instant::now();
            eprintln!("{}", line(&s));
        }
    }

    fn finish(&self) {
        let mut s = self.state.lock().expect("progress lock");
        if !s.phase.is_empty() {
            eprintln!("{}", line(&s));
            s.phase.clear();
        }
        s.steps = Steps::default();
    }
}
