//! A throwaway S3 API server for tests and trials: `moto_server` (PyPI `moto[server]`)
//! on a free loopback port, killed on drop. A real HTTP S3 implementation, so
//! signatures, conditional puts, multipart uploads and listings go over the wire.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, SandboxError};

/// Credentials moto accepts; they only ever reach a loopback server.
pub const ACCESS_KEY_ID: &str = "pgbunker-test";
pub const SECRET_ACCESS_KEY: &str = "pgbunker-test-secret";

pub struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    /// Starts `moto_server` (or `$PGBUNKER_MOTO_SERVER`) and waits until it answers.
    pub fn start() -> Result<S3Server, SandboxError> {
        let program =
            std::env::var("PGBUNKER_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = free_port()?;
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| SandboxError::Spawn {
                program: program.clone(),
                source,
            })?;
        let mut server = S3Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if server.request("GET", "/").is_ok() {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(SandboxError::Failed {
                    program,
                    output: format!("exited with {status} before answering"),
                });
            }
            if Instant::now() > deadline {
                return Err(SandboxError::Failed {
                    program,
                    output: "did not answer within 60 s".into(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket (moto does not check signatures on this call).
    pub fn create_bucket(&self, bucket: &str) -> Result<(), SandboxError> {
        let (status, _) = self.request("PUT", &format!("/{bucket}"))?;
        if status != 200 {
            return Err(SandboxError::Failed {
                program: "moto_server".into(),
                output: format!("creating bucket {bucket} answered HTTP {status}"),
            });
        }
        Ok(())
    }

    /// The repository URL of `prefix` in `bucket` on this server.
    pub fn repo_url(&self, bucket: &str, prefix: &str) -> String {
        format!(
            "s3://{bucket}/{prefix}?endpoint=http://127.0.0.1:{}&region=us-east-1&\
             path_style=true&allow_http=true",
            self.port
        )
    }

    /// The environment a client needs to reach this server.
    pub fn env(&self) -> [(&'static str, &'static str); 2] {
        [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
        ]
    }

    /// The keys in `bucket` (the first 1000), so a test can see what a run left
    /// behind without going through the code under test.
    pub fn keys(&self, bucket: &str) -> Result<Vec<String>, SandboxError> {
        self.listed_keys(bucket, "list-type=2")
    }

    /// The keys of multipart uploads begun and neither completed nor aborted in
    /// `bucket`: invisible to [`S3Server::keys`], yet kept (and billed) by a store.
    pub fn unfinished_uploads(&self, bucket: &str) -> Result<Vec<String>, SandboxError> {
        self.listed_keys(bucket, "uploads")
    }

    fn listed_keys(&self, bucket: &str, query: &str) -> Result<Vec<String>, SandboxError> {
        let (status, body) = self.request("GET", &format!("/{bucket}?{query}"))?;
        if status != 200 {
            return Err(SandboxError::Failed {
                program: "moto_server".into(),
                output: format!("listing {bucket}?{query} answered HTTP {status}"),
            });
        }
        Ok(body
            .split("<Key>")
            .skip(1)
            .filter_map(|k| k.split_once("</Key>").map(|(k, _)| k.to_string()))
            .collect())
    }

    /// One bare HTTP/1.0 request; returns the status code and the body.
    fn request(&self, method: &str, path: &str) -> Result<(u16, String), SandboxError> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\r\n",
            self.port
        )?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| SandboxError::Failed {
                program: "moto_server".into(),
                output: "answered with something that is not HTTP".into(),
            })?;
        let body = answer
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        Ok((status, body))
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
