//! The subsets of a Service's Endpoints (upstream's `syncService` body with
//! `RepackSubsets`): one address per selected pod that belongs in endpoints,
//! ready or not ready, crossed with each Service port the pod resolves; then
//! repacked so that ports served by exactly the same addresses share one
//! subset, everything sorted so that equal inputs give equal objects.
//! Past [`MAX_CAPACITY`] addresses the subsets are truncated, ready
//! addresses first, each subset keeping its share.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Pod, Service};

use crate::endpointslice::pods;
use crate::workload::pods::is_ready;

/// Most addresses an Endpoints object holds.
pub(crate) const MAX_CAPACITY: usize = 1000;

/// An address's identity in repacking: its IP and its pod.
type AddrKey = (String, String);
/// A port's identity: name, number, protocol, app protocol.
type PortKey = (String, i32, String, String);
/// A port and the addresses serving it, with their readiness.
type Served = (Option<EndpointPort>, BTreeMap<AddrKey, bool>);

fn addr_key(a: &EndpointAddress) -> AddrKey {
    (
        a.ip.clone(),
        a.target_ref
            .as_ref()
            .and_then(|r| r.uid.clone())
            .unwrap_or_default(),
    )
}

fn port_key(p: &EndpointPort) -> PortKey {
    (
        p.name.clone().unwrap_or_default(),
        p.port,
        p.protocol.clone().unwrap_or_default(),
        p.app_protocol.clone().unwrap_or_default(),
    )
}

fn address(svc: &Service, pod: &Pod, ip: &str) -> EndpointAddress {
    EndpointAddress {
        ip: ip.to_string(),
        hostname: pods::published_hostname(pod, svc),
        node_name: pods::node_name(pod),
        target_ref: Some(pods::target_ref(pod)),
    }
}

