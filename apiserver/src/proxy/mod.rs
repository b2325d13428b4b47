//! Connect subresources: requests the API server forwards instead of
//! answering (upstream's `rest.Connecter`s). `pods/log`, `exec`, `attach`
//! and `portforward` go to the kubelet of the pod's node; `pods/proxy` to
//! the pod's IP; `nodes/proxy` to the node; `services/proxy` to one of the
//! service's endpoints.
//!
//! The kubelet is dialled over plain HTTP until the API server and kubelet
//! speak TLS to each other.

pub mod forward;
pub mod location;
pub mod log_options;

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http_body_util::BodyExt;

use crate::api_error::{ApiError, ApiResult};
use crate::endpoints::App;
use crate::endpoints::query::flag;
use crate::endpoints::request_info::RequestInfo;
use crate::endpoints::websocket;
use crate::resources::Connect;
use forward::{ForwardError, Target};
use log_options::LogOptions;

/// The longest kubelet error body relayed into a `Status` message.
const MAX_ERROR_BODY: usize = 64 * 1024;

pub async fn serve(
    app: &App,
    req: &RequestInfo,
    connect: Connect,
    parts: Parts,
    body: Body,
) -> ApiResult<Response> {
    let ns = req.namespace.as_deref();
    let name = req.name.as_deref().unwrap_or("");
    let query: HashMap<String, String> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    match connect {
        Connect::PodLog => pod_log(app, ns.unwrap_or(""), name, &query, parts).await,
        Connect::PodExec | Connect::PodAttach => {
            let pod = location::object(app, "pods", ns, name).await?;
            let container = location::container(&pod, query.get("container").map(String::as_str))?;
            if !["stdin", "stdout", "stderr"]
                .iter()
                .any(|k| flag(query.get(*k).map(String::as_str)))
            {
                return Err(ApiError::bad_request(
                    "you must specify at least 1 of stdin, stdout, stderr",
                ));
            }
            let verb = if connect == Connect::PodExec {
                "exec"
            } else {
                "attach"
            };
            let path = format!("/{verb}/{}/{name}/{container}", ns.unwrap_or(""));
            let authority = kubelet_of(app, &pod).await?;
            let target = Target::new(
                authority,
                &path,
                Some(&without_container(parts.uri.query())),
            );
            relay(forward::upgrade_aware(&target, parts, body).await)
        }
        Connect::PodPortForward => {
            let pod = location::object(app, "pods", ns, name).await?;
            let authority = kubelet_of(app, &pod).await?;
            let path = format!("/portForward/{}/{name}", ns.unwrap_or(""));
            let target = Target::new(authority, &path, parts.uri.query());
            relay(forward::upgrade_aware(&target, parts, body).await)
        }
        Connect::PodProxy => {
            let id = location::split_proxy_name(name)?;
            let pod = location::object(app, "pods", ns, id.name).await?;
            let authority = location::pod_endpoint(&pod, id.port)?;
            proxy_http(authority, name, parts, body).await
        }
        Connect::NodeProxy => {
            let id = location::split_proxy_name(name)?;
            let (host, kubelet_port) = location::kubelet(app, id.name).await?;
            let authority = match id.port {
                "" => location::authority(&host, kubelet_port),
                port => location::authority(&host, port),
            };
            proxy_http(authority, name, parts, body).await
        }
        Connect::ServiceProxy => {
            let id = location::split_proxy_name(name)?;
            let authority = location::service_endpoint(app, ns.unwrap_or(""), &id).await?;
            proxy_http(authority, name, parts, body).await
        }
    }
}

/// The kubelet serving a pod's streams; a pod not yet bound has none.
async fn kubelet_of(app: &App, pod: &serde_json::Value) -> ApiResult<String> {
    let node = location::node_of(pod).ok_or_else(|| {
        ApiError::bad_request(format!(
            "pod {} does not have a host assigned",
            location::pod_name(pod)
        ))
    })?;
    let (host, port) = location::kubelet(app, node).await?;
    Ok(location::authority(&host, port))
}

