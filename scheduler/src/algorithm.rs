//! One scheduling decision over the cache, as upstream's `schedulePod`:
//! filter nodes (stopping once enough feasible nodes were found, starting
//! where the previous cycle stopped so all nodes get their turn), score the
//! feasible ones and pick the best, breaking ties at random.

use crate::cache::{Cache, pod_key};
use crate::fit_error::FitError;
use crate::framework::{CycleState, Profile, Status};
use crate::node_info::{NodeInfo, PodInfo, PodUsage};

/// Below this many nodes, every node is evaluated.
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// Lower bound of the adaptive percentage of nodes to score.
const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;

/// How many feasible nodes to look for among `all` (upstream's adaptive
/// `percentageOfNodesToScore`: 50% minus 1% per 125 nodes, at least 5%, at
/// least 100 nodes). `percentage` overrides the adaptive value when set.
pub fn num_feasible_nodes_to_find(all: usize, percentage: Option<u32>) -> usize {
    if all < MIN_FEASIBLE_NODES_TO_FIND {
        return all;
    }
    let pct = match percentage {
        Some(p) if p > 0 => (p as usize).min(100),
        _ => (50usize.saturating_sub(all / 125)).max(MIN_FEASIBLE_NODES_PERCENTAGE),
    };
    if pct >= 100 {
        return all;
    }
    (all * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Runs the filters with the pods nominated to the node that are at least as
/// important as `pod` counted in, so room freed by a preemption stays
/// reserved for its preemptor (upstream's RunFilterPluginsWithNominatedPods).
fn filter_with_nominated(
    profile: &Profile,
    cache: &Cache,
    state: &CycleState,
    pod: &PodInfo,
    key: &str,
    priority: i32,
    node: &NodeInfo,
) -> Status {
    let counts = |k: &String, u: &PodUsage| k != key && u.priority >= priority;
    match cache.nominated_on(node.name()) {
        Some(noms) if noms.iter().any(|(k, u)| counts(k, u)) => {
            let mut with = node.clone();
            for (k, u) in noms.iter().filter(|(k, u)| counts(k, u)) {
                with.add_pod(k.clone(), u.clone());
            }
            profile.run_filters(pod, state, &with)
        }
        _ => profile.run_filters(pod, state, node),
    }
}

/// Why no node was chosen.
#[derive(Debug)]
pub enum ScheduleFailure {
    /// The cluster has no nodes at all.
    NoNodes,
    /// Every node was rejected by a filter.
    Fit(FitError),
}

/// Mutable state carried between cycles.
#[derive(Debug)]
pub struct Algorithm {
    next_start: usize,
    rng: u64,
    pub percentage_of_nodes_to_score: Option<u32>,
}

impl Algorithm {
    pub fn new(seed: u64, percentage_of_nodes_to_score: Option<u32>) -> Self {
        Algorithm {
            next_start: 0,
            rng: seed | 1,
            percentage_of_nodes_to_score,
        }
    }

    /// xorshift64: tie-breaking only needs to be unbiased, not secure.
    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// Picks a node for `pod`, or explains why none fits.
    pub fn schedule(
        &mut self,
        profile: &Profile,
        cache: &Cache,
        pod: &PodInfo,
    ) -> Result<String, ScheduleFailure> {
        let names = cache.node_names();
        let all = names.len();
        if all == 0 {
            return Err(ScheduleFailure::NoNodes);
        }
        let want = num_feasible_nodes_to_find(all, self.percentage_of_nodes_to_score);
        let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(want.min(all));
        let mut rejected: Vec<(String, Status)> = Vec::new();
        let state = profile.pre_filter(pod, cache);
        let key = pod_key(&pod.pod);
        let priority = pod.usage.priority;
        let start = self.next_start % all;
        let mut processed = 0;
        for i in 0..all {
            if feasible.len() >= want {
                break;
            }
            processed += 1;
            let Some(node) = cache.node(&names[(start + i) % all]) else {
                continue;
            };
            let status = filter_with_nominated(profile, cache, &state, pod, &key, priority, node);
            if status.is_success() {
                feasible.push(node);
            } else {
                rejected.push((node.name().to_string(), status));
            }
        }
        self.next_start = (start + processed) % all;

        match feasible.len() {
            0 => Err(ScheduleFailure::Fit(FitError {
                num_all_nodes: all,
                statuses: rejected,
            })),
            // One candidate: scoring cannot change the answer.
            1 => Ok(feasible[0].name().to_string()),
            _ => {
                let scores = profile.run_scores(pod, &feasible);
                Ok(self.select_host(&feasible, &scores))
            }
        }
    }

    /// The highest-scoring node; ties broken uniformly (reservoir sampling).
    fn select_host(&mut self, nodes: &[&NodeInfo], scores: &[i64]) -> String {
        let mut best = 0;
        let mut ties = 0u64;
        for (i, s) in scores.iter().enumerate() {
            if *s > scores[best] {
                best = i;
                ties = 1;
            } else if *s == scores[best] {
                ties += 1;
                if self.random().is_multiple_of(ties) {
                    best = i;
                }
            }
        }
        nodes[best].name().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::default_profile;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::{Value, json};
    use std::sync::Arc;

    fn node(name: &str, cpu: &str, extra: Value) -> Node {
        let mut v = json!({"metadata": {"name": name},
            "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}});
        if let Some(spec) = extra.get("spec") {
            v["spec"] = spec.clone();
        }
        if let Some(labels) = extra.get("labels") {
            v["metadata"]["labels"] = labels.clone();
        }
        serde_json::from_value(v).expect("node")
    }

    fn pod(spec: Value) -> PodInfo {
        let p: Pod = serde_json::from_value(
            json!({"metadata": {"name": "p", "namespace": "d"}, "spec": spec}),
        )
        .expect("pod");
        PodInfo::new(Arc::new(p))
    }

    #[test]
    fn feasible_nodes_to_find() {
        let cases = [
            (0, 0),
            (50, 50),
            (99, 99),
            (100, 100),
            (1000, 420),
            (5000, 500),
            (6000, 300),
        ];
        for (all, want) in cases {
            assert_eq!(num_feasible_nodes_to_find(all, None), want, "{all}");
        }
        assert_eq!(num_feasible_nodes_to_find(1000, Some(100)), 1000);
        assert_eq!(num_feasible_nodes_to_find(1000, Some(1)), 100);
    }

    #[test]
    fn picks_least_allocated_node() {
        let mut cache = Cache::default();
        cache.upsert_node(node("small", "2", json!({})));
        cache.upsert_node(node("big", "16", json!({})));
        let profile = default_profile("default-scheduler");
        let mut alg = Algorithm::new(7, None);
        let p = pod(
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}),
        );
        for _ in 0..5 {
            assert_eq!(
                alg.schedule(&profile, &cache, &p).ok().as_deref(),
                Some("big")
            );
        }
    }

    #[test]
    fn reports_every_rejection() {
        let mut cache = Cache::default();
        cache.upsert_node(node("a", "1", json!({})));
        cache.upsert_node(node(
            "b",
            "1",
            json!({"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}),
        ));
        let profile = default_profile("default-scheduler");
        let mut alg = Algorithm::new(7, None);
        let p =
            pod(json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}));
        match alg.schedule(&profile, &cache, &p) {
            Err(ScheduleFailure::Fit(fe)) => {
                assert_eq!(fe.num_all_nodes, 2);
                assert_eq!(fe.statuses.len(), 2);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            alg.schedule(&profile, &Cache::default(), &p),
            Err(ScheduleFailure::NoNodes)
        ));
    }

    #[test]
    fn nominated_pods_reserve_room() {
        let mut cache = Cache::default();
        cache.upsert_node(node("only", "2", json!({})));
        let profile = default_profile("default-scheduler");
        let mut alg = Algorithm::new(7, None);
        let with_priority = |name: &str, prio: i32| {
            let p: Pod =
                serde_json::from_value(json!({"metadata": {"name": name, "namespace": "d"},
                "spec": {"priority": prio, "containers": [{"name": "c",
                    "resources": {"requests": {"cpu": "1500m"}}}]}}))
                .expect("pod");
            PodInfo::new(Arc::new(p))
        };
        let preemptor = with_priority("preemptor", 100);
        cache.set_nomination("d/preemptor", Some(("only", preemptor.usage.clone())));
        assert!(
            alg.schedule(&profile, &cache, &with_priority("low", 0))
                .is_err()
        );
        assert!(
            alg.schedule(&profile, &cache, &with_priority("higher", 200))
                .is_ok()
        );
        assert_eq!(
            alg.schedule(&profile, &cache, &preemptor).ok().as_deref(),
            Some("only"),
            "a pod does not compete with its own nomination"
        );
    }

    #[test]
    fn ties_spread_over_nodes() {
        let mut cache = Cache::default();
        for n in ["a", "b", "c"] {
            cache.upsert_node(node(n, "4", json!({})));
        }
        let profile = default_profile("default-scheduler");
        let mut alg = Algorithm::new(42, None);
        let p = pod(json!({"containers": [{"name": "c"}]}));
        let picked: std::collections::HashSet<String> = (0..50)
            .filter_map(|_| alg.schedule(&profile, &cache, &p).ok())
            .collect();
        assert_eq!(picked.len(), 3);
    }
}

#[cfg(test)]
mod scale_tests {
    use super::*;
    use crate::node_info::PodUsage;
    use crate::plugins::default_profile;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::json;
    use std::sync::Arc;

    /// 5,000 nodes, 2,000 pods assumed one after another: every pod finds
    /// a node, and since each cycle evaluates a different slice of nodes
    /// (10% of them at this size), the pods spread over many nodes.
    #[test]
    fn many_nodes_in_memory() {
        let mut cache = Cache::default();
        for i in 0..5000 {
            let node: Node = serde_json::from_value(json!({
                "metadata": {"name": format!("node-{i}"), "labels": {"zone": format!("z{}", i % 3)}},
                "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"}}
            }))
            .expect("node");
            cache.upsert_node(node);
        }
        let profile = default_profile("default-scheduler");
        let mut alg = Algorithm::new(3, None);
        let started = std::time::Instant::now();
        for i in 0..2000 {
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": format!("p{i}"), "namespace": "d"},
                "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}
            }))
            .expect("pod");
            let info = PodInfo::new(Arc::new(pod));
            let node = alg.schedule(&profile, &cache, &info).expect("fits");
            cache.assume(&format!("d/p{i}"), &node, PodUsage::of(&info.pod));
        }
        let elapsed = started.elapsed();
        eprintln!("scheduled 2000 pods on 5000 nodes in {elapsed:?}");
        let placed: usize = cache.nodes_in_order().map(|n| n.pods.len()).sum();
        assert_eq!(placed, 2000);
        let used = cache
            .nodes_in_order()
            .filter(|n| !n.pods.is_empty())
            .count();
        assert!(used > 1000, "pods piled up on {used} nodes");
    }
}
