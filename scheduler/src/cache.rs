//! The scheduler cache: every node with the pods assigned to it, fed by the
//! informers, plus pods the scheduler has *assumed* onto a node before the
//! API server confirmed the binding (so the next pod already sees the usage).
//! An assumed pod becomes confirmed when the watch shows it bound, and is
//! forgotten if binding fails.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::node_info::{NodeInfo, PodUsage};

/// `namespace/name`, the key used for pods everywhere in the scheduler.
pub fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Succeeded and Failed pods no longer hold node resources.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

#[derive(Debug, Clone)]
struct PodPlacement {
    node: String,
    assumed: bool,
    has_anti_affinity: bool,
}

/// Nodes and pod placements.
#[derive(Debug, Default)]
pub struct Cache {
    nodes: HashMap<String, NodeInfo>,
    /// Node names in the order filters visit them (insertion order).
    order: Vec<String>,
    placements: HashMap<String, PodPlacement>,
    /// Pods bound to nodes the cache has not seen (yet).
    orphans: HashMap<String, HashMap<String, PodUsage>>,
    /// Pending pods nominated to a node by preemption, per node: the room
    /// their victims free is reserved for them.
    nominated: HashMap<String, HashMap<String, PodUsage>>,
    nominated_node_of: HashMap<String, String>,
    /// Placed pods with required anti-affinity (0 lets PreFilter skip work).
    anti_affinity_pods: usize,
}

/// Whether a node update can change scheduling decisions.
fn scheduling_relevant(old: &Node, new: &Node) -> bool {
    old.metadata.labels != new.metadata.labels
        || old.spec != new.spec
        || old.status.as_ref().map(|s| &s.allocatable)
            != new.status.as_ref().map(|s| &s.allocatable)
}

impl Cache {
    /// Adds or replaces a node; true if schedulability may have changed
    /// (new node, or labels/taints/cordon/allocatable changed).
    pub fn upsert_node(&mut self, node: Node) -> bool {
        let Some(name) = node.metadata.name.clone() else {
            return false;
        };
        let node = Arc::new(node);
        match self.nodes.get_mut(&name) {
            Some(info) => {
                let relevant = scheduling_relevant(&info.node, &node);
                info.set_node(node);
                relevant
            }
            None => {
                let mut info = NodeInfo::new(node);
                for (key, usage) in self.orphans.remove(&name).unwrap_or_default() {
                    info.add_pod(key, usage);
                }
                self.nodes.insert(name.clone(), info);
                self.order.push(name);
                true
            }
        }
    }

    pub fn remove_node(&mut self, name: &str) {
        if let Some(info) = self.nodes.remove(name) {
            self.order.retain(|n| n != name);
            // Its pods stay accounted in case the node comes back.
            if !info.pods.is_empty() {
                self.orphans.insert(name.to_string(), info.pods);
            }
        }
    }

    fn insert_placement(&mut self, key: &str, p: PodPlacement) {
        if p.has_anti_affinity {
            self.anti_affinity_pods += 1;
        }
        if let Some(old) = self.placements.insert(key.to_string(), p)
            && old.has_anti_affinity
        {
            self.anti_affinity_pods -= 1;
        }
    }

    fn take_placement(&mut self, key: &str) -> Option<PodPlacement> {
        let p = self.placements.remove(key)?;
        if p.has_anti_affinity {
            self.anti_affinity_pods -= 1;
        }
        Some(p)
    }

    /// How many placed pods carry required pod anti-affinity.
    pub fn anti_affinity_pods(&self) -> usize {
        self.anti_affinity_pods
    }

    fn place(&mut self, key: &str, node: &str, usage: PodUsage) {
        match self.nodes.get_mut(node) {
            Some(info) => info.add_pod(key.to_string(), usage),
            None => {
                self.orphans
                    .entry(node.to_string())
                    .or_default()
                    .insert(key.to_string(), usage);
            }
        }
    }

