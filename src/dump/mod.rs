//! Backup: one exported snapshot, N worker connections streaming
//! `COPY … TO STDOUT (FORMAT binary)`, cut into tuple-aligned chunks, sealed on the
//! rayon pool, uploaded, and the manifest written last.

mod fingerprint;
mod large_objects;
mod table;

pub use self::table::copy_sql;

pub use fingerprint::table_fingerprint;

use std::sync::Arc;
use std::time::Instant;

use thiserror::Error;

use crate::archive::Timestamp;
use crate::archive::{
    ArchiveError, BackupWriter, ChunkWritten, CopyFormat, LargeObjectRecord, LargeObjects,
    Manifest, PartRecord, Repository, SelectionRecord, SourceInfo, Summary, TableRecord,
    LARGE_OBJECTS_TABLE_NO,
};
use crate::catalog::{oid_list, Catalog, LargeObject};
use crate::error::{Class, Classify};
use crate::introspect::{
    read_catalog, read_large_objects, read_statistics, unreadable_large_objects,
};
use crate::pg::{
    attach_snapshot, attach_sql, export_snapshot, prepare_session, run_sessions, ConnSpec, PgError,
    Sessions, WorkerLost,
};
use crate::pgcopy::remap::RemapError;
use crate::pgcopy::{CopyFormatError, TupleStats};
use crate::plan::select::{SelectError, Selection};
use crate::plan::{SplitPolicy, WorkUnit};
use crate::progress::{Progress, TableTally};

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
    /// The role may not read some large objects: all of them, named at once.
    #[error("role {user} may not read {} large object(s): {}", .oids.len(), oid_list(.oids))]
    LargeObjectPrivilege { user: String, oids: Vec<u32> },
    /// The role may not read some of the chosen tables: all of them, named at once.
    #[error("role {user} may not read {} table(s): {}", .tables.len(), .tables.join(", "))]
    NoPrivilege { user: String, tables: Vec<String> },
    /// An option out of its range ([`DumpOptions::check`]); nothing was done.
    #[error("{0}")]
    Options(String),
    /// The server's lock table cannot hold a lock on every table the backup reads.
    #[error(
        "the backup locks {tables} tables, but the server's lock table has room for about \
         {room} more locks (max_locks_per_transaction = {per_transaction} × {slots} \
         connection slots, {used} in use)"
    )]
    LockTableTooSmall {
        tables: u64,
        room: u64,
        per_transaction: u64,
        slots: u64,
        used: u64,
    },
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
            DumpError::Selection(_) | DumpError::Options(_) => Class::Usage,
            DumpError::LockTableTooSmall { .. } => Class::Database,
            DumpError::NoPrivilege { .. } | DumpError::LargeObjectPrivilege { .. } => {
                Class::Database
            }
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
            DumpError::LargeObjectPrivilege { user, .. } => Some(format!(
                "nothing was written; GRANT SELECT ON LARGE OBJECT … TO {user}, connect as \
                 their owner or a superuser, or leave all large objects out with \
                 --no-large-objects (the backup then lists them as not covered)"
            )),
            DumpError::LockTableTooSmall {
                tables,
                slots,
                used,
                ..
            } => Some(format!(
                "nothing was written; set max_locks_per_transaction to at least {} in \
                 postgresql.conf and restart the server, or back up the tables in groups \
                 (-n/-t, and -T for the rest)",
                (tables + used + LOCK_MARGIN).div_ceil((*slots).max(1))
            )),
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
    /// The average raw bytes of whole tuples per chunk (chunks end where a keyed PRF of
    /// a tuple says, between a quarter and four times this).
    pub chunk_bytes: usize,
    pub compress_level: i32,
    /// Tables larger than this are streamed as several ctid page ranges of about this
    /// size, on separate workers (PostgreSQL 14+); 0 never splits.
    pub part_bytes: u64,
    /// How long the leader waits for its ACCESS SHARE locks; `None` waits forever.
    pub lock_wait_timeout: Option<std::time::Duration>,
    /// Which tables and schemas to back up (`-t`/`-n`/`-T`/`-N`); empty: everything.
    pub selection: Selection,
    /// Leave the large objects out (`--no-large-objects`); they are then listed as
    /// not covered.
    pub skip_large_objects: bool,
    /// Carry the large objects in a partial backup too (`--large-objects`): as with
    /// pg_dump, a backup of chosen tables or schemas leaves them out otherwise, since
    /// they belong to no schema.
    pub large_objects: bool,
}

