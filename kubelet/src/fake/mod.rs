//! A kwok-style fake node: an API client that registers Nodes, keeps their
//! Leases and Ready condition fresh, and plays the pods bound to them through
//! their lifecycle without running anything. It stands in for kubelets in
//! scheduler and controller tests and in benchmarks.
//!
//! # How a pod is played
//!
//! Left alone, a pod bound to a fake node goes as under kwok's default
//! stages: it is reported Running and Ready at once (Ready still waits for
//! its `spec.readinessGates`); a pod owned by a Job then ends Succeeded with
//! every container exited 0; a pod being deleted is reported stopped (Failed,
//! exit 143, unless already terminal) and removed with a zero grace period.
//!
//! A pod can ask for another course through annotations, usually set on the
//! template of the workload that makes it — kwok's stages, as data on the
//! pod. They are read again on every change of the pod, so a test (or a
//! person) can steer a running pod by editing them, as one pokes kwok:
//!
//! | annotation | values | default | effect |
//! | --- | --- | --- | --- |
//! | [`fake.ironkube.dev/ready`](READY) | `"true"`, `"false"` | `"true"` | whether the containers of the Running pod are ready: `"false"` keeps it Running with ContainersReady and Ready False (reason `ContainersNotReady`); flipping it flips them |
//! | [`fake.ironkube.dev/phase-after`](PHASE_AFTER) | `Succeeded`, `Failed`, `Running` | `Succeeded` for a Job's pod, `Running` otherwise | the phase the pod ends in after `run-for`; `Running`: it never ends by itself |
//! | [`fake.ironkube.dev/exit-code`](EXIT_CODE) | an integer | `0` if Succeeded, `1` if Failed | the exit code every container (`spec.containers`) reports; without `phase-after` it implies the end: `0` Succeeded, anything else Failed |
//! | [`fake.ironkube.dev/run-for`](RUN_FOR) | a Go-style duration: `500ms`, `2s`, `1m30s` | `0s` | how long the pod runs before it ends, counted from when the fake node reported it Running (so a pod told to end after it has already run that long ends at once) |
//!
//! The same `fake.ironkube.dev/ready: "false"`, set on a fake Node, makes it
//! report `Ready=False` (reason `KubeletNotReady`) at its next status
//! heartbeat while it keeps renewing its Lease, as a sick kubelet would;
//! removing it (or `"true"`) makes it report Ready again.
//!
//! Succeeded goes with exit code 0 and Failed with a non-zero one, as the
//! kubelet reports them; terminated containers carry reason `Completed` (0)
//! or `Error`. `restartPolicy` is not consulted: the fake node does not
//! restart containers, it plays each pod as though its containers exited
//! once. A pod whose annotations cannot be followed (an unknown value, a
//! contradiction such as `phase-after: Succeeded` with `exit-code: "2"`) is
//! played by the defaults above, and the fake node logs a warning naming
//! the annotation; [`Script::of`] gives the same verdict to a caller that
//! wants to check first.
//!
//! For example, a Job whose pods fail with exit code 42 after two seconds:
//!
//! ```yaml
//! spec:
//!   template:
//!     metadata:
//!       annotations:
//!         fake.ironkube.dev/phase-after: Failed
//!         fake.ironkube.dev/exit-code: "42"
//!         fake.ironkube.dev/run-for: 2s
//! ```
//!
//! The lifecycle, and the annotations that move it on:
//!
//! ```text
//!  Pending ──bound to a fake node──▶ Running ──run-for elapsed, phase-after──▶ Succeeded / Failed
//!                                    ready ⇄ not ready                     (exit-code)
//!                                    (the `ready` annotation)
//!  any phase ──deletionTimestamp──▶ stopped (Failed, 143) ──▶ removed
//! ```

mod ipam;
mod lease;
mod node;
mod pod_status;
mod pods;
mod script;

pub use script::{EXIT_CODE, End, PHASE_AFTER, READY, RUN_FOR, Script, ScriptError, Terminal};

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
