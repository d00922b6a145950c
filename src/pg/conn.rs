//! Connection settings and connection errors.

use std::fmt;
use std::time::Duration;

use thiserror::Error;
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

use crate::error::{Class, Classify};

#[derive(Debug, Error)]
pub enum PgError {
    #[error("could not connect to {target}: {reason}")]
    Connect {
        target: String,
        reason: String,
        code: Option<String>,
    },
    #[error("could not {what}: {reason}")]
    Query {
        what: String,
        reason: String,
        code: Option<String>,
    },
    #[error("invalid connection string: {0}")]
    BadConninfo(String),
    #[error("{0}")]
    Invalid(String),
}

/// A readable one-line description of a driver error. Never includes connection
/// parameters, nor the server's DETAIL field: it can quote row values ("Key (mrn)=(…)
/// already exists"), which must not reach logs or cron mail.
fn describe(e: &tokio_postgres::Error) -> (String, Option<String>) {
    if let Some(db) = e.as_db_error() {
        return (db.message().to_owned(), Some(db.code().code().to_owned()));
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(&format!(": {inner}"));
        src = inner.source();
    }
    (s, None)
}

impl PgError {
    pub fn query(what: impl Into<String>, e: tokio_postgres::Error) -> Self {
        let (reason, code) = describe(&e);
        PgError::Query {
            what: what.into(),
            reason,
            code,
        }
    }

    /// The SQLSTATE the server returned, if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            PgError::Connect { code, .. } | PgError::Query { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

impl Classify for PgError {
    fn class(&self) -> Class {
        match self {
            PgError::Connect { .. } => Class::Connection,
            PgError::BadConninfo(_) => Class::Usage,
            PgError::Query { code: None, .. } => Class::Connection,
            _ => Class::Database,
        }
    }

    fn hint(&self) -> Option<String> {
        let h = match (self, self.code()) {
            (PgError::Connect { .. }, Some("28P01")) | (PgError::Connect { .. }, Some("28000")) => {
                "check the user and password (PGPASSWORD, the URL, or ~/.pgpass)"
            }
            (PgError::Connect { .. }, Some("3D000")) => {
                "the database does not exist: check the name, or create it first"
            }
            (PgError::Connect { reason, .. }, _) if reason.contains("TLS") => {
                "this version of pgbunker cannot use TLS: connect over a trusted network \
                 or on the database host, with sslmode=disable or prefer"
            }
            (PgError::Connect { .. }, _) => {
                "check that the server is running and reachable at that host and port"
            }
            (PgError::Query { .. }, Some("55P03")) => {
                "another session holds a conflicting lock (DDL, VACUUM FULL?): retry later, \
                 or raise --lock-wait-timeout"
            }
            (PgError::Query { .. }, Some("42501")) => {
                "the role lacks privileges: connect as the table owner or a superuser"
            }
            (PgError::Query { .. }, None) => "the connection to the server was lost",
            _ => return None,
        };
        Some(h.into())
    }
}

/// Where and how to connect: a URL or `key=value` string, completed from `PGHOST`,
/// `PGPORT`, `PGUSER`, `PGPASSWORD` and `PGDATABASE` like libpq does. Its `Display`
/// never shows the password.
#[derive(Clone)]
pub struct ConnSpec {
    config: Config,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn os_user() -> String {
    env("USER").unwrap_or_else(|| {
        // SAFETY: getpwuid returns a pointer to static storage or null; we copy out
        // the name immediately and never keep the pointer.
        unsafe {
            let pw = libc::getpwuid(libc::geteuid());
            if pw.is_null() {
                return "postgres".into();
            }
            std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned()
        }
    })
}

impl ConnSpec {
    /// Parses `conninfo` (URL or `key=value` form; empty means "all from the
    /// environment") and fills what it leaves out from the libpq environment.
    pub fn parse(conninfo: Option<&str>) -> Result<ConnSpec, PgError> {
        let mut config = match conninfo.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => s.parse::<Config>().map_err(|e| {
                // The driver's message names the bad part; it never echoes values.
                PgError::BadConninfo(e.to_string())
            })?,
            None => Config::new(),
        };
        if config.get_hosts().is_empty() {
            match env("PGHOST") {
                Some(h) if h.starts_with('/') => {
                    config.host_path(h);
                }
                Some(h) => {
                    config.host(&h);
                }
                None if std::path::Path::new("/var/run/postgresql").is_dir() => {
                    config.host_path("/var/run/postgresql");
                }
                None => {
                    config.host("localhost");
                }
            }
        }
        if config.get_ports().is_empty() {
            let port = match env("PGPORT") {
                Some(p) => p
                    .parse()
                    .map_err(|_| PgError::BadConninfo(format!("PGPORT={p:?} is not a port")))?,
                None => 5432,
            };
            config.port(port);
        }
        if config.get_user().is_none() {
            config.user(env("PGUSER").unwrap_or_else(os_user));
        }
        if config.get_dbname().is_none() {
            let db = env("PGDATABASE").unwrap_or_else(|| config.get_user().unwrap_or("").into());
            config.dbname(db);
        }
        if config.get_password().is_none() {
            let from_file = || {
                let host = match config.get_hosts().first() {
                    Some(Host::Tcp(h)) => h.clone(),
                    _ => "localhost".into(),
                };
                let port = config.get_ports().first().copied().unwrap_or(5432);
                super::pgpass::lookup(
                    &host,
                    port,
                    config.get_dbname().unwrap_or(""),
                    config.get_user().unwrap_or(""),
                )
            };
            if let Some(p) = env("PGPASSWORD").or_else(from_file) {
                config.password(p);
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(30));
        }
        config.application_name("pgbunker");
        Ok(ConnSpec { config })
    }

    pub fn dbname(&self) -> &str {
        self.config.get_dbname().unwrap_or("")
    }

    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or("")
    }

    /// The same server and credentials, another database.
    pub fn with_dbname(&self, db: &str) -> ConnSpec {
        let mut c = self.clone();
        c.config.dbname(db);
        c
    }

    pub async fn connect(&self) -> Result<Client, PgError> {
        let (client, connection) = self.config.connect(NoTls).await.map_err(|e| {
            let (reason, code) = describe(&e);
            PgError::Connect {
                target: self.to_string(),
                reason,
                code,
            }
        })?;
        tokio::spawn(async move {
            // The server's reason for ending a session (terminated by an
            // administrator, shutting down) arrives here, not at the query that then
            // fails with "connection closed": say it where the user looks.
            if let Err(e) = connection.await {
                tracing::warn!("the server ended a connection: {}", describe(&e).0);
            }
        });
        Ok(client)
    }
}

impl fmt::Display for ConnSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => String::new(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        write!(
            f,
            "postgresql://{}@{}:{}/{}",
            self.user(),
            host,
            port,
            self.dbname()
        )
    }
}

impl fmt::Debug for ConnSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnSpec({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_never_shows_the_password() {
        let c = ConnSpec::parse(Some("postgresql://alice:s3cr3t@db.example:6543/clinic")).unwrap();
        let shown = format!("{c} {c:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert_eq!(c.to_string(), "postgresql://alice@db.example:6543/clinic");
        assert_eq!(c.with_dbname("other").dbname(), "other");
    }

    #[test]
    fn bad_conninfo_is_a_usage_error() {
        let e = ConnSpec::parse(Some("postgresql://h:notaport/db")).unwrap_err();
        assert_eq!(e.class(), Class::Usage);
    }
}
