//! What points at a partial restore's tables from outside it ([`Scope::dependents`])
//! and what the target has of it. After `DROP TABLE patients CASCADE`, restoring
//! `patients` alone leaves the other tables without their foreign keys to it and
//! without what was built on it (views, functions, policies, defaults): the restore
//! says so, and with `--with-dependents` brings back what the target lacks (the
//! objects with the pre- and post-data, other tables' defaults and foreign keys last,
//! each foreign key validated on its own so one with orphaned rows fails alone).

use std::collections::BTreeSet;

use tokio_postgres::Client;

use super::target::present;
use super::{Failure, LoadError};
use crate::catalog::{quote_ident, Catalog, Constraint, ObjKey, QualName, SchemaObject};
use crate::pg::PgError;
use crate::plan::scope::Scope;

/// What the target lacks of the dependents, and what it still has.
#[derive(Debug, Default)]
pub(super) struct Outside {
    /// Other tables' foreign keys to the restored tables that the target lacks, on
    /// tables it has.
    pub foreign_keys: Vec<(QualName, Constraint)>,
    /// Objects built on the restored tables that the restore does not bring
    /// (`kind name`).
    missing: Vec<String>,
    /// Views the restore would bring that the target still has: left as they are.
    kept: Vec<QualName>,
    /// What the restore would bring but leaves out, being built on a view it keeps.
    skipped: Vec<(String, QualName)>,
    /// Other tables' column defaults drawing from the restored sequences that the
    /// target lacks, on tables it has.
    defaults: Vec<(QualName, String, String)>,
}

const VIEW_KINDS: [&str; 2] = ["view", "materialized view"];

/// An object as the report names it: its kind and its name, qualified when the name
/// does not say where it is (`view public.v`, `policy p on public.t`).
fn shown(o: &SchemaObject) -> String {
    match &o.schema {
        Some(s) if !o.name.contains('.') => format!("{} {s}.{}", o.kind, o.name),
        _ => format!("{} {}", o.kind, o.name),
    }
}

/// Looks the dependents up in the target (`client`), and takes out of `scope` the
/// views it still has and what is built on them. `full` is the backup's whole catalog.
/// Only views can be there: whatever else is built on a table is dropped with it, and
/// the restore creates the table.
pub(super) async fn inspect(
    client: &Client,
    full: &Catalog,
    scope: &mut Scope,
) -> Result<Outside, LoadError> {
    let deps = scope.dependents(full);
    let object = |k: &ObjKey| full.objects.iter().find(|o| o.key == *k);
    let view_name = |k: &ObjKey| {
        object(k)
            .filter(|o| VIEW_KINDS.contains(&o.kind.as_str()))
            .and_then(|o| Some(QualName::new(o.schema.clone()?, o.name.clone())))
    };
    let brought: Vec<(ObjKey, QualName)> = scope
        .dependent_objects
        .iter()
        .filter_map(|k| Some((*k, view_name(k)?)))
        .collect();
    let there = present(client, brought.iter().map(|(_, n)| n)).await?;
    let kept: Vec<(ObjKey, QualName)> = brought
        .into_iter()
        .filter(|(_, n)| there.contains(n))
        .collect();
    // What is built on a kept view (which may not be the backup's view any more).
    let mut out_keys: std::collections::HashSet<ObjKey> = kept.iter().map(|(k, _)| *k).collect();
    let mut skipped = Vec::new();
    loop {
        let before = out_keys.len();
        for d in &full.dependencies {
            if out_keys.contains(&d.referenced)
                && scope.dependent_objects.contains(&d.dependent)
                && out_keys.insert(d.dependent)
            {
                if let Some(o) = object(&d.dependent) {
                    let on = kept
                        .iter()
                        .find(|(k, _)| *k == d.referenced)
                        .map_or_else(|| QualName::new("", ""), |(_, n)| n.clone());
                    skipped.push((shown(o), on));
                }
            }
        }
        if out_keys.len() == before {
            break;
        }
    }
    let kept_names: Vec<QualName> = kept.into_iter().map(|(_, n)| n).collect();
    scope.catalog.objects.retain(|o| {
        !out_keys.contains(&o.key) && !o.table.as_ref().is_some_and(|t| kept_names.contains(t))
    });
    let tables = present(client, deps.foreign_keys.iter().map(|(t, _)| t)).await?;
    let candidates: Vec<&(QualName, Constraint)> = deps
        .foreign_keys
        .iter()
        .filter(|(t, _)| tables.contains(t))
        .collect();
    let existing = existing_constraints(client, &candidates).await?;
    let defaults = missing_defaults(client, &deps.defaults).await?;
    Ok(Outside {
        defaults,
        foreign_keys: candidates
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !existing.contains(i))
            .map(|(_, fk)| fk.clone())
            .collect(),
        missing: deps
            .objects
            .iter()
            .filter_map(|k| object(k).map(shown))
            .collect(),
        kept: kept_names,
        skipped,
    })
}

