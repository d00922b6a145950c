//! TLS to PostgreSQL the libpq way, on rustls (ring provider).
//!
//! tokio-postgres only knows `sslmode` disable/prefer/require and no certificate
//! files, and refuses the other `ssl*` keywords, so [`take_ssl_params`] takes them out
//! of the connection string first and [`TlsParams`] resolves them (with `PGSSL*` and
//! `~/.postgresql/` defaults) into a [`MakeRustls`] connector:
//!
//! | sslmode | encrypted | server certificate checked |
//! |---|---|---|
//! | disable | never | — |
//! | allow, prefer | if the server agrees | no |
//! | require | always | no; chain only when a root certificate file is given or `~/.postgresql/root.crt` exists (libpq's habit) |
//! | verify-ca | always | chain against `sslrootcert` |
//! | verify-full | always | chain and host name |
//!
//! Nothing here ever prints a key's contents: file problems name the file and the
//! kind of problem only.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};
use sha2::Digest;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::Socket;
use zeroize::Zeroizing;

use super::conninfo;

/// libpq's `sslmode`, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether a connection without TLS is acceptable.
    pub fn allows_plain(self) -> bool {
        self <= SslMode::Prefer
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The keywords taken out of a connection string before tokio-postgres sees it.
const OURS: &[&str] = &["sslmode", "sslrootcert", "sslcert", "sslkey", "sslsni"];

/// libpq keywords we know but do not implement: a clear refusal beats tokio-postgres'
/// "unknown option", and silently ignoring e.g. a CRL would be worse.
const UNSUPPORTED: &[&str] = &[
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "sslcompression",
    "sslcertmode",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "sslkeylogfile",
    "requirepeer",
];

/// Splits `conninfo` (URL or `key=value` form) into what tokio-postgres can parse
/// and the `ssl*` settings it cannot, decoded. Everything else is left byte for byte.
pub(crate) fn take_ssl_params(conninfo: &str) -> Result<(String, Vec<(String, String)>), String> {
    if conninfo::is_url(conninfo) {
        take_from_url(conninfo)
    } else {
        take_from_keywords(conninfo)
    }
}

fn ours(key: &str) -> Result<bool, String> {
    if UNSUPPORTED.contains(&key) {
        return Err(format!("{key} is not supported by pgbunker"));
    }
    Ok(OURS.contains(&key))
}

fn take_from_url(url: &str) -> Result<(String, Vec<(String, String)>), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), Vec::new()));
    };
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for (piece, k, v) in conninfo::query_pairs(query.as_bytes()) {
        if piece.is_empty() {
            continue;
        }
        // Pieces of a str cut at ASCII bytes: nothing is lost.
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let key = conninfo::percent_decoded_strict(&text(k))?;
        if ours(&key)? {
            taken.push((key, conninfo::percent_decoded_strict(&text(v))?));
        } else {
            kept.push(text(piece));
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, taken))
}

/// libpq's `key = value` syntax (see [`conninfo`]).
fn take_from_keywords(s: &str) -> Result<(String, Vec<(String, String)>), String> {
    let mut rest = String::new();
    let mut taken = Vec::new();
    for pair in conninfo::pairs(s) {
        // Not a key=value string: leave the error to tokio-postgres, which words it
        // the usual way.
        let Ok(pair) = pair else {
            return Ok((s.to_owned(), Vec::new()));
        };
        let key = &s[pair.key.clone()];
        if pair.value.unterminated {
            return Err(format!("unterminated quoted value for {key}"));
        }
        if ours(key)? {
            let value =
                String::from_utf8(pair.value.decoded).map_err(|_| format!("{key} is not UTF-8"))?;
            taken.push((key.to_owned(), value));
        } else {
            if !rest.is_empty() {
                rest.push(' ');
            }
            rest.push_str(&s[pair.span]);
        }
    }
    Ok((rest, taken))
}

/// The resolved TLS settings of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TlsParams {
    pub mode: SslMode,
    /// `sslrootcert` / `PGSSLROOTCERT`: a file, or `system` for the OS's trusted CAs.
    pub rootcert: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub sni: bool,
}