impl DumpOptions {
    /// Chunk sizes a backup takes, in KiB: smaller ones flood the repository with
    /// objects, larger ones break the format's cap on a chunk.
    pub const CHUNK_KIB: std::ops::RangeInclusive<u32> = 64..=32768;
    /// zstd levels: 1 fastest … 19 smallest (higher ones need far more memory).
    pub const COMPRESS_LEVELS: std::ops::RangeInclusive<i32> = 1..=19;

    /// Refuses options no backup should run with, before anything is read or written.
    pub fn check(&self) -> Result<(), DumpError> {
        let (low, high) = (
            *Self::CHUNK_KIB.start() as usize,
            *Self::CHUNK_KIB.end() as usize,
        );
        if !(low * 1024..=high * 1024).contains(&self.chunk_bytes) {
            return Err(DumpError::Options(format!(
                "a chunk size of {} bytes: use {} to {} KiB",
                self.chunk_bytes,
                Self::CHUNK_KIB.start(),
                Self::CHUNK_KIB.end()
            )));
        }
        if !Self::COMPRESS_LEVELS.contains(&self.compress_level) {
            return Err(DumpError::Options(format!(
                "compression level {}: use 1 to 19",
                self.compress_level
            )));
        }
        if self.jobs == 0 {
            return Err(DumpError::Options("a backup needs at least one job".into()));
        }
        // PostgreSQL reads a lock_timeout of 0 as "wait forever".
        if self.lock_wait_timeout.is_some_and(|t| t.is_zero()) {
            return Err(DumpError::Options(
                "the lock wait timeout must be a positive number of seconds".into(),
            ));
        }
        Ok(())
    }
}

/// Seconds, as a flag or the settings file gives them, as the lock wait timeout.
pub fn lock_wait_timeout(secs: f64) -> Result<std::time::Duration, DumpError> {
    std::time::Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| {
            DumpError::Options("the lock wait timeout must be a positive number of seconds".into())
        })
}

/// Upper bound on the parts of one table.
const MAX_PARTS: u32 = 256;

impl Default for DumpOptions {
    fn default() -> Self {
        DumpOptions {
            jobs: 4,
            // The average of content-defined chunks: a changed row costs about this
            // much in the next backup, and a chunk at most four times it in memory.
            chunk_bytes: 2 << 20,
            // On tuples laid out by column, level 2 wrote 6 % less than level 3 on the
            // bench database, with 9 % less client CPU.
            compress_level: 2,
            part_bytes: 64 << 20,
            lock_wait_timeout: None,
            selection: Selection::default(),
            skip_large_objects: false,
            large_objects: false,
        }
    }
}

/// What a finished backup reports.
#[derive(Debug, Clone)]
pub struct DumpOutcome {
    pub summary: Summary,
    pub tables: Vec<TableRecord>,
    /// What each of `tables` uploaded: the rest of its chunks were stored already.
    pub uploaded: Vec<Uploaded>,
    /// Objects in the database that this backup does not contain.
    pub not_covered: Vec<String>,
}

/// The chunks of a table a backup uploaded, because no live backup stored them yet.
#[derive(Debug, Clone, Copy, Default)]
pub struct Uploaded {
    pub chunks: u64,
    pub bytes: u64,
}

impl Uploaded {
    fn add(&mut self, written: &[ChunkWritten]) {
        for c in written.iter().filter(|c| c.new) {
            self.chunks += 1;
            self.bytes += c.record.ct_len;
        }
    }
}

