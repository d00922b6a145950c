//! Runs independent statements (index builds, constraint validation, ANALYZE) over
//! several connections.

use std::sync::Arc;

use super::{first_line, LoadError};
use crate::pg::{run_sessions, ConnSpec, PgError};

pub(super) async fn run_statements(
    target: &ConnSpec,
    jobs: usize,
    section: &'static str,
    statements: Vec<String>,
) -> Result<(), LoadError> {
    let setup = |client: Arc<tokio_postgres::Client>| async move {
        client
            .batch_execute("SET maintenance_work_mem = '256MB'")
            .await
            .map_err(|e| PgError::query("configure the session", e))?;
        Ok::<_, LoadError>(())
    };
    let work = move |client: Arc<tokio_postgres::Client>, sql: String| async move {
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| LoadError::Ddl {
                section,
                statement: first_line(&sql),
                source: PgError::query(section, e),
            })
    };
    run_sessions(target, jobs, statements, setup, work).await?;
    Ok(())
}
