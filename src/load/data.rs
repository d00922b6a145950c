//! The data section: every table's rows, each table in its own transaction, so a
//! table that fails is rolled back whole while the others go on.
//!
//! Two ways, depending on who made the tables:
//!
//! - **fresh**: this restore created them (pre-data ran first) and adds keys and
//!   foreign keys only afterwards. Each table, or each part of a split table, loads on
//!   its own connection: `TRUNCATE ONLY` and `COPY … FREEZE` in one transaction. When
//!   one part of a split table fails, the table is emptied, so it is whole or empty.
//! - **existing** (`--data-only`): the tables exist with their foreign keys enforced.
//!   A table cannot be emptied while another table's foreign key points at it, unless
//!   both are emptied by one `TRUNCATE`; so tables linked by foreign keys form one
//!   group, loaded in one transaction (parents first, deferrable keys deferred), and
//!   groups load in parallel. A failing group is rolled back: its tables keep the rows
//!   they had.

use std::collections::BTreeMap;
use std::future::Future;

use tokio_postgres::Client;

use super::table::{copy_part, Part};
use super::{Failure, LoadError, LoadedTable};
use crate::archive::BackupReader;
use crate::catalog::Table;
use crate::mask::Masking;
use crate::pg::PgError;
use crate::plan::scope::Scope;
use crate::progress::Progress;

/// How the data section treats the tables it loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tables {
    /// Created by this restore, without foreign keys yet.
    Fresh,
    /// Already there; `cascade` also empties tables outside the restore that
    /// reference them.
    Existing { cascade: bool },
}

/// Runs `body` between `BEGIN` (followed by `prelude`) and `COMMIT`, or rolls back.
/// A `single` statement with no prelude is a transaction of its own: it runs bare.
async fn in_transaction<T, F, Fut>(
    client: &Client,
    what: &str,
    prelude: &[String],
    single: bool,
    body: F,
) -> Result<T, LoadError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, LoadError>>,
{
    if single && prelude.is_empty() {
        return body().await;
    }
    let run = async {
        client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| PgError::query(format!("start loading {what}"), e))?;
        for s in prelude {
            client
                .batch_execute(s)
                .await
                .map_err(|e| PgError::query(format!("prepare {what}"), e))?;
        }
        let out = body().await?;
        client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| PgError::query(format!("commit {what}"), e))?;
        Ok(out)
    };
    let out = run.await;
    if out.is_err() {
        // The connection may be gone; the server rolls back on its own then.
        let _ = client.batch_execute("ROLLBACK").await;
    }
    out
}

/// Tables with less raw data than this load without `TRUNCATE` and `FREEZE`, and get
/// their keys, indexes and ANALYZE in one step.
pub(super) const SMALL_TABLE_BYTES: u64 = 1 << 20;

/// One unit of work: the parts of one or more tables, in one transaction.
pub(super) struct Unit {
    /// Tables (positions in the scope's catalog) and the parts to load of each.
    pub tables: Vec<(usize, Vec<u32>)>,
    prelude: Vec<String>,
    freeze: bool,
    /// Raw bytes of the rows it loads.
    pub raw_bytes: u64,
}

