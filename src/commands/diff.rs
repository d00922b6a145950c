//! `pgbunker diff`: what changed in each table between two backups, row by row, from
//! the repository alone. Rows are data (PHI): they go only to a file the user names.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::audit::Audit;
use super::{CommandError, RepoAccess};
use crate::archive::OpenBackup;
use crate::archive::Timestamp;
use crate::diff::{
    self, DiffOptions as EngineOptions, Later, Live, RowsFormat, RowsOut, TableDiff,
};
use crate::error::{Class, Failed, Outcome};
use crate::pg::ConnSpec;
use crate::plan::select::Selection;
use crate::progress::Progress;

/// The later snapshot.
pub enum Second {
    /// A backup id (or `latest`).
    Backup(String),
    /// The database as it is now: a connection string or URL. No `Debug`: it may carry
    /// a password.
    Live(String),
}

pub struct DiffOptions {
    pub repo: RepoAccess,
    /// The earlier backup's id (or `latest`).
    pub first: String,
    pub second: Second,
    pub selection: Selection,
    /// A new file (JSON lines) or folder (CSV, Parquet) for the changed rows.
    pub rows: Option<PathBuf>,
    pub rows_format: RowsFormat,
    pub diff: EngineOptions,
}

#[derive(Debug, Serialize)]
pub struct DiffReport {
    pub first: Snapshot,
    pub second: Snapshot,
    /// Every table compared, changed or not.
    pub tables: Vec<TableDiff>,
    pub tables_changed: usize,
    pub rows_inserted: u64,
    pub rows_deleted: u64,
    pub rows_updated: u64,
    pub chunks_skipped: u64,
    pub chunks_read: u64,
    pub rows_file: Option<String>,
    pub rows_written: u64,
    pub violations: Vec<String>,
    pub warnings: Vec<String>,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct Snapshot {
    /// `live` for the database as it was read.
    pub backup_id: String,
    pub snapshot_time: String,
}

impl Outcome for DiffReport {
    fn failed(&self) -> Option<Failed> {
        (!self.violations.is_empty()).then(|| Failed {
            class: Class::Expectation,
            message: format!(
                "{} table(s) expected to be append-only changed otherwise",
                self.violations.len()
            ),
            hint: Some(
                "the changes are listed above; with --rows FILE the changed rows are written \
                 there"
                    .into(),
            ),
        })
    }
}

impl Audit for DiffReport {
    /// The earlier backup: the one a diff always reads (the later may be live).
    fn backup_id(&self) -> Option<String> {
        Some(self.first.backup_id.clone())
    }
    /// Counts only: table names and rows stay out of the repository's clear records.
    fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "first": self.first.backup_id,
            "second": self.second.backup_id,
            "tables": self.tables.len(),
            "tables_changed": self.tables_changed,
            "rows_inserted": self.rows_inserted,
            "rows_deleted": self.rows_deleted,
            "rows_updated": self.rows_updated,
            "rows_written": self.rows_written,
            "violations": self.violations.len(),
            "seconds": self.seconds,
        })
    }
}

/// Where the changed rows go, created new and readable by its owner only (it holds
/// rows): a file of JSON lines, or a folder of one file per table.
struct RowsDest {
    path: PathBuf,
    format: RowsFormat,
    /// The JSON lines file; `None` for a folder.
    out: Option<BufWriter<File>>,
    done: bool,
}

impl RowsDest {
    fn create(path: &PathBuf, format: RowsFormat) -> Result<RowsDest, CommandError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let refused = |e: std::io::Error| {
            CommandError::Usage(format!(
                "cannot create {}: {e} (diff never writes into an existing file or folder)",
                path.display()
            ))
        };
        let out = if format == RowsFormat::Jsonl {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(refused)?;
            Some(BufWriter::new(file))
        } else {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(path)
                .map_err(refused)?;
            None
        };
        Ok(RowsDest {
            path: path.clone(),
            format,
            out,
            done: false,
        })
    }

    fn target(&mut self) -> RowsOut<'_> {
        match &mut self.out {
            Some(out) => RowsOut::JsonLines(out),
            None => RowsOut::Files {
                dir: &self.path,
                format: self.format,
            },
        }
    }

    fn finish(mut self) -> Result<(), CommandError> {
        let io = |e: std::io::Error| CommandError::Diff(e.into());
        match &mut self.out {
            Some(out) => {
                out.flush().map_err(io)?;
                out.get_ref().sync_all().map_err(io)?;
            }
            None => File::open(&self.path)
                .and_then(|d| d.sync_all())
                .map_err(io)?,
        }
        self.done = true;
        Ok(())
    }
}

