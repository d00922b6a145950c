//! What the target database already holds, asked before anything is written: a
//! restore bound to fail there (tables in the way, tables missing, children that
//! would be orphaned) should fail before a long pre-flight check.

use std::collections::BTreeSet;

use tokio_postgres::Client;

use super::{LoadError, LoadOptions};
use crate::catalog::QualName;
use crate::pg::PgError;
use crate::plan::scope::Scope;

/// The target as the restore found it.
#[derive(Debug, Clone, Default)]
pub struct TargetState {
    /// Tables of the restore that already exist.
    pub existing: BTreeSet<QualName>,
    /// Tables outside the restore that its tables point at (see
    /// [`Scope::outside_tables`]) and that the target has.
    pub outside_present: BTreeSet<QualName>,
    /// Tables outside the restore whose foreign keys reference a table the data-only
    /// restore empties: `--cascade` empties them too.
    pub referencing: BTreeSet<String>,
}

/// Which of `names` exist in the target.
pub(super) async fn present(
    client: &Client,
    names: impl Iterator<Item = &QualName>,
) -> Result<BTreeSet<QualName>, LoadError> {
    let names: Vec<&QualName> = names.collect();
    let texts: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let rows = client
        .query(
            "SELECT i::int4 FROM pg_catalog.unnest($1::text[]) WITH ORDINALITY AS u(n, i) \
             WHERE pg_catalog.to_regclass(n) IS NOT NULL ORDER BY i",
            &[&texts],
        )
        .await
        .map_err(|e| PgError::query("inspect the target database", e))?;
    Ok(rows
        .iter()
        .map(|r| names[r.get::<_, i32>(0) as usize - 1].clone())
        .collect())
}

/// Tables outside `inside` with a foreign key to one of `inside`.
async fn referencing(client: &Client, inside: &[&QualName]) -> Result<BTreeSet<String>, LoadError> {
    let texts: Vec<String> = inside.iter().map(|n| n.to_string()).collect();
    let rows = client
        .query(
            "SELECT DISTINCT c.conrelid::pg_catalog.regclass::text \
             FROM pg_catalog.pg_constraint c \
             WHERE c.contype = 'f' \
               AND c.confrelid = ANY (SELECT pg_catalog.to_regclass(n) FROM pg_catalog.unnest($1::text[]) n) \
               AND c.conrelid <> ALL (SELECT pg_catalog.to_regclass(n) FROM pg_catalog.unnest($1::text[]) n) \
             ORDER BY 1",
            &[&texts],
        )
        .await
        .map_err(|e| PgError::query("inspect the target's foreign keys", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Inspects the target and refuses a restore it cannot take, changing nothing.
pub async fn inspect(
    client: &Client,
    scope: &Scope,
    opts: &LoadOptions,
) -> Result<TargetState, LoadError> {
    let cat = &scope.catalog;
    let existing = present(client, cat.tables.iter().map(|t| &t.name)).await?;
    let outside = scope.outside_tables();
    let outside_present = present(client, outside.iter()).await?;
    let mut state = TargetState {
        existing,
        outside_present,
        referencing: BTreeSet::new(),
    };
    let creates = opts.sections.pre_data;
    if creates && opts.clean.is_none() && !state.existing.is_empty() {
        return Err(LoadError::NotEmpty(
            state.existing.iter().map(QualName::plain).collect(),
        ));
    }
    if creates {
        let orphans: Vec<String> = cat
            .tables
            .iter()
            .flat_map(|t| t.inherits.iter().map(move |p| (t, p)))
            .filter(|(_, p)| outside.contains(*p) && !state.outside_present.contains(*p))
            .map(|(t, p)| format!("{} inherits from {}", t.name.plain(), p.plain()))
            .collect();
        if !orphans.is_empty() {
            return Err(LoadError::MissingParents(orphans));
        }
    }
    if opts.sections.data && !creates {
        let missing: Vec<String> = cat
            .tables
            .iter()
            .filter(|t| !state.existing.contains(&t.name))
            .map(|t| t.name.plain())
            .collect();
        if !missing.is_empty() {
            return Err(LoadError::MissingTables(missing));
        }
        let inside: Vec<&QualName> = cat
            .tables
            .iter()
            .filter(|t| t.has_data())
            .map(|t| &t.name)
            .collect();
        state.referencing = referencing(client, &inside).await?;
        if !state.referencing.is_empty() && !opts.cascade {
            return Err(LoadError::WouldOrphan(
                state.referencing.iter().cloned().collect(),
            ));
        }
    }
    Ok(state)
}
