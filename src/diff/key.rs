//! How the rows of a table are matched between two snapshots: by its primary key, else
//! by a unique constraint whose columns are all NOT NULL (so each row has exactly one
//! key), else as a multiset of whole rows.

use serde::Serialize;

use crate::catalog::{ConstraintKind, Table};

/// What identifies a row of a table across snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum MatchBy {
    PrimaryKey {
        columns: Vec<String>,
    },
    UniqueKey {
        constraint: String,
        columns: Vec<String>,
    },
    /// No key: rows are compared whole, so an update shows as a delete and an insert.
    WholeRows,
}

impl MatchBy {
    /// The key columns; empty for whole rows.
    pub fn columns(&self) -> &[String] {
        match self {
            MatchBy::PrimaryKey { columns } | MatchBy::UniqueKey { columns, .. } => columns,
            MatchBy::WholeRows => &[],
        }
    }

    pub fn describe(&self) -> String {
        match self {
            MatchBy::PrimaryKey { columns } => format!("primary key ({})", columns.join(", ")),
            MatchBy::UniqueKey {
                constraint,
                columns,
            } => format!("unique {constraint} ({})", columns.join(", ")),
            MatchBy::WholeRows => "whole rows (no key)".into(),
        }
    }
}

/// The key `table` matches its rows by, among the columns both snapshots hold alike
/// (`usable`).
pub fn match_by(table: &Table, usable: impl Fn(&str) -> bool) -> MatchBy {
    let keys = table.constraints.iter().filter_map(|c| {
        let rank = match c.kind {
            ConstraintKind::PrimaryKey => 0,
            ConstraintKind::Unique => 1,
            _ => return None,
        };
        let columns = c.key_columns()?;
        let not_null = columns.iter().all(|k| {
            table
                .columns
                .iter()
                .any(|col| col.name == *k && (col.not_null || rank == 0))
        });
        (not_null && columns.iter().all(|k| usable(k))).then_some((rank, c, columns))
    });
    match keys.min_by_key(|(rank, c, columns)| (*rank, columns.len(), c.name.clone())) {
        Some((0, _, columns)) => MatchBy::PrimaryKey { columns },
        Some((_, c, columns)) => MatchBy::UniqueKey {
            constraint: c.name.clone(),
            columns,
        },
        None => MatchBy::WholeRows,
    }
}

/// The key both snapshots' tables match rows by: the later one's, when the earlier
/// one had the same key columns too (a key that changed in between may not have been
/// unique before); else whole rows.
pub fn shared_key(earlier: &Table, later: &Table, usable: impl Fn(&str) -> bool) -> MatchBy {
    let by = match_by(later, &usable);
    if match_by(earlier, &usable).columns() == by.columns() {
        by
    } else {
        MatchBy::WholeRows
    }
}
