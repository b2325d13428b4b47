//! Builders shared by the plugin tests: pods and nodes from JSON snippets.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Value, json};

use crate::node_info::{NodeInfo, PodInfo, PodUsage};

/// A pod named `p` in `default` with the given spec.
pub(crate) fn pod(spec: Value) -> PodInfo {
    let mut spec = spec;
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "c"}]);
    }
    let pod: Pod = serde_json::from_value(
        json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec}),
    )
    .expect("valid pod");
    PodInfo::new(Arc::new(pod))
}

/// A pod whose single container requests `cpu` and `memory`.
pub(crate) fn pod_req(cpu: &str, memory: &str) -> PodInfo {
    pod(json!({"containers": [{"name": "c",
        "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}))
}

/// A node `n` from metadata/spec/status snippets.
pub(crate) fn node(metadata: Value, spec: Value, status: Value) -> NodeInfo {
    let mut metadata = metadata;
    if metadata.get("name").is_none() {
        metadata["name"] = json!("n");
    }
    let node: Node =
        serde_json::from_value(json!({"metadata": metadata, "spec": spec, "status": status}))
            .expect("valid node");
    NodeInfo::new(Arc::new(node))
}

/// A node `name` with the given allocatable cpu/memory and 110 pods.
pub(crate) fn node_alloc(name: &str, cpu: &str, memory: &str) -> NodeInfo {
    node(
        json!({"name": name}),
        json!({}),
        json!({"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"}}),
    )
}

/// Adds an existing pod to a node's accounting.
pub(crate) fn with_pod(mut ni: NodeInfo, key: &str, p: &PodInfo) -> NodeInfo {
    ni.add_pod(key.to_string(), PodUsage::of(&p.pod));
    ni
}
