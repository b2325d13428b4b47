//! The `ironkube` command line: every component, alone or all in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ironkube",
    version,
    about = "A Kubernetes control plane and node agent"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (all components in one process).
    Server(ServerArgs),
    /// Run the API server alone.
    Apiserver(ServerArgs),
    /// Run the controllers alone, against an API server.
    ControllerManager {
        /// Kubeconfig of the API server to talk to.
        #[arg(long, env = "KUBECONFIG")]
        kubeconfig: PathBuf,
    },
    /// Run the scheduler alone, against an API server.
    Scheduler {
        /// Kubeconfig of the API server to talk to.
        #[arg(long, env = "KUBECONFIG")]
        kubeconfig: PathBuf,
    },
    /// Run kwok-style FAKE nodes: Node objects that run nothing. They register,
    /// renew their Leases and report every pod bound to them Running and Ready
    /// (Job pods Succeeded), for scheduler and controller tests and benchmarks.
    FakeNodes(FakeNodeArgs),
    /// Run the node agent: register this machine as a Node and run the pods
    /// bound to it on containerd through the CRI.
    Kubelet(KubeletArgs),
    /// Stop and remove every pod a node's kubelet started on containerd (as
    /// k3s's killall script does), e.g. after a test cluster is stopped.
    Killall {
        /// The node whose pods go (default: the host name, as the kubelet's).
        #[arg(long)]
        node_name: Option<String>,
        /// containerd's CRI socket.
        #[arg(long, default_value = "/run/containerd/containerd.sock")]
        containerd_address: PathBuf,
    },
    /// Back up or restore the store.
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
    /// Copy an embedded store's objects into etcd (stop the server first), then
    /// start the server with --etcd-servers.
    Migrate {
        #[arg(long)]
        data_dir: PathBuf,
        /// etcd client URLs (comma-separated).
        #[arg(long, value_delimiter = ',')]
        to_etcd: Vec<String>,
        #[arg(long, default_value = "/registry")]
        etcd_prefix: String,
    },
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Save a consistent point-in-time copy of the embedded store (also while the
    /// server runs) or, with --etcd-servers, of etcd (restore that with
    /// `etcdctl snapshot restore`).
    Save {
        file: PathBuf,
        #[arg(long, required_unless_present = "etcd_servers")]
        data_dir: Option<PathBuf>,
        #[arg(long, value_delimiter = ',')]
        etcd_servers: Vec<String>,
    },
    /// Restore an embedded-store snapshot file into a new data dir.
    Restore {
        file: PathBuf,
        #[arg(long)]
        data_dir: PathBuf,
    },
}

#[derive(Args, Clone)]
struct FakeNodeArgs {
    /// Kubeconfig of the API server to talk to.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
    /// How many fake nodes to run.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Node names are PREFIX-0, PREFIX-1, ...
    #[arg(long, default_value = "fake-node")]
    prefix: String,
    /// Each node's CPU capacity.
    #[arg(long, default_value = "32")]
    cpu: String,
    /// Each node's memory capacity.
    #[arg(long, default_value = "256Gi")]
    memory: String,
    /// Each node's pod capacity.
    #[arg(long, default_value = "110")]
    pods: String,
}

impl FakeNodeArgs {
    fn config(&self) -> kubelet::fake::FakeNodeConfig {
        kubelet::fake::FakeNodeConfig {
            cpu: self.cpu.clone(),
            memory: self.memory.clone(),
            pods: self.pods.clone(),
            ..kubelet::fake::FakeNodeConfig::new(
                (0..self.count)
                    .map(|i| format!("{}-{i}", self.prefix))
                    .collect(),
            )
        }
    }
}

#[derive(Args, Clone)]
struct KubeletArgs {
    /// Kubeconfig of the API server to talk to.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
    /// The Node's name (default: the host name).
    #[arg(long)]
    node_name: Option<String>,
    /// Where the kubelet keeps its files (pod logs).
    #[arg(long, default_value = "/var/lib/ironkube/kubelet")]
    root_dir: PathBuf,
    /// containerd's CRI socket.
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    containerd_address: PathBuf,
    /// This node's pod CIDR, handed to containerd's CNI template.
    #[arg(long)]
    pod_cidr: Option<String>,
    /// The node's InternalIP; the kubelet's HTTP server listens on it.
    #[arg(long, default_value = "127.0.0.1")]
    node_ip: std::net::IpAddr,
    /// Port of the kubelet's HTTP server (0: any free port).
    #[arg(long, default_value_t = 10250)]
    port: u16,
    /// Unsafe sysctls pods may set here (comma-separated names, or prefixes
    /// ending in `*`); every other unsafe sysctl is rejected (SysctlForbidden).
    #[arg(long, value_delimiter = ',')]
    allowed_unsafe_sysctls: Vec<String>,
}

