//! `pgbunker restore --dry-run`: what a restore would do, in order, with sizes,
//! without a target database. It reads the manifest only.
//!
//! The plan is the restore's own: the same scope, the same statements, the same
//! loading order. What depends on the target (which outside tables it has, whether
//! the tables exist) is shown as notes, since no target is asked.

use serde::Serialize;

use super::restore::{restore_scope, RestoreOptions};
use super::CommandError;
use crate::archive::BackupReader;
use crate::load::{first_line, pre_data_statements};

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

#[derive(Debug, Serialize)]
pub struct RestorePlan {
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

pub async fn plan(opts: &RestoreOptions) -> Result<RestorePlan, CommandError> {
    let repo = opts.repo.open().await?;
    let live = repo.resolve(&opts.backup).await?;
    let reader = BackupReader::open(&repo, &live).await?;
    let m = reader.manifest();
    let (scope, mut notes) = restore_scope(&m.catalog, opts)?;
    let load = &opts.load;
    let sections = load.sections;
    let pre_data = if sections.pre_data {
        pre_data_statements(&scope, load)
            .iter()
            .map(|s| first_line(s))
            .collect()
    } else {
        Vec::new()
    };
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
    let post_data = if sections.post_data {
        let p = crate::ddl::post_data(cat, &load.ddl);
        p.indexes
            .iter()
            .chain(&p.attach)
            .chain(p.constraint_groups.iter().flatten())
            .chain(&p.rest)
            .map(|s| first_line(s))
            .collect()
    } else {
        Vec::new()
    };
    for outside in scope.outside_tables() {
        notes.push(format!(
            "{} is not restored: what points at it (foreign keys, partitions) is linked \
             only if the target has it",
            outside.plain()
        ));
    }
    Ok(RestorePlan {
        backup_id: live.bid,
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
    })
}
