//! What a restore will do, decided before it touches a target: the part of the backup
//! it restores (cut by `-t/-n/…`, moved under `--into-schema`), the load options as
//! they run, and the steps around the load. The restore executes this plan and
//! `restore --dry-run` describes it, so the two cannot drift apart.

use serde::Serialize;
use thiserror::Error;

use super::restore::Steps;
use super::{first_line, pre_data_statements, LoadOptions};
use crate::archive::Manifest;
use crate::catalog::Catalog;
use crate::ddl;
use crate::error::{Class, Classify, Outcome};
use crate::plan::relocate::{relocate, RelocateError};
use crate::plan::scope::{scope, Scope};
use crate::plan::select::{SelectError, Selection};

/// What the user asked to restore, apart from where from and where to.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub load: LoadOptions,
    /// Run the pre-flight check. It reads the restored tables' chunks once more
    /// before loading; skip it only when the backup was just verified.
    pub preflight: bool,
    /// `-t/-n/-T/-N`: what to restore; everything when empty.
    pub selection: Selection,
    /// Also restore what the chosen tables need (see [`crate::plan::scope`]).
    pub with_dependencies: bool,
    /// Restore the chosen tables under this schema, beside the live ones.
    pub into_schema: Option<String>,
    /// Create the target database first (`--clean` drops it first).
    pub create: bool,
}

impl Default for PlanOptions {
    /// The whole backup with the default load options.
    fn default() -> Self {
        PlanOptions {
            load: LoadOptions::default(),
            preflight: true,
            selection: Selection::default(),
            with_dependencies: false,
            into_schema: None,
            create: false,
        }
    }
}

/// The chosen tables or schema cannot be restored as asked; the user fixes the flags.
#[derive(Debug, Error)]
pub enum PlanError {
    #[error(
        "--cascade empties tables referencing those --data-only reloads: it goes with \
         --data-only (or --section data alone)"
    )]
    CascadeWithoutDataOnly,
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error(transparent)]
    Relocate(#[from] RelocateError),
}

impl Classify for PlanError {
    fn class(&self) -> Class {
        Class::Usage
    }
}

/// A restore decided: run by [`super::restore::restore`], shown by [`Plan::describe`].
#[derive(Debug, Clone)]
pub struct Plan {
    pub scope: Scope,
    /// What the user should know before it runs (relocated names, …).
    pub notes: Vec<String>,
    pub load: LoadOptions,
    pub steps: Steps,
}

impl PlanOptions {
    /// Refuses options that contradict each other, before the backup is opened.
    pub fn check(&self) -> Result<(), PlanError> {
        let sections = self.load.sections;
        if self.load.cascade && (sections.pre_data || !sections.data) {
            return Err(PlanError::CascadeWithoutDataOnly);
        }
        Ok(())
    }
}

/// Plans the restore of `opts`'s part of a backup whose catalog is `cat`.
pub fn plan(cat: &Catalog, opts: &PlanOptions) -> Result<Plan, PlanError> {
    opts.check()?;
    let mut scope = scope(cat, &opts.selection, opts.with_dependencies)?;
    if opts.load.with_dependents && scope.partial {
        scope = scope.with_dependents(cat);
    }
    ddl::map_roles(&mut scope.catalog, &opts.load.roles.map);
    let mut notes = Vec::new();
    let mut load = opts.load.clone();
    if let Some(schema) = &opts.into_schema {
        let moved = relocate(scope.catalog, schema)?;
        scope.catalog = moved.catalog;
        scope.ensure_schemas = vec![schema.clone()];
        scope.partial = true;
        notes = moved.notes;
        // Beside the live tables, the copies get no privileges (see
        // [`crate::plan::relocate`]).
        load.ddl.privileges = false;
    }
    if opts.create {
        // `--clean` dropped the whole database: there is nothing left to drop in it.
        load.clean = None;
    }
    Ok(Plan {
        scope,
        notes,
        load,
        steps: Steps {
            preflight: opts.preflight,
            create: opts.create.then_some(opts.load.clean),
        },
    })
}

#[derive(Debug, Serialize)]
pub struct PlannedTable {
    pub table: String,
    pub rows: u64,
    /// Bytes of COPY data, as loaded.
    pub raw_bytes: u64,
    /// Bytes read from the repository (compressed, encrypted).
    pub stored_bytes: u64,
    /// Parts loaded in parallel (1 for a table backed up whole).
    pub parts: usize,
}

/// A plan as `restore --dry-run` shows it: in order, with sizes. What depends on the
/// target (which outside tables it has, whether the tables exist) is shown as notes,
/// since no target is asked.
#[derive(Debug, Serialize)]
pub struct DryRun {
    pub backup_id: String,
    pub partial: bool,
    /// First line of each pre-data statement, in order (`OPTIONS (…)` never shown).
    pub pre_data: Vec<String>,
    /// Tables in the order their loading starts.
    pub tables: Vec<PlannedTable>,
    pub sequence_values: usize,
    /// First line of each post-data statement, in order.
    pub post_data: Vec<String>,
    pub notes: Vec<String>,
}

impl Outcome for DryRun {}

