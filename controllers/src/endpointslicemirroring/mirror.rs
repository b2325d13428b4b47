//! An Endpoints object as EndpointSlice groups (upstream's mirroring
//! reconciler): each subset's ports become the slice ports, its ready and
//! not-ready addresses endpoints with `ready` true or false, split by the
//! address type of their IP (invalid IPs are skipped), at most
//! [`MAX_ENDPOINTS_PER_SUBSET`] addresses of a subset, ready ones first.

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointSubset, Endpoints};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};

use crate::endpointslice::pods::address_type;
use crate::endpointslice::reconciler::Group;

/// Upstream's default `--mirroring-max-endpoints-per-subset`; also the most
/// endpoints a mirrored slice holds.
pub(crate) const MAX_ENDPOINTS_PER_SUBSET: usize = 1000;

fn endpoint(addr: &EndpointAddress, ready: bool) -> Endpoint {
    Endpoint {
        addresses: vec![addr.ip.clone()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            ..EndpointConditions::default()
        }),
        hostname: addr.hostname.clone().filter(|h| !h.is_empty()),
        node_name: addr.node_name.clone().filter(|n| !n.is_empty()),
        target_ref: addr.target_ref.clone(),
        ..Endpoint::default()
    }
}

fn ports(subset: &EndpointSubset) -> Vec<EndpointPort> {
    subset
        .ports
        .iter()
        .flatten()
        .map(|p| EndpointPort {
            name: Some(p.name.clone().unwrap_or_default()),
            port: Some(p.port),
            protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
            app_protocol: p.app_protocol.clone(),
        })
        .collect()
}

/// The groups mirroring `endpoints`.
pub(crate) fn groups(endpoints: &Endpoints) -> Vec<Group> {
    let mut groups = Vec::new();
    for subset in endpoints.subsets.iter().flatten() {
        let ports = ports(subset);
        let addresses = subset
            .addresses
            .iter()
            .flatten()
            .map(|a| (a, true))
            .chain(
                subset
                    .not_ready_addresses
                    .iter()
                    .flatten()
                    .map(|a| (a, false)),
            )
            .take(MAX_ENDPOINTS_PER_SUBSET);
        let mut by_type: Vec<Group> = Vec::new();
        for (addr, ready) in addresses {
            let Some(kind) = address_type(&addr.ip) else {
                tracing::debug!(ip = %addr.ip, "not mirroring an invalid IP");
                continue;
            };
            let ep = endpoint(addr, ready);
            match by_type.iter_mut().find(|g| g.address_type == kind) {
                Some(g) => g.endpoints.push(ep),
                None => by_type.push(Group {
                    address_type: kind.to_string(),
                    ports: ports.clone(),
                    endpoints: vec![ep],
                }),
            }
        }
        groups.extend(by_type);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_become_groups() {
        let ep: Endpoints = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "e"},
            "subsets": [{
                "addresses": [{"ip": "10.1.0.1"}, {"ip": "fd00::1"}, {"ip": "bogus"}],
                "notReadyAddresses": [{"ip": "10.1.0.2", "hostname": "h"}],
                "ports": [{"name": "p", "port": 80}]
            }]
        }))
        .expect("endpoints");
        let groups = groups(&ep);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].address_type, "IPv4");
        assert_eq!(groups[0].ports[0].port, Some(80));
        assert_eq!(groups[0].ports[0].protocol.as_deref(), Some("TCP"));
        let ready: Vec<_> = groups[0]
            .endpoints
            .iter()
            .map(|e| {
                (
                    e.addresses[0].as_str(),
                    e.conditions.as_ref().and_then(|c| c.ready),
                )
            })
            .collect();
        assert_eq!(ready, [("10.1.0.1", Some(true)), ("10.1.0.2", Some(false))]);
        assert_eq!(groups[1].address_type, "IPv6");
    }
}
