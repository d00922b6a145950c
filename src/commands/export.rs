//! `pgbunker export`: a backup's tables as Parquet or Arrow IPC files for analytics,
//! decoded from the archive with no database running.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::audit::Audit;
use super::{CommandError, RepoAccess};
use crate::archive::OpenBackup;
use crate::error::Outcome;
use crate::export::sink::{create_private_dir, Destination};
use crate::export::{self, ExportOptions as EngineOptions, ExportedTable};
use crate::load::plan::PlanError;
use crate::mask::{MaskRequest, MaskSummary};
use crate::plan::scope::scope;
use crate::plan::select::Selection;
use crate::progress::Progress;
use crate::store::Store;

pub struct ExportOptions {
    pub repo: RepoAccess,
    /// Backup id or `latest`.
    pub backup: String,
    /// A local folder, or an object-storage URL (`s3://…`, `gs://…`, `az://…`).
    pub out: String,
    pub selection: Selection,
    /// `--mask`: the rules file.
    pub mask: Option<PathBuf>,
    pub export: EngineOptions,
}

#[derive(Debug, Serialize)]
pub struct ExportReport {
    pub backup_id: String,
    pub format: &'static str,
    pub out: String,
    pub tables: Vec<ExportedTable>,
    pub rows: u64,
    /// COPY data decoded, the measure of the work done.
    pub raw_bytes: u64,
    pub files: usize,
    pub warnings: Vec<String>,
    pub seconds: f64,
    /// `--mask`: the files hold masked rows, by these rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked: Option<MaskSummary>,
}

impl Outcome for ExportReport {}

impl Audit for ExportReport {
    fn backup_id(&self) -> Option<String> {
        Some(self.backup_id.clone())
    }
    /// Counts only: table names stay out of the repository's clear records.
    fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "format": self.format,
            "destination": if self.out.contains("://") { "object storage" } else { "local folder" },
            "tables": self.tables.len(),
            "files": self.files,
            "rows": self.rows,
            "raw_bytes": self.raw_bytes,
            "warnings": self.warnings.len(),
            "seconds": self.seconds,
            "masked": self.masked.as_ref().map(|m| serde_json::json!({
                "rules_sha256": m.rules_sha256,
                "columns": m.columns.len(),
            })),
        })
    }
}

/// Opens the destination: object storage by URL (the bucket must exist), else a local
/// folder, created owner-only when missing.
fn destination(out: &str) -> Result<Destination, CommandError> {
    let local = match out.strip_prefix("file://") {
        Some(path) => Some(path),
        None if out.contains("://") => None,
        None => Some(out),
    };
    match local {
        Some(path) => {
            let path = PathBuf::from(path);
            create_private_dir(&path)?;
            let path = path
                .canonicalize()
                .map_err(|e| CommandError::Export(export::ExportError::io(&path, e)))?;
            Ok(Destination::Local(path))
        }
        None => Ok(Destination::Store(Store::create(out)?)),
    }
}

pub async fn export(
    opts: &ExportOptions,
    progress: Arc<dyn Progress>,
) -> Result<ExportReport, CommandError> {
    let started = Instant::now();
    let mask = opts.mask.as_deref().map(MaskRequest::read).transpose()?;
    let repo = opts.repo.open().await?;
    let dest = destination(&opts.out)?;
    let backup = OpenBackup::open(&repo, &opts.backup).await?;
    let outcome = async {
        let reader = backup.reader();
        let scope =
            scope(&reader.manifest().catalog, &opts.selection, false).map_err(PlanError::from)?;
        let masking = match &mask {
            Some(m) => Some(Arc::new(m.prepare(reader, &scope).await?)),
            None => None,
        };
        let engine = EngineOptions {
            mask: masking.clone(),
            ..opts.export.clone()
        };
        let mut out = export::run(reader, &scope, &dest, &engine, progress).await?;
        out.warnings
            .extend(masking.iter().flat_map(|m| m.notes.iter().cloned()));
        // Parquet holds tables; a large object is no table, so say what was not written.
        if let Some(los) = &reader.manifest().large_objects {
            out.warnings.push(format!(
                "{} large object(s) in the backup were not exported (export writes tables \
                 only; `pgbunker restore` brings them back)",
                los.objects.len()
            ));
        }
        Ok::<_, CommandError>((out, masking.map(|m| m.summary())))
    }
    .await;
    let backup_id = backup.live().bid.clone();
    backup.release().await?;
    let (outcome, masked) = outcome?;
    Ok(ExportReport {
        backup_id,
        format: opts.export.format.extension(),
        out: opts.out.clone(),
        rows: outcome.tables.iter().map(|t| t.rows).sum(),
        raw_bytes: outcome.tables.iter().map(|t| t.raw_bytes).sum(),
        files: outcome.tables.iter().map(|t| t.files.len()).sum(),
        tables: outcome.tables,
        warnings: outcome.warnings,
        seconds: started.elapsed().as_secs_f64(),
        masked,
    })
}
