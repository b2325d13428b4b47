//! The DefaultPreemption PostFilter's decision (no API calls): when no node
//! fits, find nodes where evicting lower-priority pods would make room,
//! choose the minimal set of victims per node, and pick the node whose
//! victims matter least. When there is no such node, produce upstream's
//! explanation ("Preemption is not helpful for scheduling", "No preemption
//! victims found for incoming pod", or the filter reasons that remain).

use crate::cache::{Cache, pod_key};
use crate::fit_error::{FitError, nodes_available_message};
use crate::framework::{Code, CycleState, Profile, Status};
use crate::node_info::{NodeInfo, PodInfo, pod_priority};

const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// A node where preemption makes the pod fit, and whom to evict there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub node: String,
    /// Pod keys (`namespace/name`), most important first.
    pub victims: Vec<String>,
    highest_priority: i32,
    priority_sum: i64,
}

/// What the preemption PostFilter concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The pod may not preempt now (policy, or an earlier preemption is
    /// still in progress); its nomination stays. The message (prefixed with
    /// "preemption: ") is appended to the failure message.
    NotEligible(String),
    /// No node would fit even after evictions; any nomination is cleared.
    NoCandidates(String),
    /// Evict `victims` on `node`, then nominate the pod there.
    Preempt(Candidate),
}

fn terminating_lower_priority_pod_on(cache: &Cache, node: &str, priority: i32) -> bool {
    cache.node(node).is_some_and(|n| {
        n.pods
            .values()
            .any(|p| p.terminating_by_preemption && p.priority < priority)
    })
}

/// Runs the preemption evaluation for `pod` after the filters produced `fe`.
pub fn evaluate(profile: &Profile, cache: &Cache, pod: &PodInfo, fe: &FitError) -> Outcome {
    let spec = pod.spec();
    if spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
        return Outcome::NotEligible(
            "preemption: not eligible due to preemptionPolicy=Never.".to_string(),
        );
    }
    let priority = pod_priority(&pod.pod);
    // A pod that already preempted waits for its victims to go away rather
    // than evicting more.
    // The cache learns of a nomination before the pod's status shows it.
    let from_status = pod
        .pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty());
    if let Some(nominated) = cache.nominated_node(&pod_key(&pod.pod)).or(from_status) {
        let unresolvable = fe
            .statuses
            .iter()
            .any(|(n, s)| n == nominated && s.code == Code::UnschedulableAndUnresolvable);
        if !unresolvable && terminating_lower_priority_pod_on(cache, nominated, priority) {
            return Outcome::NotEligible(
                "preemption: not eligible due to a terminating pod on the nominated node."
                    .to_string(),
            );
        }
    }

    // Cluster-wide PreFilter data is not re-derived per removed victim (an
    // approximation for inter-pod anti-affinity on victims).
    let state = profile.pre_filter(pod, cache);
    let mut statuses: Vec<(String, Status)> = Vec::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    for (name, status) in &fe.statuses {
        if status.code != Code::Unschedulable {
            continue;
        }
        let Some(node) = cache.node(name) else {
            continue;
        };
        match select_victims(profile, &state, pod, node, priority) {
            Ok(c) => candidates.push(c),
            Err(s) => statuses.push((name.clone(), s)),
        }
    }

    // Fewest-important victims first: lowest highest-priority, then lowest
    // priority sum, then fewest victims; stable so node order breaks ties.
    candidates.sort_by_key(|c| (c.highest_priority, c.priority_sum, c.victims.len()));
    match candidates.into_iter().next() {
        Some(best) => Outcome::Preempt(best),
        None => Outcome::NoCandidates(format!(
            "preemption: {}",
            nodes_available_message(fe.num_all_nodes, &statuses, Some(NOT_HELPFUL))
        )),
    }
}

