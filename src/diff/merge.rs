//! In-place repair: chosen tables of a live database brought back to a backup's rows
//! without dropping or emptying them, so the tables that reference them keep their
//! rows and foreign keys. The diff against the live table gives the rows to put back;
//! then, in one transaction over every chosen table (locked against writers), changed
//! rows are updated and deleted rows inserted again, parents before children; with
//! `exact`, rows the backup did not have are deleted, children before parents, except
//! those a row of any table still references, which are kept and named (never
//! cascaded). A dry run does all of it and rolls back.

use bytes::Bytes;
use futures::SinkExt;
use serde::Serialize;
use tokio_postgres::Client;

use super::key::{shared_key, MatchBy};
use super::live::{Live, LiveTable};
use super::table::{self, Change, Columns, Side};
use super::DiffError;
use crate::archive::{BackupReader, CopyFormat};
use crate::catalog::{quote_ident, text_session, ConstraintKind, IdentityKind, QualName, Table};
use crate::pg::{ConnSpec, PgError};
use crate::pgcopy::{header, TRAILER};
use crate::plan::select::Selection;

/// What `--merge` does with rows the backup did not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum MergeMode {
    /// Keep them: only changed and deleted rows are put back.
    Keep,
    /// Delete them too, unless another row references them.
    Exact,
}

#[derive(Debug, Clone)]
pub struct MergeOptions {
    pub mode: MergeMode,
    pub dry_run: bool,
    pub memory_bytes: usize,
}

/// What a merge did (or, in a dry run, would do) to one table.
#[derive(Debug, Clone, Serialize)]
pub struct MergedTable {
    pub schema: String,
    pub name: String,
    pub matched_by: MatchBy,
    pub updated: u64,
    pub reinserted: u64,
    pub deleted: u64,
    /// Rows the backup did not have that `exact` kept because a row references them.
    pub kept_referenced: u64,
    /// Their keys, as PostgreSQL prints them (at most a few).
    pub kept_keys: Vec<String>,
    /// Rows the backup did not have, left alone (`keep`).
    pub newer_rows: u64,
}

/// Keys of kept rows named in the report, at most.
const NAMED_KEYS: usize = 20;

/// One chosen table, its rows to put back and its rows the backup did not have.
struct Planned<'a> {
    table: &'a Table,
    /// The table's name and its partitioned ancestors' (see [`ancestry`]).
    ancestry: Vec<QualName>,
    format: CopyFormat,
    key: Vec<String>,
    columns: Vec<String>,
    olds: Vec<Vec<u8>>,
    extras: Vec<Vec<u8>>,
    report: MergedTable,
}

