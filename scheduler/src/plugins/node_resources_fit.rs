//! NodeResourcesFit: the pod's requests must fit in the node's allocatable
//! minus what its pods already request (pod count, cpu, memory,
//! ephemeral-storage, extended resources); scores nodes by the
//! LeastAllocated strategy over cpu and memory (weight 1 each), counting
//! pods that request nothing at upstream's non-zero defaults.

use crate::framework::{Code, FilterPlugin, MAX_NODE_SCORE, ScorePlugin, Status};
use crate::node_info::{NodeInfo, PodInfo};

pub struct NodeResourcesFit;

/// One resource the pod needs more of than the node has free.
struct Insufficient {
    reason: String,
    /// The request exceeds the node's whole allocatable: preemption cannot help.
    unresolvable: bool,
}

fn insufficient(pod: &PodInfo, node: &NodeInfo) -> Vec<Insufficient> {
    let mut out = Vec::new();
    let req = &pod.usage.requests;
    let alloc = &node.allocatable;
    let used = &node.requested;
    if node.pods.len() as i64 + 1 > alloc.allowed_pods {
        out.push(Insufficient {
            reason: "Too many pods".into(),
            unresolvable: false,
        });
    }
    let mut check = |name: &str, want: i64, have: i64, in_use: i64| {
        if want > 0 && want > have - in_use {
            out.push(Insufficient {
                reason: format!("Insufficient {name}"),
                unresolvable: want > have,
            });
        }
    };
    check("cpu", req.milli_cpu, alloc.milli_cpu, used.milli_cpu);
    check("memory", req.memory, alloc.memory, used.memory);
    check(
        "ephemeral-storage",
        req.ephemeral_storage,
        alloc.ephemeral_storage,
        used.ephemeral_storage,
    );
    for (name, want) in &req.scalar {
        check(name, *want, alloc.scalar(name), used.scalar(name));
    }
    out
}

impl FilterPlugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        let missing = insufficient(pod, node);
        if missing.is_empty() {
            return Status::success();
        }
        let code = if missing.iter().any(|m| m.unresolvable) {
            Code::UnschedulableAndUnresolvable
        } else {
            Code::Unschedulable
        };
        Status {
            code,
            reasons: missing.into_iter().map(|m| m.reason).collect(),
        }
    }
}

/// Free share of one resource after placing the pod, 0..=100.
fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

impl ScorePlugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let pairs = [
            (
                node.non_zero_requested.milli_cpu + pod.usage.non_zero.milli_cpu,
                node.allocatable.milli_cpu,
            ),
            (
                node.non_zero_requested.memory + pod.usage.non_zero.memory,
                node.allocatable.memory,
            ),
        ];
        let mut sum = 0;
        let mut weights = 0;
        for (requested, capacity) in pairs {
            // Resources the node does not offer are left out of the average.
            if capacity == 0 {
                continue;
            }
            sum += least_requested(requested, capacity);
            weights += 1;
        }
        if weights == 0 { 0 } else { sum / weights }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::{node, node_alloc, pod, pod_req, with_pod};
    use serde_json::json;

    #[test]
    fn filter_table() {
        let full = with_pod(
            node_alloc("n", "2", "4Gi"),
            "default/old",
            &pod_req("1500m", "1Gi"),
        );
        let cases = [
            ("fits", pod_req("500m", "3Gi"), Ok(())),
            (
                "insufficient cpu",
                pod_req("600m", "1Gi"),
                Err((Code::Unschedulable, vec!["Insufficient cpu"])),
            ),
            (
                "both",
                pod_req("1", "4Gi"),
                Err((
                    Code::Unschedulable,
                    vec!["Insufficient cpu", "Insufficient memory"],
                )),
            ),
            (
                "bigger than node",
                pod_req("3", "1Gi"),
                Err((Code::UnschedulableAndUnresolvable, vec!["Insufficient cpu"])),
            ),
            ("best effort", pod(json!({})), Ok(())),
            (
                "extended resource",
                pod(
                    json!({"containers": [{"name": "c", "resources": {"requests": {"example.com/gpu": "1"}}}]}),
                ),
                Err((
                    Code::UnschedulableAndUnresolvable,
                    vec!["Insufficient example.com/gpu"],
                )),
            ),
        ];
        for (name, p, want) in cases {
            let s = NodeResourcesFit.filter(&p, &full);
            match want {
                Ok(()) => assert!(s.is_success(), "{name}: {s:?}"),
                Err((code, reasons)) => {
                    assert_eq!(s.code, code, "{name}");
                    assert_eq!(s.reasons, reasons, "{name}");
                }
            }
        }
    }

    #[test]
    fn too_many_pods_and_storage() {
        let n = node(
            json!({}),
            json!({}),
            json!({"allocatable": {"cpu": "1", "memory": "1Gi", "pods": "1", "ephemeral-storage": "1Gi"}}),
        );
        let n = with_pod(n, "default/old", &pod(json!({})));
        let p = pod(
            json!({"containers": [{"name": "c", "resources": {"requests": {"ephemeral-storage": "2Gi"}}}]}),
        );
        let s = NodeResourcesFit.filter(&p, &n);
        assert_eq!(
            s.reasons,
            vec!["Too many pods", "Insufficient ephemeral-storage"]
        );
        assert_eq!(s.code, Code::UnschedulableAndUnresolvable);
        let s = NodeResourcesFit.filter(&pod(json!({})), &n);
        assert_eq!(s.reasons, vec!["Too many pods"]);
        assert_eq!(s.code, Code::Unschedulable);
    }

    #[test]
    fn least_allocated_scores() {
        // 4 cpu / 10Gi node with 1 cpu / 5Gi used; pod wants 1 cpu / 0 memory
        // (non-zero default 200Mi memory).
        let n = with_pod(
            node_alloc("n", "4", "10Gi"),
            "default/old",
            &pod_req("1", "5Gi"),
        );
        let p = pod_req("1", "1Gi");
        // cpu: (4000-2000)*100/4000 = 50; mem: (10-6)*100/10 = 40; avg 45.
        assert_eq!(NodeResourcesFit.score(&p, &n), 45);
        let empty = node_alloc("e", "4", "10Gi");
        assert_eq!(NodeResourcesFit.score(&p, &empty), (75 + 90) / 2);
        assert_eq!(least_requested(5, 4), 0);
        assert_eq!(least_requested(0, 0), 0);
    }
}
