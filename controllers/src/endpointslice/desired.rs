//! The endpoints a Service with a selector should have, per address type
//! and port list (upstream's `podToEndpoint` and `getEndpointPorts`): each
//! selected pod that belongs in endpoints becomes an endpoint with its IP of
//! that family, its readiness (`ready`, `serving`, `terminating`), node, zone,
//! hostname and a reference to the pod.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};

use super::pods;
use super::reconciler::Group;
use crate::workload::pods::is_ready;

/// The node label whose value is an endpoint's zone.
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// The wanted groups, and whether a pod was left out because its node is not
/// known yet (the Service is then synced again later).
pub(crate) fn groups(
    svc: &Service,
    pods: &[&Pod],
    node: impl Fn(&str) -> Option<std::sync::Arc<Node>>,
) -> (Vec<Group>, bool) {
    let publish_not_ready = svc
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let mut missing_node = false;
    let mut by_ports: BTreeMap<(String, String), Group> = BTreeMap::new();
    let mut order: Vec<(String, String)> = Vec::new();
    for address_type in pods::service_address_types(svc) {
        for pod in pods {
            if !pods::should_be_in_endpoints(pod, true) {
                continue;
            }
            let Some(ip) = pods::pod_ip_of(pod, address_type) else {
                continue;
            };
            let node_name = pods::node_name(pod);
            let zone = match &node_name {
                Some(n) => match node(n) {
                    Some(node) => node
                        .metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(ZONE_LABEL))
                        .filter(|z| !z.is_empty())
                        .cloned(),
                    None => {
                        missing_node = true;
                        continue;
                    }
                },
                None => None,
            };
            let serving = is_ready(pod);
            let terminating = pod.metadata.deletion_timestamp.is_some();
            let endpoint = Endpoint {
                addresses: vec![ip.to_string()],
                conditions: Some(EndpointConditions {
                    // Never ready while terminating, unless the Service asks
                    // for not-ready addresses.
                    ready: Some(publish_not_ready || (serving && !terminating)),
                    serving: Some(serving),
                    terminating: Some(terminating),
                }),
                hostname: pods::published_hostname(pod, svc),
                node_name,
                target_ref: Some(pods::target_ref(pod)),
                zone,
                ..Endpoint::default()
            };
            let ports = ports_of(svc, pod);
            let key = (
                address_type.to_string(),
                serde_json::to_string(&ports).unwrap_or_default(),
            );
            let group = by_ports.entry(key.clone()).or_insert_with(|| {
                order.push(key);
                Group {
                    address_type: address_type.to_string(),
                    ports,
                    endpoints: Vec::new(),
                }
            });
            group.endpoints.push(endpoint);
        }
    }
    let groups = order
        .into_iter()
        .filter_map(|k| by_ports.remove(&k))
        .collect();
    (groups, missing_node)
}

/// The Service's ports as this pod serves them; ports whose named target the
/// pod lacks are left out.
fn ports_of(svc: &Service, pod: &Pod) -> Vec<EndpointPort> {
    svc.spec
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .filter_map(|p| {
            let port = pods::find_port(pod, p)?;
            Some(EndpointPort {
                name: Some(p.name.clone().unwrap_or_default()),
                port: Some(port),
                protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: p.app_protocol.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_of_pods() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
        }))
        .expect("service");
        let pod = |name: &str, ip: &str, ready: &str, port: i32| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "ns", "uid": name},
                "spec": {"nodeName": "n1", "hostname": name, "subdomain": "web",
                         "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": port}]}]},
                "status": {"phase": "Running", "podIP": ip,
                           "conditions": [{"type": "Ready", "status": ready}]}
            }))
            .expect("pod")
        };
        let a = pod("a", "10.0.0.1", "True", 8080);
        let b = pod("b", "10.0.0.2", "False", 8080);
        let c = pod("c", "10.0.0.3", "True", 9090);
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1", "labels": {ZONE_LABEL: "z1"}}
        }))
        .expect("node");
        let node = std::sync::Arc::new(node);
        let (groups, missing) = groups(&svc, &[&a, &b, &c], |_| Some(node.clone()));
        assert!(!missing);
        assert_eq!(groups.len(), 2, "two port sets: 8080 and 9090");
        assert_eq!(groups[0].ports[0].port, Some(8080));
        assert_eq!(groups[0].endpoints.len(), 2);
        let b_ep = &groups[0].endpoints[1];
        assert_eq!(b_ep.conditions.as_ref().and_then(|c| c.ready), Some(false));
        assert_eq!(b_ep.zone.as_deref(), Some("z1"));
        assert_eq!(b_ep.hostname.as_deref(), Some("b"));
        let (groups, missing) = groups_without_nodes(&svc, &[&a]);
        assert!(missing && groups.is_empty());
    }

    fn groups_without_nodes(svc: &Service, pods: &[&Pod]) -> (Vec<Group>, bool) {
        groups(svc, pods, |_| None)
    }
}
