//! `serviceaccounts/token` (an `authentication.k8s.io/v1` TokenRequest) and
//! the checks a TokenReview makes of such tokens, as upstream's `TokenREST`
//! and service-account JWT authenticator.
//!
//! A token is a JWT signed with the server's key (see `auth::jwt`), with the
//! standard claims (`iss`, `sub` = `system:serviceaccount:<ns>:<name>`,
//! `aud`, `exp`, `iat`, `nbf`, `jti`) and a private `kubernetes.io` claim
//! naming the service account and the object the token is bound to (a pod,
//! with its node, a secret, or a node), each with its uid. A token is valid
//! while it verifies, has not expired, shares an audience with the review,
//! and every object it names still exists with the same uid: deleting the
//! service account or the bound pod revokes it.

use serde_json::{Map, Value, json};

use super::meta;
use super::store::Store;
use crate::api_error::{ApiError, ApiResult, FieldError, FieldErrorKind};
use crate::auth::{self, jwt};

/// `spec.expirationSeconds` when the request gives none (upstream's default).
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// Upstream's bounds on `spec.expirationSeconds`.
const MIN_EXPIRATION_SECONDS: i64 = 600;
const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;

/// The keys of a TokenReview's `status.user.extra`.
const EXTRA_POD_NAME: &str = "authentication.kubernetes.io/pod-name";
const EXTRA_POD_UID: &str = "authentication.kubernetes.io/pod-uid";
const EXTRA_NODE_NAME: &str = "authentication.kubernetes.io/node-name";
const EXTRA_NODE_UID: &str = "authentication.kubernetes.io/node-uid";
const EXTRA_CREDENTIAL_ID: &str = "authentication.kubernetes.io/credential-id";

/// The API server's audiences: a token without `aud`, or a review without
/// audiences, is checked against these.
pub fn api_audiences() -> Vec<String> {
    vec![auth::ISSUER.to_string()]
}

/// An object a token is bound to, as the token's claims name it.
struct Bound {
    name: String,
    uid: String,
}

fn bound_claim(obj: &Value) -> Value {
    json!({"name": meta::name(obj), "uid": meta::str_at(obj, "/metadata/uid").unwrap_or("")})
}