/// A diff that did not finish leaves no rows that look whole.
impl Drop for RowsDest {
    fn drop(&mut self) {
        if !self.done {
            let _ = if self.out.is_some() {
                std::fs::remove_file(&self.path)
            } else {
                std::fs::remove_dir_all(&self.path)
            };
        }
    }
}

/// The later snapshot, opened: a backup (read-locked) or the live database.
enum Opened {
    Backup(OpenBackup),
    /// With the time it was read at.
    Live(Live, String),
}

impl Opened {
    fn as_later(&self) -> Later<'_> {
        match self {
            Opened::Backup(b) => Later::Backup(b.reader()),
            Opened::Live(live, _) => Later::Live(live),
        }
    }

    fn snapshot(&self) -> Snapshot {
        match self {
            Opened::Backup(b) => snapshot(b),
            Opened::Live(_, at) => Snapshot {
                backup_id: "live".into(),
                snapshot_time: at.clone(),
            },
        }
    }
}

fn snapshot(b: &OpenBackup) -> Snapshot {
    Snapshot {
        backup_id: b.live().bid.clone(),
        snapshot_time: b.reader().manifest().started_at.to_string(),
    }
}

pub async fn diff(
    opts: &DiffOptions,
    progress: Arc<dyn Progress>,
) -> Result<DiffReport, CommandError> {
    let started = Instant::now();
    let repo = opts.repo.open().await?;
    let mut rows = opts
        .rows
        .as_ref()
        .map(|p| RowsDest::create(p, opts.rows_format))
        .transpose()?;
    let first = OpenBackup::open(&repo, &opts.first).await?;
    let later = match &opts.second {
        Second::Backup(which) => OpenBackup::open(&repo, which)
            .await
            .map(Opened::Backup)
            .map_err(CommandError::from),
        Second::Live(source) => match ConnSpec::parse(Some(source)) {
            Ok(conn) => Live::open(&conn)
                .await
                .map(|live| Opened::Live(live, Timestamp::now().to_string()))
                .map_err(CommandError::from),
            Err(e) => Err(e.into()),
        },
    };
    let later = match later {
        Ok(l) => l,
        Err(e) => {
            first.release().await?;
            return Err(e);
        }
    };
    let outcome = diff::run(
        first.reader(),
        later.as_later(),
        &opts.selection,
        &opts.diff,
        rows.as_mut().map(RowsDest::target),
        progress,
    )
    .await;
    let (first_snap, second_snap) = (snapshot(&first), later.snapshot());
    first.release().await?;
    if let Opened::Backup(b) = later {
        b.release().await?;
    }
    let outcome = outcome?;
    if let Some(r) = rows {
        r.finish()?;
    }
    let counts = || outcome.tables.iter().filter_map(|t| t.counts.as_ref());
    Ok(DiffReport {
        first: first_snap,
        second: second_snap,
        tables_changed: outcome.tables.iter().filter(|t| t.changed()).count(),
        rows_inserted: counts().map(|c| c.inserted).sum(),
        rows_deleted: counts().map(|c| c.deleted).sum(),
        rows_updated: counts().map(|c| c.updated).sum(),
        chunks_skipped: counts().map(|c| c.chunks_skipped).sum(),
        chunks_read: counts().map(|c| c.chunks_read).sum(),
        rows_file: opts.rows.as_ref().map(|p| p.display().to_string()),
        rows_written: outcome.rows_written,
        tables: outcome.tables,
        violations: outcome.violations,
        warnings: outcome.warnings,
        seconds: started.elapsed().as_secs_f64(),
    })
}
