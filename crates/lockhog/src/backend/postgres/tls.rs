//! TLS for `postgres://` with rustls (no system OpenSSL): libpq's `sslmode` and `sslrootcert`.
//!
//! tokio-postgres knows only `disable`, `prefer` and `require` and leaves the handshake to a
//! [`MakeTlsConnect`]; this module maps libpq's five modes onto that, with a certificate
//! verifier that checks exactly what libpq checks in each mode:
//!
//! | `sslmode` | encrypts | verifies the chain | verifies the host name |
//! |---|---|---|---|
//! | `disable` | never | — | — |
//! | `prefer` (default) | when the server offers it | no | no |
//! | `require` | always, else fails | only with a root certificate | no |
//! | `verify-ca` | always, else fails | yes | no |
//! | `verify-full` | always, else fails | yes | yes |
//!
//! The root certificates come from `sslrootcert=/path/ca.pem` (PEM, any number of
//! certificates), else from `~/.postgresql/root.crt` when that file exists (libpq's default);
//! `sslrootcert=system` takes the system's trusted roots. As in libpq, `require` with a root
//! certificate behaves like `verify-ca`, and `verify-ca`/`verify-full` without one fail before
//! connecting. `prefer` never verifies (libpq would verify with a root certificate and fall
//! back to an unencrypted session when that fails: both end unauthenticated; here the session
//! is at least encrypted). `allow` is refused: tokio-postgres cannot try unencrypted first.
//!
//! SCRAM channel binding (`tls-server-end-point`) is offered over TLS, so a server that
//! offers `SCRAM-SHA-256-PLUS` gets a password proof bound to its certificate.

use std::future::Future;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256, Sha384, Sha512};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// libpq's spelling; `Err` with the reason for `allow` and unknown values.
    pub fn parse(value: &str) -> Result<SslMode, String> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => {
                return Err("sslmode=allow is not supported (use prefer or disable)".into());
            }
            _ => {
                return Err(
                    "sslmode is one of disable, prefer, require, verify-ca, verify-full".into(),
                )
            }
        })
    }

    /// What tokio-postgres does before the handshake: whether TLS may be skipped.
    pub fn negotiation(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Pg;
        match self {
            SslMode::Disable => Pg::Disable,
            SslMode::Prefer => Pg::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Pg::Require,
        }
    }
}

/// Where trusted root certificates come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RootCert {
    /// `sslrootcert=system`.
    System,
    /// A PEM file.
    File(PathBuf),
}

impl RootCert {
    /// `sslrootcert`'s value, else libpq's default `~/.postgresql/root.crt` when it exists.
    pub fn from_option(value: Option<String>) -> Option<RootCert> {
        match value.as_deref() {
            Some("system") => Some(RootCert::System),
            Some(path) if !path.is_empty() => Some(RootCert::File(PathBuf::from(path))),
            _ => {
                let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
                let default = Path::new(&home).join(".postgresql").join("root.crt");
                default.is_file().then_some(RootCert::File(default))
            }
        }
    }

    fn load(&self) -> Result<RootCertStore, String> {
        let mut roots = RootCertStore::empty();
        let certs: Vec<CertificateDer<'static>> = match self {
            RootCert::System => {
                let found = rustls_native_certs::load_native_certs();
                if found.certs.is_empty() {
                    let why = found.errors.first().map(|e| e.to_string());
                    return Err(format!(
                        "sslrootcert=system: no trusted roots found on this system{}",
                        why.map(|w| format!(" ({w})")).unwrap_or_default()
                    ));
                }
                found.certs
            }
            RootCert::File(path) => {
                let shown = path.display();
                let bytes = std::fs::read(path)
                    .map_err(|e| format!("cannot read sslrootcert {shown}: {e}"))?;
                CertificateDer::pem_slice_iter(&bytes)
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("sslrootcert {shown} is not PEM certificates: {e}"))?
            }
        };
        let (added, _ignored) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(match self {
                RootCert::System => "sslrootcert=system: no usable trusted roots".into(),
                RootCert::File(p) => format!("sslrootcert {} holds no certificate", p.display()),
            });
        }
        Ok(roots)
    }
}

/// The TLS side of a postgres:// URL: what the handshake checks, ready to connect.
#[derive(Clone)]
pub(crate) struct MakeRustls {
    config: Arc<ClientConfig>,
    check_name: bool,
}

impl std::fmt::Debug for MakeRustls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MakeRustls")
            .field("check_name", &self.check_name)
            .finish()
    }
}

impl MakeRustls {
    /// The connector for `mode` with the roots of `root`. `Err` with a message (naming no
    /// password) when a verifying mode has no root certificate or it cannot be read.
    pub fn new(mode: SslMode, root: Option<&RootCert>) -> Result<MakeRustls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (verify_chain, check_name) = match mode {
            SslMode::Disable | SslMode::Prefer => (false, false),
            SslMode::Require => (root.is_some(), false),
            SslMode::VerifyCa => (true, false),
            SslMode::VerifyFull => (true, true),
        };
        let roots = if verify_chain {
            let Some(root) = root else {
                let which = if check_name {
                    "verify-full"
                } else {
                    "verify-ca"
                };
                return Err(format!(
                    "sslmode={which} needs a root certificate: set sslrootcert=/path/to/ca.pem \
                     (or sslrootcert=system for the system's trusted roots; \
                     ~/.postgresql/root.crt does not exist), or use sslmode=require to encrypt \
                     without verifying the server"
                ));
            };
            Some(Arc::new(root.load()?))
        } else {
            None
        };
        let verifier = Arc::new(Verifier {
            roots,
            check_name,
            provider: provider.clone(),
        });
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        // What libpq 17 sends, required by servers that take direct TLS connections.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(MakeRustls {
            config: Arc::new(config),
            check_name,
        })
    }
}

