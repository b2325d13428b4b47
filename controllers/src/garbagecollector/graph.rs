//! The dependency graph between objects: nodes keyed by uid, edges from each
//! dependent to the owners its `ownerReferences` name. An owner that has not
//! been observed (yet) is a *virtual* node, to be verified against the API.
//!
//! The graph is pure data: applying an observed change returns the work the
//! change calls for, so its decisions are tested without a server.

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// Finalizer that holds an owner until its blocking dependents are gone.
pub(crate) const FOREGROUND: &str = "foregroundDeletion";
/// Finalizer that holds an owner until its dependents no longer name it.
pub(crate) const ORPHAN: &str = "orphan";

/// Where an object lives: enough to GET it and to tell it from a namesake.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Identity {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    /// The object's namespace; for a virtual owner, the namespace of the
    /// dependent that named it (used only if the owner's kind is namespaced).
    pub(crate) namespace: Option<String>,
    pub(crate) name: String,
    pub(crate) uid: String,
}

impl Identity {
    /// The owner an owner reference names, seen from a dependent in `namespace`.
    pub(crate) fn of_owner(r: &OwnerReference, namespace: Option<&str>) -> Self {
        Self {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            namespace: namespace.map(str::to_string),
            name: r.name.clone(),
            uid: r.uid.clone(),
        }
    }
}

/// An object as a watch reported it.
#[derive(Clone, Debug)]
pub(crate) struct Observed {
    pub(crate) identity: Identity,
    pub(crate) owners: Vec<OwnerReference>,
    pub(crate) being_deleted: bool,
    pub(crate) finalizers: Vec<String>,
}

/// A change to apply to the graph.
#[derive(Clone, Debug)]
pub(crate) enum Change {
    /// A watch reported the object added or modified.
    Upsert(Observed),
    /// A watch reported the object deleted.
    Deleted(String),
    /// A worker verified by a GET that no object with this uid exists at
    /// these coordinates (upstream's "virtual delete event").
    Absent(Identity),
}

/// Work the graph asks the workers to do, keyed by uid.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Work {
    /// Decide whether the object must go (its owners are absent or being
    /// deleted in the foreground), or finish its foreground deletion.
    AttemptToDelete(String),
    /// Remove the object's uid from its dependents' owner references, then
    /// its `orphan` finalizer.
    AttemptToOrphan(String),
}

#[derive(Clone, Debug)]
struct Node {
    identity: Identity,
    /// Not observed by a watch: only known as someone's owner.
    virtual_node: bool,
    owners: Vec<OwnerReference>,
    dependents: BTreeSet<String>,
    deleting_dependents: bool,
    orphaning: bool,
}

impl Node {
    fn new(identity: Identity, virtual_node: bool) -> Self {
        Self {
            identity,
            virtual_node,
            owners: Vec::new(),
            dependents: BTreeSet::new(),
            deleting_dependents: false,
            orphaning: false,
        }
    }
}

/// What a worker needs to know about a node, copied out of the graph so no
/// lock is held while it talks to the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct View {
    pub(crate) identity: Identity,
    pub(crate) virtual_node: bool,
    pub(crate) has_dependents: bool,
    pub(crate) dependents: Vec<Identity>,
    /// Dependents whose reference to this node has `blockOwnerDeletion: true`,
    /// with whether each is itself deleting its dependents.
    pub(crate) blocking: Vec<(String, bool)>,
}

#[derive(Default, Debug)]
pub(crate) struct Graph {
    nodes: HashMap<String, Node>,
}

