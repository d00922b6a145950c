//! Proves a backup without a database: the engine under `pgbunker verify` and under
//! restore's pre-flight check. It returns findings, never stops at the first one, and
//! fails only when it cannot check (storage down), not when it finds damage.
//!
//! Three depths, each a superset of the one before:
//!
//! - metadata: the manifest's own arithmetic (contiguous indexes, row and byte
//!   totals), `summary.json`, and every chunk present
//!   with its recorded length (HEAD requests, no download); opening the manifest
//!   (catalog chain, catalog hash, data key commitment, AEAD) is the caller's
//!   [`BackupReader`];
//! - stored: every chunk downloaded and its SHA-256 compared (restore's pre-flight:
//!   loading authenticates and counts each chunk anyway, so hashes are what it must
//!   know before it starts writing);
//! - data: every chunk authenticated, decrypted, decompressed within its recorded
//!   length, its tuples parsed and counted, and each part's content checksum recomputed.
//!
//! A [`Sample`] reads a share of the chunks instead of all of them. A chunk that several
//! backups share (format 5) is checked once per run ([`SeenChunks`]), and its verdict
//! counts for each of them.
//!
//! Files, one job each: `findings` (problems and verdicts), `manifest` (the manifest's
//! own consistency), `chunks` (one chunk read and checked; parts compared), `sample`
//! (which chunks a sampled run reads), `check` (one backup's check, putting them
//! together).

mod check;
mod chunks;
mod findings;
mod manifest;
mod sample;
mod seen;

use std::fmt;

use serde::Serialize;

pub use check::Check;
pub(crate) use findings::plural;
pub use findings::{unreadable, BackupVerdict, ChunkRef, Problem};
pub use sample::{Sample, SampleRun};
pub use seen::SeenChunks;

use crate::archive::{ArchiveError, BackupReader, Repository};
use crate::progress::Progress;

/// A verdict lists at most this many problems (all are counted): a repository that
/// lost a whole folder would otherwise print one line per chunk.
pub const MAX_PROBLEMS: usize = 1000;

/// Presence checks carry no body, so memory does not bound them; on object storage
/// their latency does, hence more of them in flight than downloads.
const HEAD_CONCURRENCY: usize = 32;

/// Whole objects read at once when only their stored bytes are checked: at most 8
/// chunks of 4 × the largest chunk size in memory, whatever `--jobs` says.
const STORED_READS_AT_ONCE: usize = 8;

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

/// Restore's pre-flight: the manifest and every chunk's presence, length and SHA-256,
/// before anything is written to the target.
/// Checks the chunks of the tables numbered `tables` (those a restore loads).
pub async fn preflight(
    repo: &Repository,
    reader: &BackupReader,
    tables: &[u32],
    jobs: usize,
    progress: &dyn Progress,
) -> Result<BackupVerdict, ArchiveError> {
    let check = Check {
        depth: Depth::Stored,
        sample: None,
        only: Some(tables),
        jobs,
        room: MAX_PROBLEMS,
        progress,
        seen: &SeenChunks::default(),
    };
    let verdict = check.run(repo, reader).await?;
    progress.finish();
    Ok(verdict)
}
