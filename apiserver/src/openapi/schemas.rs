//! The schemas: `k8s-openapi`'s `JsonSchema` impls (descriptions, types,
//! required fields, `$ref`s named like upstream's definitions), plus what it
//! does not carry: list kinds, `x-kubernetes-group-version-kind`, and the
//! special shapes upstream gives `IntOrString` and `Quantity`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::{authentication, autoscaling, core, policy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::resources::ResourceTable;

/// Where `$ref`s point in an OpenAPI v3 document.
pub(super) const V3_PREFIX: &str = "#/components/schemas/";
/// Where `$ref`s point in a Swagger 2.0 document.
pub(super) const V2_PREFIX: &str = "#/definitions/";

pub(super) const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
pub(super) const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
pub(super) const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub(super) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(super) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(super) const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub(super) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(super) const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";

/// A group-version-kind, as `x-kubernetes-group-version-kind` spells it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    pub(super) fn new(group: &str, version: &str, kind: &str) -> Gvk {
        Gvk {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
        }
    }

    pub(super) fn to_json(&self) -> Value {
        json!({"group": self.group, "kind": self.kind, "version": self.version})
    }
}

/// Every definition, keyed by upstream's name, with `$ref`s in the v3 form,
/// and the definition name of each served kind and list kind.
pub(super) struct Catalog {
    pub definitions: BTreeMap<String, Value>,
    /// (group, version, kind) → definition name.
    pub kinds: BTreeMap<(String, String, String), String>,
}

impl Catalog {
    pub(super) fn kind(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.kinds
            .get(&(group.to_string(), version.to_string(), kind.to_string()))
            .map(String::as_str)
    }
}

/// The definition name a `$ref` points at.
pub(super) fn ref_name(schema: &Value) -> Option<&str> {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix(V3_PREFIX))
}

/// Collects the schemas of every typed resource in the table, their list
/// kinds, and the request/response types the operations refer to.
pub(super) fn catalog(table: &ResourceTable) -> Catalog {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator();
    let mut kinds = BTreeMap::new();
    let mut lists = Vec::new();
    for group in table.groups() {
        for gv in &group.versions {
            for r in &gv.resources {
                let Some(codec) = r.codec else { continue };
                let schema = (codec.schema)(&mut generator);
                let Some(name) = ref_name(schema.as_value()).map(str::to_string) else {
                    continue;
                };
                kinds.insert(
                    (r.group.clone(), r.version.clone(), r.kind.clone()),
                    name.clone(),
                );
                if r.has_verb("list") {
                    let list_name = match name.rsplit_once('.') {
                        Some((prefix, _)) => format!("{prefix}.{}", r.list_kind),
                        None => r.list_kind.clone(),
                    };
                    kinds.insert(
                        (r.group.clone(), r.version.clone(), r.list_kind.clone()),
                        list_name.clone(),
                    );
                    lists.push((list_name, name, r.kind.clone(), r.plural.clone()));
                }
            }
        }
    }
    // Kinds that only subresources and operations speak.
    let extra = [
        (
            generator.subschema_for::<autoscaling::v1::Scale>(),
            Some(("autoscaling", "v1", "Scale")),
        ),
        (
            generator.subschema_for::<policy::v1::Eviction>(),
            Some(("policy", "v1", "Eviction")),
        ),
        (
            generator.subschema_for::<authentication::v1::TokenRequest>(),
            Some(("authentication.k8s.io", "v1", "TokenRequest")),
        ),
        (
            generator.subschema_for::<core::v1::Binding>(),
            Some(("", "v1", "Binding")),
        ),
        (
            generator.subschema_for::<meta::Status>(),
            Some(("", "v1", "Status")),
        ),
        (generator.subschema_for::<meta::DeleteOptions>(), None),
        (
            generator.subschema_for::<meta::WatchEvent<core::v1::Pod>>(),
            None,
        ),
        (generator.subschema_for::<meta::Patch>(), None),
        (generator.subschema_for::<meta::APIResourceList>(), None),
        (generator.subschema_for::<meta::ListMeta>(), None),
    ];
    for (schema, gvk) in extra {
        if let (Some(name), Some((g, v, k))) = (ref_name(schema.as_value()), gvk) {
            kinds.insert((g.into(), v.into(), k.into()), name.to_string());
        }
    }
    let mut definitions: BTreeMap<String, Value> =
        generator.take_definitions(false).into_iter().collect();
    for (list_name, item_name, kind, plural) in lists {
        let list = list_schema(&definitions, &item_name, &kind, &plural);
        definitions.insert(list_name, list);
    }
    for def in definitions.values_mut() {
        drop_metadata_required(def);
    }
    add_gvks(&mut definitions, &kinds, table);
    Catalog { definitions, kinds }
}

