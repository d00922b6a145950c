//! The content fingerprint of a live table: row count and the same order-independent
//! checksum a backup records, computed from a fresh `COPY … TO STDOUT` in the format
//! the backup copied the table in.
//! Comparing it with the manifest proves a restored table holds exactly the rows that
//! were backed up.

use futures::StreamExt;
use tokio_postgres::Client;

use super::table::copy_options;
use super::DumpError;
use crate::archive::CopyFormat;
use crate::catalog::text_session;
use crate::catalog::Table;
use crate::pg::PgError;
use crate::pgcopy::remap::Remapper;
use crate::pgcopy::{scan_tuples, Cut, Cutter, Scanner, TupleStats};

/// Whole tuples are hashed (and rewritten) in runs of about this many bytes.
const CUT_BYTES: usize = 1 << 20;

/// Row count and checksum of `table` as `client` sees it now.
///
/// `remap`, when given, rewrites the type OIDs inside each run of tuples before it is
/// hashed: a restored table's values name the target database's types, so pass the
/// inverse of the restore's remapper (target OIDs back to the backup's) to compare its
/// fingerprint with the manifest or the source. Memory stays bounded: runs are
/// rewritten one at a time as the COPY streams.
///
/// `format` is the one the backup copied the table in (`TableRecord::copy_format`):
/// the checksums of the two formats differ. Text rows hold names, not OIDs, so `remap`
/// does not apply to them.
pub async fn table_fingerprint(
    client: &Client,
    table: &Table,
    format: CopyFormat,
    remap: Option<&Remapper>,
) -> Result<TupleStats, DumpError> {
    let text = format == CopyFormat::Text;
    let remap = remap.filter(|r| !r.is_identity() && !text);
    let label = table.name.plain();
    if text {
        client
            .batch_execute(&text_session(false))
            .await
            .map_err(|e| PgError::query("fix the settings text COPY depends on", e))?;
    }
    let sql = table.copy_statement("TO STDOUT", copy_options(format));
    let err = |e| PgError::query(format!("copy out {label}"), e);
    let stream = client.copy_out(&sql).await.map_err(err)?;
    futures::pin_mut!(stream);
    // Only the totals matter here, so the cuts need no key: they bound memory.
    let mut scanner = Scanner::new(text, Cutter::new(&[0; 32], CUT_BYTES));
    let mut stats = TupleStats::default();
    let format_err = |source| DumpError::Copy {
        table: label.clone(),
        source,
    };
    let stats_of = |cut: Cut| -> Result<TupleStats, DumpError> {
        let Some(remap) = remap else {
            return Ok(cut.stats);
        };
        let mut data = Vec::from(cut.data);
        remap
            .rewrite(&mut data)
            .map_err(|source| DumpError::Remap {
                table: label.clone(),
                source,
            })?;
        scan_tuples(&data).map_err(format_err)
    };
    while let Some(data) = stream.next().await {
        scanner.feed(data.map_err(err)?).map_err(format_err)?;
        while let Some(cut) = scanner.next_cut() {
            stats.merge(stats_of(cut)?);
        }
    }
    stats.merge(stats_of(scanner.finish().map_err(format_err)?)?);
    Ok(stats)
}