/// Answers a TokenRequest for service account `sa_name` in `ns`: the request
/// object with its spec defaulted and `status.token` and
/// `status.expirationTimestamp` filled in.
pub async fn issue(
    store: &Store,
    key: &jwt::SigningKey,
    ns: &str,
    sa_name: &str,
    mut request: Value,
) -> ApiResult<Value> {
    if !request.get("spec").is_some_and(Value::is_object) {
        request["spec"] = json!({});
    }
    let expiration = match request.pointer("/spec/expirationSeconds") {
        None | Some(Value::Null) => DEFAULT_EXPIRATION_SECONDS,
        Some(v) => v
            .as_i64()
            .ok_or_else(|| ApiError::bad_request("spec.expirationSeconds must be an integer"))?,
    };
    request["spec"]["expirationSeconds"] = json!(expiration);
    validate_request(expiration)?;
    let sa = get(store, "serviceaccounts", Some(ns), sa_name).await?;
    let mut private = json!({
        "namespace": ns,
        "serviceaccount": bound_claim(&sa),
    });
    if let Some(reference) = request
        .pointer("/spec/boundObjectRef")
        .filter(|r| r.is_object())
        .cloned()
    {
        bind(store, ns, sa_name, &reference, &mut private).await?;
    }
    let audiences = match request.pointer("/spec/audiences").and_then(Value::as_array) {
        Some(a) if !a.is_empty() => a.clone(),
        _ => api_audiences().into_iter().map(Value::String).collect(),
    };
    request["spec"]["audiences"] = Value::Array(audiences.clone());
    let now = chrono::Utc::now();
    let exp = now + chrono::Duration::seconds(expiration);
    // Keys in the order upstream's encoder writes them (sorted).
    let claims = json!({
        "aud": audiences,
        "exp": exp.timestamp(),
        "iat": now.timestamp(),
        "iss": auth::ISSUER,
        "jti": uuid::Uuid::new_v4().to_string(),
        "kubernetes.io": private,
        "nbf": now.timestamp(),
        "sub": format!("system:serviceaccount:{ns}:{sa_name}"),
    });
    let token = key
        .sign(&claims)
        .map_err(|e| ApiError::internal(format!("failed to generate token: {e}")))?;
    let m = meta::meta_mut(&mut request);
    m.insert("name".into(), json!(sa_name));
    m.insert("namespace".into(), json!(ns));
    request["status"] = json!({
        "token": token,
        "expirationTimestamp": exp.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    Ok(request)
}

/// Upstream's `ValidateTokenRequest`, reported as its `NewInvalid` of the
/// `TokenRequest.authentication.k8s.io` kind with no name.
fn validate_request(expiration: i64) -> ApiResult<()> {
    let mut errs = Vec::new();
    let field = "spec.expirationSeconds";
    let invalid = |detail: &str| {
        FieldError::new(
            FieldErrorKind::Invalid,
            field,
            Some(expiration.to_string()),
            detail,
        )
    };
    if expiration < MIN_EXPIRATION_SECONDS {
        errs.push(invalid("may not specify a duration less than 10 minutes"));
    }
    if expiration > MAX_EXPIRATION_SECONDS {
        errs.push(invalid(
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    if errs.is_empty() {
        return Ok(());
    }
    let causes: Vec<Value> = errs
        .iter()
        .map(|e| json!({"reason": "FieldValueInvalid", "message": e.body(), "field": e.field}))
        .collect();
    let list: Vec<String> = errs.iter().map(ToString::to_string).collect();
    let list = if list.len() == 1 {
        list[0].clone()
    } else {
        format!("[{}]", list.join(", "))
    };
    Err(ApiError::new(
        422,
        "Invalid",
        format!("TokenRequest.authentication.k8s.io \"\" is invalid: {list}"),
    )
    .with_details(
        json!({"group": "authentication.k8s.io", "kind": "TokenRequest", "causes": causes}),
    ))
}

/// Checks the `boundObjectRef` and adds the bound object (and, for a pod, its
/// node when it has one that exists) to the private claims.
async fn bind(
    store: &Store,
    ns: &str,
    sa_name: &str,
    reference: &Value,
    private: &mut Value,
) -> ApiResult<()> {
    let api_version = meta::str_at(reference, "/apiVersion").unwrap_or("");
    let kind = meta::str_at(reference, "/kind").unwrap_or("");
    let name = meta::str_at(reference, "/name").unwrap_or("");
    let want_uid = meta::str_at(reference, "/uid").unwrap_or("");
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let obj = match (group, kind) {
        ("", "Pod") => {
            let pod = get(store, "pods", Some(ns), name).await?;
            if meta::str_at(&pod, "/spec/serviceAccountName").unwrap_or("") != sa_name {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token for serviceaccount {sa_name:?} to pod running with different serviceaccount name."
                )));
            }
            pod
        }
        ("", "Secret") => get(store, "secrets", Some(ns), name).await?,
        ("", "Node") => get(store, "nodes", None, name).await?,
        _ => {
            return Err(ApiError::bad_request(format!(
                "cannot bind token to object of type {group}/{version}, Kind={kind}"
            )));
        }
    };
    let uid = meta::str_at(&obj, "/metadata/uid").unwrap_or("");
    if !want_uid.is_empty() && want_uid != uid {
        return Err(ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {kind} {name:?}: the UID in the bound object reference ({want_uid}) does not match the UID in record. The object might have been deleted and then recreated"
            ),
        )
        .with_details(json!({"name": name, "kind": kind})));
    }
    private[kind.to_ascii_lowercase()] = bound_claim(&obj);
    if kind == "Pod"
        && let Some(node) = meta::str_at(&obj, "/spec/nodeName").filter(|n| !n.is_empty())
        // A node that cannot be read is left out, as upstream does.
        && let Ok(node) = get(store, "nodes", None, node).await
    {
        private["node"] = bound_claim(&node);
    }
    Ok(())
}

async fn get(store: &Store, plural: &str, ns: Option<&str>, name: &str) -> ApiResult<Value> {
    let info = store
        .table
        .get("", "v1", plural)
        .ok_or_else(|| ApiError::internal(format!("{plural} are not served")))?;
    store.get(&info, ns, name).await
}

