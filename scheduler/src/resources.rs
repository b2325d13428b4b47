//! Resource arithmetic: what a pod requests and what a node offers.
//!
//! A pod's effective request follows upstream's `PodRequests`: the sum of its
//! app containers plus restartable init (sidecar) containers, or the largest
//! regular init container (plus the sidecars started before it) if that is
//! bigger, plus the pod overhead. Pod-level `spec.resources.requests`, when
//! set, replace the container sum for the resources they name.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::quantity;

/// CPU a container without a CPU request is assumed to use when scoring.
pub(crate) const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Memory a container without a memory request is assumed to use when scoring.
pub(crate) const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// An amount of each resource the scheduler accounts for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// Only meaningful for node allocatable: how many pods fit.
    pub allowed_pods: i64,
    /// Extended resources (`example.com/gpu`, `hugepages-2Mi`, ...).
    pub scalar: BTreeMap<String, i64>,
}

impl Resource {
    /// Reads a resource list (requests or allocatable); unparsable
    /// quantities count as zero since the API server validated them.
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Self {
        let mut r = Resource::default();
        for (name, q) in list {
            r.set(name, &q.0);
        }
        r
    }

    fn set(&mut self, name: &str, q: &str) {
        match name {
            "cpu" => self.milli_cpu = quantity::parse_milli(q).unwrap_or(0),
            "memory" => self.memory = quantity::parse_value(q).unwrap_or(0),
            "ephemeral-storage" => self.ephemeral_storage = quantity::parse_value(q).unwrap_or(0),
            "pods" => self.allowed_pods = quantity::parse_value(q).unwrap_or(0),
            other if is_scalar_resource(other) => {
                self.scalar
                    .insert(other.to_string(), quantity::parse_value(q).unwrap_or(0));
            }
            _ => {}
        }
    }

    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.allowed_pods += other.allowed_pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_insert(0) += v;
        }
    }

    pub fn sub(&mut self, other: &Resource) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.allowed_pods -= other.allowed_pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_insert(0) -= v;
        }
    }

    /// Element-wise maximum.
    fn max_with(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = (*e).max(*v);
        }
    }

    pub fn scalar(&self, name: &str) -> i64 {
        self.scalar.get(name).copied().unwrap_or(0)
    }

    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }
}

/// Extended resources (a domain-qualified name outside `kubernetes.io/`
/// except `requests.`), hugepages and attachable volumes are counted by
/// name; the rest of the native names are ignored like upstream does.
pub(crate) fn is_scalar_resource(name: &str) -> bool {
    if name.starts_with("hugepages-") || name.starts_with("attachable-volumes-") {
        return true;
    }
    match name.split_once('/') {
        Some((domain, _)) => {
            !(domain == "kubernetes.io"
                || domain.ends_with(".kubernetes.io")
                || name.starts_with("requests."))
        }
        None => false,
    }
}

