//! Masking: a restore or an export that carries no patient's identity, derived from a
//! full-fidelity backup at restore or export time.
//!
//! A rules file ([`rules`]) names columns and the library's transform for each
//! ([`transform`]); [`plan::compile`] checks the rules against the backup's catalog
//! (types, NOT NULL, unique keys, foreign keys) and refuses, before anything is
//! written, a rule that would break a constraint; [`detect`] finds columns that look
//! like identifiers and are not covered. The compiled [`Masking`] rewrites each chunk's
//! binary tuples ([`rewrite`]) after its checksum was checked and before it is loaded
//! or decoded. No user code runs on the rows.
//!
//! The masking key is the user's, never the repository's, and is never stored: the
//! same key gives the same masked values in every table and every run, so foreign keys
//! and joins hold across tables and runs; another key gives other values.

pub mod detect;
mod fake;
pub mod plan;
mod prp;
pub mod rewrite;
pub mod rules;
pub mod sample;
pub mod transform;

use thiserror::Error;
use zeroize::Zeroizing;

pub use fake::FakeKind;
pub use plan::{compile, MaskSummary, MaskedColumn, Masking};
pub use rules::{LargeObjects, Rules};
pub use sample::{starting_rules, survey, wildcard_keeps, Flagged};

use crate::archive::{ArchiveError, BackupReader, CopyFormat};
use crate::catalog::Table;
use crate::codec::{parse_key_bytes, SecretKey};
use crate::error::{Class, Classify};
use crate::pgcopy::remap::ValueError;
use crate::pgcopy::CopyFormatError;
use crate::plan::scope::Scope;

#[derive(Debug, Error)]
pub enum MaskError {
    #[error("the masking rules cannot be read: {0}")]
    Rules(String),
    #[error("cannot read the masking rules {path}: {kind}")]
    RulesFile {
        path: String,
        kind: std::io::ErrorKind,
    },
    #[error("--mask needs a masking key, and none is set")]
    NoKey,
    #[error("the masking key is unusable: {0}")]
    BadKey(String),
    #[error("the masking key is the repository's key")]
    RepositoryKey,
    #[error("the masking rules would break the restored database:\n  {}", .0.join("\n  "))]
    Refused(Vec<String>),
    #[error(
        "{} column(s) look like identifiers and no rule covers them:\n  {}",
        .0.len(),
        .0.join("\n  ")
    )]
    Uncovered(Vec<String>),
    #[error("{table}.{column}, row {row} of a chunk: {problem}")]
    Value {
        table: String,
        column: String,
        row: u64,
        problem: ValueError,
    },
    #[error("{table}: {source}")]
    Framing {
        table: String,
        source: CopyFormatError,
    },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

impl Classify for MaskError {
    fn class(&self) -> Class {
        match self {
            MaskError::Rules(_) | MaskError::Refused(_) | MaskError::Uncovered(_) => Class::Usage,
            MaskError::RulesFile { .. } => Class::Io,
            MaskError::NoKey | MaskError::BadKey(_) | MaskError::RepositoryKey => Class::Key,
            MaskError::Value { .. } | MaskError::Framing { .. } => Class::Corrupt,
            MaskError::Archive(e) => e.class(),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            MaskError::NoKey | MaskError::RepositoryKey => Some(
                "set PGBUNKER_MASK_KEY (64 hex digits, e.g. from `openssl rand -hex 32`) or \
                 PGBUNKER_MASK_KEY_FILE (a file only its owner may read); keep it apart from \
                 the repository's key: with it, masked values can be matched to real ones"
                    .into(),
            ),
            MaskError::Refused(_) => Some(
                "nothing was written; change the rules named above (unique and key columns \
                 take format_preserving or keep; a column referencing a masked one takes \
                 the same transform)"
                    .into(),
            ),
            MaskError::Uncovered(_) => Some(
                "nothing was written; add a rule for each (`transform = \"keep\"` if it is \
                 not an identifier): `pgbunker mask check --write-rules FILE` writes a \
                 starting rules file that covers them"
                    .into(),
            ),
            MaskError::Archive(e) => e.hint(),
            _ => None,
        }
    }
}

