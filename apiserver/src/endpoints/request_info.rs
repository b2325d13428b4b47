//! Parses a request path into what it addresses (upstream's `RequestInfoFactory`).

use axum::http::Method;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: &'static str,
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// `None` if the path is not a resource path (discovery paths are handled elsewhere).
pub fn parse(method: &Method, path: &str, watch_param: bool) -> Option<RequestInfo> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, mut rest) = match parts.as_slice() {
        ["api", v, rest @ ..] => (String::new(), v.to_string(), rest),
        ["apis", g, v, rest @ ..] => (g.to_string(), v.to_string(), rest),
        _ => return None,
    };
    if rest.is_empty() || rest.iter().any(|p| p.is_empty()) {
        return None;
    }
    let mut legacy_watch = false;
    if rest[0] == "watch" {
        legacy_watch = true;
        rest = &rest[1..];
    }
    let mut info = RequestInfo {
        group,
        version,
        ..Default::default()
    };
    if rest.first() == Some(&"namespaces") && rest.len() > 1 {
        info.namespace = Some(rest[1].to_string());
        if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
            rest = &rest[2..];
        }
    }
    match rest {
        [resource] => info.resource = resource.to_string(),
        [resource, name] => {
            info.resource = resource.to_string();
            info.name = Some(name.to_string());
        }
        [resource, name, sub] => {
            info.resource = resource.to_string();
            info.name = Some(name.to_string());
            info.subresource = Some(sub.to_string());
        }
        [resource, name, sub, ..] if *sub == "proxy" => {
            info.resource = resource.to_string();
            info.name = Some(name.to_string());
            info.subresource = Some(sub.to_string());
        }
        _ => return None,
    }
    // `/api/v1/namespaces/foo` names the namespace object itself.
    if info.resource == "namespaces" {
        info.namespace = None;
    }
    info.verb = match *method {
        Method::GET | Method::HEAD if legacy_watch || (watch_param && info.name.is_none()) => {
            "watch"
        }
        Method::GET | Method::HEAD if legacy_watch || watch_param => "watch",
        Method::GET | Method::HEAD if info.name.is_some() => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if info.name.is_some() => "delete",
        Method::DELETE => "deletecollection",
        _ => return None,
    };
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_paths() {
        let i = parse(
            &Method::GET,
            "/api/v1/namespaces/default/pods/p1/status",
            false,
        )
        .unwrap();
        assert_eq!(
            (
                i.verb,
                i.namespace.as_deref(),
                i.resource.as_str(),
                i.name.as_deref(),
                i.subresource.as_deref()
            ),
            ("get", Some("default"), "pods", Some("p1"), Some("status"))
        );
        let i = parse(&Method::GET, "/api/v1/namespaces/foo", false).unwrap();
        assert_eq!(
            (i.resource.as_str(), i.name.as_deref(), i.namespace),
            ("namespaces", Some("foo"), None)
        );
        let i = parse(&Method::PUT, "/api/v1/namespaces/foo/finalize", false).unwrap();
        assert_eq!(
            (i.resource.as_str(), i.subresource.as_deref()),
            ("namespaces", Some("finalize"))
        );
        let i = parse(
            &Method::GET,
            "/apis/apps/v1/watch/namespaces/x/deployments",
            false,
        )
        .unwrap();
        assert_eq!((i.verb, i.group.as_str()), ("watch", "apps"));
        let i = parse(&Method::GET, "/api/v1/pods", true).unwrap();
        assert_eq!((i.verb, i.namespace), ("watch", None));
        assert!(parse(&Method::GET, "/api/v1", false).is_none());
        assert!(parse(&Method::GET, "/api/v1/a/b/c/d/e", false).is_none());
        assert_eq!(
            parse(&Method::DELETE, "/api/v1/namespaces/d/configmaps", false)
                .unwrap()
                .verb,
            "deletecollection"
        );
    }
}
