//! TLS to PostgreSQL: every sslmode, root and client certificates, channel binding,
//! against throwaway servers holding certificates of a CA the test makes with the
//! `openssl` command.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pgbunker::sandbox::{find_bindir, Sandbox, ServerTls, Settings};

use crate::support::{ok, pgbunker, run_sql, stderr, World, KEY};

/// Extensions for the test CA and its certificates.
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_both]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
[server_localhost]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
";

/// A folder of PEM files: `ca` and `other-ca` (a CA nobody trusts), server
/// certificates for `localhost` + `127.0.0.1` (`server`) and for `localhost` only
/// (`server-localhost`), a client certificate for the role `certuser` from `ca`
/// (`client`) and one from `other-ca` (`stranger`). Keys are `NAME.key`, mode 0600.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("openssl.cnf"), OPENSSL_CNF).expect("write openssl.cnf");
        let pki = Pki { dir };
        pki.ca("ca", "pgbunker test CA");
        pki.ca("other-ca", "some other CA");
        pki.leaf("server", "localhost", "ca", "server_both", 2);
        pki.leaf("server-localhost", "localhost", "ca", "server_localhost", 3);
        pki.leaf("client", "certuser", "ca", "client", 4);
        pki.leaf("stranger", "certuser", "other-ca", "client", 5);
        pki
    }

    fn path(&self, file: &str) -> String {
        self.dir.path().join(file).display().to_string()
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "could not run openssl: {e}\nhint: the TLS tests make their certificates \
                     with the openssl command (apt install openssl)"
                )
            });
        assert!(
            out.status.success(),
            "openssl {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn ca(&self, name: &str, cn: &str) {
        let (key, crt, subj) = (
            format!("{name}.key"),
            format!("{name}.crt"),
            format!("/CN={cn}"),
        );
        self.openssl(&[
            "req",
            "-x509",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "3",
            "-subj",
            &subj,
            "-config",
            "openssl.cnf",
            "-extensions",
            "ca",
        ]);
    }

    fn leaf(&self, name: &str, cn: &str, ca: &str, extensions: &str, serial: u32) {
        let (key, csr, crt, subj) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("/CN={cn}"),
        );
        self.openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &subj,
            "-config",
            "openssl.cnf",
        ]);
        let (ca_crt, ca_key, serial) =
            (format!("{ca}.crt"), format!("{ca}.key"), serial.to_string());
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-set_serial",
            &serial,
            "-days",
            "3",
            "-out",
            &crt,
            "-extfile",
            "openssl.cnf",
            "-extensions",
            extensions,
        ]);
        std::fs::set_permissions(
            self.dir.path().join(&key),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod key");
    }

    /// A server with this certificate whose pg_hba.conf is `hba`, trusting client
    /// certificates from `ca`.
    fn server(&self, cert: &str, hba: &str) -> World {
        let settings = Settings {
            tls: Some(ServerTls {
                cert: self.dir.path().join(format!("{cert}.crt")),
                key: self.dir.path().join(format!("{cert}.key")),
                ca: Some(self.dir.path().join("ca.crt")),
            }),
            hba: Some(hba.to_owned()),
        };
        let bindir = find_bindir().expect("PostgreSQL server binaries");
        let pg = Sandbox::start_configured(bindir, &settings)
            .unwrap_or_else(|e| panic!("could not start a TLS server: {e}"));
        World {
            pg,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
}

/// Only TLS connections get in: `postgres` on trust, `alice` by SCRAM password,
/// `certuser` by client certificate; `bob` only without TLS.
const HBA_TLS_ONLY: &str = "\
local all all trust
hostssl all postgres 127.0.0.1/32 trust
hostssl all alice 127.0.0.1/32 scram-sha-256
hostssl all certuser 127.0.0.1/32 cert
hostnossl all bob 127.0.0.1/32 trust
";

struct Run<'a> {
    repo: String,
    /// An empty home folder: no `~/.postgresql/` of the machine leaks into the test.
    home: String,
    w: &'a World,
}

