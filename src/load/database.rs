//! `restore --create`: the target database itself, made on the server's maintenance
//! database before the restore, given the source's settings after it, and dropped
//! again when a restore that made it fails.

use thiserror::Error;

use crate::catalog::{quote_ident, Catalog};
use crate::ddl;
use crate::error::{Class, Classify};
use crate::pg::{prepare_session, server_version, ConnSpec, PgError};

use super::LoadOptions;

#[derive(Debug, Error)]
pub enum DatabaseError {
    #[error(transparent)]
    Pg(#[from] PgError),
    /// The options ask for what cannot be done; the message says what to do instead.
    #[error("{0}")]
    Refused(String),
}

impl Classify for DatabaseError {
    fn class(&self) -> Class {
        match self {
            DatabaseError::Pg(e) => e.class(),
            DatabaseError::Refused(_) => Class::Usage,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            DatabaseError::Pg(e) => e.hint(),
            DatabaseError::Refused(_) => None,
        }
    }
}

/// The server's maintenance database, where `CREATE DATABASE` runs.
pub fn maintenance(target: &ConnSpec) -> ConnSpec {
    target.with_dbname(if target.dbname() == "postgres" {
        "template1"
    } else {
        "postgres"
    })
}

/// With `--create`: refuses an existing database unless `--clean` drops it.
pub async fn check_database(target: &ConnSpec, clean: bool) -> Result<(), DatabaseError> {
    let client = maintenance(target).connect().await?;
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1",
            &[&target.dbname()],
        )
        .await
        .map_err(|e| PgError::query("look for the target database", e))?
        .is_some();
    if exists && !clean {
        return Err(DatabaseError::Refused(format!(
            "database {} already exists: --create makes a new one (add --clean to drop it \
             first, or leave out --create to restore into it)",
            target.dbname()
        )));
    }
    Ok(())
}

/// `CREATE DATABASE` with the source's encoding, locale and comment, from
/// `template0` so that nothing of `template1` gets in the way, then its owner and
/// privileges as the restore's options allow; `--clean` drops it first.
pub async fn create_database(
    target: &ConnSpec,
    cat: &Catalog,
    clean: Option<bool>,
    load_opts: &LoadOptions,
) -> Result<(), DatabaseError> {
    let client = maintenance(target).connect().await?;
    prepare_session(&client).await?;
    let version = server_version(&client).await?;
    let create = ddl::create_database(target.dbname(), cat, version).map_err(|why| {
        DatabaseError::Refused(format!(
            "cannot make the database with --create: {why}; create it yourself and \
             restore into it without --create"
        ))
    })?;
    // The new database's owner may be one of them.
    let mut sql = if load_opts.roles.create {
        ddl::create_roles(cat)
    } else {
        Vec::new()
    };
    if clean.is_some() {
        sql.push(format!(
            "DROP DATABASE IF EXISTS {}",
            quote_ident(target.dbname())
        ));
    }
    sql.extend(create);
    if let Some(db) = &cat.database {
        sql.extend(ddl::database_privileges(
            target.dbname(),
            db,
            &load_opts.ddl,
        ));
    }
    run_all(&client, &sql).await
}

/// Drops the database `--create` made for a restore that failed; a failure to drop is
/// logged, not raised over the restore's own error.
pub async fn drop_created_database(target: &ConnSpec) {
    let sql = format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote_ident(target.dbname())
    );
    let dropped = async {
        let client = maintenance(target).connect().await?;
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| PgError::query("drop the database the failed restore created", e))
    }
    .await;
    match dropped {
        Ok(()) => tracing::info!("dropped database {} made by --create", target.dbname()),
        Err(e) => tracing::warn!(
            "the restore failed and database {} it created could not be dropped: {e}",
            target.dbname()
        ),
    }
}

/// The source's database-wide settings, once the data is in: a setting such as
/// `default_transaction_read_only` must not apply to the restore's own sessions.
pub async fn set_database_settings(target: &ConnSpec, cat: &Catalog) -> Result<(), DatabaseError> {
    let Some(db) = &cat.database else {
        return Ok(());
    };
    let settings = ddl::database_settings(target.dbname(), db);
    if settings.is_empty() {
        return Ok(());
    }
    let client = maintenance(target).connect().await?;
    prepare_session(&client).await?;
    for (var, sql) in settings {
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| PgError::query(format!("give the new database the setting {var}"), e))?;
    }
    Ok(())
}

async fn run_all(client: &tokio_postgres::Client, sql: &[String]) -> Result<(), DatabaseError> {
    for s in sql {
        client
            .batch_execute(s)
            .await
            .map_err(|e| PgError::query(format!("run `{s}`"), e))?;
    }
    Ok(())
}
