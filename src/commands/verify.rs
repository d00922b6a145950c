//! `pgbunker verify`: proves that backups would restore, without a database, and
//! restore's pre-flight check that refuses a damaged backup before the target is
//! touched.
//!
//! A backup is only as good as its last successful restore; verify runs everything a
//! restore would check except the database itself, and keeps going past the first
//! problem so one run names every damaged table and chunk. Three depths, each a
//! superset of the one before:
//!
//! - metadata: the catalog chain and high-water mark, the manifest (catalog hash, data
//!   key commitment, AEAD), the manifest's own arithmetic (each part ends with one
//!   FINAL chunk, contiguous indexes, row and byte totals), `summary.json`, and every
//!   chunk present with its recorded length (HEAD requests, no download);
//! - stored: every chunk downloaded and its SHA-256 compared (restore's pre-flight:
//!   loading authenticates and counts each chunk anyway, so hashes are what it must
//!   know before it starts writing);
//! - data: every chunk authenticated, decrypted, decompressed within its recorded
//!   length, its tuples parsed and counted, and each part's content checksum recomputed.
//!
//! `--sample` reads a share of the chunks at depth data. Chunks fall into buckets by a
//! stable hash and a counter in the client state folder moves to the next bucket on
//! every run, so a weekly 10 % sample has read every chunk after ten weeks.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::audit::Audit;
use super::{CommandError, RepoAccess};
use crate::archive::lock::{LockGuard, LockKind};
use crate::archive::{
    ArchiveError, BackupLayout, BackupReader, ChunkRecord, CopyFormat, LargeObjects, LiveBackup,
    Manifest, Repository, TableRecord,
};
use crate::codec::on_cpu_pool;
use crate::error::{Class, Classify};
use crate::pgcopy::{scan_text_rows, scan_tuples, TupleStats};
use crate::progress::Progress;
use crate::store::StoreError;

/// A report lists at most this many problems (all are counted): a repository that
/// lost a whole folder would otherwise print one line per chunk.
pub const MAX_PROBLEMS: usize = 1000;

/// Presence checks carry no body, so memory does not bound them; on object storage
/// their latency does, hence more of them in flight than downloads.
const HEAD_CONCURRENCY: usize = 32;

/// The record in the client state folder that remembers which sample bucket is next.
const SAMPLE_RECORD: &str = "verify";

/// How deep a check goes; each depth includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Depth {
    Metadata,
    Stored,
    Data,
}

impl fmt::Display for Depth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Depth::Metadata => "metadata",
            Depth::Stored => "stored",
            Depth::Data => "data",
        })
    }
}

#[derive(Debug)]
pub struct VerifyOptions {
    pub repo: RepoAccess,
    /// A backup id, `latest`, or `all` (every complete backup).
    pub backup: String,
    pub depth: Depth,
    /// Read only about this percentage of the chunks (1–100), a different share on
    /// every run; needs a depth that reads chunks.
    pub sample: Option<u8>,
    /// Chunks downloaded and opened at once: memory stays around two chunks per job.
    pub jobs: usize,
}

/// One thing wrong with a backup: which table and chunk, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// `schema.name`, when the problem belongs to one table.
    pub table: Option<String>,
    pub chunk: Option<ChunkRef>,
    pub reason: String,
}

/// Where a damaged chunk is, so it can be inspected or restored from a copy of the
/// repository; `part` and `index` are repeated because the path encodes them only by
/// convention.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkRef {
    pub path: String,
    pub part: u32,
    pub index: u64,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.table, &self.chunk) {
            (Some(t), Some(c)) => write!(f, "{t} [part {}, chunk {}]: ", c.part, c.index)?,
            (Some(t), None) => write!(f, "{t}: ")?,
            _ => {}
        }
        f.write_str(&self.reason)
    }
}

