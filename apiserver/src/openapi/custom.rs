//! OpenAPI of custom resources, as upstream's CRD OpenAPI builder publishes
//! it: each served CRD version contributes a kind definition and a list
//! definition, named after the reversed group (`com.example.v1.Widget`,
//! `com.example.v1.WidgetList`), and the paths of its operations.
//!
//! [`CustomSchemas::build`] runs once when the CRD version enters the
//! resource table (its strategy keeps the result). The documents are then
//! assembled from the table:
//! - OpenAPI v3 ([`v3_document`]): one document per group-version with the
//!   published schemas (`metadata` a reference to `ObjectMeta`, `apiVersion`
//!   and `kind` added, the group-version-kind extension) and the standard
//!   definitions they and the operations refer to (taken from the vendored
//!   built-in documents);
//! - Swagger 2.0 ([`v2_additions`]): the paths and definitions merged into
//!   the vendored document, with the schema reduced to what v2 clients cope
//!   with (no `anyOf`/`allOf`/`oneOf`/`not`, no `nullable`, nothing under
//!   `x-kubernetes-preserve-unknown-fields`, no defaults).

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use super::params::Params;
use super::paths::{self, Origin};
use super::render;
use super::schemas::{
    Catalog, Flavor, LIST_META, STATUS, V2_PREFIX, V3_PREFIX, closure, refs_in, sort_keys,
};
use super::vendored;
use crate::resources::GroupVersion;

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";

/// What one CRD version publishes.
pub struct CustomInput<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub list_kind: &'a str,
    pub plural: &'a str,
    pub namespaced: bool,
    /// `schema.openAPIV3Schema`, when the version has one.
    pub schema: Option<&'a Value>,
    /// `selectableFields` paths, without the leading dot.
    pub selectable_fields: &'a [String],
    /// Subresources the version serves (`status`, `scale`).
    pub subresources: &'a [&'a str],
}

/// The definitions of one served CRD version, in both document flavours.
#[derive(Debug)]
pub struct CustomSchemas {
    group: String,
    version: String,
    kind: String,
    list_kind: String,
    /// (name, OpenAPI v3 form, Swagger 2.0 form): the kind, then the list.
    definitions: Vec<(String, Value, Value)>,
    hash: u64,
}

/// Upstream's definition name: `example.com/v1/Widget` → `com.example.v1.Widget`.
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let mut parts: Vec<&str> = group.split('.').collect();
    parts.reverse();
    let reversed = parts.join(".");
    if reversed.is_empty() {
        format!("{version}.{kind}")
    } else {
        format!("{reversed}.{version}.{kind}")
    }
}

impl CustomSchemas {
    pub fn build(input: &CustomInput<'_>) -> CustomSchemas {
        let kind_name = definition_name(input.group, input.version, input.kind);
        let list_name = definition_name(input.group, input.version, input.list_kind);
        let gvk =
            |kind: &str| json!([{"group": input.group, "kind": kind, "version": input.version}]);
        let selectable: Option<Value> = (!input.selectable_fields.is_empty()).then(|| {
            Value::Array(
                input
                    .selectable_fields
                    .iter()
                    .map(|f| json!({"fieldPath": f}))
                    .collect(),
            )
        });
        let mut kind_v3 = kind_schema(input.schema, Flavor::V3);
        let mut kind_v2 = kind_schema(input.schema, Flavor::V2);
        let mut list_v3 = list_schema(input, &kind_name, Flavor::V3);
        let mut list_v2 = list_schema(input, &kind_name, Flavor::V2);
        for (def, kind) in [
            (&mut kind_v3, input.kind),
            (&mut kind_v2, input.kind),
            (&mut list_v3, input.list_kind),
            (&mut list_v2, input.list_kind),
        ] {
            if let Value::Object(m) = def {
                m.insert("x-kubernetes-group-version-kind".into(), gvk(kind));
                if let Some(s) = &selectable {
                    m.insert("x-kubernetes-selectable-fields".into(), s.clone());
                }
            }
        }
        let definitions = vec![
            (kind_name, sort_keys(kind_v3), sort_keys(kind_v2)),
            (list_name, sort_keys(list_v3), sort_keys(list_v2)),
        ];
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for (name, v3, v2) in &definitions {
            name.hash(&mut hasher);
            v3.to_string().hash(&mut hasher);
            v2.to_string().hash(&mut hasher);
        }
        (input.plural, input.namespaced, input.subresources).hash(&mut hasher);
        CustomSchemas {
            group: input.group.to_string(),
            version: input.version.to_string(),
            kind: input.kind.to_string(),
            list_kind: input.list_kind.to_string(),
            definitions,
            hash: hasher.finish(),
        }
    }

