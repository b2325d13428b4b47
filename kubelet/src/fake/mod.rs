//! A kwok-style fake node: an API client that registers Nodes, keeps their
//! Leases and Ready condition fresh, and plays the pods bound to them through
//! their lifecycle (Running and Ready at once, Job pods on to Succeeded,
//! deleted pods removed) without running anything. It stands in for kubelets
//! in scheduler and controller tests and in benchmarks.

mod ipam;
mod lease;
mod node;
mod pod_status;
mod pods;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Taint};
use kube::api::Api;

/// The field manager of every write a fake node makes.
pub(crate) const FIELD_MANAGER: &str = "kwok-fake-kubelet";

/// What fake nodes to run and how they report.
#[derive(Debug, Clone)]
pub struct FakeNodeConfig {
    pub names: Vec<String>,
    /// Capacity (= allocatable) quantities, in Kubernetes quantity syntax.
    pub cpu: String,
    pub memory: String,
    pub pods: String,
    pub ephemeral_storage: String,
    /// Extra node labels, on top of the kubelet's and kwok's own.
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    /// How often each Lease is renewed (kubelet: a quarter of the 40 s lease).
    pub lease_interval: Duration,
    /// How often the Ready condition's `lastHeartbeatTime` is refreshed. The
    /// kubelet's `nodeStatusReportFrequency` is 5 min because the Lease is the
    /// liveness signal; we use 1 min so `kubectl get/describe node` looks
    /// alive at a glance, which costs one small write per node a minute.
    pub status_interval: Duration,
}

impl FakeNodeConfig {
    /// Nodes named `names` with kwok-like defaults: 32 CPUs, 256Gi, 110 pods.
    pub fn new(names: Vec<String>) -> Self {
        Self {
            names,
            cpu: "32".into(),
            memory: "256Gi".into(),
            pods: "110".into(),
            ephemeral_storage: "1Ti".into(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
            lease_interval: Duration::from_secs(10),
            status_interval: Duration::from_secs(60),
        }
    }

    /// `count` nodes named `<prefix>-0`, `<prefix>-1`, ...
    pub fn numbered(prefix: &str, count: usize) -> Self {
        Self::new((0..count).map(|i| format!("{prefix}-{i}")).collect())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kube API: {0}")]
    Kube(#[from] kube::Error),
    #[error("no free pod CIDR left for a node")]
    NoCidr,
    #[error("no free pod IP left on node {0}")]
    NoPodIp(String),
}

/// How long to wait before retrying a failed registration.
const RETRY: Duration = Duration::from_secs(2);
/// How many nodes' Leases or statuses are written at once.
pub(crate) const PARALLEL_WRITES: usize = 32;

/// Runs the fake nodes forever: registers them (retrying until the API server
/// accepts), then renews Leases, refreshes status and drives pods.
pub async fn run(client: kube::Client, config: FakeNodeConfig) {
    let registered = loop {
        match node::register_all(&client, &config).await {
            Ok(nodes) => break nodes,
            Err(e) => {
                tracing::warn!(error = %e, "registering fake nodes failed; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    };
    tokio::join!(
        renew_leases(&client, &registered, config.lease_interval),
        report_status(&client, &registered, config.status_interval),
        pods::run(client.clone(), &registered),
    );
}

async fn renew_leases(client: &kube::Client, nodes: &[node::Registered], every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        futures::stream::iter(nodes)
            .for_each_concurrent(PARALLEL_WRITES, |n| async move {
                if let Err(e) = lease::renew(client, n).await {
                    tracing::warn!(node = %n.name, error = %e, "lease renewal failed");
                }
            })
            .await;
    }
}

async fn report_status(client: &kube::Client, nodes: &[node::Registered], every: Duration) {
    let api: Api<Node> = Api::all(client.clone());
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick fires at once; registration has just written the status.
    tick.tick().await;
    loop {
        tick.tick().await;
        let api = &api;
        futures::stream::iter(nodes)
            .for_each_concurrent(PARALLEL_WRITES, |n| async move {
                if let Err(e) = node::heartbeat(api, &n.name, n.since).await {
                    tracing::warn!(node = %n.name, error = %e, "node status heartbeat failed");
                }
            })
            .await;
    }
}