/// A container's requests; with `non_zero`, a missing cpu/memory request
/// counts as upstream's scoring defaults.
fn container_requests(c: &Container, non_zero: bool) -> Resource {
    let mut r = c
        .resources
        .as_ref()
        .and_then(|res| res.requests.as_ref())
        .map(Resource::from_list)
        .unwrap_or_default();
    if non_zero {
        let has = |name: &str| {
            c.resources
                .as_ref()
                .and_then(|res| res.requests.as_ref())
                .is_some_and(|req| req.contains_key(name))
        };
        if !has("cpu") {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !has("memory") {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

/// The resources a pod needs on a node (see the module comment).
pub fn pod_requests(pod: &Pod, non_zero: bool) -> Resource {
    let Some(spec) = pod.spec.as_ref() else {
        return Resource::default();
    };
    let mut containers = Resource::default();
    for c in &spec.containers {
        containers.add(&container_requests(c, non_zero));
    }
    let mut sidecars = Resource::default();
    let mut init_peak = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let req = container_requests(c, non_zero);
        if c.restart_policy.as_deref() == Some("Always") {
            // A sidecar keeps running: it adds to everything started after it.
            sidecars.add(&req);
            init_peak.max_with(&sidecars);
        } else {
            let mut during = req;
            during.add(&sidecars);
            init_peak.max_with(&during);
        }
    }
    containers.add(&sidecars);
    containers.max_with(&init_peak);

    // Pod-level requests (PodLevelResources) override cpu/memory.
    if let Some(pod_level) = spec.resources.as_ref().and_then(|r| r.requests.as_ref()) {
        let p = Resource::from_list(pod_level);
        if pod_level.contains_key("cpu") {
            containers.milli_cpu = p.milli_cpu;
        }
        if pod_level.contains_key("memory") {
            containers.memory = p.memory;
        }
    }
    if let Some(overhead) = spec.overhead.as_ref() {
        containers.add(&Resource::from_list(overhead));
    }
    containers
}

/// A node's allocatable resources (what the scheduler may hand out).
pub fn node_allocatable(node: &Node) -> Resource {
    node.status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref())
        .map(Resource::from_list)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).expect("valid pod")
    }

    fn c(name: &str, cpu: &str, mem: &str) -> serde_json::Value {
        json!({"name": name, "resources": {"requests": {"cpu": cpu, "memory": mem}}})
    }

    #[test]
    fn pod_request_table() {
        let cases = [
            (
                "sum of containers",
                json!({"containers": [c("a", "100m", "1Gi"), c("b", "200m", "1Gi")]}),
                300,
                2 << 30,
            ),
            (
                "init container bigger",
                json!({"initContainers": [c("i", "1", "100Mi")],
                       "containers": [c("a", "100m", "1Gi")]}),
                1000,
                1 << 30,
            ),
            (
                "sidecar adds to sum",
                json!({"initContainers": [{"name": "s", "restartPolicy": "Always",
                        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}],
                       "containers": [c("a", "100m", "1Gi")]}),
                600,
                2 << 30,
            ),
            (
                "init after sidecar includes sidecar",
                json!({"initContainers": [
                         {"name": "s", "restartPolicy": "Always",
                          "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                         c("i", "2", "1Gi")],
                       "containers": [c("a", "100m", "1Gi")]}),
                2500,
                2 << 30,
            ),
            (
                "overhead added",
                json!({"containers": [c("a", "100m", "1Gi")],
                       "overhead": {"cpu": "250m", "memory": "1Gi"}}),
                350,
                2 << 30,
            ),
            (
                "pod level resources",
                json!({"containers": [c("a", "100m", "1Gi")],
                       "resources": {"requests": {"cpu": "2"}}}),
                2000,
                1 << 30,
            ),
        ];
        for (name, spec, cpu, mem) in cases {
            let r = pod_requests(&pod(spec), false);
            assert_eq!((r.milli_cpu, r.memory), (cpu, mem), "{name}");
        }
    }

    #[test]
    fn non_zero_defaults() {
        let p = pod(json!({"containers": [{"name": "a"}, c("b", "1", "1Gi")]}));
        let r = pod_requests(&p, true);
        assert_eq!(r.milli_cpu, 1100);
        assert_eq!(r.memory, (1 << 30) + DEFAULT_MEMORY_REQUEST);
        let r = pod_requests(&p, false);
        assert_eq!(r.milli_cpu, 1000);
    }

    #[test]
    fn extended_resources() {
        let p = pod(
            json!({"containers": [{"name": "a", "resources": {"requests":
            {"example.com/gpu": "2", "hugepages-2Mi": "4Mi"}}}]}),
        );
        let r = pod_requests(&p, false);
        assert_eq!(r.scalar("example.com/gpu"), 2);
        assert_eq!(r.scalar("hugepages-2Mi"), 4 << 20);
        assert!(is_scalar_resource("nvidia.com/gpu"));
        assert!(!is_scalar_resource("cpu"));
        assert!(!is_scalar_resource("kubernetes.io/foo"));
    }
}
