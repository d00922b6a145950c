//! `check --expect-append-only`: the tables that may only grow, compared between the
//! two newest backups that hold them. Shared chunks are skipped unread, so this costs
//! about what the tables grew by; an updated, deleted or dropped row is CRITICAL.

use std::sync::Arc;

use super::Status;
use crate::archive::{LiveBackup, OpenBackup, Repository};
use crate::commands::CommandError;
use crate::diff::{self, DiffOptions, Later, Presence, DEFAULT_MEMORY_BYTES};
use crate::plan::pattern::Pattern;
use crate::plan::select::Selection;
use crate::progress::NoProgress;

pub(super) async fn append_only(
    repo: &Repository,
    live: &[LiveBackup],
    patterns: &[Pattern],
    problems: &mut Vec<(Status, String)>,
) -> Result<(), CommandError> {
    let mut newest_first: Vec<&LiveBackup> = live.iter().collect();
    newest_first.sort_by(|x, y| y.created_at.cmp(&x.created_at));
    // The two newest that hold one of the tables (a partial backup of other tables
    // says nothing about them).
    let mut pair: Vec<OpenBackup> = Vec::new();
    for b in newest_first {
        let open = match OpenBackup::open(repo, &b.bid).await {
            Ok(open) => open,
            Err(e) => {
                for b in pair {
                    b.release().await?;
                }
                return Err(e.into());
            }
        };
        let holds = open.reader().manifest().catalog.tables.iter().any(|t| {
            patterns
                .iter()
                .any(|p| p.matches_table(&t.name.schema, &t.name.name))
        });
        if holds {
            pair.push(open);
            if pair.len() == 2 {
                break;
            }
        } else {
            open.release().await?;
        }
    }
    if pair.len() < 2 {
        problems.push((
            Status::Warning,
            "--expect-append-only: fewer than two backups hold those tables yet".into(),
        ));
        for b in pair {
            b.release().await?;
        }
        return Ok(());
    }
    let (newer, older) = (&pair[0], &pair[1]);
    let selection = Selection {
        tables: patterns.to_vec(),
        ..Selection::default()
    };
    let opts = DiffOptions {
        expect_append_only: patterns.to_vec(),
        memory_bytes: DEFAULT_MEMORY_BYTES,
    };
    let outcome = diff::run(
        older.reader(),
        Later::Backup(newer.reader()),
        &selection,
        &opts,
        None,
        Arc::new(NoProgress),
    )
    .await;
    let ids = (older.live().bid.clone(), newer.live().bid.clone());
    for b in pair {
        b.release().await?;
    }
    // Counts only: monitoring output is no place for keys (an MRN can be one);
    // `pgbunker diff --expect-append-only` names the rows.
    for t in outcome?.tables.iter().filter(|t| t.append_only) {
        let (updated, deleted) = t.counts.as_ref().map_or((0, 0), |c| (c.updated, c.deleted));
        let what = match t.presence {
            Presence::OnlyFirst => format!("dropped ({} rows gone)", t.rows_first),
            _ if t.not_compared.is_some() => "not compared, so not proven append-only".into(),
            _ if updated + deleted > 0 => format!("{updated} row(s) updated, {deleted} deleted"),
            _ => continue,
        };
        problems.push((
            Status::Critical,
            format!(
                "append-only {}.{} between {} and {}: {what} (`pgbunker diff {} {} -t {}.{} \
                 --expect-append-only {}.{}` names them)",
                t.schema, t.name, ids.0, ids.1, ids.0, ids.1, t.schema, t.name, t.schema, t.name
            ),
        ));
    }
    Ok(())
}
