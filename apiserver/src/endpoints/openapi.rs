//! OpenAPI: `/openapi/v3` (the index and one document per group-version) and
//! `/openapi/v2`.
//!
//! Built-in group-versions are answered with the vendored, upstream-shaped
//! documents embedded in the binary (see [`crate::openapi`]). Group-versions
//! without one (custom resources) get a document generated from the
//! resource table ([`crate::openapi::custom`]), cached until what they
//! publish changes; the v2 document is the vendored one with theirs merged
//! in. Hashes (the v3 index's `?hash=` and every `ETag`) follow the content.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use parking_lot::Mutex;

use super::discovery::fnv64;
use crate::api_error::{ApiError, ApiResult};
use crate::openapi::{custom, gv_key, vendored};
use crate::resources::{GroupVersion, ResourceTable};

/// A generated document and its content hash.
struct Built {
    bytes: Vec<u8>,
    hash: String,
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

/// A generated document with the publishing hash of what it was built from.
type Cached<T> = Mutex<Option<(u64, Arc<T>)>>;

/// Generated v3 documents by index key, with the publishing hash of the
/// group-version they were built from: a CRD change rebuilds only the
/// documents of its group-versions.
type V3Cache = Mutex<HashMap<String, (u64, Arc<Built>)>>;

fn v3_cache() -> &'static V3Cache {
    static CACHE: OnceLock<V3Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The generated v3 document of a group-version the binary has no vendored
/// document for (custom resources).
fn generated_v3(key: &str, group: &str, gv: &GroupVersion) -> Arc<Built> {
    let input = custom::gv_hash(gv);
    let mut cache = v3_cache().lock();
    if let Some((h, built)) = cache.get(key)
        && *h == input
    {
        return built.clone();
    }
    let doc = custom::v3_document(group, gv);
    let bytes = serde_json::to_vec(&doc).unwrap_or_default();
    let built = Arc::new(Built {
        hash: hash_of(&bytes),
        bytes,
    });
    cache.insert(key.to_string(), (input, built.clone()));
    built
}

/// A group-version's v3 document.
enum Document {
    Vendored(&'static [u8], &'static str),
    Generated(Arc<Built>),
}

impl Document {
    fn bytes(&self) -> &[u8] {
        match self {
            Document::Vendored(b, _) => b,
            Document::Generated(built) => &built.bytes,
        }
    }

