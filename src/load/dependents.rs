//! What points at a partial restore's tables from outside it ([`Scope::dependents`])
//! and what the target has of it. After `DROP TABLE patients CASCADE`, restoring
//! `patients` alone leaves the other tables without their foreign keys to it and the
//! views on it gone: the restore says so, and with `--with-dependents` brings back
//! what the target lacks (views and their rules with the pre-data, foreign keys last,
//! each validated on its own so one with orphaned rows fails alone).

use std::collections::BTreeSet;

use tokio_postgres::Client;

use super::target::present;
use super::{Failure, LoadError};
use crate::catalog::{quote_ident, Catalog, Constraint, ObjKey, QualName};
use crate::pg::PgError;
use crate::plan::scope::Scope;

/// What the target lacks of the dependents, and what it still has.
#[derive(Debug, Default)]
pub(super) struct Outside {
    /// Other tables' foreign keys to the restored tables that the target lacks, on
    /// tables it has.
    pub foreign_keys: Vec<(QualName, Constraint)>,
    /// Views built on the restored tables that the target lacks and the restore does
    /// not bring.
    views: Vec<QualName>,
    /// Views the restore would bring that the target still has: left as they are.
    kept: Vec<QualName>,
}

/// Looks the dependents up in the target (`client`), and takes the views it still has
/// out of `scope`. `full` is the backup's whole catalog.
pub(super) async fn inspect(
    client: &Client,
    full: &Catalog,
    scope: &mut Scope,
) -> Result<Outside, LoadError> {
    let deps = scope.dependents(full);
    let name_of = |k: &ObjKey| {
        full.objects
            .iter()
            .find(|o| o.key == *k)
            .and_then(|o| Some(QualName::new(o.schema.clone()?, o.name.clone())))
    };
    let brought: Vec<QualName> = scope.dependent_objects.iter().filter_map(name_of).collect();
    let missing: Vec<QualName> = deps.views.iter().filter_map(name_of).collect();
    let there = present(client, brought.iter().chain(&missing)).await?;
    let kept: Vec<QualName> = brought.into_iter().filter(|n| there.contains(n)).collect();
    scope.catalog.objects.retain(|o| {
        let own = o
            .schema
            .as_ref()
            .map(|s| QualName::new(s.clone(), o.name.clone()));
        !kept
            .iter()
            .any(|k| own.as_ref() == Some(k) || o.table.as_ref() == Some(k))
    });
    let tables = present(client, deps.foreign_keys.iter().map(|(t, _)| t)).await?;
    let candidates: Vec<&(QualName, Constraint)> = deps
        .foreign_keys
        .iter()
        .filter(|(t, _)| tables.contains(t))
        .collect();
    let existing = existing_constraints(client, &candidates).await?;
    Ok(Outside {
        foreign_keys: candidates
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !existing.contains(i))
            .map(|(_, fk)| fk.clone())
            .collect(),
        views: missing.into_iter().filter(|n| !there.contains(n)).collect(),
        kept,
    })
}

/// Which of the foreign keys (by position) the target has: by table and name.
async fn existing_constraints(
    client: &Client,
    fks: &[&(QualName, Constraint)],
) -> Result<BTreeSet<usize>, LoadError> {
    let tables: Vec<String> = fks.iter().map(|(t, _)| t.to_string()).collect();
    let names: Vec<&str> = fks.iter().map(|(_, c)| c.name.as_str()).collect();
    let rows = client
        .query(
            "SELECT u.i::int4 FROM ROWS FROM (pg_catalog.unnest($1::text[]), \
             pg_catalog.unnest($2::text[])) WITH ORDINALITY AS u(t, n, i) \
             WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c \
                           WHERE c.conrelid = pg_catalog.to_regclass(u.t) AND c.conname = u.n)",
            &[&tables, &names],
        )
        .await
        .map_err(|e| PgError::query("inspect the target's foreign keys", e))?;
    Ok(rows
        .iter()
        .map(|r| r.get::<_, i32>(0) as usize - 1)
        .collect())
}

impl Outside {
    /// What the report says: what was not brought back (without `--with-dependents`),
    /// and the views left as the target has them.
    pub fn notes(&self, with_dependents: bool) -> Vec<String> {
        let mut out = Vec::new();
        if !with_dependents {
            out.extend(self.foreign_keys.iter().map(|(t, c)| {
                format!(
                    "foreign key {} of {} to {} is not in the target and was not re-added \
                     (--with-dependents re-adds it, validated)",
                    c.name,
                    t.plain(),
                    c.references.as_ref().map_or(String::new(), QualName::plain)
                )
            }));
            out.extend(self.views.iter().map(|v| {
                format!(
                    "view {} is built on the restored tables and is not in the target: \
                     not recreated (--with-dependents recreates it)",
                    v.plain()
                )
            }));
        }
        out.extend(self.kept.iter().map(|v| {
            format!(
                "view {} is in the target already and was left as it is",
                v.plain()
            )
        }));
        out
    }

    /// Adds the foreign keys, each in its own statement: one that rows of the target
    /// violate fails alone, named, and the restored rows stay.
    pub async fn add_foreign_keys(&self, client: &Client) -> Vec<Failure> {
        let mut failed = Vec::new();
        for (t, c) in &self.foreign_keys {
            let sql = format!(
                "ALTER TABLE {t} ADD CONSTRAINT {} {}",
                quote_ident(&c.name),
                c.definition
            );
            if let Err(e) = client.batch_execute(&sql).await {
                let what = format!("foreign key {} of {}", c.name, t.plain());
                let err = LoadError::from(PgError::query(format!("re-add {what}"), e));
                failed.push(Failure::new(what, &err));
            }
        }
        failed
    }
}