/// The `status` of a TokenReview of `token` for `audiences` (the API
/// server's when empty): `authenticated` with the user, or not, with the
/// reason in `error` as upstream's authenticator words it.
pub async fn review(
    store: &Store,
    key: &jwt::SigningKey,
    token: &str,
    audiences: &[String],
) -> Value {
    match authenticate(store, key, token, audiences).await {
        Ok(Some((user, audiences))) => json!({
            "authenticated": true,
            "user": user,
            "audiences": audiences,
        }),
        Ok(None) => json!({"user": {}}),
        Err(error) => json!({"user": {}, "error": error}),
    }
}

/// The user a bearer `token` of this issuer authenticates as, for the API
/// server's own audience; `Ok(None)` when it is not one of its tokens.
pub async fn authenticate_request(
    store: &Store,
    key: &jwt::SigningKey,
    token: &str,
) -> Result<Option<crate::auth::UserInfo>, String> {
    let Some((user, _)) = authenticate(store, key, token, &[]).await? else {
        return Ok(None);
    };
    Ok(Some(crate::auth::UserInfo::from_api(&user, "username")))
}

/// `Ok(None)`: not a token of this issuer (another authenticator's, which
/// upstream reports as unauthenticated without an error).
async fn authenticate(
    store: &Store,
    key: &jwt::SigningKey,
    token: &str,
    requested: &[String],
) -> Result<Option<(Value, Vec<String>)>, String> {
    let Ok(unverified) = jwt::unverified_claims(token) else {
        return Ok(None);
    };
    if unverified.get("iss").and_then(Value::as_str) != Some(auth::ISSUER) {
        return Ok(None);
    }
    let claims = key.verify(token).map_err(|e| match e {
        jwt::VerifyError::Signature => {
            "go-jose/go-jose: error in cryptographic primitive".to_string()
        }
        other => other.to_string(),
    })?;
    let strings = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut token_auds = strings(claims.get("aud"));
    if token_auds.is_empty() {
        token_auds = api_audiences();
    }
    let requested = if requested.is_empty() {
        api_audiences()
    } else {
        requested.to_vec()
    };
    let shared: Vec<String> = token_auds
        .iter()
        .filter(|a| requested.contains(a))
        .cloned()
        .collect();
    if shared.is_empty() {
        return Err(format!(
            "token audiences {} is invalid for the target audiences {}",
            go_quoted(&token_auds),
            go_quoted(&requested)
        ));
    }
    check_times(&claims)?;
    let user = check_objects(store, &claims).await?;
    Ok(Some((user, shared)))
}

