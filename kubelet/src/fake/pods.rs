//! Drives the pods bound to fake nodes: one `kube::runtime` controller over
//! all pods that, for pods on our nodes, writes the Running status (with an
//! IP from the node's pod CIDR), completes Job pods, keeps Ready in step with
//! readiness gates, and removes pods being deleted.

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

use super::Error;
use super::ipam::PodIps;
use super::node::{Registered, patch_params};
use super::pod_status::{self, is_terminal, phase};

struct Ctx {
    client: kube::Client,
    nodes: HashMap<String, Registered>,
    ips: Mutex<HashMap<String, PodIps>>,
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
        let mut all = self
            .ips
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        all.get_mut(node).map(f)
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
        }
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
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let now = Timestamp::now();
    if pod.metadata.deletion_timestamp.is_some() {
        ctx.release(&node.name, &pod);
        // The kubelet stops the containers, reports the terminal phase, then
        // removes the pod with a zero grace period.
        if !is_terminal(&pod) {
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
        return match api.delete(name, &params).await {
            Ok(_) => Ok(Action::await_change()),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {
                Ok(Action::await_change())
            }
            Err(e) => Err(e.into()),
        };
    }
    match phase(&pod) {
        "Succeeded" | "Failed" => {
            ctx.release(&node.name, &pod);
        }
        "Running" if pod_status::is_job_owned(&pod) => {
            ctx.release(&node.name, &pod);
            write_status(&api, &pod, pod_status::succeeded(&pod, now)).await?;
            tracing::debug!(namespace = %ns, pod = %name, "job pod completed");
        }
        "Running" => {
            // Readiness gates are set by others; Ready follows them. A spec
            // change (new generation) is acknowledged as the kubelet does.
            let observed = pod.status.as_ref().and_then(|s| s.observed_generation);
            let conditions = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            let desired = pod_status::ready_condition(&pod, &conditions, true, now);
            let current = conditions.iter().find(|c| c.type_ == "Ready");
            let ready_stale =
                current.map(|c| (&c.status, &c.reason)) != Some((&desired.status, &desired.reason));
            if ready_stale || observed != pod.metadata.generation {
                let mut status = pod.status.clone().unwrap_or_default();
                status.conditions = Some(pod_status::merge_conditions(conditions, vec![desired]));
                write_status(&api, &pod, status).await?;
            }
        }
        _ => {
            let pod_ip = if pod_status::uses_host_network(&pod) {
                node.host_ip.clone()
            } else {
                ctx.allocate(&node.name, uid)
                    .ok_or_else(|| Error::NoPodIp(node.name.clone()))?
            };
            write_status(
                &api,
                &pod,
                pod_status::running(&pod, &node.host_ip, &pod_ip, now),
            )
            .await?;
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