/// Takes a backup of the database `conn` points at into `repo`.
pub async fn run(
    conn: &ConnSpec,
    repo: &Repository,
    opts: &DumpOptions,
    progress: Arc<dyn Progress>,
) -> Result<DumpOutcome, DumpError> {
    opts.check()?;
    let started = Instant::now();
    let started_at = Timestamp::now();
    let jobs = opts.jobs.max(1);
    // The workers connect while the leader does, and help it read the catalog.
    let open = || async {
        let client = conn.connect().await?;
        prepare_session(&client).await?;
        Ok::<_, PgError>(client)
    };
    let (leader, workers) = futures::try_join!(
        open(),
        futures::future::try_join_all((0..jobs).map(|_| open()))
    )?;
    let workers: Vec<Arc<tokio_postgres::Client>> = workers.into_iter().map(Arc::new).collect();
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
    let sessions: Vec<&tokio_postgres::Client> = std::iter::once(&leader)
        .chain(workers.iter().map(|w| &**w))
        .collect();
    // Reading the catalog already takes ACCESS SHARE locks (sizes, index
    // definitions): the timeout must cover it too.
    let timeout = opts
        .lock_wait_timeout
        .map(|t| format!("SET LOCAL lock_timeout = {}", t.as_millis().max(1)));
    let attach = attach_sql(&snapshot.id)?;
    futures::future::try_join_all(sessions.iter().enumerate().map(|(i, session)| {
        // The leader's transaction is the snapshot's own; the workers join it.
        let sql: Vec<&str> = (i > 0)
            .then_some(attach.as_str())
            .into_iter()
            .chain(timeout.as_deref())
            .collect();
        async move {
            if !sql.is_empty() {
                session
                    .batch_execute(&sql.join("; "))
                    .await
                    .map_err(|e| PgError::query("start reading on the backup's snapshot", e))?;
            }
            Ok::<_, PgError>(())
        }
    }))
    .await?;
    let mut intro = read_catalog(&sessions).await?;
    // The workers' catalog reads took locks, which the lock room check would count
    // against the backup: they start over, on the same snapshot, with none.
    let restart = format!("COMMIT; {attach}");
    futures::future::try_join_all(workers.iter().map(|w| w.batch_execute(&restart)))
        .await
        .map_err(|e| PgError::query("start reading on the backup's snapshot", e))?;
    // A partial backup: keep what the patterns select before anything is locked,
    // planned or written, so a pattern that matches nothing leaves no trace.
    intro.catalog = crate::plan::select::select(intro.catalog, &opts.selection)?;
    check_readable(&intro.catalog, &intro.unreadable, conn.user())?;
    let large_objects = if intro.large_objects == 0 {
        Vec::new()
    } else if !opts.skip_large_objects && (opts.selection.is_everything() || opts.large_objects) {
        let unreadable = unreadable_large_objects(&leader).await?;
        if !unreadable.is_empty() {
            return Err(DumpError::LargeObjectPrivilege {
                user: conn.user().to_owned(),
                oids: unreadable,
            });
        }
        read_large_objects(&leader).await?
    } else {
        intro.not_covered.push(format!(
            "large objects: {} large object(s)",
            intro.large_objects
        ));
        Vec::new()
    };
    check_lock_room(&leader, intro.catalog.tables.len() as u64).await?;
    lock_tables(&leader, &intro.catalog).await?;
    let writer = Arc::new(BackupWriter::begin(repo, opts.compress_level).await?);
    // One copy of the catalog, shared by the workers and then moved into the manifest:
    // on 30,000 tables each copy is a hundred megabytes.
    let catalog = Arc::new(std::mem::take(&mut intro.catalog));
    let formats = Arc::new(copy_formats(&catalog, &intro.text_copy));

    // TID range scans arrived in PostgreSQL 14; before that each range would rescan
    // the whole table, so big tables are streamed whole.
    let split = (catalog.server_version_num >= 140000).then_some(SplitPolicy {
        part_bytes: opts.part_bytes,
        max_parts: MAX_PARTS,
    });
    let oids: Vec<u32> = large_objects.iter().map(|l| l.oid).collect();
    // Large objects first: their sizes are unknown, and the tables' largest-first
    // order then still ends the run with small work.
    let units: Vec<Job> = large_objects::units(&oids, opts.jobs.max(1))
        .into_iter()
        .map(Job::LargeObjects)
        .chain(table_jobs(crate::plan::backup_units(&catalog, split)))
        .collect();
    let estimated: u64 = catalog.tables.iter().map(|t| t.estimated_bytes).sum();
    // The large objects count as the table after the last.
    let mut parts = vec![0u32; catalog.tables.len() + 1];
    for job in &units {
        match job {
            Job::Tables(units) => units.iter().for_each(|u| parts[u.table] += 1),
            Job::LargeObjects(_) => parts[catalog.tables.len()] += 1,
        }
    }
    let left = Arc::new(TableTally::new(parts));
    progress.start("backup", left.tables(), estimated);
    // Each job runs in its own transaction on the exported snapshot, so a worker holds
    // the locks of the tables it reads, not of every table it read: the leader's lock
    // on each table is the only one kept, and a backup needs half the lock table
    // pg_dump needs. The session opens its first transaction; each job ends the one
    // before and starts its own in the same round trip as its LOCK.
    let attach = Arc::new(format!("COMMIT; {}", attach_sql(&snapshot.id)?));
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
    let f = formats.clone();
    let work = move |client: Arc<tokio_postgres::Client>, unit: Job| {
        let (writer, catalog, progress, opts) = (w.clone(), c.clone(), p.clone(), o.clone());
        let (formats, attach, left) = (f.clone(), attach.clone(), left.clone());
        async move {
            let done = match unit {
                Job::Tables(units) => {
                    let units = units
                        .into_iter()
                        .map(|unit| table::Unit {
                            table: &catalog.tables[unit.table],
                            format: formats[unit.table],
                            unit,
                        })
                        .collect();
                    let on_done = |unit: &table::UnitResult| {
                        let rows = unit.stats.rows;
                        if let Some(rows) = left.done(unit.unit.table, 1, rows) {
                            let label = catalog.tables[unit.unit.table].name.plain();
                            progress.table_finished(&label, rows);
                        }
                    };
                    table::dump_units(&client, units, &attach, &writer, &opts, &*progress)
                        .await
                        .map(|done| {
                            done.iter().for_each(on_done);
                            Done::Tables(done)
                        })
                }
                Job::LargeObjects(unit) => {
                    client
                        .batch_execute(&attach)
                        .await
                        .map_err(|e| PgError::query("attach the exported snapshot", e))?;
                    let slot = catalog.tables.len();
                    large_objects::dump_part(
                        &client,
                        unit,
                        &writer,
                        opts.chunk_bytes,
                        progress.as_ref(),
                    )
                    .await
                    .map(|done| {
                        if let Some(rows) = left.done(slot, 1, done.stats.rows) {
                            progress.table_finished(large_objects::LABEL, rows);
                        }
                        Done::LargeObjects(done)
                    })
                }
            }?;
            Ok(done)
        }
    };
    let sessions = Sessions {
        conn,
        open: workers,
    };
    // The leader, idle while the workers read, reads the planner statistics meanwhile.
    let (result, statistics) = tokio::join!(
        run_sessions(sessions, jobs, units, setup, work),
        read_statistics(&leader, &catalog.tables, catalog.server_version_num)
    );
    let (results, mut statistics) = match result.and_then(|r| Ok((r, statistics?))) {
        Ok(done) => done,
        Err(e) => {
            progress.finish();
            return Err(abandon(&writer, e).await);
        }
    };
    let (mut table_results, mut lo_results) = (Vec::new(), Vec::new());
    for r in results {
        match r {
            Done::Tables(mut t) => table_results.append(&mut t),
            Done::LargeObjects(l) => lo_results.push(l),
        }
    }
    let (tables, uploaded) = table_records(&catalog, &formats, table_results);
    let mut lo_uploaded = Uploaded::default();
    let large_objects = large_object_records(large_objects, lo_results, &mut lo_uploaded);
    // The leader's locks protected every table while the workers read. If its session
    // died meanwhile, a TRUNCATE or rewrite could have emptied a table under an older
    // snapshot: do not commit such a backup.
    if let Err(e) = leader.batch_execute("COMMIT").await {
        let e = PgError::query("keep the backup's locks (the leader session was lost)", e);
        return Err(abandon(&writer, e.into()).await);
    }

    let finished_at = Timestamp::now();
    let summary = Summary {
        format_version: crate::archive::FORMAT_VERSION,
        backup_id: writer.backup_id().to_owned(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        started_at: started_at.clone(),
        finished_at: finished_at.clone(),
        duration_ms: started.elapsed().as_millis() as u64,
        server_version: Some(intro.server_version.clone()),
        tables: Some(tables.len() as u64),
        rows: Some(tables.iter().map(|t| t.rows).sum()),
        raw_bytes: Some(tables.iter().map(|t| t.raw_bytes).sum()),
        stored_bytes: tables
            .iter()
            .chain(large_objects.as_ref().map(|l| &l.data))
            .map(TableRecord::stored_bytes)
            .sum(),
        chunks: tables
            .iter()
            .chain(large_objects.as_ref().map(|l| &l.data))
            .map(|t| t.chunks.len() as u64)
            .sum(),
        new_bytes: Some(uploaded.iter().chain([&lo_uploaded]).map(|u| u.bytes).sum()),
        new_chunks: Some(
            uploaded
                .iter()
                .chain([&lo_uploaded])
                .map(|u| u.chunks)
                .sum(),
        ),
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
        catalog: {
            let mut catalog = Arc::try_unwrap(catalog).unwrap_or_else(|shared| (*shared).clone());
            for t in &mut catalog.tables {
                t.statistics = statistics.remove(&t.oid);
            }
            catalog
        },
        tables: tables.clone(),
        not_covered: intro.not_covered.clone(),
        selection: selection_record(&opts.selection),
        summary_sha256: String::new(),
        large_objects,
    };
    let writer = Arc::try_unwrap(writer)
        .map_err(|_| DumpError::Worker("a worker still holds the backup writer".into()))?;
    writer.commit(manifest, summary.clone()).await?;
    progress.finish();
    Ok(DumpOutcome {
        summary,
        tables,
        uploaded,
        not_covered: intro.not_covered,
    })
}

/// Small tables read together, in one transaction: its start, their LOCK and their
/// COPY statements take one round trip instead of two per table, and the server
/// takes one lock statement. Few enough that a worker's locks stay in the server's 16
/// fast-path slots (a table whose values are read from its TOAST table takes two more,
/// that table and its index), so the shared lock table holds about one lock per table,
/// the leader's; what overflows, at most 8 per worker, is within [`LOCK_MARGIN`].
const TABLES_TOGETHER: usize = 8;

/// A whole table estimated under this size is read together with others.
const SMALL_TABLE_BYTES: u64 = 256 << 10;

/// The units in jobs: each alone, but runs of small whole tables
/// [`TABLES_TOGETHER`] at a time.
fn table_jobs(units: Vec<WorkUnit>) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut small = Vec::new();
    for unit in units {
        if unit.pages.is_some() || unit.weight >= SMALL_TABLE_BYTES {
            jobs.push(Job::Tables(vec![unit]));
            continue;
        }
        small.push(unit);
        if small.len() == TABLES_TOGETHER {
            jobs.push(Job::Tables(std::mem::take(&mut small)));
        }
    }
    if !small.is_empty() {
        jobs.push(Job::Tables(small));
    }
    jobs
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

/// A job of backup work: a table or part of one (or several small tables, read
/// together), or a share of the large objects.
enum Job {
    Tables(Vec<WorkUnit>),
    LargeObjects(large_objects::LoUnit),
}

enum Done {
    Tables(Vec<table::UnitResult>),
    LargeObjects(large_objects::LoResult),
}

/// The manifest's record of the large objects: each object's metadata with what its
/// content adds up to, and the parts' chunks as one content record.
fn large_object_records(
    meta: Vec<LargeObject>,
    mut results: Vec<large_objects::LoResult>,
    uploaded: &mut Uploaded,
) -> Option<LargeObjects> {
    if meta.is_empty() {
        return None;
    }
    results.sort_by_key(|r| r.part);
    let mut content = std::collections::HashMap::new();
    let mut data = TableRecord {
        table_no: LARGE_OBJECTS_TABLE_NO,
        oid: 0,
        schema: "pg_catalog".into(),
        name: "pg_largeobject".into(),
        rows: 0,
        raw_bytes: 0,
        checksum: String::new(),
        chunks: Vec::new(),
        parts: Vec::new(),
        copy_format: CopyFormat::Binary,
    };
    let mut total = TupleStats::default();
    for r in results {
        total.merge(r.stats);
        data.raw_bytes += r.raw_bytes;
        uploaded.add(&r.chunks);
        data.chunks.extend(r.chunks.into_iter().map(|c| c.record));
        data.parts.push(PartRecord {
            part: r.part,
            start_page: 0,
            end_page: None,
            rows: r.stats.rows,
            raw_bytes: r.raw_bytes,
            checksum: format!("{:032x}", r.stats.checksum),
        });
        for c in r.objects {
            content.insert(c.oid, (r.part, c));
        }
    }
    data.rows = total.rows;
    data.checksum = format!("{:032x}", total.checksum);
    let objects = meta
        .into_iter()
        .filter_map(|object| {
            let (part, c) = content.remove(&object.oid)?;
            Some(LargeObjectRecord {
                object,
                part,
                size: c.size,
                sha256: c.sha256,
            })
        })
        .collect();
    Some(LargeObjects { objects, data })
}

/// Each table's COPY format, by position in the catalog: text for the tables binary
/// COPY cannot carry (said in the log, with the types that are why), binary otherwise.
fn copy_formats(
    catalog: &Catalog,
    text_copy: &std::collections::HashMap<u32, Vec<String>>,
) -> Vec<CopyFormat> {
    catalog
        .tables
        .iter()
        .map(|t| match text_copy.get(&t.oid) {
            Some(why) => {
                tracing::info!("copying {} in text format: {}", t.name, why.join(", "));
                CopyFormat::Text
            }
            None => CopyFormat::Binary,
        })
        .collect()
}

/// Folds the units' results into one record per table.
fn table_records(
    catalog: &Catalog,
    formats: &[CopyFormat],
    mut results: Vec<table::UnitResult>,
) -> (Vec<TableRecord>, Vec<Uploaded>) {
    results.sort_by_key(|r| (r.unit.table, r.unit.part));
    let mut out: Vec<TableRecord> = Vec::new();
    let mut uploaded: Vec<Uploaded> = Vec::new();
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
                copy_format: formats[r.unit.table],
            });
            uploaded.push(Uploaded::default());
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
        uploaded
            .last_mut()
            .expect("pushed with its table")
            .add(&r.chunks);
        rec.chunks.extend(r.chunks.into_iter().map(|c| c.record));
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
    (out, uploaded)
}