/// `pods/log`: the kubelet's log stream, relayed as `text/plain` (or as
/// WebSocket frames when the client upgrades). A pod bound to no node has
/// no log yet: an empty body, as upstream answers.
async fn pod_log(
    app: &App,
    ns: &str,
    name: &str,
    query: &HashMap<String, String>,
    mut parts: Parts,
) -> ApiResult<Response> {
    let opts = LogOptions::parse(query, name)?;
    let pod = location::object(app, "pods", Some(ns), name).await?;
    let container = location::container(&pod, opts.container.as_deref())?;
    let Some(node) = location::node_of(&pod) else {
        return Ok(text_response(Body::empty()));
    };
    let (host, port) = location::kubelet(app, node).await?;
    let target = Target::new(
        location::authority(&host, port),
        &format!("/containerLogs/{ns}/{name}/{container}"),
        Some(&opts.kubelet_query()),
    );
    let resp = forward::request(
        &target,
        axum::http::Method::GET,
        &HeaderMap::new(),
        Body::empty(),
    )
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(kubelet_error(resp.status(), resp.into_body()).await);
    }
    let chunks = resp
        .into_body()
        .into_data_stream()
        .take_while(|r| std::future::ready(r.is_ok()))
        .filter_map(|r| std::future::ready(r.ok()))
        .boxed();
    if websocket::is_upgrade(&parts.headers) {
        let ws = WebSocketUpgrade::from_request_parts(&mut parts, &())
            .await
            .map_err(|r| ApiError::bad_request(r.body_text()))?;
        return Ok(websocket::stream_bytes(ws, &parts.headers, chunks));
    }
    Ok(text_response(Body::from_stream(
        chunks.map(Ok::<_, std::convert::Infallible>),
    )))
}

fn text_response(body: Body) -> Response {
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

/// A kubelet's refusal as a `Status`, its body as the message (upstream's
/// generic response checker).
async fn kubelet_error(status: StatusCode, body: hyper::body::Incoming) -> ApiError {
    let limited = http_body_util::Limited::new(body, MAX_ERROR_BODY);
    let text = match limited.collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).trim().to_string(),
        Err(_) => String::new(),
    };
    let reason = match status.as_u16() {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    };
    let message = if text.is_empty() {
        "the server rejected our request for an unknown reason".to_string()
    } else {
        text
    };
    ApiError::new(status.as_u16(), reason, message)
}

/// HTTP to a backend, with the path after `/proxy` and the client's query.
async fn proxy_http(authority: String, id: &str, parts: Parts, body: Body) -> ApiResult<Response> {
    let rest = path_after_proxy(parts.uri.path(), id);
    let target = Target::new(authority, &rest, parts.uri.query());
    relay(forward::upgrade_aware(&target, parts, body).await)
}

fn relay(result: Result<Response<Body>, ForwardError>) -> ApiResult<Response> {
    result
        .map(IntoResponse::into_response)
        .map_err(|e| ApiError::unavailable(format!("error trying to reach service: {e}")))
}

/// The path the backend sees: what follows `{id}/proxy` in the request path
/// (with its trailing slash), or `/`.
fn path_after_proxy(path: &str, id: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let rest = segments
        .windows(2)
        .position(|w| w[0] == id && w[1] == "proxy")
        .map(|i| segments[i + 2..].join("/"))
        .unwrap_or_default();
    format!("/{rest}")
}

/// The exec or attach query for the kubelet: the container is in its path.
fn without_container(query: Option<&str>) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .filter(|(k, _)| k != "container"),
        )
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_paths_keep_what_follows_proxy() {
        let p = "/api/v1/namespaces/ns/pods/web:80/proxy/a/b/";
        assert_eq!(path_after_proxy(p, "web:80"), "/a/b/");
        assert_eq!(path_after_proxy("/api/v1/nodes/n1/proxy", "n1"), "/");
        assert_eq!(path_after_proxy("/api/v1/nodes/n1/proxy/", "n1"), "/");
        assert_eq!(
            path_after_proxy("/api/v1/nodes/n1/proxy/logs/", "n1"),
            "/logs/"
        );
    }

    #[test]
    fn exec_queries_keep_repeated_commands_and_drop_the_container() {
        let q = "container=c&command=sh&command=-c&command=echo+hi&stdout=true";
        assert_eq!(
            without_container(Some(q)),
            "command=sh&command=-c&command=echo+hi&stdout=true"
        );
    }
}