pub async fn merge(
    backup: &BackupReader,
    target: &ConnSpec,
    sel: &Selection,
    opts: &MergeOptions,
) -> Result<Vec<MergedTable>, DiffError> {
    let catalog = &backup.manifest().catalog;
    let chosen = sel.choose(catalog)?;
    let live = Live::open_for_change(target).await?;
    let client = live.client();
    let mut planned: Vec<Planned<'_>> = Vec::new();
    let names: Vec<&QualName> = catalog
        .tables
        .iter()
        .filter(|t| t.has_data() && chosen.keep_table(&t.name))
        .map(|t| &t.name)
        .collect();
    // Writers wait until the merge commits; readers go on.
    let list: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    client
        .batch_execute(&format!(
            "SET CONSTRAINTS ALL DEFERRED; LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
            list.join(", ")
        ))
        .await
        .map_err(|e| PgError::query("lock the tables to merge", e))?;
    for (no, a_table) in catalog.tables.iter().enumerate() {
        if !names.contains(&&a_table.name) {
            continue;
        }
        let label = a_table.name.plain();
        let refuse = |why: String| DiffError::Merge(format!("{label}: {why}"));
        let record = backup
            .manifest()
            .table(no as u32)
            .ok_or_else(|| refuse("the backup has no data for it".into()))?;
        let b_table = live
            .introspection
            .catalog
            .tables
            .iter()
            .find(|t| t.name == a_table.name)
            .ok_or_else(|| refuse("the target has no such table (restore it instead)".into()))?;
        let a = Side {
            catalog,
            table: a_table,
            format: record.copy_format,
        };
        let b = Side {
            catalog: &live.introspection.catalog,
            table: b_table,
            format: live.format(b_table),
        };
        let cols = Columns::of(&a, &b);
        if !cols.same_layout() {
            return Err(refuse(format!(
                "its columns changed since the backup (added: {}; dropped or retyped: {}; \
                 or in another order)",
                cols.added.join(", "),
                cols.dropped.join(", ")
            )));
        }
        if a.format != b.format {
            return Err(refuse(
                "the backup copied it in another COPY format than its columns need now".into(),
            ));
        }
        let same_oids = a
            .copy_columns()
            .zip(b.copy_columns())
            .all(|(x, y)| x.type_oid == y.type_oid);
        if !same_oids {
            return Err(refuse(
                "its column types have other OIDs in the target than in the backup (merge into \
                 the database the backup was taken from)"
                    .into(),
            ));
        }
        let by = shared_key(a.table, b.table, |k| cols.names.iter().any(|n| n == k));
        if by == MatchBy::WholeRows {
            return Err(refuse(
                "it has no primary key or unique NOT NULL key to match rows by".into(),
            ));
        }
        let scanned = live
            .scan(
                LiveTable {
                    table: b.table,
                    earlier: record,
                    keys: backup.chunk_keys(),
                    chunk_bytes: backup.manifest().params.chunk_bytes,
                    match_ids: true,
                },
                opts.memory_bytes,
            )
            .await?;
        let left = scanned.left;
        let a_size = (
            left.iter().map(|c| c.raw_len).sum(),
            left.iter().map(|c| c.rows).sum(),
        );
        let memory = opts.memory_bytes.saturating_sub(scanned.held_bytes);
        // The rows to put back are staged from memory: as much as the diff may hold.
        let mut changes: Vec<Change> = Vec::new();
        let mut staged = 0usize;
        let mut sink = |batch: &[Change]| {
            for c in batch {
                staged += match c {
                    Change::Update { old, new, .. } => old.len() + new.len(),
                    Change::Insert(row) | Change::Delete(row) => row.len(),
                };
            }
            if staged > opts.memory_bytes {
                return Err(refuse(format!(
                    "more than {} MiB of its rows differ from the backup: reload it whole \
                     with --data-only (or --clean) instead",
                    opts.memory_bytes >> 20
                )));
            }
            changes.extend_from_slice(batch);
            Ok(())
        };
        let counts = table::compare(
            (a, table::open_chunks(backup, record, left), a_size),
            (b, scanned.chunks),
            &cols,
            &by,
            memory,
            Some(&mut sink),
        )
        .await?;
        let (mut olds, mut extras) = (Vec::new(), Vec::new());
        for c in changes {
            match c {
                Change::Update { old, .. } | Change::Delete(old) => olds.push(old),
                Change::Insert(new) => extras.push(new),
            }
        }
        planned.push(Planned {
            table: b_table,
            ancestry: ancestry(b_table, &live.introspection.catalog.tables),
            format: b.format,
            key: by.columns().to_vec(),
            columns: b.copy_columns().map(|c| c.name.clone()).collect(),
            olds,
            extras,
            report: MergedTable {
                schema: a_table.name.schema.clone(),
                name: a_table.name.name.clone(),
                matched_by: by.clone(),
                updated: counts.updated,
                reinserted: counts.deleted,
                deleted: 0,
                kept_referenced: 0,
                kept_keys: Vec::new(),
                newer_rows: counts.inserted,
            },
        });
    }
    let order = parents_first(&planned);
    if opts.mode == MergeMode::Exact {
        // Children before parents, and before anything is put back: a row put back
        // may need the unique value a newer row holds.
        let all: Vec<&Table> = live.introspection.catalog.tables.iter().collect();
        lock_referencing(client, &planned, &all).await?;
        for &i in order.iter().rev() {
            let p = &mut planned[i];
            let (deleted, kept) = delete_extras(client, p, &all).await?;
            p.report.deleted = deleted;
            p.report.kept_referenced = kept.len() as u64;
            p.report.newer_rows = kept.len() as u64;
            p.report.kept_keys = kept.into_iter().take(NAMED_KEYS).collect();
        }
    }
    // Parents before children, so a row put back finds the row it references.
    for &i in &order {
        put_back(client, &planned[i]).await?;
    }
    // Deferred constraints are checked now, so a dry run fails where the merge would.
    client
        .batch_execute("SET CONSTRAINTS ALL IMMEDIATE")
        .await
        .map_err(|e| PgError::query("check the merged tables' constraints", e))?;
    let end = if opts.dry_run { "ROLLBACK" } else { "COMMIT" };
    client
        .batch_execute(end)
        .await
        .map_err(|e| PgError::query("commit the merge", e))?;
    Ok(planned.into_iter().map(|p| p.report).collect())
}

