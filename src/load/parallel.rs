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

/// Runs statements whose failure must not fail the restore (ANALYZE: a sample can hit
/// an expression that errors on some row); returns each failure as a warning.
pub(super) async fn run_best_effort(
    target: &ConnSpec,
    jobs: usize,
    statements: Vec<String>,
) -> Result<Vec<String>, LoadError> {
    let setup = session_setting("SET maintenance_work_mem = '256MB'");
    let work = move |client: Arc<tokio_postgres::Client>, sql: String| async move {
        Ok::<_, LoadError>(client.batch_execute(&sql).await.err().map(|e| {
            let reason = e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_owned());
            format!("`{}` failed: {reason}", first_line(&sql))
        }))
    };
    let out = run_sessions(target, jobs, statements, setup, work).await?;
    Ok(out.into_iter().flatten().collect())
}
