//! Runs independent groups of statements (index builds, foreign keys, ANALYZE) over
//! several connections; the statements of one group run in order on one connection.
//! A statement that fails is reported and the others still run: one bad index must
//! not cost the rest of the restore.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::LoadError;
use crate::pg::{run_sessions, ConnSpec, PgError};

/// A `run_sessions` setup step that applies session settings.
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

/// Session settings for building indexes and checking foreign keys: the largest
/// serial index sort of a 1 GB restore fits in 256 MB of `maintenance_work_mem`, and
/// the anti-joins that validate foreign keys hash in 64 MB of `work_mem`. Only ever
/// raised: a larger value set for the role or database is the administrator's.
pub(super) const BUILD_SETTINGS: &str = "SELECT pg_catalog.set_config(name, size, false) \
     FROM (VALUES ('maintenance_work_mem', '256MB'), ('work_mem', '64MB')) AS s(name, size) \
     WHERE pg_catalog.pg_size_bytes(pg_catalog.current_setting(name)) < pg_catalog.pg_size_bytes(size)";

/// Runs `groups`; returns each statement that failed with the server's message. Only
/// a lost connection is an error.
pub(super) async fn run_statements(
    target: &ConnSpec,
    jobs: usize,
    groups: Vec<Vec<String>>,
) -> Result<Vec<(String, String)>, LoadError> {
    let setup = session_setting(BUILD_SETTINGS);
    let work = move |client: Arc<tokio_postgres::Client>, group: Vec<String>| async move {
        let mut failed = Vec::new();
        for sql in group {
            if let Err(e) = client.batch_execute(&sql).await {
                if client.is_closed() {
                    return Err(LoadError::Pg(PgError::query("run post-data", e)));
                }
                failed.push((sql, reason(&e)));
            }
        }
        Ok::<_, LoadError>(failed)
    };
    let out = run_sessions(target, jobs, groups, setup, work).await?;
    Ok(out.into_iter().flatten().collect())
}

/// The server's message, with its detail when it has one.
pub(super) fn reason(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => match d.detail() {
            Some(detail) => format!("{} ({detail})", d.message()),
            None => d.message().to_owned(),
        },
        None => e.to_string(),
    }
}
