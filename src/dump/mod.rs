//! Backup: one exported snapshot, N worker connections streaming
//! `COPY … TO STDOUT (FORMAT binary)`, cut into tuple-aligned chunks, sealed on the
//! rayon pool, uploaded, and the manifest written last.

mod fingerprint;
mod table;

pub use fingerprint::table_fingerprint;

use std::sync::Arc;
use std::time::Instant;

use thiserror::Error;

use crate::archive::{
    ArchiveError, BackupWriter, Manifest, Repository, SourceInfo, Summary, TableRecord,
};
use crate::catalog::Catalog;
use crate::error::{Class, Classify};
use crate::introspect::read_catalog;
use crate::pg::{
    attach_snapshot, export_snapshot, prepare_session, run_sessions, ConnSpec, PgError, WorkerLost,
};
use crate::pgcopy::CopyFormatError;
use crate::progress::Progress;

#[derive(Debug, Error)]
pub enum DumpError {
    #[error(transparent)]
    Pg(#[from] PgError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("the COPY data of {table} is malformed: {source}")]
    Copy {
        table: String,
        #[source]
        source: CopyFormatError,
    },
    #[error("a backup worker stopped unexpectedly: {0}")]
    Worker(String),
}

impl From<WorkerLost> for DumpError {
    fn from(e: WorkerLost) -> Self {
        DumpError::Worker(e.0)
    }
}

impl Classify for DumpError {
    fn class(&self) -> Class {
        match self {
            DumpError::Pg(e) => e.class(),
            DumpError::Archive(e) => e.class(),
            DumpError::Copy { .. } => Class::Database,
            DumpError::Worker(_) => Class::Internal,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            DumpError::Pg(e) => e.hint(),
            DumpError::Archive(e) => e.hint(),
            _ => None,
        }
    }
}

/// How to run a backup.
#[derive(Debug, Clone)]
pub struct DumpOptions {
    /// Worker connections streaming tables at once (the leader comes on top).
    pub jobs: usize,
    /// Raw bytes of whole tuples per chunk before it is cut.
    pub chunk_bytes: usize,
    pub compress_level: i32,
}

impl Default for DumpOptions {
    fn default() -> Self {
        DumpOptions {
            jobs: 4,
            chunk_bytes: 8 << 20,
            compress_level: 3,
        }
    }
}

/// What a finished backup reports.
#[derive(Debug, Clone)]
pub struct DumpOutcome {
    pub summary: Summary,
    pub tables: Vec<TableRecord>,
    /// Objects in the database that this backup does not contain.
    pub not_covered: Vec<String>,
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formatting now")
}

/// Takes a backup of the database `conn` points at into `repo`.
pub async fn run(
    conn: &ConnSpec,
    repo: &Repository,
    opts: &DumpOptions,
    progress: Arc<dyn Progress>,
) -> Result<DumpOutcome, DumpError> {
    let started = Instant::now();
    let started_at = now_rfc3339();
    let leader = conn.connect().await?;
    prepare_session(&leader).await?;
    // Readable by superusers and pg_monitor members only; without it we simply do
    // not record the system identifier.
    let system_identifier = leader
        .query_one(
            "SELECT system_identifier::text FROM pg_catalog.pg_control_system()",
            &[],
        )
        .await
        .ok()
        .map(|r| r.get::<_, String>(0));
    let snapshot = export_snapshot(&leader).await?;
    let intro = read_catalog(&leader).await?;
    lock_tables(&leader, &intro.catalog).await?;

    let writer = Arc::new(BackupWriter::begin(repo, opts.compress_level).await?);
    let catalog = Arc::new(intro.catalog.clone());
    let estimated: u64 = catalog.tables.iter().map(|t| t.estimated_bytes).sum();
    progress.start("backup", catalog.tables.len() as u64, estimated);

    let order = crate::plan::backup_order(&catalog);
    let jobs = opts.jobs.max(1);
    let snapshot_id = snapshot.id.clone();
    let setup = move |client: Arc<tokio_postgres::Client>| {
        let snapshot_id = snapshot_id.clone();
        async move { Ok::<_, DumpError>(attach_snapshot(&client, &snapshot_id).await?) }
    };
    let (w, c, p, o) = (
        writer.clone(),
        catalog.clone(),
        progress.clone(),
        opts.clone(),
    );
    let work = move |client: Arc<tokio_postgres::Client>, i: usize| {
        let (writer, catalog, progress, opts) = (w.clone(), c.clone(), p.clone(), o.clone());
        async move {
            table::dump_table(
                &client,
                &catalog.tables[i],
                i as u32,
                &writer,
                &opts,
                progress.as_ref(),
            )
            .await
        }
    };
    let result = run_sessions(conn, jobs, order, setup, work).await;
    let mut tables = match result {
        Ok(t) => t,
        Err(e) => {
            progress.finish();
            return Err(e);
        }
    };
    tables.sort_by_key(|t| t.table_no);
    let _ = leader.batch_execute("COMMIT").await;

    let finished_at = now_rfc3339();
    let summary = Summary {
        format_version: crate::archive::FORMAT_VERSION,
        backup_id: writer.backup_id().to_owned(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        started_at: started_at.clone(),
        finished_at: finished_at.clone(),
        duration_ms: started.elapsed().as_millis() as u64,
        server_version: intro.server_version.clone(),
        tables: tables.len() as u64,
        rows: tables.iter().map(|t| t.rows).sum(),
        raw_bytes: tables.iter().map(|t| t.raw_bytes).sum(),
        stored_bytes: tables.iter().map(TableRecord::stored_bytes).sum(),
        chunks: tables.iter().map(|t| t.chunks.len() as u64).sum(),
        encrypted: repo.is_encrypted(),
        rk_id: writer.rk_id(),
        dek_id: writer.dek_id(),
    };
    let manifest = Manifest {
        format_version: crate::archive::FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        backup_id: writer.backup_id().to_owned(),
        started_at,
        finished_at,
        source: SourceInfo {
            server_version: intro.server_version.clone(),
            server_version_num: catalog.server_version_num,
            system_identifier,
            database: intro.database.clone(),
            snapshot: snapshot.id.clone(),
            lsn: snapshot.lsn.clone(),
            in_recovery: snapshot.in_recovery,
        },
        params: crate::archive::BackupParams {
            jobs: opts.jobs,
            chunk_bytes: opts.chunk_bytes,
            compress_level: opts.compress_level,
        },
        catalog: intro.catalog.clone(),
        tables: tables.clone(),
        not_covered: intro.not_covered.clone(),
        summary_sha256: String::new(),
    };
    let writer = Arc::try_unwrap(writer)
        .map_err(|_| DumpError::Worker("a worker still holds the backup writer".into()))?;
    writer.commit(manifest, summary.clone()).await?;
    progress.finish();
    Ok(DumpOutcome {
        summary,
        tables,
        not_covered: intro.not_covered,
    })
}

/// Holds ACCESS SHARE locks in the leader for the whole run, so a concurrent
/// `DROP`/`ALTER` waits instead of changing a table under the workers.
async fn lock_tables(leader: &tokio_postgres::Client, cat: &Catalog) -> Result<(), PgError> {
    if cat.tables.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = cat.tables.iter().map(|t| t.name.to_string()).collect();
    leader
        .batch_execute(&format!(
            "LOCK TABLE {} IN ACCESS SHARE MODE",
            names.join(", ")
        ))
        .await
        .map_err(|e| PgError::query("lock the tables for the backup", e))
}
