//! `pgbunker upgrade`: brings a repository to the current format, so new backups into
//! it are deduplicated (format 5). Explicit, because pgbunker versions from before
//! can no longer write to it afterwards; no backup is rewritten, every one stays
//! readable as it is.

use serde::Serialize;

use super::audit::Audit;
use super::{CommandError, RepoAccess};
use crate::archive::FORMAT_VERSION;
use crate::error::Outcome;

#[derive(Debug)]
pub struct UpgradeOptions {
    pub repo: RepoAccess,
}

#[derive(Debug, Serialize)]
pub struct UpgradeReport {
    pub location: String,
    pub from_version: u32,
    pub to_version: u32,
}

pub async fn upgrade(opts: &UpgradeOptions) -> Result<UpgradeReport, CommandError> {
    let mut repo = opts.repo.open().await?;
    // The catalog is checked (chain, high-water mark) before anything is written.
    repo.catalog().await?;
    let from_version = repo.upgrade().await?;
    Ok(UpgradeReport {
        location: repo.store().location().into(),
        from_version,
        to_version: FORMAT_VERSION,
    })
}

impl Outcome for UpgradeReport {}

impl Audit for UpgradeReport {
    fn details(&self) -> serde_json::Value {
        serde_json::json!({ "from_version": self.from_version, "to_version": self.to_version })
    }
}
