//! The connector and stream tokio-postgres talks through, and SCRAM's channel binding.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use sha2::Digest;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::Socket;

use super::explain::{explain, rustls_error_in_io, TlsError};
use super::settings::SslMode;

/// tokio-postgres' [`MakeTlsConnect`] on rustls; one per connection attempt (it
/// remembers whether a TLS handshake was tried, for `prefer`'s retry without TLS).
#[derive(Clone)]
pub(crate) struct MakeRustls {
    pub(super) config: Arc<ClientConfig>,
    pub(super) mode: SslMode,
    /// Where the trusted roots came from, for messages; None when nothing is checked.
    pub(super) rootcert: Option<String>,
    pub(super) client_cert: bool,
    pub(super) tried: Arc<AtomicBool>,
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
}
