//! A throwaway PostgreSQL cluster: `initdb` into a temporary folder, started on a free
//! loopback port with its own socket folder, stopped and removed on drop (also when a
//! test panics). Used by the test suite, `pgbunker demo` and the benchmarks, so none of
//! them needs a server set up beforehand.
//!
//! PostgreSQL refuses to run as root; when we are root the cluster runs as the
//! unprivileged `nobody` user (or `PGBUNKER_SANDBOX_USER`).

pub mod fixture;
pub mod s3;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use thiserror::Error;

use crate::error::{Class, Classify};
use crate::pg::{ConnSpec, PgError};

#[derive(Debug, Error)]
pub enum SandboxError {
    #[error("no PostgreSQL server binaries found (looked at {0})")]
    NoBinaries(String),
    #[error("could not run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed: {output}")]
    Failed { program: String, output: String },
    #[error("no such OS user {0:?} to run PostgreSQL as (the server refuses root)")]
    NoUser(String),
    #[error("temporary folder: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Pg(#[from] PgError),
}

impl Classify for SandboxError {
    fn class(&self) -> Class {
        match self {
            SandboxError::Pg(e) => e.class(),
            _ => Class::Io,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            SandboxError::NoBinaries(_) => Some(format!(
                "install the PostgreSQL server (apt install postgresql), or fetch a pinned \
                 build from the source checkout with `{}` (needs npm), or set \
                 PGBUNKER_PG_BIN to the folder holding initdb and pg_ctl",
                fetch_command()
            )),
            SandboxError::Spawn { program, .. } if program.contains("moto_server") => Some(
                "install the S3 test server with `pip install 'moto[server]'` or set \
                 PGBUNKER_MOTO_SERVER to its path"
                    .into(),
            ),
            _ => None,
        }
    }
}

fn has_initdb(p: &Path) -> bool {
    p.join("initdb").is_file() && p.join("pg_ctl").is_file()
}

/// Finds the server binaries: `PGBUNKER_PG_BIN`, else `pg_config --bindir`, else the
/// newest `/usr/lib/postgresql/*/bin`.
pub fn find_bindir() -> Result<PathBuf, SandboxError> {
    let mut looked = Vec::new();
    if let Ok(dir) = std::env::var("PGBUNKER_PG_BIN") {
        let p = PathBuf::from(&dir);
        if has_initdb(&p) {
            return Ok(p);
        }
        return Err(SandboxError::NoBinaries(format!(
            "PGBUNKER_PG_BIN={dir} (no initdb and pg_ctl there)"
        )));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_initdb(&p) {
            return Ok(p);
        }
        looked.push(format!("pg_config --bindir ({})", p.display()));
    } else {
        looked.push("pg_config (not on PATH)".into());
    }
    let mut candidates = versioned_bins(Path::new("/usr/lib/postgresql"));
    looked.push("/usr/lib/postgresql/*/bin".into());
    if let Some((_, p)) = candidates.pop() {
        return Ok(p);
    }
    // The builds scripts/fetch-postgres installed (what `demo` fetches).
    let fetched = fetched_prefix();
    let mut fetched_bins = versioned_bins(&fetched);
    looked.push(format!("{}/*/bin", fetched.display()));
    fetched_bins
        .pop()
        .map(|(_, p)| p)
        .ok_or_else(|| SandboxError::NoBinaries(looked.join(", ")))
}

/// The `<major>/bin` folders under `root` that hold a server, oldest first.
fn versioned_bins(root: &Path) -> Vec<(u32, PathBuf)> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, p)| has_initdb(p))
        .collect();
    found.sort();
    found
}

/// Where scripts/fetch-postgres puts its builds: `PGBUNKER_PG_PREFIX`, else
/// `/opt/pgbunker-pg` for root and `~/.cache/pgbunker/pgbunker-pg` for anyone else
/// (as scripts/test does).
pub fn fetched_prefix() -> PathBuf {
    if let Some(p) = std::env::var_os("PGBUNKER_PG_PREFIX").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/opt/pgbunker-pg");
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    cache.join("pgbunker/pgbunker-pg")
}

/// The command that fetches a server the sandbox can run (PostgreSQL 18, pinned).
pub fn fetch_command() -> String {
    format!(
        "PGBUNKER_PG_PREFIX={} scripts/fetch-postgres 18",
        fetched_prefix().display()
    )
}

/// The uid/gid to run the server as, when we are root.
fn unprivileged_user() -> Result<Option<(u32, u32)>, SandboxError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = std::env::var("PGBUNKER_SANDBOX_USER").unwrap_or_else(|_| "nobody".into());
    let c = std::ffi::CString::new(name.clone()).map_err(|_| SandboxError::NoUser(name.clone()))?;
    // SAFETY: getpwnam returns static storage or null; fields are copied out at once.
    unsafe {
        let pw = libc::getpwnam(c.as_ptr());
        if pw.is_null() {
            return Err(SandboxError::NoUser(name));
        }
        Ok(Some(((*pw).pw_uid, (*pw).pw_gid)))
    }
}

