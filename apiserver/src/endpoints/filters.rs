//! The request filters every request passes before its handler, in
//! upstream's `DefaultBuildHandlerChain` order: authenticate, then authorize
//! the request attributes, then admit the decoded object in the handler.
//!
//! Authentication tries, as upstream's union authenticator does, the
//! connection's client certificate, then a bearer token (the static token
//! file, then service-account tokens). A request with no credentials at all
//! is `system:anonymous` when anonymous requests are allowed. Credentials
//! that are present but wrong get 401, never anonymous access.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use parking_lot::Mutex;

use super::App;
use super::request_info::RequestInfo;
use crate::api_error::{ApiError, ApiResult};
pub use crate::auth::UserInfo;
use crate::auth::rbac::Action;
use crate::auth::token_file::StaticTokens;
use crate::serving::ClientCertificate;

/// How long a service-account token's user is remembered (upstream caches
/// successful token authentications for 10 s too).
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(10);
/// At most this many remembered tokens; the cache is emptied when full.
const TOKEN_CACHE_MAX: usize = 4096;

/// SHA-256 of a bearer token (tokens themselves are not kept).
type TokenDigest = [u8; 32];

/// The authenticators' configuration and memory.
pub struct Authentication {
    tokens: StaticTokens,
    anonymous: bool,
    /// Tests of the HTTP layer (no TLS, so no certificate): who a request
    /// without credentials is.
    #[cfg(test)]
    without_credentials: Option<UserInfo>,
    /// SHA-256 of a service-account token → its user and when it was checked.
    cache: Mutex<HashMap<TokenDigest, (Instant, Arc<UserInfo>)>>,
}

impl std::fmt::Debug for Authentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authentication")
            .field("tokens", &self.tokens)
            .field("anonymous", &self.anonymous)
            .finish_non_exhaustive()
    }
}

impl Authentication {
    pub fn new(config: &crate::server::AuthConfig) -> crate::auth::Result<Authentication> {
        let tokens = match &config.token_auth_file {
            Some(path) => StaticTokens::load(path)?,
            None => StaticTokens::default(),
        };
        Ok(Authentication {
            tokens,
            anonymous: config.anonymous,
            #[cfg(test)]
            without_credentials: None,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// For tests of the HTTP layer: every request without credentials is `user`.
    #[cfg(test)]
    pub fn everyone_is(user: UserInfo) -> Authentication {
        Authentication {
            tokens: StaticTokens::default(),
            anonymous: false,
            without_credentials: Some(user),
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Arc<UserInfo>> {
        let cache = self.cache.lock();
        let (at, user) = cache.get(key)?;
        (at.elapsed() < TOKEN_CACHE_TTL).then(|| user.clone())
    }

    fn remember(&self, key: [u8; 32], user: Arc<UserInfo>) {
        let mut cache = self.cache.lock();
        if cache.len() >= TOKEN_CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, (Instant::now(), user));
    }
}

/// The bearer token of the request, from `Authorization: Bearer`, or for a
/// WebSocket from its `base64url.bearer.authorization.k8s.io.<token>`
/// subprotocol (browsers cannot set headers on a WebSocket).
fn bearer_token(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
        let token = token.trim();
        return (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty())
            .then(|| token.to_string());
    }
    use base64::Engine;
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(WEBSOCKET_BEARER_PREFIX))
        .and_then(|encoded| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(encoded.trim_end_matches('='))
                .ok()
        })
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|t| !t.is_empty())
}

const WEBSOCKET_BEARER_PREFIX: &str = "base64url.bearer.authorization.k8s.io.";

/// Who is making the request, or 401.
pub async fn authenticate(
    app: &App,
    headers: &HeaderMap,
    certificate: Option<&ClientCertificate>,
) -> ApiResult<UserInfo> {
    let mut refused = false;
    match certificate {
        Some(ClientCertificate::Verified(user)) => return Ok((**user).clone().authenticated()),
        Some(ClientCertificate::Refused(why)) => {
            tracing::debug!(reason = %why, "client certificate refused");
            refused = true;
        }
        Some(ClientCertificate::None) | None => {}
    }
    if let Some(token) = bearer_token(headers) {
        let token = token.as_str();
        if let Some(user) = app.authn.tokens.lookup(token) {
            return Ok(user.clone().authenticated());
        }
        let key: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
            .as_ref()
            .try_into()
            .map_err(|_| ApiError::internal("token digest"))?;
        if let Some(user) = app.authn.cached(&key) {
            return Ok((*user).clone());
        }
        return match crate::registry::service_account_token::authenticate_request(
            &app.store,
            &app.keys.service_account,
            token,
        )
        .await
        {
            Ok(Some(user)) => {
                let user = Arc::new(user.authenticated());
                app.authn.remember(key, user.clone());
                Ok((*user).clone())
            }
            Ok(None) => Err(ApiError::unauthorized()),
            Err(why) => {
                tracing::debug!(reason = %why, "bearer token refused");
                Err(ApiError::unauthorized())
            }
        };
    }
    #[cfg(test)]
    if let Some(user) = &app.authn.without_credentials {
        return Ok(user.clone());
    }
    if refused || !app.authn.anonymous {
        return Err(ApiError::unauthorized());
    }
    Ok(UserInfo::anonymous())
}

