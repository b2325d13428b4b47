//! Which nodes a DaemonSet's pod belongs on, and how its pods are pinned
//! there. As upstream, a node should run the daemon pod when the pod's
//! `nodeSelector` and required node affinity match it and every `NoSchedule`
//! and `NoExecute` taint is tolerated; an existing pod may stay while only
//! `NoExecute` taints are tolerated. Daemon pods tolerate the node-condition
//! taints automatically (not-ready, unreachable, disk/memory/pid pressure,
//! unschedulable, and network-unavailable for host-network pods), and carry a
//! required `metadata.name In [node]` affinity term so the scheduler binds
//! each to its node.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, Taint, Toleration,
};
use scheduler::plugins::node_affinity;

const NOT_READY: &str = "node.kubernetes.io/not-ready";
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

/// Whether a daemon pod should be created on a node, and whether an
/// existing one may keep running there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    pub(crate) should_run: bool,
    pub(crate) should_continue: bool,
}

/// Adds the tolerations every daemon pod gets, unless already present.
pub(crate) fn add_daemon_tolerations(spec: &mut PodSpec) {
    let mut wanted = vec![
        (NOT_READY, "NoExecute"),
        (UNREACHABLE, "NoExecute"),
        (DISK_PRESSURE, "NoSchedule"),
        (MEMORY_PRESSURE, "NoSchedule"),
        (PID_PRESSURE, "NoSchedule"),
        (UNSCHEDULABLE, "NoSchedule"),
    ];
    if spec.host_network == Some(true) {
        wanted.push((NETWORK_UNAVAILABLE, "NoSchedule"));
    }
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for (key, effect) in wanted {
        let present = tolerations.iter().any(|t| {
            t.key.as_deref() == Some(key)
                && t.effect.as_deref() == Some(effect)
                && t.operator.as_deref() == Some("Exists")
        });
        if !present {
            tolerations.push(Toleration {
                key: Some(key.to_string()),
                operator: Some("Exists".to_string()),
                effect: Some(effect.to_string()),
                ..Toleration::default()
            });
        }
    }
}

/// Replaces the required node affinity with the single term
/// `metadata.name In [node]`, keeping preferred terms and other affinities.
pub(crate) fn pin_to_node(spec: &mut PodSpec, node: &str) {
    let term = NodeSelectorTerm {
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".to_string(),
            operator: "In".to_string(),
            values: Some(vec![node.to_string()]),
        }]),
        match_expressions: None,
    };
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let node_affinity = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    node_affinity.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![term],
    });
}

/// The node a daemon pod is for: where it is bound, else the node its
/// affinity pins it to.
pub(crate) fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(n.clone());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|t| {
        t.match_fields.iter().flatten().find_map(|r| {
            let values = r.values.as_deref().unwrap_or_default();
            (r.key == "metadata.name" && r.operator == "In" && values.len() == 1)
                .then(|| values[0].clone())
        })
    })
}

fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => t
            .key
            .as_deref()
            .is_none_or(|k| k.is_empty() || k == taint.key),
        "Equal" => {
            t.key.as_deref() == Some(taint.key.as_str())
                && t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// `nodeSelector` and required node affinity, matched as the scheduler
/// matches them.
fn affinity_matches(spec: &PodSpec, node: &Node) -> bool {
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let name = node.metadata.name.as_deref().unwrap_or_default();
    node_affinity::spec_admits_node(spec, labels, name)
}

/// Where a pod with `template_spec` (before the daemon tolerations are
/// added) belongs relative to `node`.
pub(crate) fn placement(template_spec: &PodSpec, node: &Node) -> Placement {
    let mut spec = template_spec.clone();
    add_daemon_tolerations(&mut spec);
    if spec.node_name.as_ref().is_some_and(|n| !n.is_empty())
        && spec.node_name != node.metadata.name
    {
        return Placement {
            should_run: false,
            should_continue: false,
        };
    }
    if !affinity_matches(&spec, node) {
        return Placement {
            should_run: false,
            should_continue: false,
        };
    }
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    let untolerated = |effect: &str| {
        node.spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .into_iter()
            .flatten()
            .filter(|t| t.effect == effect)
            .any(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
    };
    let no_execute = untolerated("NoExecute");
    let no_schedule = untolerated("NoSchedule");
    Placement {
        should_run: !no_execute && !no_schedule,
        should_continue: !no_execute,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).unwrap()
    }

    fn spec(v: serde_json::Value) -> PodSpec {
        let mut v = v;
        v["containers"] = json!([{"name": "c"}]);
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn placement_rules() {
        let plain =
            node(json!({"metadata": {"name": "n1", "labels": {"zone": "a", "cores": "8"}}}));
        let tainted = |effect: &str| {
            node(
                json!({"metadata": {"name": "n2", "labels": {"zone": "a"}}, "spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": effect}]}}),
            )
        };
        let yes = Placement {
            should_run: true,
            should_continue: true,
        };
        let no = Placement {
            should_run: false,
            should_continue: false,
        };
        let keep = Placement {
            should_run: false,
            should_continue: true,
        };
        let cases = [
            ("no constraints", spec(json!({})), plain.clone(), yes),
            (
                "selector matches",
                spec(json!({"nodeSelector": {"zone": "a"}})),
                plain.clone(),
                yes,
            ),
            (
                "selector differs",
                spec(json!({"nodeSelector": {"zone": "b"}})),
                plain.clone(),
                no,
            ),
            (
                "affinity In",
                spec(
                    json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}}}}),
                ),
                plain.clone(),
                yes,
            ),
            (
                "affinity Gt fails",
                spec(
                    json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["16"]}]}]}}}}),
                ),
                plain.clone(),
                no,
            ),
            (
                "second term matches by name",
                spec(
                    json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]},
                        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
                    ]}}}}),
                ),
                plain.clone(),
                yes,
            ),
            (
                "NoSchedule untolerated",
                spec(json!({})),
                tainted("NoSchedule"),
                keep,
            ),
            (
                "NoExecute untolerated",
                spec(json!({})),
                tainted("NoExecute"),
                no,
            ),
            (
                "tolerated by key and value",
                spec(
                    json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu"}]}),
                ),
                tainted("NoExecute"),
                yes,
            ),
            (
                "tolerated by Exists",
                spec(json!({"tolerations": [{"operator": "Exists"}]})),
                tainted("NoSchedule"),
                yes,
            ),
            (
                "wrong effect",
                spec(
                    json!({"tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}]}),
                ),
                tainted("NoSchedule"),
                keep,
            ),
            (
                "PreferNoSchedule ignored",
                spec(json!({})),
                tainted("PreferNoSchedule"),
                yes,
            ),
            (
                "automatic not-ready toleration",
                spec(json!({})),
                node(
                    json!({"metadata": {"name": "n3"}, "spec": {"unschedulable": true, "taints": [
                        {"key": NOT_READY, "effect": "NoExecute"},
                        {"key": UNSCHEDULABLE, "effect": "NoSchedule"},
                        {"key": DISK_PRESSURE, "effect": "NoSchedule"}
                    ]}}),
                ),
                yes,
            ),
            (
                "network-unavailable only for host network",
                spec(json!({})),
                node(
                    json!({"metadata": {"name": "n4"}, "spec": {"taints": [{"key": NETWORK_UNAVAILABLE, "effect": "NoSchedule"}]}}),
                ),
                keep,
            ),
            (
                "network-unavailable tolerated with host network",
                spec(json!({"hostNetwork": true})),
                node(
                    json!({"metadata": {"name": "n4"}, "spec": {"taints": [{"key": NETWORK_UNAVAILABLE, "effect": "NoSchedule"}]}}),
                ),
                yes,
            ),
        ];
        for (what, s, n, want) in cases {
            assert_eq!(placement(&s, &n), want, "{what}");
        }
    }

    #[test]
    fn pinning_and_target() {
        let mut s = spec(json!({"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {"matchExpressions": [{"key": "x", "operator": "Exists"}]}}]
        }}}));
        pin_to_node(&mut s, "n7");
        add_daemon_tolerations(&mut s);
        add_daemon_tolerations(&mut s);
        assert_eq!(s.tolerations.as_ref().unwrap().len(), 6, "added once");
        let na = s.affinity.as_ref().unwrap().node_affinity.as_ref().unwrap();
        assert!(
            na.preferred_during_scheduling_ignored_during_execution
                .is_some()
        );
        let pod = Pod {
            spec: Some(s.clone()),
            ..Pod::default()
        };
        assert_eq!(target_node(&pod).as_deref(), Some("n7"));
        let mut bound = pod.clone();
        bound.spec.as_mut().unwrap().node_name = Some("n8".into());
        assert_eq!(target_node(&bound).as_deref(), Some("n8"));
        assert_eq!(target_node(&Pod::default()), None);
    }
}
