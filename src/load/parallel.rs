//! Runs independent groups of statements (index builds, foreign keys, ANALYZE) over
//! several connections; the statements of one group run in order on one connection.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::{first_line, LoadError};
use crate::pg::{run_sessions, ConnSpec, PgError};

/// A `run_sessions` setup step that applies one session setting.
pub(super) fn session_setting(
    sql: &'static str,
) -> impl Fn(Arc<tokio_postgres::Client>) -> BoxFuture<'static, Result<(), LoadError>>
       + Clone
       + Send
       + Sync
       + 'static {
    move |client| {
        Box::pin(async move {
            client
                .batch_execute(sql)
                .await
                .map_err(|e| PgError::query(format!("configure the session ({sql})"), e))?;
            Ok(())
        })
    }
}

pub(super) async fn run_statements(
    target: &ConnSpec,
    jobs: usize,
    section: &'static str,
    groups: Vec<Vec<String>>,
) -> Result<(), LoadError> {
    let setup = session_setting("SET maintenance_work_mem = '256MB'");
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
