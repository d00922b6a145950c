//! `pgbunker restore --merge`: chosen tables of a live database brought back to the
//! backup's rows in place (see `diff::merge`), reported table by table.

use std::time::Instant;

use serde::Serialize;

use super::RestoreOptions;
use crate::archive::OpenBackup;
use crate::commands::audit::Audit;
use crate::commands::CommandError;
use crate::diff::merge::{merge as merge_tables, MergeMode, MergeOptions, MergedTable};
use crate::diff::DEFAULT_MEMORY_BYTES;
use crate::error::Outcome;
use crate::pg::ConnSpec;

#[derive(Debug, Serialize)]
pub struct MergeReport {
    pub backup_id: String,
    pub target: String,
    pub mode: MergeMode,
    /// Nothing was committed: the counts say what a merge would do.
    pub dry_run: bool,
    pub tables: Vec<MergedTable>,
    pub seconds: f64,
}

impl Outcome for MergeReport {}

impl Audit for MergeReport {
    fn backup_id(&self) -> Option<String> {
        Some(self.backup_id.clone())
    }
    /// Counts only: which rows changed stays out of the repository's clear records.
    fn details(&self) -> serde_json::Value {
        let sum = |f: fn(&MergedTable) -> u64| self.tables.iter().map(f).sum::<u64>();
        serde_json::json!({
            "merge": self.mode,
            "dry_run": self.dry_run,
            "tables": self.tables.len(),
            "updated": sum(|t| t.updated),
            "reinserted": sum(|t| t.reinserted),
            "deleted": sum(|t| t.deleted),
            "kept_referenced": sum(|t| t.kept_referenced),
            "seconds": self.seconds,
        })
    }
}

pub async fn merge(
    opts: &RestoreOptions,
    mode: MergeMode,
    dry_run: bool,
) -> Result<MergeReport, CommandError> {
    let started = Instant::now();
    let target = ConnSpec::parse(opts.target.as_deref())?;
    let repo = opts.repo.open().await?;
    let backup = OpenBackup::open(&repo, &opts.backup).await?;
    let merged = merge_tables(
        backup.reader(),
        &target,
        &opts.plan.selection,
        &MergeOptions {
            mode,
            dry_run,
            memory_bytes: DEFAULT_MEMORY_BYTES,
        },
    )
    .await;
    let backup_id = backup.live().bid.clone();
    backup.release().await?;
    Ok(MergeReport {
        backup_id,
        target: target.to_string(),
        mode,
        dry_run,
        tables: merged?,
        seconds: started.elapsed().as_secs_f64(),
    })
}