#[derive(Args, Clone)]
struct ServerArgs {
    /// Where the embedded store and generated files live.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address and port to serve the API on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Where to write the admin kubeconfig (default DATA_DIR/admin.kubeconfig).
    #[arg(long)]
    write_kubeconfig: Option<PathBuf>,
    /// How often old revisions are compacted, in seconds (embedded store; 0: never).
    #[arg(long, default_value_t = 300)]
    compaction_interval_seconds: u64,
    /// Store objects in etcd at these client URLs (comma-separated) instead of the embedded store.
    #[arg(long, value_delimiter = ',')]
    etcd_servers: Vec<String>,
    /// Key prefix in etcd.
    #[arg(long, default_value = "/registry")]
    etcd_prefix: String,
    /// CA bundle to verify etcd with.
    #[arg(long)]
    etcd_cafile: Option<PathBuf>,
    /// Client certificate for etcd.
    #[arg(long)]
    etcd_certfile: Option<PathBuf>,
    /// Client key for etcd.
    #[arg(long)]
    etcd_keyfile: Option<PathBuf>,
    /// How often etcd is compacted, as a Go duration (e.g. 5m, 30s; 0 disables).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    etcd_compaction_interval: Duration,
    /// With `server`: also run this many kwok-style FAKE nodes (named
    /// fake-node-N) that run nothing but report their pods Running; for trying
    /// out controllers and the scheduler without a node agent.
    #[arg(long, default_value_t = 0)]
    fake_nodes: usize,
    /// With `server`: also run the kubelet in this process, registering this
    /// machine as a Node and running its pods on containerd (opt-in: it
    /// needs a running containerd).
    #[arg(long)]
    kubelet: bool,
    /// With --kubelet: the Node's name (default: the host name).
    #[arg(long, requires = "kubelet")]
    node_name: Option<String>,
    /// With --kubelet: where the kubelet keeps its files (default DATA_DIR/kubelet).
    #[arg(long, requires = "kubelet")]
    kubelet_root_dir: Option<PathBuf>,
    /// With --kubelet: containerd's CRI socket.
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    containerd_address: PathBuf,
    /// With --kubelet: this node's pod CIDR, handed to containerd's CNI template.
    #[arg(long, requires = "kubelet")]
    pod_cidr: Option<String>,
    /// With --kubelet: port of the kubelet's HTTP server (0: any free port).
    #[arg(long, default_value_t = 10250)]
    kubelet_port: u16,
    /// With `--kubelet`: unsafe sysctls pods may set (comma-separated names,
    /// or prefixes ending in `*`).
    #[arg(long, value_delimiter = ',')]
    allowed_unsafe_sysctls: Vec<String>,
    /// Serving certificate (PEM) instead of one issued by the cluster CA;
    /// re-read when it changes.
    #[arg(long, requires = "tls_private_key_file")]
    tls_cert_file: Option<PathBuf>,
    /// Key of --tls-cert-file.
    #[arg(long, requires = "tls_cert_file")]
    tls_private_key_file: Option<PathBuf>,
    /// CA bundle whose client certificates are accepted too (beside the
    /// cluster CA); re-read when it changes.
    #[arg(long)]
    client_ca_file: Option<PathBuf>,
    /// Extra DNS names or IP addresses for the issued serving certificate.
    #[arg(long, value_delimiter = ',')]
    tls_san: Vec<String>,
    /// Static bearer tokens, one `token,user,uid,"group1,group2"` per line.
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// Serve requests without credentials as system:anonymous (false: 401).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    anonymous_auth: bool,
    /// An EncryptionConfiguration (apiserver.config.k8s.io/v1): resources
    /// encrypted at rest with aescbc, aesgcm or secretbox.
    #[arg(long)]
    encryption_provider_config: Option<PathBuf>,
    /// An audit policy (audit.k8s.io/v1 Policy); requests it selects are logged.
    #[arg(long)]
    audit_policy_file: Option<PathBuf>,
    /// Where audit events go, one JSON line each (`-`: standard output, the default).
    #[arg(long, requires = "audit_policy_file")]
    audit_log_path: Option<PathBuf>,
    /// Days to keep rotated audit logs (0: no limit).
    #[arg(long, default_value_t = 0)]
    audit_log_maxage: u32,
    /// Rotated audit logs to keep (0: no limit).
    #[arg(long, default_value_t = 0)]
    audit_log_maxbackup: u32,
    /// Size in MiB at which the audit log is rotated (0: never).
    #[arg(long, default_value_t = 0)]
    audit_log_maxsize: u64,
    /// Read-only requests in flight beyond which 429 is answered (0: no
    /// limit; system:masters and long-running requests are not counted).
    #[arg(long, default_value_t = 400)]
    max_requests_inflight: usize,
    /// The same for mutating requests.
    #[arg(long, default_value_t = 200)]
    max_mutating_requests_inflight: usize,
}

