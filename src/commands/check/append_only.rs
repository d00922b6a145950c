//! `check --expect-append-only`: the tables that may only grow, compared between the
//! two newest backups that hold them. Shared chunks are skipped unread, so this costs
//! about what the tables grew by; an updated, deleted or dropped row is CRITICAL.

use std::sync::Arc;

use super::Status;
use crate::archive::{LiveBackup, OpenBackup, Repository};
use crate::commands::CommandError;
use crate::diff::{self, DiffOptions, Later, DEFAULT_MEMORY_BYTES};
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
        let open = OpenBackup::open(repo, &b.bid).await?;
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
    for v in outcome?.violations {
        problems.push((
            Status::Critical,
            format!("append-only between {} and {}: {v}", ids.0, ids.1),
        ));
    }
    Ok(())
}
