//! Restore: pre-data DDL, sequence values, then parallel `COPY … FROM STDIN (FORMAT
//! binary)` with chunks fetched and opened ahead, each table's keys and indexes as
//! soon as its rows are in, foreign keys, the rest of post-data and ANALYZE, as one
//! schedule (`schedule`): for the whole backup or a [`Scope`] of it, into an empty
//! database or one that has the schema, section by section.
//!
//! Pre-data runs in one transaction: it all exists or nothing does. After that a
//! failure is kept and the restore goes on: each table loads in its own transaction
//! and a post-data statement that fails is reported, so the outcome lists what
//! succeeded and what did not, and `--clean` can re-run it.

mod data;
pub mod database;
mod dependents;
mod large_objects;
pub use large_objects::unlink as unlink_large_objects;
mod parallel;
pub mod plan;
pub mod restore;
mod schedule;
mod table;
mod target;

pub use large_objects::included as includes_large_objects;
pub use table::type_remapper;
pub use target::TargetState;

use std::sync::Arc;

use futures::StreamExt;
use serde::Serialize;
use thiserror::Error;

use crate::archive::{ArchiveError, BackupReader};
use crate::catalog::{oid_list, Catalog, ConstraintKind};
use crate::ddl::DdlOptions;
use crate::error::{Class, Classify};
use crate::pg::{prepare_session, ConnSpec, PgError, WorkerLost};
use crate::pgcopy::remap::RemapError;
use crate::pgcopy::CopyFormatError;
use crate::plan::scope::Scope;
use crate::progress::Progress;

