//! InterPodAffinity filter (required terms only): a pod's
//! `requiredDuringSchedulingIgnoredDuringExecution` pod affinity and
//! anti-affinity, and the required anti-affinity of pods already running,
//! evaluated per topology domain (nodes sharing the term's `topologyKey`
//! label value).
//!
//! As upstream does in PreFilter, the pods of the whole cluster are counted
//! once per scheduling cycle into per-domain tallies (`State`); the per-node
//! filter then only looks the node's domains up.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{PodAffinityTerm, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use crate::cache::Cache;
use crate::framework::{Code, CycleState, FilterPlugin, Status};
use crate::node_info::{NodeInfo, PodInfo, PodUsage};

pub(crate) const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub(crate) const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub(crate) const ERR_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

/// A (topology key, value) domain.
type Domain = (String, String);

/// Per-cycle tallies for one incoming pod.
#[derive(Debug, Default, Clone)]
pub struct State {
    /// Domains holding a pod whose required anti-affinity matches the
    /// incoming pod.
    existing_anti: HashMap<Domain, usize>,
    /// Per affinity term of the incoming pod: matching pods per domain.
    affinity: Vec<HashMap<Domain, usize>>,
    /// Per anti-affinity term of the incoming pod: matching pods per domain.
    anti: Vec<HashMap<Domain, usize>>,
    /// No pod anywhere matches the affinity terms, but the incoming pod
    /// matches them itself: the first pod of a group may go anywhere the
    /// topology keys exist.
    first_of_group: bool,
}

fn required_terms(spec: Option<&PodSpec>, anti: bool) -> &[PodAffinityTerm] {
    let affinity = spec.and_then(|s| s.affinity.as_ref());
    let terms = if anti {
        affinity
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_deref()
            })
    } else {
        affinity
            .and_then(|a| a.pod_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_deref()
            })
    };
    terms.unwrap_or_default()
}

/// The required anti-affinity terms a pod imposes on others.
pub(crate) fn required_anti_affinity(spec: Option<&PodSpec>) -> Vec<PodAffinityTerm> {
    required_terms(spec, true).to_vec()
}

fn requirement_matches(r: &LabelSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let v = labels.get(&r.key);
    match r.operator.as_str() {
        "In" => v.is_some_and(|v| values.contains(v)),
        "NotIn" => v.is_none_or(|v| !values.contains(v)),
        "Exists" => v.is_some(),
        "DoesNotExist" => v.is_none(),
        _ => false,
    }
}

/// Label selector semantics: an absent selector matches nothing, an empty
/// one everything.
pub(crate) fn selector_matches(
    sel: Option<&LabelSelector>,
    labels: &BTreeMap<String, String>,
) -> bool {
    let Some(sel) = sel else { return false };
    sel.match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v))
        && sel
            .match_expressions
            .iter()
            .flatten()
            .all(|r| requirement_matches(r, labels))
}

/// Whether `term` (declared by a pod in `owner_ns`) selects a pod in
/// `namespace` with `labels`. A non-empty `namespaceSelector` needs
/// namespace labels this scheduler does not watch; it is approximated by
/// the explicit `namespaces` list only.
fn term_matches(
    term: &PodAffinityTerm,
    owner_ns: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    let listed = term.namespaces.as_deref().unwrap_or_default();
    let ns_ok = match &term.namespace_selector {
        // An empty namespace selector selects every namespace.
        Some(sel)
            if sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
                && sel.match_expressions.as_ref().is_none_or(|e| e.is_empty()) =>
        {
            true
        }
        Some(_) => listed.iter().any(|n| n == namespace),
        None if listed.is_empty() => namespace == owner_ns,
        None => listed.iter().any(|n| n == namespace),
    };
    ns_ok && selector_matches(term.label_selector.as_ref(), labels)
}

fn node_domain(node: &NodeInfo, key: &str) -> Option<Domain> {
    node.node
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(|v| (key.to_string(), v.clone()))
}

