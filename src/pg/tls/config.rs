//! The rustls client configuration for resolved settings: root certificates, the
//! client certificate and its key, read from files the libpq way. Nothing here ever
//! prints a key's contents: file problems name the file and the kind of problem only.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use zeroize::Zeroizing;

use super::explain::TlsError;
use super::settings::{SslMode, TlsParams};
use super::stream::MakeRustls;
use super::verifier::Lenient;

impl TlsParams {
    /// The rustls connector for these settings: reads the root, certificate and key
    /// files. `home` is where `.postgresql/` defaults live (None: no defaults).
    pub fn connector(&self, home: Option<&Path>) -> Result<MakeRustls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let default_file = |name: &str| home.map(|h| h.join(".postgresql").join(name));

        // Which root certificates, if any, check the server's chain.
        let roots = match (&self.rootcert, self.mode) {
            (_, m) if m.allows_plain() => None,
            (Some(s), _) if s == "system" => {
                Some((system_roots()?, "the system's trusted CAs".into()))
            }
            (Some(file), _) => Some((load_roots(Path::new(file), self.mode)?, file.clone())),
            (None, m) => match default_file("root.crt") {
                Some(p) if p.is_file() => {
                    let shown = p.display().to_string();
                    Some((load_roots(&p, m)?, shown))
                }
                Some(p) if m >= SslMode::VerifyCa => return Err(no_root_file(&p, m)),
                None if m >= SslMode::VerifyCa => {
                    return Err(TlsError::new(
                        format!(
                            "sslmode={m} needs a root certificate file and there is no home \
                             folder to find ~/.postgresql/root.crt in"
                        ),
                        Some(ROOT_HINT.into()),
                    ))
                }
                _ => None,
            },
        };
        let (verifier, rootcert): (Arc<dyn ServerCertVerifier>, _) = match roots {
            None => (
                Arc::new(Lenient {
                    algorithms,
                    chain: None,
                }),
                None,
            ),
            Some((store, shown)) => {
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                        .build()
                        .map_err(|e| {
                            TlsError::new(
                                format!("unusable root certificates in {shown}: {e}"),
                                None,
                            )
                        })?;
                if self.mode == SslMode::VerifyFull {
                    (webpki as Arc<dyn ServerCertVerifier>, Some(shown))
                } else {
                    let verifier = Lenient {
                        algorithms,
                        chain: Some(webpki),
                    };
                    (Arc::new(verifier) as _, Some(shown))
                }
            }
        };

        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::new(format!("TLS setup: {e}"), None))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);

        // A client certificate: named, or libpq's default file when it exists.
        let cert_file = match &self.cert {
            Some(f) => Some(PathBuf::from(f)),
            None => default_file("postgresql.crt").filter(|p| p.is_file()),
        };
        let mut config = match cert_file {
            None => builder.with_no_client_auth(),
            Some(cert_file) => {
                let key_file = match &self.key {
                    Some(k) => PathBuf::from(k),
                    None => default_file("postgresql.key").unwrap_or_default(),
                };
                let chain = load_cert_chain(&cert_file)?;
                let key = load_key(&key_file, &cert_file)?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    let what = match e {
                        rustls::Error::InconsistentKeys(_) => {
                            "do not belong together (the key is not the certificate's key)"
                                .to_owned()
                        }
                        other => format!("cannot be used: {other}"),
                    };
                    TlsError::new(
                        format!(
                            "client certificate \"{}\" and private key \"{}\" {what}",
                            cert_file.display(),
                            key_file.display()
                        ),
                        Some(
                            "set sslcert and sslkey (PGSSLCERT, PGSSLKEY) to a matching pair"
                                .into(),
                        ),
                    )
                })?
            }
        };
        // PostgreSQL 17 checks the ALPN protocol (and requires it with
        // sslnegotiation=direct); older servers ignore it.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        config.enable_sni = self.sni;
        let client_cert = config.client_auth_cert_resolver.has_certs();
        Ok(MakeRustls {
            config: Arc::new(config),
            mode: self.mode,
            rootcert,
            client_cert,
            tried: Arc::new(AtomicBool::new(false)),
        })
    }
}

const ROOT_HINT: &str = "give the CA certificate that signed the server's certificate with \
     sslrootcert=FILE (or PGSSLROOTCERT), use sslrootcert=system for the system's trusted \
     CAs, or sslmode=require to encrypt without verifying the server";

fn no_root_file(path: &Path, mode: SslMode) -> TlsError {
    TlsError::new(
        format!(
            "root certificate file \"{}\" does not exist (sslmode={mode} checks the server's \
             certificate against it)",
            path.display()
        ),
        Some(ROOT_HINT.into()),
    )
}

fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    store.add_parsable_certificates(found.certs);
    if store.is_empty() {
        return Err(TlsError::new(
            "sslrootcert=system: no trusted CA certificates found on this system".into(),
            Some("install the ca-certificates package, or name a file with sslrootcert".into()),
        ));
    }
    Ok(store)
}

/// A PEM problem in words, never with the file's bytes (a key file's lines are secret).
fn pem_problem(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::Io(io) => io.to_string(),
        E::NoItemsFound => "no PEM item of the expected kind in it".into(),
        _ => "it is not a valid PEM file".into(),
    }
}

fn file_error(what: &str, path: &Path, problem: String) -> TlsError {
    TlsError::new(format!("{what} \"{}\": {problem}", path.display()), None)
}