/// Positions of `planned` with each table after the chosen tables it references.
fn parents_first(planned: &[Planned<'_>]) -> Vec<usize> {
    let mut order: Vec<usize> = Vec::new();
    let mut left: Vec<usize> = (0..planned.len()).collect();
    while !left.is_empty() {
        let ready = left.iter().position(|&i| {
            planned[i].table.referenced_tables().all(|r| {
                left.iter()
                    .all(|&j| j == i || !planned[j].ancestry.contains(r))
            })
        });
        // A cycle of foreign keys: deferred constraints (or none) let any order do.
        order.push(left.remove(ready.unwrap_or(0)));
    }
    order
}

/// `table`'s name and its partitioned ancestors': a foreign key to any of them
/// references its rows.
fn ancestry(table: &Table, tables: &[Table]) -> Vec<QualName> {
    let mut names = vec![table.name.clone()];
    let mut at = table;
    while let Some(parent) = &at.partition_of {
        names.push(parent.parent.clone());
        match tables.iter().find(|t| t.name == parent.parent) {
            Some(t) if names.len() < 64 => at = t,
            _ => break,
        }
    }
    names
}

/// The foreign keys of `tables` that reference a row of `p`'s table.
fn references_to<'t>(
    p: &Planned<'_>,
    tables: &[&'t Table],
) -> Vec<(&'t Table, &'t crate::catalog::Constraint)> {
    let mut out = Vec::new();
    for &child in tables {
        for c in &child.constraints {
            let to_it = c
                .references
                .as_ref()
                .is_some_and(|r| p.ancestry.contains(r));
            if c.kind == ConstraintKind::ForeignKey && to_it {
                out.push((child, c));
            }
        }
    }
    out
}

/// Keeps writers out of every table that references a merged one until the merge
/// ends: a row inserted there between the check and the delete would otherwise be
/// cascaded (or set to NULL) by it.
async fn lock_referencing(
    client: &Client,
    planned: &[Planned<'_>],
    tables: &[&Table],
) -> Result<(), DiffError> {
    let mut names: Vec<String> = planned
        .iter()
        .flat_map(|p| references_to(p, tables))
        .map(|(child, _)| child.name.to_string())
        .collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Ok(());
    }
    client
        .batch_execute(&format!("LOCK TABLE {} IN SHARE MODE", names.join(", ")))
        .await
        .map_err(|e| PgError::query("lock the tables referencing the merged ones", e))?;
    Ok(())
}

/// Loads `rows` (tuples of the table's COPY columns, as its chunks hold them) into a
/// new temporary table shaped like `p.table`.
async fn temp_rows(
    client: &Client,
    p: &Planned<'_>,
    name: &str,
    columns: &str,
    rows: &[Vec<u8>],
) -> Result<(), DiffError> {
    let (table, text) = (p.table, p.format == CopyFormat::Text);
    let label = table.name.plain();
    let pg = |what: &str, e| PgError::query(format!("{what} {label}"), e);
    client
        .batch_execute(&format!(
            "CREATE TEMPORARY TABLE {name} ON COMMIT DROP AS SELECT {columns} FROM {} WITH NO DATA",
            table.name
        ))
        .await
        .map_err(|e| pg("stage the rows to merge into", e))?;
    if text {
        // The values were printed under these settings; read them back under them.
        client
            .batch_execute(&text_session(true))
            .await
            .map_err(|e| pg("fix the settings text COPY depends on for", e))?;
    }
    let format = if text { "text" } else { "binary" };
    let sink = client
        .copy_in::<_, Bytes>(&format!(
            "COPY {name} ({columns}) FROM STDIN (FORMAT {format})"
        ))
        .await
        .map_err(|e| pg("stage the rows to merge into", e))?;
    futures::pin_mut!(sink);
    let mut data = if text { Vec::new() } else { header().to_vec() };
    for r in rows {
        data.extend_from_slice(r);
    }
    if !text {
        data.extend_from_slice(&TRAILER);
    }
    sink.send(Bytes::from(data))
        .await
        .map_err(|e| pg("stage the rows to merge into", e))?;
    sink.finish()
        .await
        .map_err(|e| pg("stage the rows to merge into", e))?;
    Ok(())
}

fn quoted_list(names: &[String], prefix: &str) -> String {
    names
        .iter()
        .map(|c| format!("{prefix}{}", quote_ident(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn key_match(key: &[String], left: &str, right: &str) -> String {
    key.iter()
        .map(|k| format!("{left}.{q} = {right}.{q}", q = quote_ident(k)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// Updates the changed rows and inserts the deleted ones again, from the backup.
async fn put_back(client: &Client, p: &Planned<'_>) -> Result<(), DiffError> {
    if p.olds.is_empty() {
        return Ok(());
    }
    let label = p.table.name.plain();
    let pg = |what: &str, e| PgError::query(format!("{what} {label}"), e);
    let name = "pg_temp.pgbunker_merge_rows";
    let columns = quoted_list(&p.columns, "");
    temp_rows(client, p, name, &columns, &p.olds).await?;
    // An identity column GENERATED ALWAYS takes no value from UPDATE (PostgreSQL has
    // no OVERRIDING there); it keeps its own, as no UPDATE can have changed it.
    let always: Vec<&str> = p
        .table
        .columns
        .iter()
        .filter(|c| c.identity == Some(IdentityKind::Always))
        .map(|c| c.name.as_str())
        .collect();
    let set: Vec<String> = p
        .columns
        .iter()
        .filter(|c| !p.key.contains(c) && !always.contains(&c.as_str()))
        .map(|c| format!("{q} = s.{q}", q = quote_ident(c)))
        .collect();
    let matched = key_match(&p.key, "t", "s");
    if !set.is_empty() {
        client
            .batch_execute(&format!(
                "UPDATE {} AS t SET {} FROM {name} AS s WHERE {matched}",
                p.table.name,
                set.join(", ")
            ))
            .await
            .map_err(|e| pg("put back the changed rows of", e))?;
    }
    client
        .batch_execute(&format!(
            "INSERT INTO {} ({columns}) OVERRIDING SYSTEM VALUE SELECT {} FROM {name} AS s \
             WHERE NOT EXISTS (SELECT FROM {} AS t WHERE {matched}); DROP TABLE {name}",
            p.table.name,
            quoted_list(&p.columns, "s."),
            p.table.name
        ))
        .await
        .map_err(|e| pg("put back the deleted rows of", e))?;
    Ok(())
}

/// Deletes the rows the backup did not have, except those a row of `tables`
/// references (returned by key, as PostgreSQL prints them); returns how many went.
async fn delete_extras(
    client: &Client,
    p: &Planned<'_>,
    tables: &[&Table],
) -> Result<(u64, Vec<String>), DiffError> {
    if p.extras.is_empty() {
        return Ok((0, Vec::new()));
    }
    let label = p.table.name.plain();
    let pg = |what: &str, e| PgError::query(format!("{what} {label}"), e);
    let name = "pg_temp.pgbunker_merge_extra";
    let columns = quoted_list(&p.columns, "");
    temp_rows(client, p, name, &columns, &p.extras).await?;
    let key_text = format!("ROW({})::text", quoted_list(&p.key, "e."));
    let mut kept = Vec::new();
    for (child, c) in references_to(p, tables) {
        let Some((local, referenced)) = c.foreign_key_columns() else {
            return Err(DiffError::Merge(format!(
                "{label}: cannot read foreign key {} of {}",
                c.name,
                child.name.plain()
            )));
        };
        let matched: Vec<String> = local
            .iter()
            .zip(&referenced)
            .map(|(l, r)| format!("c.{} = e.{}", quote_ident(l), quote_ident(r)))
            .collect();
        let rows = client
            .query(
                &format!(
                    "DELETE FROM {name} AS e WHERE EXISTS (SELECT FROM {} AS c WHERE {}) \
                     RETURNING {key_text}",
                    child.name,
                    matched.join(" AND ")
                ),
                &[],
            )
            .await
            .map_err(|e| pg("look for rows referencing the newer rows of", e))?;
        kept.extend(rows.iter().map(|r| r.get::<_, String>(0)));
    }
    let deleted = client
        .execute(
            &format!(
                "DELETE FROM {} AS t USING {name} AS e WHERE {}",
                p.table.name,
                key_match(&p.key, "t", "e")
            ),
            &[],
        )
        .await
        .map_err(|e| pg("delete the newer rows of", e))?;
    client
        .batch_execute(&format!("DROP TABLE {name}"))
        .await
        .map_err(|e| pg("drop the staged rows of", e))?;
    Ok((deleted, kept))
}
