//! `pgbunker init`: create a repository.

use serde::Serialize;

use super::audit::Audit;
use super::{CommandError, RepoAccess};
use crate::archive::Repository;
use crate::error::Outcome;
use crate::store::Store;

#[derive(Debug)]
pub struct InitOptions {
    pub repo: RepoAccess,
    /// Create a repository that stores data unencrypted. Only for data that is not
    /// sensitive; the CLI makes this loud.
    pub plaintext: bool,
}

#[derive(Debug, Serialize)]
pub struct InitReport {
    pub location: String,
    pub repo_id: String,
    pub encryption: String,
    pub key_slot: Option<String>,
}

pub async fn init(opts: &InitOptions) -> Result<InitReport, CommandError> {
    if opts.plaintext && opts.repo.key.is_some() {
        return Err(CommandError::Usage(
            "a key is set in the environment but --insecure-plaintext was given; \
             choose one"
                .into(),
        ));
    }
    let store = Store::create(&opts.repo.location)?;
    let (repo, slot) = Repository::init(store, opts.repo.key.as_ref(), opts.plaintext).await?;
    if let Some(dir) = &opts.repo.state {
        repo.clone().with_state(dir.clone()).pin_new().await?;
    }
    Ok(InitReport {
        location: opts.repo.location.clone(),
        repo_id: repo.config().repo_id.clone(),
        encryption: repo.config().encryption.clone(),
        key_slot: slot,
    })
}

impl Outcome for InitReport {}

impl Audit for InitReport {
    fn details(&self) -> serde_json::Value {
        serde_json::json!({ "repo_id": self.repo_id, "encryption": self.encryption, "key_slot": self.key_slot })
    }
}
