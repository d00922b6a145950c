//! `pgbunker key add|list|remove|rotate`: change which keys open a repository, and
//! which repository key new backups use, without re-encrypting any data.

use serde::Serialize;

use super::audit::Audit;
use super::{CommandError, RepoAccess};
use crate::archive::{GenerationInfo, KeySource, Repository, SlotInfo};
use crate::error::Outcome;
use crate::store::Store;

#[derive(Debug)]
pub struct KeyAddOptions {
    /// Unlocks with a key that already opens the repository.
    pub repo: RepoAccess,
    /// The key or passphrase the new slot is for.
    pub new_key: KeySource,
}

#[derive(Debug, Serialize)]
pub struct KeyAddReport {
    pub location: String,
    pub kek_id: String,
    /// `key` or `passphrase`.
    pub kind: String,
    /// The repository was moved from format 1 to 2 first (older pgbunkers can no
    /// longer open it).
    pub upgraded: bool,
}

impl Outcome for KeyAddReport {}

impl Audit for KeyAddReport {
    fn details(&self) -> serde_json::Value {
        serde_json::json!({ "kek_id": self.kek_id, "kind": self.kind, "upgraded": self.upgraded })
    }
}

/// Unlocks before writing anything, so a wrong current key changes nothing.
pub async fn add(opts: &KeyAddOptions) -> Result<KeyAddReport, CommandError> {
    let mut repo = opts.repo.open().await?;
    let added = repo.add_key(&opts.new_key).await?;
    Ok(KeyAddReport {
        location: repo.store().location().into(),
        kek_id: added.kek_id,
        kind: added.kind,
        upgraded: added.upgraded,
    })
}

#[derive(Debug)]
pub struct KeyListOptions {
    /// Without a key only the (plaintext) slots are listed.
    pub repo: RepoAccess,
}

#[derive(Debug, Serialize)]
pub struct KeyListReport {
    pub location: String,
    pub repo_id: String,
    pub format_version: u32,
    /// The slot the given key opened; `None` when no key was given.
    pub unlocked_with: Option<String>,
    pub slots: Vec<SlotInfo>,
    /// The key ring, oldest generation first; `None` without a key (it is encrypted).
    pub generations: Option<Vec<GenerationInfo>>,
}

/// Without a key only the slots are listed: they are plaintext, and whoever has lost
/// a key still needs to see which slots exist.
pub async fn list(opts: &KeyListOptions) -> Result<KeyListReport, CommandError> {
    if opts.repo.key.is_none() {
        let store = Store::open(&opts.repo.location)?;
        let (config, slots) = Repository::key_slots(&store).await?;
        return Ok(KeyListReport {
            location: store.location().into(),
            repo_id: config.repo_id,
            format_version: config.version,
            unlocked_with: None,
            slots,
            generations: None,
        });
    }
    let repo = opts.repo.open().await?;
    let status = repo.key_status().await?;
    Ok(KeyListReport {
        location: repo.store().location().into(),
        repo_id: repo.config().repo_id.clone(),
        format_version: repo.config().version,
        unlocked_with: Some(status.unlocked_with),
        slots: status.slots,
        generations: Some(status.generations),
    })
}

#[derive(Debug)]
pub struct KeyRemoveOptions {
    /// Unlocks with any key that opens the repository.
    pub repo: RepoAccess,
    pub kek_id: String,
}

#[derive(Debug, Serialize)]
pub struct KeyRemoveReport {
    pub location: String,
    pub removed: String,
    pub remaining: Vec<String>,
    /// Set when the removed slot was the one the given key opened.
    pub warning: Option<String>,
}

impl Outcome for KeyRemoveReport {}

impl Audit for KeyRemoveReport {
    fn details(&self) -> serde_json::Value {
        serde_json::json!({ "kek_id": self.removed, "remaining": self.remaining })
    }
}

/// Warns in the report when the key used removed its own slot: that key stops opening
/// the repository the moment this returns.
pub async fn remove(opts: &KeyRemoveOptions) -> Result<KeyRemoveReport, CommandError> {
    let mut repo = opts.repo.open().await?;
    let removal = repo.remove_key(&opts.kek_id).await?;
    let warning = removal.was_unlocking.then(|| {
        format!(
            "the key used for this command opened slot {}: it no longer opens the \
             repository; use one of the remaining keys from now on",
            removal.kek_id
        )
    });
    Ok(KeyRemoveReport {
        location: repo.store().location().into(),
        removed: removal.kek_id,
        remaining: removal.remaining,
        warning,
    })
}

#[derive(Debug)]
pub struct KeyRotateOptions {
    pub repo: RepoAccess,
}

#[derive(Debug, Serialize)]
pub struct KeyRotateReport {
    pub location: String,
    /// The key ring generation written.
    pub generation: u64,
    /// The repository key new backups use.
    pub rk_id: String,
    pub previous_rk_id: String,
    /// The repository was moved from format 1 to 2 first.
    pub upgraded: bool,
}

impl Outcome for KeyRotateReport {}

impl Audit for KeyRotateReport {
    fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "generation": self.generation,
            "rk_id": self.rk_id,
            "previous_rk_id": self.previous_rk_id,
            "upgraded": self.upgraded,
        })
    }
}

/// Rotation protects new backups from an old repository key, not from a slot holder:
/// every slot opens the new generation too. `key remove` is what revokes a key (see
/// `schema/FORMAT.md`).
pub async fn rotate(opts: &KeyRotateOptions) -> Result<KeyRotateReport, CommandError> {
    let mut repo = opts.repo.open().await?;
    let r = repo.rotate_key().await?;
    Ok(KeyRotateReport {
        location: repo.store().location().into(),
        generation: r.generation,
        rk_id: r.rk_id,
        previous_rk_id: r.previous_rk_id,
        upgraded: r.upgraded,
    })
}
