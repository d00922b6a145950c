//! The reference "heart recovery" database from `fixtures/heart_recovery/`, embedded so
//! the demo, tests and benchmarks load the same schema and data anywhere.

use tokio_postgres::Client;

use crate::pg::PgError;

const SCHEMA: &str = include_str!("../../fixtures/heart_recovery/schema.sql");
const DATA: &str = include_str!("../../fixtures/heart_recovery/data.sql");

/// Creates the fixture schema and generates its data server-side. Scale 1 is about
/// 10 MB of table data, scale 100 about 1 GB; the same scale always gives the same rows.
pub async fn load_heart_recovery(client: &Client, scale: u32) -> Result<(), PgError> {
    client
        .batch_execute(SCHEMA)
        .await
        .map_err(|e| PgError::query("create the fixture schema", e))?;
    client
        .batch_execute(&format!("SET pgbunker.scale = '{}'", scale.max(1)))
        .await
        .map_err(|e| PgError::query("set the fixture scale", e))?;
    client
        .batch_execute(DATA)
        .await
        .map_err(|e| PgError::query("generate the fixture data", e))?;
    Ok(())
}
