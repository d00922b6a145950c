//! `pgbunker key …`: reads the new key for `key add` (environment, else a terminal
//! prompt; never a flag) and dispatches the four actions.

use std::io::IsTerminal;

use pgbunker::archive::{ArchiveError, KeyError, KeySource};
use pgbunker::commands::audit::audited;
use pgbunker::commands::{self, CommandError};
use zeroize::Zeroizing;

use crate::cli::KeyCommand;
use crate::{render, Ctx};

/// Reads a line from the terminal without echo.
fn read_hidden(prompt: &str) -> Result<Zeroizing<String>, ArchiveError> {
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .map_err(|e| {
            ArchiveError::BadKeyInput(format!(
                "cannot read a passphrase from the terminal: {}",
                e.kind()
            ))
        })
}

/// The key `key add` writes a slot for: `PGBUNKER_NEW_…` (same rules as the unlocking
/// variables), else a passphrase typed twice when a person is at the terminal. A
/// script without the variables gets an error rather than a hanging prompt.
fn new_key() -> Result<KeySource, CommandError> {
    if let Some(key) = KeySource::from_env_with_prefix("PGBUNKER_NEW_")? {
        return Ok(key);
    }
    if !std::io::stdin().is_terminal() {
        return Err(ArchiveError::from(KeyError::NoNewKey).into());
    }
    let first = read_hidden("New passphrase: ")?;
    let again = read_hidden("Repeat the new passphrase: ")?;
    if *first != *again {
        return Err(ArchiveError::from(KeyError::PassphrasesDiffer).into());
    }
    Ok(KeySource::passphrase(&first)?)
}

/// With no key in the environment or the settings file and a person at the terminal,
/// asks for the repository's passphrase (twice when creating one: a typo would lock
/// the backups away). Scripts get `None`, and then a clear "no key" error.
pub fn prompt_passphrase(location: &str, confirm: bool) -> Result<Option<KeySource>, CommandError> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Ok(None);
    }
    let first = read_hidden(&format!("Passphrase for {location}: "))?;
    if first.is_empty() && !confirm {
        return Ok(None);
    }
    if confirm && *first != *read_hidden("Repeat the passphrase: ")? {
        return Err(ArchiveError::from(KeyError::PassphrasesDiffer).into());
    }
    Ok(Some(KeySource::passphrase(&first)?))
}

pub async fn run(ctx: &Ctx<'_>, action: &KeyCommand, json: bool) -> Result<(), CommandError> {
    match action {
        KeyCommand::Add { repo } => {
            let opts = commands::key::KeyAddOptions {
                repo: ctx.repo_access(repo)?,
                new_key: new_key()?,
            };
            let report = audited(&opts.repo, "key add", commands::key::add(&opts)).await?;
            render::show(&report, json);
        }
        KeyCommand::List { repo } => {
            let opts = commands::key::KeyListOptions {
                repo: ctx.repo_access(repo)?,
            };
            render::show(&commands::key::list(&opts).await?, json);
        }
        KeyCommand::Remove { repo, kek_id } => {
            let opts = commands::key::KeyRemoveOptions {
                repo: ctx.repo_access(repo)?,
                kek_id: kek_id.clone(),
            };
            let report = audited(&opts.repo, "key remove", commands::key::remove(&opts)).await?;
            render::show(&report, json);
        }
        KeyCommand::Rotate { repo } => {
            let opts = commands::key::KeyRotateOptions {
                repo: ctx.repo_access(repo)?,
            };
            let report = audited(&opts.repo, "key rotate", commands::key::rotate(&opts)).await?;
            render::show(&report, json);
        }
    }
    Ok(())
}
