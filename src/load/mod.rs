//! Restore: pre-data DDL, parallel `COPY … FROM STDIN (FORMAT binary)` in foreign-key
//! order with chunks fetched and opened ahead, sequence values, then post-data
//! (keys and indexes in parallel, then foreign keys), then ANALYZE.

mod parallel;
mod table;

pub use table::type_remapper;

use std::sync::Arc;

use thiserror::Error;

use crate::archive::{ArchiveError, BackupReader};
use crate::error::{Class, Classify};
use crate::pg::{prepare_session, run_sessions, ConnSpec, PgError, WorkerLost};
use crate::pgcopy::remap::RemapError;
use crate::pgcopy::CopyFormatError;
use crate::progress::Progress;

#[derive(Debug, Error)]
pub enum LoadError {
    #[error(transparent)]
    Pg(#[from] PgError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("the target database already has {} of the tables to restore: {}", .0.len(), .0.join(", "))]
    NotEmpty(Vec<String>),
    #[error("{section} failed at `{statement}`: {source}")]
    Ddl {
        section: &'static str,
        statement: String,
        #[source]
        source: PgError,
    },
    #[error("chunk {chunk} of {table} is malformed: {source}")]
    Tuples {
        table: String,
        chunk: u64,
        #[source]
        source: CopyFormatError,
    },
    #[error("{table}: {what} is {got}, the manifest says {want}")]
    Mismatch {
        table: String,
        what: String,
        got: String,
        want: String,
    },
    #[error("the target database lacks the type(s) {} that the values of {table} refer to", .types.join(", "))]
    MissingTypes { table: String, types: Vec<String> },
    #[error("the type OIDs inside the values of {table}{} cannot be rewritten: {source}", .chunk.map(|c| format!(" (chunk {c})")).unwrap_or_default())]
    Remap {
        table: String,
        chunk: Option<u64>,
        #[source]
        source: RemapError,
    },
    #[error("a restore worker stopped unexpectedly: {0}")]
    Worker(String),
}

impl From<WorkerLost> for LoadError {
    fn from(e: WorkerLost) -> Self {
        LoadError::Worker(e.0)
    }
}

impl Classify for LoadError {
    fn class(&self) -> Class {
        match self {
            LoadError::Pg(e) => e.class(),
            LoadError::Archive(e) => e.class(),
            LoadError::NotEmpty(_) => Class::Usage,
            LoadError::Ddl { source, .. } => source.class(),
            LoadError::Tuples { .. } | LoadError::Mismatch { .. } => Class::Corrupt,
            LoadError::MissingTypes { .. } => Class::Database,
            LoadError::Remap { .. } => Class::Corrupt,
            LoadError::Worker(_) => Class::Internal,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            LoadError::Pg(e) => e.hint(),
            LoadError::Archive(e) => e.hint(),
            LoadError::NotEmpty(_) => Some(
                "restore into a new, empty database (createdb) or drop those tables first".into(),
            ),
            LoadError::Ddl { source, .. } => source.hint(),
            LoadError::MissingTypes { .. } => Some(
                "the restore did not create them (the backup lists such types as not covered): \
                 create them in the target database, then restore again"
                    .into(),
            ),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Connections loading tables and building indexes at once.
    pub jobs: usize,
    /// Run ANALYZE on the restored tables at the end.
    pub analyze: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            jobs: 4,
            analyze: true,
        }
    }
}

/// A restored table.
#[derive(Debug, Clone)]
pub struct LoadedTable {
    pub name: String,
    pub rows: u64,
    pub raw_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct LoadOutcome {
    pub tables: Vec<LoadedTable>,
    pub statements: usize,
    /// Steps that failed without harming the restored data (an ANALYZE).
    pub warnings: Vec<String>,
}

/// Connects to `target` and checks it holds none of the backup's tables, changing
/// nothing: a restore bound to fail there should fail before a long pre-flight check.
pub async fn check_target(target: &ConnSpec, reader: &BackupReader) -> Result<(), LoadError> {
    let admin = target.connect().await?;
    prepare_session(&admin).await?;
    refuse_existing(&admin, &reader.manifest().catalog).await
}

/// Restores the whole backup into the (empty) database `target`.
pub async fn run(
    target: &ConnSpec,
    reader: &BackupReader,
    opts: &LoadOptions,
    progress: Arc<dyn Progress>,
) -> Result<LoadOutcome, LoadError> {
    let cat = Arc::new(reader.manifest().catalog.clone());
    let admin = target.connect().await?;
    prepare_session(&admin).await?;
    refuse_existing(&admin, &cat).await?;

    progress.phase("pre-data");
    let pre = crate::ddl::pre_data(&cat);
    run_in_transaction(&admin, "pre-data", &pre).await?;

    let raw: u64 = reader.manifest().tables.iter().map(|t| t.raw_bytes).sum();
    // One unit per table, or per part of a table that was split: parts of one big
    // table load on several connections at once.
    let units: Vec<(usize, u32)> = crate::plan::restore_order(&cat)
        .into_iter()
        .filter(|&i| cat.tables[i].has_data())
        .flat_map(|i| {
            let parts: Vec<u32> = reader
                .manifest()
                .table(i as u32)
                .map(|t| t.parts.iter().map(|p| p.part).collect())
                .unwrap_or_default();
            let parts = if parts.is_empty() { vec![0] } else { parts };
            parts.into_iter().map(move |p| (i, p))
        })
        .collect();
    progress.start("restore", units.len() as u64, raw);
    let setup = parallel::session_setting("SET synchronous_commit = off");
    let (c, r, p) = (cat.clone(), reader.clone(), progress.clone());
    let work = move |client: Arc<tokio_postgres::Client>, (i, part): (usize, u32)| {
        let (cat, reader, progress) = (c.clone(), r.clone(), p.clone());
        async move {
            let t = &cat.tables[i];
            table::load_unit(&client, t, i as u32, part, &reader, progress.as_ref()).await
        }
    };
    let loaded = run_sessions(target, opts.jobs, units, setup, work).await;
    progress.finish();
    let mut parts = loaded?;
    parts.sort_by(|a, b| a.name.cmp(&b.name));
    let mut tables: Vec<LoadedTable> = Vec::new();
    for p in parts {
        match tables.last_mut() {
            Some(t) if t.name == p.name => {
                t.rows += p.rows;
                t.raw_bytes += p.raw_bytes;
            }
            _ => tables.push(p),
        }
    }

    progress.phase("sequence values");
    run_in_transaction(
        &admin,
        "sequence values",
        &crate::ddl::sequence_values(&cat),
    )
    .await?;

    progress.phase("post-data");
    let post = crate::ddl::post_data(&cat);
    let singles = |v: &[String]| v.iter().map(|s| vec![s.clone()]).collect::<Vec<_>>();
    let keys = singles(&post.indexes);
    parallel::run_statements(target, opts.jobs, "post-data (keys and indexes)", keys).await?;
    run_in_transaction(&admin, "post-data (partition indexes)", &post.attach).await?;
    let fks = post.constraint_groups.clone();
    parallel::run_statements(target, opts.jobs, "post-data (foreign keys)", fks).await?;
    run_in_transaction(&admin, "post-data", &post.rest).await?;
    let fk_count: usize = post.constraint_groups.iter().map(Vec::len).sum();
    let mut statements =
        pre.len() + post.indexes.len() + post.attach.len() + fk_count + post.rest.len();
    let mut warnings = Vec::new();
    if opts.analyze {
        progress.phase("analyze");
        let analyze: Vec<String> = cat
            .tables
            .iter()
            .map(|t| format!("ANALYZE {}", t.name))
            .collect();
        statements += analyze.len();
        warnings = parallel::run_best_effort(target, opts.jobs, analyze).await?;
    }
    Ok(LoadOutcome {
        tables,
        statements,
        warnings,
    })
}

/// Restoring over existing tables would mix data; refuse before touching anything.
async fn refuse_existing(
    client: &tokio_postgres::Client,
    cat: &crate::catalog::Catalog,
) -> Result<(), LoadError> {
    let names: Vec<String> = cat.tables.iter().map(|t| t.name.to_string()).collect();
    let rows = client
        .query(
            "SELECT i::int4 FROM pg_catalog.unnest($1::text[]) WITH ORDINALITY AS u(n, i) \
             WHERE pg_catalog.to_regclass(n) IS NOT NULL ORDER BY i",
            &[&names],
        )
        .await
        .map_err(|e| PgError::query("inspect the target database", e))?;
    let existing: Vec<String> = rows
        .iter()
        .map(|r| cat.tables[r.get::<_, i32>(0) as usize - 1].name.plain())
        .collect();
    if existing.is_empty() {
        Ok(())
    } else {
        Err(LoadError::NotEmpty(existing))
    }
}

/// Runs statements one by one in a single transaction so a failure names the
/// statement and leaves nothing half-created.
async fn run_in_transaction(
    client: &tokio_postgres::Client,
    section: &'static str,
    statements: &[String],
) -> Result<(), LoadError> {
    if statements.is_empty() {
        return Ok(());
    }
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| PgError::query(format!("start {section}"), e))?;
    for s in statements {
        if let Err(e) = client.batch_execute(s).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(LoadError::Ddl {
                section,
                statement: first_line(s),
                source: PgError::query(section, e),
            });
        }
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| PgError::query(format!("commit {section}"), e))?;
    Ok(())
}

/// How a statement is shown in errors and warnings: its first line, cut short, and
/// never its `OPTIONS (…)`, where user mappings and servers keep passwords.
pub(crate) fn first_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or("");
    let l = match l.find(" OPTIONS (") {
        Some(i) => &l[..i],
        None => l,
    };
    if l.len() > 120 {
        format!("{}…", &l[..l.floor_char_boundary(120)])
    } else {
        l.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::first_line;

    #[test]
    fn statements_in_errors_never_show_options() {
        let s = "CREATE USER MAPPING FOR \"app\" SERVER \"s\" OPTIONS (password 'hunter2')";
        assert_eq!(
            first_line(s),
            "CREATE USER MAPPING FOR \"app\" SERVER \"s\""
        );
        assert_eq!(
            first_line("CREATE TABLE t (\n  a int\n)"),
            "CREATE TABLE t ("
        );
    }
}