impl Run<'_> {
    fn url(&self, user: &str, host: &str, db: &str, query: &str) -> String {
        format!(
            "postgresql://{user}@{host}:{}/{db}?{query}",
            self.w.pg.port()
        )
    }

    fn backup_env(&self, url: &str, env: &[(&str, &str)]) -> Output {
        let mut all = vec![("PGBUNKER_KEY", KEY), ("HOME", self.home.as_str())];
        all.extend_from_slice(env);
        pgbunker(&["backup", "--repo", &self.repo, url], &all)
    }

    fn backup(&self, url: &str) -> Output {
        self.backup_env(url, &[])
    }

    /// Asserts a connection failure (exit 3) whose message holds every one of `needles`.
    fn refused(&self, out: &Output, needles: &[&str]) -> String {
        let msg = stderr(out);
        assert_eq!(out.status.code(), Some(3), "{msg}");
        for n in needles {
            assert!(msg.contains(n), "expected {n:?} in:\n{msg}");
        }
        msg
    }
}

fn start_run(w: &World) -> Run<'_> {
    let repo = w.init_repo("repo");
    let home = w.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    Run {
        repo,
        home: home.display().to_string(),
        w,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_and_restore_over_tls_in_every_mode() {
    let pki = Pki::new();
    let w = pki.server("server", HBA_TLS_ONLY);
    // The library's own connections (fixture, oracle) default to prefer: TLS here.
    w.fixture_db("heart", 1).await;
    let run = start_run(&w);
    let ca = pki.path("ca.crt");

    // require: encrypted, no certificate checked.
    ok(run.backup(&run.url("postgres", "127.0.0.1", "heart", "sslmode=require")));
    // verify-ca: the chain is checked, not the name (db.example.org is not in it).
    let url = run.url(
        "postgres",
        "db.example.org",
        "heart",
        &format!("sslmode=verify-ca&sslrootcert={ca}&hostaddr=127.0.0.1"),
    );
    ok(run.backup(&url));
    // verify-full by name and by IP address (both are in the certificate), the
    // settings from the environment this time.
    for host in ["localhost", "127.0.0.1"] {
        ok(run.backup_env(
            &run.url("postgres", host, "heart", ""),
            &[("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", &ca)],
        ));
    }
    // Restore over verify-full, key=value form, judged by the usual oracle.
    w.empty_db("restored").await;
    let target = format!(
        "host=localhost port={} user=postgres dbname=restored sslmode=verify-full sslrootcert='{ca}'",
        w.pg.port()
    );
    ok(pgbunker(
        &[
            "restore", "--repo", &run.repo, "latest", "--target", &target,
        ],
        &[("PGBUNKER_KEY", KEY), ("HOME", &run.home)],
    ));
    w.assert_same("heart", "restored").await;

    // verify-full refuses a name the certificate does not hold, and says which.
    let url = run.url(
        "postgres",
        "db.example.org",
        "heart",
        &format!("sslmode=verify-full&sslrootcert={ca}&hostaddr=127.0.0.1"),
    );
    let msg = run.refused(
        &run.backup(&url),
        &[
            "does not match host name \"db.example.org\"",
            "issued for localhost, 127.0.0.1",
            "hint:",
        ],
    );
    assert!(!msg.contains("panick"), "{msg}");
    // A CA that did not sign the server's certificate.
    let url = run.url(
        "postgres",
        "localhost",
        "heart",
        &format!("sslmode=verify-ca&sslrootcert={}", pki.path("other-ca.crt")),
    );
    run.refused(
        &run.backup(&url),
        &[
            "not signed by a CA in",
            "other-ca.crt",
            "hint: set sslrootcert",
        ],
    );
    // verify-full without any root certificate (the home folder has none).
    run.refused(
        &run.backup(&run.url("postgres", "localhost", "heart", "sslmode=verify-full")),
        &[
            ".postgresql/root.crt\" does not exist",
            "hint: give the CA certificate",
        ],
    );
    // A root certificate file named but missing.
    run.refused(
        &run.backup(&run.url(
            "postgres",
            "localhost",
            "heart",
            "sslmode=verify-ca&sslrootcert=/nonexistent/ca.crt",
        )),
        &["\"/nonexistent/ca.crt\" does not exist"],
    );
    // Without TLS the server's pg_hba.conf has no line for us: its words, our hint.
    run.refused(
        &run.backup(&run.url("postgres", "127.0.0.1", "heart", "sslmode=disable")),
        &[
            "no pg_hba.conf entry",
            "hint: the server accepts this connection only over TLS",
        ],
    );
    // A bad sslmode is a usage error.
    let bad = run.backup(&run.url("postgres", "127.0.0.1", "heart", "sslmode=verify_full"));
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("invalid sslmode value \"verify_full\""));

    // prefer retries without TLS when the server refuses us over TLS (libpq does).
    run_sql(&w, "heart", "CREATE ROLE bob LOGIN SUPERUSER").await;
    ok(run.backup(&run.url("bob", "127.0.0.1", "heart", "")));
    run.refused(
        &run.backup(&run.url("bob", "127.0.0.1", "heart", "sslmode=require")),
        &["no pg_hba.conf entry"],
    );

    // SCRAM over TLS binds the password exchange to the server's certificate.
    let password = "tls-s3cret-pw";
    run_sql(
        &w,
        "heart",
        &format!(
            "SET password_encryption = 'scram-sha-256'; \
             CREATE ROLE alice LOGIN SUPERUSER PASSWORD '{password}'"
        ),
    )
    .await;
    let url = format!(
        "postgresql://alice:{password}@localhost:{}/heart?sslmode=verify-full&sslrootcert={ca}\
         &channel_binding=require",
        w.pg.port()
    );
    let out = run.backup(&url);
    let all = format!("{}{}", crate::support::stdout(&out), stderr(&out));
    ok(out);
    assert!(!all.contains(password), "the password was printed: {all}");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_certificates_authenticate() {
    let pki = Pki::new();
    let w = pki.server("server", HBA_TLS_ONLY);
    run_sql(&w, "postgres", "CREATE ROLE certuser LOGIN SUPERUSER").await;
    run_sql(&w, "postgres", "CREATE DATABASE small").await;
    run_sql(
        &w,
        "small",
        "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 100) g",
    )
    .await;
    let run = start_run(&w);
    let ca = pki.path("ca.crt");
    let with = |extra: &str| {
        run.url(
            "certuser",
            "localhost",
            "small",
            &format!("sslmode=verify-full&sslrootcert={ca}{extra}"),
        )
    };

    let (cert, key) = (pki.path("client.crt"), pki.path("client.key"));
    ok(run.backup(&with(&format!("&sslcert={cert}&sslkey={key}"))));
    // The same from PGSSLCERT/PGSSLKEY, and from ~/.postgresql/ defaults.
    ok(run.backup_env(&with(""), &[("PGSSLCERT", &cert), ("PGSSLKEY", &key)]));
    let dotdir = Path::new(&run.home).join(".postgresql");
    std::fs::create_dir_all(&dotdir).unwrap();
    for (from, to) in [
        (&cert, "postgresql.crt"),
        (&key, "postgresql.key"),
        (&ca, "root.crt"),
    ] {
        std::fs::copy(from, dotdir.join(to)).unwrap();
    }
    ok(run.backup(&run.url("certuser", "localhost", "small", "sslmode=verify-full")));
    std::fs::remove_dir_all(&dotdir).unwrap();

    // No certificate: the server's words and a hint naming the settings.
    run.refused(
        &run.backup(&with("")),
        &[
            "requires a valid client certificate",
            "hint:",
            "sslcert and sslkey",
        ],
    );
    // A certificate from a CA the server does not trust.
    run.refused(
        &run.backup(&with(&format!(
            "&sslcert={}&sslkey={}",
            pki.path("stranger.crt"),
            pki.path("stranger.key")
        ))),
        &["the server rejected the client certificate"],
    );
    // A key others can read is refused before connecting, as libpq does.
    let open_key = PathBuf::from(pki.path("open.key"));
    std::fs::copy(&key, &open_key).unwrap();
    std::fs::set_permissions(&open_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    run.refused(
        &run.backup(&with(&format!(
            "&sslcert={cert}&sslkey={}",
            open_key.display()
        ))),
        &["has group or world access", "chmod 600"],
    );
    // A key file that holds no key: named, never shown.
    let bad_key = PathBuf::from(pki.path("bad.key"));
    std::fs::write(&bad_key, "c2VjcmV0LWtleS1ieXRlcw==\n").unwrap();
    std::fs::set_permissions(&bad_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let msg = run.refused(
        &run.backup(&with(&format!(
            "&sslcert={cert}&sslkey={}",
            bad_key.display()
        ))),
        &["bad.key", "no private key in it"],
    );
    assert!(!msg.contains("c2VjcmV0"), "{msg}");
    // The key of another certificate.
    run.refused(
        &run.backup(&with(&format!(
            "&sslcert={cert}&sslkey={}",
            pki.path("stranger.key")
        ))),
        &["do not belong together"],
    );
    // A certificate named but missing, and a key missing.
    run.refused(
        &run.backup(&with("&sslcert=/nonexistent/client.crt")),
        &["\"/nonexistent/client.crt\" does not exist"],
    );
    run.refused(
        &run.backup(&with(&format!(
            "&sslcert={cert}&sslkey=/nonexistent/client.key"
        ))),
        &["private key file \"/nonexistent/client.key\" does not exist"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_full_refuses_a_certificate_for_another_name() {
    let pki = Pki::new();
    let w = pki.server("server-localhost", HBA_TLS_ONLY);
    run_sql(&w, "postgres", "CREATE DATABASE small").await;
    run_sql(&w, "small", "CREATE TABLE t AS SELECT 1 AS id").await;
    let run = start_run(&w);
    let ca = pki.path("ca.crt");
    let url = |host: &str, mode: &str| {
        run.url(
            "postgres",
            host,
            "small",
            &format!("sslmode={mode}&sslrootcert={ca}"),
        )
    };

    run.refused(
        &run.backup(&url("127.0.0.1", "verify-full")),
        &[
            "server certificate verify failed",
            "does not match host name \"127.0.0.1\"",
            "issued for localhost",
        ],
    );
    ok(run.backup(&url("127.0.0.1", "verify-ca")));
    ok(run.backup(&url("localhost", "verify-full")));
}

#[tokio::test(flavor = "multi_thread")]
async fn prefer_falls_back_on_a_server_without_tls() {
    let w = World::start();
    run_sql(&w, "postgres", "CREATE DATABASE small").await;
    run_sql(&w, "small", "CREATE TABLE t AS SELECT 1 AS id").await;
    let run = start_run(&w);
    for query in ["", "sslmode=prefer", "sslmode=allow", "sslmode=disable"] {
        ok(run.backup(&run.url("postgres", "127.0.0.1", "small", query)));
    }
    // Asking for TLS is never answered with clear text.
    for out in [
        run.backup(&run.url("postgres", "127.0.0.1", "small", "sslmode=require")),
        run.backup_env(
            &run.url("postgres", "127.0.0.1", "small", ""),
            &[("PGSSLMODE", "require")],
        ),
    ] {
        run.refused(
            &out,
            &[
                "the server does not support TLS, and sslmode=require requires it",
                "hint: turn TLS on",
            ],
        );
    }
}
