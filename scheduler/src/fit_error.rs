//! The "no node fits" diagnosis and its message in upstream's exact format:
//!
//! `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated
//! taint {k: v}. no new claims to deallocate, preemption: 0/3 nodes are
//! available: 1 No preemption victims found for incoming pod, 2 Preemption is
//! not helpful for scheduling.`
//!
//! Each node's reasons are counted, rendered as "<count> <reason>" and sorted
//! as strings; the PostFilter plugins' messages (DynamicResources, then
//! DefaultPreemption, as in upstream's default profile) follow, joined by
//! ", ".

use std::collections::HashMap;

use crate::framework::Status;

/// Message of the DynamicResources PostFilter for a pod without resource
/// claims (upstream's fast path, enabled by default since DRA is GA in 1.34).
pub const DRA_NO_CLAIMS: &str = "no new claims to deallocate";

/// Every node rejected the pod.
#[derive(Debug, Clone)]
pub struct FitError {
    pub num_all_nodes: usize,
    /// The rejecting status per node.
    pub statuses: Vec<(String, Status)>,
}

/// "0/N nodes are available: <histogram>." for the given per-node reasons;
/// nodes without a status count under `absent_reason`.
pub fn nodes_available_message(
    num_all_nodes: usize,
    statuses: &[(String, Status)],
    absent_reason: Option<&str>,
) -> String {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (_, s) in statuses {
        for r in &s.reasons {
            *counts.entry(r.as_str()).or_default() += 1;
        }
    }
    if let Some(absent) = absent_reason
        && statuses.len() < num_all_nodes
    {
        *counts.entry(absent).or_default() += num_all_nodes - statuses.len();
    }
    let mut parts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    let mut msg = format!("0/{num_all_nodes} nodes are available:");
    if !parts.is_empty() {
        msg.push_str(&format!(" {}.", parts.join(", ")));
    }
    msg
}

impl FitError {
    /// The full message, given the PostFilter plugins' messages in order.
    pub fn message(&self, post_filter: &[String]) -> String {
        let mut msg = nodes_available_message(self.num_all_nodes, &self.statuses, None);
        let post: Vec<&str> = post_filter
            .iter()
            .map(String::as_str)
            .filter(|m| !m.is_empty())
            .collect();
        if !post.is_empty() {
            msg.push(' ');
            msg.push_str(&post.join(", "));
        }
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;

    fn st(code: Code, reasons: &[&str]) -> Status {
        Status {
            code,
            reasons: reasons.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn histogram_is_counted_and_sorted() {
        let taint = "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }";
        let fe = FitError {
            num_all_nodes: 3,
            statuses: vec![
                ("a".into(), st(Code::Unschedulable, &["Insufficient cpu"])),
                ("b".into(), st(Code::UnschedulableAndUnresolvable, &[taint])),
                ("c".into(), st(Code::UnschedulableAndUnresolvable, &[taint])),
            ],
        };
        assert_eq!(
            fe.message(&[]),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint \
             {node-role.kubernetes.io/control-plane: }."
        );
        let pre = format!(
            "preemption: {}",
            nodes_available_message(
                3,
                &[(
                    "a".into(),
                    st(
                        Code::UnschedulableAndUnresolvable,
                        &["No preemption victims found for incoming pod"]
                    )
                )],
                Some("Preemption is not helpful for scheduling"),
            )
        );
        assert_eq!(
            fe.message(&[DRA_NO_CLAIMS.to_string(), pre]),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint \
             {node-role.kubernetes.io/control-plane: }. no new claims to deallocate, preemption: \
             0/3 nodes are available: 1 No preemption victims found for incoming pod, \
             2 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn multiple_reasons_per_node_count_separately() {
        let fe = FitError {
            num_all_nodes: 2,
            statuses: vec![
                (
                    "a".into(),
                    st(
                        Code::Unschedulable,
                        &["Insufficient cpu", "Insufficient memory"],
                    ),
                ),
                (
                    "b".into(),
                    st(Code::Unschedulable, &["Insufficient memory"]),
                ),
            ],
        };
        assert_eq!(
            fe.message(&[]),
            "0/2 nodes are available: 1 Insufficient cpu, 2 Insufficient memory."
        );
    }

    #[test]
    fn sorting_is_by_string_like_upstream() {
        // "10 ..." sorts before "2 ..." as strings.
        let mut statuses = Vec::new();
        for i in 0..10 {
            statuses.push((format!("t{i}"), st(Code::Unschedulable, &["Too many pods"])));
        }
        for i in 0..2 {
            statuses.push((
                format!("c{i}"),
                st(Code::Unschedulable, &["Insufficient cpu"]),
            ));
        }
        assert_eq!(
            nodes_available_message(12, &statuses, None),
            "0/12 nodes are available: 10 Too many pods, 2 Insufficient cpu."
        );
    }
}
