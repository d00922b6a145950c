//! libpq habits on top of tokio-postgres: connection strings and URLs completed from
//! the `PG*` environment, TLS by `sslmode` (rustls), redacted display, friendly
//! connection errors, snapshot export and attach, and raw COPY streams.

mod conn;
pub mod conninfo;
mod pgpass;
mod sessions;
mod tls;

pub use conn::{ConnSpec, PgError};
pub use sessions::{run_graph, run_sessions, Node, Sessions, WorkerLost};
pub use tls::SslMode;

use tokio_postgres::Client;

/// What the backup leader learns when it opens the snapshot everyone shares.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub id: String,
    pub lsn: Option<String>,
    pub in_recovery: bool,
}

/// Opens a read-only repeatable-read transaction on `client` and exports its snapshot
/// so workers can see exactly the same data.
pub async fn export_snapshot(client: &Client) -> Result<Snapshot, PgError> {
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .map_err(|e| PgError::query("start the snapshot transaction", e))?;
    let row = client
        .query_one(
            "SELECT pg_export_snapshot(), pg_is_in_recovery(), \
             (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
              ELSE pg_current_wal_lsn() END)::text",
            &[],
        )
        .await
        .map_err(|e| PgError::query("export a snapshot", e))?;
    Ok(Snapshot {
        id: row.get(0),
        in_recovery: row.get(1),
        lsn: row.get(2),
    })
}

/// The statements that start a transaction on the leader's snapshot, for a worker
/// to send before (or batched with) its next statement.
pub fn attach_sql(snapshot_id: &str) -> Result<String, PgError> {
    // The id comes from pg_export_snapshot(): hex digits and dashes only.
    if !snapshot_id
        .chars()
        .all(|c| c.is_ascii_hexdigit() || c == '-')
    {
        return Err(PgError::Invalid(format!(
            "unexpected snapshot id {snapshot_id:?}"
        )));
    }
    Ok(format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT '{snapshot_id}'"
    ))
}

/// Makes `client`'s new transaction see the leader's snapshot.
pub async fn attach_snapshot(client: &Client, snapshot_id: &str) -> Result<(), PgError> {
    client
        .batch_execute(&attach_sql(snapshot_id)?)
        .await
        .map_err(|e| PgError::query("attach the exported snapshot", e))
}

/// The server's `server_version_num`.
pub async fn server_version(client: &Client) -> Result<i32, PgError> {
    Ok(client
        .query_one(
            "SELECT pg_catalog.current_setting('server_version_num')::int4",
            &[],
        )
        .await
        .map_err(|e| PgError::query("read the server's version", e))?
        .get(0))
}

/// Applies session settings every pgbunker session uses, pg_dump's preamble: no
/// search_path surprises (every name we print or send is qualified), no statement,
/// lock or transaction timeout cutting a COPY or a long index build, literals quoted
/// the standard way, and row-level security off, so a role that cannot bypass a
/// policy gets an error instead of a silently filtered table. Function bodies are not
/// checked on creation: an SQL function may name a table or type that the restore
/// creates later (`pg_depend` does not see inside a quoted body), as pg_restore does.
/// Tables are read from their first page (no synchronized scan joining another
/// session's midway), so a table's rows come in the same order each time and cut into
/// the same chunks, which dedupe and which `diff --live` matches by id.
/// XML values are read as content, which accepts every value a column can hold, and
/// notices stay out of the way of the errors that matter. JIT is off: on thousands of
/// tables the planner's estimates for the catalog walks pass its threshold and each
/// query spent 0.4 s compiling for 5 ms of work; COPY and DDL never gain from it.
pub async fn prepare_session(client: &Client) -> Result<(), PgError> {
    client
        .batch_execute(SESSION_SETTINGS)
        .await
        .map_err(|e| PgError::query("prepare the session", e))
}

/// The statements of [`prepare_session`], `; `-separated; a restore script starts
/// with them too.
pub const SESSION_SETTINGS: &str = "SELECT pg_catalog.set_config('search_path', '', false); \
     SET statement_timeout = 0; SET lock_timeout = 0; \
     SET idle_in_transaction_session_timeout = 0; \
     SELECT pg_catalog.set_config(name, CASE name WHEN 'jit' THEN 'off' ELSE '0' END, \
                                  false) FROM pg_catalog.pg_settings \
      WHERE name IN ('transaction_timeout', 'jit'); \
     SET client_encoding = 'UTF8'; SET standard_conforming_strings = on; \
     SET check_function_bodies = false; SET xmloption = content; \
     SET client_min_messages = warning; SET row_security = off; \
     SET synchronize_seqscans = off";
