//! The operations pgbunker offers, one file per verb: `XxxOptions` in, `XxxReport` out.
//! The binary parses flags into options and renders reports; everything else is here.

pub mod audit;
pub mod backup;
pub mod check;
pub mod copy;
pub mod demo;
pub mod diff;
pub mod export;
pub mod hold;
pub mod init;
pub mod key;
pub mod list;
pub mod mark;
pub mod mask;
pub mod prune;
pub mod restore;
pub mod restore_test;
pub mod show;
pub mod upgrade;
pub mod verify;

use thiserror::Error;

use crate::archive::retention::RetentionError;
use crate::archive::{ArchiveError, KeySource, Repository, StateDir, TrustOptions};
use crate::diff::DiffError;
use crate::dump::DumpError;
use crate::error::{Class, Classify};
use crate::export::ExportError;
use crate::load::database::DatabaseError;
use crate::load::plan::PlanError;
use crate::load::restore::RestoreError;
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
    #[error("export failed: {0}")]
    Export(#[from] ExportError),
    #[error("diff failed: {0}")]
    Diff(#[from] DiffError),
    #[error(transparent)]
    Pg(#[from] PgError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("{0}")]
    Usage(String),
    #[error("demo check failed: {0}")]
    DemoMismatch(String),
    /// A signal stopped `operation` (the audit record's name: "backup", "restore", …)
    /// midway; the message says what that leaves behind.
    #[error("interrupted by {signal}: {}", crate::interrupt::left_behind(.operation))]
    Interrupted {
        signal: &'static str,
        operation: String,
    },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Retention(#[from] RetentionError),
    #[error(transparent)]
    Mask(Box<crate::mask::MaskError>),
}

/// `--create`'s refusals stay usage errors, worded as before.
impl From<DatabaseError> for CommandError {
    fn from(e: DatabaseError) -> Self {
        match e {
            DatabaseError::Pg(e) => CommandError::Pg(e),
            DatabaseError::Refused(why) => CommandError::Usage(why),
        }
    }
}

/// A restore's failures keep the variants (and words) each step had on its own.
impl From<RestoreError> for CommandError {
    fn from(e: RestoreError) -> Self {
        match e {
            RestoreError::Load(e) => CommandError::Load(e),
            RestoreError::Database(e) => e.into(),
            RestoreError::Archive(e) => CommandError::Archive(e),
            RestoreError::Pg(e) => CommandError::Pg(e),
        }
    }
}

impl Classify for CommandError {
    fn class(&self) -> Class {
        match self {
            CommandError::Archive(e) => e.class(),
            CommandError::Store(e) => e.class(),
            CommandError::Dump(e) => e.class(),
            CommandError::Load(e) => e.class(),
            CommandError::Export(e) => e.class(),
            CommandError::Diff(e) => e.class(),
            CommandError::Pg(e) => e.class(),
            CommandError::Sandbox(e) => e.class(),
            CommandError::Usage(_) => Class::Usage,
            CommandError::DemoMismatch(_) => Class::Internal,
            CommandError::Interrupted { .. } => Class::Interrupted,
            CommandError::Plan(e) => e.class(),
            CommandError::Retention(e) => e.class(),
            CommandError::Mask(e) => e.class(),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            CommandError::Archive(e) => e.hint(),
            CommandError::Store(e) => e.hint(),
            CommandError::Dump(e) => e.hint(),
            CommandError::Load(e) => e.hint(),
            CommandError::Export(e) => e.hint(),
            CommandError::Diff(e) => e.hint(),
            CommandError::Pg(e) => e.hint(),
            CommandError::Sandbox(e) => e.hint(),
            CommandError::Retention(e) => e.hint(),
            CommandError::Mask(e) => e.hint(),
            CommandError::Interrupted { operation, .. } => crate::interrupt::hint(operation),
            _ => None,
        }
    }
}

/// Where the repository is, how to unlock it, where this machine keeps its
/// high-water marks, and where else to log; shared by every verb. The repository is
/// opened (and its key unlocked) once, however many steps use it.
pub struct RepoAccess {
    pub location: String,
    pub key: Option<KeySource>,
    /// `None` skips the rollback check (no home folder, or a one-off inspection).
    pub state: Option<StateDir>,
    /// Also log every operation as a row of this database's `backup_audit_log`.
    pub audit_db: Option<String>,
    /// `--expect-seq`, `--force`: how far to trust what the repository says.
    pub trust: TrustOptions,
    opened: tokio::sync::OnceCell<Repository>,
}

/// Only the location: the key is secret and the audit database URL may hold a
/// password.
impl std::fmt::Debug for RepoAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RepoAccess({})", self.location)
    }
}

impl RepoAccess {
    pub fn new(
        location: impl Into<String>,
        key: Option<KeySource>,
        state: Option<StateDir>,
    ) -> Self {
        RepoAccess {
            location: location.into(),
            key,
            state,
            audit_db: None,
            trust: TrustOptions::default(),
            opened: tokio::sync::OnceCell::new(),
        }
    }

    pub async fn open(&self) -> Result<Repository, CommandError> {
        self.opened
            .get_or_try_init(|| async {
                let store = Store::open(&self.location)?;
                let repo = Repository::open(store, self.key.as_ref())
                    .await?
                    .with_trust(self.trust.clone());
                Ok::<_, CommandError>(match &self.state {
                    Some(dir) => repo.with_state(dir.clone()),
                    None => repo,
                })
            })
            .await
            .cloned()
    }
}

/// Boxed: a masking failure is rare and its error large.
impl From<crate::mask::MaskError> for CommandError {
    fn from(e: crate::mask::MaskError) -> Self {
        CommandError::Mask(Box::new(e))
    }
}