/// The verdict on one backup.
#[derive(Debug, Clone, Serialize)]
pub struct BackupVerdict {
    pub backup_id: String,
    pub ok: bool,
    pub tables: u64,
    pub chunks: u64,
    /// Chunks this run downloaded or tried to (every chunk at depths stored and data,
    /// a share of them with a sample), damaged ones included.
    pub chunks_read: u64,
    pub bytes_read: u64,
    /// Rows parsed and counted (depth data).
    pub rows_read: u64,
    /// Parts (a table streamed whole is one part) in the backup, and those whose rows
    /// and content checksum were recomputed and compared: every chunk of the part must
    /// have been read, so a sample compares only the parts it covered whole.
    pub parts: u64,
    pub parts_checksummed: u64,
    /// The first problems found (the report holds at most [`MAX_PROBLEMS`]).
    pub problems: Vec<Problem>,
    /// Problems found beyond those listed.
    pub unlisted_problems: u64,
}

impl BackupVerdict {
    pub fn problem_count(&self) -> u64 {
        self.problems.len() as u64 + self.unlisted_problems
    }
}

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

/// Also what a failed run returns (inside [`CommandError::VerifyFailed`]), so the
/// damage can be shown, not only counted.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub location: String,
    pub depth: Depth,
    pub sample: Option<SampleRun>,
    pub ok: bool,
    pub backups: Vec<BackupVerdict>,
    /// Every problem found, listed or not.
    pub problems: u64,
    pub seconds: f64,
}

impl VerifyReport {
    pub fn chunks(&self) -> u64 {
        self.backups.iter().map(|b| b.chunks).sum()
    }

    pub fn chunks_read(&self) -> u64 {
        self.backups.iter().map(|b| b.chunks_read).sum()
    }

    /// The one-line outcome of a failed run, for the error line after the report.
    pub fn failure(&self) -> String {
        let damaged = self.backups.iter().filter(|b| !b.ok).count();
        format!(
            "verification found {} in {damaged} of {} backup{}",
            plural(self.problems, "problem"),
            self.backups.len(),
            if self.backups.len() == 1 { "" } else { "s" }
        )
    }
}

impl Audit for VerifyReport {
    fn backup_id(&self) -> Option<String> {
        match self.backups.as_slice() {
            [one] => Some(one.backup_id.clone()),
            _ => None,
        }
    }

    fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "depth": self.depth,
            "sample": self.sample,
            "backups": self.backups.len(),
            "chunks": self.chunks(),
            "chunks_read": self.chunks_read(),
            "bytes_read": self.backups.iter().map(|b| b.bytes_read).sum::<u64>(),
            "problems": self.problems,
            "seconds": self.seconds,
        })
    }
}