#[derive(Debug, Error)]
pub enum LoadError {
    #[error(transparent)]
    Pg(#[from] PgError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("the target database already has {} of the tables to restore: {}", .0.len(), .0.join(", "))]
    NotEmpty(Vec<String>),
    #[error("the target database lacks {} of the tables to load: {}", .0.len(), .0.join(", "))]
    MissingTables(Vec<String>),
    #[error("{}, which is neither restored nor in the target database", .0.join("; "))]
    MissingParents(Vec<String>),
    #[error("the target cluster lacks {} role(s) the backup's objects name: {}", .0.len(), .0.join(", "))]
    MissingRoles(Vec<String>),
    #[error("emptying the tables to load would orphan the rows of {}, which reference them and are not restored", .0.join(", "))]
    WouldOrphan(Vec<String>),
    #[error("{section} failed at `{statement}`: {source}")]
    Ddl {
        section: &'static str,
        statement: String,
        #[source]
        source: Box<PgError>,
        /// Only part of the backup was being restored.
        partial: bool,
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
    #[error("masking failed: {0}")]
    Mask(Box<crate::mask::MaskError>),
    /// Large objects keep their OIDs, so one already there under such an OID blocks
    /// the restore.
    #[error("the target database already has {} of the large objects to restore (OIDs {})", .0.len(), oid_list(.0))]
    LargeObjectsExist(Vec<u32>),
}

impl From<WorkerLost> for LoadError {
    fn from(e: WorkerLost) -> Self {
        LoadError::Worker(e.0)
    }
}

/// Boxed: a masking failure is rare and its error large.
impl From<crate::mask::MaskError> for LoadError {
    fn from(e: crate::mask::MaskError) -> Self {
        LoadError::Mask(Box::new(e))
    }
}

impl Classify for LoadError {
    fn class(&self) -> Class {
        match self {
            LoadError::Pg(e) => e.class(),
            LoadError::Archive(e) => e.class(),
            LoadError::NotEmpty(_)
            | LoadError::LargeObjectsExist(_)
            | LoadError::MissingTables(_)
            | LoadError::MissingParents(_)
            | LoadError::MissingRoles(_)
            | LoadError::WouldOrphan(_) => Class::Usage,
            LoadError::Ddl { source, .. } => source.class(),
            LoadError::Tuples { .. } | LoadError::Mismatch { .. } => Class::Corrupt,
            LoadError::MissingTypes { .. } => Class::Database,
            LoadError::Remap { .. } => Class::Corrupt,
            LoadError::Worker(_) => Class::Internal,
            LoadError::Mask(e) => e.class(),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            LoadError::Pg(e) => e.hint(),
            LoadError::Archive(e) => e.hint(),
            LoadError::Mask(e) => e.hint(),
            LoadError::NotEmpty(_) => Some(
                "restore into a new, empty database (createdb, or --create), add --clean to \
                 drop and recreate them, or --data-only to reload their rows"
                    .into(),
            ),
            LoadError::LargeObjectsExist(_) => Some(
                "nothing was restored; tables refer to large objects by OID, so they are \
                 restored under the same OIDs: restore into a new, empty database, add \
                 --clean to replace those large objects, or leave the large objects out \
                 with --no-large-objects"
                    .into(),
            ),
            LoadError::MissingTables(_) => Some(
                "--data-only loads into existing tables: restore the schema too (drop \
                 --data-only or --section), or create the tables first"
                    .into(),
            ),
            LoadError::MissingParents(_) => Some(
                "add the parent tables (-t), or --with-dependencies, or restore into a \
                 database that has them"
                    .into(),
            ),
            LoadError::MissingRoles(_) => Some(
                "nothing was restored; roles belong to the cluster, not the database: \
                 --create-roles creates them (without passwords), --role-map OLD=NEW puts \
                 a role the target has in a missing one's place, --no-owner and \
                 --no-privileges leave owners and grants out"
                    .into(),
            ),
            LoadError::WouldOrphan(_) => Some(
                "--merge puts the backup's rows back in place without emptying anything \
                 (those tables keep their rows); or add those tables to the restore (-t), \
                 or --cascade to empty them too (their rows are lost)"
                    .into(),
            ),
            LoadError::Ddl {
                source, partial, ..
            } => match source.code() {
                // Never CASCADE: what depends on a dropped object stays.
                Some("2BP01") => Some(
                    "objects outside the restore depend on it, and restore never drops them \
                     (no CASCADE): to repair its rows, --merge puts them back in place; or \
                     restore the dependents too (-t), or drop them yourself"
                        .into(),
                ),
                Some("42704") if source.to_string().contains("role \"") => Some(
                    "roles belong to the cluster, not the backup's database: --create-roles \
                     creates the ones the backup names, --role-map OLD=NEW puts another role \
                     in a missing one's place, and --no-owner/--no-privileges leave owners \
                     and grants out"
                        .into(),
                ),
                Some("42P01" | "42704" | "42883" | "3F000") if *partial => Some(
                    "a partial restore creates only the chosen objects: add \
                     --with-dependencies to restore what they need, or restore into a \
                     database that has it"
                        .into(),
                ),
                _ => source.hint(),
            },
            LoadError::MissingTypes { .. } => Some(
                "the restore did not create them (the backup lists such types as not covered, \
                 or the restore is partial: --with-dependencies): create them in the target \
                 database, then restore again"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// Which parts of a restore run, as pg_restore's `--section`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sections {
    /// Schemas, types, functions, tables, views: what the data needs.
    pub pre_data: bool,
    /// Rows and sequence values.
    pub data: bool,
    /// Keys, indexes, foreign keys, triggers, policies, materialized view contents.
    pub post_data: bool,
}

impl Sections {
    pub const ALL: Sections = Sections {
        pre_data: true,
        data: true,
        post_data: true,
    };
}

#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Connections loading tables and building indexes at once.
    pub jobs: usize,
    /// Run ANALYZE on the restored tables at the end.
    pub analyze: bool,
    pub sections: Sections,
    /// Drop the restored objects first (`--clean`); `Some(true)` adds `IF EXISTS`.
    pub clean: Option<bool>,
    /// Owners and privileges, or neither (`--no-owner`, `--no-privileges`).
    pub ddl: DdlOptions,
    /// Loading into existing tables: also empty the tables outside the restore that
    /// reference them.
    pub cascade: bool,
    /// Roles the target cluster may lack: create them, or map them to others.
    pub roles: RoleOptions,
    /// Restore the backup's large objects (`--large-objects`/`--no-large-objects`);
    /// `None`: as pg_restore, with a whole restore but not a partial one.
    pub large_objects: Option<bool>,
    /// `--mask`: the rows are masked on their way in, and the source's planner
    /// statistics (which hold sample values) are not carried: ANALYZE runs instead.
    pub mask: Option<Arc<crate::mask::Masking>>,
    /// `--with-dependents`: a partial restore also brings back what points at its
    /// tables from outside it and the target lacks: other tables' foreign keys to them
    /// (validated) and the views built on them.
    pub with_dependents: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            jobs: 4,
            analyze: true,
            sections: Sections::ALL,
            clean: None,
            ddl: DdlOptions::default(),
            cascade: false,
            roles: RoleOptions::default(),
            large_objects: None,
            mask: None,
            with_dependents: false,
        }
    }
}

/// What a restore does about the roles the backup names (see [`crate::ddl::create_roles`]).
#[derive(Debug, Clone, Default)]
pub struct RoleOptions {
    /// Create the recorded roles the target cluster lacks (`--create-roles`).
    pub create: bool,
    /// Put the second role wherever the backup names the first (`--role-map OLD=NEW`).
    pub map: std::collections::HashMap<String, String>,
}

/// A step of the restore that failed, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The table(s) or the statement.
    pub what: String,
    pub error: String,
    #[serde(skip)]
    pub class: Class,
}

impl Failure {
    fn new(what: impl Into<String>, e: &LoadError) -> Failure {
        Failure {
            what: what.into(),
            error: match e.hint() {
                Some(h) => format!("{e} ({h})"),
                None => e.to_string(),
            },
            class: e.class(),
        }
    }
}

/// A table of the restore and how its data went.
#[derive(Debug, Clone)]
pub struct LoadedTable {
    pub name: String,
    pub rows: u64,
    pub raw_bytes: u64,
    /// Why its transaction was rolled back; it then holds no restored rows.
    pub error: Option<Failure>,
}

#[derive(Debug, Clone)]
pub struct LoadOutcome {
    pub tables: Vec<LoadedTable>,
    pub statements: usize,
    /// Statements that failed (post-data, sequence values): the rest went on.
    pub failed: Vec<Failure>,
    /// Steps that failed or were left out without harming the restored data (an
    /// ANALYZE, a foreign key to a table that is not there).
    pub warnings: Vec<String>,
}

impl LoadOutcome {
    /// The class of the first failure, when anything failed.
    pub fn failure_class(&self) -> Option<Class> {
        self.tables
            .iter()
            .filter_map(|t| t.error.as_ref())
            .chain(&self.failed)
            .map(|f| f.class)
            .next()
    }

