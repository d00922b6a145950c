//! `pgbunker hold`: protect a backup from prune (legal hold or keep-until), or release
//! it. The hold lives in the authenticated catalog, so nobody can lift it by editing
//! a plaintext file.

use serde::Serialize;

use super::audit::Audit;
use super::{CommandError, RepoAccess};
use crate::archive::HoldChange;
use crate::archive::Timestamp;
use crate::error::Outcome;

#[derive(Debug)]
pub struct HoldOptions {
    pub repo: RepoAccess,
    /// A backup id or `latest`.
    pub backup: String,
    pub change: HoldChange,
}

#[derive(Debug, Serialize)]
pub struct HoldReport {
    pub backup_id: String,
    pub legal_hold: bool,
    pub keep_until: Option<Timestamp>,
}

pub async fn hold(opts: &HoldOptions) -> Result<HoldReport, CommandError> {
    let repo = opts.repo.open().await?;
    let bid = repo.resolve(&opts.backup).await?.bid;
    repo.set_hold(&bid, opts.change.clone()).await?;
    let now = repo.resolve(&bid).await?;
    Ok(HoldReport {
        backup_id: bid,
        legal_hold: now.legal_hold,
        keep_until: now.keep_until,
    })
}

impl Outcome for HoldReport {}

impl Audit for HoldReport {
    fn backup_id(&self) -> Option<String> {
        Some(self.backup_id.clone())
    }
    fn details(&self) -> serde_json::Value {
        serde_json::json!({ "legal_hold": self.legal_hold, "keep_until": self.keep_until })
    }
}