/// `k8s-openapi` lists `metadata` as required (its Rust field is not an
/// `Option`); upstream's `metadata` is optional everywhere.
fn drop_metadata_required(def: &mut Value) {
    let has_meta = def
        .pointer("/properties/metadata")
        .and_then(ref_name)
        .is_some_and(|n| n.ends_with(".ObjectMeta") || n == LIST_META);
    if !has_meta {
        return;
    }
    let Value::Object(map) = def else { return };
    if let Some(Value::Array(required)) = map.get_mut("required") {
        required.retain(|r| r != "metadata");
        if required.is_empty() {
            map.remove("required");
        }
    }
}

/// A `…List` definition: upstream's shape, with descriptions of our own
/// (`k8s-openapi` models lists generically and carries none).
fn list_schema(defs: &BTreeMap<String, Value>, item: &str, kind: &str, plural: &str) -> Value {
    let prop = |name: &str| {
        defs.get(item)
            .and_then(|d| d.pointer(&format!("/properties/{name}")))
            .cloned()
            .unwrap_or_else(|| json!({"type": "string"}))
    };
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "properties": {
            "apiVersion": prop("apiVersion"),
            "items": {
                "description": format!("List of {plural}."),
                "type": "array",
                "items": {"$ref": format!("{V3_PREFIX}{item}")},
            },
            "kind": prop("kind"),
            "metadata": {
                "$ref": format!("{V3_PREFIX}{LIST_META}"),
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
            },
        },
        "required": ["items"],
    })
}

/// `x-kubernetes-group-version-kind` on every top-level kind, and on the
/// option types every group-version speaks.
fn add_gvks(
    defs: &mut BTreeMap<String, Value>,
    kinds: &BTreeMap<(String, String, String), String>,
    table: &ResourceTable,
) {
    let mut by_def: BTreeMap<&str, BTreeSet<Gvk>> = BTreeMap::new();
    for ((g, v, k), name) in kinds {
        by_def.entry(name).or_default().insert(Gvk::new(g, v, k));
    }
    let mut shared = BTreeSet::new();
    for group in table.groups() {
        for gv in &group.versions {
            shared.insert((group.name.clone(), gv.version.clone()));
        }
    }
    shared.insert(("autoscaling".into(), "v1".into()));
    shared.insert(("policy".into(), "v1".into()));
    for (def, kind) in [
        (DELETE_OPTIONS, "DeleteOptions"),
        (WATCH_EVENT, "WatchEvent"),
    ] {
        let set = by_def.entry(def).or_default();
        for (g, v) in &shared {
            set.insert(Gvk::new(g, v, kind));
        }
    }
    for (def, gvks) in by_def {
        if let Some(Value::Object(schema)) = defs.get_mut(def) {
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                Value::Array(gvks.iter().map(Gvk::to_json).collect()),
            );
        }
    }
}

/// Whether a definition describes a JSON object (its `$ref`s get upstream's
/// `default: {}` when used as list items or map values).
fn is_object(defs: &BTreeMap<String, Value>, name: &str) -> bool {
    defs.get(name)
        .and_then(|d| d.get("type"))
        .and_then(Value::as_str)
        == Some("object")
}

