//! Rendering the operation model and the schemas as documents: OpenAPI 3.0
//! (one per group-version, `components/schemas`) and Swagger 2.0 (one for
//! everything, `definitions`), in upstream's shapes.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::params::{Loc, Param};
use super::paths::{Body, Op, Output, PathItem, op_refs, sorted};
use super::schemas::{
    Catalog, DELETE_OPTIONS, Flavor, PATCH, V2_PREFIX, V3_PREFIX, closure, shape, sort_keys,
};
use crate::endpoints::discovery::KUBE_VERSION;

const OBJECT_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/cbor",
];
const STREAM_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/cbor",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
    "application/cbor-seq",
];
const TEXT_TYPES: &[&str] = &[
    "text/plain",
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "application/apply-patch+cbor",
];

/// What a custom resource's operations speak (upstream's CRD builder).
const CUSTOM_TYPES: &[&str] = &["application/json", "application/yaml"];
const CUSTOM_PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

fn produces(op: &Op) -> &'static [&'static str] {
    if op.custom && op.output != Output::Connect {
        return CUSTOM_TYPES;
    }
    match op.output {
        Output::Object => OBJECT_TYPES,
        Output::Stream => STREAM_TYPES,
        Output::Text => TEXT_TYPES,
        Output::Connect => &["*/*"],
    }
}

/// The media types a request body may have.
fn consumes(op: &Op) -> &'static [&'static str] {
    match (op.body == Body::Patch, op.custom) {
        (true, false) => PATCH_TYPES,
        (true, true) => CUSTOM_PATCH_TYPES,
        (false, false) => &["*/*"],
        (false, true) => CUSTOM_TYPES,
    }
}

fn schema_ref(def: &str, flavor: Flavor) -> Value {
    let prefix = match flavor {
        Flavor::V2 => V2_PREFIX,
        Flavor::V3 => V3_PREFIX,
    };
    json!({"$ref": format!("{prefix}{def}")})
}

fn param(p: &Param, flavor: Flavor) -> Value {
    let mut m = Map::new();
    m.insert("description".into(), json!(p.description));
    m.insert(
        "in".into(),
        json!(match p.loc {
            Loc::Path => "path",
            Loc::Query => "query",
        }),
    );
    m.insert("name".into(), json!(p.name));
    if p.required {
        m.insert("required".into(), json!(true));
    }
    match flavor {
        Flavor::V3 => {
            m.insert("schema".into(), json!({"type": p.ty, "uniqueItems": true}));
        }
        Flavor::V2 => {
            m.insert("type".into(), json!(p.ty));
            m.insert("uniqueItems".into(), json!(true));
        }
    }
    Value::Object(m)
}

fn params(list: &[Param], flavor: Flavor) -> Value {
    Value::Array(
        sorted(list.to_vec())
            .iter()
            .map(|p| param(p, flavor))
            .collect(),
    )
}

/// The request body's definition and whether it is required.
fn body(op: &Op) -> Option<(String, bool)> {
    match &op.body {
        Body::None => None,
        Body::Object(d) => Some((d.clone(), true)),
        Body::Patch => Some((PATCH.into(), true)),
        Body::Delete => Some((DELETE_OPTIONS.into(), false)),
    }
}

