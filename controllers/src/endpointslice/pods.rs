//! What the Endpoints and EndpointSlice controllers ask of a pod (upstream's
//! `k8s.io/endpointslice/util`): whether it belongs in a Service's endpoints
//! at all, which of its IPs serves the Service's family, which port a
//! Service port's `targetPort` resolves to, and which Services select it.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::runtime::reflector::Store;

use super::queue;

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// A pod is an endpoint while it has an IP and has not finished; a pod being
/// deleted only when `include_terminating` (the EndpointSlice controller
/// keeps it, marked terminating; the Endpoints controller only when the
/// Service publishes not-ready addresses).
pub(crate) fn should_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    let p = phase(pod);
    if p == "Succeeded" || p == "Failed" {
        return false;
    }
    if pod_ips(pod).is_empty() {
        return false;
    }
    include_terminating || pod.metadata.deletion_timestamp.is_none()
}

/// The pod's IPs, `status.podIPs` or else `status.podIP`.
pub(crate) fn pod_ips(pod: &Pod) -> Vec<&str> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    let ips: Vec<&str> = status
        .pod_ips
        .iter()
        .flatten()
        .map(|ip| ip.ip.as_str())
        .filter(|ip| !ip.is_empty())
        .collect();
    if !ips.is_empty() {
        return ips;
    }
    status
        .pod_ip
        .as_deref()
        .filter(|ip| !ip.is_empty())
        .into_iter()
        .collect()
}

/// `IPv4` or `IPv6`: the address type of an IP string.
pub(crate) fn address_type(ip: &str) -> Option<&'static str> {
    match ip.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(_) => Some("IPv4"),
        std::net::IpAddr::V6(_) => Some("IPv6"),
    }
}

/// The address types a Service's endpoints are published for: its IP
/// families, or IPv4 when the server set none.
pub(crate) fn service_address_types(svc: &Service) -> Vec<&'static str> {
    let families: Vec<&'static str> = svc
        .spec
        .iter()
        .flat_map(|s| s.ip_families.iter().flatten())
        .filter_map(|f| match f.as_str() {
            "IPv4" => Some("IPv4"),
            "IPv6" => Some("IPv6"),
            _ => None,
        })
        .collect();
    if families.is_empty() {
        vec!["IPv4"]
    } else {
        families
    }
}

/// The pod's first IP of `address_type`.
pub(crate) fn pod_ip_of<'a>(pod: &'a Pod, address_type: &str) -> Option<&'a str> {
    pod_ips(pod)
        .into_iter()
        .find(|ip| self::address_type(ip) == Some(address_type))
}

/// The port a Service port sends to on this pod: a number as is, a name
/// looked up among the ports of its containers (and sidecar init containers)
/// with the same protocol; `None` when the name is not found.
pub(crate) fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let spec = pod.spec.as_ref()?;
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// A pod's hostname is published when its subdomain names the Service.
pub(crate) fn should_set_hostname(pod: &Pod, svc: &Service) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    spec.hostname.as_deref().is_some_and(|h| !h.is_empty())
        && spec.subdomain.as_deref() == svc.metadata.name.as_deref()
        && pod.metadata.namespace == svc.metadata.namespace
}

/// The hostname an endpoint of `pod` publishes for `svc`, if any.
pub(crate) fn published_hostname(pod: &Pod, svc: &Service) -> Option<String> {
    should_set_hostname(pod, svc)
        .then(|| pod.spec.as_ref().and_then(|s| s.hostname.clone()))
        .flatten()
}

/// The node a pod runs on, once it is scheduled.
pub(crate) fn node_name(pod: &Pod) -> Option<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .filter(|n| !n.is_empty())
}

/// The reference from an endpoint back to its pod.
pub(crate) fn target_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

/// The selector of a Service whose endpoints a controller computes: none for
/// selector-less and ExternalName Services. An empty selector selects every
/// pod of the namespace, as upstream.
pub(crate) fn selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    let spec = svc.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.as_ref()
}

