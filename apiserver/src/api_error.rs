//! The wire error: a `metav1.Status` with upstream's code, reason, message and
//! details. Every failure a client sees is built here, and storage errors are
//! translated to API errors in exactly one place ([`ApiError::from_storage`]).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::resources::ResourceInfo;
use crate::storage::StorageError;

/// One field-level validation failure (`field.Error` upstream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub kind: FieldErrorKind,
    /// JSON path, e.g. `metadata.name` or `spec.containers[0].image`.
    pub field: String,
    /// The offending value, already rendered (strings quoted), if any.
    pub value: Option<String>,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    Required,
    Invalid,
    Duplicate,
    Forbidden,
    NotSupported,
    TooLong,
    TooMany,
}

impl FieldErrorKind {
    fn reason(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::TooMany => "FieldValueTooMany",
        }
    }
    fn phrase(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Invalid => "Invalid value",
            FieldErrorKind::Duplicate => "Duplicate value",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::TooLong => "Too long",
            FieldErrorKind::TooMany => "Too many",
        }
    }
}

impl FieldError {
    pub fn new(
        kind: FieldErrorKind,
        field: impl Into<String>,
        value: Option<String>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            kind,
            field: field.into(),
            value,
            detail: detail.into(),
        }
    }
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError::new(FieldErrorKind::Required, field, None, detail)
    }
    pub fn invalid(field: impl Into<String>, value: &str, detail: impl Into<String>) -> Self {
        FieldError::new(
            FieldErrorKind::Invalid,
            field,
            Some(format!("{value:?}")),
            detail,
        )
    }
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError::new(FieldErrorKind::Forbidden, field, None, detail)
    }

    /// The error without its field, as in a cause's `message`.
    pub fn body(&self) -> String {
        let mut s = self.kind.phrase().to_string();
        if let Some(v) = &self.value {
            s.push_str(": ");
            s.push_str(v);
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// An API error, rendered as a `Status` object.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Box<Value>>,
    /// `metadata.continue` of the Status (only on an expired continue token).
    pub continue_token: Option<Box<str>>,
}

pub type ApiResult<T> = Result<T, ApiError>;

fn details(info: &ResourceInfo, name: &str) -> Value {
    let mut d = json!({ "name": name });
    if !info.group.is_empty() {
        d["group"] = json!(info.group);
    }
    d["kind"] = json!(info.plural);
    d
}

impl ApiError {
    /// 429 from flow control: come back in `seconds` (also as `Retry-After`).
    pub fn too_many_requests(seconds: i64) -> Self {
        ApiError::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        )
        .with_details(json!({"retryAfterSeconds": seconds}))
    }

    /// 401: the credentials are missing or not valid (upstream says no more).
    pub fn unauthorized() -> Self {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            continue_token: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    pub fn not_found(info: &ResourceInfo, name: &str) -> Self {
        ApiError::new(
            404,
            "NotFound",
            format!("{} {:?} not found", info.qualified(), name),
        )
        .with_details(details(info, name))
    }

    /// 404 for a URL naming no known resource or group.
    pub fn no_route() -> Self {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    pub fn namespace_not_found(ns: &str) -> Self {
        ApiError::new(404, "NotFound", format!("namespaces {ns:?} not found"))
            .with_details(json!({"name": ns, "kind": "namespaces"}))
    }

    pub fn namespace_terminating(info: &ResourceInfo, name: &str, ns: &str) -> Self {
        let mut d = details(info, name);
        d["causes"] = json!([{
            "reason": "NamespaceTerminating",
            "message": format!("namespace {ns} is being terminated"),
            "field": "metadata.namespace",
        }]);
        ApiError::new(
            403,
            "Forbidden",
            format!(
                "{} {:?} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                info.qualified(),
                name
            ),
        )
        .with_details(d)
    }

    pub fn already_exists(info: &ResourceInfo, name: &str) -> Self {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} {:?} already exists", info.qualified(), name),
        )
        .with_details(details(info, name))
    }

    pub fn conflict(info: &ResourceInfo, name: &str, why: &str) -> Self {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {:?}: {why}",
                info.qualified(),
                name
            ),
        )
        .with_details(details(info, name))
    }

    pub fn stale(info: &ResourceInfo, name: &str) -> Self {
        ApiError::conflict(
            info,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// An invalid query parameter of a request, as a field error of its
    /// options kind (`CreateOptions`, `PatchOptions`...).
    pub fn invalid_options(kind: &str, error: &FieldError) -> Self {
        let cause =
            json!({"reason": error.kind.reason(), "message": error.body(), "field": error.field});
        ApiError::new(
            422,
            "Invalid",
            format!("{kind}.meta.k8s.io \"\" is invalid: {error}"),
        )
        .with_details(json!({"group": "meta.k8s.io", "kind": kind, "causes": [cause]}))
    }

    pub fn invalid(info: &ResourceInfo, name: &str, errors: &[FieldError]) -> Self {
        ApiError::invalid_kind(&info.kind, &info.group, name, errors)
    }

    /// An Invalid error about an object of `kind` in `group` that need not be
    /// a resource (e.g. the `PodLogOptions` of a log request).
    pub fn invalid_kind(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> Self {
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({"reason": e.kind.reason(), "message": e.body(), "field": e.field}))
            .collect();
        let list = if errors.len() == 1 {
            errors[0].to_string()
        } else {
            format!(
                "[{}]",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        // An object without a name (a create that gave none) has no name in
        // the details either.
        let mut d = if name.is_empty() {
            json!({})
        } else {
            json!({ "name": name })
        };
        if !group.is_empty() {
            d["group"] = json!(group);
        }
        d["kind"] = json!(kind);
        d["causes"] = json!(causes);
        // Upstream names the qualified kind (`Deployment.apps`), where
        // NotFound and AlreadyExists name the qualified resource.
        let kind = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        ApiError::new(
            422,
            "Invalid",
            format!("{kind} {name:?} is invalid: {list}"),
        )
        .with_details(d)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn method_not_allowed() -> Self {
        ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .with_details(json!({}))
    }

    pub fn gone(message: impl Into<String>) -> Self {
        ApiError::new(410, "Expired", message)
    }

    pub fn too_large(limit: usize) -> Self {
        ApiError::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    pub fn unsupported_media_type(content_type: &str, accepted: &[&str]) -> Self {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
        .with_details(json!({"causes": [{"reason": "UnexpectedServerResponse", "message": content_type}]}))
    }

    pub fn not_acceptable(accepted: &[&str]) -> Self {
        ApiError::new(
            406,
            "NotAcceptable",
            format!(
                "only the following media types are accepted: {}",
                accepted.join(", ")
            ),
        )
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        ApiError::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
        .with_details(json!({"causes": [{"message": message.to_string()}]}))
    }

    pub fn unavailable(message: impl std::fmt::Display) -> Self {
        ApiError::new(503, "ServiceUnavailable", message.to_string())
    }

    /// The one translation of storage failures into API errors.
    pub fn from_storage(err: StorageError, info: &ResourceInfo, name: &str) -> Self {
        match err {
            StorageError::NotFound(_) => ApiError::not_found(info, name),
            StorageError::AlreadyExists(_) => ApiError::already_exists(info, name),
            StorageError::Conflict { .. } => ApiError::stale(info, name),
            StorageError::Compacted { requested, compacted } => {
                ApiError::gone(format!("too old resource version: {requested} ({compacted})"))
            }
            StorageError::FutureRevision { requested, current } => ApiError::new(
                504,
                "Timeout",
                format!("Too large resource version: {requested}, current: {current}"),
            )
            .with_details(json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1})),
            StorageError::Unavailable(m) => ApiError::unavailable(m),
            e @ (StorageError::Io(_) | StorageError::Corrupt(_)) => ApiError::internal(e),
        }
    }

    pub fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": match &self.continue_token { Some(t) => json!({"continue": &**t}), None => json!({}) },
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        });
        if let Some(d) = &self.details {
            s["details"] = (**d).clone();
        }
        s["code"] = json!(self.code);
        s
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let status = self.status();
        // A failed content negotiation cannot be answered in a negotiated
        // encoding: upstream writes that Status as indented JSON. Every other
        // error is JSON here, re-encoded for the client's Accept by
        // `render::negotiate_errors`, which finds the Status on the response.
        let not_acceptable = self.code == 406 && self.reason == "NotAcceptable";
        let body = if not_acceptable {
            serde_json::to_vec_pretty(&status).unwrap_or_default()
        } else {
            serde_json::to_vec(&status).unwrap_or_default()
        };
        let mut resp = (code, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if !not_acceptable {
            resp.extensions_mut()
                .insert(crate::endpoints::render::ErrorStatus(status));
        }
        // Upstream tells clients when to come back on 429 and 503.
        let retry_after = self
            .details
            .as_ref()
            .and_then(|d| d.get("retryAfterSeconds"))
            .and_then(Value::as_i64)
            .filter(|s| *s > 0 && matches!(self.code, 429 | 503));
        if let Some(seconds) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_error_renders_like_upstream() {
        let e = FieldError::invalid("metadata.name", "Bad", "must be lowercase");
        assert_eq!(
            e.to_string(),
            "metadata.name: Invalid value: \"Bad\": must be lowercase"
        );
        let r = FieldError::required("spec.containers", "");
        assert_eq!(r.to_string(), "spec.containers: Required value");
    }

    #[test]
    fn messages_name_the_qualified_kind_or_resource() {
        let table = crate::resources::ResourceTable::with_builtins();
        let get = |group: &str, plural: &str| table.get(group, "v1", plural).expect(plural);
        let (deployments, pods) = (get("apps", "deployments"), get("", "pods"));
        let errs = [FieldError::required("spec.selector", "")];
        assert_eq!(
            ApiError::invalid(&deployments, "d", &errs).message,
            "Deployment.apps \"d\" is invalid: spec.selector: Required value"
        );
        assert_eq!(
            ApiError::invalid(&pods, "p", &errs).message,
            "Pod \"p\" is invalid: spec.selector: Required value"
        );
        let invalid = ApiError::invalid(&deployments, "d", &errs);
        let details = invalid.details.as_deref().cloned().unwrap_or_default();
        assert_eq!(
            (&details["kind"], &details["group"]),
            (&json!("Deployment"), &json!("apps"))
        );
        assert_eq!(
            ApiError::not_found(&deployments, "d").message,
            "deployments.apps \"d\" not found"
        );
        assert_eq!(
            ApiError::already_exists(&pods, "p").message,
            "pods \"p\" already exists"
        );
    }
}