/// The node name a kubelet takes without --node-name: the host name,
/// lower-cased as upstream does.
fn host_node_name() -> anyhow::Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/hostname")
        .context("reading the host name")?
        .trim()
        .to_lowercase())
}

/// A Go-style duration: a sequence of numbers with units h, m, s, ms (e.g. `1h30m`, `5m`, `0`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
        let secs = match unit {
            "h" => n * 3600.0,
            "m" => n * 60.0,
            "s" => n,
            "ms" => n / 1000.0,
            _ => return Err(format!("invalid duration {s:?}: unknown unit {unit:?}")),
        };
        total += Duration::from_secs_f64(secs);
        rest = next;
    }
    Ok(total)
}

/// This process's identity in leader elections: host name plus a random suffix.
fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    format!(
        "{}_{}",
        if host.is_empty() { "ironkube" } else { host },
        uuid::Uuid::new_v4()
    )
}

/// Election timing; `IRONKUBE_LEASE_DURATION_SECONDS` shortens it (tests of failover).
fn election_timing() -> controllers::leader::Timing {
    let lease: u64 = std::env::var("IRONKUBE_LEASE_DURATION_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15)
        .max(1);
    controllers::leader::Timing {
        lease_duration: Duration::from_secs(lease),
        renew_deadline: Duration::from_secs(lease * 2 / 3).max(Duration::from_secs(1)),
        retry_period: Duration::from_millis((lease * 1000 / 7).max(200)),
    }
}

/// Whether this process runs as root (effective uid 0, read from /proc).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

fn default_data_dir() -> PathBuf {
    if is_root() {
        return PathBuf::from("/var/lib/ironkube");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/ironkube"),
        None => PathBuf::from("/var/lib/ironkube"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

async fn client_from(kubeconfig: &std::path::Path) -> anyhow::Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await?;
    Ok(kube::Client::try_from(cfg)?)
}

/// The Lease (in `kube-system`) that elects the active scheduler.
const SCHEDULER_LEASE: &str = "ironkube-scheduler";

/// Runs the scheduler while this process holds the scheduler Lease.
async fn run_scheduler(client: kube::Client) {
    let elector = controllers::leader::Elector::new(
        client.clone(),
        "kube-system",
        SCHEDULER_LEASE,
        identity(),
        election_timing(),
    );
    controllers::leader::run_while_leader(elector, || {
        scheduler::run(client.clone(), scheduler::Config::default())
    })
    .await;
}

/// Runs the API server, and with `with_controllers` the controllers and the
/// scheduler as its API clients.
async fn serve(args: ServerArgs, with_controllers: bool) -> anyhow::Result<()> {
    let fake_nodes = args.fake_nodes;
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let kubelet_config = if args.kubelet && with_controllers {
        let node_name = match args.node_name.clone() {
            Some(name) => name,
            None => host_node_name()?,
        };
        let root = args
            .kubelet_root_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("kubelet"));
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        let mut config = kubelet::Config::new(node_name, root);
        config.runtime_endpoint = args.containerd_address.clone();
        config.pod_cidr = args.pod_cidr.clone();
        config.port = args.kubelet_port;
        config.allowed_unsafe_sysctls = args.allowed_unsafe_sysctls.clone();
        Some(config)
    } else {
        None
    };
    let kubeconfig = args
        .write_kubeconfig
        .unwrap_or_else(|| data_dir.join("admin.kubeconfig"));
    let config = apiserver::server::ServerConfig {
        data_dir,
        listen: args.listen,
        kubeconfig,
        compaction_interval: None,
        etcd: None,
        auth: apiserver::server::AuthConfig {
            tls_cert_file: args.tls_cert_file.clone(),
            tls_private_key_file: args.tls_private_key_file.clone(),
            client_ca_file: args.client_ca_file.clone(),
            tls_sans: args.tls_san.clone(),
            token_auth_file: args.token_auth_file.clone(),
            anonymous: args.anonymous_auth,
            max_requests_inflight: args.max_requests_inflight,
            max_mutating_requests_inflight: args.max_mutating_requests_inflight,
            audit: args.audit_policy_file.clone().map(|policy| {
                let log = apiserver::audit::LogConfig {
                    path: args
                        .audit_log_path
                        .clone()
                        .unwrap_or_else(|| PathBuf::from("-")),
                    max_age_days: args.audit_log_maxage,
                    max_backups: args.audit_log_maxbackup,
                    max_size_mb: args.audit_log_maxsize,
                };
                (policy, log)
            }),
        },
        encryption_config: args.encryption_provider_config.clone(),
    };
    let mut config = config;
    if args.etcd_servers.is_empty() {
        config.compaction_interval = (args.compaction_interval_seconds > 0)
            .then(|| Duration::from_secs(args.compaction_interval_seconds));
    } else {
        config.etcd = Some(apiserver::storage::etcd::EtcdConfig {
            endpoints: args.etcd_servers.clone(),
            prefix: args.etcd_prefix.clone(),
            ca_file: args.etcd_cafile.clone(),
            cert_file: args.etcd_certfile.clone(),
            key_file: args.etcd_keyfile.clone(),
        });
        config.compaction_interval =
            (!args.etcd_compaction_interval.is_zero()).then_some(args.etcd_compaction_interval);
    }
    let running = apiserver::server::start(config)
        .await
        .context("API server failed to start")?;
    if with_controllers {
        let client = client_from(&running.kubeconfig).await?;
        tokio::spawn(controllers::run_elected(
            client.clone(),
            identity(),
            election_timing(),
        ));
        tokio::spawn(run_scheduler(client.clone()));
        if fake_nodes > 0 {
            let fake = FakeNodeArgs {
                kubeconfig: running.kubeconfig.clone(),
                count: fake_nodes,
                prefix: "fake-node".into(),
                cpu: "32".into(),
                memory: "256Gi".into(),
                pods: "110".into(),
            };
            tokio::spawn(kubelet::fake::run(client.clone(), fake.config()));
        }
        if let Some(config) = kubelet_config {
            tokio::spawn(async move {
                if let Err(e) = kubelet::run(client, config).await {
                    tracing::error!(error = %e, "the kubelet stopped");
                }
            });
        }
    }
    running
        .serve(shutdown_signal())
        .await
        .context("API server failed")
}

fn etcd_config(endpoints: Vec<String>, prefix: String) -> apiserver::storage::etcd::EtcdConfig {
    apiserver::storage::etcd::EtcdConfig {
        endpoints,
        prefix,
        ca_file: None,
        cert_file: None,
        key_file: None,
    }
}

/// Writes every object of an embedded store into etcd, oldest write first, so
/// resourceVersion order is kept (etcd assigns the new revisions).
async fn migrate(data_dir: PathBuf, to_etcd: Vec<String>, prefix: String) -> anyhow::Result<()> {
    use apiserver::storage::Storage;
    anyhow::ensure!(!to_etcd.is_empty(), "--to-etcd is required");
    let (revision, mut entries) =
        apiserver::storage::embedded::consistent_entries(&data_dir.join("store"))
            .with_context(|| format!("reading {}", data_dir.display()))?;
    entries.sort_by_key(|(_, _, mod_revision, _)| *mod_revision);
    let store = apiserver::storage::etcd::EtcdStore::connect(etcd_config(to_etcd, prefix)).await?;
    for (key, _, _, value) in &entries {
        store
            .create(key, value.clone())
            .await
            .with_context(|| format!("writing {key} to etcd"))?;
    }
    println!(
        "migrated {} objects (embedded revision {revision}) to etcd",
        entries.len()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("IRONKUBE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Server(args) => runtime.block_on(serve(args, true)),
        Command::Apiserver(args) => runtime.block_on(serve(args, false)),
        Command::ControllerManager { kubeconfig } => runtime.block_on(async move {
            let client = client_from(&kubeconfig).await?;
            tokio::select! {
                () = controllers::run_elected(client, identity(), election_timing()) => anyhow::bail!("controllers stopped"),
                () = shutdown_signal() => Ok(()),
            }
        }),
        Command::Scheduler { kubeconfig } => runtime.block_on(async move {
            let client = client_from(&kubeconfig).await?;
            tokio::select! {
                () = run_scheduler(client) => anyhow::bail!("scheduler stopped"),
                () = shutdown_signal() => Ok(()),
            }
        }),
        Command::FakeNodes(args) => runtime.block_on(async move {
            let client = client_from(&args.kubeconfig).await?;
            tokio::select! {
                () = kubelet::fake::run(client, args.config()) => anyhow::bail!("fake nodes stopped"),
                () = shutdown_signal() => Ok(()),
            }
        }),
        Command::Kubelet(args) => runtime.block_on(async move {
            let client = client_from(&args.kubeconfig).await?;
            let node_name = match args.node_name {
                Some(name) => name,
                None => host_node_name()?,
            };
            std::fs::create_dir_all(&args.root_dir)
                .with_context(|| format!("creating {}", args.root_dir.display()))?;
            let mut config = kubelet::Config::new(node_name, args.root_dir);
            config.runtime_endpoint = args.containerd_address;
            config.pod_cidr = args.pod_cidr;
            config.node_ip = args.node_ip;
            config.port = args.port;
            config.allowed_unsafe_sysctls = args.allowed_unsafe_sysctls;
            tokio::select! {
                r = kubelet::run(client, config) => {
                    r?;
                    anyhow::bail!("kubelet stopped")
                }
                () = shutdown_signal() => Ok(()),
            }
        }),
        Command::Snapshot { command: SnapshotCommand::Save { file, data_dir, etcd_servers } } => {
            if etcd_servers.is_empty() {
                let dir = data_dir.context("--data-dir is required")?;
                let rev = apiserver::storage::embedded::save_snapshot_of_dir(&dir.join("store"), &file)
                    .with_context(|| format!("saving a snapshot of {}", dir.display()))?;
                println!("saved revision {rev} to {}", file.display());
            } else {
                let info = runtime.block_on(async {
                    let store = apiserver::storage::etcd::EtcdStore::connect(etcd_config(etcd_servers, "/registry".into())).await?;
                    store.snapshot_save(&file).await
                })?;
                let rev = info.revision.map_or_else(|| "unknown".to_string(), |r| r.to_string());
                println!("saved revision {rev} to {} ({} bytes)", file.display(), info.bytes);
            }
            Ok(())
        }
        Command::Killall {
            node_name,
            containerd_address,
        } => runtime.block_on(async move {
            let node = match node_name {
                Some(name) => name,
                None => host_node_name()?,
            };
            let removed = kubelet::killall::remove_node_pods(&containerd_address, &node)
                .await
                .with_context(|| format!("removing the pods of node {node}"))?;
            println!("removed {removed} pod sandbox(es) of node {node}");
            Ok(())
        }),
        Command::Migrate { data_dir, to_etcd, etcd_prefix } => runtime.block_on(migrate(data_dir, to_etcd, etcd_prefix)),
        Command::Snapshot {
            command: SnapshotCommand::Restore { file, data_dir },
        } => {
            let rev =
                apiserver::storage::embedded::restore_snapshot(&file, &data_dir.join("store"))
                    .with_context(|| {
                        format!("restoring {} into {}", file.display(), data_dir.display())
                    })?;
            println!("restored revision {rev} into {}", data_dir.display());
            Ok(())
        }
    }
}