/// A restore written out as SQL ([`Plan::script`]).
#[derive(Debug, Serialize)]
pub struct Script {
    pub backup_id: String,
    /// Statements in it (the session settings not counted).
    pub statements: usize,
    /// The script itself.
    #[serde(skip)]
    pub sql: String,
}

impl Outcome for Script {}

impl Plan {
    /// The pre-data statements the restore runs, in order.
    fn pre_data(&self) -> Vec<String> {
        if self.load.sections.pre_data {
            pre_data_statements(&self.scope, &self.load)
        } else {
            Vec::new()
        }
    }

    /// The post-data statements, in an order that runs one after another.
    fn post_data(&self) -> Vec<String> {
        if !self.load.sections.post_data {
            return Vec::new();
        }
        let p = ddl::post_data(&self.scope.catalog, &self.load.ddl);
        p.indexes
            .iter()
            .map(|(_, s)| s)
            .chain(&p.attach)
            .chain(p.constraint_groups.iter().flat_map(|g| g.statements()))
            .chain(&p.rest)
            .cloned()
            .collect()
    }

    /// The restore as an SQL script, like `pg_restore -f`: the session settings, the
    /// pre-data, where each table's rows would load (the rows themselves are not in
    /// it), sequence values and post-data, each statement whole. For reading and
    /// diffing a backup's schema, or running it with psql.
    /// `--with-dependents`: the statements that add other tables' foreign keys to the
    /// restored ones back, which the restore runs where the target lacks them.
    fn dependent_foreign_keys(&self, m: &Manifest) -> Vec<String> {
        if !(self.load.with_dependents && self.scope.partial && self.load.sections.pre_data) {
            return Vec::new();
        }
        self.scope
            .dependents(&m.catalog)
            .foreign_keys
            .iter()
            .map(|(t, c)| super::dependents::add_foreign_key(t, c))
            .collect()
    }

    pub fn script(&self, backup_id: &str, m: &Manifest) -> Script {
        let mut out = format!(
            "-- pgbunker restore script of backup {backup_id} (database {}, PostgreSQL {})\n\
             -- Schema only: the rows stay in the repository (`pgbunker restore` loads them).\n\n",
            m.source.database, m.source.server_version
        );
        let mut statements = 0;
        let mut section = |out: &mut String, name: &str, list: &[String]| {
            if list.is_empty() {
                return;
            }
            out.push_str(&format!("-- {name}\n\n"));
            for s in list {
                out.push_str(s.trim_end());
                out.push_str(";\n\n");
            }
            statements += list.len();
        };
        let preamble: Vec<String> = crate::pg::SESSION_SETTINGS
            .split("; ")
            .map(str::to_owned)
            .collect();
        out.push_str("-- session settings\n\n");
        for s in &preamble {
            out.push_str(s.split_whitespace().collect::<Vec<_>>().join(" ").as_str());
            out.push_str(";\n");
        }
        out.push('\n');
        section(&mut out, "pre-data", &self.pre_data());
        let dry = self.describe(backup_id, m);
        if !dry.tables.is_empty() {
            out.push_str("-- data (not in this script)\n\n");
            for t in &dry.tables {
                out.push_str(&format!("-- {}: {} rows\n", t.table, t.rows));
            }
            out.push('\n');
        }
        if self.load.sections.data {
            section(
                &mut out,
                "sequence values",
                &ddl::sequence_values(&self.scope.catalog),
            );
        }
        section(&mut out, "post-data", &self.post_data());
        section(
            &mut out,
            "foreign keys of other tables (the restore adds those the target lacks)",
            &self.dependent_foreign_keys(m),
        );
        Script {
            backup_id: backup_id.to_owned(),
            statements,
            sql: out,
        }
    }

    /// The statements and loads this plan runs against the backup `m`, with the same
    /// functions the load calls.
    pub fn describe(&self, backup_id: &str, m: &Manifest) -> DryRun {
        let (scope, load) = (&self.scope, &self.load);
        let sections = load.sections;
        let pre_data = self.pre_data().iter().map(|s| first_line(s)).collect();
        let cat = &scope.catalog;
        let tables = if sections.data {
            crate::plan::restore_order(cat)
                .into_iter()
                .filter(|&i| cat.tables[i].has_data())
                .filter_map(|i| {
                    let rec = m.table(scope.table_numbers[i])?;
                    Some(PlannedTable {
                        table: cat.tables[i].name.plain(),
                        rows: rec.rows,
                        raw_bytes: rec.raw_bytes,
                        stored_bytes: rec.stored_bytes(),
                        parts: rec.effective_parts().len(),
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        let post_data = self
            .post_data()
            .iter()
            .chain(&self.dependent_foreign_keys(m))
            .map(|s| first_line(s))
            .collect();
        let mut notes = self.notes.clone();
        for outside in scope.outside_tables() {
            notes.push(format!(
                "{} is not restored: what points at it (foreign keys, partitions) is linked \
                 only if the target has it",
                outside.plain()
            ));
        }
        DryRun {
            backup_id: backup_id.into(),
            partial: scope.partial,
            pre_data,
            tables,
            sequence_values: if sections.data {
                cat.sequences.len()
            } else {
                0
            },
            post_data,
            notes,
        }
    }
}
