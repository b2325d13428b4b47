//! The resource table: every fact about a served resource (group, version, kind,
//! plural, short names, categories, scope, verbs, subresources, storage prefix,
//! strategy) in one place. Handlers, discovery and OpenAPI read it; nothing else
//! matches on resource names. It is copy-on-write so resources can be added at
//! runtime (CustomResourceDefinitions, aggregated APIs) while requests run.

mod builtin;
pub mod conversions;

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::registry::strategy::Strategy;

pub use builtin::builtin_resources;

/// Verbs of an ordinary stored resource.
pub const STANDARD_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// How a resource's objects are decoded and normalised.
#[derive(Clone, Copy)]
pub struct TypedCodec {
    /// Decodes into the built-in type and encodes back, dropping unknown fields.
    pub round_trip: fn(serde_json::Value) -> Result<serde_json::Value, serde_json::Error>,
    /// Registers the type's OpenAPI schema (and those it refers to) with the
    /// generator and returns a `$ref` to it; for the OpenAPI generator.
    pub schema: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
}

impl std::fmt::Debug for TypedCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TypedCodec")
    }
}

/// How a resource served in one version is stored in another version of the
/// same resource (one key space, one object, several versions on the wire;
/// e.g. `autoscaling/v1` HorizontalPodAutoscalers stored as `autoscaling/v2`).
#[derive(Clone, Copy)]
pub struct Conversion {
    pub to_storage: fn(serde_json::Value) -> serde_json::Value,
    pub from_storage: fn(serde_json::Value) -> serde_json::Value,
}

impl std::fmt::Debug for Conversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Conversion")
    }
}

/// A subresource such as `status` or `scale`.
#[derive(Clone, Debug)]
pub struct Subresource {
    pub name: &'static str,
    /// The kind the subresource speaks (e.g. `Scale` for `scale`).
    pub kind: String,
    pub group: String,
    pub version: String,
    pub verbs: Vec<&'static str>,
    /// Set for subresources the API server forwards instead of answering.
    pub connect: Option<Connect>,
}

/// Where a connect subresource (upstream's `rest.Connecter`) sends the
/// request: the API server proxies it, it stores nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connect {
    /// `pods/log`: the container's log, from the kubelet of the pod's node.
    PodLog,
    /// `pods/exec`: a command's streams, through the kubelet.
    PodExec,
    /// `pods/attach`: the running container's streams, through the kubelet.
    PodAttach,
    /// `pods/portforward`: streams to the pod's ports, through the kubelet.
    PodPortForward,
    /// `pods/proxy`: HTTP to the pod's IP.
    PodProxy,
    /// `nodes/proxy`: HTTP to the node's kubelet (or another port on it).
    NodeProxy,
    /// `services/proxy`: HTTP to one of the service's endpoints.
    ServiceProxy,
}

/// What a POST to the resource's collection does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CreateAction {
    /// Stores the object (every ordinary resource).
    #[default]
    Store,
    /// Answers the request object and stores nothing (access and token reviews).
    Review,
    /// Binds the named pod to a node (the legacy `bindings` resource, the
    /// collection form of `pods/binding`).
    BindPod,
}

/// Everything the server knows about one resource in one group-version.
#[derive(Clone)]
pub struct ResourceInfo {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    pub verbs: Vec<&'static str>,
    pub subresources: Vec<Subresource>,
    /// What a create (POST to the collection) does.
    pub create: CreateAction,
    /// The status a new object starts from: the fields upstream's Go types
    /// always write (no `omitempty`), at their zero values, under whatever
    /// status the strategy set.
    pub initial_status: Option<serde_json::Value>,
    /// Storage key prefix without the trailing slash, e.g. `/registry/pods`.
    pub storage_prefix: String,
    pub codec: Option<TypedCodec>,
    /// `Some` when objects are stored in another version of this resource.
    pub conversion: Option<Conversion>,
    pub strategy: Arc<dyn Strategy>,
}

impl std::fmt::Debug for ResourceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceInfo")
            .field("group", &self.group)
            .field("version", &self.version)
            .field("plural", &self.plural)
            .finish_non_exhaustive()
    }
}

impl ResourceInfo {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The group-qualified resource name used in messages, e.g. `deployments.apps`.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    pub fn subresource(&self, name: &str) -> Option<&Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// The object as stored (the storage version), from this version's form.
    pub fn to_storage(&self, obj: serde_json::Value) -> serde_json::Value {
        match self.conversion {
            Some(c) => (c.to_storage)(obj),
            None => self.strategy.write_stored(obj),
        }
    }

    /// This version's form of a stored object.
    pub fn from_storage(&self, obj: serde_json::Value) -> serde_json::Value {
        match self.conversion {
            Some(c) => (c.from_storage)(obj),
            None => self.strategy.read_stored(obj),
        }
    }

    /// The storage key of one object (namespace ignored for cluster-scoped resources).
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("{}/{}/{}", self.storage_prefix, ns, name),
            None => format!("{}/{}", self.storage_prefix, name),
        }
    }

    /// The prefix that lists objects in one namespace, or all of them.
    pub fn list_prefix(&self, namespace: Option<&str>) -> String {
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("{}/{}/", self.storage_prefix, ns),
            None => format!("{}/", self.storage_prefix),
        }
    }
}

/// A group-version with its resources, in discovery order.
#[derive(Clone, Debug)]
pub struct GroupVersion {
    pub version: String,
    pub resources: Vec<Arc<ResourceInfo>>,
}

/// A group with its versions, preferred first.
#[derive(Clone, Debug)]
pub struct Group {
    pub name: String,
    pub versions: Vec<GroupVersion>,
}

