//! The content fingerprint of a live table: row count and the same order-independent
//! checksum a backup records, computed from a fresh `COPY … TO STDOUT (FORMAT binary)`.
//! Comparing it with the manifest proves a restored table holds exactly the rows that
//! were backed up.

use futures::StreamExt;
use tokio_postgres::Client;

use super::DumpError;
use crate::catalog::Table;
use crate::pg::PgError;
use crate::pgcopy::{TupleScanner, TupleStats};

pub async fn table_fingerprint(client: &Client, table: &Table) -> Result<TupleStats, DumpError> {
    let label = table.name.plain();
    let sql = table.copy_statement("TO STDOUT", "FORMAT binary");
    let err = |e| PgError::query(format!("copy out {label}"), e);
    let stream = client.copy_out(&sql).await.map_err(err)?;
    futures::pin_mut!(stream);
    let mut scanner = TupleScanner::new();
    let mut stats = TupleStats::default();
    let format_err = |source| DumpError::Copy {
        table: label.clone(),
        source,
    };
    while let Some(data) = stream.next().await {
        scanner.feed(&data.map_err(err)?).map_err(format_err)?;
        if scanner.ready_bytes() > 1 << 20 {
            stats.merge(scanner.cut().stats);
        }
    }
    stats.merge(scanner.finish().map_err(format_err)?.stats);
    Ok(stats)
}
