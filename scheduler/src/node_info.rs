//! Per-node scheduling state: the node object plus the aggregate of the pods
//! assigned (or assumed) to it, which is what the filter and score plugins
//! look at. Also the per-pod precomputation (`PodInfo`) done once per
//! scheduling attempt so plugins do not re-derive it for every node.

use std::collections::HashMap;
use std::sync::Arc;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod, PodAffinityTerm, Taint};

use crate::plugins::inter_pod_affinity;
use crate::resources::{self, Resource};

/// A host port a container binds on its node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Empty means all addresses (`0.0.0.0`).
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    fn is_wildcard(&self) -> bool {
        self.ip.is_empty() || self.ip == "0.0.0.0" || self.ip == "::"
    }

    /// Two bindings conflict on the same port and protocol unless they bind
    /// different specific addresses.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.is_wildcard() || other.is_wildcard() || self.ip == other.ip)
    }
}

/// The host ports a pod asks for.
pub fn pod_host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // Restartable init containers (sidecars) keep their ports while running.
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    for c in spec.containers.iter().chain(sidecars) {
        for p in c.ports.iter().flatten() {
            if let Some(hp) = p.host_port.filter(|hp| *hp > 0) {
                out.push(HostPort {
                    ip: p.host_ip.clone().unwrap_or_default(),
                    protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_string()),
                    port: hp,
                });
            }
        }
    }
    out
}

/// What a pod contributes to its node, computed once when it enters the cache.
#[derive(Debug, Clone)]
pub struct PodUsage {
    pub requests: Resource,
    pub non_zero: Resource,
    pub ports: Vec<HostPort>,
    pub priority: i32,
    /// What other pods' affinity terms select on.
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// Required pod anti-affinity this pod imposes on pods coming later.
    pub required_anti_affinity: Vec<PodAffinityTerm>,
    /// Being deleted because the scheduler preempted it (still holds its
    /// resources until it is gone).
    pub terminating_by_preemption: bool,
}

impl PodUsage {
    pub fn of(pod: &Pod) -> Self {
        PodUsage {
            requests: resources::pod_requests(pod, false),
            non_zero: resources::pod_requests(pod, true),
            ports: pod_host_ports(pod),
            priority: pod_priority(pod),
            terminating_by_preemption: terminating_by_preemption(pod),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            required_anti_affinity: inter_pod_affinity::required_anti_affinity(pod.spec.as_ref()),
        }
    }
}

/// Deleted with a `DisruptionTarget=True` condition of reason
/// `PreemptionByScheduler`.
fn terminating_by_preemption(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "DisruptionTarget"))
            .is_some_and(|c| {
                c.status == "True" && c.reason.as_deref() == Some("PreemptionByScheduler")
            })
}

pub fn pod_priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// A pod being scheduled, with everything plugins need precomputed.
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub usage: PodUsage,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> Self {
        let usage = PodUsage::of(&pod);
        PodInfo { pod, usage }
    }

    pub fn spec(&self) -> Option<&k8s_openapi::api::core::v1::PodSpec> {
        self.pod.spec.as_ref()
    }
}

/// A node and the pods on it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub node: Arc<Node>,
    pub allocatable: Resource,
    /// Sum of the requests of the pods on the node.
    pub requested: Resource,
    /// Same, with cpu/memory defaults for pods that request none (scoring).
    pub non_zero_requested: Resource,
    /// Pods on the node by `namespace/name`.
    pub pods: HashMap<String, PodUsage>,
    pub used_ports: Vec<HostPort>,
    /// How many of the pods carry required anti-affinity (lets PreFilter
    /// skip nodes without any).
    pub pods_with_required_anti_affinity: usize,
}

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> Self {
        let allocatable = resources::node_allocatable(&node);
        NodeInfo {
            node,
            allocatable,
            requested: Resource::default(),
            non_zero_requested: Resource::default(),
            pods: HashMap::new(),
            used_ports: Vec::new(),
            pods_with_required_anti_affinity: 0,
        }
    }

    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or_default()
    }

    pub fn taints(&self) -> &[Taint] {
        self.node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_deref())
            .unwrap_or_default()
    }

    pub fn set_node(&mut self, node: Arc<Node>) {
        self.allocatable = resources::node_allocatable(&node);
        self.node = node;
    }

    pub fn add_pod(&mut self, key: String, usage: PodUsage) {
        if self.pods.contains_key(&key) {
            self.remove_pod(&key);
        }
        self.requested.add(&usage.requests);
        self.non_zero_requested.add(&usage.non_zero);
        self.used_ports.extend(usage.ports.iter().cloned());
        if !usage.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity += 1;
        }
        self.pods.insert(key, usage);
    }

    pub fn remove_pod(&mut self, key: &str) -> Option<PodUsage> {
        let usage = self.pods.remove(key)?;
        self.requested.sub(&usage.requests);
        self.non_zero_requested.sub(&usage.non_zero);
        if !usage.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity -= 1;
        }
        for p in &usage.ports {
            if let Some(i) = self.used_ports.iter().position(|u| u == p) {
                self.used_ports.swap_remove(i);
            }
        }
        Some(usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn add_and_remove_pods_keep_sums() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n"},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}
        }))
        .expect("node");
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "d"},
            "spec": {"containers": [{"name": "c",
                "ports": [{"containerPort": 80, "hostPort": 8080}],
                "resources": {"requests": {"cpu": "1"}}}]}
        }))
        .expect("pod");
        let mut ni = NodeInfo::new(Arc::new(node));
        assert_eq!(ni.allocatable.milli_cpu, 4000);
        assert_eq!(ni.allocatable.allowed_pods, 110);
        ni.add_pod("d/p".into(), PodUsage::of(&pod));
        ni.add_pod("d/p".into(), PodUsage::of(&pod));
        assert_eq!(ni.requested.milli_cpu, 1000);
        assert_eq!(
            ni.non_zero_requested.memory,
            resources::DEFAULT_MEMORY_REQUEST
        );
        assert_eq!(ni.used_ports.len(), 1);
        assert!(ni.remove_pod("d/p").is_some());
        assert_eq!(ni.requested.milli_cpu, 0);
        assert!(ni.used_ports.is_empty());
        assert!(ni.pods.is_empty());
    }

    #[test]
    fn host_port_conflicts() {
        let hp = |ip: &str, proto: &str, port| HostPort {
            ip: ip.into(),
            protocol: proto.into(),
            port,
        };
        let cases = [
            (hp("", "TCP", 80), hp("", "TCP", 80), true),
            (hp("0.0.0.0", "TCP", 80), hp("10.0.0.1", "TCP", 80), true),
            (hp("10.0.0.2", "TCP", 80), hp("10.0.0.1", "TCP", 80), false),
            (hp("10.0.0.1", "TCP", 80), hp("10.0.0.1", "TCP", 80), true),
            (hp("", "TCP", 80), hp("", "UDP", 80), false),
            (hp("", "TCP", 80), hp("", "TCP", 81), false),
        ];
        for (a, b, want) in cases {
            assert_eq!(a.conflicts(&b), want, "{a:?} vs {b:?}");
        }
    }
}