    fn unplace(&mut self, key: &str, node: &str) {
        if let Some(info) = self.nodes.get_mut(node) {
            info.remove_pod(key);
        } else if let Some(pods) = self.orphans.get_mut(node) {
            pods.remove(key);
            if pods.is_empty() {
                self.orphans.remove(node);
            }
        }
    }

    /// An assigned pod seen by the informer (added, updated, or confirming
    /// an assumed pod). Terminal pods are removed.
    pub fn upsert_assigned_pod(&mut self, pod: &Pod) {
        let key = pod_key(pod);
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
            return;
        };
        if is_terminal(pod) {
            self.remove_pod(&key);
            return;
        }
        self.set_nomination(&key, None);
        if let Some(old) = self.take_placement(&key) {
            self.unplace(&key, &old.node);
        }
        let usage = PodUsage::of(pod);
        let has_anti_affinity = !usage.required_anti_affinity.is_empty();
        self.place(&key, &node, usage);
        self.insert_placement(
            &key,
            PodPlacement {
                node,
                assumed: false,
                has_anti_affinity,
            },
        );
    }

    /// Records (or with `None`, clears) the node a pending pod is
    /// nominated to.
    pub fn set_nomination(&mut self, key: &str, nomination: Option<(&str, PodUsage)>) {
        if let Some(old) = self.nominated_node_of.remove(key)
            && let Some(pods) = self.nominated.get_mut(&old)
        {
            pods.remove(key);
            if pods.is_empty() {
                self.nominated.remove(&old);
            }
        }
        if let Some((node, usage)) = nomination {
            self.nominated
                .entry(node.to_string())
                .or_default()
                .insert(key.to_string(), usage);
            self.nominated_node_of
                .insert(key.to_string(), node.to_string());
        }
    }

    /// The node a pending pod is nominated to.
    pub fn nominated_node(&self, key: &str) -> Option<&str> {
        self.nominated_node_of.get(key).map(String::as_str)
    }

    /// Pods nominated to `node`.
    pub fn nominated_on(&self, node: &str) -> Option<&HashMap<String, PodUsage>> {
        self.nominated.get(node)
    }

    /// Removes a pod; true if it held resources on a node.
    pub fn remove_pod(&mut self, key: &str) -> bool {
        self.set_nomination(key, None);
        match self.take_placement(key) {
            Some(p) => {
                self.unplace(key, &p.node);
                true
            }
            None => false,
        }
    }

    /// Accounts a pod on `node` before its binding is confirmed.
    pub fn assume(&mut self, key: &str, node: &str, usage: PodUsage) {
        self.set_nomination(key, None);
        if let Some(old) = self.take_placement(key) {
            self.unplace(key, &old.node);
        }
        let has_anti_affinity = !usage.required_anti_affinity.is_empty();
        self.place(key, node, usage);
        self.insert_placement(
            key,
            PodPlacement {
                node: node.to_string(),
                assumed: true,
                has_anti_affinity,
            },
        );
    }

    /// Undoes `assume` after a failed binding (no-op once confirmed).
    pub fn forget(&mut self, key: &str) {
        if self.placements.get(key).is_some_and(|p| p.assumed) {
            self.remove_pod(key);
        }
    }

    /// Whether the pod is placed on a node (assumed or confirmed).
    pub fn is_placed(&self, key: &str) -> bool {
        self.placements.contains_key(key)
    }

    /// Keys of all pods the cache knows: placed or nominated (for
    /// informer resyncs).
    pub fn pod_keys(&self) -> Vec<String> {
        self.placements
            .keys()
            .chain(self.nominated_node_of.keys())
            .cloned()
            .collect()
    }

    pub fn node_names(&self) -> &[String] {
        &self.order
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.get(name)
    }

    pub fn node_count(&self) -> usize {
        self.order.len()
    }

    /// Nodes in filter order.
    pub fn nodes_in_order(&self) -> impl Iterator<Item = &NodeInfo> {
        self.order.iter().filter_map(|n| self.nodes.get(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, labels: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}
        }))
        .expect("node")
    }

    fn pod(name: &str, node: Option<&str>, phase: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "d"},
            "spec": {"nodeName": node, "containers": [{"name": "c",
                "resources": {"requests": {"cpu": "1"}}}]},
            "status": {"phase": phase}
        }))
        .expect("pod")
    }

    fn cpu(c: &Cache, n: &str) -> i64 {
        c.node(n).map(|i| i.requested.milli_cpu).unwrap_or(-1)
    }

    #[test]
    fn assume_confirm_forget() {
        let mut c = Cache::default();
        assert!(c.upsert_node(node("n1", json!({}))));
        assert!(!c.upsert_node(node("n1", json!({}))), "unchanged node");
        assert!(c.upsert_node(node("n1", json!({"a": "b"}))), "label change");

        let p = pod("p", None, "Pending");
        c.assume("d/p", "n1", PodUsage::of(&p));
        assert_eq!(cpu(&c, "n1"), 1000);
        c.forget("d/p");
        assert_eq!(cpu(&c, "n1"), 0);

        c.assume("d/p", "n1", PodUsage::of(&p));
        c.upsert_assigned_pod(&pod("p", Some("n1"), "Pending"));
        c.forget("d/p");
        assert_eq!(cpu(&c, "n1"), 1000, "confirmed pods are not forgotten");

        c.upsert_assigned_pod(&pod("p", Some("n1"), "Succeeded"));
        assert_eq!(cpu(&c, "n1"), 0, "terminal pods free their node");
        assert!(!c.is_placed("d/p"));
    }

    #[test]
    fn nominations_follow_the_pod() {
        let mut c = Cache::default();
        c.upsert_node(node("n1", json!({})));
        let p = pod("p", None, "Pending");
        c.set_nomination("d/p", Some(("n1", PodUsage::of(&p))));
        assert_eq!(c.nominated_on("n1").map(|m| m.len()), Some(1));
        c.set_nomination("d/p", Some(("n2", PodUsage::of(&p))));
        assert!(c.nominated_on("n1").is_none());
        c.upsert_assigned_pod(&pod("p", Some("n1"), "Running"));
        assert!(
            c.nominated_on("n2").is_none(),
            "binding clears the nomination"
        );
    }

    #[test]
    fn counts_pods_with_anti_affinity() {
        let mut c = Cache::default();
        c.upsert_node(node("n1", json!({})));
        let mut p = pod("p", Some("n1"), "Running");
        p.spec.as_mut().expect("spec").affinity = Some(
            serde_json::from_value(json!({"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "kubernetes.io/hostname", "labelSelector": {}}]}}))
            .expect("affinity"),
        );
        c.assume("d/p", "n1", PodUsage::of(&p));
        assert_eq!(c.anti_affinity_pods(), 1);
        c.upsert_assigned_pod(&p);
        assert_eq!(
            c.anti_affinity_pods(),
            1,
            "confirming does not double count"
        );
        assert_eq!(
            c.node("n1").map(|n| n.pods_with_required_anti_affinity),
            Some(1)
        );
        c.remove_pod("d/p");
        assert_eq!(c.anti_affinity_pods(), 0);
        assert_eq!(
            c.node("n1").map(|n| n.pods_with_required_anti_affinity),
            Some(0)
        );
    }

    #[test]
    fn pods_on_unknown_nodes_wait_for_them() {
        let mut c = Cache::default();
        c.upsert_assigned_pod(&pod("p", Some("late"), "Running"));
        c.upsert_node(node("late", json!({})));
        assert_eq!(cpu(&c, "late"), 1000);
        c.remove_node("late");
        assert_eq!(c.node_count(), 0);
        c.upsert_node(node("late", json!({})));
        assert_eq!(cpu(&c, "late"), 1000);
        assert!(c.remove_pod("d/p"));
        assert_eq!(cpu(&c, "late"), 0);
    }
}
