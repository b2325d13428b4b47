//! Drives the pods bound to fake nodes: one `kube::runtime` controller over
//! all pods that, for pods on our nodes, writes the Running status (with an
//! IP from the node's pod CIDR), ends pods as their script says (Job pods
//! Succeeded by default), keeps Ready in step with the `ready` annotation
//! and readiness gates, and removes pods being deleted. What to do is
//! decided by [`next_step`]; this module only carries it out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use tokio::time::Instant;

use super::Error;
use super::ipam::PodIps;
use super::node::{Registered, patch_params};
use super::pod_status::{self, is_terminal};
use super::script::{Script, Step, next_step};

struct Ctx {
    client: kube::Client,
    nodes: HashMap<String, Registered>,
    ips: Mutex<HashMap<String, PodIps>>,
    /// When this process reported each running pod (by UID) Running: what
    /// `run-for` counts from. `status.startTime` has whole seconds only, so
    /// it serves just for pods started before a restart.
    started: Mutex<HashMap<String, Instant>>,
    store: Store<Pod>,
}

/// Runs until the pod watch ends (it does not, short of a panic).
pub(crate) async fn run(client: kube::Client, registered: &[Registered]) {
    let nodes: HashMap<String, Registered> = registered
        .iter()
        .map(|n| (n.name.clone(), n.clone()))
        .collect();
    let ips = nodes
        .values()
        .map(|n| (n.name.clone(), PodIps::new(n.cidr)))
        .collect();
    let api: Api<Pod> = Api::all(client.clone());
    let controller = Controller::new(api.clone(), watcher::Config::default());
    let ctx = Arc::new(Ctx {
        client,
        nodes,
        ips: Mutex::new(ips),
        started: Mutex::new(HashMap::new()),
        store: controller.store(),
    });
    // Pods already running on these nodes keep their IPs across a restart;
    // they are learnt before any pending pod is handed one.
    loop {
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                for pod in &list.items {
                    ctx.adopt(pod);
                }
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "listing pods to adopt failed; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "fake node pod reconcile");
            }
        })
        .await;
}

impl Ctx {
    fn node_of<'a>(&'a self, pod: &Pod) -> Option<&'a Registered> {
        let name = pod.spec.as_ref()?.node_name.as_deref()?;
        self.nodes.get(name)
    }

    fn with_ips<R>(&self, node: &str, f: impl FnOnce(&mut PodIps) -> R) -> Option<R> {
        lock(&self.ips).get_mut(node).map(f)
    }

    fn adopt(&self, pod: &Pod) {
        let (Some(node), Some(uid)) = (self.node_of(pod), pod.metadata.uid.as_deref()) else {
            return;
        };
        if is_terminal(pod) || pod_status::uses_host_network(pod) {
            return;
        }
        if let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()) {
            let adopted = self.with_ips(&node.name, |ips| ips.adopt(uid, ip));
            if adopted == Some(false) {
                tracing::warn!(node = %node.name, %uid, %ip, "pod IP outside the node's range or taken");
            }
        }
    }

    fn release(&self, node: &str, pod: &Pod) {
        if let Some(uid) = pod.metadata.uid.as_deref() {
            self.with_ips(node, |ips| ips.release(uid));
            lock(&self.started).remove(uid);
        }
    }

    fn started(&self, uid: &str) {
        lock(&self.started).insert(uid.into(), Instant::now());
    }

    /// How long the pod has been running (zero if it is not running).
    fn running_for(&self, pod: &Pod, now: Timestamp) -> Duration {
        let Some(uid) = pod.metadata.uid.as_deref() else {
            return Duration::ZERO;
        };
        if let Some(since) = lock(&self.started).get(uid) {
            return since.elapsed();
        }
        // Started by an earlier run of the fake node: trust startTime.
        pod.status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .and_then(|t| Duration::try_from(now.duration_since(t.0)).ok())
            .unwrap_or(Duration::ZERO)
    }

    /// An IP for the pod, reclaiming those of pods that vanished unseen when
    /// the range is full.
    fn allocate(&self, node: &str, uid: &str) -> Option<String> {
        if let Some(ip) = self.with_ips(node, |ips| ips.allocate(uid)).flatten() {
            return Some(ip.to_string());
        }
        let live: std::collections::HashSet<String> = self
            .store
            .state()
            .iter()
            .filter(|p| {
                p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)
                    && !is_terminal(p)
            })
            .filter_map(|p| p.metadata.uid.clone())
            .collect();
        self.with_ips(node, |ips| {
            ips.retain(|uid| live.contains(uid));
            ips.allocate(uid)
        })
        .flatten()
        .map(|ip| ip.to_string())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn error_policy(_pod: Arc<Pod>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(error = %err, "fake node pod update failed; retrying");
    Action::requeue(Duration::from_secs(1))
}

