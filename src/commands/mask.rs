//! `pgbunker mask check`: which columns of a backup look like identifiers (by name and
//! by a sample of their values), which of them a rules file covers, and whether the
//! rules fit the schema; `--write-rules` writes a starting rules file that covers every
//! flagged column. Needs the repository's key (to sample values), not the masking key.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use super::audit::Audit;
use super::{CommandError, RepoAccess};
use crate::archive::OpenBackup;
use crate::codec::SecretKey;
use crate::error::{Class, Failed, Outcome};
use crate::load::plan::PlanError;
use crate::mask::{self, Flagged, MaskError, Rules};
use crate::plan::scope::scope;
use crate::plan::select::Selection;

pub struct MaskCheckOptions {
    pub repo: RepoAccess,
    pub backup: String,
    pub rules: Option<PathBuf>,
    /// Write a starting rules file here (never over an existing file).
    pub write_rules: Option<PathBuf>,
    pub selection: Selection,
}

#[derive(Debug, Serialize)]
pub struct MaskCheckReport {
    pub backup_id: String,
    /// SHA-256 of the rules file checked, if one was given.
    pub rules_sha256: Option<String>,
    pub flagged: Vec<Flagged>,
    /// Flagged columns no rule covers: `--mask` refuses while there are any.
    pub uncovered: usize,
    /// Rules that would break the restored database: `--mask` refuses them too.
    pub problems: Vec<String>,
    /// What the rules do that the admin should know.
    pub notes: Vec<String>,
    pub written: Option<String>,
}

impl Outcome for MaskCheckReport {
    fn failed(&self) -> Option<Failed> {
        if self.uncovered == 0 && self.problems.is_empty() {
            return None;
        }
        Some(Failed {
            class: Class::Expectation,
            message: format!(
                "{} identifier column(s) not covered, {} rule problem(s): --mask would refuse",
                self.uncovered,
                self.problems.len()
            ),
            hint: Some(
                "add a rule for each uncovered column (`transform = \"keep\"` for one that is \
                 not an identifier); --write-rules FILE writes a starting rules file"
                    .into(),
            ),
        })
    }
}

/// Counts only: column names stay out of the repository's clear records.
impl Audit for MaskCheckReport {
    fn backup_id(&self) -> Option<String> {
        Some(self.backup_id.clone())
    }
    fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "rules_sha256": self.rules_sha256,
            "flagged": self.flagged.len(),
            "uncovered": self.uncovered,
            "problems": self.problems.len(),
        })
    }
}

pub async fn check(opts: &MaskCheckOptions) -> Result<MaskCheckReport, CommandError> {
    let rules = opts.rules.as_deref().map(mask::read_rules).transpose()?;
    let repo = opts.repo.open().await?;
    let backup = OpenBackup::open(&repo, &opts.backup).await?;
    let outcome = surveyed(&backup, opts, rules.as_ref()).await;
    let backup_id = backup.live().bid.clone();
    backup.release().await?;
    let (flagged, problems, notes) = outcome?;
    let written = match &opts.write_rules {
        Some(path) => Some(write_new(path, &mask::starting_rules(&flagged))?),
        None => None,
    };
    Ok(MaskCheckReport {
        backup_id,
        rules_sha256: rules.map(|r| r.sha256),
        uncovered: flagged.iter().filter(|f| f.covered_by.is_none()).count(),
        flagged,
        problems,
        notes,
        written,
    })
}

type Surveyed = (Vec<Flagged>, Vec<String>, Vec<String>);

async fn surveyed(
    backup: &OpenBackup,
    opts: &MaskCheckOptions,
    rules: Option<&Rules>,
) -> Result<Surveyed, CommandError> {
    let reader = backup.reader();
    let manifest = reader.manifest();
    let scope = scope(&manifest.catalog, &opts.selection, false).map_err(PlanError::from)?;
    // Compiled only to check the rules and follow foreign keys: no value is masked,
    // so no masking key is needed.
    let compiled = rules.map(|r| mask::compile_for(reader, r, &SecretKey::random()));
    let (masking, problems) = match compiled {
        Some(Ok(m)) => (Some(m), Vec::new()),
        Some(Err(MaskError::Refused(problems))) => (None, problems),
        Some(Err(e)) => return Err(e.into()),
        None => (None, Vec::new()),
    };
    let mut flagged = mask::survey(reader, &scope, masking.as_ref()).await?;
    if let (None, Some(rules)) = (&masking, rules) {
        // The rules did not compile: say which rule names each column at least.
        for f in flagged.iter_mut().filter(|f| f.covered_by.is_none()) {
            let (schema, table) = f.table.split_once('.').unwrap_or(("", &f.table));
            f.covered_by = rules
                .rule_for(schema, table, &f.column)
                .map(|r| format!("{} (rule {})", r.transform.describe(), r.number));
        }
    }
    let mut notes = masking.map(|m| m.notes).unwrap_or_default();
    if let Some(rules) = rules {
        notes.extend(mask::wildcard_keeps(&flagged, rules));
    }
    Ok((flagged, problems, notes))
}

/// Writes a new file; an existing one is never replaced.
fn write_new(path: &std::path::Path, text: &str) -> Result<String, CommandError> {
    let shown = path.display().to_string();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            CommandError::Usage(format!(
                "cannot create {shown}: {e} (it is never overwritten)"
            ))
        })?;
    f.write_all(text.as_bytes())
        .map_err(|e| CommandError::Usage(format!("cannot write {shown}: {e}")))?;
    Ok(shown)
}
