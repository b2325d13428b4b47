//! NodeAffinity: the pod's `spec.nodeSelector` and required node affinity
//! must match the node's labels (and name, via `matchFields`); preferred
//! node affinity terms add their weights to the node's score.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    NodeSelectorRequirement, NodeSelectorTerm, PodSpec, PreferredSchedulingTerm,
};

use crate::framework::{Code, FilterPlugin, ScorePlugin, Status, default_normalize};
use crate::node_info::{NodeInfo, PodInfo};

pub(crate) const ERR_REASON: &str = "node(s) didn't match Pod's node affinity/selector";

fn requirement_matches(req: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = req.values.as_deref().unwrap_or_default();
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        op @ ("Gt" | "Lt") => {
            // Exactly one integer operand; anything else never matches.
            let [bound] = values else { return false };
            let (Some(v), Ok(bound)) = (value, bound.parse::<i64>()) else {
                return false;
            };
            let Ok(v) = v.parse::<i64>() else {
                return false;
            };
            if op == "Gt" { v > bound } else { v < bound }
        }
        _ => false,
    }
}

/// One term: all expressions and fields must match; an empty term matches
/// nothing.
fn term_matches(
    term: &NodeSelectorTerm,
    labels: &BTreeMap<String, String>,
    node_name: &str,
) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| {
            // metadata.name is the only supported field selector key.
            r.key == "metadata.name" && requirement_matches(r, Some(node_name))
        })
}

fn node_labels(node: &NodeInfo) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    node.node.metadata.labels.as_ref().unwrap_or(&EMPTY)
}

/// Whether `spec.nodeSelector` and required node affinity admit the node
/// with `labels` named `node_name`. Public for the other components that
/// place pods on nodes as the scheduler would (the DaemonSet controller).
pub fn spec_admits_node(
    spec: &PodSpec,
    labels: &BTreeMap<String, String>,
    node_name: &str,
) -> bool {
    if let Some(sel) = spec.node_selector.as_ref()
        && !sel.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        // Terms are ORed.
        Some(sel) => sel
            .node_selector_terms
            .iter()
            .any(|t| term_matches(t, labels, node_name)),
        None => true,
    }
}

/// Whether `spec.nodeSelector` and required node affinity admit the node.
pub(crate) fn required_matches(pod: &PodInfo, node: &NodeInfo) -> bool {
    let Some(spec) = pod.spec() else { return true };
    spec_admits_node(spec, node_labels(node), node.name())
}

fn preferred_terms(pod: &PodInfo) -> &[PreferredSchedulingTerm] {
    pod.spec()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.preferred_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or_default()
}

pub struct NodeAffinity;

impl FilterPlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        if required_matches(pod, node) {
            Status::success()
        } else {
            Status::new(Code::UnschedulableAndUnresolvable, ERR_REASON)
        }
    }
}

