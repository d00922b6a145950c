//! Connection settings and connection errors.

use std::fmt;
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::config::{Host, SslMode as DriverSslMode, SslNegotiation};
use tokio_postgres::{Client, Config, Connection, NoTls, Socket};

use super::tls::{rustls_error_in_io, take_ssl_params, MakeRustls, SslMode, TlsError, TlsParams};
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
    /// TLS could not be set up or the handshake failed; the hint is specific.
    #[error("could not connect to {target}: {reason}")]
    Tls {
        target: String,
        reason: String,
        hint: Option<String>,
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
            PgError::Connect { .. } | PgError::Tls { .. } => Class::Connection,
            PgError::BadConninfo(_) => Class::Usage,
            PgError::Query { code: None, .. } => Class::Connection,
            _ => Class::Database,
        }
    }

    fn hint(&self) -> Option<String> {
        if let PgError::Tls { hint, .. } = self {
            return hint.clone();
        }
        let h = match (self, self.code()) {
            (PgError::Connect { reason, .. }, Some("28000"))
                if reason.contains("requires a valid client certificate") =>
            {
                "the server authenticates this user by client certificate (cert in \
                 pg_hba.conf): set sslcert and sslkey (or PGSSLCERT and PGSSLKEY)"
            }
            (PgError::Connect { reason, .. }, Some("28000"))
                if reason.contains("certificate authentication failed") =>
            {
                "the client certificate's common name (CN) must be the user name, or map to \
                 it in the server's pg_ident.conf"
            }
            // PostgreSQL 14+ says "no encryption", 13 says "SSL off".
            (PgError::Connect { reason, .. }, Some("28000"))
                if reason.contains("no pg_hba.conf entry")
                    && (reason.contains("no encryption") || reason.contains("SSL off")) =>
            {
                "the server accepts this connection only over TLS (hostssl in pg_hba.conf): \
                 connect with sslmode=verify-full (or require)"
            }
            (PgError::Connect { reason, .. }, Some("28000"))
                if reason.contains("no pg_hba.conf entry") =>
            {
                "the server's pg_hba.conf has no line letting this user into this database \
                 from here (with or without TLS, as the message says): check the names, or \
                 ask the server's administrator"
            }
            (PgError::Connect { .. }, Some("28P01")) | (PgError::Connect { .. }, Some("28000")) => {
                "check the user and password (PGPASSWORD, the URL, or ~/.pgpass)"
            }
            (PgError::Connect { .. }, Some("3D000")) => {
                "the database does not exist: check the name, or create it first"
            }
            (PgError::Connect { reason, .. }, _)
                if reason.contains("failed to lookup address")
                    || reason.contains("Name or service not known") =>
            {
                "the host name does not resolve: check its spelling, DNS or /etc/hosts"
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
/// `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE` and the `PGSSL*` variables like libpq
/// does. Its `Display` never shows the password.
#[derive(Clone)]
pub struct ConnSpec {
    config: Config,
    tls: TlsParams,
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
        Self::parse_with_env(conninfo, &env)
    }

    /// [`ConnSpec::parse`] with the `PG*` variables read through `env`.
    fn parse_with_env(
        conninfo: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ConnSpec, PgError> {
        // tokio-postgres knows neither verify-ca/verify-full nor the certificate
        // files: those are ours, the rest is the driver's.
        let (rest, ssl) = match conninfo.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => take_ssl_params(s).map_err(PgError::BadConninfo)?,
            None => (String::new(), Vec::new()),
        };
        let tls = TlsParams::resolve(&ssl, env).map_err(PgError::BadConninfo)?;
        let mut config = match rest.trim() {
            "" => Config::new(),
            s => s.parse::<Config>().map_err(|e| {
                // The driver's message names the bad part; it never echoes values.
                PgError::BadConninfo(e.to_string())
            })?,
        };
        if config.get_hosts().is_empty() {
            match env("PGHOST") {
                Some(h) if h.starts_with('/') => {
                    config.host_path(h);
                }
                Some(h) => {
                    config.host(&h);
                }
                // Only addresses: they are the names too (TLS, ~/.pgpass), as in libpq;
                // never a socket folder, which would turn TLS off.
                None if !config.get_hostaddrs().is_empty() => {
                    for addr in config.get_hostaddrs().to_vec() {
                        config.host(addr.to_string());
                    }
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
        if config.get_ssl_negotiation() == SslNegotiation::Direct && tls.mode.allows_plain() {
            return Err(PgError::BadConninfo(format!(
                "weak sslmode \"{}\" may not be used with sslnegotiation=direct (use \
                 \"require\", \"verify-ca\" or \"verify-full\")",
                tls.mode
            )));
        }
        Ok(ConnSpec { config, tls })
    }

    /// The `sslmode` connections use.
    pub fn ssl_mode(&self) -> SslMode {
        self.tls.mode
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

    /// Connects, with TLS as `sslmode` says: `prefer` (the default) and `allow` try
    /// TLS and fall back to a plain connection when the server does not offer TLS, or
    /// refuses us over TLS (libpq does the same); `require` and the `verify-*` modes
    /// never connect without TLS.
    pub async fn connect(&self) -> Result<Client, PgError> {
        let mut config = self.config.clone();
        // libpq never uses TLS over Unix-domain sockets, whatever sslmode says.
        let unix_only = config.get_hostaddrs().is_empty()
            && config
                .get_hosts()
                .iter()
                .all(|h| !matches!(h, Host::Tcp(_)));
        if unix_only || self.tls.mode == SslMode::Disable {
            config.ssl_mode(DriverSslMode::Disable);
            return started(config.connect(NoTls).await).map_err(|e| self.connect_error(&e, None));
        }
        let tls = self
            .tls
            .connector(home_dir().as_deref())
            .map_err(|e| self.tls_error(e))?;
        if !self.tls.mode.allows_plain() {
            config.ssl_mode(DriverSslMode::Require);
            return started(config.connect(tls.clone()).await)
                .map_err(|e| self.connect_error(&e, Some(&tls)));
        }
        config.ssl_mode(DriverSslMode::Prefer);
        let first = match started(config.connect(tls.clone()).await) {
            Ok(client) => return Ok(client),
            Err(e) => self.connect_error(&e, Some(&tls)),
        };
        let refused_over_tls = match &first {
            PgError::Tls { .. } => true,
            PgError::Connect { code: Some(c), .. } => c.starts_with("28"),
            _ => false,
        };
        if !(tls.tried() && refused_over_tls) {
            return Err(first);
        }
        config.ssl_mode(DriverSslMode::Disable);
        match started(config.connect(NoTls).await) {
            Ok(client) => {
                tracing::info!(
                    "{self}: connected without TLS (sslmode={}) after TLS failed: {first}",
                    self.tls.mode
                );
                Ok(client)
            }
            Err(e) => Err(first.then_without_tls(&self.connect_error(&e, None))),
        }
    }

    fn tls_error(&self, e: TlsError) -> PgError {
        PgError::Tls {
            target: self.to_string(),
            reason: e.message,
            hint: e.hint,
        }
    }

    /// A driver error in words: TLS problems explained with their own hint, server
    /// errors with their SQLSTATE.
    fn connect_error(&self, e: &tokio_postgres::Error, tls: Option<&MakeRustls>) -> PgError {
        let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
        while let Some(inner) = src {
            if let Some(t) = inner.downcast_ref::<TlsError>() {
                return self.tls_error(t.clone());
            }
            // Alerts after the handshake (TLS 1.3 servers judge the client certificate
            // then) come as I/O errors carrying the rustls error.
            let rustls_error = inner
                .downcast_ref::<std::io::Error>()
                .and_then(rustls_error_in_io)
                .or_else(|| inner.downcast_ref::<rustls::Error>());
            if let (Some(r), Some(tls)) = (rustls_error, tls) {
                return self.tls_error(tls.explain(r, &self.host()));
            }
            // The driver's words when the server answers "no" to the SSL request.
            if inner.to_string() == "server does not support TLS" {
                return self.tls_error(TlsError {
                    message: format!(
                        "the server does not support TLS, and sslmode={} requires it",
                        self.tls.mode
                    ),
                    hint: Some(
                        "turn TLS on at the server (ssl = on, ssl_cert_file, ssl_key_file), \
                         or use sslmode=prefer or disable where an unencrypted connection is \
                         acceptable"
                            .into(),
                    ),
                });
            }
            src = inner.source();
        }
        let (reason, code) = describe(e);
        PgError::Connect {
            target: self.to_string(),
            reason,
            code,
        }
    }

    fn host(&self) -> String {
        match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => String::new(),
        }
    }
}

impl PgError {
    /// `prefer` tried TLS, then a plain connection, and both failed: say both.
    fn then_without_tls(self, second: &PgError) -> PgError {
        let again = match second {
            PgError::Connect { reason, .. } | PgError::Tls { reason, .. } => reason.as_str(),
            _ => "failed",
        };
        match self {
            PgError::Connect {
                target,
                reason,
                code,
            } => PgError::Connect {
                target,
                reason: format!("{reason} (over TLS); without TLS: {again}"),
                code,
            },
            PgError::Tls {
                target,
                reason,
                hint,
            } => PgError::Tls {
                target,
                reason: format!("{reason}; without TLS: {again}"),
                hint,
            },
            other => other,
        }
    }
}

/// Runs the connection's I/O on its own task and hands back the client.
fn started<T>(
    connected: Result<(Client, Connection<Socket, T>), tokio_postgres::Error>,
) -> Result<Client, tokio_postgres::Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (client, connection) = connected?;
    tokio::spawn(async move {
        // The server's reason for ending a session (terminated by an administrator,
        // shutting down) arrives here, not at the query that then fails with
        // "connection closed": say it where the user looks.
        if let Err(e) = connection.await {
            tracing::warn!("the server ended a connection: {}", describe(&e).0);
        }
    });
    Ok(client)
}

/// `$HOME`, else the password database's home folder: where `~/.postgresql/` is.
fn home_dir() -> Option<std::path::PathBuf> {
    if let Some(h) = env("HOME") {
        return Some(h.into());
    }
    // SAFETY: getpwuid returns static storage or null; the path is copied out at once.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if pw.is_null() || (*pw).pw_dir.is_null() {
            return None;
        }
        let dir = std::ffi::CStr::from_ptr((*pw).pw_dir)
            .to_string_lossy()
            .into_owned();
        Some(dir.into())
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
    fn ssl_settings_are_taken_before_the_driver_parses() {
        let c = ConnSpec::parse(Some(
            "postgresql://alice@db.example/clinic?sslmode=verify-full&sslrootcert=/ca.crt\
             &application_name=x",
        ))
        .unwrap();
        assert_eq!(c.ssl_mode(), SslMode::VerifyFull);
        assert_eq!(c.tls.rootcert.as_deref(), Some("/ca.crt"));
        assert_eq!(c.to_string(), "postgresql://alice@db.example:5432/clinic");
        let c = ConnSpec::parse(Some("host=db sslmode=verify-ca dbname=clinic")).unwrap();
        assert_eq!((c.ssl_mode(), c.dbname()), (SslMode::VerifyCa, "clinic"));
        let e = ConnSpec::parse(Some("host=db sslmode=bogus")).unwrap_err();
        assert_eq!(e.class(), Class::Usage);
        // Direct TLS (PostgreSQL 17) cannot fall back to a plain connection.
        let e = ConnSpec::parse(Some("host=db sslnegotiation=direct")).unwrap_err();
        assert!(e.to_string().contains("weak sslmode \"prefer\""), "{e}");
        let c = ConnSpec::parse(Some("host=db sslnegotiation=direct sslmode=require"));
        assert_eq!(c.unwrap().ssl_mode(), SslMode::Require);
    }

    #[test]
    fn an_address_alone_is_also_the_host_name() {
        let no_env = |_: &str| None;
        let c = ConnSpec::parse_with_env(Some("hostaddr=10.1.2.3 sslmode=require"), &no_env);
        assert_eq!(c.unwrap().host(), "10.1.2.3");
        // PGHOST names the host, as in libpq.
        let pghost = |v: &str| (v == "PGHOST").then(|| "db.example".to_owned());
        let c = ConnSpec::parse_with_env(Some("hostaddr=10.1.2.3"), &pghost).unwrap();
        assert_eq!(c.host(), "db.example");
        let pgsslmode = |v: &str| (v == "PGSSLMODE").then(|| "verify-full".to_owned());
        let c = ConnSpec::parse_with_env(Some("host=db"), &pgsslmode).unwrap();
        assert_eq!(c.ssl_mode(), SslMode::VerifyFull);
    }

    #[test]
    fn bad_conninfo_is_a_usage_error() {
        let e = ConnSpec::parse(Some("postgresql://h:notaport/db")).unwrap_err();
        assert_eq!(e.class(), Class::Usage);
    }
}
