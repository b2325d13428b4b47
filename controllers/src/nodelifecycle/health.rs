//! The pure rules of node lifecycle: which conditions a silent node gets,
//! which taints a node's conditions and spec call for, and a zone's
//! disruption state. The monitor ([`super::monitor`]) applies them.

use k8s_openapi::api::core::v1::{Node, NodeCondition, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

pub(crate) const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub(crate) const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub(crate) const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

/// Every NoSchedule taint key this controller owns.
const NO_SCHEDULE_KEYS: [&str; 7] = [
    NOT_READY,
    UNREACHABLE,
    UNSCHEDULABLE,
    MEMORY_PRESSURE,
    DISK_PRESSURE,
    PID_PRESSURE,
    NETWORK_UNAVAILABLE,
];

/// The conditions a kubelet maintains, which go Unknown when it goes silent.
/// (NetworkUnavailable belongs to the network plugin and is left alone.)
const KUBELET_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

pub(crate) fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// The node's Ready status: `True`, `False` or `Unknown` (a missing
/// condition counts as Unknown).
pub(crate) fn ready_status(node: &Node) -> &str {
    condition(node, "Ready").map_or("Unknown", |c| c.status.as_str())
}

/// The conditions to write for a node whose kubelet went silent: every
/// kubelet condition not yet Unknown becomes Unknown (`NodeStatusUnknown`),
/// and a missing one is added (`NodeStatusNeverUpdated`). Empty when
/// nothing changes.
pub(crate) fn unknown_conditions(node: &Node, now: Timestamp) -> Vec<NodeCondition> {
    let created = node.metadata.creation_timestamp.clone();
    let mut out = Vec::new();
    for type_ in KUBELET_CONDITIONS {
        match condition(node, type_) {
            Some(c) if c.status == "Unknown" => {}
            Some(c) => out.push(NodeCondition {
                status: "Unknown".into(),
                reason: Some("NodeStatusUnknown".into()),
                message: Some("Kubelet stopped posting node status.".into()),
                last_heartbeat_time: c.last_heartbeat_time.clone(),
                last_transition_time: Some(Time(now)),
                type_: type_.into(),
            }),
            None => out.push(NodeCondition {
                status: "Unknown".into(),
                reason: Some("NodeStatusNeverUpdated".into()),
                message: Some("Kubelet never posted node status.".into()),
                last_heartbeat_time: created.clone(),
                last_transition_time: Some(Time(now)),
                type_: type_.into(),
            }),
        }
    }
    out
}

fn taint(key: &str, effect: &str, added: Option<Timestamp>) -> Taint {
    Taint {
        key: key.into(),
        effect: effect.into(),
        value: None,
        time_added: added.map(Time),
    }
}

/// The NoSchedule taints the node's conditions and `spec.unschedulable`
/// call for (upstream's NoSchedule tainting pass).
pub(crate) fn no_schedule_keys(node: &Node) -> Vec<&'static str> {
    let mut keys = Vec::new();
    match ready_status(node) {
        "False" => keys.push(NOT_READY),
        "True" => {}
        _ => keys.push(UNREACHABLE),
    }
    for (type_, key) in [
        ("MemoryPressure", MEMORY_PRESSURE),
        ("DiskPressure", DISK_PRESSURE),
        ("PIDPressure", PID_PRESSURE),
        ("NetworkUnavailable", NETWORK_UNAVAILABLE),
    ] {
        if condition(node, type_).is_some_and(|c| c.status == "True") {
            keys.push(key);
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        keys.push(UNSCHEDULABLE);
    }
    keys
}

/// The NoExecute taint the Ready condition calls for, if any.
pub(crate) fn no_execute_key(node: &Node) -> Option<&'static str> {
    match ready_status(node) {
        "True" => None,
        "False" => Some(NOT_READY),
        _ => Some(UNREACHABLE),
    }
}

pub(crate) fn taints(node: &Node) -> &[Taint] {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default()
}

fn has(taints: &[Taint], key: &str, effect: &str) -> bool {
    taints.iter().any(|t| t.key == key && t.effect == effect)
}

/// The node's taints with this controller's NoSchedule taints set to
/// `keys`, and its NoExecute taint set to `no_execute` (`Some(None)`: none;
/// `None`: leave it as it is). Taints of others are kept as they are;
/// existing taints keep their `timeAdded`.
pub(crate) fn desired_taints(
    current: &[Taint],
    keys: &[&str],
    no_execute: Option<Option<&str>>,
    now: Timestamp,
) -> Vec<Taint> {
    let ours_ne =
        |t: &Taint| t.effect == "NoExecute" && (t.key == NOT_READY || t.key == UNREACHABLE);
    let ours_ns =
        |t: &Taint| t.effect == "NoSchedule" && NO_SCHEDULE_KEYS.contains(&t.key.as_str());
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|t| !ours_ns(t) || keys.contains(&t.key.as_str()))
        .filter(|t| match no_execute {
            None => true,
            Some(want) => !ours_ne(t) || want == Some(t.key.as_str()),
        })
        .cloned()
        .collect();
    for key in keys {
        if !has(&out, key, "NoSchedule") {
            out.push(taint(key, "NoSchedule", Some(now)));
        }
    }
    if let Some(Some(key)) = no_execute
        && !has(&out, key, "NoExecute")
    {
        out.push(taint(key, "NoExecute", Some(now)));
    }
    out
}

