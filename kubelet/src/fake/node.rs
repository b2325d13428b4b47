//! The Node objects of fake nodes: what they look like (labels, capacity,
//! conditions, addresses, node info), registering them (create or adopt) and
//! refreshing the Ready heartbeat.

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};

use crate::node_heartbeat::{self, healthy_conditions};

use super::ipam::{NodeCidr, free_indices};
use super::{Error, FIELD_MANAGER, FakeNodeConfig};

/// What the rest of the fake node needs to know about a registered node.
#[derive(Debug, Clone)]
pub(crate) struct Registered {
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) cidr: NodeCidr,
    pub(crate) host_ip: String,
    /// When its conditions last changed (registration), kept as their
    /// `lastTransitionTime` by every heartbeat.
    pub(crate) since: Timestamp,
}

/// Creates the configured nodes that do not exist and adopts those that do
/// (keeping their pod CIDR and address), then writes their status.
pub(crate) async fn register_all(
    client: &kube::Client,
    config: &FakeNodeConfig,
) -> Result<Vec<Registered>, Error> {
    let api: Api<Node> = Api::all(client.clone());
    let existing: BTreeMap<String, Node> = api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name.clone().map(|name| (name, n)))
        .collect();
    let used: BTreeSet<u32> = existing
        .values()
        .filter_map(|n| n.spec.as_ref()?.pod_cidr.as_deref())
        .filter_map(NodeCidr::parse)
        .filter_map(NodeCidr::index)
        .collect();
    let needing_cidr = config
        .names
        .iter()
        .filter(|name| cidr_of(existing.get(*name)).is_none())
        .count();
    let mut fresh = free_indices(&used, needing_cidr).into_iter();
    let mut registered = Vec::with_capacity(config.names.len());
    for name in &config.names {
        let cidr = match cidr_of(existing.get(name)) {
            Some(cidr) => cidr,
            None => fresh
                .next()
                .map(NodeCidr::from_index)
                .ok_or(Error::NoCidr)?,
        };
        registered.push((name.clone(), cidr, existing.get(name).cloned()));
    }
    let api = &api;
    futures::stream::iter(registered)
        .map(|(name, cidr, old)| register_one(api, config, name, cidr, old))
        .buffer_unordered(super::PARALLEL_WRITES)
        .try_collect()
        .await
}

fn cidr_of(node: Option<&Node>) -> Option<NodeCidr> {
    NodeCidr::parse(node?.spec.as_ref()?.pod_cidr.as_deref()?)
}

async fn register_one(
    api: &Api<Node>,
    config: &FakeNodeConfig,
    name: String,
    cidr: NodeCidr,
    existing: Option<Node>,
) -> Result<Registered, Error> {
    let host_ip = existing
        .as_ref()
        .and_then(internal_ip)
        .unwrap_or_else(|| cidr.node_ip().to_string());
    let desired = node_object(config, &name, cidr);
    let node = match existing {
        None => match api.create(&post_params(), &desired).await {
            Ok(node) => node,
            // Registered by someone else between our list and create: adopt it.
            Err(kube::Error::Api(e)) if e.code == 409 => api.get(&name).await?,
            Err(e) => return Err(e.into()),
        },
        Some(old) => {
            let mut patch = serde_json::json!({
                "metadata": {
                    "labels": desired.metadata.labels,
                    "annotations": desired.metadata.annotations,
                },
                "spec": {},
            });
            if cidr_of(Some(&old)).is_none() {
                patch["spec"]["podCIDR"] = serde_json::json!(cidr.to_string());
                patch["spec"]["podCIDRs"] = serde_json::json!([cidr.to_string()]);
            }
            // Taints others added (e.g. by a node lifecycle controller) stay
            // unless this run is configured with its own.
            if !config.taints.is_empty() {
                patch["spec"]["taints"] = serde_json::json!(config.taints);
            }
            api.patch(&name, &patch_params(), &Patch::Merge(&patch))
                .await?
        }
    };
    let uid = node.metadata.uid.clone().unwrap_or_default();
    let since = Timestamp::now();
    let status = node_status(config, &host_ip, &name, since);
    api.patch_status(
        &name,
        &patch_params(),
        &Patch::Merge(serde_json::json!({ "status": status })),
    )
    .await?;
    tracing::info!(node = %name, pod_cidr = %cidr, "fake node registered");
    Ok(Registered {
        name,
        uid,
        cidr,
        host_ip,
        since,
    })
}

fn internal_ip(node: &Node) -> Option<String> {
    node.status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .find(|a| a.type_ == "InternalIP")
        .map(|a| a.address.clone())
}

