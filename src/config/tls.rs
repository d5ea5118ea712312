//! TLS settings: the certificate the proxy serves on `listen_tls`, and the CA and name it
//! checks an `https://` upstream against. PEM files are read and checked at start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::BuildError;
use super::value::{ListenAddr, NonEmpty, Parsed};

/// `listen_tls`: an HTTPS listener beside `listen`, with one certificate (HTTP/2 or HTTP/1.1
/// by ALPN). The files are read at start-up and on every reload.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawListenTls {
    /// Where the HTTPS listener listens: `IP:PORT` (`0.0.0.0:8443`). A reload that changes it
    /// binds the new address first.
    pub address: Parsed<ListenAddr>,
    /// The PEM certificate chain, leaf first, relative to the config file's directory.
    #[schemars(with = "Parsed<PathBuf>")]
    pub cert_file: Spanned<Parsed<PathBuf>>,
    /// The PEM private key of that certificate, relative to the config file's directory; a
    /// key that does not fit the certificate is an error.
    #[schemars(with = "Parsed<PathBuf>")]
    pub key_file: Spanned<Parsed<PathBuf>>,
}

/// `upstream.tls`: how an `https://` upstream's certificate is verified. The proxy never
/// falls back to an unverified connection: a certificate that does not verify is a `502`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUpstreamTls {
    /// A PEM file of CA certificates, relative to the config file's directory: trust
    /// exactly these instead of the system's (a private CA).
    /// Default: none (the system's CA roots).
    #[schemars(with = "Option<Parsed<PathBuf>>")]
    pub ca_file: Option<Spanned<Parsed<PathBuf>>>,
    /// The name to verify the upstream's certificate for, and to send as SNI, instead of the
    /// URL's host: a DNS name or an IP address (`app.internal`).
    /// Default: none (the host of `upstream.url`).
    #[schemars(with = "Option<Parsed<NonEmpty>>")]
    pub server_name: Option<Spanned<Parsed<NonEmpty>>>,
}

/// The TLS listener: where, and the server configuration built from the PEM files.
#[derive(Debug, Clone)]
pub struct ListenTls {
    pub address: SocketAddr,
    pub cert_file: PathBuf,
    /// Certificate chain and key, ALPN `h2` and `http/1.1`.
    pub server_config: Arc<rustls::ServerConfig>,
}

/// How an `https://` upstream is verified.
#[derive(Debug, Clone, Default)]
pub struct UpstreamTls {
    /// The CAs to trust instead of the system's (a private CA).
    pub ca_certs: Option<Vec<CertificateDer<'static>>>,
    pub ca_file: Option<PathBuf>,
    /// The name to send (SNI) and to find in the certificate, instead of the URL's host.
    pub server_name: Option<ServerName<'static>>,
}

pub(crate) fn build_listen_tls(raw: RawListenTls, base_dir: &Path) -> Result<ListenTls, BuildError> {
    let cert_file = base_dir.join(&raw.cert_file.value.0);
    let key_file = base_dir.join(&raw.key_file.value.0);
    let cert_error = |message: String| BuildError::new("listen_tls.cert_file", Some(raw.cert_file.referenced), message);
    let key_error = |message: String| BuildError::new("listen_tls.key_file", Some(raw.key_file.referenced), message);
    let chain = certificates(&cert_file).map_err(cert_error)?;
    let pem = std::fs::read(&key_file).map_err(|e| key_error(format!("cannot read {}: {e}", key_file.display())))?;
    let key = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| key_error(format!("{} holds no PEM private key: {e}", key_file.display())))?;
    let mismatch =
        || key_error(format!("{} does not fit the certificate in {}", key_file.display(), cert_file.display()));
    let mut server_config =
        rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(chain, key).map_err(|_| mismatch())?;
    server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(ListenTls { address: raw.address.0.0, cert_file, server_config: Arc::new(server_config) })
}

pub(crate) fn build_upstream_tls(raw: RawUpstreamTls, base_dir: &Path) -> Result<UpstreamTls, BuildError> {
    let mut tls = UpstreamTls::default();
    if let Some(ca_file) = raw.ca_file {
        let path = base_dir.join(&ca_file.value.0);
        let certs =
            certificates(&path).map_err(|m| BuildError::new("upstream.tls.ca_file", Some(ca_file.referenced), m))?;
        tls.ca_certs = Some(certs);
        tls.ca_file = Some(path);
    }
    if let Some(name) = raw.server_name {
        let parsed = ServerName::try_from(name.value.0.0.clone()).map_err(|_| {
            BuildError::new(
                "upstream.tls.server_name",
                Some(name.referenced),
                format!("{:?} is not a DNS name or IP address", name.value.0.0),
            )
        })?;
        tls.server_name = Some(parsed);
    }
    Ok(tls)
}

/// The certificates of a PEM file; at least one.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{} is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}