/// The units that load the scope's tables, parents first.
pub(super) fn units(reader: &BackupReader, scope: &Scope, mode: Tables) -> Vec<Unit> {
    let cat = &scope.catalog;
    let manifest = reader.manifest();
    let order: Vec<usize> = crate::plan::restore_order(cat)
        .into_iter()
        .filter(|&i| cat.tables[i].has_data())
        .collect();
    let record = |i: usize| manifest.table(scope.table_numbers[i]);
    let parts_of = |i: usize| -> Vec<u32> {
        let parts: Vec<u32> = record(i)
            .map(|t| t.parts.iter().map(|p| p.part).collect())
            .unwrap_or_default();
        if parts.is_empty() {
            vec![0]
        } else {
            parts
        }
    };
    let part_bytes = |i: usize, part: u32| -> u64 {
        record(i).map_or(0, |t| match t.parts.iter().find(|p| p.part == part) {
            Some(p) => p.raw_bytes,
            None => t.raw_bytes,
        })
    };
    match mode {
        Tables::Fresh => order
            .iter()
            .flat_map(|&i| {
                let parts = parts_of(i);
                // Parts of a split table share it with concurrent loaders: they can
                // neither empty it nor freeze their rows. Freezing spares the first
                // VACUUM a rewrite of every page; on a small table that is nothing next
                // to the TRUNCATE's new files and its transaction's round trips
                // (3000 small tables: 1 s of server time), so a small table is one
                // plain COPY, atomic by itself.
                let raw = record(i).map_or(0, |t| t.raw_bytes);
                let freeze = parts.len() == 1 && raw >= SMALL_TABLE_BYTES;
                let name = &cat.tables[i].name;
                parts.into_iter().map(move |p| Unit {
                    tables: vec![(i, vec![p])],
                    prelude: if freeze {
                        vec![format!("TRUNCATE ONLY {name}")]
                    } else {
                        Vec::new()
                    },
                    freeze,
                    raw_bytes: part_bytes(i, p),
                })
            })
            .collect(),
        Tables::Existing { cascade } => {
            let component = cat.fk_components();
            let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
            for &i in &order {
                groups.entry(component[i]).or_default().push(i);
            }
            groups
                .into_values()
                .map(|members| {
                    let names: Vec<String> = members
                        .iter()
                        .map(|&i| cat.tables[i].name.to_string())
                        .collect();
                    Unit {
                        tables: members.iter().map(|&i| (i, parts_of(i))).collect(),
                        prelude: vec![
                            "SET CONSTRAINTS ALL DEFERRED".into(),
                            format!(
                                "TRUNCATE ONLY {}{}",
                                names.join(", "),
                                if cascade { " CASCADE" } else { "" }
                            ),
                        ],
                        freeze: true,
                        raw_bytes: members
                            .iter()
                            .filter_map(|&i| record(i))
                            .map(|t| t.raw_bytes)
                            .sum(),
                    }
                })
                .collect()
        }
    }
}

/// Loads one unit; a failure rolls the unit back and is recorded in its tables'
/// entries, one per part. Only a lost worker is an error.
pub(super) async fn load_unit(
    client: &Client,
    unit: Unit,
    scope: &Scope,
    reader: &BackupReader,
    mask: Option<&Masking>,
    progress: &dyn Progress,
) -> Vec<LoadedTable> {
    let cat = &scope.catalog;
    let what = unit
        .tables
        .iter()
        .map(|(i, _)| cat.tables[*i].name.plain())
        .collect::<Vec<_>>()
        .join(", ");
    let single = unit.tables.len() == 1 && unit.tables[0].1.len() == 1;
    let loaded = in_transaction(client, &what, &unit.prelude, single, || async {
        let mut out = Vec::new();
        for (i, parts) in &unit.tables {
            let (t, no) = (&cat.tables[*i], scope.table_numbers[*i]);
            for &part in parts {
                let target = Part {
                    table: t,
                    table_no: no,
                    part,
                    freeze: unit.freeze,
                    mask: mask.and_then(|m| m.table(t.oid)),
                };
                out.push(copy_part(client, target, reader, progress).await?);
            }
        }
        Ok(out)
    })
    .await;
    match loaded {
        Ok(parts) => parts,
        Err(e) => {
            let failure = Failure::new(what, &e);
            unit.tables
                .iter()
                .map(|(i, _)| LoadedTable {
                    name: cat.tables[*i].name.plain(),
                    rows: 0,
                    raw_bytes: 0,
                    error: Some(failure.clone()),
                })
                .collect()
        }
    }
}

/// One entry per table from the entries of its parts, by name.
pub(super) fn by_table(mut parts: Vec<LoadedTable>) -> Vec<LoadedTable> {
    parts.sort_by(|a, b| a.name.cmp(&b.name));
    let mut tables: Vec<LoadedTable> = Vec::new();
    for p in parts {
        match tables.last_mut() {
            Some(t) if t.name == p.name => {
                t.rows += p.rows;
                t.raw_bytes += p.raw_bytes;
                t.error = t.error.take().or(p.error);
            }
            _ => tables.push(p),
        }
    }
    tables
}

/// Empties a split table one of whose parts failed, so that it is whole or empty.
pub(super) async fn empty(client: &Client, table: &Table) -> Result<(), LoadError> {
    client
        .batch_execute(&format!("TRUNCATE ONLY {}", table.name))
        .await
        .map_err(|e| {
            PgError::query(format!("empty the partly loaded {}", table.name.plain()), e).into()
        })
}