fn plural(n: u64, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// The message of restore's refusal: the problems themselves (a few), since restore
/// prints no report.
pub(crate) fn preflight_failure(v: &BackupVerdict) -> String {
    const SHOWN: usize = 10;
    let mut out = format!(
        "restore refused: backup {} failed the pre-flight check with {}; nothing was \
         written to the target",
        v.backup_id,
        plural(v.problem_count(), "problem")
    );
    for p in v.problems.iter().take(SHOWN) {
        out.push_str(&format!("\n  {p}"));
    }
    let more = v.problem_count().saturating_sub(SHOWN as u64);
    if more > 0 {
        out.push_str(&format!("\n  … and {more} more"));
    }
    out
}

pub async fn verify(
    opts: &VerifyOptions,
    progress: Arc<dyn Progress>,
) -> Result<VerifyReport, CommandError> {
    let started = Instant::now();
    if opts.sample.is_some() && opts.depth == Depth::Metadata {
        return Err(CommandError::Usage(
            "a sample chooses which chunks to download: use it at depth data or stored".into(),
        ));
    }
    if opts.sample.is_some_and(|p| !(1..=100).contains(&p)) {
        return Err(CommandError::Usage(
            "--sample takes a percentage from 1 to 100".into(),
        ));
    }
    let repo = opts.repo.open().await?;
    let targets = targets(&repo, &opts.backup).await?;
    let sample = opts
        .sample
        .map(|p| next_sample(&opts.repo, &repo, p))
        .transpose()?;

    let mut backups = Vec::new();
    let mut room = MAX_PROBLEMS;
    for live in &targets {
        // A reader's lock keeps prune from deleting chunks under the check, which
        // would report a sound backup as damaged. Verify only reads, so credentials
        // that cannot write locks still verify, with a warning.
        let lock = match LockGuard::acquire(&repo, LockKind::Restore, &live.bid).await {
            Ok(lock) => Some(lock),
            Err(e) => {
                tracing::warn!(
                    "could not take a lock on backup {} ({e}); verifying without one: a \
                     prune running meanwhile could make chunks look missing",
                    live.bid
                );
                None
            }
        };
        // Pruned between listing and locking: under `all` there is nothing left to
        // check; a backup named on its own is gone, which resolve says.
        if let Some(held) = &lock {
            if let Err(e) = repo.resolve(&live.bid).await {
                held.delete().await?;
                if opts.backup == "all" {
                    continue;
                }
                return Err(e.into());
            }
        }
        let check = Check {
            depth: opts.depth,
            sample: sample.as_ref(),
            only: None,
            jobs: opts.jobs,
            room,
            progress: progress.as_ref(),
        };
        let verdict = match BackupReader::open(&repo, live).await {
            Ok(reader) => check.run(&repo, &reader).await,
            Err(e) if e.class() == Class::Corrupt => Ok(unreadable(live, &e, room)),
            Err(e) => Err(e.into()),
        };
        if let Some(lock) = lock {
            lock.release().await?;
        }
        let verdict = verdict?;
        progress.finish();
        room -= verdict.problems.len();
        backups.push(verdict);
    }
    if let (Some(s), Some(dir)) = (&sample, &opts.repo.state) {
        let done = SampleState {
            location: repo.store().location().into(),
            runs: s.runs + 1,
        };
        dir.store_record(SAMPLE_RECORD, &done.location, &done)?;
    }
    let problems = backups.iter().map(BackupVerdict::problem_count).sum();
    let report = VerifyReport {
        location: repo.store().location().into(),
        depth: opts.depth,
        sample: sample.map(|s| s.run),
        ok: problems == 0,
        backups,
        problems,
        seconds: started.elapsed().as_secs_f64(),
    };
    if report.ok {
        Ok(report)
    } else {
        Err(CommandError::VerifyFailed(Box::new(report)))
    }
}

/// Restore's pre-flight: the manifest and every chunk's presence, length and SHA-256,
/// before anything is written to the target.
/// Checks the chunks of the tables numbered `tables` (those a restore loads).
pub(crate) async fn preflight(
    repo: &Repository,
    reader: &BackupReader,
    tables: &[u32],
    jobs: usize,
    progress: &dyn Progress,
) -> Result<(), CommandError> {
    let check = Check {
        depth: Depth::Stored,
        sample: None,
        only: Some(tables),
        jobs,
        room: MAX_PROBLEMS,
        progress,
    };
    let verdict = check.run(repo, reader).await?;
    progress.finish();
    if verdict.ok {
        Ok(())
    } else {
        Err(CommandError::PreflightFailed(Box::new(verdict)))
    }
}

/// The backups `which` names, newest first.
async fn targets(repo: &Repository, which: &str) -> Result<Vec<LiveBackup>, CommandError> {
    if which != "all" {
        return Ok(vec![repo.resolve(which).await?]);
    }
    let mut live = repo.catalog().await?.live;
    if live.is_empty() {
        return Err(ArchiveError::NoBackups.into());
    }
    // Ids carry whole seconds only: the commit time orders backups of the same second.
    let when = |b: &LiveBackup| {
        time::OffsetDateTime::parse(
            &b.created_at,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()
    };
    live.sort_by(|a, b| (when(b), &b.bid).cmp(&(when(a), &a.bid)));
    Ok(live)
}

/// What the client state folder remembers between sampled runs.
#[derive(Debug, Serialize, Deserialize)]
struct SampleState {
    location: String,
    runs: u64,
}

struct Sample {
    run: SampleRun,
    /// Sampled runs before this one (the next bucket to read, modulo the buckets).
    runs: u64,
}

impl Sample {
    fn picks(&self, bid: &str, table_no: u32, chunk: &ChunkRecord) -> bool {
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

fn next_sample(
    access: &RepoAccess,
    repo: &Repository,
    percent: u8,
) -> Result<Sample, CommandError> {
    // floor(100 / percent) buckets: each run reads at least the share asked for.
    let buckets = (100 / u64::from(percent)).max(1);
    let location = repo.store().location();
    let (runs, rotating) = match &access.state {
        Some(dir) => {
            let state: Option<SampleState> = dir.load_record(SAMPLE_RECORD, location)?;
            (state.map_or(0, |s| s.runs), true)
        }
        None => (rand::random::<u64>(), false),
    };
    Ok(Sample {
        run: SampleRun {
            percent,
            buckets,
            share_percent: 100.0 / buckets as f64,
            bucket: runs % buckets,
            rotating,
        },
        runs,
    })
}

/// A backup whose manifest (or data key) cannot even be opened.
fn unreadable(live: &LiveBackup, e: &ArchiveError, room: usize) -> BackupVerdict {
    let mut found = Findings::new(room);
    found.add(Problem {
        table: None,
        chunk: None,
        reason: reason(e),
    });
    found.verdict(&live.bid, Counts::default())
}

/// An error's own sentence, without the generic "the repository is corrupt" prefix.
fn reason(e: &ArchiveError) -> String {
    match e {
        ArchiveError::Corrupt(why) => why.clone(),
        other => other.to_string(),
    }
}

/// The problems of one backup: all counted, the first `room` kept.
struct Findings {
    listed: Vec<Problem>,
    unlisted: u64,
    room: usize,
}

impl Findings {
    fn new(room: usize) -> Self {
        Findings {
            listed: Vec::new(),
            unlisted: 0,
            room,
        }
    }

    fn add(&mut self, p: Problem) {
        if self.listed.len() < self.room {
            self.listed.push(p);
        } else {
            self.unlisted += 1;
        }
    }

    fn table(&mut self, rec: &TableRecord, reason: String) {
        self.add(Problem {
            table: Some(label(rec)),
            chunk: None,
            reason,
        });
    }

    fn chunk(&mut self, rec: &TableRecord, chunk: &ChunkRecord, path: &str, reason: String) {
        self.add(Problem {
            table: Some(label(rec)),
            chunk: Some(ChunkRef {
                path: path.into(),
                part: chunk.part,
                index: chunk.index,
            }),
            reason,
        });
    }

    fn is_empty(&self) -> bool {
        self.listed.is_empty() && self.unlisted == 0
    }

    /// Chunks finish in any order; the report lists the backup's own problems first,
    /// then by table name, each table's own problems before its chunks', chunks in
    /// order: the same on every run.
    fn verdict(mut self, bid: &str, counts: Counts) -> BackupVerdict {
        self.listed
            .sort_by_cached_key(|p| (p.table.clone(), p.chunk.as_ref().map(|c| (c.part, c.index))));
        BackupVerdict {
            backup_id: bid.into(),
            ok: self.is_empty(),
            tables: counts.tables,
            chunks: counts.chunks,
            chunks_read: counts.chunks_read,
            bytes_read: counts.bytes_read,
            rows_read: counts.rows_read,
            parts: counts.parts,
            parts_checksummed: counts.parts_checksummed,
            problems: self.listed,
            unlisted_problems: self.unlisted,
        }
    }
}

#[derive(Default)]
struct Counts {
    tables: u64,
    chunks: u64,
    chunks_read: u64,
    bytes_read: u64,
    rows_read: u64,
    parts: u64,
    parts_checksummed: u64,
}

fn label(rec: &TableRecord) -> String {
    format!("{}.{}", rec.schema, rec.name)
}

fn parse_checksum(hex: &str) -> Option<u128> {
    u128::from_str_radix(hex, 16).ok()
}

/// One chunk to download, and where it lives.
struct ChunkJob {
    table: usize,
    chunk: ChunkRecord,
    path: String,
}

/// A downloaded chunk: its stats at depth data, or why it failed.
struct ChunkDone {
    job: ChunkJob,
    bytes: u64,
    outcome: Result<Option<TupleStats>, String>,
}

/// One backup's check at one depth.
struct Check<'a> {
    depth: Depth,
    sample: Option<&'a Sample>,
    /// Only these tables (manifest numbers); all when `None`.
    only: Option<&'a [u32]>,
    jobs: usize,
    /// How many more problems the report may list.
    room: usize,
    progress: &'a dyn Progress,
}

impl Check<'_> {
    async fn run(
        &self,
        repo: &Repository,
        reader: &BackupReader,
    ) -> Result<BackupVerdict, CommandError> {
        let m = reader.manifest();
        let layout = BackupLayout::new(&m.backup_id);
        let mut found = Findings::new(self.room);
        check_manifest(m, &mut found);
        check_summary(repo, m, &layout, &mut found).await?;

        let tables: Vec<Arc<TableRecord>> = m
            .tables
            .iter()
            .chain(m.large_object_data())
            .filter(|t| self.only.is_none_or(|o| o.contains(&t.table_no)))
            .cloned()
            .map(Arc::new)
            .collect();
        let mut reads = Vec::new();
        let mut heads = Vec::new();
        for (t, rec) in tables.iter().enumerate() {
            for c in &rec.chunks {
                let job = ChunkJob {
                    table: t,
                    chunk: c.clone(),
                    path: layout.chunk(rec.table_no, c.part, c.index),
                };
                let read = self.depth >= Depth::Stored
                    && self
                        .sample
                        .is_none_or(|s| s.picks(&m.backup_id, rec.table_no, c));
                if read {
                    reads.push(job);
                } else {
                    heads.push(job);
                }
            }
        }
        let mut counts = Counts {
            tables: tables.len() as u64,
            chunks: (reads.len() + heads.len()) as u64,
            parts: tables
                .iter()
                .map(|t| t.effective_parts().len() as u64)
                .sum(),
            ..Default::default()
        };
        self.check_present(repo, &tables, heads, &mut found).await?;
        let read = self.read_chunks(reader, &tables, reads, &mut found).await?;
        counts.chunks_read = read.chunks;
        counts.bytes_read = read.bytes;
        counts.rows_read = read.rows;
        if self.depth == Depth::Data {
            counts.parts_checksummed = compare_parts(&tables, &read.parts, &mut found);
        }
        Ok(found.verdict(&m.backup_id, counts))
    }

    /// HEAD requests: each chunk there, with the length the manifest recorded.
    async fn check_present(
        &self,
        repo: &Repository,
        tables: &[Arc<TableRecord>],
        jobs: Vec<ChunkJob>,
        found: &mut Findings,
    ) -> Result<(), CommandError> {
        if jobs.is_empty() {
            return Ok(());
        }
        self.progress.phase(&format!(
            "checking that {} are present",
            plural(jobs.len() as u64, "chunk")
        ));
        let store = repo.store();
        let mut sizes = futures::stream::iter(jobs)
            .map(|job| async move {
                let size = store.size(&job.path).await;
                (job, size)
            })
            .buffer_unordered(HEAD_CONCURRENCY);
        while let Some((job, size)) = sizes.next().await {
            let rec = &tables[job.table];
            match size.map_err(ArchiveError::from)? {
                None => found.chunk(
                    rec,
                    &job.chunk,
                    &job.path,
                    format!("chunk {} is missing", job.path),
                ),
                Some(n) if n != job.chunk.ct_len => found.chunk(
                    rec,
                    &job.chunk,
                    &job.path,
                    format!(
                        "chunk {} is {n} bytes, the manifest says {}",
                        job.path, job.chunk.ct_len
                    ),
                ),
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Downloads (and at depth data opens and scans) chunks, `jobs` at a time.
    async fn read_chunks(
        &self,
        reader: &BackupReader,
        tables: &[Arc<TableRecord>],
        jobs: Vec<ChunkJob>,
        found: &mut Findings,
    ) -> Result<ReadTotals, CommandError> {
        let mut totals = ReadTotals::default();
        if jobs.is_empty() {
            return Ok(totals);
        }
        // Progress counts table data covered (raw bytes), as restore's does.
        let raw: u64 = jobs.iter().map(|j| j.chunk.raw_len).sum();
        let mut left: HashMap<usize, usize> = HashMap::new();
        for j in &jobs {
            *left.entry(j.table).or_default() += 1;
        }
        self.progress.start(
            if self.depth == Depth::Data {
                "verify"
            } else {
                "pre-flight"
            },
            left.len() as u64,
            raw,
        );
        let depth = self.depth;
        let mut done = futures::stream::iter(jobs)
            .map(|job| {
                let (reader, rec) = (reader.clone(), tables[job.table].clone());
                async move { read_one(reader, rec, job, depth).await }
            })
            .buffer_unordered(self.jobs.max(1));
        while let Some(d) = done.next().await {
            let d = d?;
            let rec = &tables[d.job.table];
            let name = label(rec);
            totals.chunks += 1;
            totals.bytes += d.bytes;
            match d.outcome {
                Ok(stats) => {
                    let rows = stats.map_or(0, |s| s.rows);
                    totals.rows += rows;
                    let part = totals
                        .parts
                        .entry((d.job.table, d.job.chunk.part))
                        .or_default();
                    part.chunks_ok += 1;
                    if let Some(s) = stats {
                        part.stats.merge(s);
                    }
                    self.progress.chunk_done(&name, d.job.chunk.raw_len, rows);
                }
                Err(why) => found.chunk(rec, &d.job.chunk, &d.job.path, why),
            }
            let n = left.get_mut(&d.job.table).expect("counted above");
            *n -= 1;
            if *n == 0 {
                self.progress.table_finished(&name, 0);
            }
        }
        Ok(totals)
    }
}

#[derive(Default)]
struct ReadTotals {
    chunks: u64,
    bytes: u64,
    rows: u64,
    /// Per (table, part): the chunks that passed, and their tuples folded together.
    parts: HashMap<(usize, u32), PartAcc>,
}

#[derive(Default)]
struct PartAcc {
    chunks_ok: usize,
    stats: TupleStats,
}

/// Downloads one chunk and checks its length and SHA-256; at depth data also opens it
/// (header, AEAD, bounded decompression) and counts its tuples, on the CPU pool.
/// Damage is an outcome; only a failure to check (storage down) is an error.
async fn read_one(
    reader: BackupReader,
    rec: Arc<TableRecord>,
    job: ChunkJob,
    depth: Depth,
) -> Result<ChunkDone, CommandError> {
    let object = match reader.fetch_chunk(&rec, &job.chunk).await {
        Ok(o) => o,
        Err(e) if e.class() == Class::Corrupt => {
            let why = match &e {
                ArchiveError::Store(StoreError::NotFound(_)) => {
                    format!("chunk {} is missing", job.path)
                }
                e => reason(e),
            };
            return Ok(ChunkDone {
                job,
                bytes: 0,
                outcome: Err(why),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let bytes = object.len() as u64;
    if depth < Depth::Data {
        return Ok(ChunkDone {
            job,
            bytes,
            outcome: Ok(None),
        });
    }
    let done = on_cpu_pool(move || {
        let outcome = open_and_scan(&reader, &rec, &job, &object).map(Some);
        ChunkDone {
            job,
            bytes,
            outcome,
        }
    })
    .await
    .expect("rayon aborts the process when a task panics, so the task always answers");
    Ok(done)
}

fn open_and_scan(
    reader: &BackupReader,
    rec: &TableRecord,
    job: &ChunkJob,
    object: &[u8],
) -> Result<TupleStats, String> {
    let data = reader
        .open_chunk(rec, &job.chunk, object)
        .map_err(|e| reason(&e))?;
    let stats = match rec.copy_format {
        CopyFormat::Binary => scan_tuples(&data),
        CopyFormat::Text => scan_text_rows(&data),
    }
    .map_err(|e| format!("chunk {}: its tuples are malformed: {e}", job.path))?;
    if stats.rows != job.chunk.rows {
        return Err(format!(
            "chunk {} holds {} rows, the manifest says {}",
            job.path, stats.rows, job.chunk.rows
        ));
    }
    Ok(stats)
}

/// Compares each part whose every chunk was read and passed with the manifest's rows
/// and content checksum; returns how many parts were compared.
fn compare_parts(
    tables: &[Arc<TableRecord>],
    read: &HashMap<(usize, u32), PartAcc>,
    found: &mut Findings,
) -> u64 {
    let mut compared = 0;
    for (t, rec) in tables.iter().enumerate() {
        for part in rec.effective_parts() {
            let Some(acc) = read.get(&(t, part.part)) else {
                continue;
            };
            if acc.chunks_ok != rec.part_chunks(part.part).count() {
                continue;
            }
            compared += 1;
            let whose = if rec.parts.is_empty() {
                "the table".to_string()
            } else {
                format!("part {}", part.part)
            };
            if acc.stats.rows != part.rows {
                found.table(
                    rec,
                    format!(
                        "{whose} holds {} rows, the manifest says {}",
                        acc.stats.rows, part.rows
                    ),
                );
            }
            if parse_checksum(&part.checksum) != Some(acc.stats.checksum) {
                found.table(
                    rec,
                    format!(
                        "the content checksum of {whose} is {:032x}, the manifest says {}",
                        acc.stats.checksum, part.checksum
                    ),
                );
            }
        }
    }
    compared
}

/// The manifest's own consistency: every catalog table has its data record, and each
/// record's chunk list can be restored (each part ends with exactly one FINAL chunk,
/// indexes run 0, 1, 2, … without gaps or repeats) and adds up to its totals.
fn check_manifest(m: &Manifest, found: &mut Findings) {
    let mut seen = BTreeSet::new();
    for rec in &m.tables {
        if !seen.insert(rec.table_no) {
            found.table(
                rec,
                format!("the manifest holds table number {} twice", rec.table_no),
            );
        }
        match m.catalog.tables.get(rec.table_no as usize) {
            None => found.table(
                rec,
                format!(
                    "the manifest has data for table number {}, which its catalog does not have",
                    rec.table_no
                ),
            ),
            Some(t) if t.name.schema != rec.schema || t.name.name != rec.name => found.table(
                rec,
                format!(
                    "the data of table number {} is recorded for {}",
                    rec.table_no,
                    t.name.plain()
                ),
            ),
            Some(_) => {}
        }
        check_record(rec, found);
    }
    if let Some(los) = &m.large_objects {
        check_large_objects(los, found);
    }
    for (i, t) in m.catalog.tables.iter().enumerate() {
        if t.has_data() && !seen.contains(&(i as u32)) {
            found.add(Problem {
                table: Some(t.name.plain()),
                chunk: None,
                reason: "the manifest holds no data for this table".into(),
            });
        }
    }
}

/// The large objects' content is checked as a table's rows are; each object must
/// also be listed once, in a part the content has.
fn check_large_objects(los: &LargeObjects, found: &mut Findings) {
    check_record(&los.data, found);
    let parts: BTreeSet<u32> = los.data.effective_parts().iter().map(|p| p.part).collect();
    let mut oids = BTreeSet::new();
    for o in &los.objects {
        if !oids.insert(o.object.oid) {
            found.table(
                &los.data,
                format!("the manifest lists large object {} twice", o.object.oid),
            );
        }
        if !parts.contains(&o.part) {
            found.table(
                &los.data,
                format!(
                    "large object {} is in part {}, which the manifest does not list",
                    o.object.oid, o.part
                ),
            );
        }
    }
}

fn check_record(rec: &TableRecord, found: &mut Findings) {
    let parts = rec.effective_parts();
    let numbers: BTreeSet<u32> = parts.iter().map(|p| p.part).collect();
    if numbers.len() != parts.len() {
        found.table(rec, "the manifest lists a part twice".into());
    }
    for c in rec.chunks.iter().filter(|c| !numbers.contains(&c.part)) {
        found.table(
            rec,
            format!(
                "chunk {} belongs to part {}, which the manifest does not list",
                c.index, c.part
            ),
        );
    }
    for part in &parts {
        let whose = if rec.parts.is_empty() {
            "the table".to_string()
        } else {
            format!("part {}", part.part)
        };
        let chunks: Vec<&ChunkRecord> = rec.part_chunks(part.part).collect();
        if chunks.is_empty() {
            found.table(
                rec,
                format!("{whose} has no chunks: the FINAL chunk that ends it is missing"),
            );
            continue;
        }
        if let Some((k, c)) = chunks
            .iter()
            .enumerate()
            .find(|(k, c)| c.index != *k as u64)
        {
            found.table(
                rec,
                format!(
                    "{whose} lists chunk {} where chunk {k} belongs: chunks are missing, \
                     repeated or out of order",
                    c.index
                ),
            );
        }
        let rows: u64 = chunks.iter().map(|c| c.rows).sum();
        if rows != part.rows {
            found.table(
                rec,
                format!(
                    "the chunks of {whose} hold {rows} rows, the manifest's total is {}",
                    part.rows
                ),
            );
        }
        let raw: u64 = chunks.iter().map(|c| c.raw_len).sum();
        if raw != part.raw_bytes {
            found.table(
                rec,
                format!(
                    "the chunks of {whose} hold {raw} bytes, the manifest's total is {}",
                    part.raw_bytes
                ),
            );
        }
        if parse_checksum(&part.checksum).is_none() {
            found.table(rec, format!("the checksum of {whose} is not 32 hex digits"));
        }
    }
    if !rec.parts.is_empty() {
        let rows: u64 = rec.parts.iter().map(|p| p.rows).sum();
        let raw: u64 = rec.parts.iter().map(|p| p.raw_bytes).sum();
        let sum = rec
            .parts
            .iter()
            .filter_map(|p| parse_checksum(&p.checksum))
            .fold(0u128, u128::wrapping_add);
        if rows != rec.rows || raw != rec.raw_bytes || parse_checksum(&rec.checksum) != Some(sum) {
            found.table(
                rec,
                "the table's totals (rows, bytes, checksum) are not the sum of its parts".into(),
            );
        }
    }
}

/// `summary.json` is plaintext; the manifest holds its hash so an edit shows up here.
async fn check_summary(
    repo: &Repository,
    m: &Manifest,
    layout: &BackupLayout,
    found: &mut Findings,
) -> Result<(), CommandError> {
    if m.summary_sha256.is_empty() {
        return Ok(());
    }
    let path = layout.summary();
    let problem = match repo.store().get_opt(&path).await? {
        None => format!("{path} is missing"),
        Some(b) if hex::encode(Sha256::digest(&b)) != m.summary_sha256 => {
            format!("{path} does not match the SHA-256 in the manifest: it was edited")
        }
        Some(_) => return Ok(()),
    };
    found.add(Problem {
        table: None,
        chunk: None,
        reason: problem,
    });
    Ok(())
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

    fn record(chunks: &[(u32, u64, u64)]) -> TableRecord {
        TableRecord {
            table_no: 0,
            oid: 1,
            schema: "public".into(),
            name: "t".into(),
            rows: chunks.iter().map(|c| c.2).sum(),
            raw_bytes: chunks.len() as u64,
            checksum: format!("{:032x}", 0),
            chunks: chunks
                .iter()
                .map(|&(part, index, rows)| ChunkRecord {
                    part,
                    index,
                    ct_len: 100,
                    ct_sha256: String::new(),
                    raw_len: 1,
                    rows,
                })
                .collect(),
            parts: vec![],
            copy_format: CopyFormat::Binary,
        }
    }

    fn problems(rec: &TableRecord) -> Vec<String> {
        let mut f = Findings::new(MAX_PROBLEMS);
        check_record(rec, &mut f);
        f.listed.into_iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn chunk_lists_must_run_without_gaps_and_add_up() {
        assert!(problems(&record(&[(0, 0, 5), (0, 1, 5)])).is_empty());
        let gap = problems(&record(&[(0, 0, 5), (0, 2, 5)]));
        assert!(
            gap[0].contains("lists chunk 2 where chunk 1 belongs"),
            "{gap:?}"
        );
        let twice = problems(&record(&[(0, 0, 5), (0, 0, 5)]));
        assert!(twice[0].contains("chunk 0 where chunk 1"), "{twice:?}");
        let none = problems(&record(&[]));
        assert!(none[0].contains("no chunks"), "{none:?}");
        let mut rows = record(&[(0, 0, 5)]);
        rows.rows = 6;
        assert!(problems(&rows)[0].contains("hold 5 rows"));
        let stray = problems(&record(&[(0, 0, 5), (3, 0, 1)]));
        assert!(stray[0].contains("part 3, which the manifest does not list"));
    }

    #[test]
    fn findings_count_everything_but_list_only_what_fits() {
        let mut f = Findings::new(2);
        for i in 0..5 {
            f.add(Problem {
                table: None,
                chunk: None,
                reason: format!("p{i}"),
            });
        }
        let v = f.verdict("b", Counts::default());
        assert_eq!((v.problems.len(), v.problem_count(), v.ok), (2, 5, false));
    }
}
