//! TLS failures in words, with what to do about them.

use std::fmt;
use std::io;

use rustls::{AlertDescription, CertificateError};

use super::settings::SslMode;

/// A TLS failure in words, with what to do about it.
#[derive(Debug, Clone)]
pub struct TlsError {
    pub message: String,
    pub hint: Option<String>,
}

impl TlsError {
    pub(super) fn new(message: String, hint: Option<String>) -> TlsError {
        TlsError { message, hint }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TlsError {}

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

pub(super) fn explain(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_names_read_plainly() {
        let shown = presented_names(&[
            "DnsName(\"localhost\")".into(),
            "IpAddress(127.0.0.1)".into(),
        ]);
        assert_eq!(shown, "localhost, 127.0.0.1");
    }
}
