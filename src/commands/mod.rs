//! The operations pgbunker offers, one file per verb: `XxxOptions` in, `XxxReport` out.
//! The binary parses flags into options and renders reports; everything else is here.

pub mod backup;
pub mod demo;
pub mod hold;
pub mod init;
pub mod list;
pub mod prune;
pub mod restore;

use thiserror::Error;

use crate::archive::{ArchiveError, KeySource, Repository, StateDir};
use crate::dump::DumpError;
use crate::error::{Class, Classify};
use crate::load::LoadError;
use crate::pg::PgError;
use crate::sandbox::SandboxError;
use crate::store::{Store, StoreError};

#[derive(Debug, Error)]
pub enum CommandError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("backup failed: {0}")]
    Dump(#[from] DumpError),
    #[error("restore failed: {0}")]
    Load(#[from] LoadError),
    #[error(transparent)]
    Pg(#[from] PgError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("{0}")]
    Usage(String),
    #[error("demo check failed: {0}")]
    DemoMismatch(String),
    #[error("interrupted by {0}: nothing was committed; leftovers show as `incomplete` in `list`")]
    Interrupted(&'static str),
}

impl Classify for CommandError {
    fn class(&self) -> Class {
        match self {
            CommandError::Archive(e) => e.class(),
            CommandError::Store(e) => e.class(),
            CommandError::Dump(e) => e.class(),
            CommandError::Load(e) => e.class(),
            CommandError::Pg(e) => e.class(),
            CommandError::Sandbox(e) => e.class(),
            CommandError::Usage(_) => Class::Usage,
            CommandError::DemoMismatch(_) => Class::Internal,
            CommandError::Interrupted(_) => Class::Interrupted,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            CommandError::Archive(e) => e.hint(),
            CommandError::Store(e) => e.hint(),
            CommandError::Dump(e) => e.hint(),
            CommandError::Load(e) => e.hint(),
            CommandError::Pg(e) => e.hint(),
            CommandError::Sandbox(e) => e.hint(),
            _ => None,
        }
    }
}

/// Where the repository is, how to unlock it, and where this machine keeps its
/// high-water marks; shared by every verb.
#[derive(Debug)]
pub struct RepoAccess {
    pub location: String,
    pub key: Option<KeySource>,
    /// `None` skips the rollback check (no home folder, or a one-off inspection).
    pub state: Option<StateDir>,
}

impl RepoAccess {
    pub async fn open(&self) -> Result<Repository, CommandError> {
        let store = Store::open(&self.location)?;
        let repo = Repository::open(store, self.key.as_ref()).await?;
        Ok(match &self.state {
            Some(dir) => repo.with_state(dir.clone()),
            None => repo,
        })
    }
}