/// Which document a definition is shaped for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flavor {
    V2,
    V3,
}

/// One definition in the shape upstream's document of `flavor` gives it.
pub(super) fn shape(defs: &BTreeMap<String, Value>, name: &str, flavor: Flavor) -> Value {
    let Some(def) = defs.get(name) else {
        return json!({});
    };
    let description = def.get("description").cloned();
    let special = match (name, flavor) {
        (INT_OR_STRING, Flavor::V3) => Some(json!({
            "format": "int-or-string",
            "oneOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": true,
        })),
        (INT_OR_STRING, Flavor::V2) => Some(json!({"format": "int-or-string", "type": "string"})),
        (QUANTITY, Flavor::V3) => Some(json!({"oneOf": [{"type": "string"}, {"type": "number"}]})),
        (QUANTITY, Flavor::V2) => Some(json!({"type": "string"})),
        _ => None,
    };
    if let Some(mut s) = special {
        if let (Some(d), Value::Object(m)) = (description, &mut s) {
            m.insert("description".into(), d);
        }
        return s;
    }
    let mut out = def.clone();
    if let Some(Value::Object(props)) = out.get_mut("properties") {
        for prop in props.values_mut() {
            reshape_field(defs, prop, flavor);
        }
    }
    if let Some(ap) = out.get_mut("additionalProperties") {
        reshape_field(defs, ap, flavor);
    }
    if flavor == Flavor::V2 {
        rewrite_refs(&mut out);
    }
    out
}

/// A property (or map value, or list item) schema: `$ref` with a description
/// becomes `allOf: [$ref]` in v3; list items and map values that are objects
/// get `default: {}` in v3.
fn reshape_field(defs: &BTreeMap<String, Value>, field: &mut Value, flavor: Flavor) {
    for inner in ["items", "additionalProperties"] {
        if let Some(v) = field.get_mut(inner) {
            reshape_element(defs, v, flavor);
        }
    }
    if flavor == Flavor::V2 {
        return;
    }
    let Value::Object(map) = field else { return };
    if map.len() > 1
        && let Some(r) = map.remove("$ref")
    {
        map.insert("allOf".into(), json!([{"$ref": r}]));
    }
}

fn reshape_element(defs: &BTreeMap<String, Value>, element: &mut Value, flavor: Flavor) {
    if flavor == Flavor::V2 {
        return;
    }
    let Some(name) = ref_name(element).map(str::to_string) else {
        reshape_field(defs, element, flavor);
        return;
    };
    if is_object(defs, &name) {
        *element = json!({"allOf": [{"$ref": format!("{V3_PREFIX}{name}")}], "default": {}});
    }
}

/// Points every `$ref` in `value` at `#/definitions/` (Swagger 2.0).
pub(super) fn rewrite_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k == "$ref"
                    && let Some(name) = v.as_str().and_then(|r| r.strip_prefix(V3_PREFIX))
                {
                    *v = Value::String(format!("{V2_PREFIX}{name}"));
                } else {
                    rewrite_refs(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

/// Every definition name `value` refers to (directly).
pub(super) fn refs_in(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = ref_name(value) {
                out.insert(name.to_string());
            }
            map.values().for_each(|v| refs_in(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs_in(v, out)),
        _ => {}
    }
}

/// The definitions reachable from `roots`, roots included.
pub(super) fn closure(defs: &BTreeMap<String, Value>, roots: BTreeSet<String>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = roots.into_iter().collect();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(def) = defs.get(&name) {
            let mut next = BTreeSet::new();
            refs_in(def, &mut next);
            todo.extend(next.into_iter().filter(|n| !seen.contains(n)));
        }
    }
    seen
}

/// Sorts object keys recursively, as upstream's documents (Go maps) are.
pub(super) fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, sort_keys(v))).collect();
            Value::Object(sorted.into_iter().collect::<Map<String, Value>>())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}