/// Checks the server's certificate as the mode asks: nothing, the chain, or chain and name.
/// The handshake's signatures are always checked (they prove the server has the key).
#[derive(Debug)]
struct Verifier {
    roots: Option<Arc<RootCertStore>>,
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
            if self.check_name {
                rustls::client::verify_server_name(&cert, server_name)?;
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Why a handshake could not start.
#[derive(Debug)]
pub(crate) struct BadHostName(String);

impl std::fmt::Display for BadHostName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sslmode=verify-full: {:?} is not a host name or IP address to verify",
            self.0
        )
    }
}

impl std::error::Error for BadHostName {}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = BadHostName;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, BadHostName> {
        let name = match ServerName::try_from(domain) {
            Ok(n) => n.to_owned(),
            Err(_) if self.check_name => return Err(BadHostName(domain.to_string())),
            // Not verified: any name does; an IP address sends no SNI.
            Err(_) => ServerName::IpAddress(Ipv4Addr::UNSPECIFIED.into()),
        };
        Ok(RustlsConnect {
            config: self.config.clone(),
            name,
        })
    }
}

/// One handshake's settings.
pub(crate) struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move {
            let stream = connector.connect(self.name, stream).await?;
            let end_point = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| tls_server_end_point(c));
            Ok(RustlsStream { stream, end_point })
        })
    }
}

/// An encrypted session stream.
pub(crate) struct RustlsStream<S> {
    stream: tokio_rustls::client::TlsStream<S>,
    end_point: Option<Vec<u8>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        match &self.end_point {
            Some(h) => ChannelBinding::tls_server_end_point(h.clone()),
            None => ChannelBinding::none(),
        }
    }
}

/// RFC 5929's `tls-server-end-point`: the certificate hashed with the hash of its signature
/// algorithm (SHA-256 for MD5 and SHA-1). `None` for algorithms without a single hash
/// (Ed25519, RSA-PSS): the session then authenticates without channel binding, as libpq does.
fn tls_server_end_point(cert: &CertificateDer<'_>) -> Option<Vec<u8>> {
    let der = cert.as_ref();
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
    let (0x30, certificate, _) = der_item(der)? else {
        return None;
    };
    let (_, _tbs, rest) = der_item(certificate)?;
    let (0x30, algorithm, _) = der_item(rest)? else {
        return None;
    };
    let (0x06, oid, _) = der_item(algorithm)? else {
        return None;
    };
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    let hash = match oid.split_last()? {
        // md5, sha1, sha256, sha224 with RSA
        (4 | 5 | 11 | 14, prefix) if prefix == RSA => 256,
        (12, prefix) if prefix == RSA => 384,
        (13, prefix) if prefix == RSA => 512,
        // ecdsa-with-SHA224 / -SHA256, -SHA384, -SHA512
        (1 | 2, prefix) if prefix == ECDSA => 256,
        (3, prefix) if prefix == ECDSA => 384,
        (4, prefix) if prefix == ECDSA => 512,
        // ecdsa-with-SHA1 (1.2.840.10045.4.1)
        (1, [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04]) => 256,
        _ => return None,
    };
    Some(match hash {
        256 => Sha256::digest(der).to_vec(),
        384 => Sha384::digest(der).to_vec(),
        _ => Sha512::digest(der).to_vec(),
    })
}

/// One DER item: (tag, contents, what follows). Definite lengths only, as DER requires.
fn der_item(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_spellings() {
        assert_eq!(SslMode::parse("verify-full"), Ok(SslMode::VerifyFull));
        assert_eq!(SslMode::parse("verify-ca"), Ok(SslMode::VerifyCa));
        assert!(SslMode::parse("allow")
            .unwrap_err()
            .contains("not supported"));
        assert!(SslMode::parse("verify_full").is_err());
    }

    #[test]
    fn verifying_without_a_root_certificate_is_refused_before_connecting() {
        let e = MakeRustls::new(SslMode::VerifyFull, None).unwrap_err();
        assert!(e.contains("sslrootcert"), "{e}");
        assert!(MakeRustls::new(SslMode::Require, None).is_ok());
        let missing = RootCert::File("/nonexistent/ca.pem".into());
        let e = MakeRustls::new(SslMode::VerifyCa, Some(&missing)).unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        // Not verifying: the root certificate is not even read.
        assert!(MakeRustls::new(SslMode::Prefer, Some(&missing)).is_ok());
    }

    #[test]
    fn der_lengths() {
        assert_eq!(
            der_item(&[0x30, 0x01, 0xaa, 0xbb]),
            Some((0x30, &[0xaa][..], &[0xbb][..]))
        );
        let long = [&[0x04, 0x81, 0x80][..], &[7u8; 0x80]].concat();
        assert_eq!(
            der_item(&long).map(|(_, c, r)| (c.len(), r.len())),
            Some((0x80, 0))
        );
        assert_eq!(der_item(&[0x30, 0x05, 0x00]), None);
        assert_eq!(der_item(&[0x30, 0x80]), None);
    }
}
