//! The HTTP layer: one entry point that routes every request. Resource routes are
//! not registered per kind: a path is parsed into a [`request_info::RequestInfo`]
//! and looked up in the resource table, so resources added at runtime are served
//! by the same handlers.

mod chain;
pub mod decode;
pub mod discovery;
pub mod filters;
pub mod handlers;
pub mod inflight;
pub mod negotiate;
pub mod openapi;
pub mod query;
pub mod render;
pub mod request_info;
mod stored_list;
pub mod websocket;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::api_error::ApiError;
use crate::registry::Store;
use crate::resources::ResourceTable;

/// Shared state of the HTTP layer.
pub struct App {
    pub store: Store,
    pub table: ResourceTable,
    /// Token signing key and cluster CA.
    pub keys: Arc<crate::auth::Keys>,
    pub authn: filters::Authentication,
    /// The RBAC objects, for the authorizer.
    pub policy: Arc<crate::registry::rbac_policy::PolicyIndex>,
    /// The audit policy and log, when auditing is on.
    pub audit: Option<crate::audit::Auditor>,
    /// Slots for requests in flight.
    pub inflight: inflight::InflightLimits,
}

#[cfg(test)]
impl App {
    /// An app whose every request without credentials is a `system:masters`
    /// admin (tests of the HTTP layer, which have no TLS connection).
    pub fn for_tests(store: Store, table: ResourceTable) -> App {
        App {
            store,
            table,
            keys: Arc::new(crate::auth::Keys::ephemeral().expect("keys")),
            authn: filters::Authentication::everyone_is(crate::auth::UserInfo {
                name: "admin".into(),
                groups: vec![crate::auth::MASTERS.into()],
                ..Default::default()
            }),
            policy: Default::default(),
            audit: None,
            inflight: Default::default(),
        }
    }
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .fallback(chain::serve)
        .with_state(app)
        // Errors are encoded as the client's Accept asks (protobuf, YAML).
        .layer(axum::middleware::from_fn(render::negotiate_errors))
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// What the filter chain learnt about a request before its handler runs.
pub(crate) struct Admitted {
    /// Who the request acts as (after impersonation).
    pub user: filters::UserInfo,
    pub parsed: Option<request_info::RequestInfo>,
    pub query: HashMap<String, String>,
    pub path: String,
}

async fn handle(
    app: Arc<App>,
    mut parts: axum::http::request::Parts,
    body: Body,
    admitted: Admitted,
) -> Response {
    let Admitted {
        user,
        parsed,
        query,
        path,
    } = admitted;
    let method = parts.method.clone();
    if let Some(resp) = discovery::health(&path, query.contains_key("verbose")) {
        return resp;
    }
    if path == "/version" || path == "/version/" {
        return render::body(
            StatusCode::OK,
            negotiate::Output::Json,
            &discovery::version(),
            &[],
        );
    }
    if method == Method::GET
        && let Some((ctype, doc)) = crate::registry::service_account_token::discovery_document(
            &app.keys.service_account,
            &path,
        )
    {
        let mut resp = render::body(StatusCode::OK, negotiate::Output::Json, &doc, &[]);
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(ctype),
        );
        return resp;
    }
    if let Some(r) = openapi::serve(
        &app.table,
        &path,
        query.get("hash").map(String::as_str),
        &parts.headers,
    ) {
        return r.unwrap_or_else(IntoResponse::into_response);
    }
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    if method == Method::GET
        && let Some(r) = discovery::serve(&app.table, &path, &parts.headers, &host)
    {
        return r.unwrap_or_else(IntoResponse::into_response);
    }
    let Some(info) = parsed else {
        return ApiError::no_route().into_response();
    };
    let Some(resource) = app.table.get(&info.group, &info.version, &info.resource) else {
        return ApiError::no_route().into_response();
    };
    if info.namespace.is_some() && !resource.namespaced {
        return ApiError::no_route().into_response();
    }
    let span = tracing::debug_span!("request", verb = info.verb, resource = %resource.qualified(), namespace = ?info.namespace, name = ?info.name);
    if let Some(sub) = info
        .subresource
        .as_deref()
        .and_then(|s| resource.subresource(s))
        && let Some(connect) = sub.connect
    {
        if !sub.verbs.contains(&info.verb) {
            return ApiError::method_not_allowed().into_response();
        }
        return crate::proxy::serve(&app, &info, connect, parts, body)
            .instrument(span)
            .await
            .unwrap_or_else(IntoResponse::into_response);
    }
    if info.verb == "watch" && websocket::is_upgrade(&parts.headers) {
        let ws =
            match axum::extract::ws::WebSocketUpgrade::from_request_parts(&mut parts, &app).await {
                Ok(ws) => ws,
                Err(rejection) => return rejection.into_response(),
            };
        return websocket::watch(app.clone(), info, resource, query, parts.headers, ws)
            .instrument(span)
            .await;
    }
    let body = match axum::body::to_bytes(body, negotiate::MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return ApiError::too_large(negotiate::MAX_BODY).into_response(),
    };
    let call = handlers::Call {
        app: &app,
        req: &info,
        info: resource,
        query: &query,
        headers: &parts.headers,
        user: &user,
        body,
    };
    let mut resp = match handlers::dispatch(call).instrument(span).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if method == Method::HEAD {
        *resp.body_mut() = Body::empty();
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategy::Generic;
    use crate::resources::{ResourceInfo, STANDARD_VERBS};
    use crate::storage::embedded::EmbeddedStore;
    use axum::extract::Request;
    use tower::ServiceExt;

    /// A resource added to the table at runtime is served by the same handlers,
    /// and appears in discovery, without any route being registered for it.
    #[tokio::test]
    async fn resources_added_at_runtime_are_served() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Arc::new(EmbeddedStore::open(dir.path()).expect("store"));
        let table = ResourceTable::with_builtins();
        let store = Store::new(storage, table.clone());
        crate::server::bootstrap(&store, &table, "127.0.0.1:6443".parse().expect("addr"))
            .await
            .expect("bootstrap");
        let app = Arc::new(App::for_tests(store, table.clone()));
        table.add(ResourceInfo {
            group: "example.com".into(),
            version: "v1".into(),
            kind: "Widget".into(),
            list_kind: "WidgetList".into(),
            plural: "widgets".into(),
            singular: "widget".into(),
            short_names: vec!["wd".into()],
            categories: vec![],
            namespaced: true,
            verbs: STANDARD_VERBS.to_vec(),
            subresources: vec![],
            create: Default::default(),
            initial_status: None,
            storage_prefix: "/registry/example.com/widgets".into(),
            codec: None,
            conversion: None,
            strategy: Arc::new(Generic),
        });
        let body = r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1"},"spec":{"size":3}}"#;
        let req = Request::post("/apis/example.com/v1/namespaces/default/widgets")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("request");
        let resp = router(app.clone()).oneshot(req).await.expect("response");
        assert_eq!(resp.status(), StatusCode::CREATED);
        let req = Request::get("/apis/example.com/v1/namespaces/default/widgets/w1")
            .body(Body::empty())
            .expect("request");
        let resp = router(app.clone()).oneshot(req).await.expect("response");
        assert_eq!(resp.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(
            v["spec"]["size"], 3,
            "unknown-schema objects are kept as sent"
        );
        let req = Request::get("/apis/example.com/v1")
            .body(Body::empty())
            .expect("request");
        let resp = router(app.clone()).oneshot(req).await.expect("response");
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(v["resources"][0]["shortNames"], serde_json::json!(["wd"]));
        table.remove("example.com", "v1", "widgets");
        let req = Request::get("/apis/example.com/v1/namespaces/default/widgets/w1")
            .body(Body::empty())
            .expect("request");
        assert_eq!(
            router(app).oneshot(req).await.expect("response").status(),
            StatusCode::NOT_FOUND
        );
    }
}
