//! Where a connect request goes, read from the objects it names: the pod's
//! container and node, the node's kubelet address and port, a service's
//! endpoints.

use serde_json::Value;

use super::App;
use crate::api_error::{ApiError, ApiResult};

/// The port a node's kubelet serves on when the Node does not say.
const DEFAULT_KUBELET_PORT: i64 = 10250;

/// Node address types in the order the API server tries them (k3s's
/// `--kubelet-preferred-address-types`: IPs first, so no name resolution is
/// needed).
const ADDRESS_PREFERENCE: &[&str] = &[
    "InternalIP",
    "ExternalIP",
    "Hostname",
    "InternalDNS",
    "ExternalDNS",
];

pub async fn object(app: &App, plural: &str, ns: Option<&str>, name: &str) -> ApiResult<Value> {
    let info = app
        .table
        .get("", "v1", plural)
        .ok_or_else(|| ApiError::internal(format!("{plural} are not served")))?;
    app.store.get(&info, ns, name).await
}

/// The container a pod request addresses: the one named, or the pod's only
/// container (init and ephemeral containers count as upstream counts them).
pub fn container(pod: &Value, requested: Option<&str>) -> ApiResult<String> {
    let name = pod_name(pod);
    let group = |key: &str| -> Vec<&str> {
        pod.pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("name").and_then(Value::as_str))
            .collect()
    };
    let (init, main, ephemeral) = (
        group("initContainers"),
        group("containers"),
        group("ephemeralContainers"),
    );
    match requested.filter(|c| !c.is_empty()) {
        Some(c) if init.contains(&c) || main.contains(&c) || ephemeral.contains(&c) => {
            Ok(c.to_string())
        }
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None => match main.as_slice() {
            [only] => Ok(only.to_string()),
            [] => Err(ApiError::bad_request(format!(
                "pod {name} does not have a container"
            ))),
            _ => {
                let all: Vec<&str> = init
                    .iter()
                    .chain(&main)
                    .chain(&ephemeral)
                    .copied()
                    .collect();
                Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    all.join(" ")
                )))
            }
        },
    }
}

pub fn pod_name(pod: &Value) -> &str {
    pod.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The node a pod is bound to, if any.
pub fn node_of(pod: &Value) -> Option<&str> {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
}

/// The node's address for the API server to dial, with the kubelet's port.
pub async fn kubelet(app: &App, node: &str) -> ApiResult<(String, i64)> {
    let node_obj = object(app, "nodes", None, node).await?;
    let port = node_obj
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_i64)
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Ok((node_address(&node_obj)?, port))
}

fn node_address(node: &Value) -> ApiResult<String> {
    let addresses = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    ADDRESS_PREFERENCE
        .iter()
        .find_map(|want| {
            addresses.iter().find_map(|a| {
                (a.get("type").and_then(Value::as_str) == Some(want))
                    .then(|| a.get("address").and_then(Value::as_str))
                    .flatten()
                    .filter(|s| !s.is_empty())
            })
        })
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "no preferred addresses found; known addresses: {}",
                serde_json::to_string(&addresses).unwrap_or_default()
            ))
        })
}

/// `host:port` with IPv6 hosts bracketed.
pub fn authority(host: &str, port: impl std::fmt::Display) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The parts of a proxy name, `[scheme:]name[:port]`.
#[derive(Debug, PartialEq, Eq)]
pub struct ProxyName<'a> {
    pub scheme: &'a str,
    pub name: &'a str,
    pub port: &'a str,
}

pub fn split_proxy_name(id: &str) -> ApiResult<ProxyName<'_>> {
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [name] => ("", *name, ""),
        [name, port] => ("", *name, *port),
        [scheme, name, port] => (*scheme, *name, *port),
        _ => return Err(ApiError::bad_request(format!("invalid request {id:?}"))),
    };
    if !matches!(scheme, "" | "http" | "https") || name.is_empty() {
        return Err(ApiError::bad_request(format!("invalid request {id:?}")));
    }
    Ok(ProxyName { scheme, name, port })
}

/// The pod's IP and the port to dial: the one named (a number, or the name
/// of a container port), else the first container port, else 80.
pub fn pod_endpoint(pod: &Value, port: &str) -> ApiResult<String> {
    let ip = pod
        .pointer("/status/podIP")
        .and_then(Value::as_str)
        .filter(|ip| !ip.is_empty())
        .ok_or_else(|| ApiError::unavailable(format!("pod {} has no IP address", pod_name(pod))))?;
    let ports: Vec<&Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("ports").and_then(Value::as_array))
        .flatten()
        .collect();
    let number = |p: &Value| p.get("containerPort").and_then(Value::as_i64);
    let resolved = if port.is_empty() {
        ports.first().and_then(|p| number(p)).unwrap_or(80)
    } else if let Ok(n) = port.parse::<i64>() {
        n
    } else {
        ports
            .iter()
            .find(|p| p.get("name").and_then(Value::as_str) == Some(port))
            .and_then(|p| number(p))
            .ok_or_else(|| {
                ApiError::bad_request(format!("no port named {port:?} in pod {}", pod_name(pod)))
            })?
    };
    Ok(authority(ip, resolved))
}