    /// When anything failed: the first failure's class and one line naming what
    /// failed, for the error line after the report.
    pub fn incomplete(&self) -> Option<(Class, String)> {
        let class = self.failure_class()?;
        let tables: Vec<&str> = self
            .tables
            .iter()
            .filter(|t| t.error.is_some())
            .map(|t| t.name.as_str())
            .collect();
        let mut parts = Vec::new();
        if !tables.is_empty() {
            parts.push(format!(
                "{} of {} tables failed and were rolled back ({})",
                tables.len(),
                self.tables.len(),
                tables.join(", ")
            ));
        }
        if !self.failed.is_empty() {
            parts.push(format!("{} statements failed", self.failed.len()));
        }
        Some((class, format!("restore incomplete: {}", parts.join("; "))))
    }
}

/// Refuses, before anything is written, a restore whose statements name roles the
/// target cluster lacks, listing all of them (not one per attempt). `--create-roles`
/// makes the recorded ones, so only roles it cannot make count then.
pub async fn check_roles(
    client: &tokio_postgres::Client,
    scope: &Scope,
    opts: &LoadOptions,
) -> Result<(), LoadError> {
    if !(opts.sections.pre_data || opts.sections.post_data) {
        return Ok(());
    }
    let mut named = crate::ddl::named_roles(&scope.catalog, &opts.ddl);
    if opts.roles.create {
        for r in &scope.catalog.roles {
            named.remove(&r.name);
        }
    }
    let named: Vec<String> = named.into_iter().collect();
    let missing: Vec<String> = client
        .query(
            "SELECT n FROM pg_catalog.unnest($1::text[]) AS u(n) \
             WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = u.n) \
             ORDER BY n",
            &[&named],
        )
        .await
        .map_err(|e| PgError::query("look for the roles the backup names", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(LoadError::MissingRoles(missing))
    }
}

/// Connects to `target` and refuses a restore it cannot take, changing nothing.
pub async fn check_target(
    target: &ConnSpec,
    scope: &Scope,
    opts: &LoadOptions,
) -> Result<TargetState, LoadError> {
    let admin = target.connect().await?;
    prepare_session(&admin).await?;
    let state = target::inspect(&admin, scope, opts).await?;
    check_roles(&admin, scope, opts).await?;
    Ok(state)
}

/// Connects to `target` and refuses it when it already holds a large object under an
/// OID the restore would give one of the backup's, changing nothing.
pub async fn check_large_objects(
    target: &ConnSpec,
    manifest: &crate::archive::Manifest,
    scope: &Scope,
    opts: &LoadOptions,
) -> Result<(), LoadError> {
    if !large_objects::included(manifest, scope, opts) {
        return Ok(());
    }
    let admin = target.connect().await?;
    large_objects::check_target(&admin, manifest, opts).await
}

/// What the restore leaves out because the target lacks what it points at: foreign
/// keys to tables that are not there, partition attachments to missing parents.
fn fit_to_target(cat: &mut Catalog, state: &TargetState) -> Vec<String> {
    let inside: std::collections::HashSet<_> = cat.tables.iter().map(|t| t.name.clone()).collect();
    let there =
        |n: &crate::catalog::QualName| inside.contains(n) || state.outside_present.contains(n);
    let mut notes = Vec::new();
    for t in &mut cat.tables {
        t.constraints.retain(|c| match &c.references {
            Some(r) if c.kind == ConstraintKind::ForeignKey && !there(r) => {
                notes.push(format!(
                    "foreign key {} of {} left out: it references {}, which is neither restored \
                     nor in the target (--with-dependencies restores it)",
                    c.name,
                    t.name.plain(),
                    r.plain()
                ));
                false
            }
            _ => true,
        });
        // Attached to a parent the target already has, a partition gets that parent's
        // indexes, keys and foreign keys from the ATTACH itself.
        if let Some(p) = &t.partition_of {
            if !inside.contains(&p.parent) && state.outside_present.contains(&p.parent) {
                t.indexes.retain(|i| i.parent_index.is_none());
                t.constraints.retain(|c| {
                    c.parent_index.is_none() && (c.local || c.kind != ConstraintKind::ForeignKey)
                });
            }
        }
        if let Some(p) = t.partition_of.as_ref().filter(|p| !there(&p.parent)) {
            notes.push(format!(
                "{} restored as a plain table: its partitioned parent {} is neither restored \
                 nor in the target",
                t.name.plain(),
                p.parent.plain()
            ));
            t.partition_of = None;
        }
    }
    notes
}

/// The pre-data section as [`run`] sends it: drops first with `--clean`, schemas that
/// must exist, then the objects.
pub fn pre_data_statements(scope: &Scope, opts: &LoadOptions) -> Vec<String> {
    let mut pre = Vec::new();
    if opts.roles.create {
        pre.extend(crate::ddl::create_roles(&scope.catalog));
    }
    if let Some(if_exists) = opts.clean {
        pre.extend(crate::ddl::drops(&scope.catalog, if_exists));
    }
    pre.extend(scope.ensure_schemas.iter().map(|s| {
        format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            crate::catalog::quote_ident(s)
        )
    }));
    pre.extend(crate::ddl::pre_data(&scope.catalog, &opts.ddl));
    pre
}

/// Restores `scope` of the backup into `target`.
pub async fn run(
    target: &ConnSpec,
    reader: &BackupReader,
    scope: &Scope,
    opts: &LoadOptions,
    progress: Arc<dyn Progress>,
) -> Result<LoadOutcome, LoadError> {
    let admin = target.connect().await?;
    prepare_session(&admin).await?;
    let state = target::inspect(&admin, scope, opts).await?;
    let with_large_objects = large_objects::included(reader.manifest(), scope, opts);
    if with_large_objects {
        large_objects::check_target(&admin, reader.manifest(), opts).await?;
    }
    let mut scope = scope.clone();
    let mut warnings = fit_to_target(&mut scope.catalog, &state);
    let outside = if scope.partial && opts.sections.pre_data {
        dependents::inspect(&admin, &reader.manifest().catalog, &mut scope).await?
    } else {
        dependents::Outside::default()
    };
    warnings.extend(outside.notes(opts.with_dependents));
    if opts.sections.data && !opts.sections.pre_data && !state.referencing.is_empty() {
        warnings.push(format!(
            "--cascade emptied {}, which reference the restored tables",
            state
                .referencing
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let scope = Arc::new(scope);
    let cat = &scope.catalog;
    let mut statements = 0;
    let mut failed = Vec::new();

    if opts.sections.pre_data {
        progress.phase("pre-data");
        let pre = pre_data_statements(&scope, opts);
        run_in_transaction(&admin, "pre-data", &pre, scope.partial).await?;
        statements += pre.len();
    }

    if opts.sections.data {
        progress.phase("sequence values");
        let values = crate::ddl::sequence_values(cat);
        statements += values.len();
        if let Err(e) = run_in_transaction(&admin, "sequence values", &values, scope.partial).await
        {
            failed.push(Failure::new("sequence values", &e));
        }
        if with_large_objects {
            progress.phase("large objects");
            failed.extend(large_objects::load(target, reader, opts, progress.clone()).await?);
        }
    }

    let post_data = opts
        .sections
        .post_data
        .then(|| crate::ddl::post_data(cat, &opts.ddl));
    if let Some(post) = &post_data {
        statements += post.indexes.len()
            + post.attach.len()
            + post.rest.len()
            + post
                .constraint_groups
                .iter()
                .map(|g| g.statements().count())
                .sum::<usize>();
    }
    let analyze = opts.analyze && opts.sections.data;
    if analyze {
        statements += cat.tables.len();
    }
    let import_statistics = analyze
        && opts.mask.is_none()
        && crate::pg::server_version(&admin).await? >= crate::ddl::IMPORT_FROM_VERSION;
    let steps = schedule::Steps {
        data: opts.sections.data.then_some(if opts.sections.pre_data {
            data::Tables::Fresh
        } else {
            data::Tables::Existing {
                cascade: opts.cascade,
            }
        }),
        post_data,
        analyze,
        import_statistics,
        mask: opts.mask.clone(),
    };
    let ran = schedule::run(target, reader, &scope, steps, opts.jobs, progress.clone()).await?;
    for (sql, error) in ran.failed {
        failed.push(Failure {
            what: first_line(&sql),
            error,
            class: Class::Database,
        });
    }
    for (sql, error) in ran.analyze_failed {
        warnings.push(format!("`{}` failed: {error}", first_line(&sql)));
    }
    if opts.with_dependents && outside.statements() > 0 {
        progress.phase("foreign keys and defaults of other tables");
        statements += outside.statements();
        failed.extend(outside.add_back(&admin).await);
    }
    let tables = ran.tables;
    Ok(LoadOutcome {
        tables,
        statements,
        failed,
        warnings,
    })
}

/// Statements of one transaction in flight at once.
const PIPELINE_DEPTH: usize = 64;

/// Runs statements in order in a single transaction so a failure names the statement
/// and leaves nothing half-created.
async fn run_in_transaction(
    client: &tokio_postgres::Client,
    section: &'static str,
    statements: &[String],
    partial: bool,
) -> Result<(), LoadError> {
    if statements.is_empty() {
        return Ok(());
    }
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| PgError::query(format!("start {section}"), e))?;
    // Sent ahead without waiting for each answer, in order: a round trip per statement
    // was a third of the pre-data of 3000 tables. The first error is the one reported;
    // the statements behind it only fail because the transaction is aborted.
    let mut answers = futures::stream::iter(statements)
        .map(|s| async move { (s, client.batch_execute(s).await) })
        .buffered(PIPELINE_DEPTH);
    while let Some((s, answer)) = answers.next().await {
        if let Err(e) = answer {
            drop(answers);
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(LoadError::Ddl {
                section,
                statement: first_line(s),
                source: Box::new(PgError::query(section, e)),
                partial,
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
