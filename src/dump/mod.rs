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
    ArchiveError, BackupWriter, Manifest, PartRecord, Repository, SelectionRecord, SourceInfo,
    Summary, TableRecord,
};
use crate::catalog::Catalog;
use crate::error::{Class, Classify};
use crate::introspect::read_catalog;
use crate::pg::{
    attach_snapshot, export_snapshot, prepare_session, run_sessions, ConnSpec, PgError, WorkerLost,
};
use crate::pgcopy::remap::RemapError;
use crate::pgcopy::{CopyFormatError, TupleStats};
use crate::plan::select::{SelectError, Selection};
use crate::plan::{SplitPolicy, WorkUnit};
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
    /// The type OIDs inside a table's values could not be mapped back (fingerprint).
    #[error("the type OIDs inside the values of {table} cannot be rewritten: {source}")]
    Remap {
        table: String,
        #[source]
        source: RemapError,
    },
    #[error("a backup worker stopped unexpectedly: {0}")]
    Worker(String),
    /// A `-t`/`-n`/`-T`/`-N` pattern matched nothing: nothing was written.
    #[error(transparent)]
    Selection(#[from] SelectError),
    #[error("the database holds {0} large object(s), which pgbunker does not back up")]
    LargeObjects(u64),
    /// The role may not read some of the chosen tables: all of them, named at once.
    #[error("role {user} may not read {} table(s): {}", .tables.len(), .tables.join(", "))]
    NoPrivilege { user: String, tables: Vec<String> },
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
            DumpError::Copy { .. } | DumpError::Remap { .. } => Class::Database,
            DumpError::Worker(_) => Class::Internal,
            DumpError::Selection(_) | DumpError::LargeObjects(_) => Class::Usage,
            DumpError::NoPrivilege { .. } => Class::Database,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            DumpError::Pg(e) => e.hint(),
            DumpError::Archive(e) => e.hint(),
            DumpError::Selection(_) => Some(
                "patterns follow pg_dump: unquoted letters are folded to lower case (write \
                 \"MixedCase\" in double quotes), * and ? are wildcards, schema.table \
                 qualifies; a pattern that matches nothing is refused so that a typo never \
                 changes what a backup holds"
                    .into(),
            ),
            DumpError::LargeObjects(_) => Some(
                "nothing was written; to back up everything else, pass --skip-large-objects \
                 (the backup then lists them as not covered), or move their contents into \
                 bytea columns"
                    .into(),
            ),
            DumpError::NoPrivilege { user, .. } => Some(format!(
                "nothing was written; GRANT SELECT on them to {user} (or, on PostgreSQL 14+, \
                 GRANT pg_read_all_data TO {user}), connect as their owner or a superuser, or \
                 leave them out with -T"
            )),
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
    /// Tables larger than this are streamed as several ctid page ranges of about this
    /// size, on separate workers (PostgreSQL 14+); 0 never splits.
    pub part_bytes: u64,
    /// How long the leader waits for its ACCESS SHARE locks; `None` waits forever.
    pub lock_wait_timeout: Option<std::time::Duration>,
    /// Which tables and schemas to back up (`-t`/`-n`/`-T`/`-N`); empty: everything.
    pub selection: Selection,
    /// Back up a database that holds large objects, leaving them out (listed as not
    /// covered); without it such a backup is refused.
    pub skip_large_objects: bool,
}

/// Upper bound on the parts of one table.
const MAX_PARTS: u32 = 256;