/// The user a request's `Impersonate-*` headers name, when `user` may
/// impersonate each of their parts (the `impersonate` verb on users or
/// serviceaccounts, groups, uids and userextras, as upstream checks it);
/// `None` when the request impersonates no one.
pub fn impersonate(app: &App, user: &UserInfo, headers: &HeaderMap) -> ApiResult<Option<UserInfo>> {
    let all = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    };
    let name = all("impersonate-user").into_iter().next();
    let uid = all("impersonate-uid").into_iter().next();
    let groups = all("impersonate-group");
    let mut extra: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (header, value) in headers {
        if let Some(key) = header.as_str().strip_prefix("impersonate-extra-")
            && let Ok(value) = value.to_str()
        {
            let key = percent_decode(key).to_ascii_lowercase();
            extra.entry(key).or_default().push(value.to_string());
        }
    }
    let Some(name) = name else {
        if uid.is_some() || !groups.is_empty() || !extra.is_empty() {
            return Err(ApiError::bad_request(
                "requested impersonation of groups, a uid or extras without impersonating a user",
            ));
        }
        return Ok(None);
    };
    let check = |group: &str, resource: &str, namespace: &str, name: &str| {
        let action = Action::Resource {
            verb: "impersonate".into(),
            group: group.into(),
            resource: resource.into(),
            subresource: String::new(),
            namespace: namespace.into(),
            name: name.into(),
        };
        authorize(app, user, &action)
    };
    let service_account = name
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'));
    match service_account {
        Some((ns, sa)) => check("", "serviceaccounts", ns, sa)?,
        None => check("", "users", "", &name)?,
    }
    for group in &groups {
        check("", "groups", "", group)?;
    }
    if let Some(uid) = &uid {
        check("authentication.k8s.io", "uids", "", uid)?;
    }
    for (key, values) in &extra {
        for value in values {
            check(
                "authentication.k8s.io",
                &format!("userextras/{key}"),
                "",
                value,
            )?;
        }
    }
    let mut groups = groups;
    if let Some((ns, _)) = service_account
        && groups.is_empty()
    {
        groups = vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
        ];
    }
    let impersonated = UserInfo {
        name,
        uid: uid.unwrap_or_default(),
        groups,
        extra,
    };
    Ok(Some(if impersonated.name == crate::auth::ANONYMOUS_USER {
        impersonated
    } else {
        impersonated.authenticated()
    }))
}

/// `%XX` escapes decoded (an extra's key travels percent-encoded in a header name).
fn percent_decode(s: &str) -> String {
    let bytes: Vec<u8> = form_urlencoded::parse(format!("k={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// What a request asks to do, from its method and path (upstream's
/// `RequestInfoFactory`): a resource request when the path names a resource
/// under `/api/VERSION` or `/apis/GROUP/VERSION`, a path otherwise.
pub fn action(method: &axum::http::Method, path: &str, info: Option<&RequestInfo>) -> Action {
    match info {
        Some(info) => {
            let name = info.name.clone().unwrap_or_default();
            // A namespace is in its own namespace (a RoleBinding there may grant it).
            let namespace = match (&info.namespace, info.resource.as_str()) {
                (Some(ns), _) => ns.clone(),
                (None, "namespaces") => name.clone(),
                (None, _) => String::new(),
            };
            Action::Resource {
                verb: info.verb.to_string(),
                group: info.group.clone(),
                resource: info.resource.clone(),
                subresource: info.subresource.clone().unwrap_or_default(),
                namespace,
                name,
            }
        }
        None => Action::NonResource {
            verb: method.as_str().to_ascii_lowercase().replace("head", "get"),
            path: path.to_string(),
        },
    }
}

/// Allows the request, or answers 403 in upstream's words. Members of
/// `system:masters` may do anything; everyone else needs an RBAC rule.
pub fn authorize(app: &App, user: &UserInfo, action: &Action) -> ApiResult<()> {
    if user.in_group(crate::auth::MASTERS) || app.policy.with(|p| p.allows(user, action)) {
        return Ok(());
    }
    Err(forbidden(user, action))
}

/// The 403 of a refused `action`.
pub fn forbidden(user: &UserInfo, action: &Action) -> ApiError {
    let why = action.forbidden_message(&user.name);
    match action {
        Action::NonResource { .. } => ApiError::new(403, "Forbidden", format!("forbidden: {why}"))
            .with_details(serde_json::json!({})),
        Action::Resource {
            group,
            resource,
            name,
            ..
        } => {
            let qualified = if group.is_empty() {
                resource.clone()
            } else {
                format!("{resource}.{group}")
            };
            let message = if name.is_empty() {
                format!("{qualified} is forbidden: {why}")
            } else {
                format!("{qualified} {name:?} is forbidden: {why}")
            };
            let mut details = serde_json::json!({"kind": resource});
            if !name.is_empty() {
                details["name"] = serde_json::json!(name);
            }
            if !group.is_empty() {
                details["group"] = serde_json::json!(group);
            }
            ApiError::new(403, "Forbidden", message).with_details(details)
        }
    }
}