/// Names every chosen table the role may not read, before anything is locked or
/// written: the server would stop at the first one, and the user would fix them one
/// failed run at a time.
fn check_readable(
    cat: &Catalog,
    unreadable: &std::collections::HashSet<u32>,
    user: &str,
) -> Result<(), DumpError> {
    let mut tables: Vec<String> = cat
        .tables
        .iter()
        .filter(|t| unreadable.contains(&t.oid))
        .map(|t| t.name.plain())
        .collect();
    if tables.is_empty() {
        return Ok(());
    }
    tables.sort();
    Err(DumpError::NoPrivilege {
        user: user.to_owned(),
        tables,
    })
}

/// Locks the backup needs besides one per table: the workers' units beyond their
/// fast-path slots (see [`UNITS_PER_TRANSACTION`]) and the catalog reads.
const LOCK_MARGIN: u64 = 64;

/// Refuses, before anything is locked or written, a backup whose table locks the
/// server's shared lock table cannot hold: otherwise it fails midway with "out of
/// shared memory" and no hint. The table holds `max_locks_per_transaction` ×
/// (connection slots) locks in all, shared by every session; other sessions' locks
/// take room, the leader's own (catalog reads) are on the tables it locks anyway.
async fn check_lock_room(leader: &tokio_postgres::Client, tables: u64) -> Result<(), DumpError> {
    if tables < 1000 {
        return Ok(());
    }
    let row = leader
        .query_one(
            "SELECT current_setting('max_locks_per_transaction')::int8, \
                    current_setting('max_connections')::int8 \
                    + current_setting('autovacuum_max_workers')::int8 + 1 \
                    + current_setting('max_worker_processes')::int8 \
                    + current_setting('max_wal_senders')::int8 \
                    + current_setting('max_prepared_transactions')::int8, \
                    (SELECT count(*) FROM pg_catalog.pg_locks \
                     WHERE NOT fastpath AND pid IS DISTINCT FROM pg_backend_pid())",
            &[],
        )
        .await
        .map_err(|e| PgError::query("read the lock table's size", e))?;
    let (per_transaction, slots, used): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    let (per_transaction, slots, used) = (per_transaction as u64, slots as u64, used as u64);
    let room = (per_transaction * slots).saturating_sub(used);
    if tables + LOCK_MARGIN > room {
        return Err(DumpError::LockTableTooSmall {
            tables,
            room,
            per_transaction,
            slots,
            used,
        });
    }
    Ok(())
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
