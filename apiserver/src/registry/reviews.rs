//! The review resources of `authorization.k8s.io` and `authentication.k8s.io`:
//! create-only, never stored; the API server answers a review by filling in
//! its `status` (upstream's "virtual" resources). Access reviews ask the
//! same authorizer as requests do (`system:masters`, then RBAC); a rules
//! review lists the RBAC rules of the asker. A TokenReview checks the
//! service-account tokens this server issues (see
//! [`super::service_account_token`]).

use serde_json::{Value, json};

use super::service_account_token;
use super::store::Store;
use crate::api_error::{ApiError, ApiResult, FieldError};
use crate::auth::UserInfo;
use crate::auth::jwt::SigningKey;
use crate::auth::rbac::Action;
use crate::resources::ResourceInfo;

/// What answering a review may consult.
pub struct Context<'a> {
    pub store: &'a Store,
    /// The key service-account tokens are signed with.
    pub tokens: &'a SigningKey,
    /// Who asks (a self review is about them).
    pub user: &'a UserInfo,
    /// The RBAC objects.
    pub policy: &'a super::rbac_policy::PolicyIndex,
}

/// Validates the review `obj` and fills in its status.
pub async fn answer(info: &ResourceInfo, obj: &mut Value, cx: &Context<'_>) -> ApiResult<()> {
    let plural = info.plural.as_str();
    let errs = match plural {
        "subjectaccessreviews" => access_review_errors(obj, true, false),
        "selfsubjectaccessreviews" => access_review_errors(obj, false, false),
        "localsubjectaccessreviews" => access_review_errors(obj, true, true),
        _ => Vec::new(),
    };
    if !errs.is_empty() {
        return Err(ApiError::invalid(
            info,
            crate::registry::meta::name(obj),
            &errs,
        ));
    }
    obj["status"] = match plural {
        "selfsubjectrulesreviews" => rules_review(obj, cx),
        "selfsubjectreviews" => {
            let mut info = json!({"username": cx.user.name, "groups": cx.user.groups});
            if !cx.user.uid.is_empty() {
                info["uid"] = json!(cx.user.uid);
            }
            if !cx.user.extra.is_empty() {
                info["extra"] = json!(cx.user.extra);
            }
            json!({ "userInfo": info })
        }
        "tokenreviews" => token_review(obj, cx).await?,
        "selfsubjectaccessreviews" => access_review(cx.user, obj, cx),
        _ => access_review(&subject_of(obj), obj, cx),
    };
    Ok(())
}

/// The user a (local) SubjectAccessReview asks about.
fn subject_of(obj: &Value) -> UserInfo {
    UserInfo::from_api(obj.get("spec").unwrap_or(&Value::Null), "user")
}

/// Whether `user` may do what the review's spec describes.
fn access_review(user: &UserInfo, obj: &Value, cx: &Context<'_>) -> Value {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let text = |v: &Value, f: &str| v.get(f).and_then(Value::as_str).unwrap_or("").to_string();
    let action = match spec.get("resourceAttributes").filter(|v| !v.is_null()) {
        Some(r) => Action::Resource {
            verb: text(r, "verb"),
            group: text(r, "group"),
            resource: text(r, "resource"),
            subresource: text(r, "subresource"),
            namespace: text(r, "namespace"),
            name: text(r, "name"),
        },
        None => {
            let n = spec.get("nonResourceAttributes").unwrap_or(&Value::Null);
            Action::NonResource {
                verb: text(n, "verb"),
                path: text(n, "path"),
            }
        }
    };
    let allowed =
        user.in_group(crate::auth::MASTERS) || cx.policy.with(|p| p.allows(user, &action));
    json!({"allowed": allowed})
}

/// The RBAC rules the asker holds in `spec.namespace`.
fn rules_review(obj: &Value, cx: &Context<'_>) -> Value {
    let ns = obj
        .pointer("/spec/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let (resource_rules, non_resource_rules): (Vec<Value>, Vec<Value>) = cx.policy.with(|p| {
        let rules = p.rules_for(cx.user, ns);
        let resource = rules
            .iter()
            .filter(|r| r.non_resource_urls.is_empty())
            .map(|r| json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources, "resourceNames": r.resource_names}))
            .collect();
        let non_resource = rules
            .iter()
            .filter(|r| !r.non_resource_urls.is_empty())
            .map(|r| json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}))
            .collect();
        (resource, non_resource)
    });
    let strip_empty = |mut rules: Vec<Value>| {
        for r in &mut rules {
            if let Some(m) = r.as_object_mut() {
                m.retain(|_, v| !v.as_array().is_some_and(Vec::is_empty));
            }
        }
        rules
    };
    json!({
        "resourceRules": strip_empty(resource_rules),
        "nonResourceRules": strip_empty(non_resource_rules),
        "incomplete": false,
    })
}

/// A TokenReview's status, as upstream's `tokenreview` storage answers.
async fn token_review(obj: &Value, cx: &Context<'_>) -> ApiResult<Value> {
    let token = obj
        .pointer("/spec/token")
        .and_then(Value::as_str)
        .unwrap_or("");
    if token.is_empty() {
        return Err(ApiError::bad_request(
            "token is required for TokenReview in authentication",
        ));
    }
    let audiences: Vec<String> = obj
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Ok(service_account_token::review(cx.store, cx.tokens, token, &audiences).await)
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
