//! The filter chain every request passes, in upstream's order: authenticate,
//! impersonate, authorize, then the handler; auditing wraps it all, recording
//! what the policy selects once the response is known.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{Admitted, App, filters, negotiate, parse_query, query, request_info};
use crate::api_error::ApiError;
use crate::audit::{Decision, Level, Record};
use crate::serving::{ClientCertificate, RemoteAddr};

/// Subresources whose request bodies are streams, never read whole.
const STREAMED: &[&str] = &["proxy", "exec", "attach", "portforward"];

/// Limit of a response body kept for a `RequestResponse` audit event.
const AUDITED_RESPONSE_MAX: usize = 3 * 1024 * 1024;

pub(super) async fn serve(State(app): State<Arc<App>>, req: Request) -> Response {
    let received = chrono::Utc::now();
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let query = parse_query(parts.uri.query());
    let certificate = parts.extensions.get::<ClientCertificate>().cloned();
    let mut refusal: Option<ApiError> = None;
    let authenticated =
        match filters::authenticate(&app, &parts.headers, certificate.as_ref()).await {
            Ok(user) => user,
            Err(e) => {
                refusal = Some(e);
                filters::UserInfo::default()
            }
        };
    let impersonated = match &refusal {
        Some(_) => None,
        None => filters::impersonate(&app, &authenticated, &parts.headers).unwrap_or_else(|e| {
            refusal = Some(e);
            None
        }),
    };
    // Who the request acts as, and who is behind it when that is someone else.
    let (mut user, impersonator) = match impersonated {
        Some(user) => (user, Some(authenticated)),
        None => (authenticated, None),
    };
    let watch_param = query::flag(query.get("watch").map(String::as_str));
    let parsed = request_info::parse(&method, &path, watch_param);
    let action = filters::action(&method, &path, parsed.as_ref());
    // Flow control comes before authorization, as upstream orders its filters;
    // the slot is held until the response is ready.
    let mut _slot = None;
    if refusal.is_none() {
        match app.inflight.admit(&user, &action) {
            Ok(slot) => _slot = slot,
            Err(e) => refusal = Some(e),
        }
    }
    if refusal.is_none()
        && let Err(e) = filters::authorize(&app, &user, &action)
    {
        refusal = Some(e);
    }
    let decision: Option<Decision> = app
        .audit
        .as_ref()
        .map(|a| a.decide(&user, &action))
        .filter(|d| d.level != Level::None);
    let streamed = parsed
        .as_ref()
        .and_then(|p| p.subresource.as_deref())
        .is_some_and(|s| STREAMED.contains(&s));
    let mut request_object = None;
    let body = if refusal.is_none()
        && decision.as_ref().is_some_and(|d| d.level >= Level::Request)
        && matches!(method, Method::POST | Method::PUT | Method::PATCH)
        && !streamed
    {
        match axum::body::to_bytes(body, negotiate::MAX_BODY).await {
            Ok(bytes) => {
                request_object = object_of(
                    parts
                        .headers
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok()),
                    &bytes,
                );
                Body::from(bytes)
            }
            Err(_) => {
                refusal = Some(ApiError::too_large(negotiate::MAX_BODY));
                Body::empty()
            }
        }
    } else {
        body
    };
    // What an audit event needs of the request, which the handler consumes.
    let facts = decision.as_ref().map(|_| RequestFacts {
        api_version: parsed
            .as_ref()
            .map(|p| p.version.clone())
            .unwrap_or_default(),
        request_uri: parts
            .uri
            .path_and_query()
            .map_or_else(|| path.clone(), |p| p.as_str().to_string()),
        user_agent: parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        source_ip: parts
            .extensions
            .get::<RemoteAddr>()
            .map(|a| a.0.ip().to_string()),
    });
    let mut resp = match refusal {
        Some(e) => e.into_response(),
        None => {
            let admitted = Admitted {
                // The audit event still needs the user; otherwise it moves.
                user: if decision.is_some() {
                    user.clone()
                } else {
                    std::mem::take(&mut user)
                },
                parsed,
                query,
                path,
            };
            super::handle(app.clone(), parts, body, admitted).await
        }
    };
    let (Some(auditor), Some(decision), Some(facts)) = (&app.audit, decision, facts) else {
        return resp;
    };
    let audit_id = uuid::Uuid::new_v4().to_string();
    if let Ok(v) = header::HeaderValue::from_str(&audit_id) {
        resp.headers_mut().insert("audit-id", v);
    }
    let code = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let keep_response = (decision.level >= Level::RequestResponse || code >= 400)
        && action.verb() != "watch"
        && !streamed
        && content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/json") || c.starts_with(PROTOBUF));
    let mut response_object = None;
    if keep_response {
        let (head, body) = resp.into_parts();
        match axum::body::to_bytes(body, AUDITED_RESPONSE_MAX).await {
            Ok(bytes) => {
                response_object = object_of(content_type.as_deref(), &bytes);
                resp = Response::from_parts(head, Body::from(bytes));
            }
            Err(_) => {
                resp = ApiError::internal("the response was too large to audit").into_response();
            }
        }
    }
    auditor.record(
        &decision,
        &Record {
            audit_id: &audit_id,
            user: &user,
            impersonator: impersonator.as_ref(),
            action: &action,
            api_version: &facts.api_version,
            request_uri: &facts.request_uri,
            source_ip: facts.source_ip,
            user_agent: facts.user_agent.as_deref(),
            code,
            received,
            request_object,
            response_object,
        },
    );
    resp
}

/// The parts of a request an audit event records.
struct RequestFacts {
    api_version: String,
    request_uri: String,
    user_agent: Option<String>,
    source_ip: Option<String>,
}

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// A request or response body as the JSON object an audit event carries
/// (protobuf bodies decoded, as upstream records the decoded object).
fn object_of(content_type: Option<&str>, bytes: &[u8]) -> Option<Value> {
    if content_type.is_some_and(|c| c.starts_with(PROTOBUF)) {
        return crate::protobuf::decode(bytes).ok();
    }
    serde_json::from_slice(bytes).ok()
}
