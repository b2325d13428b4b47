//! The accept loop: TLS on every connection, HTTP/2 or HTTP/1.1 (with
//! upgrades, for WebSocket and SPDY streams) on top, and the client
//! certificate of the connection judged once and handed to every request on
//! it as a [`ClientCertificate`] extension.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use parking_lot::RwLock;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::auth::UserInfo;
use crate::auth::tls::ClientCas;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The client certificate a connection presented.
#[derive(Clone, Debug)]
pub enum ClientCertificate {
    None,
    /// A chain of a trusted CA, naming this user.
    Verified(Arc<UserInfo>),
    /// A chain that does not verify (another CA, expired, not for clients).
    Refused(Arc<str>),
}

/// The address a connection comes from.
#[derive(Clone, Copy, Debug)]
pub struct RemoteAddr(pub std::net::SocketAddr);

/// What the TLS layer serves with; replaced whole when certificates rotate.
pub struct TlsState {
    config: RwLock<(Arc<rustls::ServerConfig>, Arc<ClientCas>)>,
}

impl TlsState {
    pub fn new(config: rustls::ServerConfig, client_cas: Arc<ClientCas>) -> TlsState {
        TlsState {
            config: RwLock::new((Arc::new(config), client_cas)),
        }
    }

    /// Serves new connections with `config`, trusting `client_cas`.
    pub fn replace(&self, config: rustls::ServerConfig, client_cas: Arc<ClientCas>) {
        *self.config.write() = (Arc::new(config), client_cas);
    }

    fn current(&self) -> (Arc<rustls::ServerConfig>, Arc<ClientCas>) {
        self.config.read().clone()
    }
}

/// Serves `router` on `listener` until `shutdown` resolves; connections in
/// flight then get `grace` to finish (watches never finish, so they are cut).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<TlsState>,
    router: Router,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors, for one: back off, keep serving.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let (config, client_cas) = tls.current();
        let router = router.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%remote, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, "TLS handshake timed out");
                    return;
                }
            };
            let certificate = match stream.get_ref().1.peer_certificates() {
                Some(chain) if !chain.is_empty() => match client_cas.identify(chain) {
                    Ok(user) => ClientCertificate::Verified(Arc::new(user)),
                    Err(why) => ClientCertificate::Refused(why.into()),
                },
                _ => ClientCertificate::None,
            };
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(certificate.clone());
                req.extensions_mut().insert(RemoteAddr(remote));
                router.clone().oneshot(req.map(axum::body::Body::new))
            });
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {}
    }
}
