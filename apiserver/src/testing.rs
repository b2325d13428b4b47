//! An in-process API server for the tests of the crates that are its clients
//! (controllers, scheduler, kubelet). It is the real server on a loopback port:
//! clients reach it over HTTPS, with the admin kubeconfig, using the `kube` crate, never through its internals.

use std::net::SocketAddr;
use std::path::Path;

use crate::server::{ServerConfig, ServerError, start};

/// A running server; dropping it shuts the server down.
pub struct TestServer {
    pub addr: SocketAddr,
    /// `https://127.0.0.1:PORT`
    pub url: String,
    /// The admin kubeconfig (the cluster CA and an admin client certificate).
    pub kubeconfig: std::path::PathBuf,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Starts a server on a free loopback port with its embedded store in `data_dir`.
pub async fn spawn(data_dir: &Path) -> Result<TestServer, ServerError> {
    let running = start(ServerConfig {
        data_dir: data_dir.to_path_buf(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        kubeconfig: data_dir.join("admin.kubeconfig"),
        compaction_interval: None,
        etcd: None,
        auth: Default::default(),
        encryption_config: None,
    })
    .await?;
    let addr = running.addr;
    let kubeconfig = running.kubeconfig.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = running.serve(shutdown).await {
            tracing::error!(error = %e, "test API server failed");
        }
    });
    Ok(TestServer {
        addr,
        url: format!("https://{addr}"),
        kubeconfig,
        _stop: stop,
    })
}
