//! `pgbunker backup`: a snapshot-consistent backup of one database.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::audit::Audit;
use super::{CommandError, RepoAccess};
use crate::archive::Summary;
use crate::dump::{self, DumpOptions};
use crate::error::Outcome;
use crate::pg::ConnSpec;
use crate::progress::Progress;

/// `-t`/`-n`/`-T`/`-N` patterns and what they select, for the binary's flags.
pub use crate::plan::pattern::{Pattern, PatternError};
pub use crate::plan::select::Selection;

/// No `Debug`: the connection string may carry a password.
pub struct BackupOptions {
    pub repo: RepoAccess,
    /// Connection string or URL; `None` takes everything from the `PG*` environment.
    pub source: Option<String>,
    pub dump: DumpOptions,
}

#[derive(Debug, Serialize)]
pub struct TableLine {
    pub table: String,
    pub rows: u64,
    pub raw_bytes: u64,
    /// Every chunk the table's rows are in.
    pub stored_bytes: u64,
    pub chunks: u64,
    /// What this backup uploaded for it; the rest was stored already.
    pub new_bytes: u64,
    pub new_chunks: u64,
}

#[derive(Debug, Serialize)]
pub struct BackupReport {
    pub backup_id: String,
    pub source: String,
    pub summary: Summary,
    pub tables: Vec<TableLine>,
    pub not_covered: Vec<String>,
    pub seconds: f64,
}

/// The libpq variables that name a database; with none of them and no URL, libpq's
/// fallback (the local socket, a database named like the OS user) is almost never the
/// database the admin meant to back up.
const CONNECTION_VARIABLES: &[&str] = &[
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGSERVICE",
];

pub async fn backup(
    opts: &BackupOptions,
    progress: Arc<dyn Progress>,
) -> Result<BackupReport, CommandError> {
    let started = Instant::now();
    opts.dump.check()?;
    let libpq_variables = CONNECTION_VARIABLES
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    // Application runbooks keep the database in DATABASE_URL: taken when nothing else
    // names one (the PG* variables still fill in what the URL leaves out).
    let source = opts.source.clone().or_else(|| {
        (!libpq_variables)
            .then(|| std::env::var("DATABASE_URL").ok())
            .flatten()
            .filter(|u| !u.is_empty())
    });
    if source.is_none() && !libpq_variables {
        return Err(CommandError::Usage(
            "no database to back up: give its URL (pgbunker backup postgresql://user@host/db), \
             -d, `source` in the settings file, the PG* variables (PGHOST, PGDATABASE, \
             PGSERVICE, …) or DATABASE_URL"
                .into(),
        ));
    }
    let conn = ConnSpec::parse(source.as_deref())?;
    let repo = opts.repo.open().await?;
    let out = dump::run(&conn, &repo, &opts.dump, progress).await?;
    Ok(BackupReport {
        backup_id: out.summary.backup_id.clone(),
        source: conn.to_string(),
        tables: out
            .tables
            .iter()
            .zip(&out.uploaded)
            .map(|(t, new)| TableLine {
                table: format!("{}.{}", t.schema, t.name),
                rows: t.rows,
                raw_bytes: t.raw_bytes,
                stored_bytes: t.stored_bytes(),
                chunks: t.chunks.len() as u64,
                new_bytes: new.bytes,
                new_chunks: new.chunks,
            })
            .collect(),
        summary: out.summary,
        not_covered: out.not_covered,
        seconds: started.elapsed().as_secs_f64(),
    })
}

impl Outcome for BackupReport {}

impl Audit for BackupReport {
    fn backup_id(&self) -> Option<String> {
        Some(self.backup_id.clone())
    }
    fn details(&self) -> serde_json::Value {
        let s = &self.summary;
        serde_json::json!({
            "source": self.source,
            "tables": s.tables,
            "rows": s.rows,
            "raw_bytes": s.raw_bytes,
            "stored_bytes": s.stored_bytes,
            "chunks": s.chunks,
            "new_bytes": s.new_bytes,
            "new_chunks": s.new_chunks,
            "seconds": self.seconds,
        })
    }
}
