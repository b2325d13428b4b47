//! PodTopologySpread's scoring with upstream's system default constraints
//! (spread over `kubernetes.io/hostname`, `ScheduleAnyway`): a pod that a
//! controller owns prefers the nodes with fewest pods of the same set, so a
//! Deployment's replicas land on different nodes even when resource scores tie
//! (small pods on big nodes). The set is what upstream derives from the owning
//! controller's selector; here, the pods in the same namespace that carry all
//! of this pod's labels (a ReplicaSet's selector is its template's labels).
//!
//! Not done yet: explicit `spec.topologySpreadConstraints` (their filter for
//! `DoNotSchedule` and score for `ScheduleAnyway`) and the zone default.

use crate::framework::{ScorePlugin, default_normalize};
use crate::node_info::{NodeInfo, PodInfo};

pub struct PodTopologySpread;

/// Whether a controller owns the pod (only those get default constraints).
fn has_controller(pod: &PodInfo) -> bool {
    pod.pod
        .metadata
        .owner_references
        .as_ref()
        .is_some_and(|refs| refs.iter().any(|r| r.controller == Some(true)))
}

impl ScorePlugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        "PodTopologySpread"
    }

    /// Pods of the same set already on the node; fewer is better.
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        if !has_controller(pod) || pod.usage.labels.is_empty() {
            return 0;
        }
        node.pods
            .values()
            .filter(|other| other.namespace == pod.usage.namespace)
            .filter(|other| {
                pod.usage
                    .labels
                    .iter()
                    .all(|(k, v)| other.labels.get(k) == Some(v))
            })
            .count() as i64
    }

    fn normalize(&self, scores: &mut [i64]) {
        default_normalize(scores, true);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    use super::*;
    use crate::plugins::testutil::node;

    fn replica(name: &str) -> PodInfo {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "labels": {"app": "web", "pod-template-hash": "abc"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "u", "controller": true}]},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        }))
        .expect("pod");
        PodInfo::new(Arc::new(pod))
    }

    #[test]
    fn replicas_prefer_nodes_with_fewer_of_their_set() {
        let mut busy = node(json!({}), json!({}), json!({}));
        busy.add_pod("ns/a".into(), replica("a").usage);
        busy.add_pod("ns/b".into(), replica("b").usage);
        let idle = node(json!({}), json!({}), json!({}));
        let incoming = replica("c");
        let mut scores = [
            PodTopologySpread.score(&incoming, &busy),
            PodTopologySpread.score(&incoming, &idle),
        ];
        assert_eq!(scores, [2, 0]);
        PodTopologySpread.normalize(&mut scores);
        assert_eq!(scores, [0, 100]);
    }

    #[test]
    fn pods_without_a_controller_are_not_spread() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "solo", "namespace": "ns", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        }))
        .expect("pod");
        let mut busy = node(json!({}), json!({}), json!({}));
        busy.add_pod("ns/a".into(), replica("a").usage);
        assert_eq!(
            PodTopologySpread.score(&PodInfo::new(Arc::new(pod)), &busy),
            0
        );
    }
}
