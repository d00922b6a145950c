//! `pgbunker mark export|import`: carry this machine's high-water mark of a repository
//! to a host that has never seen it (a DR host), so that host checks the catalog it
//! finds instead of trusting whatever is there on first contact.

use super::{CommandError, RepoAccess};
use crate::archive::{MarkFile, MarkImport};

/// The newest catalog entry, checked against this machine's mark, as a mark file.
pub async fn export(repo: &RepoAccess) -> Result<MarkFile, CommandError> {
    Ok(repo.open().await?.export_mark().await?)
}

/// Reads a mark file and makes it this machine's mark of the repository.
pub async fn import(repo: &RepoAccess, file: &std::path::Path) -> Result<MarkImport, CommandError> {
    let shown = file.display().to_string();
    let bytes = std::fs::read(file)
        .map_err(|e| CommandError::Usage(format!("cannot read the mark file {shown}: {e}")))?;
    let mark = MarkFile::parse(&shown, &bytes).map_err(crate::archive::ArchiveError::from)?;
    Ok(repo.open().await?.import_mark(&mark).await?)
}
