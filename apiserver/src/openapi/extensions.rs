//! The Kubernetes extensions on fields and definitions: patch strategies and
//! merge keys from the project's own strategic-merge table
//! ([`crate::patch::merge_keys`]), list types derived from them, and the map
//! types of the well-known atomic structs.
//!
//! The merge-key table is a type graph keyed by field path; the generator
//! walks it alongside the schema graph from every kind, so a definition such
//! as `PodSpec` gets the same tags wherever it is reached.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::schemas::{Catalog, ref_name};
use crate::patch::merge_keys::{BuiltinSchema, PatchMeta, PatchStrategy, builtin_schema};

/// Structs upstream marks `+structType=atomic` (`x-kubernetes-map-type: atomic`).
const ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.SecretReference",
    "io.k8s.api.core.v1.TopologySelectorTerm",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
];

/// Associative lists whose identity takes more than the patch merge key
/// (upstream's `+listMapKey` lists), by (definition, field).
const MULTI_KEY_LISTS: &[(&str, &str, &[&str])] = &[
    (
        "io.k8s.api.core.v1.Container",
        "ports",
        &["containerPort", "protocol"],
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        &["containerPort", "protocol"],
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        &["port", "protocol"],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        &["topologyKey", "whenUnsatisfiable"],
    ),
];

/// Patch metadata per (definition, field), gathered from every kind's walk.
type Metas = BTreeMap<(String, String), PatchMeta>;

/// The definition a property's value (or its elements) is.
fn target(prop: &Value) -> Option<&str> {
    ref_name(prop)
        .or_else(|| prop.get("items").and_then(ref_name))
        .or_else(|| prop.get("additionalProperties").and_then(ref_name))
}

fn walk(
    defs: &BTreeMap<String, Value>,
    def: &str,
    schema: BuiltinSchema,
    seen: &mut Vec<(String, BuiltinSchema)>,
    metas: &mut Metas,
) {
    if seen.iter().any(|(d, s)| d == def && *s == schema) {
        return;
    }
    seen.push((def.to_string(), schema));
    let Some(Value::Object(props)) = defs.get(def).and_then(|d| d.get("properties")) else {
        return;
    };
    for (field, prop) in props {
        let (meta, child) = schema.field(field);
        if meta != PatchMeta::default() || meta.retain_keys {
            metas.insert((def.to_string(), field.clone()), meta);
        }
        if let (Some(child), Some(next)) = (child, target(prop)) {
            walk(defs, next, child, seen, metas);
        }
    }
}

fn gather(catalog: &Catalog) -> Metas {
    let mut metas = Metas::new();
    let mut seen = Vec::new();
    for ((group, _, kind), def) in &catalog.kinds {
        if let Some(schema) = builtin_schema(group, kind) {
            walk(&catalog.definitions, def, schema, &mut seen, &mut metas);
        }
    }
    metas
}

fn strategy_tag(meta: &PatchMeta) -> Option<String> {
    let base = match meta.strategy {
        PatchStrategy::Merge => Some("merge"),
        PatchStrategy::Replace => Some("replace"),
        PatchStrategy::None => None,
    };
    match (base, meta.retain_keys) {
        (Some(b), true) => Some(format!("{b},retainKeys")),
        (None, true) => Some("retainKeys".into()),
        (Some(b), false) => Some(b.to_string()),
        (None, false) => None,
    }
}

/// Adds the extensions to every definition of the catalog.
pub(super) fn annotate(catalog: &mut Catalog) {
    let metas = gather(catalog);
    for (name, def) in catalog.definitions.iter_mut() {
        let Value::Object(def) = def else { continue };
        if ATOMIC_STRUCTS.contains(&name.as_str()) {
            def.insert("x-kubernetes-map-type".into(), json!("atomic"));
        }
        let Some(Value::Object(props)) = def.get_mut("properties") else {
            continue;
        };
        for (field, prop) in props.iter_mut() {
            let Value::Object(prop) = prop else { continue };
            let meta = metas
                .get(&(name.clone(), field.clone()))
                .cloned()
                .unwrap_or_default();
            if let Some(tag) = strategy_tag(&meta) {
                prop.insert("x-kubernetes-patch-strategy".into(), json!(tag));
            }
            if !meta.merge_key.is_empty() {
                prop.insert("x-kubernetes-patch-merge-key".into(), json!(meta.merge_key));
            }
            if prop.get("type").and_then(Value::as_str) != Some("array") {
                continue;
            }
            let list_type = match (meta.strategy, meta.merge_key.is_empty()) {
                (PatchStrategy::Merge, false) => {
                    let keys = MULTI_KEY_LISTS
                        .iter()
                        .find(|(d, f, _)| d == name && f == field)
                        .map_or_else(
                            || vec![meta.merge_key.to_string()],
                            |(_, _, keys)| keys.iter().map(|k| k.to_string()).collect(),
                        );
                    prop.insert("x-kubernetes-list-map-keys".into(), json!(keys));
                    "map"
                }
                (PatchStrategy::Merge, true) => "set",
                _ => "atomic",
            };
            prop.insert("x-kubernetes-list-type".into(), json!(list_type));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openapi::schemas::catalog;
    use crate::resources::ResourceTable;

    fn prop<'a>(c: &'a Catalog, def: &str, field: &str) -> &'a Value {
        c.definitions
            .get(def)
            .and_then(|d| d.pointer(&format!("/properties/{field}")))
            .unwrap_or(&Value::Null)
    }

    #[test]
    fn merge_keys_become_extensions() {
        let mut c = catalog(&ResourceTable::with_builtins());
        annotate(&mut c);
        let containers = prop(&c, "io.k8s.api.core.v1.PodSpec", "containers");
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        let volumes = prop(&c, "io.k8s.api.core.v1.PodSpec", "volumes");
        assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
        let ports = prop(&c, "io.k8s.api.core.v1.Container", "ports");
        assert_eq!(ports["x-kubernetes-patch-merge-key"], "containerPort");
        assert_eq!(
            ports["x-kubernetes-list-map-keys"],
            json!(["containerPort", "protocol"])
        );
        let finalizers = prop(
            &c,
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "finalizers",
        );
        assert_eq!(finalizers["x-kubernetes-list-type"], "set");
        let tolerations = prop(&c, "io.k8s.api.core.v1.PodSpec", "tolerations");
        assert_eq!(tolerations["x-kubernetes-list-type"], "atomic");
        assert!(tolerations.get("x-kubernetes-patch-strategy").is_none());
        let strategy = prop(&c, "io.k8s.api.apps.v1.DeploymentSpec", "strategy");
        assert_eq!(strategy["x-kubernetes-patch-strategy"], "retainKeys");
        let conditions = prop(&c, "io.k8s.api.apps.v1.DeploymentStatus", "conditions");
        assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
        let pdb = prop(
            &c,
            "io.k8s.api.policy.v1.PodDisruptionBudgetSpec",
            "selector",
        );
        assert_eq!(pdb["x-kubernetes-patch-strategy"], "replace");
        assert_eq!(
            c.definitions["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"]["x-kubernetes-map-type"],
            "atomic"
        );
    }
}
