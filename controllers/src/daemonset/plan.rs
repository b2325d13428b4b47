//! Pure decisions of a DaemonSet sync, from a snapshot of nodes and pods:
//! which nodes need a pod and which pods must go (`manage`), which old pods
//! a rolling update replaces next (`rolling`), and the status. Kept free of
//! IO so each rule is table-tested.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSetStatus;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::placement::Placement;
use crate::workload::history::REVISION_HASH_LABEL;
use crate::workload::pods;

/// One node as the sync sees it: its placement and the daemon pods targeted
/// at it, oldest first.
#[derive(Debug)]
pub(crate) struct NodeState<'a> {
    pub(crate) name: String,
    pub(crate) placement: Placement,
    pub(crate) pods: Vec<&'a Pod>,
}

pub(crate) fn terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

fn failed(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")
}

pub(crate) fn updated(pod: &Pod, hash: &str) -> bool {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_HASH_LABEL))
        .is_some_and(|h| h == hash)
}

pub(crate) fn available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    !terminating(pod) && pods::is_available(pod, min_ready_seconds, now)
}

/// What `manage` decided: nodes to create a pod on, pods to delete (names).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    pub(crate) create_on: Vec<String>,
    pub(crate) delete: Vec<String>,
}

impl Changes {
    pub(crate) fn is_empty(&self) -> bool {
        self.create_on.is_empty() && self.delete.is_empty()
    }
}

fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// One pod per node that should run one; none where none may continue;
/// failed pods replaced; duplicates removed (with surge, one old and one new
/// pod may coexist while the new one becomes available).
pub(crate) fn manage(nodes: &[NodeState<'_>], hash: &str, surge: bool) -> Changes {
    let mut changes = Changes::default();
    for node in nodes {
        let live: Vec<&Pod> = node
            .pods
            .iter()
            .copied()
            .filter(|p| !terminating(p))
            .collect();
        if !node.placement.should_continue {
            changes.delete.extend(live.iter().map(|p| name(p)));
            continue;
        }
        let (dead, running): (Vec<&Pod>, Vec<&Pod>) = live.into_iter().partition(|p| failed(p));
        changes.delete.extend(dead.iter().map(|p| name(p)));
        if running.is_empty() {
            if node.placement.should_run {
                changes.create_on.push(node.name.clone());
            }
            continue;
        }
        let extra: Vec<&Pod> = if surge {
            let (new, old): (Vec<&Pod>, Vec<&Pod>) =
                running.into_iter().partition(|p| updated(p, hash));
            new.into_iter()
                .skip(1)
                .chain(old.into_iter().skip(1))
                .collect()
        } else {
            running.into_iter().skip(1).collect()
        };
        changes.delete.extend(extra.iter().map(|p| name(p)));
    }
    changes
}

/// The rolling-update bounds, already resolved against the desired count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) max_surge: i32,
    pub(crate) max_unavailable: i32,
    pub(crate) min_ready_seconds: i32,
}

/// `(old, new)` live pods on a node, or `None` if it has several of either.
fn split<'a>(pods: &[&'a Pod], hash: &str) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let live = pods.iter().copied().filter(|p| !terminating(p));
    let (new, old): (Vec<&Pod>, Vec<&Pod>) = live.partition(|p| updated(p, hash));
    if new.len() > 1 || old.len() > 1 {
        return None;
    }
    Some((old.first().copied(), new.first().copied()))
}

