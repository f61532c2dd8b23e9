//! HTTPS for the simulator. Microsoft's own clients refuse plain-HTTP authorities, so the
//! simulator can serve TLS with a certificate it makes for loopback and writes out for clients
//! to trust.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A certificate for 127.0.0.1, ::1 and localhost, and its key.
pub struct LoopbackCertificate {
    pub cert_pem: String,
    acceptor: TlsAcceptor,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot make the simulator's certificate: {0}")]
    Certificate(String),
    #[error("cannot write the simulator's certificate to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl LoopbackCertificate {
    pub fn generate() -> Result<Self, TlsError> {
        let names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        let certified = rcgen::generate_simple_self_signed(names)
            .map_err(|e| TlsError::Certificate(e.to_string()))?;
        let cert_pem = certified.cert.pem();
        let cert_der = certified.cert.der().clone();
        let key_der =
            rustls::pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der())
                .map_err(|e| TlsError::Certificate(e.to_string()))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Certificate(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(vec![cert_der], key_der)
            .map_err(|e| TlsError::Certificate(e.to_string()))?;
        Ok(Self {
            cert_pem,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Writes the certificate (never the key) as PEM, for clients to trust.
    pub fn write(&self, path: &Path) -> Result<(), TlsError> {
        std::fs::write(path, &self.cert_pem).map_err(|source| TlsError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }
}

/// Serves `router` over TLS on `listener` until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, acceptor: TlsAcceptor, router: Router) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(stream).await {
                Ok(tls) => tls,
                Err(e) => {
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
            };
            let service = TowerToHyperService::new(router);
            let served = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
}

pub(crate) fn https_url(addr: SocketAddr) -> String {
    format!("https://{addr}")
}