/// The repacked subsets for `svc` over the pods its selector picks.
pub(crate) fn compute(svc: &Service, selected: &[&Pod]) -> Vec<EndpointSubset> {
    let spec = svc.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let family = pods::service_address_types(svc)
        .first()
        .copied()
        .unwrap_or("IPv4");
    let service_ports = spec.ports.unwrap_or_default();
    let headless = spec.cluster_ip.as_deref() == Some("None");

    let mut addresses: BTreeMap<AddrKey, (EndpointAddress, bool)> = BTreeMap::new();
    // Per port, the addresses serving it; `None` gathers the addresses of a
    // headless Service without ports.
    let mut served: BTreeMap<Option<PortKey>, Served> = BTreeMap::new();
    for pod in selected {
        if !pods::should_be_in_endpoints(pod, publish_not_ready) {
            continue;
        }
        let Some(ip) = pods::pod_ip_of(pod, family) else {
            continue;
        };
        let addr = address(svc, pod, ip);
        let ready = publish_not_ready || is_ready(pod);
        let key = addr_key(&addr);
        let mut add = |port: Option<EndpointPort>| {
            let pk = port.as_ref().map(port_key);
            served
                .entry(pk)
                .or_insert_with(|| (port, BTreeMap::new()))
                .1
                .insert(key.clone(), ready);
        };
        if service_ports.is_empty() {
            if headless {
                add(None);
            } else {
                continue;
            }
        } else {
            for sp in &service_ports {
                let Some(number) = pods::find_port(pod, sp) else {
                    tracing::debug!(pod = ?pod.metadata.name, port = ?sp.name, "pod lacks the service's target port");
                    continue;
                };
                add(Some(EndpointPort {
                    name: sp.name.clone().filter(|n| !n.is_empty()),
                    port: number,
                    protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: sp.app_protocol.clone(),
                }));
            }
        }
        addresses.insert(key, (addr, ready));
    }

    // Ports with the same addresses (and readiness) share a subset.
    let mut by_addresses: BTreeMap<Vec<(AddrKey, bool)>, Vec<EndpointPort>> = BTreeMap::new();
    for (_, (port, addrs)) in served {
        let set: Vec<(AddrKey, bool)> = addrs.into_iter().collect();
        let ports = by_addresses.entry(set).or_default();
        ports.extend(port);
    }
    let mut subsets: Vec<EndpointSubset> = by_addresses
        .into_iter()
        .map(|(set, ports)| {
            let mut ready = Vec::new();
            let mut not_ready = Vec::new();
            for (key, is_ready) in set {
                if let Some((addr, _)) = addresses.get(&key) {
                    if is_ready {
                        ready.push(addr.clone());
                    } else {
                        not_ready.push(addr.clone());
                    }
                }
            }
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect();
    subsets.sort_by_key(|s| s.ports.iter().flatten().map(port_key).collect::<Vec<_>>());
    subsets
}

fn count(subsets: &[EndpointSubset], ready: bool) -> usize {
    subsets
        .iter()
        .map(|s| {
            if ready {
                s.addresses.as_ref().map_or(0, Vec::len)
            } else {
                s.not_ready_addresses.as_ref().map_or(0, Vec::len)
            }
        })
        .sum()
}

/// Cuts the subsets down to [`MAX_CAPACITY`] addresses: not-ready ones go
/// first; each subset keeps a share proportional to its size (rounded up,
/// the last ones getting what is left). Returns whether anything was cut.
pub(crate) fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let ready = count(subsets, true);
    let not_ready = count(subsets, false);
    if ready + not_ready <= MAX_CAPACITY {
        return false;
    }
    let cut_ready = ready > MAX_CAPACITY;
    let (budget, total) = if cut_ready {
        (MAX_CAPACITY, ready)
    } else {
        (MAX_CAPACITY - ready, not_ready)
    };
    let mut left = budget;
    for s in subsets.iter_mut() {
        let list = if cut_ready {
            s.not_ready_addresses = None;
            &mut s.addresses
        } else {
            &mut s.not_ready_addresses
        };
        let Some(list) = list.as_mut() else {
            continue;
        };
        let share = (list.len() * budget).div_ceil(total).min(left);
        list.truncate(share);
        left -= list.len();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(extra: serde_json::Value) -> Service {
        let mut v = serde_json::json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"selector": {"app": "web"}, "ports": [
                {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                {"name": "metrics", "port": 9100, "targetPort": 9100, "protocol": "TCP"}
            ]}
        });
        if let (Some(spec), serde_json::Value::Object(extra)) = (v["spec"].as_object_mut(), extra) {
            spec.extend(extra);
        }
        serde_json::from_value(v).expect("service")
    }

    fn pod(name: &str, ip: &str, ready: bool, http: Option<i32>) -> Pod {
        let ports: Vec<serde_json::Value> = http
            .map(|p| serde_json::json!({"name": "http", "containerPort": p}))
            .into_iter()
            .collect();
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "ns", "uid": name},
            "spec": {"nodeName": "n", "containers": [{"name": "c", "ports": ports}]},
            "status": {"phase": "Running", "podIP": ip,
                       "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        }))
        .expect("pod")
    }

    fn ips(list: &Option<Vec<EndpointAddress>>) -> Vec<&str> {
        list.iter().flatten().map(|a| a.ip.as_str()).collect()
    }

    #[test]
    fn ready_and_not_ready_repacked_by_ports() {
        let a = pod("a", "10.0.0.1", true, Some(8080));
        let b = pod("b", "10.0.0.2", false, Some(8080));
        let c = pod("c", "10.0.0.3", true, None);
        let subsets = compute(&svc(serde_json::json!({})), &[&c, &b, &a]);
        assert_eq!(subsets.len(), 2, "{subsets:#?}");
        let port_names = |s: &EndpointSubset| -> Vec<String> {
            s.ports
                .iter()
                .flatten()
                .filter_map(|p| p.name.clone())
                .collect()
        };
        // http is served by a and b only (c lacks the named port).
        let http = subsets
            .iter()
            .find(|s| port_names(s) == ["http"])
            .expect("http subset");
        assert_eq!(ips(&http.addresses), ["10.0.0.1"]);
        assert_eq!(ips(&http.not_ready_addresses), ["10.0.0.2"]);
        assert_eq!(http.ports.as_ref().map(|p| p[0].port), Some(8080));
        // metrics by all three.
        let metrics = subsets
            .iter()
            .find(|s| port_names(s) == ["metrics"])
            .expect("metrics subset");
        assert_eq!(ips(&metrics.addresses), ["10.0.0.1", "10.0.0.3"]);
        assert_eq!(ips(&metrics.not_ready_addresses), ["10.0.0.2"]);
        // Two ports with the same addresses share a subset.
        let d = pod("d", "10.0.0.4", true, Some(8080));
        let shared = compute(&svc(serde_json::json!({})), &[&d]);
        assert_eq!(shared.len(), 1);
        assert_eq!(port_names(&shared[0]), ["http", "metrics"]);
    }

    #[test]
    fn publish_not_ready_addresses() {
        let b = pod("b", "10.0.0.2", false, Some(8080));
        let subsets = compute(
            &svc(serde_json::json!({"publishNotReadyAddresses": true})),
            &[&b],
        );
        assert_eq!(ips(&subsets[0].addresses), ["10.0.0.2"]);
        assert!(subsets[0].not_ready_addresses.is_none());
    }

    #[test]
    fn headless_without_ports() {
        let a = pod("a", "10.0.0.1", true, None);
        let headless = svc(serde_json::json!({"clusterIP": "None", "ports": []}));
        let subsets = compute(&headless, &[&a]);
        assert_eq!(subsets.len(), 1);
        assert!(subsets[0].ports.is_none());
        let cluster_ip = svc(serde_json::json!({"ports": []}));
        assert!(compute(&cluster_ip, &[&a]).is_empty());
    }

    #[test]
    fn truncation_keeps_ready_first() {
        let addr = |i: usize| EndpointAddress {
            ip: format!("10.0.{}.{}", i / 250, i % 250),
            ..Default::default()
        };
        let mut subsets = vec![EndpointSubset {
            addresses: Some((0..900).map(addr).collect()),
            not_ready_addresses: Some((900..1100).map(addr).collect()),
            ports: None,
        }];
        assert!(truncate(&mut subsets));
        assert_eq!(count(&subsets, true), 900);
        assert_eq!(count(&subsets, false), 100);
    }
}