    /// A hash of everything the documents show of this version.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The v3 form of a definition by name (for tests and inspection).
    pub fn v3(&self, name: &str) -> Option<&Value> {
        self.definitions
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, v3, _)| v3)
    }

    /// The Swagger 2.0 form of a definition by name.
    pub fn v2(&self, name: &str) -> Option<&Value> {
        self.definitions
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, v2)| v2)
    }
}

/// Standard definitions the custom documents refer to, taken once from the
/// vendored built-in documents, and the standard field schemas.
struct Standard {
    /// Closure of the meta types, Scale and their dependencies (v3 form).
    definitions: BTreeMap<String, Value>,
    api_version: Value,
    kind: Value,
    object_meta_doc: Value,
    list_meta_doc: Value,
}

fn standard() -> &'static Standard {
    static STANDARD: OnceLock<Standard> = OnceLock::new();
    STANDARD.get_or_init(|| {
        let mut all: BTreeMap<String, Value> = BTreeMap::new();
        for key in ["api/v1", "apis/autoscaling/v1"] {
            let doc: Value = vendored::v3(key)
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or_default();
            if let Some(Value::Object(schemas)) = doc.pointer("/components/schemas") {
                for (k, v) in schemas {
                    all.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        let prop = |def: &str, p: &str| {
            all.get(def)
                .and_then(|d| d.pointer(&format!("/properties/{p}")))
                .cloned()
                .unwrap_or_else(|| json!({"type": "string"}))
        };
        let api_version = prop("io.k8s.api.core.v1.ConfigMap", "apiVersion");
        let kind = prop("io.k8s.api.core.v1.ConfigMap", "kind");
        let doc = |def: &str| {
            prop(def, "metadata")
                .get("description")
                .cloned()
                .unwrap_or(Value::Null)
        };
        let object_meta_doc = doc("io.k8s.api.core.v1.ConfigMap");
        let list_meta_doc = doc("io.k8s.api.core.v1.ConfigMapList");
        let roots: BTreeSet<String> = [
            OBJECT_META,
            LIST_META,
            STATUS,
            SCALE,
            super::schemas::DELETE_OPTIONS,
            super::schemas::PATCH,
        ]
        .into_iter()
        .map(str::to_string)
        .collect();
        let keep = closure(&all, roots);
        let definitions = all.into_iter().filter(|(k, _)| keep.contains(k)).collect();
        Standard {
            definitions,
            api_version,
            kind,
            object_meta_doc,
            list_meta_doc,
        }
    })
}

fn meta_ref(def: &str, description: &Value, flavor: Flavor) -> Value {
    match flavor {
        Flavor::V3 => {
            json!({"allOf": [{"$ref": format!("{V3_PREFIX}{def}")}], "description": description})
        }
        Flavor::V2 => json!({"$ref": format!("{V2_PREFIX}{def}"), "description": description}),
    }
}

/// The published kind schema: the version's schema as upstream's structural
/// form renders it, with `apiVersion`, `kind` and `metadata` added.
fn kind_schema(schema: Option<&Value>, flavor: Flavor) -> Value {
    let Some(schema) = schema else {
        return json!({"type": "object"});
    };
    let preserve = schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true);
    // v2 clients (kubectl's client-side validation) would refuse unknown
    // fields if the root listed properties.
    if flavor == Flavor::V2 && preserve {
        return json!({"type": "object"});
    }
    let mut out = publish(schema);
    unfold(&mut out);
    if flavor == Flavor::V2 {
        to_v2(&mut out);
        prune_defaults(&mut out);
    }
    let std = standard();
    if let Value::Object(m) = &mut out {
        let props = m
            .entry("properties")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        if let Some(props) = props {
            props.insert(
                "metadata".into(),
                meta_ref(OBJECT_META, &std.object_meta_doc, flavor),
            );
            props.insert("apiVersion".into(), std.api_version.clone());
            props.insert("kind".into(), std.kind.clone());
        }
    }
    embedded(&mut out, flavor);
    out
}

fn list_schema(input: &CustomInput<'_>, kind_def: &str, flavor: Flavor) -> Value {
    let std = standard();
    let prefix = match flavor {
        Flavor::V2 => V2_PREFIX,
        Flavor::V3 => V3_PREFIX,
    };
    json!({
        "description": format!("{} is a list of {}", input.list_kind, input.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": std.api_version,
            "kind": std.kind,
            "items": {
                "description": format!("List of {}.", input.plural),
                "type": "array",
                "items": {"$ref": format!("{prefix}{kind_def}")},
            },
            "metadata": meta_ref(LIST_META, &std.list_meta_doc, flavor),
        },
    })
}

/// The keys a structural schema node keeps when published (upstream's
/// structural schema keeps no `example`, `externalDocs`, `id`, `$schema`,
/// `definitions`, `dependencies`, `patternProperties` or `additionalItems`),
/// with Go's `omitempty` on empty strings, false flags and empty lists.
fn publish(s: &Value) -> Value {
    let Value::Object(m) = s else {
        return json!({});
    };
    let mut out = Map::new();
    for (k, v) in m {
        let kept = match k.as_str() {
            "properties" => v.as_object().map(|props| {
                Value::Object(
                    props
                        .iter()
                        .map(|(name, p)| (name.clone(), publish(p)))
                        .collect(),
                )
            }),
            "items" | "not" => v.is_object().then(|| publish(v)),
            "additionalProperties" => match v {
                Value::Bool(_) => Some(v.clone()),
                Value::Object(_) => Some(publish(v)),
                _ => None,
            },
            "allOf" | "anyOf" | "oneOf" => v
                .as_array()
                .filter(|a| !a.is_empty())
                .map(|a| Value::Array(a.iter().map(publish).collect())),
            "type" | "description" | "title" | "format" | "pattern" => {
                v.as_str().filter(|s| !s.is_empty()).map(|_| v.clone())
            }
            "x-kubernetes-list-type" | "x-kubernetes-map-type" => Some(v.clone()),
            "default" | "maximum" | "minimum" | "maxLength" | "minLength" | "maxItems"
            | "minItems" | "multipleOf" | "maxProperties" | "minProperties" => {
                (!v.is_null()).then(|| v.clone())
            }
            "nullable"
            | "exclusiveMaximum"
            | "exclusiveMinimum"
            | "uniqueItems"
            | "x-kubernetes-preserve-unknown-fields"
            | "x-kubernetes-embedded-resource"
            | "x-kubernetes-int-or-string" => (v.as_bool() == Some(true)).then(|| v.clone()),
            "enum" | "required" | "x-kubernetes-list-map-keys" | "x-kubernetes-validations" => {
                v.as_array().filter(|a| !a.is_empty()).map(|_| v.clone())
            }
            _ => None,
        };
        if let Some(kept) = kept {
            out.insert(k.clone(), kept);
        }
    }
    Value::Object(out)
}

/// Calls `f` on `v` and every structural child schema (properties, items,
/// additionalProperties), parents first.
fn visit(v: &mut Value, f: &mut impl FnMut(&mut Map<String, Value>)) {
    let Value::Object(m) = v else { return };
    f(m);
    if let Some(Value::Object(props)) = m.get_mut("properties") {
        for p in props.values_mut() {
            visit(p, f);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child @ Value::Object(_)) = m.get_mut(key) {
            visit(child, f);
        }
    }
}

fn flag(m: &Map<String, Value>, key: &str) -> bool {
    m.get(key).and_then(Value::as_bool) == Some(true)
}

/// `x-kubernetes-int-or-string` spelled out as `anyOf` integer or string, as
/// upstream unfolds it before publishing.
fn unfold(v: &mut Value) {
    let either = || json!([{"type": "integer"}, {"type": "string"}]);
    visit(v, &mut |m| {
        if !flag(m, "x-kubernetes-int-or-string") {
            return;
        }
        let any_of = m.get("anyOf").cloned();
        if any_of.as_ref() == Some(&either()) {
            return;
        }
        let all_of_first = m
            .get("allOf")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|f| f.get("anyOf"))
            .cloned();
        if all_of_first == Some(either()) {
            return;
        }
        if any_of.is_none() {
            m.insert("anyOf".into(), either());
        } else {
            let mut all_of = vec![json!({"anyOf": either()})];
            if let Some(Value::Array(rest)) = m.remove("allOf") {
                all_of.extend(rest);
            }
            m.insert("allOf".into(), Value::Array(all_of));
        }
    });
}