async fn reconcile(pod: Arc<Pod>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let Some(node) = ctx.node_of(&pod) else {
        return Ok(Action::await_change());
    };
    let (Some(ns), Some(name), Some(uid)) = (
        pod.metadata.namespace.as_deref(),
        pod.metadata.name.as_deref(),
        pod.metadata.uid.as_deref(),
    ) else {
        return Ok(Action::await_change());
    };
    let script = Script::of(&pod).unwrap_or_else(|e| {
        tracing::warn!(namespace = %ns, pod = %name, error = %e, "ignoring the pod's fake.ironkube.dev annotations");
        Script::default_for(&pod)
    });
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let now = Timestamp::now();
    match next_step(&pod, &script, ctx.running_for(&pod, now)) {
        Step::Remove { stop_first } => {
            ctx.release(&node.name, &pod);
            // The kubelet stops the containers, reports the terminal phase,
            // then removes the pod with a zero grace period.
            if stop_first {
                write_status(&api, &pod, pod_status::stopped(&pod, now)).await?;
            }
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(uid.into()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api.delete(name, &params).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Step::Done => ctx.release(&node.name, &pod),
        Step::End(end) => {
            ctx.release(&node.name, &pod);
            write_status(&api, &pod, pod_status::ended(&pod, &end, now)).await?;
            tracing::debug!(namespace = %ns, pod = %name, phase = end.phase.as_str(), "pod ended");
        }
        Step::Run { recheck } => {
            // Readiness gates are set by others and the ready annotation by
            // the user; Ready follows both.
            if let Some(status) = pod_status::resync(&pod, script.ready, now) {
                write_status(&api, &pod, status).await?;
            }
            if let Some(after) = recheck {
                return Ok(Action::requeue(after));
            }
        }
        Step::Start => {
            let pod_ip = if pod_status::uses_host_network(&pod) {
                node.host_ip.clone()
            } else {
                ctx.allocate(&node.name, uid)
                    .ok_or_else(|| Error::NoPodIp(node.name.clone()))?
            };
            let status = pod_status::running(&pod, &node.host_ip, &pod_ip, script.ready, now);
            write_status(&api, &pod, status).await?;
            ctx.started(uid);
            tracing::debug!(namespace = %ns, pod = %name, %pod_ip, "pod running");
        }
    }
    Ok(Action::await_change())
}

/// Writes the status through `pods/status` (stamped with the generation it
/// reflects), guarded by the resourceVersion we
/// computed it from so conditions others set meanwhile are never lost. A
/// conflict or a vanished pod is not an error: a newer event follows.
async fn write_status(api: &Api<Pod>, pod: &Pod, mut status: PodStatus) -> Result<(), Error> {
    let Some(name) = pod.metadata.name.as_deref() else {
        return Ok(());
    };
    // The kubelet reports which pod generation its status reflects.
    status.observed_generation = pod.metadata.generation;
    let patch = serde_json::json!({
        "metadata": { "resourceVersion": pod.metadata.resource_version },
        "status": status,
    });
    match api
        .patch_status(name, &patch_params(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
