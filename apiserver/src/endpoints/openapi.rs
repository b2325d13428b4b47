//! OpenAPI: `/openapi/v3` (the index and one document per group-version) and
//! `/openapi/v2`.
//!
//! Built-in group-versions are answered with the vendored, upstream-shaped
//! documents embedded in the binary (see [`crate::openapi`]). Group-versions
//! without one (resources added at runtime, e.g. custom resources) get a
//! skeleton generated from the resource table: the operations and their
//! parameters with `x-kubernetes-group-version-kind` and
//! `x-kubernetes-action`, which is what kubectl and Helm need to detect
//! server-side field validation, and no schemas.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::discovery::{KUBE_VERSION, fnv64};
use crate::api_error::{ApiError, ApiResult};
use crate::openapi::{gv_key, vendored};
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

fn skeleton_document(table: &ResourceTable, group: &str, version: &str) -> Option<Value> {
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
            out.push((
                gv_key(&g.name, &v.version),
                g.name.clone(),
                v.version.clone(),
            ));
        }
    }
    out
}

fn hash_of(bytes: &[u8]) -> String {
    format!("{:016X}", fnv64(bytes))
}

/// The content hash of each vendored v3 document, computed once.
fn vendored_hashes() -> &'static BTreeMap<&'static str, String> {
    static HASHES: OnceLock<BTreeMap<&'static str, String>> = OnceLock::new();
    HASHES.get_or_init(|| {
        vendored::V3_KEYS
            .iter()
            .filter_map(|k| vendored::v3(k).map(|doc| (*k, hash_of(doc))))
            .collect()
    })
}

/// The document of a group-version: the vendored one, or a skeleton.
fn document(
    table: &ResourceTable,
    key: &str,
    group: &str,
    version: &str,
) -> Option<(Cow<'static, [u8]>, String)> {
    if let (Some(doc), Some(hash)) = (vendored::v3(key), vendored_hashes().get(key)) {
        return Some((Cow::Borrowed(doc), hash.clone()));
    }
    let doc = skeleton_document(table, group, version)?;
    let bytes = serde_json::to_vec(&doc).unwrap_or_default();
    let hash = hash_of(&bytes);
    Some((Cow::Owned(bytes), hash))
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

fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag)
}

/// The gnostic protobuf encoding of the v2 document, which client-go asks for.
pub const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum V2Form {
    Json,
    Protobuf,
}

/// The first form `Accept` admits (absent or empty: JSON).
fn v2_form(headers: &HeaderMap) -> Option<V2Form> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(V2Form::Json);
    };
    if accept.trim().is_empty() {
        return Some(V2Form::Json);
    }
    accept.split(',').find_map(|part| {
        let essence = part.split(';').next().unwrap_or("").trim();
        match essence.to_ascii_lowercase().as_str() {
            "application/json" | "application/*" | "*/*" => Some(V2Form::Json),
            e if e == V2_PROTOBUF.to_ascii_lowercase() => Some(V2Form::Protobuf),
            _ => None,
        }
    })
}

/// The protobuf form of the vendored v2 document and its hash, built once.
fn v2_protobuf() -> &'static (Vec<u8>, String) {
    static PROTO: OnceLock<(Vec<u8>, String)> = OnceLock::new();
    PROTO.get_or_init(|| {
        let doc: Value = serde_json::from_slice(vendored::V2).unwrap_or_default();
        let bytes = crate::openapi::gnostic::encode_document(&doc);
        let hash = hash_of(&bytes);
        (bytes, hash)
    })
}

