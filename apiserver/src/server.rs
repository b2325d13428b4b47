//! Starting the API server: open the store, bootstrap the system namespaces,
//! write the admin kubeconfig, serve HTTP, compact periodically.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::endpoints::{self, App};
use crate::registry::Store;
use crate::resources::ResourceTable;
use crate::storage::SharedStorage;
use crate::storage::cache::{self, CachedStorage};
use crate::storage::embedded::EmbeddedStore;
use crate::storage::etcd::{EtcdConfig, EtcdStore};

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub kubeconfig: PathBuf,
    /// How often old revisions are compacted (`None`: never).
    pub compaction_interval: Option<Duration>,
    /// Store objects in etcd instead of the embedded store.
    pub etcd: Option<EtcdConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("opening the store in {dir}: {source}")]
    Store {
        dir: PathBuf,
        source: crate::storage::StorageError,
    },
    #[error("connecting to etcd at {endpoints}: {source}")]
    Etcd {
        endpoints: String,
        source: crate::storage::StorageError,
    },
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("writing kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("loading the signing keys: {0}")]
    Keys(#[from] crate::auth::Error),
    #[error("bootstrapping: {0}")]
    Bootstrap(#[from] crate::api_error::ApiError),
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

pub use crate::bootstrap::{SYSTEM_NAMESPACES, bootstrap};

pub fn kubeconfig_yaml(server_url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: {server_url}\n  name: ironkube\ncontexts:\n- context:\n    cluster: ironkube\n    user: admin\n  name: ironkube\ncurrent-context: ironkube\npreferences: {{}}\nusers:\n- name: admin\n  user: {{}}\n"
    )
}

fn write_kubeconfig(path: &Path, listen: SocketAddr) -> Result<(), ServerError> {
    let err = |source| ServerError::Kubeconfig {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let host = if listen.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        listen.ip().to_string()
    };
    let host = if listen.is_ipv6() && !listen.ip().is_unspecified() {
        format!("[{host}]")
    } else {
        host
    };
    let tmp = path.with_extension("tmp");
    std::fs::write(
        &tmp,
        kubeconfig_yaml(&format!("http://{host}:{}", listen.port())),
    )
    .map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// How long requests in flight may run on after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// A bound, bootstrapped API server, ready to serve.
pub struct Running {
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    listener: tokio::net::TcpListener,
    app: Arc<App>,
}

/// Opens the store, bootstraps, binds and writes the kubeconfig.
pub async fn start(config: ServerConfig) -> Result<Running, ServerError> {
    let store_dir = config.data_dir.join("store");
    let storage: SharedStorage = match config.etcd.clone() {
        Some(etcd) => {
            let endpoints = etcd.endpoints.join(",");
            let store = EtcdStore::connect(etcd)
                .await
                .map_err(|source| ServerError::Etcd { endpoints, source })?;
            Arc::new(store)
        }
        None => Arc::new(
            EmbeddedStore::open(&store_dir).map_err(|source| ServerError::Store {
                dir: store_dir.clone(),
                source,
            })?,
        ),
    };
    let table = ResourceTable::with_builtins();
    // Each resource's cache starts with its first watch or cacheable list:
    // a cache costs a storage watch that every write to the embedded store
    // wakes, so resources nobody watches get none.
    let storage: SharedStorage = Arc::new(CachedStorage::new(
        storage,
        table.storage_prefixes(),
        cache::DEFAULT_WINDOW,
    ));
    let store = Store::new(storage.clone(), table.clone());
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: config.listen,
        source,
    })?;
    bootstrap(&store, &table, addr).await?;
    let keys = Arc::new(crate::auth::Keys::load_or_create(&config.data_dir)?);
    crate::registry::csr::publish_signing_ca(&store, &keys.ca).await?;
    // Stored CRDs are served before the first request is answered.
    crate::crd::start(store.clone(), table.clone()).await?;
    write_kubeconfig(&config.kubeconfig, addr)?;
    tracing::info!(kubeconfig = %config.kubeconfig.display(), listen = %addr, "API server ready; admin kubeconfig written");
    if let Some(interval) = config.compaction_interval {
        tokio::spawn(compaction_loop(storage, interval));
    }
    let app = Arc::new(App { store, table, keys });
    Ok(Running {
        addr,
        kubeconfig: config.kubeconfig,
        listener,
        app,
    })
}

impl Running {
    /// Serves until `shutdown` resolves, then lets requests in flight finish for up
    /// to [`SHUTDOWN_GRACE`] (watches never finish by themselves, so they are cut).
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut graceful = stopped.clone();
        let serving = axum::serve(self.listener, endpoints::router(self.app))
            .with_graceful_shutdown(async move {
                let _ = graceful.wait_for(|s| *s).await;
            });
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down");
            let _ = stop.send(true);
        });
        let mut deadline = stopped;
        tokio::select! {
            res = serving => res.map_err(ServerError::Serve),
            () = async move {
                let _ = deadline.wait_for(|s| *s).await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } => Ok(()),
        }
    }
}

/// Runs the API server until `shutdown` resolves.
pub async fn run(
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    start(config).await?.serve(shutdown).await
}

/// Every interval, compacts to the revision seen one interval ago (as upstream does with etcd).
async fn compaction_loop(storage: SharedStorage, interval: Duration) {
    let mut previous = None;
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        if let Some(rev) = previous
            && let Err(e) = storage.compact(rev).await
        {
            tracing::warn!(error = %e, revision = rev, "compaction failed");
        }
        previous = storage.current_revision().await.ok();
    }
}
