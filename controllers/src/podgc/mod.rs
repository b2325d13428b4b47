//! The pod garbage collector (upstream's PodGC): every `gc_check_period` it
//! force-deletes (grace period 0)
//!
//! - terminating pods on nodes that are not ready and carry the
//!   `node.kubernetes.io/out-of-service` taint;
//! - terminated pods (Succeeded or Failed) beyond
//!   `terminated_pod_gc_threshold`, oldest first;
//! - pods bound to a node that does not exist, once the node has been
//!   missing for the quarantine time and a fresh read confirms it is gone;
//! - terminating pods that were never scheduled.
//!
//! A pod that is not yet terminal is first moved to phase Failed; an
//! orphaned one also gets the `DisruptionTarget` condition
//! (`DeletionByPodGC`), as upstream.

mod plan;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::Store;
use kube::runtime::{WatchStreamExt, reflector, watcher};

use crate::workload::time;

/// Timings and the threshold, with upstream's defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Terminated pods kept before the oldest are deleted
    /// (`--terminated-pod-gc-threshold`, 12500; 0 disables).
    pub terminated_pod_gc_threshold: usize,
    /// How often the collector runs (20 s).
    pub gc_check_period: Duration,
    /// How long a node must be missing before its pods count as orphaned
    /// (40 s).
    pub quarantine: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            terminated_pod_gc_threshold: 12_500,
            gc_check_period: Duration::from_secs(20),
            quarantine: Duration::from_secs(40),
        }
    }
}

const FIELD_MANAGER: &str = "pod-garbage-collector";

/// Runs the pod garbage collector with upstream's defaults.
pub async fn run(client: kube::Client) {
    run_with(client, Config::default()).await;
}

/// Runs the pod garbage collector with `config` until the future is dropped.
pub async fn run_with(client: kube::Client, config: Config) {
    let (pods, pod_writer) = reflector::store::<Pod>();
    let (nodes, node_writer) = reflector::store::<Node>();
    let pod_reflector = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(pod_writer)
        .for_each(|_| futures::future::ready(()));
    let node_reflector = watcher(Api::<Node>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(node_writer)
        .for_each(|_| futures::future::ready(()));
    let collector = Collector {
        client,
        config,
        pods,
        nodes,
        missing_since: HashMap::new(),
    };
    tokio::join!(pod_reflector, node_reflector, collector.run());
}

struct Collector {
    client: kube::Client,
    config: Config,
    pods: Store<Pod>,
    nodes: Store<Node>,
    /// Nodes pods are bound to that were missing, and since when.
    missing_since: HashMap<String, Instant>,
}

impl Collector {
    async fn run(mut self) {
        let (a, b) = tokio::join!(self.pods.wait_until_ready(), self.nodes.wait_until_ready());
        if a.is_err() || b.is_err() {
            tracing::error!("pod GC caches never became ready");
            return;
        }
        let mut tick = tokio::time::interval(self.config.gc_check_period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.pass().await;
        }
    }

    async fn pass(&mut self) {
        let pods = self.pods.state();
        let nodes = self.nodes.state();

        for pod in plan::terminating_out_of_service(&pods, &nodes) {
            self.delete(pod, None).await;
        }
        for pod in plan::terminated_beyond(&pods, self.config.terminated_pod_gc_threshold) {
            self.delete(pod, None).await;
        }

        // Orphans: nodes must stay missing for the quarantine, then a fresh
        // read must confirm they are gone (the cache may lag a new node).
        let missing = plan::missing_nodes(&pods, &nodes);
        let now = Instant::now();
        self.missing_since.retain(|n, _| missing.contains(n));
        let mut gone = Vec::new();
        for node in missing {
            let since = *self.missing_since.entry(node.clone()).or_insert(now);
            if now.duration_since(since) < self.config.quarantine {
                continue;
            }
            let api: Api<Node> = Api::all(self.client.clone());
            match api.get_opt(&node).await {
                Ok(None) => gone.push(node),
                Ok(Some(_)) => {
                    self.missing_since.remove(&node);
                }
                Err(e) => {
                    tracing::warn!(node = %node, error = %e, "checking a missing node failed")
                }
            }
        }
        for node in &gone {
            self.missing_since.remove(node);
            for pod in plan::bound_to(&pods, node) {
                tracing::info!(pod = ?pod.metadata.name, node = %node, "deleting orphaned pod");
                self.delete(pod, Some(plan::orphan_condition(time::now())))
                    .await;
            }
        }

        for pod in plan::unscheduled_terminating(&pods) {
            self.delete(pod, None).await;
        }
    }

    /// Marks a non-terminal pod Failed (with `condition`, if any), then
    /// deletes it with no grace period.
    async fn delete(&self, pod: &Pod, condition: Option<serde_json::Value>) {
        let (Some(ns), Some(name)) = (
            pod.metadata.namespace.as_deref(),
            pod.metadata.name.as_deref(),
        ) else {
            return;
        };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        if !plan::is_terminal(pod) {
            let mut status = serde_json::json!({"phase": "Failed"});
            if let Some(c) = condition {
                status["conditions"] = serde_json::json!([c]);
            }
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.to_string()),
                ..PatchParams::default()
            };
            let patch = serde_json::json!({ "status": status });
            match api
                .patch_status(name, &params, &Patch::Strategic(&patch))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => return,
                Err(e) => {
                    tracing::warn!(namespace = %ns, pod = %name, error = %e, "marking pod failed before deleting it failed");
                    return;
                }
            }
        }
        tracing::info!(namespace = %ns, pod = %name, "pod GC force-deleting pod");
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => {
                tracing::warn!(namespace = %ns, pod = %name, error = %e, "pod GC delete failed")
            }
        }
    }
}
