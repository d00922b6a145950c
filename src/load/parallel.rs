//! Runs independent groups of statements (index builds, foreign keys, ANALYZE) over
//! several connections; the statements of one group run in order on one connection.

use std::sync::Arc;

use super::{first_line, LoadError};
use crate::pg::{run_sessions, ConnSpec, PgError};

pub(super) async fn run_statements(
    target: &ConnSpec,
    jobs: usize,
    section: &'static str,
    groups: Vec<Vec<String>>,
) -> Result<(), LoadError> {
    let setup = |client: Arc<tokio_postgres::Client>| async move {
        client
            .batch_execute("SET maintenance_work_mem = '256MB'")
            .await
            .map_err(|e| PgError::query("configure the session", e))?;
        Ok::<_, LoadError>(())
    };
    let work = move |client: Arc<tokio_postgres::Client>, group: Vec<String>| async move {
        for sql in group {
            client
                .batch_execute(&sql)
                .await
                .map_err(|e| LoadError::Ddl {
                    section,
                    statement: first_line(&sql),
                    source: PgError::query(section, e),
                })?;
        }
        Ok::<(), LoadError>(())
    };
    run_sessions(target, jobs, groups, setup, work).await?;
    Ok(())
}
