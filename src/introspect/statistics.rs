//! The planner statistics of the backed-up tables, read so that a PostgreSQL 18+
//! target can take them instead of running ANALYZE (see `ddl::statistics`).

use std::collections::HashMap;

use tokio_postgres::Client;

use super::query;
use crate::catalog::text_session;
use crate::catalog::{Statistics, Table};
use crate::pg::PgError;

/// The `pg_stats` columns from PostgreSQL 17 on.
const RANGE_COLUMNS: &str = ",\n       s.range_length_histogram::text AS range_length_histogram,\
     \n       s.range_empty_frac::text AS range_empty_frac,\
     \n       s.range_bounds_histogram::text AS range_bounds_histogram";

/// Tables smaller than this are left to ANALYZE, which reads one whole in less time
/// than reading and importing its statistics takes (on 3000 small tables, reading
/// them cost the backup 0.2 s of server time).
const FROM_BYTES: u64 = 1 << 20;

/// Table OID → its statistics, for the tables of at least [`FROM_BYTES`] that were
/// ever analyzed. Values of dates, times and floats are written under the settings
/// text COPY uses, which the import sets again. Runs in a savepoint of `client`'s
/// transaction: statistics that cannot be read are left to ANALYZE (with a warning)
/// without ending the transaction, whose snapshot and locks the backup stands on.
pub async fn read_statistics(
    client: &Client,
    tables: &[Table],
    server_version_num: i32,
) -> Result<HashMap<u32, Statistics>, PgError> {
    let oids: Vec<u32> = tables
        .iter()
        .filter(|t| t.has_data() && t.estimated_bytes >= FROM_BYTES)
        .map(|t| t.oid)
        .collect();
    if oids.is_empty() {
        return Ok(HashMap::new());
    }
    let step = |sql: &'static str| async move {
        client
            .batch_execute(sql)
            .await
            .map_err(|e| PgError::query("read the planner statistics", e))
    };
    step("SAVEPOINT statistics").await?;
    match read(client, &oids, server_version_num).await {
        Ok(found) => {
            step("RELEASE SAVEPOINT statistics").await?;
            Ok(found)
        }
        Err(e) => {
            step("ROLLBACK TO SAVEPOINT statistics; RELEASE SAVEPOINT statistics").await?;
            tracing::warn!("{e}: the restore runs ANALYZE instead");
            Ok(HashMap::new())
        }
    }
}

async fn read(
    client: &Client,
    oids: &[u32],
    server_version_num: i32,
) -> Result<HashMap<u32, Statistics>, PgError> {
    client
        .batch_execute(&text_session(true))
        .await
        .map_err(|e| PgError::query("fix the settings statistics are written with", e))?;
    let range = if server_version_num >= 170000 {
        RANGE_COLUMNS
    } else {
        ""
    };
    let sql = include_str!("sql/column_statistics.sql").replace("{range}", range);
    let mut columns: HashMap<u32, Vec<Vec<(String, String)>>> = HashMap::new();
    for r in query(client, "column statistics", &sql, &[&oids]).await? {
        let values = r
            .columns()
            .iter()
            .enumerate()
            .skip(1)
            .filter_map(|(i, c)| {
                r.get::<_, Option<String>>(i)
                    .map(|v| (c.name().to_owned(), v))
            })
            .collect();
        columns.entry(r.get(0)).or_default().push(values);
    }
    let mut out = HashMap::new();
    let sql = include_str!("sql/relation_statistics.sql");
    for r in query(client, "relation statistics", sql, &[&oids]).await? {
        let oid: u32 = r.get(0);
        let columns = columns.remove(&oid).unwrap_or_default();
        let mut reltuples: String = r.get("reltuples");
        // Never analyzed (-1; 0 and no column statistics before PostgreSQL 14): the
        // target runs ANALYZE instead.
        if reltuples.starts_with('-') || (columns.is_empty() && reltuples == "0") {
            continue;
        }
        if server_version_num < 140000 && reltuples == "0" {
            reltuples = "-1".into();
        }
        let relation = [
            ("relpages", r.get::<_, Option<String>>("relpages")),
            ("reltuples", Some(reltuples)),
            ("relallvisible", r.get("relallvisible")),
            ("relallfrozen", r.get("relallfrozen")),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
        .collect();
        out.insert(oid, Statistics { relation, columns });
    }
    Ok(out)
}
