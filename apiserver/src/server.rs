//! Starting the API server: open the store, bootstrap the system namespaces,
//! issue the serving and admin certificates, write the admin kubeconfig,
//! serve HTTPS, compact periodically.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::auth::Keys;
use crate::auth::tls::{self, CertifiedKey, ClientCas, Leaf};
use crate::endpoints::{self, App};
use crate::registry::Store;
use crate::resources::ResourceTable;
use crate::serving::TlsState;
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
    pub auth: AuthConfig,
    /// An `EncryptionConfiguration` for encrypting resources at rest.
    pub encryption_config: Option<PathBuf>,
}

/// How clients are served, authenticated and audited.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// An audit policy (`audit.k8s.io/v1` Policy) and where its events go.
    pub audit: Option<(PathBuf, crate::audit::LogConfig)>,
    /// A serving certificate and key (PEM) to use instead of one issued by
    /// the cluster CA; re-read when they change.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_private_key_file: Option<PathBuf>,
    /// More CAs to accept client certificates from (beside the cluster CA);
    /// re-read when it changes.
    pub client_ca_file: Option<PathBuf>,
    /// Extra names and addresses for the issued serving certificate.
    pub tls_sans: Vec<String>,
    /// Static bearer tokens (`token,user,uid,"groups"`).
    pub token_auth_file: Option<PathBuf>,
    /// Whether requests without credentials are served as `system:anonymous`.
    pub anonymous: bool,
    /// Read-only and mutating requests in flight beyond which 429 is answered
    /// (0: no limit; `system:masters` and long-running requests are not counted).
    pub max_requests_inflight: usize,
    pub max_mutating_requests_inflight: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            audit: None,
            tls_cert_file: None,
            tls_private_key_file: None,
            client_ca_file: None,
            tls_sans: Vec::new(),
            token_auth_file: None,
            anonymous: true,
            max_requests_inflight: 400,
            max_mutating_requests_inflight: 200,
        }
    }
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
    #[error("auditing: {0}")]
    Audit(#[from] crate::audit::AuditError),
    #[error("encryption at rest: {0}")]
    Encryption(#[from] crate::storage::encryption::ConfigError),
    #[error("bootstrapping: {0}")]
    Bootstrap(#[from] crate::api_error::ApiError),
}

pub use crate::bootstrap::{SYSTEM_NAMESPACES, bootstrap};

/// A kubeconfig for `server_url`, trusting `ca_pem`, as the holder of `client`.
pub fn kubeconfig_yaml(
    server_url: &str,
    ca_pem: &str,
    user: &str,
    client: &CertifiedKey,
) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {server_url}\n  name: ironkube\ncontexts:\n- context:\n    cluster: ironkube\n    user: {user}\n  name: ironkube\ncurrent-context: ironkube\npreferences: {{}}\nusers:\n- name: {user}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n",
        ca = b64(ca_pem),
        cert = b64(&client.cert_pem),
        key = b64(&client.key_pem),
    )
}

/// The user name and groups of the admin kubeconfig's certificate.
pub const ADMIN_USER: &str = "kubernetes-admin";

fn write_kubeconfig(path: &Path, listen: SocketAddr, keys: &Keys) -> Result<(), ServerError> {
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
    let admin = keys.ca.issue(Leaf::Client {
        user: ADMIN_USER,
        group: Some(crate::auth::MASTERS),
    })?;
    let yaml = kubeconfig_yaml(
        &format!("https://{host}:{}", listen.port()),
        keys.ca.cert_pem(),
        ADMIN_USER,
        &admin,
    );
    crate::auth::write_private(path, &yaml).map_err(|e| match e {
        crate::auth::Error::Io { source, .. } => err(source),
        other => ServerError::Keys(other),
    })
}

/// How long requests in flight may run on after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// A bound, bootstrapped API server, ready to serve.
pub struct Running {
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    tls: Arc<TlsState>,
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
    let storage: SharedStorage = match &config.encryption_config {
        Some(path) => {
            let transformers = crate::storage::encryption::Transformers::load(path, &table)?;
            Arc::new(crate::storage::encryption::EncryptedStorage::new(
                storage,
                transformers,
            ))
        }
        None => storage,
    };
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
    let tls_files = TlsFiles::new(&config.auth, &keys, serving_names(&config.auth, addr))?;
    let tls = Arc::new(tls_files.load()?);
    tokio::spawn(tls_files.reload_loop(tls.clone()));
    let authn = crate::endpoints::filters::Authentication::new(&config.auth)?;
    // Stored CRDs are served before the first request is answered.
    crate::crd::start(store.clone(), table.clone()).await?;
    write_kubeconfig(&config.kubeconfig, addr, &keys)?;
    tracing::info!(kubeconfig = %config.kubeconfig.display(), listen = %addr, "API server ready; admin kubeconfig written");
    crate::bootstrap::bootstrap_policy(&store, &table).await?;
    let policy = crate::registry::rbac_policy::PolicyIndex::start(storage.clone(), &table)
        .await
        .map_err(|source| ServerError::Store {
            dir: store_dir.clone(),
            source,
        })?;
    if let Some(interval) = config.compaction_interval {
        tokio::spawn(compaction_loop(storage, interval));
    }
    let audit = match &config.auth.audit {
        Some((policy, log)) => Some(crate::audit::Auditor::start(policy, log.clone())?),
        None => None,
    };
    let app = Arc::new(App {
        store,
        table,
        keys,
        authn,
        policy,
        audit,
        inflight: crate::endpoints::inflight::InflightLimits::new(
            config.auth.max_requests_inflight,
            config.auth.max_mutating_requests_inflight,
        ),
    });
    Ok(Running {
        addr,
        kubeconfig: config.kubeconfig,
        listener,
        app,
        tls,
    })
}