fn load_roots(path: &Path, mode: SslMode) -> Result<RootCertStore, TlsError> {
    if !path.exists() {
        return Err(no_root_file(path, mode));
    }
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            file_error(
                "could not read root certificate file",
                path,
                pem_problem(&e),
            )
        })?;
    let mut store = RootCertStore::empty();
    let (_, bad) = store.add_parsable_certificates(certs);
    if store.is_empty() {
        let problem = if bad > 0 {
            format!("none of its {bad} certificates can be used")
        } else {
            "it holds no certificate (PEM \"BEGIN CERTIFICATE\" expected)".into()
        };
        return Err(file_error(
            "could not use root certificate file",
            path,
            problem,
        ));
    }
    Ok(store)
}

fn load_cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    if !path.is_file() {
        return Err(TlsError::new(
            format!("certificate file \"{}\" does not exist", path.display()),
            Some("set sslcert (PGSSLCERT) to the client certificate, or leave it out".into()),
        ));
    }
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| file_error("could not read certificate file", path, pem_problem(&e)))?;
    if chain.is_empty() {
        return Err(file_error(
            "could not read certificate file",
            path,
            "it holds no certificate (PEM \"BEGIN CERTIFICATE\" expected)".into(),
        ));
    }
    Ok(chain)
}

/// The private key, checked like libpq does: present, owner-only permissions, PEM.
fn load_key(path: &Path, cert: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let key_hint =
        || Some("set sslkey (PGSSLKEY) to the client certificate's private key (PEM)".to_owned());
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(TlsError::new(
                format!(
                    "certificate \"{}\" given, but private key file \"{}\" does not exist",
                    cert.display(),
                    path.display()
                ),
                key_hint(),
            ))
        }
        Err(e) => {
            return Err(file_error(
                "could not read private key file",
                path,
                e.to_string(),
            ))
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        let mode = meta.mode();
        let too_open = meta.is_file()
            && ((meta.uid() == euid && mode & 0o077 != 0)
                || (meta.uid() == 0 && mode & 0o037 != 0));
        if too_open {
            return Err(TlsError::new(
                format!(
                    "private key file \"{}\" has group or world access",
                    path.display()
                ),
                Some(
                    "the file must have permissions u=rw (0600) or less if owned by the current \
                     user, or u=rw,g=r (0640) or less if owned by root: chmod 600 it"
                        .into(),
                ),
            ));
        }
    }
    let bytes = Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| file_error("could not read private key file", path, e.to_string()))?,
    );
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    if contains(b"ENCRYPTED PRIVATE KEY") || contains(b"Proc-Type: 4,ENCRYPTED") {
        return Err(TlsError::new(
            format!(
                "private key file \"{}\" is encrypted, and pgbunker cannot ask for its passphrase",
                path.display()
            ),
            Some(
                "store the key unencrypted with owner-only permissions (openssl pkey -in KEY \
                 -out KEY.plain; chmod 600 KEY.plain)"
                    .into(),
            ),
        ));
    }
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        let problem = match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no private key in it (PEM PKCS#8, PKCS#1 or SEC1 expected)".to_owned()
            }
            other => pem_problem(&other),
        };
        TlsError {
            message: format!(
                "could not load private key file \"{}\": {problem}",
                path.display()
            ),
            hint: key_hint(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::settings::tests::taken;
    use super::*;

    #[test]
    fn verify_modes_need_a_root_certificate() {
        let home = tempfile::tempdir().unwrap();
        let p = TlsParams::resolve(&taken(&[("sslmode", "verify-full")]), |_| None).unwrap();
        let e = p.connector(Some(home.path())).err().unwrap();
        assert!(
            e.message.contains(".postgresql/root.crt\" does not exist"),
            "{e}"
        );
        assert!(e.hint.unwrap().contains("sslrootcert"));
        // require encrypts without checking when there is no root.crt.
        let p = TlsParams::resolve(&taken(&[("sslmode", "require")]), |_| None).unwrap();
        assert!(p.connector(Some(home.path())).unwrap().rootcert.is_none());
    }

    #[test]
    fn key_files_are_checked_without_showing_them() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.key");
        let secret =
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0IGtleSBieXRlcw==\n-----END PRIVATE KEY-----\n";
        std::fs::write(&key, secret).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let cert = dir.path().join("c.crt");
        let e = load_key(&key, &cert).unwrap_err();
        assert!(e.message.contains("group or world access"), "{e}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        // Parsed as PEM, but not a key any provider could use: still never echoed.
        if let Err(e) = load_key(&key, &cert) {
            assert!(!format!("{e} {:?}", e.hint).contains("c2VjcmV0"), "{e}");
        }
        std::fs::write(&key, "not a key at all\nc2VjcmV0\n").unwrap();
        let e = load_key(&key, &cert).unwrap_err();
        assert!(e.message.contains("no private key in it"), "{e}");
        assert!(!e.message.contains("c2VjcmV0"));
        std::fs::write(&key, "-----BEGIN ENCRYPTED PRIVATE KEY-----\nc2VjcmV0\n").unwrap();
        assert!(load_key(&key, &cert)
            .unwrap_err()
            .message
            .contains("is encrypted"));
        let e = load_key(&dir.path().join("none.key"), &cert).unwrap_err();
        assert!(e.message.contains("none.key\" does not exist"), "{e}");
    }
}
