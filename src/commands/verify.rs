//! `pgbunker verify`: proves that backups would restore, without a database. The
//! checker is the [`crate::verify`] engine; this verb chooses the backups, holds a
//! reader's lock on each, remembers the sample bucket, and sums up the verdicts.
//!
//! A backup is only as good as its last successful restore; verify runs everything a
//! restore would check except the database itself, and keeps going past the first
//! problem so one run names every damaged table and chunk. Opening each backup checks
//! the catalog chain and high-water mark and the manifest (catalog hash, data key
//! commitment, AEAD); the engine's depths (metadata, stored, data) do the rest.
//!
//! `--sample` reads a share of the chunks at depth data. Chunks fall into buckets by a
//! stable hash and a counter in the client state folder moves to the next bucket on
//! every run, so a weekly 10 % sample has read every chunk after ten weeks.

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::audit::Audit;
use super::{CommandError, RepoAccess};
use crate::archive::{chunk_sweep, parse_shared_chunk, CHUNKS_DIR};
use crate::archive::{ArchiveError, BackupReader, LiveBackup, LockNeed, ReadLock, Repository};
use crate::error::{Class, Classify};
use crate::error::{Failed, Outcome};
use crate::progress::Progress;
use crate::verify::{plural, unreadable, Check, Sample, SeenChunks};
pub use crate::verify::{BackupVerdict, ChunkRef, Depth, Problem, SampleRun, MAX_PROBLEMS};

/// The record in the client state folder that remembers which sample bucket is next.
const SAMPLE_RECORD: &str = "verify";

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

/// Verify's jobs when none are asked for.
pub const DEFAULT_JOBS: usize = 4;

/// A run that found damage is still this report, so the damage can be shown, not
/// only counted; [`Outcome::failed`] says it failed.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub location: String,
    pub depth: Depth,
    pub sample: Option<SampleRun>,
    pub ok: bool,
    pub backups: Vec<BackupVerdict>,
    /// Every problem found, listed or not.
    pub problems: u64,
    /// With `all`: the shared chunks no backup lists (an interrupted backup's, or a
    /// pruned one's waiting for the sweep), which prune deletes after its grace period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreferenced: Option<Unreferenced>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Unreferenced {
    pub chunks: u64,
    pub bytes: u64,
}

impl VerifyReport {
    pub fn chunks(&self) -> u64 {
        self.backups.iter().map(|b| b.chunks).sum()
    }

    pub fn chunks_read(&self) -> u64 {
        self.backups.iter().map(|b| b.chunks_read).sum()
    }
}

impl Outcome for VerifyReport {
    fn failed(&self) -> Option<Failed> {
        if self.ok {
            return None;
        }
        let damaged = self.backups.iter().filter(|b| !b.ok).count();
        Some(Failed {
            class: Class::Corrupt,
            message: format!(
                "verification found {} in {damaged} of {} backup{}",
                plural(self.problems, "problem"),
                self.backups.len(),
                if self.backups.len() == 1 { "" } else { "s" }
            ),
            hint: Some(
                "the report names each damaged table and chunk: restore from a backup that \
                 verifies, take a new backup, and find out what altered the repository \
                 (storage access logs, disk errors)"
                    .into(),
            ),
        })
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
    let seen = SeenChunks::default();
    for live in &targets {
        // A reader's lock keeps prune from deleting chunks under the check, which
        // would report a sound backup as damaged. Verify only reads, so credentials
        // that cannot write locks still verify, with a warning.
        let lock = match ReadLock::take(&repo, live, LockNeed::BestEffort).await {
            Ok(lock) => lock,
            // Pruned between listing and locking: under `all` there is nothing left to
            // check; a backup named on its own is gone, which resolve says.
            Err(_) if opts.backup == "all" => continue,
            Err(e) => return Err(e.into()),
        };
        let check = Check {
            depth: opts.depth,
            sample: sample.as_ref(),
            only: None,
            jobs: opts.jobs,
            room,
            progress: progress.as_ref(),
            seen: &seen,
        };
        let verdict = match BackupReader::open(&repo, lock.live()).await {
            Ok(reader) => check.run(&repo, &reader).await.map_err(CommandError::from),
            Err(e) if e.class() == Class::Corrupt => Ok(unreadable(live, &e, room)),
            Err(e) => Err(e.into()),
        };
        lock.release().await?;
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
    let unreferenced = if opts.backup == "all" {
        unreferenced(&repo).await?
    } else {
        None
    };
    let report = VerifyReport {
        location: repo.store().location().into(),
        depth: opts.depth,
        sample: sample.map(|s| s.run),
        ok: problems == 0,
        backups,
        problems,
        unreferenced,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok(report)
}

/// The shared chunks no manifest in the repository lists; `None` when a manifest does
/// not open (its backup's verdict says why).
async fn unreferenced(repo: &Repository) -> Result<Option<Unreferenced>, CommandError> {
    let Ok(listed) = chunk_sweep::referenced_chunks(repo).await? else {
        return Ok(None);
    };
    let mut out = Unreferenced {
        chunks: 0,
        bytes: 0,
    };
    for object in repo
        .store()
        .list_meta(CHUNKS_DIR)
        .await
        .map_err(ArchiveError::from)?
    {
        if parse_shared_chunk(&object.key).is_some_and(|id| !listed.contains(id)) {
            out.chunks += 1;
            out.bytes += object.size;
        }
    }
    Ok(Some(out))
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
    let when = |b: &LiveBackup| b.created_at.time();
    live.sort_by(|a, b| (when(b), &b.bid).cmp(&(when(a), &a.bid)));
    Ok(live)
}

/// What the client state folder remembers between sampled runs.
#[derive(Debug, Serialize, Deserialize)]
struct SampleState {
    location: String,
    runs: u64,
}

fn next_sample(
    access: &RepoAccess,
    repo: &Repository,
    percent: u8,
) -> Result<Sample, CommandError> {
    let remembered = match &access.state {
        Some(dir) => {
            let location = repo.store().location();
            let state: Option<SampleState> = dir.load_record(SAMPLE_RECORD, location)?;
            Some(state.map_or(0, |s| s.runs))
        }
        None => None,
    };
    Ok(Sample::new(percent, remembered))
}