    fn hash(&self) -> &str {
        match self {
            Document::Vendored(_, h) => h,
            Document::Generated(built) => &built.hash,
        }
    }
}

/// The document of a group-version: the vendored one, or a generated one.
fn document(key: &str, group: &str, gv: &GroupVersion) -> Document {
    if let (Some(doc), Some(hash)) = (vendored::v3(key), vendored_hashes().get(key)) {
        return Document::Vendored(doc, hash);
    }
    Document::Generated(generated_v3(key, group, gv))
}

/// Every group-version of the table with its index key.
fn group_versions(table: &ResourceTable) -> Vec<(String, String, GroupVersion)> {
    let mut out = Vec::new();
    for g in table.groups() {
        for v in &g.versions {
            out.push((gv_key(&g.name, &v.version), g.name.clone(), v.clone()));
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

/// One form of the v2 document: its bytes and content hash.
struct V2Doc {
    json: Built,
    /// The gnostic protobuf form, built on first request.
    proto: OnceLock<Built>,
}

impl V2Doc {
    fn new(json: Vec<u8>) -> V2Doc {
        V2Doc {
            json: Built {
                hash: hash_of(&json),
                bytes: json,
            },
            proto: OnceLock::new(),
        }
    }

    fn proto(&self) -> &Built {
        self.proto.get_or_init(|| {
            let doc: Value = serde_json::from_slice(&self.json.bytes).unwrap_or_default();
            let bytes = crate::openapi::gnostic::encode_document(&doc);
            Built {
                hash: hash_of(&bytes),
                bytes,
            }
        })
    }
}

/// The vendored v2 document, parsed once (the base custom resources are
/// merged into).
fn vendored_v2() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::from_slice(vendored::V2).unwrap_or_default())
}

/// The v2 document of the table: the vendored one, merged with the paths
/// and definitions of every generated group-version. Rebuilt when what
/// they publish changes.
fn v2_document(table: &ResourceTable) -> Arc<V2Doc> {
    static VENDORED: OnceLock<Arc<V2Doc>> = OnceLock::new();
    static MERGED: OnceLock<Cached<V2Doc>> = OnceLock::new();
    let generated: Vec<(String, String, GroupVersion)> = group_versions(table)
        .into_iter()
        .filter(|(key, _, _)| vendored::v3(key).is_none())
        .collect();
    if generated.is_empty() {
        return VENDORED
            .get_or_init(|| Arc::new(V2Doc::new(vendored::V2.to_vec())))
            .clone();
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for (key, _, gv) in &generated {
        key.hash(&mut hasher);
        custom::gv_hash(gv).hash(&mut hasher);
    }
    let input = hasher.finish();
    let mut merged = MERGED.get_or_init(Default::default).lock();
    if let Some((h, doc)) = merged.as_ref()
        && *h == input
    {
        return doc.clone();
    }
    let mut doc = vendored_v2().clone();
    for (_, group, gv) in &generated {
        let (paths, definitions) = custom::v2_additions(group, gv);
        if let Some(Value::Object(all)) = doc.get_mut("paths") {
            all.extend(paths);
        }
        if let Some(Value::Object(all)) = doc.get_mut("definitions") {
            all.extend(definitions);
        }
    }
    let built = Arc::new(V2Doc::new(serde_json::to_vec(&doc).unwrap_or_default()));
    *merged = Some((input, built.clone()));
    built
}

/// `/openapi/v2`: the Swagger 2.0 document, as JSON or in gnostic's
/// protobuf encoding.
fn serve_v2(table: &ResourceTable, headers: &HeaderMap) -> ApiResult<Response> {
    let form = v2_form(headers)
        .ok_or_else(|| ApiError::not_acceptable(&["application/json", V2_PROTOBUF]))?;
    let doc = v2_document(table);
    let (built, content_type) = match form {
        V2Form::Json => (&doc.json, "application/json"),
        // Upstream labels it `application/octet-stream`: Go's MIME parser
        // (which client-go runs on Content-Type) rejects the `@` of the
        // requested media type.
        V2Form::Protobuf => (doc.proto(), "application/octet-stream"),
    };
    let etag = format!("\"{}\"", built.hash);
    if not_modified(headers, &etag) {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let mut r = json_bytes(built.bytes.clone(), &etag, false);
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
        return Some(serve_v2(table, headers));
    }
    let rest = path.strip_prefix("/openapi/v3")?;
    let rest = rest.trim_matches('/');
    let gvs = group_versions(table);
    if rest.is_empty() {
        let mut paths = Map::new();
        for (key, group, gv) in &gvs {
            let hash = document(key, group, gv).hash().to_string();
            paths.insert(
                key.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")}),
            );
        }
        // Forget the documents of group-versions no longer served.
        v3_cache()
            .lock()
            .retain(|k, _| gvs.iter().any(|(key, _, _)| key == k));
        let bytes = serde_json::to_vec(&json!({"paths": paths})).unwrap_or_default();
        let etag = format!("\"{}\"", hash_of(&bytes));
        return Some(Ok(json_bytes(bytes, &etag, false)));
    }
    let Some((key, group, gv)) = gvs.iter().find(|(key, _, _)| key == rest) else {
        return Some(Err(ApiError::no_route()));
    };
    let doc = document(key, group, gv);
    let etag = format!("\"{}\"", doc.hash());
    if not_modified(headers, &etag) {
        return Some(Ok(StatusCode::NOT_MODIFIED.into_response()));
    }
    Some(Ok(json_bytes(
        doc.bytes().to_vec(),
        &etag,
        query_hash == Some(doc.hash()),
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

    fn body_json(r: Response) -> Value {
        let body = futures::executor::block_on(axum::body::to_bytes(r.into_body(), usize::MAX))
            .expect("body");
        serde_json::from_slice(&body).expect("json")
    }

    fn widget_crd(versions: &[&str]) -> Value {
        let versions: Vec<Value> = versions
            .iter()
            .enumerate()
            .map(|(i, v)| {
                json!({"name": v, "served": true, "storage": i == 0,
                    "schema": {"openAPIV3Schema": {"type": "object", "description": "A widget.",
                        "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}})
            })
            .collect();
        json!({"metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                "versions": versions}})
    }

    fn serve_versions(table: &ResourceTable, versions: &[&str]) {
        let crd = widget_crd(versions);
        for v in crd["spec"]["versions"].as_array().expect("versions") {
            table.add(crate::crd::resource::resource_info(&crd, v).expect("info"));
        }
    }

    #[test]
    fn custom_group_versions_are_published_and_follow_changes() {
        let table = ResourceTable::with_builtins();
        let vendored_etag = get(&table, "/openapi/v2", None)
            .headers()
            .get(header::ETAG)
            .cloned();
        serve_versions(&table, &["v1", "v2"]);
        let root = body_json(get(&table, "/openapi/v3", None));
        let url = root["paths"]["apis/example.com/v1"]["serverRelativeURL"]
            .as_str()
            .expect("listed")
            .to_string();
        assert!(root["paths"]["apis/apps/v1"]["serverRelativeURL"].is_string());
        let doc = body_json(get(&table, "/openapi/v3/apis/example.com/v1", None));
        let widget = &doc["components"]["schemas"]["com.example.v1.Widget"];
        assert_eq!(widget["description"], "A widget.");
        assert_eq!(
            widget["x-kubernetes-group-version-kind"][0]["kind"],
            "Widget"
        );
        let patch =
            &doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"];
        assert!(
            patch["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "fieldValidation"))
        );

        let v2 = get(&table, "/openapi/v2", None);
        assert_ne!(v2.headers().get(header::ETAG).cloned(), vendored_etag);
        let v2 = body_json(v2);
        for def in ["com.example.v1.Widget", "com.example.v2.WidgetList"] {
            assert!(v2["definitions"][def].is_object(), "{def} missing");
        }
        assert!(v2["definitions"]["io.k8s.api.core.v1.Pod"].is_object());
        assert!(v2["paths"]["/apis/example.com/v2/namespaces/{namespace}/widgets"].is_object());
        let proto = get(&table, "/openapi/v2", Some(V2_PROTOBUF));
        assert_eq!(proto.status(), StatusCode::OK);

        // A changed schema changes the document and its hash; a version
        // no longer served leaves both documents.
        let mut crd = widget_crd(&["v1"]);
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] =
            json!("A changed widget.");
        table.add(
            crate::crd::resource::resource_info(&crd, &crd["spec"]["versions"][0]).expect("info"),
        );
        table.remove("example.com", "v2", "widgets");
        let root = body_json(get(&table, "/openapi/v3", None));
        let changed = root["paths"]["apis/example.com/v1"]["serverRelativeURL"]
            .as_str()
            .expect("listed");
        assert_ne!(changed, url);
        assert!(root["paths"]["apis/example.com/v2"].is_null());
        let v2 = body_json(get(&table, "/openapi/v2", None));
        assert_eq!(
            v2["definitions"]["com.example.v1.Widget"]["description"],
            "A changed widget."
        );
        assert!(v2["definitions"]["com.example.v2.Widget"].is_null());
    }

    #[test]
    fn builtin_group_versions_are_vendored() {
        let table = ResourceTable::with_builtins();
        for (key, _, _) in group_versions(&table) {
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