/// Upstream's reduction of a structural schema to what Swagger 2.0 clients
/// handle.
fn to_v2(v: &mut Value) {
    visit(v, &mut |m| {
        for k in ["allOf", "oneOf", "anyOf", "not"] {
            m.remove(k);
        }
        // Required fields that may be null cannot be required in v2.
        let nullable_props: Vec<String> = m
            .get("properties")
            .and_then(Value::as_object)
            .map(|props| {
                props
                    .iter()
                    .filter(|(_, p)| p.get("nullable").and_then(Value::as_bool) == Some(true))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        let ap_nullable = m
            .get("additionalProperties")
            .and_then(|ap| ap.get("nullable"))
            .and_then(Value::as_bool)
            == Some(true);
        if flag(m, "nullable") {
            m.remove("type");
            m.remove("nullable");
            m.remove("items");
            m.remove("properties");
        }
        let preserve = flag(m, "x-kubernetes-preserve-unknown-fields");
        if preserve {
            m.remove("items");
            m.remove("properties");
        }
        if m.get("type").and_then(Value::as_str) == Some("array") && !m.contains_key("items") {
            m.remove("type");
        }
        if preserve && m.get("type").and_then(Value::as_str) == Some("object") {
            m.remove("type");
        }
        if ap_nullable {
            m.remove("required");
        } else if let Some(Value::Array(req)) = m.get_mut("required") {
            req.retain(|r| {
                !r.as_str()
                    .is_some_and(|r| nullable_props.iter().any(|n| n == r))
            });
            if req.is_empty() {
                m.remove("required");
            }
        }
    });
}

/// Swagger 2.0 documents carry no defaults (upstream prunes them so the
/// merged document matches the built-in one).
fn prune_defaults(v: &mut Value) {
    visit(v, &mut |m| {
        m.remove("default");
    });
}

/// `x-kubernetes-embedded-resource` objects get `apiVersion`, `kind` and
/// `metadata` (required `apiVersion` and `kind`), except, in v2, under
/// `x-kubernetes-preserve-unknown-fields`.
fn embedded(v: &mut Value, flavor: Flavor) {
    let std = standard();
    visit(v, &mut |m| {
        if flavor == Flavor::V2 && flag(m, "x-kubernetes-preserve-unknown-fields") {
            return;
        }
        if !flag(m, "x-kubernetes-embedded-resource") {
            return;
        }
        let props = m
            .entry("properties")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        if let Some(props) = props {
            props.insert("apiVersion".into(), std.api_version.clone());
            props.insert("kind".into(), std.kind.clone());
            props.insert(
                "metadata".into(),
                meta_ref(OBJECT_META, &std.object_meta_doc, flavor),
            );
        }
        let required = m.entry("required").or_insert_with(|| json!([]));
        if let Value::Array(req) = required {
            for k in ["kind", "apiVersion"] {
                if !req.iter().any(|r| r == k) {
                    req.push(json!(k));
                }
            }
        }
    });
}

/// The custom resources of a group-version, with what they publish.
fn customs(gv: &GroupVersion) -> Vec<&CustomSchemas> {
    gv.resources
        .iter()
        .filter_map(|r| r.strategy.openapi())
        .collect()
}

/// Whether a group-version serves custom resources (and so gets its
/// documents generated instead of vendored).
pub fn is_custom(gv: &GroupVersion) -> bool {
    gv.resources.iter().any(|r| r.strategy.openapi().is_some())
}

/// A key that changes whenever what a group-version publishes does.
pub fn gv_hash(gv: &GroupVersion) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for c in customs(gv) {
        c.hash.hash(&mut hasher);
    }
    hasher.finish()
}

fn catalog(gv: &GroupVersion) -> Catalog {
    let mut kinds = BTreeMap::new();
    for c in customs(gv) {
        for (kind, (name, _, _)) in [&c.kind, &c.list_kind].into_iter().zip(&c.definitions) {
            kinds.insert(
                (c.group.clone(), c.version.clone(), kind.clone()),
                name.clone(),
            );
        }
    }
    kinds.insert(
        ("autoscaling".into(), "v1".into(), "Scale".into()),
        SCALE.into(),
    );
    Catalog {
        definitions: BTreeMap::new(),
        kinds,
    }
}

fn items(group: &str, gv: &GroupVersion) -> Vec<paths::PathItem> {
    let catalog = catalog(gv);
    let params = Params::new(&standard().definitions);
    paths::gv_paths(&catalog, &params, group, gv, Origin::Custom)
}

/// The OpenAPI v3 document of a group-version of custom resources.
pub fn v3_document(group: &str, gv: &GroupVersion) -> Value {
    let items = items(group, gv);
    let (paths, mut refs) = render::paths(&items, Flavor::V3);
    let mut schemas = Map::new();
    for c in customs(gv) {
        for (name, v3, _) in &c.definitions {
            refs_in(v3, &mut refs);
            schemas.insert(name.clone(), v3.clone());
        }
    }
    let std = standard();
    for name in closure(&std.definitions, refs) {
        if let Some(def) = std.definitions.get(&name) {
            schemas.insert(name, def.clone());
        }
    }
    sort_keys(json!({
        "components": {"schemas": schemas},
        "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
        "openapi": "3.0.0",
        "paths": paths,
    }))
}

/// What a group-version of custom resources adds to the Swagger 2.0
/// document: its paths and its definitions (the standard ones it refers to
/// are already there).
pub fn v2_additions(group: &str, gv: &GroupVersion) -> (Map<String, Value>, Map<String, Value>) {
    let items = items(group, gv);
    let (paths, _) = render::paths(&items, Flavor::V2);
    let mut definitions = Map::new();
    for c in customs(gv) {
        for (name, _, v2) in &c.definitions {
            definitions.insert(name.clone(), v2.clone());
        }
    }
    (paths, definitions)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn foo_schema() -> Value {
        json!({
            "description": "Foo CRD for Testing",
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "description": "Specification of Foo",
                    "properties": {
                        "bars": {
                            "description": "List of Bars and their specs.",
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"description": "Name of Bar.", "type": "string"},
                                    "feeling": {"type": "string", "enum": ["Great", "Down"]},
                                    "size": {"type": "integer", "default": 3, "example": 4},
                                },
                            },
                        },
                    },
                },
            },
        })
    }

    fn crd(schema: Value) -> Value {
        json!({
            "metadata": {"name": "foos.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "foos", "singular": "foo", "kind": "Foo", "listKind": "FooList"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": schema},
                    "selectableFields": [{"jsonPath": ".spec.color"}],
                    "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}}}]},
        })
    }

    fn schemas(schema: Value) -> CustomSchemas {
        CustomSchemas::build(&CustomInput {
            group: "example.com",
            version: "v1",
            kind: "Foo",
            list_kind: "FooList",
            plural: "foos",
            namespaced: true,
            schema: Some(&schema),
            selectable_fields: &["spec.color".to_string()],
            subresources: &[],
        })
    }

    /// What a client sees of the schema once the added fields are dropped
    /// (upstream's conformance test compares exactly this).
    fn without_added(mut def: Value) -> Value {
        if let Value::Object(m) = &mut def {
            m.remove("x-kubernetes-group-version-kind");
            m.remove("x-kubernetes-selectable-fields");
            if let Some(Value::Object(props)) = m.get_mut("properties") {
                for k in ["metadata", "apiVersion", "kind"] {
                    props.remove(k);
                }
            }
        }
        def
    }

    #[test]
    fn names_definitions_like_upstream() {
        assert_eq!(
            definition_name(
                "crd-publish-openapi-test-foo.example.com",
                "v1",
                "E2e-test-crd"
            ),
            "com.example.crd-publish-openapi-test-foo.v1.E2e-test-crd"
        );
    }

    #[test]
    fn publishes_the_schema_with_kubernetes_fields() {
        let s = schemas(foo_schema());
        let v2 = s.v2("com.example.v1.Foo").expect("v2");
        let mut expected = foo_schema();
        // v2 carries no defaults, and no schema keeps `example`.
        let size = "/properties/spec/properties/bars/items/properties/size";
        expected.pointer_mut(size).expect("size")["default"].take();
        expected
            .pointer_mut(size)
            .expect("size")
            .as_object_mut()
            .expect("object")
            .retain(|k, _| k == "type");
        assert_eq!(without_added(v2.clone()), sort_keys(expected));
        assert_eq!(
            v2["properties"]["metadata"]["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert_eq!(
            v2["x-kubernetes-group-version-kind"],
            json!([{"group": "example.com", "kind": "Foo", "version": "v1"}])
        );
        assert_eq!(
            v2["x-kubernetes-selectable-fields"],
            json!([{"fieldPath": "spec.color"}])
        );
        let v3 = s.v3("com.example.v1.Foo").expect("v3");
        assert_eq!(
            v3.pointer(size).and_then(|p| p.get("default")),
            Some(&json!(3))
        );
        assert_eq!(
            v3["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert!(
            v3["properties"]["apiVersion"]["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("APIVersion defines"))
        );
        let list = s.v3("com.example.v1.FooList").expect("list");
        assert_eq!(
            list["properties"]["items"]["items"]["$ref"],
            "#/components/schemas/com.example.v1.Foo"
        );
        assert_eq!(
            list["x-kubernetes-group-version-kind"][0]["kind"],
            "FooList"
        );
    }

    #[test]
    fn v2_drops_what_v2_clients_cannot_read() {
        let root = schemas(
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true,
            "properties": {"spec": {"type": "object"}}}),
        );
        assert_eq!(
            without_added(root.v2("com.example.v1.Foo").expect("v2").clone()),
            json!({"type": "object"})
        );
        let root_v3 = root.v3("com.example.v1.Foo").expect("v3");
        assert_eq!(root_v3["x-kubernetes-preserve-unknown-fields"], true);
        assert!(root_v3["properties"]["metadata"].is_object());

        let nested = schemas(json!({"type": "object", "properties": {
            "spec": {"type": "object", "description": "d", "x-kubernetes-preserve-unknown-fields": true,
                "properties": {"dummy": {"type": "object"}}},
            "opt": {"type": "string", "nullable": true},
            "port": {"x-kubernetes-int-or-string": true},
            "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                "properties": {"spec": {"type": "object"}}},
        }, "required": ["opt", "port"]}));
        let v2 = nested.v2("com.example.v1.Foo").expect("v2");
        assert_eq!(
            v2["properties"]["spec"],
            json!({"description": "d", "x-kubernetes-preserve-unknown-fields": true})
        );
        assert_eq!(v2["properties"]["opt"], json!({}));
        assert_eq!(v2["required"], json!(["port"]));
        assert_eq!(
            v2["properties"]["port"],
            json!({"x-kubernetes-int-or-string": true})
        );
        assert_eq!(
            v2["properties"]["template"]["required"],
            json!(["kind", "apiVersion"])
        );
        let v3 = nested.v3("com.example.v1.Foo").expect("v3");
        assert_eq!(
            v3["properties"]["port"]["anyOf"],
            json!([{"type": "integer"}, {"type": "string"}])
        );
        assert_eq!(v3["properties"]["opt"]["nullable"], true);
        assert_eq!(v3["required"], json!(["opt", "port"]));
        assert!(v3["properties"]["template"]["properties"]["metadata"]["allOf"].is_array());
    }

    #[test]
    fn documents_of_a_custom_group_version() {
        let crd = crd(foo_schema());
        let info =
            crate::crd::resource::resource_info(&crd, &crd["spec"]["versions"][0]).expect("info");
        let gv = GroupVersion {
            version: "v1".into(),
            resources: vec![Arc::new(info)],
        };
        assert!(is_custom(&gv));
        let doc = v3_document("example.com", &gv);
        let schemas = &doc["components"]["schemas"];
        for name in [
            "com.example.v1.Foo",
            "com.example.v1.FooList",
            OBJECT_META,
            LIST_META,
            STATUS,
            SCALE,
            "io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry",
        ] {
            assert!(schemas[name].is_object(), "{name} missing");
        }
        // The standard definitions are the built-in documents' own.
        let core: Value =
            serde_json::from_slice(vendored::v3("api/v1").expect("api/v1")).expect("json");
        assert_eq!(
            schemas[OBJECT_META],
            core["components"]["schemas"][OBJECT_META]
        );
        let paths = doc["paths"].as_object().expect("paths");
        let mut keys: Vec<&str> = paths.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "/apis/example.com/v1/foos",
                "/apis/example.com/v1/namespaces/{namespace}/foos",
                "/apis/example.com/v1/namespaces/{namespace}/foos/{name}",
                "/apis/example.com/v1/namespaces/{namespace}/foos/{name}/scale",
                "/apis/example.com/v1/namespaces/{namespace}/foos/{name}/status",
            ]
        );
        let patch = &paths["/apis/example.com/v1/namespaces/{namespace}/foos/{name}"]["patch"];
        assert_eq!(patch["operationId"], "patchExampleComV1NamespacedFoo");
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Foo");
        let types: Vec<&str> = patch["requestBody"]["content"]
            .as_object()
            .map(|c| c.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert!(
            !types.contains(&"application/strategic-merge-patch+json"),
            "{types:?}"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "fieldValidation"))
        );
        let (v2_paths, v2_defs) = v2_additions("example.com", &gv);
        assert!(v2_defs.contains_key("com.example.v1.Foo"));
        assert_eq!(
            v2_paths["/apis/example.com/v1/namespaces/{namespace}/foos/{name}"]["get"]["responses"]
                ["200"]["schema"]["$ref"],
            "#/definitions/com.example.v1.Foo"
        );
    }
}