impl Graph {
    pub(crate) fn view(&self, uid: &str) -> Option<View> {
        let node = self.nodes.get(uid)?;
        let mut blocking = Vec::new();
        let mut dependents = Vec::new();
        for dep_uid in &node.dependents {
            let Some(dep) = self.nodes.get(dep_uid) else {
                continue;
            };
            dependents.push(dep.identity.clone());
            let blocks = dep
                .owners
                .iter()
                .any(|r| r.uid == uid && r.block_owner_deletion == Some(true));
            if blocks {
                blocking.push((dep_uid.clone(), dep.deleting_dependents));
            }
        }
        Some(View {
            identity: node.identity.clone(),
            virtual_node: node.virtual_node,
            has_dependents: !node.dependents.is_empty(),
            dependents,
            blocking,
        })
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Applies a change; returns the work it calls for.
    pub(crate) fn apply(&mut self, change: Change) -> Vec<Work> {
        let mut work = Vec::new();
        match change {
            Change::Upsert(observed) => self.upsert(observed, &mut work),
            Change::Deleted(uid) => self.remove(&uid, &mut work),
            Change::Absent(identity) => match self.nodes.get(&identity.uid) {
                Some(node) if node.virtual_node => self.remove(&identity.uid, &mut work),
                // The object exists under other coordinates: its dependents
                // check their own references again.
                Some(node) => {
                    work.extend(node.dependents.iter().cloned().map(Work::AttemptToDelete))
                }
                None => {}
            },
        }
        work
    }

    fn upsert(&mut self, observed: Observed, work: &mut Vec<Work>) {
        let uid = observed.identity.uid.clone();
        let node = self
            .nodes
            .entry(uid.clone())
            .or_insert_with(|| Node::new(observed.identity.clone(), false));
        // A virtual node has no owners of its own: everything is new.
        let old_owners = if node.virtual_node {
            Vec::new()
        } else {
            std::mem::take(&mut node.owners)
        };
        node.virtual_node = false;
        node.identity = observed.identity.clone();
        node.owners = observed.owners.clone();
        let was_deleting_dependents = node.deleting_dependents;
        let was_orphaning = node.orphaning;
        let has = |f: &str| observed.finalizers.iter().any(|x| x == f);
        node.deleting_dependents = observed.being_deleted && has(FOREGROUND);
        node.orphaning = observed.being_deleted && has(ORPHAN);
        let deleting_dependents = node.deleting_dependents;
        let orphaning = node.orphaning;
        let dependents: Vec<String> = node.dependents.iter().cloned().collect();

        let namespace = observed.identity.namespace.as_deref();
        for new in &observed.owners {
            match old_owners.iter().find(|o| o.uid == new.uid) {
                None => self.add_dependent(new, namespace, &uid, work),
                Some(old) => {
                    // An owner waiting on this dependent may proceed once the
                    // reference stops blocking it.
                    let unblocked = old.block_owner_deletion == Some(true)
                        && new.block_owner_deletion != Some(true);
                    if unblocked && self.is_deleting_dependents(&new.uid) {
                        work.push(Work::AttemptToDelete(new.uid.clone()));
                    }
                }
            }
        }
        for old in &old_owners {
            if !observed.owners.iter().any(|n| n.uid == old.uid) {
                self.remove_dependent(&old.uid, &uid, work);
            }
        }

        if orphaning && !was_orphaning {
            work.push(Work::AttemptToOrphan(uid.clone()));
        }
        if deleting_dependents && !was_deleting_dependents {
            work.extend(dependents.into_iter().map(Work::AttemptToDelete));
            work.push(Work::AttemptToDelete(uid));
        }
    }

    fn is_deleting_dependents(&self, uid: &str) -> bool {
        self.nodes.get(uid).is_some_and(|n| n.deleting_dependents)
    }

    fn add_dependent(
        &mut self,
        owner: &OwnerReference,
        namespace: Option<&str>,
        dependent: &str,
        work: &mut Vec<Work>,
    ) {
        match self.nodes.get_mut(&owner.uid) {
            Some(node) => {
                node.dependents.insert(dependent.to_string());
            }
            None => {
                let mut node = Node::new(Identity::of_owner(owner, namespace), true);
                node.dependents.insert(dependent.to_string());
                self.nodes.insert(owner.uid.clone(), node);
                // Verify the owner exists; if not, its dependents are collected.
                work.push(Work::AttemptToDelete(owner.uid.clone()));
            }
        }
    }

    fn remove_dependent(&mut self, owner: &str, dependent: &str, work: &mut Vec<Work>) {
        let Some(node) = self.nodes.get_mut(owner) else {
            return;
        };
        node.dependents.remove(dependent);
        if node.deleting_dependents {
            work.push(Work::AttemptToDelete(owner.to_string()));
        }
        if node.virtual_node && node.dependents.is_empty() {
            self.nodes.remove(owner);
        }
    }

    fn remove(&mut self, uid: &str, work: &mut Vec<Work>) {
        let Some(node) = self.nodes.remove(uid) else {
            return;
        };
        // The dependents re-check their owners: this one is gone.
        work.extend(node.dependents.iter().cloned().map(Work::AttemptToDelete));
        for owner in &node.owners {
            self.remove_dependent(&owner.uid, uid, work);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn owner_ref(uid: &str, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: format!("cm-{uid}"),
            uid: uid.into(),
            block_owner_deletion: block.then_some(true),
            controller: None,
        }
    }

    fn obs(uid: &str, owners: Vec<OwnerReference>, deleting: bool, finalizers: &[&str]) -> Change {
        Change::Upsert(Observed {
            identity: Identity {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: Some("ns".into()),
                name: format!("cm-{uid}"),
                uid: uid.into(),
            },
            owners,
            being_deleted: deleting,
            finalizers: finalizers.iter().map(|s| s.to_string()).collect(),
        })
    }

    fn del(uid: &str) -> Work {
        Work::AttemptToDelete(uid.into())
    }

    #[test]
    fn an_unseen_owner_becomes_a_virtual_node_to_verify() {
        let mut g = Graph::default();
        let work = g.apply(obs("dep", vec![owner_ref("own", false)], false, &[]));
        assert_eq!(work, vec![del("own")]);
        let v = g.view("own").unwrap();
        assert!(v.virtual_node);
        assert_eq!(v.identity.namespace.as_deref(), Some("ns"));
        assert_eq!(v.identity.name, "cm-own");
        assert!(v.has_dependents);
        // Observing the owner makes it real and asks for nothing.
        assert_eq!(g.apply(obs("own", vec![], false, &[])), vec![]);
        assert!(!g.view("own").unwrap().virtual_node);
    }

    #[test]
    fn an_absent_virtual_owner_is_removed_and_its_dependents_checked() {
        let mut g = Graph::default();
        g.apply(obs("dep", vec![owner_ref("own", false)], false, &[]));
        let id = g.view("own").unwrap().identity;
        assert_eq!(g.apply(Change::Absent(id)), vec![del("dep")]);
        assert!(g.view("own").is_none());
    }

    #[test]
    fn an_absent_event_never_removes_an_observed_node() {
        let mut g = Graph::default();
        g.apply(obs("own", vec![], false, &[]));
        g.apply(obs("dep", vec![owner_ref("own", false)], false, &[]));
        let mut id = g.view("own").unwrap().identity;
        id.name = "elsewhere".into();
        assert_eq!(g.apply(Change::Absent(id)), vec![del("dep")]);
        assert!(g.view("own").is_some());
    }

    #[test]
    fn a_deleted_owner_sends_its_dependents_to_be_checked() {
        let mut g = Graph::default();
        g.apply(obs("own", vec![], false, &[]));
        g.apply(obs("a", vec![owner_ref("own", false)], false, &[]));
        g.apply(obs("b", vec![owner_ref("own", false)], false, &[]));
        assert_eq!(
            g.apply(Change::Deleted("own".into())),
            vec![del("a"), del("b")]
        );
    }

    #[test]
    fn foreground_deletion_enqueues_dependents_then_the_owner() {
        let mut g = Graph::default();
        g.apply(obs("own", vec![], false, &[]));
        g.apply(obs("a", vec![owner_ref("own", true)], false, &[]));
        g.apply(obs("b", vec![owner_ref("own", false)], false, &[]));
        let work = g.apply(obs("own", vec![], true, &[FOREGROUND]));
        assert_eq!(work, vec![del("a"), del("b"), del("own")]);
        let v = g.view("own").unwrap();
        assert_eq!(v.blocking, vec![("a".to_string(), false)]);
        // The owner is re-checked when a blocking dependent goes away.
        assert_eq!(g.apply(Change::Deleted("a".into())), vec![del("own")]);
        assert!(g.view("own").unwrap().blocking.is_empty());
    }

    #[test]
    fn unblocking_a_reference_wakes_a_foreground_owner() {
        let mut g = Graph::default();
        g.apply(obs("own", vec![], true, &[FOREGROUND]));
        g.apply(obs("a", vec![owner_ref("own", true)], false, &[]));
        assert_eq!(
            g.apply(obs("a", vec![owner_ref("own", false)], false, &[])),
            vec![del("own")]
        );
        // Dropping the reference altogether wakes it too.
        assert_eq!(g.apply(obs("a", vec![], false, &[])), vec![del("own")]);
    }

    #[test]
    fn the_orphan_finalizer_asks_for_orphaning_once() {
        let mut g = Graph::default();
        g.apply(obs("own", vec![], false, &[]));
        let work = g.apply(obs("own", vec![], true, &[ORPHAN]));
        assert_eq!(work, vec![Work::AttemptToOrphan("own".into())]);
        assert_eq!(g.apply(obs("own", vec![], true, &[ORPHAN])), vec![]);
    }

    #[test]
    fn a_cycle_of_owners_is_represented_both_ways() {
        let mut g = Graph::default();
        g.apply(obs("a", vec![owner_ref("b", true)], false, &[]));
        g.apply(obs("b", vec![owner_ref("a", true)], false, &[]));
        assert_eq!(
            g.view("a").unwrap().blocking,
            vec![("b".to_string(), false)]
        );
        assert_eq!(
            g.view("b").unwrap().blocking,
            vec![("a".to_string(), false)]
        );
        let work = g.apply(obs("a", vec![owner_ref("b", true)], true, &[FOREGROUND]));
        assert_eq!(work, vec![del("b"), del("a")]);
    }

    #[test]
    fn a_virtual_owner_left_without_dependents_is_dropped() {
        let mut g = Graph::default();
        g.apply(obs("dep", vec![owner_ref("ghost", false)], false, &[]));
        assert_eq!(g.len(), 2);
        g.apply(obs("dep", vec![], false, &[]));
        assert_eq!(g.len(), 1);
    }
}