pub(crate) fn free_port() -> Result<u16, SandboxError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A server certificate and key (PEM files), and the CA whose client certificates
/// the server accepts (`ssl_ca_file`, for `cert` authentication).
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: Option<PathBuf>,
}

/// How a sandbox is configured before its first start; the default is plain TCP on
/// loopback with trust authentication.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `ssl = on` with these files.
    pub tls: Option<ServerTls>,
    /// The whole `pg_hba.conf` (e.g. `hostssl` lines only).
    pub hba: Option<String>,
}

/// A running throwaway cluster. The superuser is `postgres`, trust authentication on
/// loopback only.
pub struct Sandbox {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    port: u16,
    run_as: Option<(u32, u32)>,
    running: bool,
}

impl Sandbox {
    /// Runs initdb and starts the server found by [`find_bindir`].
    pub fn start() -> Result<Sandbox, SandboxError> {
        Self::start_with(find_bindir()?)
    }

    /// Like [`Sandbox::start`], with the server binaries in `bindir` (a second server
    /// version in the same test, e.g. backup on 13 and restore on 18).
    pub fn start_with(bindir: PathBuf) -> Result<Sandbox, SandboxError> {
        Self::start_configured(bindir, &Settings::default())
    }

    /// Like [`Sandbox::start_with`], configured before the first start: TLS, and the
    /// whole `pg_hba.conf`.
    pub fn start_configured(bindir: PathBuf, settings: &Settings) -> Result<Sandbox, SandboxError> {
        if !has_initdb(&bindir) {
            return Err(SandboxError::NoBinaries(format!(
                "{} (no initdb and pg_ctl there)",
                bindir.display()
            )));
        }
        let mut sb = Self::empty(bindir)?;
        sb.run(
            "initdb",
            &[
                "-D",
                &sb.data_dir(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ],
        )?;
        if let Some(tls) = &settings.tls {
            sb.install_tls(tls)?;
        }
        if let Some(hba) = &settings.hba {
            std::fs::write(sb.dir.path().join("data").join("pg_hba.conf"), hba)?;
        }
        sb.launch()?;
        Ok(sb)
    }

    /// Copies the PEM files into the data folder, owned by the server's user (the
    /// server refuses a key others can read), and turns `ssl` on.
    fn install_tls(&self, tls: &ServerTls) -> Result<(), SandboxError> {
        use std::os::unix::fs::PermissionsExt;
        let data = self.dir.path().join("data");
        let mut files = vec![(&tls.cert, "server.crt"), (&tls.key, "server.key")];
        if let Some(ca) = &tls.ca {
            files.push((ca, "root.crt"));
        }
        for (from, name) in files {
            let to = data.join(name);
            std::fs::copy(from, &to)?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600))?;
            if let Some((uid, gid)) = self.run_as {
                std::os::unix::fs::chown(&to, Some(uid), Some(gid))?;
            }
        }
        let mut conf = String::from(
            "\n# pgbunker sandbox: TLS\nssl = on\nssl_cert_file = 'server.crt'\n\
             ssl_key_file = 'server.key'\n",
        );
        if tls.ca.is_some() {
            conf.push_str("ssl_ca_file = 'root.crt'\n");
        }
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))?
            .write_all(conf.as_bytes())?;
        Ok(())
    }

    /// A hot standby of this cluster (pg_basebackup, streaming replication), for
    /// backups taken from a replica.
    pub fn start_standby(&self) -> Result<Sandbox, SandboxError> {
        let mut sb = Self::empty(self.bindir.clone())?;
        let port = self.port.to_string();
        sb.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                &sb.data_dir(),
                "-R",
                "-X",
                "stream",
                "--no-sync",
                "--checkpoint=fast",
            ],
        )?;
        sb.launch()?;
        Ok(sb)
    }

    /// A temporary folder the server user owns, nothing in it yet.
    fn empty(bindir: PathBuf) -> Result<Sandbox, SandboxError> {
        let run_as = unprivileged_user()?;
        let dir = tempfile::Builder::new().prefix("pgbunker-pg-").tempdir()?;
        if let Some((uid, gid)) = run_as {
            let c = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes())
                .map_err(|_| std::io::Error::other("temporary path contains NUL"))?;
            // SAFETY: a valid C string path and plain ids.
            if unsafe { libc::chown(c.as_ptr(), uid, gid) } != 0 {
                return Err(std::io::Error::last_os_error().into());
            }
        }
        Ok(Sandbox {
            dir,
            bindir,
            port: 0,
            run_as,
            running: false,
        })
    }

    /// Starts the server on a free port; retries on another port if the chosen one
    /// was taken in the meantime.
    fn launch(&mut self) -> Result<(), SandboxError> {
        let mut last = None;
        for _ in 0..3 {
            self.port = free_port()?;
            let opts = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off -c max_connections=60 \
                 -c shared_buffers=64MB -c max_wal_size=2GB",
                self.port,
                self.dir.path().display()
            );
            let log = self.dir.path().join("server.log");
            match self.run(
                "pg_ctl",
                &[
                    "-D",
                    &self.data_dir(),
                    "-l",
                    &log.display().to_string(),
                    "-w",
                    "-t",
                    "120",
                    "-o",
                    &opts,
                    "start",
                ],
            ) {
                Ok(_) => {
                    self.running = true;
                    return Ok(());
                }
                Err(e) => {
                    let tail = std::fs::read_to_string(&log).unwrap_or_default();
                    let tail: String = tail.lines().rev().take(15).collect::<Vec<_>>().join("\n");
                    last = Some(SandboxError::Failed {
                        program: "pg_ctl start".into(),
                        output: format!("{e}\nserver log (last lines, newest first):\n{tail}"),
                    });
                }
            }
        }
        Err(last.expect("three attempts were made"))
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<String, SandboxError> {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(self.bindir.join(program));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("LC_ALL", "C")
            .env_remove("PGDATA");
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        let out = cmd.output().map_err(|source| SandboxError::Spawn {
            program: program.into(),
            source,
        })?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            return Err(SandboxError::Failed {
                program: program.into(),
                output: text,
            });
        }
        Ok(text)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A new empty folder beside the cluster's data that the server may use (its
    /// user owns it): where a test puts a tablespace.
    pub fn server_folder(&self, name: &str) -> Result<PathBuf, SandboxError> {
        let path = self.dir.path().join(name);
        std::fs::create_dir(&path)?;
        self.hand_over(&path)?;
        Ok(path)
    }

    /// Gives `path` to the server's user, e.g. a file system a test mounted on a
    /// [`Sandbox::server_folder`].
    pub fn hand_over(&self, path: &Path) -> Result<(), SandboxError> {
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
        }
        Ok(())
    }

    /// The folder holding the server binaries this cluster runs.
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// A libpq URL for database `db` as the superuser.
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn conn(&self, db: &str) -> ConnSpec {
        ConnSpec::parse(Some(&self.url(db))).expect("a URL we built is valid")
    }

    /// Creates an empty database and returns how to reach it.
    pub async fn create_database(&self, name: &str) -> Result<ConnSpec, SandboxError> {
        let admin = self.conn("postgres").connect().await?;
        admin
            .batch_execute(&format!(
                "CREATE DATABASE \"{}\" TEMPLATE template0 ENCODING 'UTF8'",
                name.replace('"', "\"\"")
            ))
            .await
            .map_err(|e| PgError::query(format!("create database {name}"), e))?;
        Ok(self.conn(name))
    }

    /// Creates a login role (a superuser if `superuser`) that must authenticate with
    /// `password` (SCRAM) over TCP, so tests exercise real password checks and
    /// unprivileged roles; `postgres` keeps trust.
    pub async fn add_password_role(
        &self,
        role: &str,
        password: &str,
        superuser: bool,
    ) -> Result<(), SandboxError> {
        let admin = self.conn("postgres").connect().await?;
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let lit = |s: &str| format!("'{}'", s.replace('\'', "''"));
        admin
            .batch_execute(&format!(
                "SET password_encryption = 'scram-sha-256'; \
                 CREATE ROLE {} LOGIN {} PASSWORD {}",
                q(role),
                if superuser {
                    "SUPERUSER"
                } else {
                    "NOSUPERUSER"
                },
                lit(password)
            ))
            .await
            .map_err(|e| PgError::query(format!("create role {role}"), e))?;
        let hba = self.dir.path().join("data").join("pg_hba.conf");
        let old = std::fs::read_to_string(&hba)?;
        std::fs::write(
            &hba,
            format!("host all {} 127.0.0.1/32 scram-sha-256\n{old}", q(role)),
        )?;
        self.run("pg_ctl", &["-D", &self.data_dir(), "reload"])?;
        // The postmaster rereads the file asynchronously.
        std::thread::sleep(std::time::Duration::from_millis(300));
        Ok(())
    }

    /// Restarts the server with a fast shutdown (every session is terminated), on the
    /// same port: what a failover or a maintenance restart does to running clients.
    pub fn restart(&self) -> Result<(), SandboxError> {
        let log = self.dir.path().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data_dir(),
                "-l",
                &log.display().to_string(),
                "-m",
                "fast",
                "-w",
                "-t",
                "120",
                "restart",
            ],
        )?;
        Ok(())
    }

    /// Stops the server now (also done on drop).
    pub fn stop(&mut self) {
        if self.running {
            let _ = self.run(
                "pg_ctl",
                &["-D", &self.data_dir(), "-m", "immediate", "-w", "stop"],
            );
            self.running = false;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop();
    }
}
