//! The node monitor: every `node_monitor_period` it looks at each Node and
//! its Lease, marks nodes whose kubelet went silent for longer than the
//! grace period as Unknown, keeps the lifecycle taints in step with the
//! conditions, and marks the pods of nodes that are not ready not ready.
//!
//! "Silent" is judged by local observation time, as upstream does, so clock
//! skew between the kubelet and this controller does not matter: a node's
//! probe time is when this monitor last *saw* its Lease renewed or its Ready
//! condition change.
//!
//! Adding a NoExecute taint (which evicts pods) is rate-limited per zone:
//! `node_eviction_rate` nodes per second while a zone is healthy,
//! `secondary_node_eviction_rate` while it is partially disrupted (none in
//! small clusters), and no tainting at all while every zone is fully
//! disrupted, which more likely means the control plane lost the nodes than
//! that every node died.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};

use super::Config;
use super::health::{self, ZoneState};
use crate::workload::events::Events;
use crate::workload::time;

pub(crate) const LEASE_NAMESPACE: &str = "kube-node-lease";
const FIELD_MANAGER: &str = "node-controller";

/// What the monitor last saw of a node.
struct Observed {
    heartbeat: Option<Timestamp>,
    transition: Option<Timestamp>,
    lease_renewed: Option<Timestamp>,
    probe: Instant,
}

pub(crate) struct Monitor {
    pub(crate) client: kube::Client,
    pub(crate) config: Config,
    pub(crate) nodes: Store<Node>,
    pub(crate) leases: Store<Lease>,
    pub(crate) pods: Store<Pod>,
    pub(crate) events: Events,
    seen: HashMap<String, Observed>,
    /// Per zone: when the next NoExecute taint may be added.
    next_taint: HashMap<String, Instant>,
}