/// `/openapi/v2`: the vendored Swagger 2.0 document, as JSON or in gnostic's
/// protobuf encoding.
fn serve_v2(headers: &HeaderMap) -> ApiResult<Response> {
    let (bytes, hash, content_type) = match v2_form(headers) {
        None => return Err(ApiError::not_acceptable(&["application/json", V2_PROTOBUF])),
        Some(V2Form::Json) => {
            static HASH: OnceLock<String> = OnceLock::new();
            let hash = HASH.get_or_init(|| hash_of(vendored::V2));
            (vendored::V2, hash.as_str(), "application/json")
        }
        Some(V2Form::Protobuf) => {
            let (bytes, hash) = v2_protobuf();
            // Upstream labels it `application/octet-stream`: Go's MIME parser
            // (which client-go runs on Content-Type) rejects the `@` of the
            // requested media type.
            (bytes.as_slice(), hash.as_str(), "application/octet-stream")
        }
    };
    let etag = format!("\"{hash}\"");
    if not_modified(headers, &etag) {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let mut r = json_bytes(bytes.to_vec(), &etag, false);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(r)
}

/// `/openapi/v2`, `/openapi/v3` and `/openapi/v3/{api/v1 | apis/group/version}`;
/// `None` for other paths.
pub fn serve(
    table: &ResourceTable,
    path: &str,
    query_hash: Option<&str>,
    headers: &HeaderMap,
) -> Option<ApiResult<Response>> {
    if path.trim_end_matches('/') == "/openapi/v2" {
        return Some(serve_v2(headers));
    }
    let rest = path.strip_prefix("/openapi/v3")?;
    let rest = rest.trim_matches('/');
    if rest.is_empty() {
        let mut paths = Map::new();
        for (p, g, v) in gv_paths(table) {
            let Some((_, hash)) = document(table, &p, &g, &v) else {
                continue;
            };
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
            );
        }
        let bytes = serde_json::to_vec(&json!({"paths": paths})).unwrap_or_default();
        let etag = format!("\"{}\"", hash_of(&bytes));
        return Some(Ok(json_bytes(bytes, &etag, false)));
    }
    let found = gv_paths(table).into_iter().find(|(p, _, _)| p == rest);
    let Some((p, g, v)) = found else {
        return Some(Err(ApiError::no_route()));
    };
    let (bytes, hash) = document(table, &p, &g, &v)?;
    let etag = format!("\"{hash}\"");
    if not_modified(headers, &etag) {
        return Some(Ok(StatusCode::NOT_MODIFIED.into_response()));
    }
    Some(Ok(json_bytes(
        bytes.into_owned(),
        &etag,
        query_hash == Some(hash.as_str()),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(table: &ResourceTable, path: &str, accept: Option<&str>) -> Response {
        let mut headers = HeaderMap::new();
        if let Some(a) = accept {
            headers.insert(header::ACCEPT, HeaderValue::from_str(a).expect("header"));
        }
        match serve(table, path, None, &headers) {
            Some(Ok(r)) => r,
            Some(Err(e)) => e.into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }

    #[test]
    fn runtime_group_versions_get_a_skeleton() {
        use crate::registry::strategy::Generic;
        use crate::resources::STANDARD_VERBS;
        let table = ResourceTable::with_builtins();
        table.add(ResourceInfo {
            group: "example.com".into(),
            version: "v1".into(),
            kind: "Widget".into(),
            list_kind: "WidgetList".into(),
            plural: "widgets".into(),
            singular: "widget".into(),
            short_names: vec![],
            categories: vec![],
            namespaced: true,
            verbs: STANDARD_VERBS.to_vec(),
            subresources: vec![],
            create: Default::default(),
            initial_status: None,
            storage_prefix: "/registry/example.com/widgets".into(),
            codec: None,
            conversion: None,
            strategy: std::sync::Arc::new(Generic),
        });
        let root = get(&table, "/openapi/v3", None);
        let body = futures::executor::block_on(axum::body::to_bytes(root.into_body(), usize::MAX))
            .expect("body");
        let root: Value = serde_json::from_slice(&body).expect("json");
        assert!(root["paths"]["apis/example.com/v1"]["serverRelativeURL"].is_string());
        assert!(root["paths"]["apis/apps/v1"]["serverRelativeURL"].is_string());
        let doc = get(&table, "/openapi/v3/apis/example.com/v1", None);
        let body = futures::executor::block_on(axum::body::to_bytes(doc.into_body(), usize::MAX))
            .expect("body");
        let doc: Value = serde_json::from_slice(&body).expect("json");
        let patch =
            &doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Widget");
        assert!(
            patch["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "fieldValidation"))
        );
    }

    #[test]
    fn builtin_group_versions_are_vendored() {
        let table = ResourceTable::with_builtins();
        for (key, _, _) in gv_paths(&table) {
            assert!(
                vendored::v3(&key).is_some(),
                "{key} has no vendored document"
            );
        }
        assert_eq!(
            get(&table, "/openapi/v3/apis/apps/v1", None).status(),
            StatusCode::OK
        );
        assert_eq!(get(&table, "/openapi/v2", None).status(), StatusCode::OK);
        let proto = get(&table, "/openapi/v2", Some(V2_PROTOBUF));
        assert_eq!(proto.status(), StatusCode::OK);
        assert_eq!(
            proto
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("application/octet-stream")
        );
        assert_eq!(
            get(&table, "/openapi/v2", Some("application/yaml")).status(),
            StatusCode::NOT_ACCEPTABLE
        );
        assert_eq!(
            get(
                &table,
                "/openapi/v2",
                Some(&format!("{V2_PROTOBUF}, application/json"))
            )
            .status(),
            StatusCode::OK
        );
    }
}