impl TlsParams {
    /// From the keywords [`take_ssl_params`] took (the last one wins, as in libpq),
    /// else the `PGSSL*` environment, else libpq's defaults.
    pub fn resolve(
        taken: &[(String, String)],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<TlsParams, String> {
        let get = |key: &str, var: &str| {
            taken
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .or_else(|| env(var))
                .filter(|v| !v.is_empty())
        };
        let rootcert = get("sslrootcert", "PGSSLROOTCERT");
        let system = rootcert.as_deref() == Some("system");
        let mode = match get("sslmode", "PGSSLMODE") {
            Some(m) => SslMode::parse(&m).ok_or_else(|| {
                format!(
                    "invalid sslmode value {m:?} (disable, allow, prefer, require, verify-ca \
                     or verify-full)"
                )
            })?,
            // libpq: the system's CAs are only worth anything with the host name checked.
            None if system => SslMode::VerifyFull,
            None => SslMode::Prefer,
        };
        if system && mode != SslMode::VerifyFull {
            return Err(format!(
                "weak sslmode {mode:?} may not be used with sslrootcert=system (use \
                 \"verify-full\")",
                mode = mode.as_str()
            ));
        }
        let sni = match get("sslsni", "PGSSLSNI").as_deref() {
            None | Some("1") => true,
            Some("0") => false,
            Some(other) => return Err(format!("invalid sslsni value {other:?} (0 or 1)")),
        };
        Ok(TlsParams {
            mode,
            rootcert,
            cert: get("sslcert", "PGSSLCERT"),
            key: get("sslkey", "PGSSLKEY"),
            sni,
        })
    }

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

/// The certificate checks short of `verify-full`. The handshake signatures are always
/// checked, so the session is bound to the certificate the server showed (which
/// channel binding relies on).
/// - `chain: None`: `require` without root certificates: encrypted, anyone's
///   certificate accepted (as libpq).
/// - `chain: Some(webpki)`: `verify-ca`: the chain must lead to a trusted root; the
///   host name is not checked. webpki checks the chain first and the name last, so a
///   name error means the chain passed.
#[derive(Debug)]
struct Lenient {
    algorithms: WebPkiSupportedAlgorithms,
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS failure in words, with what to do about it.
#[derive(Debug, Clone)]
pub struct TlsError {
    pub message: String,
    pub hint: Option<String>,
}

impl TlsError {
    fn new(message: String, hint: Option<String>) -> TlsError {
        TlsError { message, hint }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TlsError {}

/// tokio-postgres' [`MakeTlsConnect`] on rustls; one per connection attempt (it
/// remembers whether a TLS handshake was tried, for `prefer`'s retry without TLS).
#[derive(Clone)]
pub(crate) struct MakeRustls {
    config: Arc<ClientConfig>,
    mode: SslMode,
    /// Where the trusted roots came from, for messages; None when nothing is checked.
    rootcert: Option<String>,
    client_cert: bool,
    tried: Arc<AtomicBool>,
}

impl MakeRustls {
    /// Whether a TLS handshake was started (the server agreed to TLS).
    pub fn tried(&self) -> bool {
        self.tried.load(Ordering::Relaxed)
    }

    /// A rustls failure in words: certificate problems name the host and the file.
    pub fn explain(&self, e: &rustls::Error, host: &str) -> TlsError {
        explain(
            e,
            host,
            self.mode,
            self.rootcert.as_deref(),
            self.client_cert,
        )
    }
}

impl MakeTlsConnect<Socket> for MakeRustls {
    type Stream = RustlsStream<Socket>;
    type TlsConnect = RustlsConnect;
    type Error = TlsError;

    fn make_tls_connect(&mut self, host: &str) -> Result<RustlsConnect, TlsError> {
        let name = match ServerName::try_from(host.to_owned()) {
            Ok(n) => n,
            // Not checked in these modes: an IP address name sends no SNI either.
            Err(_) if self.mode != SslMode::VerifyFull => {
                ServerName::IpAddress(IpAddr::V4(Ipv4Addr::UNSPECIFIED).into())
            }
            Err(_) => {
                return Err(TlsError::new(
                    format!("host name \"{host}\" cannot be checked against a certificate"),
                    Some("connect by a DNS name or an IP address".into()),
                ))
            }
        };
        Ok(RustlsConnect {
            maker: self.clone(),
            host: host.to_owned(),
            name,
        })
    }
}

pub(crate) struct RustlsConnect {
    maker: MakeRustls,
    host: String,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = TlsError;
    type Future = Pin<Box<dyn Future<Output = Result<RustlsStream<S>, TlsError>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        self.maker.tried.store(true, Ordering::Relaxed);
        Box::pin(async move {
            let connector = tokio_rustls::TlsConnector::from(self.maker.config.clone());
            match connector.connect(self.name, stream).await {
                Ok(s) => Ok(RustlsStream(s)),
                Err(e) => Err(match rustls_error_in_io(&e) {
                    Some(r) => self.maker.explain(r, &self.host),
                    None => TlsError::new(format!("TLS handshake failed: {e}"), None),
                }),
            }
        })
    }
}

/// The rustls error inside an I/O error from tokio-rustls, if that is what it is.
pub(crate) fn rustls_error_in_io(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

fn presented_names(presented: &[String]) -> String {
    // webpki shows them as `DnsName("localhost")` and `IpAddress(127.0.0.1)`.
    let names: Vec<String> = presented
        .iter()
        .map(|p| {
            p.strip_prefix("DnsName(\"")
                .and_then(|s| s.strip_suffix("\")"))
                .or_else(|| {
                    p.strip_prefix("IpAddress(")
                        .and_then(|s| s.strip_suffix(')'))
                })
                .unwrap_or(p)
                .to_owned()
        })
        .collect();
    if names.is_empty() {
        "no host names at all (no subjectAltName)".into()
    } else {
        names.join(", ")
    }
}

fn explain(
    e: &rustls::Error,
    host: &str,
    mode: SslMode,
    rootcert: Option<&str>,
    client_cert: bool,
) -> TlsError {
    let roots = rootcert.unwrap_or("the root certificates");
    match e {
        rustls::Error::InvalidCertificate(ce) => match ce {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                let names = match ce {
                    CertificateError::NotValidForNameContext { presented, .. } => {
                        format!(": it is issued for {}", presented_names(presented))
                    }
                    _ => String::new(),
                };
                TlsError::new(
                    format!(
                        "server certificate verify failed: the certificate does not match host \
                         name \"{host}\" (sslmode={mode}){names}"
                    ),
                    Some(format!(
                        "connect using a name the certificate lists, or have the server's \
                         certificate issued for \"{host}\" (subjectAltName); sslmode=verify-ca \
                         checks the CA but not the name"
                    )),
                )
            }
            CertificateError::UnknownIssuer => TlsError::new(
                format!(
                    "server certificate verify failed: it is not signed by a CA in {roots} \
                     (sslmode={mode})"
                ),
                Some(
                    "set sslrootcert (PGSSLROOTCERT) to the CA certificate that signed the \
                     server's certificate"
                        .into(),
                ),
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => TlsError::new(
                format!("server certificate verify failed: the certificate has expired ({ce})"),
                Some("the server's certificate must be renewed".into()),
            ),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                TlsError::new(
                    format!(
                        "server certificate verify failed: the certificate is not valid yet ({ce})"
                    ),
                    Some("check the clocks of this machine and of the server".into()),
                )
            }
            other => TlsError::new(
                format!("server certificate verify failed (sslmode={mode}): {other}"),
                None,
            ),
        },
        rustls::Error::AlertReceived(alert) => {
            let about_our_cert = matches!(
                alert,
                AlertDescription::UnknownCA
                    | AlertDescription::BadCertificate
                    | AlertDescription::CertificateUnknown
                    | AlertDescription::UnsupportedCertificate
                    | AlertDescription::CertificateExpired
                    | AlertDescription::CertificateRevoked
                    | AlertDescription::AccessDenied
                    | AlertDescription::CertificateRequired
            );
            if about_our_cert && client_cert {
                TlsError::new(
                    format!("the server rejected the client certificate (TLS alert {alert:?})"),
                    Some(
                        "the certificate in sslcert must be signed by a CA the server trusts \
                         (its ssl_ca_file) and be valid now"
                            .into(),
                    ),
                )
            } else if about_our_cert {
                TlsError::new(
                    format!("the server wants a client certificate (TLS alert {alert:?})"),
                    Some("set sslcert and sslkey (PGSSLCERT, PGSSLKEY)".into()),
                )
            } else {
                TlsError::new(
                    format!("the server ended the TLS handshake (alert {alert:?})"),
                    Some(
                        "the server may only accept TLS versions or ciphers pgbunker does not \
                         offer (TLS 1.2 and 1.3): check its ssl_min_protocol_version and \
                         ssl_ciphers"
                            .into(),
                    ),
                )
            }
        }
        other => TlsError::new(format!("TLS handshake failed: {other}"), None),
    }
}

/// The TLS stream tokio-postgres talks through; gives SCRAM its channel binding.
pub(crate) struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref();
        session
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(|cert| tls_server_end_point(cert.as_ref()))
            .map(ChannelBinding::tls_server_end_point)
            .unwrap_or_else(ChannelBinding::none)
    }
}

/// RFC 5929 `tls-server-end-point`: the server certificate hashed with its signature's
/// hash (SHA-256 for MD5 and SHA-1). None for algorithms without one (Ed25519,
/// RSA-PSS): SCRAM then goes without channel binding, as the server does.
pub(crate) fn tls_server_end_point(cert_der: &[u8]) -> Option<Vec<u8>> {
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
    const ECDSA_SHA2: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    #[derive(Clone, Copy)]
    enum H {
        S224,
        S256,
        S384,
        S512,
    }
    let oid = signature_algorithm_oid(cert_der)?;
    let h = if let Some(last) = oid.strip_prefix(RSA) {
        match last {
            [4] | [5] | [11] => H::S256, // md5, sha1, sha256 WithRSAEncryption
            [12] => H::S384,
            [13] => H::S512,
            [14] => H::S224,
            _ => return None,
        }
    } else if oid == ECDSA_SHA1 {
        H::S256
    } else if let Some(last) = oid.strip_prefix(ECDSA_SHA2) {
        match last {
            [1] => H::S224,
            [2] => H::S256,
            [3] => H::S384,
            [4] => H::S512,
            _ => return None,
        }
    } else {
        return None;
    };
    Some(match h {
        H::S224 => sha2::Sha224::digest(cert_der).to_vec(),
        H::S256 => sha2::Sha256::digest(cert_der).to_vec(),
        H::S384 => sha2::Sha384::digest(cert_der).to_vec(),
        H::S512 => sha2::Sha512::digest(cert_der).to_vec(),
    })
}

/// One DER element: (tag, contents, what follows).
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(n)?;
        (bytes.iter().fold(0usize, |a, &b| a << 8 | b as usize), rest)
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

/// `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm SEQUENCE { OID, … }, … }`
fn signature_algorithm_oid(cert: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const OID: u8 = 0x06;
    let (SEQUENCE, cert, _) = der_element(cert)? else {
        return None;
    };
    let (SEQUENCE, _tbs, rest) = der_element(cert)? else {
        return None;
    };
    let (SEQUENCE, algorithm, _) = der_element(rest)? else {
        return None;
    };
    let (OID, oid, _) = der_element(algorithm)? else {
        return None;
    };
    Some(oid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ssl_keywords_leave_urls_and_the_rest_untouched() {
        let (rest, t) = take_ssl_params(
            "postgresql://u:p%40ss@db:5433/x?sslmode=verify-full&application_name=a%20b\
             &sslrootcert=%2Fetc%2Fca%20dir%2Froot.crt",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgresql://u:p%40ss@db:5433/x?application_name=a%20b"
        );
        assert_eq!(
            t,
            taken(&[
                ("sslmode", "verify-full"),
                ("sslrootcert", "/etc/ca dir/root.crt")
            ])
        );
        let (rest, t) = take_ssl_params("postgres://db/x?sslmode=require").unwrap();
        assert_eq!(rest, "postgres://db/x");
        assert_eq!(t, taken(&[("sslmode", "require")]));
        let (rest, t) = take_ssl_params("postgresql://db/x").unwrap();
        assert_eq!((rest.as_str(), t.len()), ("postgresql://db/x", 0));
    }

    #[test]
    fn ssl_keywords_leave_key_value_strings_and_the_rest_untouched() {
        let (rest, t) = take_ssl_params(
            "host=db  sslmode = verify-ca sslrootcert='/a b/it\\'s.crt' password='x y' \
             sslkey=/k\\ ey dbname=clinic",
        )
        .unwrap();
        assert_eq!(rest, "host=db password='x y' dbname=clinic");
        assert_eq!(
            t,
            taken(&[
                ("sslmode", "verify-ca"),
                ("sslrootcert", "/a b/it's.crt"),
                ("sslkey", "/k ey")
            ])
        );
        assert!(take_ssl_params("host=db sslcrl=/x")
            .unwrap_err()
            .contains("sslcrl"));
        assert!(take_ssl_params("postgresql://db/x?sslpassword=s")
            .unwrap_err()
            .contains("sslpassword is not supported"));
    }

    #[test]
    fn settings_follow_libpq_precedence_and_defaults() {
        let none = |_: &str| None;
        let p = TlsParams::resolve(&[], none).unwrap();
        assert_eq!((p.mode, p.sni), (SslMode::Prefer, true));
        let env = |v: &str| match v {
            "PGSSLMODE" => Some("verify-ca".to_owned()),
            "PGSSLROOTCERT" => Some("/env/root.crt".to_owned()),
            _ => None,
        };
        let p = TlsParams::resolve(&taken(&[("sslmode", "require")]), env).unwrap();
        assert_eq!(p.mode, SslMode::Require);
        assert_eq!(p.rootcert.as_deref(), Some("/env/root.crt"));
        let p = TlsParams::resolve(&taken(&[("sslrootcert", "system")]), none).unwrap();
        assert_eq!(p.mode, SslMode::VerifyFull);
        let e = TlsParams::resolve(
            &taken(&[("sslrootcert", "system"), ("sslmode", "require")]),
            none,
        )
        .unwrap_err();
        assert!(e.contains("weak sslmode \"require\""), "{e}");
        let e = TlsParams::resolve(&taken(&[("sslmode", "verify_full")]), none).unwrap_err();
        assert!(e.contains("invalid sslmode value \"verify_full\""), "{e}");
        // The last keyword wins, as in libpq.
        let p = TlsParams::resolve(
            &taken(&[("sslmode", "disable"), ("sslmode", "allow")]),
            none,
        )
        .unwrap();
        assert_eq!(p.mode, SslMode::Allow);
    }

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

    #[test]
    fn channel_binding_hash_follows_the_signature_algorithm() {
        // A minimal Certificate: SEQUENCE { SEQUENCE {}, SEQUENCE { OID }, BIT STRING }.
        let cert = |oid: &[u8]| {
            let mut alg = vec![0x06, oid.len() as u8];
            alg.extend_from_slice(oid);
            let mut body = vec![0x30, 0x00, 0x30, alg.len() as u8];
            body.extend_from_slice(&alg);
            body.extend_from_slice(&[0x03, 0x01, 0x00]);
            let mut c = vec![0x30, body.len() as u8];
            c.extend_from_slice(&body);
            c
        };
        let ecdsa256 = cert(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);
        assert_eq!(
            tls_server_end_point(&ecdsa256).unwrap(),
            sha2::Sha256::digest(&ecdsa256).to_vec()
        );
        let rsa384 = cert(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c]);
        assert_eq!(tls_server_end_point(&rsa384).unwrap().len(), 48);
        let sha1 = cert(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05]);
        assert_eq!(tls_server_end_point(&sha1).unwrap().len(), 32);
        let ed25519 = cert(&[0x2b, 0x65, 0x70]);
        assert!(tls_server_end_point(&ed25519).is_none());
        assert!(tls_server_end_point(&[0x30, 0x85, 0xff]).is_none());
    }

    #[test]
    fn certificate_names_read_plainly() {
        let shown = presented_names(&[
            "DnsName(\"localhost\")".into(),
            "IpAddress(127.0.0.1)".into(),
        ]);
        assert_eq!(shown, "localhost, 127.0.0.1");
    }
}