/// Rewrites the conditions with a fresh `lastHeartbeatTime`, as the kubelet's
/// periodic node status report does.
pub(crate) async fn heartbeat(api: &Api<Node>, name: &str, since: Timestamp) -> Result<(), Error> {
    let now = Timestamp::now();
    let mut conditions = healthy_conditions(since, now);
    // The Node's `fake.ironkube.dev/ready: "false"` plays a kubelet that
    // reports NotReady while it keeps renewing its Lease.
    let node = api.get_metadata_opt(name).await?;
    let not_ready = node
        .and_then(|n| n.metadata.annotations)
        .and_then(|a| a.get(super::READY).cloned())
        .is_some_and(|v| v == "false");
    if not_ready {
        mark_not_ready(&mut conditions, now);
    }
    let patch = serde_json::json!({ "status": { "conditions": conditions } });
    api.patch_status(name, &patch_params(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Turns the Ready condition of a healthy report into the kubelet's NotReady.
fn mark_not_ready(conditions: &mut [NodeCondition], now: Timestamp) {
    for c in conditions.iter_mut().filter(|c| c.type_ == "Ready") {
        c.status = "False".into();
        c.reason = Some("KubeletNotReady".into());
        c.message = Some("fake node told to report NotReady".into());
        c.last_transition_time = Some(Time(now));
    }
}

/// The Node as registered: metadata and spec (status is written separately,
/// through `nodes/status`).
pub(crate) fn node_object(config: &FakeNodeConfig, name: &str, cidr: NodeCidr) -> Node {
    let mut labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", name),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", "linux"),
        ("beta.kubernetes.io/arch", "amd64"),
        ("type", "kwok"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    labels.extend(config.labels.clone());
    let annotations = [
        ("kwok.x-k8s.io/node", "fake"),
        ("ironkube.dev/fake-node", "true"),
        ("node.alpha.kubernetes.io/ttl", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: Some(cidr.to_string()),
            pod_cidrs: Some(vec![cidr.to_string()]),
            provider_id: Some(format!("kwok://{name}")),
            taints: (!config.taints.is_empty()).then(|| config.taints.clone()),
            ..Default::default()
        }),
        status: None,
    }
}

pub(crate) fn node_status(
    config: &FakeNodeConfig,
    host_ip: &str,
    name: &str,
    now: Timestamp,
) -> NodeStatus {
    let resources: BTreeMap<String, Quantity> = [
        ("cpu", &config.cpu),
        ("memory", &config.memory),
        ("pods", &config.pods),
        ("ephemeral-storage", &config.ephemeral_storage),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Quantity(v.clone())))
    .collect();
    NodeStatus {
        capacity: Some(resources.clone()),
        allocatable: Some(resources),
        conditions: Some(healthy_conditions(now, now)),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: host_ip.into(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: name.into(),
            },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint { port: 10250 }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: "amd64".into(),
            boot_id: String::new(),
            container_runtime_version: "fake://1.0.0".into(),
            kernel_version: String::new(),
            kube_proxy_version: String::new(),
            kubelet_version: "v1.34.0-fake".into(),
            machine_id: String::new(),
            operating_system: "linux".into(),
            os_image: String::new(),
            swap: None,
            system_uuid: String::new(),
        }),
        ..Default::default()
    }
}

pub(crate) fn post_params() -> PostParams {
    node_heartbeat::post_params(FIELD_MANAGER)
}

pub(crate) fn patch_params() -> PatchParams {
    node_heartbeat::patch_params(FIELD_MANAGER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_object_carries_kwok_markers_and_cidr() {
        let config = FakeNodeConfig::new(vec!["fake-node-0".into()]);
        let node = node_object(&config, "fake-node-0", NodeCidr::from_index(4));
        let labels = node.metadata.labels.unwrap_or_default();
        assert_eq!(labels.get("type").map(String::as_str), Some("kwok"));
        assert_eq!(
            labels.get("kubernetes.io/hostname").map(String::as_str),
            Some("fake-node-0")
        );
        let annotations = node.metadata.annotations.unwrap_or_default();
        assert_eq!(
            annotations.get("kwok.x-k8s.io/node").map(String::as_str),
            Some("fake")
        );
        assert_eq!(
            annotations
                .get("ironkube.dev/fake-node")
                .map(String::as_str),
            Some("true")
        );
        let spec = node.spec.unwrap_or_default();
        assert_eq!(spec.pod_cidr.as_deref(), Some("10.244.4.0/24"));
    }

    #[test]
    fn status_reports_capacity_and_ready() {
        let config = FakeNodeConfig::new(vec!["n".into()]);
        let status = node_status(&config, "10.0.0.2", "n", Timestamp::now());
        let cap = status.capacity.clone().unwrap_or_default();
        assert_eq!(cap.get("cpu").map(|q| q.0.as_str()), Some("32"));
        assert_eq!(cap.get("pods").map(|q| q.0.as_str()), Some("110"));
        assert_eq!(status.allocatable, status.capacity);
        let conds = status.conditions.unwrap_or_default();
        let ready = conds.iter().find(|c| c.type_ == "Ready").expect("Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("True", Some("KubeletReady"))
        );
        assert_eq!(conds.iter().filter(|c| c.status == "False").count(), 3);
    }
}