/// The zone a node belongs to: its region and zone labels.
pub(crate) fn zone_of(node: &Node) -> String {
    let labels = node.metadata.labels.as_ref();
    let get = |k: &str| labels.and_then(|l| l.get(k)).cloned().unwrap_or_default();
    let region = get("topology.kubernetes.io/region");
    let zone = get("topology.kubernetes.io/zone");
    if region.is_empty() && zone.is_empty() {
        String::new()
    } else {
        format!("{region}:\x00:{zone}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ZoneState {
    Normal,
    PartialDisruption,
    FullDisruption,
}

/// Upstream's zone state: fully disrupted when no node is ready, partially
/// when more than two and at least `unhealthy_threshold` of them are not.
pub(crate) fn zone_state(ready: usize, not_ready: usize, unhealthy_threshold: f64) -> ZoneState {
    if ready == 0 && not_ready > 0 {
        return ZoneState::FullDisruption;
    }
    #[allow(clippy::cast_precision_loss)] // node counts are small
    let share = not_ready as f64 / (ready + not_ready).max(1) as f64;
    if not_ready > 2 && share >= unhealthy_threshold {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).unwrap()
    }

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn silent_node_conditions_go_unknown() {
        let n = node(json!({
            "metadata": {"name": "n", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"conditions": [
                {"type": "Ready", "status": "True", "lastHeartbeatTime": "2024-01-01T00:01:00Z"},
                {"type": "MemoryPressure", "status": "Unknown"},
                {"type": "DiskPressure", "status": "False"},
            ]}
        }));
        let got = unknown_conditions(&n, ts(1_000));
        let summary: Vec<_> = got
            .iter()
            .map(|c| {
                (
                    c.type_.as_str(),
                    c.status.as_str(),
                    c.reason.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("Ready", "Unknown", "NodeStatusUnknown"),
                ("DiskPressure", "Unknown", "NodeStatusUnknown"),
                ("PIDPressure", "Unknown", "NodeStatusNeverUpdated"),
            ]
        );
        assert_eq!(
            got[0].last_heartbeat_time.as_ref().unwrap().0.to_string(),
            "2024-01-01T00:01:00Z",
            "the heartbeat is the kubelet's last"
        );
        assert_eq!(got[0].last_transition_time, Some(Time(ts(1_000))));
    }

    #[test]
    fn taints_follow_conditions() {
        let cases = [
            (json!("True"), false, vec![], None),
            (json!("False"), false, vec![NOT_READY], Some(NOT_READY)),
            (
                json!("Unknown"),
                false,
                vec![UNREACHABLE],
                Some(UNREACHABLE),
            ),
            (json!("True"), true, vec![UNSCHEDULABLE], None),
        ];
        for (ready, unschedulable, keys, ne) in cases {
            let n = node(json!({
                "spec": {"unschedulable": unschedulable},
                "status": {"conditions": [{"type": "Ready", "status": ready},
                                          {"type": "DiskPressure", "status": "False"}]}
            }));
            assert_eq!(no_schedule_keys(&n), keys, "{ready} {unschedulable}");
            assert_eq!(no_execute_key(&n), ne, "{ready}");
        }
        let pressured = node(json!({"status": {"conditions": [
            {"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "True"}]}}));
        assert_eq!(no_schedule_keys(&pressured), [MEMORY_PRESSURE]);
    }

    #[test]
    fn desired_taints_keep_others_and_swap_ours() {
        let current = vec![
            taint("example.com/mine", "NoSchedule", None),
            taint(NOT_READY, "NoSchedule", Some(ts(1))),
            taint(NOT_READY, "NoExecute", Some(ts(1))),
        ];
        let now = ts(50);
        let t = desired_taints(&current, &[UNREACHABLE], Some(Some(UNREACHABLE)), now);
        let keys: Vec<_> = t
            .iter()
            .map(|t| (t.key.as_str(), t.effect.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("example.com/mine", "NoSchedule"),
                (UNREACHABLE, "NoSchedule"),
                (UNREACHABLE, "NoExecute")
            ]
        );
        assert_eq!(t[2].time_added, Some(Time(now)));
        // NoExecute left alone (rate limited), NoSchedule cleared.
        let t = desired_taints(&current, &[], None, now);
        assert_eq!(t.len(), 2);
        assert!(has(&t, NOT_READY, "NoExecute"));
        // Recovered: everything of ours goes.
        let t = desired_taints(&current, &[], Some(None), now);
        assert_eq!(t, vec![current[0].clone()]);
    }

    #[test]
    fn zone_states() {
        assert_eq!(zone_state(3, 0, 0.55), ZoneState::Normal);
        assert_eq!(zone_state(0, 1, 0.55), ZoneState::FullDisruption);
        assert_eq!(
            zone_state(1, 2, 0.55),
            ZoneState::Normal,
            "two down is normal"
        );
        assert_eq!(zone_state(2, 3, 0.55), ZoneState::PartialDisruption);
        assert_eq!(zone_state(10, 3, 0.55), ZoneState::Normal);
        assert_eq!(zone_of(&node(json!({}))), "");
    }
}