/// Builds the per-cycle tallies for `pod` from every pod in the cache.
pub fn pre_filter(pod: &PodInfo, cache: &Cache) -> State {
    let spec = pod.spec();
    let ns = pod.usage.namespace.as_str();
    let affinity = required_terms(spec, false);
    let anti = required_terms(spec, true);
    let mut state = State {
        affinity: vec![HashMap::new(); affinity.len()],
        anti: vec![HashMap::new(); anti.len()],
        ..Default::default()
    };
    let own = affinity.is_empty() && anti.is_empty();
    // The common case: nothing to count anywhere.
    if own && cache.anti_affinity_pods() == 0 {
        return state;
    }
    for node in cache.nodes_in_order() {
        // Existing pods' anti-affinity: only nodes that host such pods.
        if node.pods_with_required_anti_affinity > 0 {
            for usage in node.pods.values() {
                for term in &usage.required_anti_affinity {
                    if term_matches(term, &usage.namespace, ns, &pod.usage.labels)
                        && let Some(d) = node_domain(node, &term.topology_key)
                    {
                        *state.existing_anti.entry(d).or_default() += 1;
                    }
                }
            }
        }
        if own {
            continue;
        }
        for usage in node.pods.values() {
            count_matches(affinity, &mut state.affinity, ns, usage, node);
            count_matches(anti, &mut state.anti, ns, usage, node);
        }
    }
    if !affinity.is_empty() && state.affinity.iter().all(HashMap::is_empty) {
        state.first_of_group = affinity
            .iter()
            .all(|t| term_matches(t, ns, ns, &pod.usage.labels));
    }
    state
}

fn count_matches(
    terms: &[PodAffinityTerm],
    tallies: &mut [HashMap<Domain, usize>],
    owner_ns: &str,
    other: &PodUsage,
    node: &NodeInfo,
) {
    for (term, tally) in terms.iter().zip(tallies.iter_mut()) {
        if term_matches(term, owner_ns, &other.namespace, &other.labels)
            && let Some(d) = node_domain(node, &term.topology_key)
        {
            *tally.entry(d).or_default() += 1;
        }
    }
}

pub struct InterPodAffinity;

impl InterPodAffinity {
    fn check(pod: &PodInfo, state: &State, node: &NodeInfo) -> Status {
        let spec = pod.spec();
        // Every affinity term needs a matching pod in the node's domain.
        let affinity = required_terms(spec, false);
        let affinity_ok =
            affinity.iter().zip(&state.affinity).all(|(term, tally)| {
                match node_domain(node, &term.topology_key) {
                    Some(d) => state.first_of_group || tally.get(&d).is_some_and(|c| *c > 0),
                    None => false,
                }
            });
        if !affinity_ok {
            return Status::new(Code::UnschedulableAndUnresolvable, ERR_AFFINITY);
        }
        let anti = required_terms(spec, true);
        let anti_ok = anti.iter().zip(&state.anti).all(|(term, tally)| {
            node_domain(node, &term.topology_key)
                .is_none_or(|d| tally.get(&d).is_none_or(|c| *c == 0))
        });
        if !anti_ok {
            return Status::new(Code::Unschedulable, ERR_ANTI_AFFINITY);
        }
        if !state.existing_anti.is_empty() {
            let labels = node.node.metadata.labels.iter().flatten();
            let blocked = labels
                .into_iter()
                .any(|(k, v)| state.existing_anti.contains_key(&(k.clone(), v.clone())));
            if blocked {
                return Status::new(Code::Unschedulable, ERR_EXISTING_ANTI_AFFINITY);
            }
        }
        Status::success()
    }
}