impl ScorePlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    fn skip(&self, pod: &PodInfo) -> bool {
        preferred_terms(pod).is_empty()
    }

    /// Sum of the weights of the preferred terms the node matches.
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let labels = node_labels(node);
        preferred_terms(pod)
            .iter()
            .filter(|t| t.weight != 0 && term_matches(&t.preference, labels, node.name()))
            .map(|t| i64::from(t.weight))
            .sum()
    }

    fn normalize(&self, scores: &mut [i64]) {
        default_normalize(scores, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::{node, pod};
    use serde_json::{Value, json};

    fn labelled(name: &str, labels: Value) -> NodeInfo {
        node(
            json!({"name": name, "labels": labels}),
            json!({}),
            json!({}),
        )
    }

    fn required(terms: Value) -> Value {
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": terms}}}})
    }

    fn expr(key: &str, op: &str, values: Value) -> Value {
        json!([{"matchExpressions": [{"key": key, "operator": op, "values": values}]}])
    }

    #[test]
    fn filter_table() {
        let n = labelled("node-1", json!({"zone": "a", "gpu": "true", "cores": "8"}));
        let cases = [
            ("no constraints", json!({}), true),
            (
                "selector matches",
                json!({"nodeSelector": {"zone": "a"}}),
                true,
            ),
            (
                "selector mismatch",
                json!({"nodeSelector": {"zone": "b"}}),
                false,
            ),
            (
                "selector missing label",
                json!({"nodeSelector": {"disk": "ssd"}}),
                false,
            ),
            ("In", required(expr("zone", "In", json!(["a", "b"]))), true),
            (
                "In mismatch",
                required(expr("zone", "In", json!(["b"]))),
                false,
            ),
            ("NotIn", required(expr("zone", "NotIn", json!(["b"]))), true),
            (
                "NotIn excluded",
                required(expr("zone", "NotIn", json!(["a"]))),
                false,
            ),
            (
                "NotIn absent label",
                required(expr("disk", "NotIn", json!(["x"]))),
                true,
            ),
            ("Exists", required(expr("gpu", "Exists", Value::Null)), true),
            (
                "Exists absent",
                required(expr("disk", "Exists", Value::Null)),
                false,
            ),
            (
                "DoesNotExist",
                required(expr("disk", "DoesNotExist", Value::Null)),
                true,
            ),
            (
                "DoesNotExist present",
                required(expr("gpu", "DoesNotExist", Value::Null)),
                false,
            ),
            ("Gt", required(expr("cores", "Gt", json!(["4"]))), true),
            (
                "Gt not greater",
                required(expr("cores", "Gt", json!(["8"]))),
                false,
            ),
            ("Lt", required(expr("cores", "Lt", json!(["16"]))), true),
            (
                "Gt non-integer",
                required(expr("zone", "Gt", json!(["1"]))),
                false,
            ),
            (
                "Gt two values",
                required(expr("cores", "Gt", json!(["1", "2"]))),
                false,
            ),
            (
                "terms are ORed",
                required(json!([
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z"]}]},
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}])),
                true,
            ),
            (
                "expressions are ANDed",
                required(json!([{"matchExpressions": [
                    {"key": "zone", "operator": "In", "values": ["a"]},
                    {"key": "gpu", "operator": "In", "values": ["false"]}]}])),
                false,
            ),
            ("empty term matches nothing", required(json!([{}])), false),
            (
                "matchFields name",
                required(
                    json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-1"]}]}]),
                ),
                true,
            ),
            (
                "matchFields other name",
                required(
                    json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-2"]}]}]),
                ),
                false,
            ),
            (
                "matchFields NotIn",
                required(
                    json!([{"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["node-2"]}]}]),
                ),
                true,
            ),
        ];
        for (name, spec, fits) in cases {
            let s = NodeAffinity.filter(&pod(spec), &n);
            assert_eq!(s.is_success(), fits, "{name}");
            if !fits {
                assert_eq!(s.message(), ERR_REASON, "{name}");
                assert_eq!(s.code, Code::UnschedulableAndUnresolvable);
            }
        }
    }

    #[test]
    fn preferred_scores() {
        let p = pod(
            json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
            {"weight": 30, "preference": {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}}]}}}),
        );
        let nodes = [
            labelled("n1", json!({"zone": "a"})),
            labelled("n2", json!({"zone": "a", "gpu": "1"})),
            labelled("n3", json!({})),
            labelled("n4", json!({"gpu": "1"})),
        ];
        assert!(!NodeAffinity.skip(&p));
        let mut scores: Vec<i64> = nodes.iter().map(|n| NodeAffinity.score(&p, n)).collect();
        assert_eq!(scores, vec![10, 40, 0, 30]);
        NodeAffinity.normalize(&mut scores);
        assert_eq!(scores, vec![25, 100, 0, 75]);
        assert!(NodeAffinity.skip(&pod(json!({}))));
    }
}