fn operation(op: &Op, flavor: Flavor) -> Value {
    let mut m = Map::new();
    m.insert("description".into(), json!(op.description));
    m.insert("operationId".into(), json!(op.id));
    m.insert("tags".into(), json!([op.tag]));
    if !op.action.is_empty() {
        m.insert("x-kubernetes-action".into(), json!(op.action));
    }
    if let Some(gvk) = &op.gvk {
        m.insert("x-kubernetes-group-version-kind".into(), gvk.to_json());
    }
    let response_schema = match &op.response {
        Some(d) => schema_ref(d, flavor),
        None => json!({"type": "string"}),
    };
    let mut responses = Map::new();
    let mut parameters = match params(&op.params, flavor) {
        Value::Array(v) => v,
        _ => Vec::new(),
    };
    match flavor {
        Flavor::V3 => {
            let content: Map<String, Value> = produces(op)
                .iter()
                .map(|t| (t.to_string(), json!({"schema": response_schema})))
                .collect();
            for (code, d) in op.codes {
                responses.insert(
                    code.to_string(),
                    json!({"content": content, "description": d}),
                );
            }
            if let Some((def, required)) = body(op) {
                let content: Map<String, Value> = consumes(op)
                    .iter()
                    .map(|t| (t.to_string(), json!({"schema": schema_ref(&def, flavor)})))
                    .collect();
                let mut rb = Map::new();
                rb.insert("content".into(), Value::Object(content));
                if required {
                    rb.insert("required".into(), json!(true));
                }
                m.insert("requestBody".into(), Value::Object(rb));
            }
        }
        Flavor::V2 => {
            for (code, d) in op.codes {
                responses.insert(
                    code.to_string(),
                    json!({"description": d, "schema": response_schema}),
                );
            }
            m.insert("produces".into(), json!(produces(op)));
            m.insert("schemes".into(), json!(["https"]));
            m.insert("consumes".into(), json!(consumes(op)));
            if let Some((def, required)) = body(op) {
                let mut b = Map::new();
                b.insert("in".into(), json!("body"));
                b.insert("name".into(), json!("body"));
                if required {
                    b.insert("required".into(), json!(true));
                }
                b.insert("schema".into(), schema_ref(&def, flavor));
                parameters.insert(0, Value::Object(b));
            }
        }
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    if !parameters.is_empty() {
        m.insert("parameters".into(), Value::Array(parameters));
    }
    m.insert("responses".into(), Value::Object(responses));
    Value::Object(m)
}

/// The `paths` object of `items`, and the definitions their operations refer to.
pub(super) fn paths(items: &[PathItem], flavor: Flavor) -> (Map<String, Value>, BTreeSet<String>) {
    let mut out = Map::new();
    let mut refs = BTreeSet::new();
    for item in items {
        let mut m = Map::new();
        for op in &item.ops {
            refs.extend(op_refs(op));
            m.insert(op.method.to_string(), operation(op, flavor));
        }
        if !item.params.is_empty() {
            m.insert("parameters".into(), params(&item.params, flavor));
        }
        out.insert(item.path.clone(), Value::Object(m));
    }
    (out, refs)
}

fn definitions(catalog: &Catalog, roots: BTreeSet<String>, flavor: Flavor) -> Map<String, Value> {
    closure(&catalog.definitions, roots)
        .into_iter()
        .filter(|n| catalog.definitions.contains_key(n))
        .map(|n| {
            let s = shape(&catalog.definitions, &n, flavor);
            (n, s)
        })
        .collect()
}

fn bearer() -> Value {
    json!({
        "description": "Bearer Token authentication",
        "in": "header",
        "name": "authorization",
        "type": "apiKey",
    })
}

/// The OpenAPI v3 document of one group-version.
pub(super) fn v3_document(catalog: &Catalog, items: &[PathItem]) -> Value {
    let (paths, refs) = paths(items, Flavor::V3);
    let schemas = definitions(catalog, refs, Flavor::V3);
    sort_keys(json!({
        "components": {
            "schemas": schemas,
            "securitySchemes": {"BearerToken": bearer()},
        },
        "info": {"title": "Kubernetes", "version": KUBE_VERSION},
        "openapi": "3.0.0",
        "paths": paths,
        "security": [{"BearerToken": []}],
    }))
}

/// The Swagger 2.0 document of every group-version.
pub(super) fn v2_document(catalog: &Catalog, items: &[PathItem]) -> Value {
    let (paths, refs) = paths(items, Flavor::V2);
    let definitions = definitions(catalog, refs, Flavor::V2);
    sort_keys(json!({
        "definitions": definitions,
        "info": {"title": "Kubernetes", "version": KUBE_VERSION},
        "paths": paths,
        "security": [{"BearerToken": []}],
        "securityDefinitions": {"BearerToken": bearer()},
        "swagger": "2.0",
    }))
}
