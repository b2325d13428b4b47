//! NodeResourcesBalancedAllocation score: prefers nodes whose cpu and memory
//! utilisation (after placing the pod) are close to each other, using plain
//! requests (no non-zero defaults) and skipping pods that request nothing.

use crate::framework::{MAX_NODE_SCORE, ScorePlugin};
use crate::node_info::{NodeInfo, PodInfo};

pub struct BalancedAllocation;

impl ScorePlugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        "NodeResourcesBalancedAllocation"
    }

    /// Best-effort pods would otherwise all pile onto the same node.
    fn skip(&self, pod: &PodInfo) -> bool {
        pod.usage.requests.milli_cpu == 0 && pod.usage.requests.memory == 0
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let pairs = [
            (
                node.requested.milli_cpu + pod.usage.requests.milli_cpu,
                node.allocatable.milli_cpu,
            ),
            (
                node.requested.memory + pod.usage.requests.memory,
                node.allocatable.memory,
            ),
        ];
        // Resources the node does not offer are left out; with fewer than
        // two left there is nothing to balance.
        let fraction =
            |(req, cap): (i64, i64)| (cap != 0).then(|| (req as f64 / cap as f64).min(1.0));
        let std = match (fraction(pairs[0]), fraction(pairs[1])) {
            (Some(a), Some(b)) => ((a - b) / 2.0).abs(),
            _ => 0.0,
        };
        ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::{node_alloc, pod, pod_req, with_pod};
    use serde_json::json;

    #[test]
    fn table() {
        let cases = [
            // cpu 2/4 = .5, mem 5/10 = .5 → perfectly balanced.
            (
                "balanced",
                node_alloc("n", "4", "10Gi"),
                pod_req("2", "5Gi"),
                100,
            ),
            // cpu 1/4 = .25, mem 5/10 = .5 → std .125 → 87.
            (
                "skewed",
                node_alloc("n", "4", "10Gi"),
                pod_req("1", "5Gi"),
                87,
            ),
            // cpu capped at 1.0, mem 0 → std .5 → 50.
            ("over", node_alloc("n", "1", "10Gi"), pod_req("2", "1"), 50),
            (
                "with existing pod",
                with_pod(
                    node_alloc("n", "4", "10Gi"),
                    "default/o",
                    &pod_req("2", "0"),
                ),
                pod_req("0", "5Gi"),
                100,
            ),
        ];
        for (name, n, p, want) in cases {
            assert_eq!(BalancedAllocation.score(&p, &n), want, "{name}");
        }
        assert!(BalancedAllocation.skip(&pod(json!({}))));
        assert!(!BalancedAllocation.skip(&pod_req("1", "0")));
    }
}
