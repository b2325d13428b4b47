//! TaintToleration: filters out nodes with a NoSchedule/NoExecute taint the
//! pod does not tolerate, and scores nodes by how few untolerated
//! PreferNoSchedule taints they carry.

use k8s_openapi::api::core::v1::{Taint, Toleration};

use crate::framework::{Code, FilterPlugin, ScorePlugin, Status, default_normalize};
use crate::node_info::{NodeInfo, PodInfo};

/// Whether one toleration matches a taint (key, effect and value/operator).
pub(crate) fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty())
        && effect != taint.effect
    {
        return false;
    }
    if let Some(key) = t.key.as_deref().filter(|k| !k.is_empty())
        && key != taint.key
    {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            t.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

pub(crate) fn tolerations_tolerate(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

fn pod_tolerations(pod: &PodInfo) -> &[Toleration] {
    pod.spec()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default()
}

pub struct TaintToleration;

impl FilterPlugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        let tolerations = pod_tolerations(pod);
        let untolerated = node.taints().iter().find(|taint| {
            (taint.effect == "NoSchedule" || taint.effect == "NoExecute")
                && !tolerations_tolerate(tolerations, taint)
        });
        match untolerated {
            None => Status::success(),
            Some(taint) => Status::new(
                Code::UnschedulableAndUnresolvable,
                format!(
                    "node(s) had untolerated taint {{{}: {}}}",
                    taint.key,
                    taint.value.as_deref().unwrap_or_default()
                ),
            ),
        }
    }
}

impl ScorePlugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    /// The number of PreferNoSchedule taints not tolerated; fewer is better.
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        // Only tolerations that can apply to PreferNoSchedule count (this
        // runs per node, so filter inline instead of collecting).
        let applies = |t: &&Toleration| {
            matches!(
                t.effect.as_deref(),
                None | Some("") | Some("PreferNoSchedule")
            )
        };
        node.taints()
            .iter()
            .filter(|taint| taint.effect == "PreferNoSchedule")
            .filter(|taint| {
                !pod_tolerations(pod)
                    .iter()
                    .filter(applies)
                    .any(|t| tolerates(t, taint))
            })
            .count() as i64
    }

    fn normalize(&self, scores: &mut [i64]) {
        default_normalize(scores, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::{node, pod};
    use serde_json::{Value, json};

    fn taints(t: Value) -> NodeInfo {
        node(json!({}), json!({"taints": t}), json!({}))
    }

    #[test]
    fn toleration_matching() {
        let taint = |k: &str, v: &str, e: &str| Taint {
            key: k.into(),
            value: Some(v.into()),
            effect: e.into(),
            ..Default::default()
        };
        let tol = |v: Value| -> Toleration { serde_json::from_value(v).expect("toleration") };
        let cases = [
            (
                json!({"key": "a", "operator": "Equal", "value": "1", "effect": "NoSchedule"}),
                taint("a", "1", "NoSchedule"),
                true,
            ),
            (
                json!({"key": "a", "value": "1"}),
                taint("a", "1", "NoExecute"),
                true,
            ),
            (
                json!({"key": "a", "value": "2"}),
                taint("a", "1", "NoSchedule"),
                false,
            ),
            (
                json!({"key": "a", "operator": "Exists"}),
                taint("a", "1", "NoSchedule"),
                true,
            ),
            (
                json!({"key": "b", "operator": "Exists"}),
                taint("a", "1", "NoSchedule"),
                false,
            ),
            (
                json!({"operator": "Exists"}),
                taint("a", "1", "NoSchedule"),
                true,
            ),
            (
                json!({"operator": "Exists", "effect": "NoExecute"}),
                taint("a", "1", "NoSchedule"),
                false,
            ),
            (
                json!({"key": "a", "operator": "Exists", "effect": "NoSchedule"}),
                taint("a", "", "NoSchedule"),
                true,
            ),
            (
                json!({"key": "a", "operator": "Equal"}),
                taint("a", "", "NoSchedule"),
                true,
            ),
            (
                json!({"key": "a", "operator": "Bogus"}),
                taint("a", "", "NoSchedule"),
                false,
            ),
        ];
        for (t, taint, want) in cases {
            assert_eq!(tolerates(&tol(t.clone()), &taint), want, "{t} vs {taint:?}");
        }
    }

    #[test]
    fn filter_table() {
        let cp = json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]);
        let cases = [
            ("no taints", json!([]), json!({}), None),
            (
                "untolerated control plane",
                cp.clone(),
                json!({}),
                Some("node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"),
            ),
            (
                "tolerated",
                cp,
                json!({"tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]}),
                None,
            ),
            (
                "prefer no schedule ignored",
                json!([{"key": "a", "value": "b", "effect": "PreferNoSchedule"}]),
                json!({}),
                None,
            ),
            (
                "no execute with value",
                json!([{"key": "spray", "value": "mortein", "effect": "NoExecute"}]),
                json!({}),
                Some("node(s) had untolerated taint {spray: mortein}"),
            ),
        ];
        for (name, t, spec, want) in cases {
            let s = TaintToleration.filter(&pod(spec), &taints(t));
            match want {
                None => assert!(s.is_success(), "{name}: {s:?}"),
                Some(msg) => {
                    assert_eq!(s.message(), msg, "{name}");
                    assert_eq!(s.code, Code::UnschedulableAndUnresolvable, "{name}");
                }
            }
        }
    }

    #[test]
    fn score_prefers_fewer_intolerable_taints() {
        let nodes = [
            taints(json!([])),
            taints(json!([{"key": "a", "effect": "PreferNoSchedule"}])),
            taints(
                json!([{"key": "a", "effect": "PreferNoSchedule"}, {"key": "b", "effect": "PreferNoSchedule"}]),
            ),
            taints(json!([{"key": "c", "effect": "PreferNoSchedule"}])),
        ];
        let p = pod(
            json!({"tolerations": [{"key": "c", "operator": "Exists", "effect": "PreferNoSchedule"}]}),
        );
        let mut scores: Vec<i64> = nodes.iter().map(|n| TaintToleration.score(&p, n)).collect();
        assert_eq!(scores, vec![0, 1, 2, 0]);
        TaintToleration.normalize(&mut scores);
        assert_eq!(scores, vec![100, 50, 0, 100]);
    }
}
