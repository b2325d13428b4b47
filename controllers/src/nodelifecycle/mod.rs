//! The node lifecycle controller: notices nodes whose kubelet stopped
//! renewing its Lease (`kube-node-lease/<node>`) and marks them `Unknown`,
//! keeps the `node.kubernetes.io/*` lifecycle taints in step with node
//! conditions and `spec.unschedulable` ([`monitor`]), and evicts pods from
//! nodes with NoExecute taints once their tolerations run out
//! ([`eviction`]).
//!
//! ```text
//!  Lease renewed ──► Ready=True ─┐ no lifecycle taints
//!                                │
//!  silent > grace ─► Ready=Unknown ─► unreachable:NoSchedule + :NoExecute
//!  kubelet reports ► Ready=False ───► not-ready:NoSchedule + :NoExecute
//!                                       │ (NoExecute rate-limited per zone)
//!                                       ▼
//!               pods Ready=False; evicted after tolerationSeconds
//! ```
//!
//! Note: the API server does not add upstream's default 300 s tolerations for
//! `not-ready`/`unreachable` (the DefaultTolerationSeconds admission plugin),
//! so a pod that does not declare them is evicted as soon as the NoExecute
//! taint lands.

mod eviction;
mod health;
mod monitor;

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::Api;
use kube::runtime::controller::Controller;
use kube::runtime::{WatchStreamExt, reflector, watcher};

/// Timings and eviction rates, with upstream's kube-controller-manager
/// defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// How often nodes are checked (`--node-monitor-period`, 5 s).
    pub node_monitor_period: Duration,
    /// How long a node may stay silent before it is marked Unknown
    /// (`--node-monitor-grace-period`: 50 s since v1.32, 40 s before).
    pub node_monitor_grace_period: Duration,
    /// The same for a node that never reported Ready
    /// (`--node-startup-grace-period`, 60 s).
    pub node_startup_grace_period: Duration,
    /// Nodes per second that get NoExecute taints in a healthy zone
    /// (`--node-eviction-rate`, 0.1).
    pub node_eviction_rate: f64,
    /// The same in a partially disrupted zone of a large cluster
    /// (`--secondary-node-eviction-rate`, 0.01).
    pub secondary_node_eviction_rate: f64,
    /// Zones up to this size stop evicting when partially disrupted
    /// (`--large-cluster-size-threshold`, 50).
    pub large_cluster_size_threshold: usize,
    /// Share of not-ready nodes (of more than two) that makes a zone
    /// partially disrupted (`--unhealthy-zone-threshold`, 0.55).
    pub unhealthy_zone_threshold: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            node_monitor_period: Duration::from_secs(5),
            node_monitor_grace_period: Duration::from_secs(50),
            node_startup_grace_period: Duration::from_secs(60),
            node_eviction_rate: 0.1,
            secondary_node_eviction_rate: 0.01,
            large_cluster_size_threshold: 50,
            unhealthy_zone_threshold: 0.55,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kube API: {0}")]
    Kube(#[from] kube::Error),
}

/// Runs the node lifecycle controller with upstream's defaults.
pub async fn run(client: kube::Client) {
    run_with(client, Config::default()).await;
}

/// Runs the node monitor and the taint eviction controller until the
/// future is dropped.
pub async fn run_with(client: kube::Client, config: Config) {
    let (nodes, node_writer) = reflector::store::<Node>();
    let (leases, lease_writer) = reflector::store::<Lease>();
    let node_api: Api<Node> = Api::all(client.clone());
    let lease_api: Api<Lease> = Api::namespaced(client.clone(), monitor::LEASE_NAMESPACE);
    let pod_api: Api<Pod> = Api::all(client.clone());
    let pods = Controller::new(pod_api, watcher::Config::default());
    let pod_store = pods.store();

    let node_reflector = watcher(node_api, watcher::Config::default())
        .default_backoff()
        .reflect(node_writer)
        .for_each(|_| futures::future::ready(()));
    let lease_reflector = watcher(lease_api, watcher::Config::default())
        .default_backoff()
        .reflect(lease_writer)
        .for_each(|_| futures::future::ready(()));
    let monitor = {
        let (client, nodes, leases, pod_store) = (
            client.clone(),
            nodes.clone(),
            leases.clone(),
            pod_store.clone(),
        );
        async move {
            // Judge no node before both caches are filled: an empty lease
            // cache would look like every node went silent.
            let (a, b) = tokio::join!(nodes.wait_until_ready(), leases.wait_until_ready());
            if a.is_err() || b.is_err() {
                tracing::error!("node lifecycle caches never became ready");
                return;
            }
            monitor::Monitor::new(client, config, nodes, leases, pod_store)
                .run()
                .await;
        }
    };
    tokio::join!(
        node_reflector,
        lease_reflector,
        monitor,
        eviction::run(client, nodes, pods),
    );
}