/// One ready endpoint of a service port (named, or by number), read from
/// the service's Endpoints as upstream's service proxy reads them.
pub async fn service_endpoint(app: &App, ns: &str, id: &ProxyName<'_>) -> ApiResult<String> {
    let svc = object(app, "services", Some(ns), id.name).await?;
    let no_endpoints =
        || ApiError::unavailable(format!("no endpoints available for service {:?}", id.name));
    let svc_ports = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let svc_port = svc_ports
        .iter()
        .find(|p| {
            id.port.is_empty() && svc_ports.len() == 1
                || p.get("name").and_then(Value::as_str) == Some(id.port)
                || p.get("port")
                    .and_then(Value::as_i64)
                    .map(|n| n.to_string())
                    .as_deref()
                    == Some(id.port)
        })
        .ok_or_else(no_endpoints)?;
    let port_name = svc_port.get("name").and_then(Value::as_str).unwrap_or("");
    let endpoints = match object(app, "endpoints", Some(ns), id.name).await {
        Ok(e) => e,
        Err(e) if e.code == 404 => return Err(no_endpoints()),
        Err(e) => return Err(e),
    };
    endpoints
        .get("subsets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|subset| {
            let port = subset
                .get("ports")
                .and_then(Value::as_array)?
                .iter()
                .find(|p| p.get("name").and_then(Value::as_str).unwrap_or("") == port_name)?
                .get("port")
                .and_then(Value::as_i64)?;
            let ip = subset
                .get("addresses")
                .and_then(Value::as_array)?
                .first()?
                .get("ip")
                .and_then(Value::as_str)?;
            Some(authority(ip, port))
        })
        .ok_or_else(no_endpoints)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "metadata": {"name": "p"},
            "spec": {
                "initContainers": [{"name": "init"}],
                "containers": [{"name": "a", "ports": [{"name": "web", "containerPort": 8080}]}, {"name": "b"}]
            },
            "status": {"podIP": "10.244.0.7"}
        })
    }

    #[test]
    fn container_is_named_or_the_only_one() {
        assert_eq!(container(&pod(), Some("b")).expect("b"), "b");
        assert_eq!(container(&pod(), Some("init")).expect("init"), "init");
        let e = container(&pod(), None).expect_err("two containers");
        assert_eq!(
            e.message,
            "a container name must be specified for pod p, choose one of: [init a b]"
        );
        let e = container(&pod(), Some("c")).expect_err("no such container");
        assert_eq!(e.message, "container c is not valid for pod p");
        let single = json!({"metadata": {"name": "q"}, "spec": {"containers": [{"name": "only"}]}});
        assert_eq!(container(&single, None).expect("only"), "only");
    }

    #[test]
    fn proxy_names_split_into_scheme_name_and_port() {
        let n = split_proxy_name("https:web:8443").expect("three parts");
        assert_eq!((n.scheme, n.name, n.port), ("https", "web", "8443"));
        let n = split_proxy_name("web:http").expect("two parts");
        assert_eq!((n.scheme, n.name, n.port), ("", "web", "http"));
        assert!(split_proxy_name("ftp:web:21").is_err());
        assert!(split_proxy_name("a:b:c:d").is_err());
    }

    #[test]
    fn pod_ports_resolve_by_number_name_or_default() {
        assert_eq!(
            pod_endpoint(&pod(), "").expect("default"),
            "10.244.0.7:8080"
        );
        assert_eq!(
            pod_endpoint(&pod(), "web").expect("named"),
            "10.244.0.7:8080"
        );
        assert_eq!(
            pod_endpoint(&pod(), "9000").expect("number"),
            "10.244.0.7:9000"
        );
        assert!(pod_endpoint(&pod(), "nope").is_err());
    }

    #[test]
    fn node_addresses_prefer_ips() {
        let node = json!({"status": {"addresses": [
            {"type": "Hostname", "address": "n1"},
            {"type": "InternalIP", "address": "192.0.2.4"}
        ]}});
        assert_eq!(node_address(&node).expect("address"), "192.0.2.4");
        assert!(node_address(&json!({})).is_err());
    }
}