/// Go's `%q` of a string slice: `["a" "b"]`.
fn go_quoted(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

/// Upstream's leeway on `exp`, `nbf` and `iat` (go-jose's default).
const LEEWAY_SECONDS: i64 = 60;

fn check_times(claims: &Value) -> Result<(), String> {
    let now = chrono::Utc::now().timestamp();
    let at = |k: &str| claims.get(k).and_then(Value::as_i64);
    if at("nbf").is_some_and(|nbf| now + LEEWAY_SECONDS < nbf) {
        return Err("service account token is not valid yet".into());
    }
    if at("exp").is_some_and(|exp| now - LEEWAY_SECONDS > exp) {
        return Err("service account token has expired".into());
    }
    if at("iat").is_some_and(|iat| now + LEEWAY_SECONDS < iat) {
        return Err("service account token is issued in the future".into());
    }
    Ok(())
}

/// Checks that the service account and the bound objects still exist with
/// the uids the token names; returns the token's user.
async fn check_objects(store: &Store, claims: &Value) -> Result<Value, String> {
    let private = claims.get("kubernetes.io").cloned().unwrap_or(Value::Null);
    let ns = meta::str_at(&private, "/namespace")
        .unwrap_or("")
        .to_string();
    let reference = |k: &str| {
        private.get(k).filter(|v| v.is_object()).map(|v| Bound {
            name: meta::str_at(v, "/name").unwrap_or("").to_string(),
            uid: meta::str_at(v, "/uid").unwrap_or("").to_string(),
        })
    };
    let sa = reference("serviceaccount")
        .ok_or("service account token claims have no service account")?;
    let found = get(store, "serviceaccounts", Some(&ns), &sa.name)
        .await
        .map_err(|e| e.message)?;
    let uid = meta::str_at(&found, "/metadata/uid").unwrap_or("");
    if uid != sa.uid {
        return Err(format!(
            "service account UID ({uid}) does not match claim ({})",
            sa.uid
        ));
    }
    if meta::is_deleting(&found) {
        return Err(format!("service account {ns}/{} has been deleted", sa.name));
    }
    if let Some(secret) = reference("secret") {
        let found = get(store, "secrets", Some(&ns), &secret.name)
            .await
            .map_err(|e| e.message)?;
        let uid = meta::str_at(&found, "/metadata/uid").unwrap_or("");
        if uid != secret.uid {
            return Err(format!(
                "secret UID ({uid}) does not match service account secret ref claim ({})",
                secret.uid
            ));
        }
        if meta::is_deleting(&found) {
            return Err(format!("secret {ns}/{} has been deleted", secret.name));
        }
    }
    let mut extra = Map::new();
    let pod = reference("pod");
    if let Some(pod) = &pod {
        let found = get(store, "pods", Some(&ns), &pod.name)
            .await
            .map_err(|e| e.message)?;
        let uid = meta::str_at(&found, "/metadata/uid").unwrap_or("");
        if uid != pod.uid {
            return Err(format!(
                "pod UID ({uid}) does not match service account pod ref claim ({})",
                pod.uid
            ));
        }
        if meta::is_deleting(&found) {
            return Err(format!("pod {ns}/{} has been deleted", pod.name));
        }
        extra.insert(EXTRA_POD_NAME.into(), json!([pod.name]));
        extra.insert(EXTRA_POD_UID.into(), json!([pod.uid]));
    }
    if let Some(node) = reference("node") {
        // A pod-bound token only carries its node's name; a node-bound one
        // must still name a live node.
        if pod.is_none() {
            let found = get(store, "nodes", None, &node.name)
                .await
                .map_err(|e| e.message)?;
            let uid = meta::str_at(&found, "/metadata/uid").unwrap_or("");
            if uid != node.uid {
                return Err(format!(
                    "node UID ({uid}) does not match service account node ref claim ({})",
                    node.uid
                ));
            }
            if meta::is_deleting(&found) {
                return Err(format!("node {} has been deleted", node.name));
            }
        }
        extra.insert(EXTRA_NODE_NAME.into(), json!([node.name]));
        if !node.uid.is_empty() {
            extra.insert(EXTRA_NODE_UID.into(), json!([node.uid]));
        }
    }
    if let Some(jti) = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty())
    {
        extra.insert(EXTRA_CREDENTIAL_ID.into(), json!([format!("JTI={jti}")]));
    }
    Ok(json!({
        "username": format!("system:serviceaccount:{ns}:{}", sa.name),
        "uid": sa.uid,
        "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}"), "system:authenticated"],
        "extra": extra,
    }))
}

/// The OIDC discovery documents upstream serves for its issuer
/// (`/.well-known/openid-configuration` and `/openid/v1/jwks`): their
/// content type and body, or `None` for any other path.
pub fn discovery_document(key: &jwt::SigningKey, path: &str) -> Option<(&'static str, Value)> {
    match path {
        "/.well-known/openid-configuration" => Some((
            "application/json",
            json!({
                "issuer": auth::ISSUER,
                "jwks_uri": format!("{}/openid/v1/jwks", auth::ISSUER),
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256"],
            }),
        )),
        "/openid/v1/jwks" => Some(("application/jwk-set+json", json!({"keys": [key.jwk()]}))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiration_bounds_use_upstreams_words() {
        let err = validate_request(10).unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(
            err.message,
            "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 10: may not specify a duration less than 10 minutes"
        );
        assert!(validate_request(600).is_ok());
        assert!(validate_request((1 << 32) + 1).is_err());
    }

    #[test]
    fn times_are_checked_with_leeway() {
        let now = chrono::Utc::now().timestamp();
        assert!(check_times(&json!({"exp": now + 10, "nbf": now, "iat": now})).is_ok());
        assert_eq!(
            check_times(&json!({"exp": now - 120})).unwrap_err(),
            "service account token has expired"
        );
        assert_eq!(
            check_times(&json!({"nbf": now + 120})).unwrap_err(),
            "service account token is not valid yet"
        );
    }

    #[test]
    fn audiences_are_quoted_as_go_does() {
        assert_eq!(go_quoted(&["a".into(), "b".into()]), r#"["a" "b"]"#);
    }
}
