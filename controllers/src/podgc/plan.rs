//! Which pods the collector deletes, as pure functions of the cached pods
//! and nodes.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

const OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

pub(crate) fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// Terminated pods beyond `threshold`, oldest first (0 keeps them all).
pub(crate) fn terminated_beyond(pods: &[Arc<Pod>], threshold: usize) -> Vec<&Pod> {
    if threshold == 0 {
        return Vec::new();
    }
    let mut done: Vec<&Pod> = pods
        .iter()
        .map(AsRef::as_ref)
        .filter(|p| is_terminal(p))
        .collect();
    if done.len() <= threshold {
        return Vec::new();
    }
    done.sort_by_key(|p| {
        (
            p.metadata.creation_timestamp.as_ref().map(|t| t.0),
            p.metadata.name.clone(),
        )
    });
    let excess = done.len() - threshold;
    done.truncate(excess);
    done
}

/// Nodes that pods are bound to but that are not in the cache.
pub(crate) fn missing_nodes(pods: &[Arc<Pod>], nodes: &[Arc<Node>]) -> BTreeSet<String> {
    let known: BTreeSet<&str> = nodes
        .iter()
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();
    pods.iter()
        .filter_map(|p| node_name(p))
        .filter(|n| !known.contains(n))
        .map(str::to_string)
        .collect()
}

pub(crate) fn bound_to<'a>(pods: &'a [Arc<Pod>], node: &str) -> Vec<&'a Pod> {
    pods.iter()
        .map(AsRef::as_ref)
        .filter(|p| node_name(p) == Some(node))
        .collect()
}

/// Terminating pods that were never scheduled.
pub(crate) fn unscheduled_terminating(pods: &[Arc<Pod>]) -> Vec<&Pod> {
    pods.iter()
        .map(AsRef::as_ref)
        .filter(|p| p.metadata.deletion_timestamp.is_some() && node_name(p).is_none())
        .collect()
}

/// Terminating pods on nodes that are not ready and out of service.
pub(crate) fn terminating_out_of_service<'a>(
    pods: &'a [Arc<Pod>],
    nodes: &[Arc<Node>],
) -> Vec<&'a Pod> {
    let out: BTreeSet<&str> = nodes
        .iter()
        .filter(|n| {
            let ready = n
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
                .is_some_and(|c| c.status == "True");
            let out_of_service = n
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .is_some_and(|ts| ts.iter().any(|t| t.key == OUT_OF_SERVICE));
            !ready && out_of_service
        })
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();
    pods.iter()
        .map(AsRef::as_ref)
        .filter(|p| p.metadata.deletion_timestamp.is_some())
        .filter(|p| node_name(p).is_some_and(|n| out.contains(n)))
        .collect()
}

/// The condition an orphaned pod gets before it is deleted.
pub(crate) fn orphan_condition(now: Timestamp) -> serde_json::Value {
    serde_json::json!({
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "DeletionByPodGC",
        "message": "PodGC: node no longer exists",
        "lastTransitionTime": Time(now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, v: serde_json::Value) -> Arc<Pod> {
        let mut p: Pod = serde_json::from_value(v).unwrap();
        p.metadata.name = Some(name.into());
        Arc::new(p)
    }

    fn node(name: &str, v: serde_json::Value) -> Arc<Node> {
        let mut n: Node = serde_json::from_value(v).unwrap();
        n.metadata.name = Some(name.into());
        Arc::new(n)
    }

    fn names(pods: Vec<&Pod>) -> Vec<String> {
        pods.iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect()
    }

    #[test]
    fn terminated_oldest_first() {
        let pods = vec![
            pod(
                "new",
                json!({"metadata": {"creationTimestamp": "2024-01-01T00:03:00Z"}, "status": {"phase": "Succeeded"}}),
            ),
            pod(
                "old",
                json!({"metadata": {"creationTimestamp": "2024-01-01T00:01:00Z"}, "status": {"phase": "Failed"}}),
            ),
            pod(
                "mid",
                json!({"metadata": {"creationTimestamp": "2024-01-01T00:02:00Z"}, "status": {"phase": "Succeeded"}}),
            ),
            pod(
                "running",
                json!({"metadata": {"creationTimestamp": "2024-01-01T00:00:00Z"}, "status": {"phase": "Running"}}),
            ),
        ];
        assert_eq!(names(terminated_beyond(&pods, 1)), ["old", "mid"]);
        assert!(terminated_beyond(&pods, 3).is_empty());
        assert!(terminated_beyond(&pods, 0).is_empty(), "0 disables");
    }

    #[test]
    fn orphans_and_unscheduled() {
        let pods = vec![
            pod("on-a", json!({"spec": {"nodeName": "a", "containers": []}})),
            pod(
                "on-gone",
                json!({"spec": {"nodeName": "gone", "containers": []}}),
            ),
            pod("pending", json!({"spec": {"containers": []}})),
            pod(
                "pending-deleted",
                json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}, "spec": {"containers": []}}),
            ),
        ];
        let nodes = vec![node("a", json!({}))];
        assert_eq!(
            missing_nodes(&pods, &nodes).into_iter().collect::<Vec<_>>(),
            ["gone"]
        );
        assert_eq!(names(bound_to(&pods, "gone")), ["on-gone"]);
        assert_eq!(names(unscheduled_terminating(&pods)), ["pending-deleted"]);
    }

    #[test]
    fn out_of_service_nodes() {
        let deleting = json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}});
        let mut on_oos = deleting.clone();
        on_oos["spec"] = json!({"nodeName": "oos", "containers": []});
        let mut on_ready = deleting.clone();
        on_ready["spec"] = json!({"nodeName": "ready-oos", "containers": []});
        let pods = vec![
            pod("on-oos", on_oos),
            pod("on-ready-oos", on_ready),
            pod(
                "alive",
                json!({"spec": {"nodeName": "oos", "containers": []}}),
            ),
        ];
        let taint = json!({"taints": [{"key": OUT_OF_SERVICE, "effect": "NoExecute"}]});
        let nodes = vec![
            node(
                "oos",
                json!({"spec": taint, "status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
            ),
            node(
                "ready-oos",
                json!({"spec": taint, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            ),
        ];
        assert_eq!(names(terminating_out_of_service(&pods, &nodes)), ["on-oos"]);
    }
}
