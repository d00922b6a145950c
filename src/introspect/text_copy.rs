//! Which tables must be copied in text format, decided from the catalog inside the
//! snapshot (see `sql/text_copy.sql` and `pgcopy::text`).

use std::collections::HashMap;

use tokio_postgres::Client;

use super::query;
use crate::catalog::Table;
use crate::pg::PgError;

/// Table OID → the types that keep it from binary COPY, each with the reason
/// (`"aclitem (no binary I/O)"`, `"regclass (names objects by OID)"`). Tables binary
/// COPY carries are absent.
pub async fn read_text_copy(
    client: &Client,
    tables: &[Table],
    server_version_num: i32,
) -> Result<HashMap<u32, Vec<String>>, PgError> {
    let oids: Vec<u32> = tables
        .iter()
        .filter(|t| t.has_data())
        .map(|t| t.oid)
        .collect();
    if oids.is_empty() {
        return Ok(HashMap::new());
    }
    let multirange = if server_version_num >= 140000 {
        "UNION ALL SELECT r.rngtypid FROM pg_catalog.pg_range r WHERE r.rngmultitypid = t.oid"
    } else {
        ""
    };
    let sql = include_str!("sql/text_copy.sql").replace("{multirange}", multirange);
    Ok(query(client, "types without binary COPY", &sql, &[&oids])
        .await?
        .iter()
        .map(|r| (r.get::<_, u32>("oid"), r.get::<_, Vec<String>>("why")))
        .collect())
}
