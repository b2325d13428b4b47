//! OpenAPI v3 discovery: the root index and one document per group-version.
//!
//! For now each document carries the operations and their parameters, with
//! `x-kubernetes-group-version-kind` and `x-kubernetes-action`, generated from the
//! resource table — what kubectl and Helm need to detect server-side field
//! validation. Schemas come with the vendored documents of a later change.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::discovery::{KUBE_VERSION, fnv64};
use crate::api_error::{ApiError, ApiResult};
use crate::resources::{ResourceInfo, ResourceTable};

fn query_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
}

fn write_params() -> Vec<Value> {
    vec![
        query_param(
            "dryRun",
            "When present, indicates that modifications should not be persisted.",
        ),
        query_param(
            "fieldManager",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
        ),
        query_param(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict",
        ),
    ]
}

fn operation(r: &ResourceInfo, action: &str, params: Vec<Value>) -> Value {
    json!({
        "tags": [r.group.replace('.', "_")],
        "operationId": format!("{action}{}", r.kind),
        "parameters": params,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
    })
}

fn gv_document(table: &ResourceTable, group: &str, version: &str) -> Option<Value> {
    let gv = table.group_version(group, version)?;
    let base = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let mut paths = Map::new();
    for r in &gv.resources {
        let collection = if r.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{base}/{}", r.plural)
        };
        let mut coll = Map::new();
        if r.has_verb("list") {
            coll.insert("get".into(), operation(r, "list", vec![]));
        }
        if r.has_verb("create") {
            coll.insert("post".into(), operation(r, "post", write_params()));
        }
        if r.has_verb("deletecollection") {
            coll.insert("delete".into(), operation(r, "deletecollection", vec![]));
        }
        paths.insert(collection.clone(), Value::Object(coll));
        if r.has_verb("get") {
            let mut item = Map::new();
            item.insert("get".into(), operation(r, "get", vec![]));
            item.insert("put".into(), operation(r, "put", write_params()));
            let mut patch = write_params();
            patch.push(query_param(
                "force",
                "Force is going to \"force\" Apply requests.",
            ));
            item.insert("patch".into(), operation(r, "patch", patch));
            item.insert("delete".into(), operation(r, "delete", vec![]));
            paths.insert(format!("{collection}/{{name}}"), Value::Object(item));
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBE_VERSION},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

fn gv_paths(table: &ResourceTable) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for g in table.groups() {
        for v in &g.versions {
            let path = if g.name.is_empty() {
                format!("api/{}", v.version)
            } else {
                format!("apis/{}/{}", g.name, v.version)
            };
            out.push((path, g.name.clone(), v.version.clone()));
        }
    }
    out
}

fn json_bytes(bytes: Vec<u8>, etag: &str, immutable: bool) -> Response {
    let mut r = (StatusCode::OK, bytes).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    let cache = if immutable {
        "public, immutable"
    } else {
        "no-cache, private"
    };
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

/// `/openapi/v3` and `/openapi/v3/{api/v1 | apis/group/version}`; `None` for other paths.
pub fn serve(
    table: &ResourceTable,
    path: &str,
    query_hash: Option<&str>,
    headers: &HeaderMap,
) -> Option<ApiResult<Response>> {
    let rest = path.strip_prefix("/openapi/v3")?;
    let rest = rest.trim_matches('/');
    if rest.is_empty() {
        let mut paths = Map::new();
        for (p, g, v) in gv_paths(table) {
            let doc = gv_document(table, &g, &v).unwrap_or_default();
            let hash = format!(
                "{:016X}",
                fnv64(&serde_json::to_vec(&doc).unwrap_or_default())
            );
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
            );
        }
        let bytes = serde_json::to_vec(&json!({"paths": paths})).unwrap_or_default();
        let etag = format!("\"{:016X}\"", fnv64(&bytes));
        return Some(Ok(json_bytes(bytes, &etag, false)));
    }
    let found = gv_paths(table).into_iter().find(|(p, _, _)| p == rest);
    let Some((_, g, v)) = found else {
        return Some(Err(ApiError::no_route()));
    };
    let doc = gv_document(table, &g, &v)?;
    let bytes = serde_json::to_vec(&doc).unwrap_or_default();
    let hash = format!("{:016X}", fnv64(&bytes));
    let etag = format!("\"{hash}\"");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return Some(Ok(StatusCode::NOT_MODIFIED.into_response()));
    }
    Some(Ok(json_bytes(
        bytes,
        &etag,
        query_hash == Some(hash.as_str()),
    )))
}
