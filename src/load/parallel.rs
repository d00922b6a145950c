//! What the restore's parallel sessions share: their settings, and how a failed
//! statement is reported.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::LoadError;
use crate::pg::PgError;

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