/// Compiles `rules` against the backup's whole catalog (see [`compile`]).
pub fn compile_for(
    reader: &BackupReader,
    rules: &Rules,
    key: &SecretKey,
) -> Result<Masking, MaskError> {
    let manifest = reader.manifest();
    let cat = &manifest.catalog;
    // A table's number in the manifest is its position in the catalog.
    let text_copied = |t: &Table| {
        cat.tables
            .iter()
            .position(|x| x.oid == t.oid)
            .and_then(|i| manifest.table(i as u32))
            .is_some_and(|r| r.copy_format == CopyFormat::Text)
    };
    compile(cat, rules, key, &text_copied)
}

/// `--mask`: the rules and the key, read before the repository is opened so that a
/// mistake in either costs nothing.
pub struct MaskRequest {
    rules: Rules,
    key: SecretKey,
}

impl MaskRequest {
    pub fn read(rules: &std::path::Path) -> Result<MaskRequest, MaskError> {
        let rules = read_rules(rules)?;
        let key = key_from_env()?;
        if let Ok(Some(crate::archive::KeySource::Key(repo))) =
            crate::archive::KeySource::from_env()
        {
            if repo == key {
                return Err(MaskError::RepositoryKey);
            }
        }
        Ok(MaskRequest { rules, key })
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// See [`prepare`].
    pub async fn prepare(
        &self,
        reader: &BackupReader,
        scope: &Scope,
    ) -> Result<Masking, MaskError> {
        prepare(reader, scope, &self.rules, &self.key).await
    }
}

/// Reads the rules file.
pub fn read_rules(path: &std::path::Path) -> Result<Rules, MaskError> {
    let text = std::fs::read_to_string(path).map_err(|e| MaskError::RulesFile {
        path: path.display().to_string(),
        kind: e.kind(),
    })?;
    Rules::parse(&text)
}

/// The masking key: `PGBUNKER_MASK_KEY` or `PGBUNKER_MASK_KEY_FILE` (one of them; an
/// empty file name counts as unset), under the rules the repository keys follow. A
/// flag would show it in `ps`.
pub fn key_from_env() -> Result<SecretKey, MaskError> {
    const KEY: &str = "PGBUNKER_MASK_KEY";
    const FILE: &str = "PGBUNKER_MASK_KEY_FILE";
    let key = std::env::var(KEY).ok().map(Zeroizing::new);
    let file = std::env::var(FILE).ok().filter(|f| !f.is_empty());
    let (var, bytes) = match (key, file) {
        (Some(_), Some(_)) => {
            return Err(MaskError::BadKey(format!(
                "{KEY} and {FILE} are both set; set exactly one"
            )))
        }
        (Some(k), None) => (KEY, Zeroizing::new(k.as_bytes().to_vec())),
        (None, Some(path)) => (
            FILE,
            crate::archive::read_secret_file(FILE, &path)
                .map_err(|e| MaskError::BadKey(e.to_string()))?,
        ),
        (None, None) => return Err(MaskError::NoKey),
    };
    parse_key_bytes(&bytes).map_err(|e| MaskError::BadKey(format!("{var}: {e}")))
}

/// Compiles `rules` against the whole backup's catalog, so that a column referencing a
/// masked one is masked alike even when a partial restore leaves the masked one out,
/// and refuses, before anything is written, while a column of `scope` that looks like
/// an identifier is covered by no rule.
pub async fn prepare(
    reader: &BackupReader,
    scope: &Scope,
    rules: &Rules,
    key: &SecretKey,
) -> Result<Masking, MaskError> {
    let mut masking = compile_for(reader, rules, key)?;
    let flagged = survey(reader, scope, Some(&masking)).await?;
    masking.notes.extend(wildcard_keeps(&flagged, rules));
    let uncovered: Vec<String> = flagged
        .into_iter()
        .filter(|f| f.covered_by.is_none())
        .map(|f| {
            format!(
                "{}.{} ({}): {}",
                f.table,
                f.column,
                f.type_sql,
                f.why.join("; ")
            )
        })
        .collect();
    if !uncovered.is_empty() {
        return Err(MaskError::Uncovered(uncovered));
    }
    Ok(masking)
}
