//! Discovery documents (legacy per-group and aggregated `apidiscovery.k8s.io/v2`),
//! `/version` and the health endpoints, all generated from the resource table.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::negotiate::{self, Output};
use crate::api_error::{ApiError, ApiResult};
use crate::resources::{Group, GroupVersion, ResourceInfo, ResourceTable};

pub const KUBE_VERSION: &str = "v1.34.0";

fn gv_string(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

fn group_json(g: &Group) -> Value {
    let versions: Vec<Value> = g
        .versions
        .iter()
        .map(|v| json!({"groupVersion": gv_string(&g.name, &v.version), "version": v.version}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or_else(|| json!({}));
    json!({"name": g.name, "versions": versions, "preferredVersion": preferred})
}

fn resource_entries(gv: &GroupVersion) -> Vec<Value> {
    let mut out = Vec::new();
    for r in &gv.resources {
        let mut e = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
        });
        if !r.short_names.is_empty() {
            e["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            e["categories"] = json!(r.categories);
        }
        // Only stored resources have a storage version: not create-only
        // reviews and bindings, nor the computed componentstatuses.
        if r.verbs.contains(&"list") && r.plural != "componentstatuses" {
            e["storageVersionHash"] = json!(storage_version_hash(&r.group, &r.version, &r.kind));
        }
        out.push(e);
        for s in &r.subresources {
            let mut e = json!({"name": format!("{}/{}", r.plural, s.name), "singularName": "", "namespaced": r.namespaced});
            if !s.group.is_empty() || !s.version.is_empty() {
                e["group"] = json!(s.group);
                e["version"] = json!(s.version);
            }
            e["kind"] = json!(s.kind);
            e["verbs"] = json!(s.verbs);
            out.push(e);
        }
    }
    out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    out
}

/// What lets clients notice that a resource's storage version changed:
/// the first 8 bytes of SHA-256 over `group/version/kind`, in base64.
/// Every built-in resource is stored in the version it is served in.
fn storage_version_hash(group: &str, version: &str, kind: &str) -> String {
    use base64::Engine;
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{group}/{version}/{kind}").as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(&digest.as_ref()[..8])
}

/// A resource in aggregated discovery. Its `responseKind` names group and
/// version only where they differ from the resource's own (a `scale`
/// subresource answers `autoscaling/v1`), as upstream's conversion from
/// `APIResource` leaves them empty otherwise.
fn discovery_resource(r: &ResourceInfo) -> Value {
    let mut e = json!({
        "resource": r.plural,
        "responseKind": {"group": "", "version": "", "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        e["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        e["categories"] = json!(r.categories);
    }
    if !r.subresources.is_empty() {
        let subs: Vec<Value> = r
            .subresources
            .iter()
            .map(|s| {
                let (g, v) = if s.version.is_empty() { ("", "") } else { (s.group.as_str(), s.version.as_str()) };
                json!({"subresource": s.name, "responseKind": {"group": g, "version": v, "kind": s.kind}, "verbs": s.verbs})
            })
            .collect();
        e["subresources"] = json!(subs);
    }
    e
}

fn aggregated(groups: &[Group]) -> Value {
    let items: Vec<Value> = groups
        .iter()
        .map(|g| {
            let versions: Vec<Value> = g
                .versions
                .iter()
                .map(|v| {
                    let mut resources: Vec<&std::sync::Arc<ResourceInfo>> =
                        v.resources.iter().collect();
                    resources.sort_by(|a, b| a.plural.cmp(&b.plural));
                    let resources: Vec<Value> = resources
                        .into_iter()
                        .map(|r| discovery_resource(r))
                        .collect();
                    json!({"version": v.version, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let mut meta = json!({"creationTimestamp": null});
            if !g.name.is_empty() {
                meta["name"] = json!(g.name);
            }
            json!({"metadata": meta, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

const DISCOVERY_TYPE: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn respond_aggregated(headers: &HeaderMap, doc: &Value) -> Response {
    let bytes = serde_json::to_vec(doc).unwrap_or_default();
    let etag = format!("\"{:016X}\"", fnv64(&bytes));
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&etag) {
            r.headers_mut().insert(header::ETAG, v);
        }
        return r;
    }
    let mut r = (StatusCode::OK, bytes).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(DISCOVERY_TYPE),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

pub fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn json_response(output: Output, v: &Value) -> Response {
    super::render::body(StatusCode::OK, output, v, &[])
}

/// `/api`, `/apis`, `/apis/{group}`, `/api/v1`, `/apis/{group}/{version}`; `None` if not a discovery path.
pub fn serve(
    table: &ResourceTable,
    path: &str,
    headers: &HeaderMap,
    host: &str,
) -> Option<ApiResult<Response>> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let output = match negotiate::output(headers) {
        Ok(o) => o,
        Err(e) => return Some(Err(e)),
    };
    let groups = table.groups();
    let resp = match parts.as_slice() {
        ["api"] => {
            if output == Output::Discovery {
                let core: Vec<Group> = groups.into_iter().filter(|g| g.name.is_empty()).collect();
                return Some(Ok(respond_aggregated(headers, &aggregated(&core))));
            }
            json_response(
                output,
                &json!({
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
                }),
            )
        }
        ["apis"] => {
            let named: Vec<Group> = groups.into_iter().filter(|g| !g.name.is_empty()).collect();
            if output == Output::Discovery {
                return Some(Ok(respond_aggregated(headers, &aggregated(&named))));
            }
            let list: Vec<Value> = named.iter().map(group_json).collect();
            json_response(
                output,
                &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": list}),
            )
        }
        ["apis", g] => match table.group(g) {
            Some(group) => {
                let mut v = group_json(&group);
                v["kind"] = json!("APIGroup");
                v["apiVersion"] = json!("v1");
                json_response(output, &v)
            }
            None => return Some(Err(ApiError::no_route())),
        },
        ["api", v] | ["apis", _, v] => {
            let group = if parts[0] == "api" { "" } else { parts[1] };
            match table.group_version(group, v) {
                Some(gv) => json_response(
                    output,
                    &json!({
                        "kind": "APIResourceList",
                        "apiVersion": "v1",
                        "groupVersion": gv_string(group, v),
                        "resources": resource_entries(&gv),
                    }),
                ),
                None => return Some(Err(ApiError::no_route())),
            }
        }
        _ => return None,
    };
    Some(Ok(resp))
}

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "34",
        "emulationMajor": "1",
        "emulationMinor": "34",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "33",
        "gitVersion": KUBE_VERSION,
        "gitCommit": env!("CARGO_PKG_VERSION"),
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH }),
    })
}

const CHECKS: &[&str] = &["ping", "log", "etcd", "poststarthook/start-apiserver"];

/// `/healthz`, `/livez`, `/readyz` and their per-check paths.
pub fn health(path: &str, verbose: bool) -> Option<Response> {
    let mut parts = path.trim_matches('/').splitn(2, '/');
    let endpoint = parts.next()?;
    if !matches!(endpoint, "healthz" | "livez" | "readyz") {
        return None;
    }
    let text = match parts.next() {
        Some(check) if CHECKS.contains(&check) => "ok".to_string(),
        Some(_) => return Some((StatusCode::NOT_FOUND, "404 page not found\n").into_response()),
        None if verbose => {
            let mut s: String = CHECKS.iter().map(|c| format!("[+]{c} ok\n")).collect();
            s.push_str(&format!("{endpoint} check passed\n"));
            s
        }
        None => "ok".to_string(),
    };
    let mut r = (StatusCode::OK, text).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_version_hash_is_upstreams() {
        // As the reference kube-apiserver v1.34 reports for configmaps.
        assert_eq!(storage_version_hash("", "v1", "ConfigMap"), "qFsyl6wFWjQ=");
    }
}