/// The statement that adds another table's foreign key back.
pub(super) fn add_foreign_key(table: &QualName, c: &Constraint) -> String {
    format!(
        "ALTER TABLE {table} ADD CONSTRAINT {} {}",
        quote_ident(&c.name),
        c.definition
    )
}

/// The defaults whose column the target has without a default.
async fn missing_defaults(
    client: &Client,
    defaults: &[(QualName, String, String)],
) -> Result<Vec<(QualName, String, String)>, LoadError> {
    let tables: Vec<String> = defaults.iter().map(|(t, _, _)| t.to_string()).collect();
    let columns: Vec<&str> = defaults.iter().map(|(_, c, _)| c.as_str()).collect();
    let rows = client
        .query(
            "SELECT u.i::int4 FROM ROWS FROM (pg_catalog.unnest($1::text[]), \
             pg_catalog.unnest($2::text[])) WITH ORDINALITY AS u(t, c, i) \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = pg_catalog.to_regclass(u.t) \
                  AND a.attname = u.c AND NOT a.attisdropped AND NOT a.atthasdef",
            &[&tables, &columns],
        )
        .await
        .map_err(|e| PgError::query("inspect the target's column defaults", e))?;
    Ok(rows
        .iter()
        .map(|r| defaults[r.get::<_, i32>(0) as usize - 1].clone())
        .collect())
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
    /// the views left as the target has them and what was left out with them.
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
            out.extend(self.defaults.iter().map(|(t, c, _)| {
                format!(
                    "the default of {}.{c} draws from a restored sequence and is not in the \
                     target: not set again (--with-dependents sets it)",
                    t.plain()
                )
            }));
            out.extend(self.missing.iter().map(|o| {
                format!(
                    "{o} is built on the restored tables and was not recreated (--with-dependents \
                     recreates what DROP … CASCADE took along)"
                )
            }));
        }
        out.extend(self.kept.iter().map(|v| {
            format!(
                "view {} is in the target already and was left as it is",
                v.plain()
            )
        }));
        out.extend(self.skipped.iter().map(|(o, on)| {
            format!(
                "{o} was not recreated: it is built on {}, which the target has as it is",
                on.plain()
            )
        }));
        out
    }

    /// What the restore adds back at its end: other tables' column defaults and foreign
    /// keys.
    pub fn statements(&self) -> usize {
        self.defaults.len() + self.foreign_keys.len()
    }

    /// Sets the defaults, then adds the foreign keys, each in its own statement: one
    /// that rows of the target violate fails alone, named, and the restored rows stay.
    pub async fn add_back(&self, client: &Client) -> Vec<Failure> {
        let mut failed = Vec::new();
        for (t, c, d) in &self.defaults {
            let sql = format!(
                "ALTER TABLE {t} ALTER COLUMN {} SET DEFAULT {d}",
                quote_ident(c)
            );
            if let Err(e) = client.batch_execute(&sql).await {
                let what = format!("the default of {}.{c}", t.plain());
                let err = LoadError::from(PgError::query(format!("set {what}"), e));
                failed.push(Failure::new(what, &err));
            }
        }
        for (t, c) in &self.foreign_keys {
            let sql = add_foreign_key(t, c);
            if let Err(e) = client.batch_execute(&sql).await {
                let what = format!("foreign key {} of {}", c.name, t.plain());
                let err = LoadError::from(PgError::query(format!("re-add {what}"), e));
                failed.push(Failure::new(what, &err));
            }
        }
        failed
    }
}
