//! `pgbunker show`: one backup in detail, from its sealed manifest: where it came from,
//! when its snapshot was taken, each table with rows and sizes, what it does not hold,
//! and the keys it is sealed under. Nothing is downloaded but the manifest.

use serde::Serialize;

use super::{CommandError, RepoAccess};
use crate::archive::{BackupReader, CopyFormat, SelectionRecord, SourceInfo, Timestamp};
use crate::error::Outcome;

#[derive(Debug)]
pub struct ShowOptions {
    pub repo: RepoAccess,
    /// A backup id (or a unique start of one), or `latest`.
    pub backup: String,
}

#[derive(Debug, Serialize)]
pub struct ShowReport {
    pub backup_id: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// When the catalog took it in: from then on it is restorable.
    pub committed_at: Timestamp,
    pub legal_hold: bool,
    pub keep_until: Option<Timestamp>,
    pub source: SourceInfo,
    /// The patterns of a partial backup; `None` for the whole database.
    pub selection: Option<SelectionRecord>,
    pub format_version: u32,
    pub tool_version: String,
    pub encrypted: bool,
    /// The key ring generation its data key and manifest are sealed under (format 3+).
    pub key_generation: Option<u64>,
    pub compress_level: i32,
    pub tables: Vec<ShownTable>,
    pub large_objects: Option<ShownLargeObjects>,
    /// What the database held that this backup does not.
    pub not_covered: Vec<String>,
    pub rows: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct ShownTable {
    pub table: String,
    pub rows: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    pub chunks: usize,
    /// Page ranges it was read in (1 when read whole).
    pub parts: usize,
    /// `text` for a table binary COPY cannot carry.
    pub copy_format: CopyFormat,
}

#[derive(Debug, Serialize)]
pub struct ShownLargeObjects {
    pub count: usize,
    pub bytes: u64,
    pub stored_bytes: u64,
}

impl Outcome for ShowReport {}

pub async fn show(opts: &ShowOptions) -> Result<ShowReport, CommandError> {
    let repo = opts.repo.open().await?;
    let live = repo.resolve(&opts.backup).await?;
    let reader = BackupReader::open(&repo, &live).await?;
    let m = reader.manifest();
    let mut tables: Vec<ShownTable> = m
        .tables
        .iter()
        .map(|t| ShownTable {
            table: format!("{}.{}", t.schema, t.name),
            rows: t.rows,
            raw_bytes: t.raw_bytes,
            stored_bytes: t.stored_bytes(),
            chunks: t.chunks.len(),
            parts: t.effective_parts().len(),
            copy_format: t.copy_format,
        })
        .collect();
    tables.sort_by(|a, b| a.table.cmp(&b.table));
    let large_objects = m.large_objects.as_ref().map(|l| ShownLargeObjects {
        count: l.objects.len(),
        bytes: l.data.raw_bytes,
        stored_bytes: l.data.stored_bytes(),
    });
    Ok(ShowReport {
        backup_id: live.bid.clone(),
        started_at: m.started_at.clone(),
        finished_at: m.finished_at.clone(),
        committed_at: live.created_at.clone(),
        legal_hold: live.legal_hold,
        keep_until: live.keep_until.clone(),
        source: m.source.clone(),
        selection: m.selection.clone(),
        format_version: m.format_version,
        tool_version: m.tool_version.clone(),
        encrypted: repo.is_encrypted(),
        key_generation: live.generation,
        compress_level: m.params.compress_level,
        rows: tables.iter().map(|t| t.rows).sum(),
        raw_bytes: tables.iter().map(|t| t.raw_bytes).sum(),
        stored_bytes: tables.iter().map(|t| t.stored_bytes).sum::<u64>()
            + large_objects.as_ref().map_or(0, |l| l.stored_bytes),
        tables,
        large_objects,
        not_covered: m.not_covered.clone(),
    })
}
