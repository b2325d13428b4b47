//! The review resources of `authorization.k8s.io` and `authentication.k8s.io`:
//! create-only, never stored; the API server answers a review by filling in
//! its `status` (upstream's "virtual" resources). The cluster authorizes every
//! request today (see `endpoints::filters`), so access reviews allow
//! everything, as upstream's `AlwaysAllow` authorizer does, and there is no
//! token authenticator for a TokenReview to succeed with.

use serde_json::{Value, json};

use crate::api_error::FieldError;
use crate::endpoints::filters::UserInfo;

/// Validates the review `obj` and fills in its status for `user`.
pub fn answer(plural: &str, obj: &mut Value, user: &UserInfo) -> Result<(), Vec<FieldError>> {
    let errs = match plural {
        "subjectaccessreviews" => access_review_errors(obj, true, false),
        "selfsubjectaccessreviews" => access_review_errors(obj, false, false),
        "localsubjectaccessreviews" => access_review_errors(obj, true, true),
        _ => Vec::new(),
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    obj["status"] = match plural {
        "selfsubjectrulesreviews" => json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        }),
        "selfsubjectreviews" => json!({
            "userInfo": {"username": user.name, "groups": user.groups},
        }),
        "tokenreviews" => json!({
            "user": {},
            "error": "no token authenticator is configured",
        }),
        _ => json!({"allowed": true}),
    };
    Ok(())
}

/// Upstream's checks of a (local, self) subject access review's spec.
fn access_review_errors(obj: &Value, needs_subject: bool, local: bool) -> Vec<FieldError> {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let present = |f: &str| spec.get(f).is_some_and(|v| !v.is_null());
    let mut errs = Vec::new();
    match (
        present("resourceAttributes"),
        present("nonResourceAttributes"),
    ) {
        (true, true) => errs.push(FieldError::invalid(
            "spec.nonResourceAttributes",
            &spec["nonResourceAttributes"].to_string(),
            "cannot be specified in combination with resourceAttributes",
        )),
        (false, false) => errs.push(FieldError::new(
            crate::api_error::FieldErrorKind::Invalid,
            "spec.resourceAttributes",
            Some("null".into()),
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
        _ => {}
    }
    let empty = |f: &str| match spec.get(f) {
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => true,
    };
    if needs_subject && empty("user") && empty("groups") {
        errs.push(FieldError::invalid(
            "spec.user",
            "",
            "at least one of user or group must be specified",
        ));
    }
    if local {
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        if present("nonResourceAttributes") {
            errs.push(FieldError::invalid(
                "spec.nonResourceAttributes",
                &spec["nonResourceAttributes"].to_string(),
                "disallowed on this kind of request",
            ));
        }
        let requested = spec
            .pointer("/resourceAttributes/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        if present("resourceAttributes") && requested != ns {
            errs.push(FieldError::invalid(
                "spec.resourceAttributes.namespace",
                requested,
                "must match metadata.namespace",
            ));
        }
    }
    errs
}
