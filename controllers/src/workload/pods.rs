//! Pod predicates the workload controllers share (active, ready, available),
//! building a pod from a controller's template, and upstream's ranking of pods
//! for deletion on scale-down.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;

/// Annotation whose integer value orders pods for deletion (lower goes first).
pub(crate) const DELETION_COST_ANNOTATION: &str = "controller.kubernetes.io/pod-deletion-cost";

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// A pod counts toward its controller unless it finished or is being deleted.
pub(crate) fn is_active(pod: &Pod) -> bool {
    let p = phase(pod);
    p != "Succeeded" && p != "Failed" && pod.metadata.deletion_timestamp.is_none()
}

/// The time the pod's `Ready` condition last became true, if it is ready.
pub(crate) fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    let cond = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    (cond.status == "True").then(|| cond.last_transition_time.as_ref().map(|t| t.0))
}

pub(crate) fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Ready for at least `min_ready_seconds` (strictly longer, as upstream).
pub(crate) fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => since.as_second() + i64::from(min_ready_seconds) < now.as_second(),
    }
}

/// The pod a controller creates from its template: the template's labels,
/// annotations, finalizers and spec, a generated name with the controller's
/// name as prefix, and the controller reference.
pub(crate) fn pod_from_template(
    template: &PodTemplateSpec,
    namespace: &str,
    owner_name: &str,
    owner: OwnerReference,
) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{owner_name}-")),
            namespace: Some(namespace.to_string()),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

fn phase_ordinal(pod: &Pod) -> u8 {
    match phase(pod) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DELETION_COST_ANNOTATION))
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or(0)
}

fn max_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

/// floor(log2(nanoseconds since `t`)), or -1 when `t` is not in the past: pods
/// whose ages fall in the same power-of-two bucket rank equal.
fn log_age(t: Timestamp, now: Timestamp) -> i64 {
    let d = now.as_nanosecond() - t.as_nanosecond();
    if d > 0 {
        // Truncation toward zero is the intent: the bucket index.
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let r = (d as f64).log2() as i64;
        r
    } else {
        -1
    }
}

/// Orders two times "more recent first"; a missing time comes first.
fn newer_first(
    a: Option<Timestamp>,
    b: Option<Timestamp>,
    uid_a: &str,
    uid_b: &str,
    now: Timestamp,
) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) if x == y => Ordering::Equal,
        (Some(x), Some(y)) => match log_age(x, now).cmp(&log_age(y, now)) {
            Ordering::Equal => uid_a.cmp(uid_b),
            other => other,
        },
    }
}

/// A pod with its "doubled-up" rank: how many active related pods share its node.
#[derive(Debug, Clone)]
pub(crate) struct RankedPod<'a> {
    pub(crate) pod: &'a Pod,
    pub(crate) colocated: usize,
}

/// Upstream's deletion preference: `Less` means "delete `a` before `b`".
/// Unscheduled before scheduled; Pending < Unknown < Running; not ready before
/// ready; lower deletion cost first; more colocated pods first; ready more
/// recently first; more restarts first; created more recently first (times
/// compared in logarithmic buckets, ties broken by UID).
pub(crate) fn deletion_order(a: &RankedPod<'_>, b: &RankedPod<'_>, now: Timestamp) -> Ordering {
    let (pa, pb) = (a.pod, b.pod);
    let node = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default()
    };
    let (na, nb) = (node(pa), node(pb));
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return if na.is_empty() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    let uid = |p: &Pod| p.metadata.uid.clone().unwrap_or_default();
    let (ua, ub) = (uid(pa), uid(pb));
    phase_ordinal(pa)
        .cmp(&phase_ordinal(pb))
        .then_with(|| is_ready(pa).cmp(&is_ready(pb)))
        .then_with(|| deletion_cost(pa).cmp(&deletion_cost(pb)))
        .then_with(|| b.colocated.cmp(&a.colocated))
        .then_with(|| match (ready_since(pa), ready_since(pb)) {
            (Some(ra), Some(rb)) => newer_first(ra, rb, &ua, &ub, now),
            _ => Ordering::Equal,
        })
        .then_with(|| max_restarts(pb).cmp(&max_restarts(pa)))
        .then_with(|| {
            let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            newer_first(created(pa), created(pb), &ua, &ub, now)
        })
}