impl Monitor {
    pub(crate) fn new(
        client: kube::Client,
        config: Config,
        nodes: Store<Node>,
        leases: Store<Lease>,
        pods: Store<Pod>,
    ) -> Self {
        Self {
            events: Events::new(client.clone(), "node-controller"),
            client,
            config,
            nodes,
            leases,
            pods,
            seen: HashMap::new(),
            next_taint: HashMap::new(),
        }
    }

    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(self.config.node_monitor_period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.pass().await;
        }
    }

    async fn pass(&mut self) {
        let now = time::now();
        let nodes = self.nodes.state();
        self.seen.retain(|name, _| {
            nodes
                .iter()
                .any(|n| n.metadata.name.as_deref() == Some(name.as_str()))
        });
        let mut current = Vec::with_capacity(nodes.len());
        for node in &nodes {
            match self.check_health(node, now).await {
                Ok(n) => current.push(n),
                Err(e) => {
                    tracing::warn!(node = ?node.metadata.name, error = %e, "updating node health failed");
                    current.push(node.as_ref().clone());
                }
            }
        }

        // Zone states from what the nodes look like now.
        let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
        for n in &current {
            let entry = counts.entry(health::zone_of(n)).or_default();
            if health::ready_status(n) == "True" {
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
        }
        let states: HashMap<String, (ZoneState, usize)> = counts
            .iter()
            .map(|(z, (ready, not_ready))| {
                let state =
                    health::zone_state(*ready, *not_ready, self.config.unhealthy_zone_threshold);
                (z.clone(), (state, ready + not_ready))
            })
            .collect();
        let all_disrupted = !states.is_empty()
            && states
                .values()
                .all(|(s, _)| *s == ZoneState::FullDisruption);
        if all_disrupted {
            tracing::warn!("every zone is fully disrupted; node lifecycle stops evicting");
        }

        for node in &current {
            if let Err(e) = self.sync_taints(node, &states, all_disrupted, now).await {
                tracing::warn!(node = ?node.metadata.name, error = %e, "updating node taints failed");
            }
            if health::ready_status(node) != "True" {
                self.mark_pods_not_ready(node, now).await;
            }
        }
    }

    /// Marks a silent node's conditions Unknown; returns the node as it is now.
    async fn check_health(&mut self, node: &Node, now: Timestamp) -> Result<Node, kube::Error> {
        let Some(name) = node.metadata.name.clone() else {
            return Ok(node.clone());
        };
        let ready = health::condition(node, "Ready");
        let heartbeat = ready
            .and_then(|c| c.last_heartbeat_time.as_ref())
            .map(|t| t.0);
        let transition = ready
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0);
        let lease_renewed = self
            .leases
            .get(&ObjectRef::new(&name).within(LEASE_NAMESPACE))
            .and_then(|l| l.spec.as_ref()?.renew_time.as_ref().map(|t| t.0));
        let seen_at = Instant::now();
        let obs = self.seen.entry(name.clone()).or_insert_with(|| Observed {
            heartbeat,
            transition,
            lease_renewed,
            probe: seen_at,
        });
        if obs.heartbeat != heartbeat || obs.transition != transition {
            obs.heartbeat = heartbeat;
            obs.transition = transition;
            obs.probe = seen_at;
        }
        if lease_renewed.is_some() && lease_renewed > obs.lease_renewed {
            obs.lease_renewed = lease_renewed;
            obs.probe = seen_at;
        }
        let grace = if ready.is_none() {
            self.config.node_startup_grace_period
        } else {
            self.config.node_monitor_grace_period
        };
        if seen_at.duration_since(obs.probe) <= grace {
            return Ok(node.clone());
        }
        let conditions = health::unknown_conditions(node, now);
        if conditions.is_empty() {
            return Ok(node.clone());
        }
        let was_ready = health::ready_status(node) == "True";
        tracing::info!(node = %name, "node stopped posting status; marking its conditions Unknown");
        let api: Api<Node> = Api::all(self.client.clone());
        let patch = serde_json::json!({"status": {"conditions": conditions}});
        let updated = api
            .patch_status(&name, &params(), &Patch::Strategic(&patch))
            .await?;
        // Our own write is not a sign of life.
        if let Some(c) = health::condition(&updated, "Ready") {
            obs.transition = c.last_transition_time.as_ref().map(|t| t.0);
            obs.heartbeat = c.last_heartbeat_time.as_ref().map(|t| t.0);
        }
        if was_ready {
            self.events.normal(
                node_ref(&updated),
                "NodeNotReady",
                "NodeNotReady",
                format!("Node {name} status is now: NodeNotReady"),
            );
        }
        Ok(updated)
    }

    /// Whether a NoExecute taint may be added in `zone` now.
    fn admit(&mut self, zone: &str, state: ZoneState, size: usize) -> bool {
        let rate = match state {
            ZoneState::Normal | ZoneState::FullDisruption => self.config.node_eviction_rate,
            ZoneState::PartialDisruption if size > self.config.large_cluster_size_threshold => {
                self.config.secondary_node_eviction_rate
            }
            ZoneState::PartialDisruption => 0.0,
        };
        if rate <= 0.0 {
            return false;
        }
        let now = Instant::now();
        let next = self.next_taint.entry(zone.to_string()).or_insert(now);
        if now < *next {
            return false;
        }
        *next = now + Duration::from_secs_f64(1.0 / rate);
        true
    }

    async fn sync_taints(
        &mut self,
        node: &Node,
        zones: &HashMap<String, (ZoneState, usize)>,
        all_disrupted: bool,
        now: Timestamp,
    ) -> Result<(), kube::Error> {
        let Some(name) = node.metadata.name.as_deref() else {
            return Ok(());
        };
        let current = health::taints(node);
        let keys = health::no_schedule_keys(node);
        let has_ours = |key: &str| {
            current
                .iter()
                .any(|t| t.effect == "NoExecute" && t.key == key)
        };
        let no_execute = if all_disrupted {
            Some(None)
        } else {
            match health::no_execute_key(node) {
                None => Some(None),
                // Already evicting: swapping not-ready for unreachable (or
                // back) is not a new eviction, so it is not rate-limited.
                Some(key) if has_ours(health::NOT_READY) || has_ours(health::UNREACHABLE) => {
                    Some(Some(key))
                }
                Some(key) => {
                    let zone = health::zone_of(node);
                    let (state, size) = zones.get(&zone).copied().unwrap_or((ZoneState::Normal, 1));
                    self.admit(&zone, state, size).then_some(Some(key))
                }
            }
        };
        let want = health::desired_taints(current, &keys, no_execute, now);
        if want.as_slice() == current {
            return Ok(());
        }
        let api: Api<Node> = Api::all(self.client.clone());
        // The resourceVersion makes this a compare-and-swap: taints others
        // changed meanwhile are never overwritten (the next pass retries).
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "spec": {"taints": want},
        });
        match api.patch(name, &params(), &Patch::Merge(&patch)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Sets the Ready condition of the node's pods to False.
    async fn mark_pods_not_ready(&self, node: &Node, now: Timestamp) {
        let Some(name) = node.metadata.name.as_deref() else {
            return;
        };
        for pod in self.pods.state() {
            if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(name) {
                continue;
            }
            let ready = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
            if ready.is_none_or(|c| c.status != "True") {
                continue;
            }
            let (Some(ns), Some(pod_name)) = (
                pod.metadata.namespace.as_deref(),
                pod.metadata.name.as_deref(),
            ) else {
                continue;
            };
            let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
            let patch = serde_json::json!({"status": {"conditions": [
                {"type": "Ready", "status": "False", "lastTransitionTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now)}
            ]}});
            match api
                .patch_status(pod_name, &params(), &Patch::Strategic(&patch))
                .await
            {
                Ok(_) => {
                    tracing::info!(namespace = %ns, pod = %pod_name, node = %name, "marked pod not ready");
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => {
                    tracing::warn!(namespace = %ns, pod = %pod_name, error = %e, "marking pod not ready failed");
                }
            }
        }
    }
}

fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    }
}

fn node_ref(node: &Node) -> ObjectReference {
    node.object_ref(&())
}