impl Running {
    /// Serves until `shutdown` resolves, then lets requests in flight finish for up
    /// to [`SHUTDOWN_GRACE`] (watches never finish by themselves, so they are cut).
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let shutdown = async move {
            shutdown.await;
            tracing::info!("shutting down");
        };
        crate::serving::serve(
            self.listener,
            self.tls,
            endpoints::router(self.app),
            shutdown,
            SHUTDOWN_GRACE,
        )
        .await;
        Ok(())
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

/// The names the issued serving certificate is valid for.
fn serving_names(auth: &AuthConfig, addr: SocketAddr) -> Vec<String> {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    let mut names = tls::default_serving_names(
        crate::registry::service_ips::KUBERNETES_SERVICE_IP.into(),
        hostname.as_deref(),
    );
    if !addr.ip().is_unspecified() {
        names.push(addr.ip().to_string());
    }
    names.extend(auth.tls_sans.iter().cloned());
    names.sort();
    names.dedup();
    names
}

/// Where the serving certificate and the client CAs come from.
struct TlsFiles {
    /// User-provided certificate and key, or `None` for `issued`.
    serving_files: Option<(PathBuf, PathBuf)>,
    issued: CertifiedKey,
    cluster_ca: String,
    client_ca_file: Option<PathBuf>,
}

impl TlsFiles {
    fn new(auth: &AuthConfig, keys: &Keys, names: Vec<String>) -> Result<TlsFiles, ServerError> {
        let serving_files = match (&auth.tls_cert_file, &auth.tls_private_key_file) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
            _ => {
                return Err(ServerError::Keys(crate::auth::Error::Generate(
                    "--tls-cert-file and --tls-private-key-file go together".into(),
                )));
            }
        };
        Ok(TlsFiles {
            serving_files,
            issued: keys.ca.issue(Leaf::Server { names: &names })?,
            cluster_ca: keys.ca.cert_pem().to_string(),
            client_ca_file: auth.client_ca_file.clone(),
        })
    }

    fn read(path: &Path) -> Result<String, ServerError> {
        std::fs::read_to_string(path).map_err(|source| {
            ServerError::Keys(crate::auth::Error::Io {
                path: path.to_path_buf(),
                source,
            })
        })
    }

    /// The TLS configuration from the files as they are now.
    fn config(&self) -> Result<(rustls::ServerConfig, Arc<ClientCas>), ServerError> {
        let serving = match &self.serving_files {
            Some((cert, key)) => CertifiedKey {
                cert_pem: Self::read(cert)?,
                key_pem: Self::read(key)?,
            },
            None => self.issued.clone(),
        };
        let mut cas = self.cluster_ca.clone();
        if let Some(file) = &self.client_ca_file {
            cas.push('\n');
            cas.push_str(&Self::read(file)?);
        }
        let cas = Arc::new(ClientCas::from_pem(&cas)?);
        Ok((tls::server_config(&serving, cas.clone())?, cas))
    }

    fn load(&self) -> Result<TlsState, ServerError> {
        let (config, cas) = self.config()?;
        Ok(TlsState::new(config, cas))
    }

    /// The modification times of the user-provided files.
    fn stamps(&self) -> Vec<Option<std::time::SystemTime>> {
        let files = self
            .serving_files
            .iter()
            .flat_map(|(c, k)| [c, k])
            .chain(self.client_ca_file.iter());
        files
            .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
            .collect()
    }

    /// Re-reads user-provided certificates when they change: new connections
    /// use the new ones (a half-written file is retried at the next tick).
    async fn reload_loop(self, tls: Arc<TlsState>) {
        if self.serving_files.is_none() && self.client_ca_file.is_none() {
            return;
        }
        let mut seen = self.stamps();
        let mut ticker = tokio::time::interval(CERT_RELOAD_INTERVAL);
        loop {
            ticker.tick().await;
            let now = self.stamps();
            if now == seen {
                continue;
            }
            match self.config() {
                Ok((config, cas)) => {
                    tls.replace(config, cas);
                    seen = now;
                    tracing::info!("reloaded the serving certificate and client CAs");
                }
                Err(e) => tracing::warn!(error = %e, "certificate files changed but do not load"),
            }
        }
    }
}

/// How often user-provided certificate files are checked for changes.
const CERT_RELOAD_INTERVAL: Duration = Duration::from_secs(2);