/// Whether `selector` selects a pod with these labels.
pub(crate) fn selects(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The pods of `svc`'s namespace its selector picks.
pub(crate) fn selected_pods(pods: &Store<Pod>, svc: &Service) -> Vec<std::sync::Arc<Pod>> {
    let Some(sel) = selector(svc) else {
        return Vec::new();
    };
    pods.state()
        .into_iter()
        .filter(|p| p.metadata.namespace == svc.metadata.namespace && selects(sel, p))
        .collect()
}

/// Keys of the Services in the pod's namespace that select it.
pub(crate) fn services_of(services: &Store<Service>, pod: &Pod) -> BTreeSet<String> {
    services
        .state()
        .iter()
        .filter(|s| s.metadata.namespace == pod.metadata.namespace)
        .filter(|s| selector(s).is_some_and(|sel| selects(sel, pod)))
        .map(|s| queue::key(s.metadata.namespace.as_deref(), s.metadata.name.as_deref()))
        .collect()
}

/// Remembers which Services each pod belonged to, so that a pod that stops
/// matching (relabelled, or deleted) still requeues the Services it left —
/// upstream compares the old and new pod of an update for this.
#[derive(Default)]
pub(crate) struct Memberships {
    by_pod: std::collections::HashMap<String, BTreeSet<String>>,
}

impl Memberships {
    /// The Services to sync after this pod event: those it belongs to now and
    /// those it belonged to before.
    pub(crate) fn touched(
        &mut self,
        services: &Store<Service>,
        pod: &Pod,
        deleted: bool,
    ) -> BTreeSet<String> {
        let key = queue::key(
            pod.metadata.namespace.as_deref(),
            pod.metadata.name.as_deref(),
        );
        let now = services_of(services, pod);
        let before = if deleted {
            self.by_pod.remove(&key)
        } else {
            self.by_pod.insert(key, now.clone())
        };
        now.into_iter()
            .chain(before.into_iter().flatten())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn membership_of_pods() {
        let running = pod(serde_json::json!({
            "metadata": {"name": "p"},
            "status": {"phase": "Running", "podIP": "10.0.0.1"}
        }));
        assert!(should_be_in_endpoints(&running, false));
        let no_ip =
            pod(serde_json::json!({"metadata": {"name": "p"}, "status": {"phase": "Running"}}));
        assert!(!should_be_in_endpoints(&no_ip, true));
        let done = pod(serde_json::json!({
            "metadata": {"name": "p"}, "status": {"phase": "Succeeded", "podIP": "10.0.0.1"}
        }));
        assert!(!should_be_in_endpoints(&done, true));
        let deleting = pod(serde_json::json!({
            "metadata": {"name": "p", "deletionTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"phase": "Running", "podIP": "10.0.0.1"}
        }));
        assert!(!should_be_in_endpoints(&deleting, false));
        assert!(should_be_in_endpoints(&deleting, true));
    }

    #[test]
    fn named_target_ports() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "ports": [
                {"name": "http", "containerPort": 8080},
                {"name": "dns", "containerPort": 53, "protocol": "UDP"}
            ]}]}
        }));
        let port = |target: serde_json::Value, protocol: &str| -> ServicePort {
            serde_json::from_value(
                serde_json::json!({"port": 80, "targetPort": target, "protocol": protocol}),
            )
            .expect("port")
        };
        assert_eq!(
            find_port(&p, &port(serde_json::json!("http"), "TCP")),
            Some(8080)
        );
        assert_eq!(find_port(&p, &port(serde_json::json!("http"), "UDP")), None);
        assert_eq!(
            find_port(&p, &port(serde_json::json!("dns"), "UDP")),
            Some(53)
        );
        assert_eq!(
            find_port(&p, &port(serde_json::json!(9000), "TCP")),
            Some(9000)
        );
        assert_eq!(find_port(&p, &port(serde_json::json!("nope"), "TCP")), None);
    }

    #[test]
    fn endpoint_fields_of_a_pod() {
        let svc: Service = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "web", "namespace": "ns"}}),
        )
        .expect("service");
        let named = pod(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"containers": [], "hostname": "h", "subdomain": "web", "nodeName": "n1"}
        }));
        assert_eq!(published_hostname(&named, &svc).as_deref(), Some("h"));
        assert_eq!(node_name(&named).as_deref(), Some("n1"));
        let r = target_ref(&named);
        assert_eq!(
            (
                r.kind.as_deref(),
                r.namespace.as_deref(),
                r.name.as_deref(),
                r.uid.as_deref()
            ),
            (Some("Pod"), Some("ns"), Some("p"), Some("u1"))
        );
        let plain = pod(serde_json::json!({
            "metadata": {"name": "q", "namespace": "ns"},
            "spec": {"containers": [], "hostname": "h", "nodeName": ""}
        }));
        assert_eq!(published_hostname(&plain, &svc), None);
        assert_eq!(node_name(&plain), None);
    }
}