impl Default for DumpOptions {
    fn default() -> Self {
        DumpOptions {
            jobs: 4,
            chunk_bytes: 8 << 20,
            compress_level: 3,
            part_bytes: 64 << 20,
            lock_wait_timeout: None,
            selection: Selection::default(),
            skip_large_objects: false,
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
    // Reading the catalog already takes ACCESS SHARE locks (sizes, index
    // definitions): the timeout must cover it too.
    if let Some(t) = opts.lock_wait_timeout {
        leader
            .batch_execute(&format!(
                "SET LOCAL lock_timeout = {}",
                t.as_millis().max(1)
            ))
            .await
            .map_err(|e| PgError::query("set the lock wait timeout", e))?;
    }
    let mut intro = read_catalog(&leader).await?;
    // Large objects are not carried: refuse rather than leave them out unnoticed. A
    // partial backup never holds them (pg_dump's -t/-n leave them out too).
    if intro.large_objects > 0 && !opts.skip_large_objects && opts.selection.is_everything() {
        return Err(DumpError::LargeObjects(intro.large_objects));
    }
    // A partial backup: keep what the patterns select before anything is locked,
    // planned or written, so a pattern that matches nothing leaves no trace.
    intro.catalog = crate::plan::select::select(intro.catalog, &opts.selection)?;
    check_readable(&leader, &intro.catalog, conn.user()).await?;
    lock_tables(&leader, &intro.catalog).await?;

    let writer = Arc::new(BackupWriter::begin(repo, opts.compress_level).await?);
    let catalog = Arc::new(intro.catalog.clone());

    // TID range scans arrived in PostgreSQL 14; before that each range would rescan
    // the whole table, so big tables are streamed whole.
    let split = (catalog.server_version_num >= 140000).then_some(SplitPolicy {
        part_bytes: opts.part_bytes,
        max_parts: MAX_PARTS,
    });
    let units = crate::plan::backup_units(&catalog, split);
    let estimated: u64 = catalog.tables.iter().map(|t| t.estimated_bytes).sum();
    progress.start("backup", units.len() as u64, estimated);
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
    let work = move |client: Arc<tokio_postgres::Client>, unit: WorkUnit| {
        let (writer, catalog, progress, opts) = (w.clone(), c.clone(), p.clone(), o.clone());
        async move {
            let table = &catalog.tables[unit.table];
            table::dump_unit(&client, table, unit, &writer, &opts, progress.as_ref()).await
        }
    };
    let result = run_sessions(conn, jobs, units, setup, work).await;
    let results = match result {
        Ok(t) => t,
        Err(e) => {
            progress.finish();
            return Err(abandon(&writer, e).await);
        }
    };
    let tables = table_records(&catalog, results);
    // The leader's locks protected every table while the workers read. If its session
    // died meanwhile, a TRUNCATE or rewrite could have emptied a table under an older
    // snapshot: do not commit such a backup.
    if let Err(e) = leader.batch_execute("COMMIT").await {
        let e = PgError::query("keep the backup's locks (the leader session was lost)", e);
        return Err(abandon(&writer, e.into()).await);
    }

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
        selection: selection_record(&opts.selection),
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

/// Cleans up after a backup that cannot be committed and returns its error: the
/// objects written so far and the lock go now, so the next prune has nothing to wait
/// for. A cleanup that fails only leaves a leftover that prune removes later.
async fn abandon(writer: &BackupWriter, e: DumpError) -> DumpError {
    if let Err(cleanup) = writer.abandon().await {
        tracing::warn!(
            "could not remove the objects of the failed backup {} ({cleanup}); \
             `pgbunker prune` removes them after the grace period",
            writer.backup_id()
        );
    }
    e
}

/// The patterns as the manifest keeps them; `None` for the whole database.
fn selection_record(sel: &Selection) -> Option<SelectionRecord> {
    let texts = |v: &[crate::plan::pattern::Pattern]| v.iter().map(|p| p.to_string()).collect();
    (!sel.is_everything()).then(|| SelectionRecord {
        tables: texts(&sel.tables),
        schemas: texts(&sel.schemas),
        exclude_tables: texts(&sel.exclude_tables),
        exclude_schemas: texts(&sel.exclude_schemas),
    })
}

/// Folds the units' results into one record per table.
fn table_records(catalog: &Catalog, mut results: Vec<table::UnitResult>) -> Vec<TableRecord> {
    results.sort_by_key(|r| (r.unit.table, r.unit.part));
    let mut out: Vec<TableRecord> = Vec::new();
    for r in results {
        let t = &catalog.tables[r.unit.table];
        let table_no = r.unit.table as u32;
        if out.last().map(|t| t.table_no) != Some(table_no) {
            out.push(TableRecord {
                table_no,
                oid: t.oid,
                schema: t.name.schema.clone(),
                name: t.name.name.clone(),
                rows: 0,
                raw_bytes: 0,
                checksum: String::new(),
                chunks: Vec::new(),
                parts: Vec::new(),
            });
        }
        let rec = out.last_mut().expect("pushed above");
        let mut total = TupleStats {
            rows: rec.rows,
            checksum: u128::from_str_radix(&rec.checksum, 16).unwrap_or(0),
        };
        total.merge(r.stats);
        rec.rows = total.rows;
        rec.checksum = format!("{:032x}", total.checksum);
        rec.raw_bytes += r.raw_bytes;
        rec.chunks.extend(r.chunks);
        if let Some(range) = r.unit.pages {
            rec.parts.push(PartRecord {
                part: r.unit.part,
                start_page: range.start,
                end_page: range.end,
                rows: r.stats.rows,
                raw_bytes: r.raw_bytes,
                checksum: format!("{:032x}", r.stats.checksum),
            });
        }
    }
    out
}

/// Names every chosen table the role may not read, before anything is locked or
/// written: the server would stop at the first one, and the user would fix them one
/// failed run at a time.
async fn check_readable(
    leader: &tokio_postgres::Client,
    cat: &Catalog,
    user: &str,
) -> Result<(), DumpError> {
    let oids: Vec<u32> = cat.tables.iter().map(|t| t.oid).collect();
    let rows = leader
        .query(
            "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.oid = ANY($1::pg_catalog.oid[]) \
               AND NOT pg_catalog.has_table_privilege(c.oid, 'SELECT') ORDER BY 1",
            &[&oids],
        )
        .await
        .map_err(|e| PgError::query("check the privileges on the tables", e))?;
    if rows.is_empty() {
        return Ok(());
    }
    Err(DumpError::NoPrivilege {
        user: user.to_owned(),
        tables: rows.iter().map(|r| r.get(0)).collect(),
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
