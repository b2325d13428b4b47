//! What one kubelet is told on its command line.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The kubelet version this node reports: the Kubernetes release whose CRI
/// (`proto/runtime/v1/api.proto`) and behaviour it follows.
pub const KUBELET_VERSION: &str = "v1.34.12";

#[derive(Debug, Clone)]
pub struct Config {
    pub node_name: String,
    /// Where the kubelet keeps its files (pod logs under `logs/`, pod
    /// volumes and `/etc/hosts` files under `pods/<uid>/`).
    pub root_dir: PathBuf,
    /// The CRI runtime's unix socket (`unix://` prefix optional).
    pub runtime_endpoint: PathBuf,
    /// This node's pod CIDR. Written to `spec.podCIDR` when the Node has none
    /// and handed to the runtime (CRI UpdateRuntimeConfig), whose CNI
    /// template turns it into the bridge's IP range.
    pub pod_cidr: Option<String>,
    /// The node's InternalIP.
    pub node_ip: IpAddr,
    /// Port of the kubelet's HTTP server (0: any free port).
    pub port: u16,
    /// How often the Lease in `kube-node-lease` is renewed.
    pub lease_interval: Duration,
    /// How often the node status (conditions' heartbeat, images) is written.
    pub status_interval: Duration,
    /// How often a pod worker relists its containers while the pod is active.
    pub relist_interval: Duration,
    /// The cluster DNS service's IPs (upstream `clusterDNS`): the
    /// nameservers of `ClusterFirst` pods.
    pub cluster_dns: Vec<IpAddr>,
    /// The cluster's DNS domain (upstream `clusterDomain`).
    pub cluster_domain: String,
    /// The resolver configuration `Default` pods inherit (upstream
    /// `resolvConf`); `None` points them at the local machine.
    pub resolv_conf: Option<PathBuf>,
    /// How often configMap, secret, downwardAPI and projected volumes of
    /// running pods are refreshed from the API.
    pub volume_resync_interval: Duration,
    /// Unsafe sysctls pods may set on this node: exact names, or prefixes
    /// ending in `*` (`--allowed-unsafe-sysctls`).
    pub allowed_unsafe_sysctls: Vec<String>,
}

impl Config {
    pub fn new(node_name: impl Into<String>, root_dir: impl Into<PathBuf>) -> Self {
        Self {
            node_name: node_name.into(),
            root_dir: root_dir.into(),
            runtime_endpoint: PathBuf::from("/run/containerd/containerd.sock"),
            pod_cidr: None,
            node_ip: IpAddr::from([127, 0, 0, 1]),
            port: 10250,
            lease_interval: Duration::from_secs(10),
            status_interval: Duration::from_secs(60),
            relist_interval: Duration::from_secs(1),
            cluster_dns: vec![IpAddr::from([10, 96, 0, 10])],
            cluster_domain: "cluster.local".into(),
            resolv_conf: Some(PathBuf::from("/etc/resolv.conf")),
            volume_resync_interval: Duration::from_secs(15),
            allowed_unsafe_sysctls: Vec::new(),
        }
    }
}