impl FilterPlugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        "InterPodAffinity"
    }

    fn pre_filter(&self, pod: &PodInfo, cache: &Cache, state: &mut CycleState) {
        state.inter_pod_affinity = Some(pre_filter(pod, cache));
    }

    fn filter_with_state(&self, pod: &PodInfo, state: &CycleState, node: &NodeInfo) -> Status {
        match &state.inter_pod_affinity {
            Some(s) => Self::check(pod, s, node),
            None => self.filter(pod, node),
        }
    }

    /// Without a prepared cycle state nothing is known about other pods.
    fn filter(&self, _pod: &PodInfo, _node: &NodeInfo) -> Status {
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::{Value, json};
    use std::sync::Arc;

    fn node(name: &str, zone: &str) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name,
            "labels": {"kubernetes.io/hostname": name, "zone": zone}},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}))
        .expect("node")
    }

    fn pod(name: &str, ns: &str, node: Option<&str>, labels: Value, affinity: Value) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"nodeName": node, "affinity": affinity, "containers": [{"name": "c"}]}}),
        )
        .expect("pod")
    }

    fn term(key: &str, app: &str) -> Value {
        json!({"topologyKey": key, "labelSelector": {"matchLabels": {"app": app}}})
    }

    fn cluster() -> Cache {
        let mut c = Cache::default();
        c.upsert_node(node("a1", "a"));
        c.upsert_node(node("a2", "a"));
        c.upsert_node(node("b1", "b"));
        c
    }

    /// Filter verdicts per node (a1, a2, b1) as reasons ("" = fits).
    fn verdicts(c: &Cache, p: Pod) -> Vec<String> {
        let info = PodInfo::new(Arc::new(p));
        let mut state = CycleState::default();
        InterPodAffinity.pre_filter(&info, c, &mut state);
        c.nodes_in_order()
            .map(|n| {
                InterPodAffinity
                    .filter_with_state(&info, &state, n)
                    .message()
            })
            .collect()
    }

    #[test]
    fn anti_affinity_spreads_replicas() {
        let mut c = cluster();
        let anti = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            [term("kubernetes.io/hostname", "web")]}});
        c.upsert_assigned_pod(&pod(
            "w1",
            "d",
            Some("a1"),
            json!({"app": "web"}),
            anti.clone(),
        ));
        let v = verdicts(&c, pod("w2", "d", None, json!({"app": "web"}), anti));
        assert_eq!(v, vec![ERR_ANTI_AFFINITY, "", ""]);
    }

    #[test]
    fn existing_pods_anti_affinity_is_symmetric() {
        let mut c = cluster();
        let anti = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            [term("zone", "noisy")]}});
        c.upsert_assigned_pod(&pod(
            "quiet",
            "d",
            Some("a1"),
            json!({"app": "quiet"}),
            anti,
        ));
        let v = verdicts(
            &c,
            pod("n", "d", None, json!({"app": "noisy"}), Value::Null),
        );
        assert_eq!(
            v,
            vec![ERR_EXISTING_ANTI_AFFINITY, ERR_EXISTING_ANTI_AFFINITY, ""]
        );
        // Other namespaces are not selected by the default namespace scope.
        let v = verdicts(
            &c,
            pod("n", "other", None, json!({"app": "noisy"}), Value::Null),
        );
        assert_eq!(v, vec!["", "", ""]);
    }

    #[test]
    fn affinity_follows_the_target_zone() {
        let mut c = cluster();
        let aff = json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            [term("zone", "db")]}});
        // Nothing matches yet and the pod does not match itself: nowhere.
        let v = verdicts(
            &c,
            pod("app", "d", None, json!({"app": "web"}), aff.clone()),
        );
        assert_eq!(v, vec![ERR_AFFINITY, ERR_AFFINITY, ERR_AFFINITY]);
        // The first pod of a self-matching group may go anywhere.
        let v = verdicts(&c, pod("db0", "d", None, json!({"app": "db"}), aff.clone()));
        assert_eq!(v, vec!["", "", ""]);
        c.upsert_assigned_pod(&pod(
            "db1",
            "d",
            Some("b1"),
            json!({"app": "db"}),
            Value::Null,
        ));
        let v = verdicts(&c, pod("app", "d", None, json!({"app": "web"}), aff));
        assert_eq!(v, vec![ERR_AFFINITY, ERR_AFFINITY, ""]);
    }

    #[test]
    fn selectors_and_namespaces() {
        let labels: BTreeMap<String, String> = [("app".to_string(), "x".to_string())].into();
        let sel = |v: Value| -> LabelSelector { serde_json::from_value(v).expect("selector") };
        assert!(!selector_matches(None, &labels));
        assert!(selector_matches(Some(&sel(json!({}))), &labels));
        assert!(selector_matches(
            Some(&sel(
                json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["x", "y"]}]})
            )),
            &labels
        ));
        assert!(!selector_matches(
            Some(&sel(
                json!({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]})
            )),
            &labels
        ));
        let t = |v: Value| -> PodAffinityTerm { serde_json::from_value(v).expect("term") };
        let base = json!({"topologyKey": "k", "labelSelector": {}});
        assert!(term_matches(&t(base.clone()), "d", "d", &labels));
        assert!(!term_matches(&t(base), "d", "e", &labels));
        let listed = json!({"topologyKey": "k", "labelSelector": {}, "namespaces": ["e"]});
        assert!(term_matches(&t(listed), "d", "e", &labels));
        let all = json!({"topologyKey": "k", "labelSelector": {}, "namespaceSelector": {}});
        assert!(term_matches(&t(all), "d", "zzz", &labels));
    }
}