#[derive(Default)]
struct Tables {
    /// Groups in discovery order (core "" first).
    groups: Vec<Group>,
    by_path: BTreeMap<(String, String, String), Arc<ResourceInfo>>,
}

/// The shared, runtime-extensible table.
#[derive(Clone, Default)]
pub struct ResourceTable {
    inner: Arc<RwLock<Arc<Tables>>>,
}

impl ResourceTable {
    pub fn with_builtins() -> ResourceTable {
        let table = ResourceTable::default();
        for info in builtin_resources() {
            table.add(info);
        }
        table
    }

    /// Adds (or replaces) a resource. New groups go last; new versions of a group
    /// are ordered by Kubernetes version priority (v2 > v1 > v1beta1 > v1alpha1).
    pub fn add(&self, info: ResourceInfo) {
        let info = Arc::new(info);
        let mut guard = self.inner.write();
        let mut tables = (**guard).clone_tables();
        tables.by_path.insert(
            (
                info.group.clone(),
                info.version.clone(),
                info.plural.clone(),
            ),
            info.clone(),
        );
        let group = match tables.groups.iter_mut().position(|g| g.name == info.group) {
            Some(i) => &mut tables.groups[i],
            None => {
                tables.groups.push(Group {
                    name: info.group.clone(),
                    versions: Vec::new(),
                });
                let last = tables.groups.len() - 1;
                &mut tables.groups[last]
            }
        };
        match group
            .versions
            .iter_mut()
            .find(|v| v.version == info.version)
        {
            Some(gv) => match gv.resources.iter_mut().find(|r| r.plural == info.plural) {
                Some(existing) => *existing = info,
                None => gv.resources.push(info),
            },
            None => {
                group.versions.push(GroupVersion {
                    version: info.version.clone(),
                    resources: vec![info],
                });
                group.versions.sort_by(|a, b| {
                    version_priority(&b.version).cmp(&version_priority(&a.version))
                });
            }
        }
        *guard = Arc::new(tables);
    }

    /// Removes a resource (e.g. a deleted CRD version).
    pub fn remove(&self, group: &str, version: &str, plural: &str) {
        let mut guard = self.inner.write();
        let mut tables = (**guard).clone_tables();
        tables
            .by_path
            .remove(&(group.to_string(), version.to_string(), plural.to_string()));
        for g in &mut tables.groups {
            if g.name == group {
                for gv in &mut g.versions {
                    if gv.version == version {
                        gv.resources.retain(|r| r.plural != plural);
                    }
                }
                g.versions.retain(|gv| !gv.resources.is_empty());
            }
        }
        tables.groups.retain(|g| !g.versions.is_empty());
        *guard = Arc::new(tables);
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        let tables = self.inner.read().clone();
        tables
            .by_path
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// Every group in discovery order.
    /// The storage prefix of every resource served now.
    pub fn storage_prefixes(&self) -> Vec<String> {
        self.groups()
            .iter()
            .flat_map(|g| g.versions.iter())
            .flat_map(|v| v.resources.iter())
            .map(|r| r.storage_prefix.clone())
            .collect()
    }

    pub fn groups(&self) -> Vec<Group> {
        self.inner.read().groups.clone()
    }

    pub fn group(&self, name: &str) -> Option<Group> {
        self.inner
            .read()
            .groups
            .iter()
            .find(|g| g.name == name)
            .cloned()
    }

    pub fn group_version(&self, group: &str, version: &str) -> Option<GroupVersion> {
        self.group(group)?
            .versions
            .into_iter()
            .find(|v| v.version == version)
    }

    /// Finds a resource by kind in a group-version (for bodies whose kind must match).
    pub fn by_kind(&self, group: &str, version: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        self.group_version(group, version)?
            .resources
            .into_iter()
            .find(|r| r.kind == kind)
    }
}

impl Tables {
    fn clone_tables(&self) -> Tables {
        Tables {
            groups: self.groups.clone(),
            by_path: self.by_path.clone(),
        }
    }
}

/// Kubernetes version ordering: GA > beta > alpha, then by numbers.
pub fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let Ok(major) = digits.parse::<u32>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    let (stage, n) = if let Some(n) = tail.strip_prefix("beta") {
        (2, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n)
    } else {
        return (0, 0, 0);
    };
    match n.parse::<u32>() {
        Ok(minor) => (stage, major, minor),
        Err(_) => (0, 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_priority_orders_like_kubernetes() {
        let mut v = vec!["v1alpha1", "v1", "v2beta1", "v1beta2", "v2", "foo"];
        v.sort_by_key(|b| std::cmp::Reverse(version_priority(b)));
        assert_eq!(v, ["v2", "v1", "v2beta1", "v1beta2", "v1alpha1", "foo"]);
    }

    #[test]
    fn builtins_have_the_usual_facts() {
        let t = ResourceTable::with_builtins();
        let pods = t.get("", "v1", "pods").expect("pods");
        assert!(pods.namespaced);
        assert_eq!(pods.short_names, ["po"]);
        assert!(pods.subresource("status").is_some());
        let deploy = t.get("apps", "v1", "deployments").expect("deployments");
        assert_eq!(
            deploy.subresource("scale").map(|s| s.kind.as_str()),
            Some("Scale")
        );
        assert_eq!(deploy.categories, ["all"]);
        assert!(!t.get("", "v1", "namespaces").expect("ns").namespaced);
        assert_eq!(t.groups()[0].name, "");
        assert_eq!(t.groups()[1].name, "apiregistration.k8s.io");
        assert_eq!(
            t.get("", "v1", "bindings").expect("bindings").verbs,
            ["create"]
        );
    }
}