/// The next step of a rolling update over the nodes that should run a pod.
/// Without surge, old pods are deleted (unavailable ones at once, the others
/// while fewer than `maxUnavailable` are unavailable) and `manage` recreates
/// them; with surge, new pods are created beside old ones (at most
/// `maxSurge` at a time, at once where the old one is unavailable) and an
/// old pod is deleted once its replacement is available.
pub(crate) fn rolling(nodes: &[NodeState<'_>], hash: &str, b: Bounds, now: Timestamp) -> Changes {
    let mut changes = Changes::default();
    let avail = |p: &Pod| available(p, b.min_ready_seconds, now);
    let targets = nodes.iter().filter(|n| n.placement.should_run);
    if b.max_surge <= 0 {
        let mut unavailable = 0i32;
        let mut replace_now = Vec::new();
        let mut candidates = Vec::new();
        for node in targets {
            match split(&node.pods, hash) {
                None | Some((None, None) | (Some(_), Some(_))) => unavailable += 1,
                Some((None, Some(new))) => {
                    if !avail(new) {
                        unavailable += 1;
                    }
                }
                Some((Some(old), None)) => {
                    if !avail(old) {
                        replace_now.push(name(old));
                    } else if unavailable < b.max_unavailable {
                        candidates.push(name(old));
                    }
                }
            }
        }
        let room = usize::try_from((b.max_unavailable - unavailable).max(0)).unwrap_or(0);
        changes.delete = replace_now;
        changes.delete.extend(candidates.into_iter().take(room));
        return changes;
    }
    let mut surging = 0i32;
    let mut create_now = Vec::new();
    let mut candidates = Vec::new();
    for node in targets {
        let Some((old, new)) = split(&node.pods, hash) else {
            continue;
        };
        match (old, new) {
            (None, _) => {}
            (Some(old), None) => {
                if !avail(old) {
                    create_now.push(node.name.clone());
                } else if surging < b.max_surge {
                    candidates.push(node.name.clone());
                }
            }
            (Some(old), Some(new)) => {
                if avail(new) {
                    changes.delete.push(name(old));
                } else {
                    surging += 1;
                }
            }
        }
    }
    let room = usize::try_from((b.max_surge - surging).max(0)).unwrap_or(0);
    changes.create_on = create_now;
    changes.create_on.extend(candidates.into_iter().take(room));
    changes
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The status over `nodes` (each pod list oldest first).
pub(crate) fn status(
    nodes: &[NodeState<'_>],
    hash: &str,
    min_ready_seconds: i32,
    generation: Option<i64>,
    collision_count: i32,
    previous: Option<&DaemonSetStatus>,
    now: Timestamp,
) -> DaemonSetStatus {
    let (mut desired, mut current, mut misscheduled) = (0usize, 0usize, 0usize);
    let (mut ready, mut avail, mut updated_count) = (0usize, 0usize, 0usize);
    for node in nodes {
        let live: Vec<&Pod> = node
            .pods
            .iter()
            .copied()
            .filter(|p| !terminating(p))
            .collect();
        let Some(pod) = live.first() else {
            if node.placement.should_run {
                desired += 1;
            }
            continue;
        };
        if !node.placement.should_run {
            misscheduled += 1;
            continue;
        }
        desired += 1;
        current += 1;
        if pods::is_ready(pod) {
            ready += 1;
            if available(pod, min_ready_seconds, now) {
                avail += 1;
            }
        }
        if updated(pod, hash) {
            updated_count += 1;
        }
    }
    DaemonSetStatus {
        desired_number_scheduled: count(desired),
        current_number_scheduled: count(current),
        number_misscheduled: count(misscheduled),
        number_ready: count(ready),
        number_available: Some(count(avail)),
        number_unavailable: Some(count(desired.saturating_sub(avail))),
        updated_number_scheduled: Some(count(updated_count)),
        observed_generation: generation,
        collision_count: Some(collision_count),
        conditions: previous.and_then(|p| p.conditions.clone()),
    }
}

/// Groups pods by the node they target, oldest first within a node.
pub(crate) fn by_node(pods: &[Pod]) -> BTreeMap<String, Vec<&Pod>> {
    let mut map: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for p in pods {
        if let Some(node) = super::placement::target_node(p) {
            map.entry(node).or_default().push(p);
        }
    }
    for list in map.values_mut() {
        list.sort_by(|a, b| {
            a.metadata
                .creation_timestamp
                .cmp(&b.metadata.creation_timestamp)
                .then_with(|| a.metadata.name.cmp(&b.metadata.name))
        });
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RUN: Placement = Placement {
        should_run: true,
        should_continue: true,
    };
    const NO: Placement = Placement {
        should_run: false,
        should_continue: false,
    };

    fn pod(name: &str, hash: &str, state: &str) -> Pod {
        let (phase, ready, deleting) = match state {
            "ready" => ("Running", "True", false),
            "unready" => ("Running", "False", false),
            "failed" => ("Failed", "False", false),
            "deleting" => ("Running", "True", true),
            _ => panic!("{state}"),
        };
        let mut v = json!({
            "metadata": {"name": name, "labels": {"controller-revision-hash": hash}},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": "2024-01-01T00:00:00Z"}]}
        });
        if deleting {
            v["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        }
        serde_json::from_value(v).unwrap()
    }

    fn node<'a>(name: &str, placement: Placement, pods: Vec<&'a Pod>) -> NodeState<'a> {
        NodeState {
            name: name.to_string(),
            placement,
            pods,
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_704_067_300).unwrap()
    }

    #[test]
    fn manage_rules() {
        let a = pod("a", "new", "ready");
        let b = pod("b", "new", "ready");
        let f = pod("f", "new", "failed");
        let d = pod("d", "new", "deleting");
        let o = pod("o", "old", "ready");
        let nodes = vec![
            node("empty", RUN, vec![]),
            node("ok", RUN, vec![&a]),
            node("dup", RUN, vec![&a, &b]),
            node("failed", RUN, vec![&f]),
            node("terminating", RUN, vec![&d]),
            node("ineligible", NO, vec![&a]),
            node(
                "tainted-noschedule",
                Placement {
                    should_run: false,
                    should_continue: true,
                },
                vec![&o],
            ),
        ];
        let c = manage(&nodes, "new", false);
        assert_eq!(c.create_on, ["empty", "failed", "terminating"]);
        assert_eq!(c.delete, ["b", "f", "a"]);
        // With surge, one old and one new pod may share a node.
        let surge = vec![node("n", RUN, vec![&o, &a, &b])];
        assert_eq!(manage(&surge, "new", true).delete, ["b"]);
        assert_eq!(manage(&surge, "new", false).delete, ["a", "b"]);
    }

    #[test]
    fn rolling_without_surge() {
        let old: Vec<Pod> = (0..4)
            .map(|i| pod(&format!("o{i}"), "old", "ready"))
            .collect();
        let sick = pod("sick", "old", "unready");
        let fresh = pod("fresh", "new", "unready");
        let b = |max_unavailable| Bounds {
            max_surge: 0,
            max_unavailable,
            min_ready_seconds: 0,
        };
        let nodes = vec![
            node("n0", RUN, vec![&old[0]]),
            node("n1", RUN, vec![&old[1]]),
            node("n2", RUN, vec![&old[2]]),
            node("n3", RUN, vec![&sick]),
        ];
        // The unavailable old pod goes at once, plus up to maxUnavailable.
        assert_eq!(rolling(&nodes, "new", b(1), now()).delete, ["sick", "o0"]);
        assert_eq!(
            rolling(&nodes, "new", b(2), now()).delete,
            ["sick", "o0", "o1"]
        );
        // A replacement still starting uses up the budget.
        let nodes = vec![
            node("n0", RUN, vec![&fresh]),
            node("n1", RUN, vec![&old[1]]),
        ];
        assert!(rolling(&nodes, "new", b(1), now()).delete.is_empty());
        assert_eq!(rolling(&nodes, "new", b(2), now()).delete, ["o1"]);
    }

    #[test]
    fn rolling_with_surge() {
        let o0 = pod("o0", "old", "ready");
        let o1 = pod("o1", "old", "ready");
        let o2 = pod("o2", "old", "unready");
        let n0 = pod("n0", "new", "unready");
        let n1 = pod("n1", "new", "ready");
        let b = Bounds {
            max_surge: 1,
            max_unavailable: 0,
            min_ready_seconds: 0,
        };
        let nodes = vec![
            node("a", RUN, vec![&o0]),
            node("b", RUN, vec![&o1]),
            node("c", RUN, vec![&o2]),
        ];
        let c = rolling(&nodes, "new", b, now());
        assert_eq!(
            c.create_on,
            ["c", "a"],
            "unavailable old pods are surged at once"
        );
        assert!(c.delete.is_empty());
        // A surging node blocks further surges until its new pod is ready;
        // then the old pod goes.
        let nodes = vec![node("a", RUN, vec![&o0, &n0]), node("b", RUN, vec![&o1])];
        assert!(rolling(&nodes, "new", b, now()).is_empty());
        let nodes = vec![node("a", RUN, vec![&o0, &n1]), node("b", RUN, vec![&o1])];
        let c = rolling(&nodes, "new", b, now());
        assert_eq!(
            (c.create_on, c.delete),
            (vec!["b".to_string()], vec!["o0".to_string()])
        );
    }

    #[test]
    fn status_counts() {
        let a = pod("a", "new", "ready");
        let o = pod("o", "old", "unready");
        let m = pod("m", "new", "ready");
        let nodes = vec![
            node("n0", RUN, vec![&a]),
            node("n1", RUN, vec![&o]),
            node("n2", RUN, vec![]),
            node("n3", NO, vec![&m]),
            node("n4", NO, vec![]),
        ];
        let s = status(&nodes, "new", 0, Some(4), 0, None, now());
        assert_eq!(
            (
                s.desired_number_scheduled,
                s.current_number_scheduled,
                s.number_misscheduled,
                s.number_ready
            ),
            (3, 2, 1, 1)
        );
        assert_eq!(
            (
                s.number_available,
                s.number_unavailable,
                s.updated_number_scheduled,
                s.observed_generation
            ),
            (Some(1), Some(2), Some(1), Some(4))
        );
        // minReadySeconds: ready but not yet available.
        let s = status(&nodes, "new", 1_000_000, Some(4), 0, None, now());
        assert_eq!((s.number_ready, s.number_available), (1, Some(0)));
    }
}