/// Picks `count` pods to delete from `pods`, ranking each by how many of
/// `related` (active pods of the same owner family) share its node.
pub(crate) fn pods_to_delete<'a>(
    pods: &'a [Pod],
    related: &[Pod],
    count: usize,
    now: Timestamp,
) -> Vec<&'a Pod> {
    if count >= pods.len() {
        return pods.iter().collect();
    }
    let mut on_node: BTreeMap<String, usize> = BTreeMap::new();
    for p in related.iter().filter(|p| is_active(p)) {
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        *on_node.entry(node).or_default() += 1;
    }
    let mut ranked: Vec<RankedPod<'a>> = pods
        .iter()
        .map(|pod| {
            let node = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default();
            RankedPod {
                pod,
                colocated: on_node.get(&node).copied().unwrap_or(0),
            }
        })
        .collect();
    ranked.sort_by(|a, b| deletion_order(a, b, now));
    ranked.into_iter().take(count).map(|r| r.pod).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn pod(name: &str, v: serde_json::Value) -> Pod {
        let mut p: Pod = serde_json::from_value(v).unwrap();
        p.metadata.name = Some(name.to_string());
        p.metadata.uid = Some(format!("uid-{name}"));
        p
    }

    fn ready_pod(name: &str, node: &str, ready_at: i64, created: i64) -> Pod {
        pod(
            name,
            json!({
                "metadata": {"creationTimestamp": ts(created).to_string()},
                "spec": {"nodeName": node, "containers": []},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ts(ready_at).to_string()}]}
            }),
        )
    }

    #[test]
    fn predicates() {
        let now = ts(1_000);
        let cases = [
            (
                pod("a", json!({"status": {"phase": "Pending"}})),
                true,
                false,
                false,
            ),
            (
                pod("b", json!({"status": {"phase": "Succeeded"}})),
                false,
                false,
                false,
            ),
            (
                pod("c", json!({"status": {"phase": "Failed"}})),
                false,
                false,
                false,
            ),
            (
                pod(
                    "d",
                    json!({"metadata": {"deletionTimestamp": ts(5).to_string()}, "status": {"phase": "Running"}}),
                ),
                false,
                false,
                false,
            ),
            (ready_pod("e", "n", 995, 0), true, true, false),
            (ready_pod("f", "n", 900, 0), true, true, true),
        ];
        for (p, active, ready, available) in &cases {
            let name = p.metadata.name.clone().unwrap();
            assert_eq!(is_active(p), *active, "active {name}");
            assert_eq!(is_ready(p), *ready, "ready {name}");
            assert_eq!(is_available(p, 10, now), *available, "available {name}");
            assert_eq!(is_available(p, 0, now), *ready, "available(0) {name}");
        }
    }

    #[test]
    fn deletion_ranking() {
        let now = ts(1_000_000);
        // (description, pod preferred for deletion, other pod, colocated counts)
        let cases: Vec<(&str, Pod, Pod, (usize, usize))> = vec![
            (
                "unscheduled first",
                pod("a", json!({"status": {"phase": "Running"}})),
                ready_pod("b", "n1", 0, 0),
                (0, 0),
            ),
            (
                "pending before running",
                pod(
                    "a",
                    json!({"spec": {"nodeName": "n", "containers": []}, "status": {"phase": "Pending"}}),
                ),
                pod(
                    "b",
                    json!({"spec": {"nodeName": "n", "containers": []}, "status": {"phase": "Running"}}),
                ),
                (0, 0),
            ),
            (
                "unknown before running",
                pod(
                    "a",
                    json!({"spec": {"nodeName": "n", "containers": []}, "status": {"phase": "Unknown"}}),
                ),
                pod(
                    "b",
                    json!({"spec": {"nodeName": "n", "containers": []}, "status": {"phase": "Running"}}),
                ),
                (0, 0),
            ),
            (
                "not ready before ready",
                pod(
                    "a",
                    json!({"spec": {"nodeName": "n", "containers": []}, "status": {"phase": "Running"}}),
                ),
                ready_pod("b", "n", 0, 0),
                (0, 0),
            ),
            (
                "lower deletion cost first",
                {
                    let mut p = ready_pod("a", "n", 0, 0);
                    p.metadata.annotations =
                        Some([(DELETION_COST_ANNOTATION.to_string(), "-5".to_string())].into());
                    p
                },
                ready_pod("b", "n", 0, 0),
                (0, 0),
            ),
            (
                "doubled up first",
                ready_pod("a", "n1", 0, 0),
                ready_pod("b", "n2", 0, 0),
                (3, 1),
            ),
            (
                "ready more recently first",
                ready_pod("a", "n", 999_000, 0),
                ready_pod("b", "n", 10, 0),
                (0, 0),
            ),
            (
                "more restarts first",
                {
                    let mut p = ready_pod("a", "n", 0, 0);
                    p.status.as_mut().unwrap().container_statuses =
                        Some(vec![serde_json::from_value(json!({"name": "c", "image": "i", "imageID": "", "ready": true, "restartCount": 4})).unwrap()]);
                    p
                },
                ready_pod("b", "n", 0, 0),
                (0, 0),
            ),
            (
                "newer first",
                ready_pod("a", "n", 0, 999_000),
                ready_pod("b", "n", 0, 10),
                (0, 0),
            ),
        ];
        for (what, first, second, (ra, rb)) in &cases {
            let a = RankedPod {
                pod: first,
                colocated: *ra,
            };
            let b = RankedPod {
                pod: second,
                colocated: *rb,
            };
            assert_eq!(deletion_order(&a, &b, now), Ordering::Less, "{what}");
            assert_eq!(
                deletion_order(&b, &a, now),
                Ordering::Greater,
                "{what} (reversed)"
            );
        }
    }

    #[test]
    fn picks_pending_and_unscheduled_for_deletion() {
        let now = ts(1_000_000);
        let pods = vec![
            ready_pod("ready-old", "n", 10, 0),
            pod(
                "pending",
                json!({"spec": {"nodeName": "n", "containers": []}, "status": {"phase": "Pending"}}),
            ),
            ready_pod("ready-new", "n", 999_990, 999_000),
            pod("unscheduled", json!({"status": {"phase": "Pending"}})),
        ];
        let chosen: Vec<String> = pods_to_delete(&pods, &pods, 3, now)
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(chosen, ["unscheduled", "pending", "ready-new"]);
        assert_eq!(pods_to_delete(&pods, &pods, 9, now).len(), 4);
    }
}
