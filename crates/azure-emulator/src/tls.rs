//! The emulator's HTTPS: a test CA made at every start, a server certificate it signs
//! for `127.0.0.1` and `localhost`, and a listener that does TLS handshakes beside the
//! accept loop, so that one slow or broken client never holds up the others.
//!
//! The CA's certificate is written to `<tls_dir>/ca.pem` for clients to trust (the
//! Azure SDKs insist on https for Entra ID). Its key is never written anywhere: it
//! lives in memory while the certificates are made and is then dropped, so a copied
//! `ca.pem` vouches for nothing but this run's server certificate.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client may take over its handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes finished but not yet taken by the server.
const BACKLOG: usize = 64;

/// The certificates of one run: the server's configuration and where the CA went.
pub(crate) struct TlsMaterial {
    /// `<tls_dir>/ca.pem`.
    pub(crate) ca_pem_path: PathBuf,
    pub(crate) config: Arc<ServerConfig>,
}

/// Makes a new CA and a server certificate for `127.0.0.1` and `localhost`, writes
/// the CA's certificate to `<tls_dir>/ca.pem` and the server's chain to
/// `<tls_dir>/server.pem` (for tools like `openssl s_client`), and returns the
/// server configuration (HTTP/1.1 only, as the server speaks nothing else).
pub(crate) fn make(tls_dir: &Path) -> io::Result<TlsMaterial> {
    std::fs::create_dir_all(tls_dir)?;
    let invalid = |e: rcgen::Error| io::Error::new(io::ErrorKind::InvalidData, e);

    let ca_key = KeyPair::generate().map_err(invalid)?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params.distinguished_name.push(DnType::CommonName, "azure-emulator test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut ca_params);
    let ca_cert = ca_params.self_signed(&ca_key).map_err(invalid)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().map_err(invalid)?;
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .map_err(invalid)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "azure-emulator");
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    // Python's ssl (VERIFY_X509_STRICT) wants the issuer's key named in the leaf.
    params.use_authority_key_identifier_extension = true;
    validity(&mut params);
    let server_cert = params.signed_by(&server_key, &issuer).map_err(invalid)?;

    let ca_pem_path = tls_dir.join("ca.pem");
    write_atomically(&ca_pem_path, ca_cert.pem().as_bytes())?;
    let chain = format!("{}{}", server_cert.pem(), ca_cert.pem());
    write_atomically(&tls_dir.join("server.pem"), chain.as_bytes())?;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(
            vec![server_cert.der().clone(), ca_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .map_err(io::Error::other)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsMaterial { ca_pem_path, config: Arc::new(config) })
}

/// Valid from yesterday (clocks of clients in containers may lag a little) for ten
/// years.
fn validity(params: &mut CertificateParams) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (y, m, d) = crate::time::civil_date(now / 86_400 - 1);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    params.not_after = rcgen::date_time_ymd(y + 10, m, d.min(28));
}

/// Writes through a temporary file and a rename, so that a reader never sees half
/// a certificate.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", uuid::Uuid::new_v4()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// A listener for [`axum::serve`] that hands out finished TLS connections. A task
/// accepts TCP connections and runs each handshake in its own task; failed or slow
/// handshakes are dropped (and logged at debug).
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl TlsListener {
    pub(crate) fn new(listener: TcpListener, config: Arc<ServerConfig>) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(BACKLOG);
        let acceptor = tokio::spawn(accept_loop(listener, TlsAcceptor::from(config), tx));
        Ok(TlsListener { ready, local, acceptor })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop ended (it only does when the listener is dropped);
            // nothing will ever arrive.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of descriptors and the like: wait a little rather than spin.
                tracing::debug!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(err)) => tracing::debug!(%peer, error = %err, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_written_and_the_config_serves_http1() {
        let dir = tempfile::tempdir().unwrap();
        let material = make(dir.path()).unwrap();
        let pem = std::fs::read_to_string(&material.ca_pem_path).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(material.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(!names.iter().any(|n| n.contains("key")), "no key on disk: {names:?}");
    }
}