/// The minimal victims on one node, or why evicting cannot help there.
fn select_victims(
    profile: &Profile,
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
    priority: i32,
) -> Result<Candidate, Status> {
    let mut potential: Vec<(String, i32)> = node
        .pods
        .iter()
        .filter(|(_, u)| u.priority < priority)
        .map(|(k, u)| (k.clone(), u.priority))
        .collect();
    if potential.is_empty() {
        return Err(Status::new(Code::UnschedulableAndUnresolvable, NO_VICTIMS));
    }
    let mut trial = node.clone();
    let mut removed = Vec::new();
    for (key, _) in &potential {
        if let Some(u) = trial.remove_pod(key) {
            removed.push((key.clone(), u));
        }
    }
    let status = profile.run_filters(pod, state, &trial);
    if !status.is_success() {
        return Err(status);
    }
    // Give back as many pods as possible, most important first.
    potential.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut victims = Vec::new();
    for (key, prio) in potential {
        let Some(pos) = removed.iter().position(|(k, _)| *k == key) else {
            continue;
        };
        let (key, usage) = removed.swap_remove(pos);
        trial.add_pod(key.clone(), usage);
        if !profile.run_filters(pod, state, &trial).is_success() {
            trial.remove_pod(&key);
            victims.push((key, prio));
        }
    }
    Ok(Candidate {
        node: node.name().to_string(),
        highest_priority: victims.iter().map(|v| v.1).max().unwrap_or(i32::MIN),
        priority_sum: victims.iter().map(|v| i64::from(v.1)).sum(),
        victims: victims.into_iter().map(|v| v.0).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::{Algorithm, ScheduleFailure};
    use crate::node_info::PodUsage;
    use crate::plugins::default_profile;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::{Value, json};
    use std::sync::Arc;

    fn node(name: &str, taints: Value) -> Node {
        serde_json::from_value(
            json!({"metadata": {"name": name}, "spec": {"taints": taints},
            "status": {"allocatable": {"cpu": "2", "memory": "8Gi", "pods": "110"}}}),
        )
        .expect("node")
    }

    fn pod(name: &str, node: Option<&str>, cpu: &str, priority: i32, extra: Value) -> Pod {
        let mut spec = json!({"nodeName": node, "priority": priority,
            "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]});
        if let Some(obj) = extra.as_object() {
            for (k, v) in obj {
                spec[k] = v.clone();
            }
        }
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "d"}, "spec": spec}))
            .expect("pod")
    }

    fn run(cache: &Cache, p: Pod) -> Outcome {
        let profile = default_profile("default-scheduler");
        let info = PodInfo::new(Arc::new(p));
        match Algorithm::new(1, None).schedule(&profile, cache, &info) {
            Err(ScheduleFailure::Fit(fe)) => evaluate(&profile, cache, &info, &fe),
            other => panic!("expected a fit error, got {other:?}"),
        }
    }

    fn cluster() -> Cache {
        let mut c = Cache::default();
        c.upsert_node(node(
            "tainted",
            json!([{"key": "k", "effect": "NoSchedule"}]),
        ));
        c.upsert_node(node("a", json!([])));
        c.upsert_node(node("b", json!([])));
        c
    }

    #[test]
    fn no_victims_and_not_helpful() {
        let mut c = cluster();
        c.upsert_assigned_pod(&pod("x", Some("a"), "2", 10, json!({})));
        c.upsert_assigned_pod(&pod("y", Some("b"), "2", 10, json!({})));
        assert_eq!(
            run(&c, pod("p", None, "1", 0, json!({}))),
            Outcome::NoCandidates(
                "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, \
                 2 No preemption victims found for incoming pod."
                    .into()
            )
        );
        assert_eq!(
            run(
                &c,
                pod("p", None, "1", 100, json!({"preemptionPolicy": "Never"}))
            ),
            Outcome::NotEligible("preemption: not eligible due to preemptionPolicy=Never.".into())
        );
        // Too big for any node: every node is unresolvable.
        assert_eq!(
            run(&c, pod("p", None, "3", 100, json!({}))),
            Outcome::NoCandidates(
                "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
                    .into()
            )
        );
    }

    #[test]
    fn evicting_does_not_help_reports_filter_reason() {
        let mut c = cluster();
        c.upsert_assigned_pod(&pod("low", Some("a"), "500m", 0, json!({})));
        c.upsert_assigned_pod(&pod("high", Some("a"), "1500m", 100, json!({})));
        c.upsert_assigned_pod(&pod("y", Some("b"), "2", 100, json!({})));
        assert_eq!(
            run(&c, pod("p", None, "1", 50, json!({}))),
            Outcome::NoCandidates(
                "preemption: 0/3 nodes are available: 1 Insufficient cpu, 1 No preemption victims \
                 found for incoming pod, 1 Preemption is not helpful for scheduling."
                    .into()
            )
        );
    }

    #[test]
    fn waits_for_victims_of_an_earlier_preemption() {
        let mut c = cluster();
        let mut victim = pod("v", Some("a"), "2", 0, json!({}));
        victim.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        victim.status = Some(
            serde_json::from_value(json!({"conditions": [{"type": "DisruptionTarget",
                "status": "True", "reason": "PreemptionByScheduler"}]}))
            .expect("status"),
        );
        c.upsert_assigned_pod(&victim);
        c.upsert_assigned_pod(&pod("y", Some("b"), "2", 0, json!({})));
        let preemptor = pod("p", None, "1", 50, json!({}));
        c.set_nomination("d/p", Some(("a", PodUsage::of(&preemptor))));
        assert_eq!(
            run(&c, preemptor),
            Outcome::NotEligible(
                "preemption: not eligible due to a terminating pod on the nominated node.".into()
            )
        );
    }

    #[test]
    fn picks_minimal_victims_on_least_important_node() {
        let mut c = cluster();
        c.upsert_assigned_pod(&pod("a1", Some("a"), "1", 5, json!({})));
        c.upsert_assigned_pod(&pod("a2", Some("a"), "1", 1, json!({})));
        c.upsert_assigned_pod(&pod("b1", Some("b"), "2", 3, json!({})));
        match run(&c, pod("p", None, "1", 50, json!({}))) {
            Outcome::Preempt(cand) => {
                assert_eq!(cand.node, "a");
                assert_eq!(cand.victims, vec!["d/a2".to_string()]);
            }
            other => panic!("expected preemption, got {other:?}"),
        }
    }
}
