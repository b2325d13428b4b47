//! The kubelet's own Node: registration (create, or adopt an existing one),
//! the status it reports (capacity from the machine, node info from the
//! runtime, the images the runtime holds) and the Lease heartbeat in
//! `kube-node-lease`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ContainerImage, DaemonEndpoint, Node, NodeAddress, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::config::{Config, KUBELET_VERSION};
use crate::cri::{self, Runtime, v1};
use crate::machine::Machine;
use crate::node_heartbeat::{self, Heartbeat, healthy_conditions};
use crate::{Error, FIELD_MANAGER};

/// Upstream reports at most this many images (`nodeStatusMaxImages`).
const MAX_IMAGES: usize = 50;
/// Upstream's default hard eviction thresholds, kept out of allocatable:
/// `memory.available<100Mi` and `nodefs.available<10%`.
const EVICTION_MEMORY_BYTES: u64 = 100 * 1024 * 1024;

/// The registered node: what the pod workers and heartbeats need.
#[derive(Debug, Clone)]
pub struct Registered {
    pub name: String,
    pub uid: String,
    pub host_ip: String,
    /// The runtime as the node reports it, e.g. `containerd://1.6.20`; its
    /// scheme prefixes container IDs in pod status.
    pub runtime_name: String,
    pub runtime_version: String,
    /// When the conditions last changed (registration).
    pub since: Timestamp,
}

/// Registers the node (or adopts the one of that name) and writes its status.
pub(crate) async fn register(
    client: &kube::Client,
    config: &Config,
    runtime: &Runtime,
    port: u16,
) -> Result<Registered, Error> {
    let version = runtime.version().await?;
    let api: Api<Node> = Api::all(client.clone());
    let desired = node_object(config);
    let node = match api.create(&post_params(), &desired).await {
        Ok(node) => node,
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let old = api.get(&config.node_name).await?;
            let mut patch = serde_json::json!({
                "metadata": { "labels": desired.metadata.labels },
            });
            let has_cidr = old
                .spec
                .as_ref()
                .and_then(|s| s.pod_cidr.as_ref())
                .is_some();
            if let (false, Some(cidr)) = (has_cidr, &config.pod_cidr) {
                patch["spec"] = serde_json::json!({ "podCIDR": cidr, "podCIDRs": [cidr] });
            }
            api.patch(&config.node_name, &patch_params(), &Patch::Merge(&patch))
                .await?
        }
        Err(e) => return Err(e.into()),
    };
    let registered = Registered {
        name: config.node_name.clone(),
        uid: node.metadata.uid.clone().unwrap_or_default(),
        host_ip: config.node_ip.to_string(),
        runtime_name: version.runtime_name.clone(),
        runtime_version: version.runtime_version.clone(),
        since: Timestamp::now(),
    };
    report_status(client, config, runtime, &registered, port).await?;
    tracing::info!(node = %registered.name, runtime = %version.runtime_name,
        runtime_version = %version.runtime_version, "node registered");
    Ok(registered)
}

/// Writes the node status: capacity, conditions with a fresh heartbeat,
/// addresses, node info and images.
pub(crate) async fn report_status(
    client: &kube::Client,
    config: &Config,
    runtime: &Runtime,
    node: &Registered,
    port: u16,
) -> Result<(), Error> {
    let machine = Machine::read(&config.root_dir);
    let images = runtime
        .images
        .clone()
        .list_images(v1::ListImagesRequest { filter: None })
        .await
        .map_err(cri::call("ListImages"))?
        .into_inner()
        .images;
    let status = node_status(node, &machine, &images, port, Timestamp::now());
    let api: Api<Node> = Api::all(client.clone());
    api.patch_status(
        &node.name,
        &patch_params(),
        &Patch::Merge(serde_json::json!({ "status": status })),
    )
    .await?;
    Ok(())
}

/// Renews the node's Lease (see `node_heartbeat`).
pub(crate) async fn renew_lease(client: &kube::Client, node: &Registered) -> Result<(), Error> {
    let heartbeat = Heartbeat {
        node_name: &node.name,
        node_uid: &node.uid,
        field_manager: FIELD_MANAGER,
    };
    Ok(node_heartbeat::renew_lease(client, &heartbeat).await?)
}

/// The Node as registered: labels and spec (status goes through `nodes/status`).
fn node_object(config: &Config) -> Node {
    let arch = Machine::read(&config.root_dir).arch;
    let labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", config.node_name.as_str()),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", arch),
        ("beta.kubernetes.io/os", "linux"),
        ("beta.kubernetes.io/arch", arch),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Node {
        metadata: ObjectMeta {
            name: Some(config.node_name.clone()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                "node.alpha.kubernetes.io/ttl".to_string(),
                "0".to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: config.pod_cidr.clone(),
            pod_cidrs: config.pod_cidr.clone().map(|c| vec![c]),
            ..Default::default()
        }),
        status: None,
    }
}

pub(crate) fn node_status(
    node: &Registered,
    machine: &Machine,
    images: &[v1::Image],
    port: u16,
    now: Timestamp,
) -> NodeStatus {
    let q = |s: String| Quantity(s);
    let capacity: BTreeMap<String, Quantity> = BTreeMap::from([
        ("cpu".to_string(), q(machine.cpus.to_string())),
        (
            "memory".to_string(),
            q(format!("{}Ki", machine.memory_bytes / 1024)),
        ),
        (
            "ephemeral-storage".to_string(),
            q(format!("{}Ki", machine.disk_bytes / 1024)),
        ),
        ("pods".to_string(), q("110".into())),
    ]);
    let mut allocatable = capacity.clone();
    let memory = machine.memory_bytes.saturating_sub(EVICTION_MEMORY_BYTES);
    allocatable.insert("memory".into(), q(format!("{}Ki", memory / 1024)));
    let disk = machine.disk_bytes - machine.disk_bytes / 10;
    allocatable.insert("ephemeral-storage".into(), q(disk.to_string()));
    NodeStatus {
        capacity: Some(capacity),
        allocatable: Some(allocatable),
        conditions: Some(healthy_conditions(node.since, now)),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: node.host_ip.clone(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: node.name.clone(),
            },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint { port: port.into() }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: machine.arch.into(),
            boot_id: machine.boot_id.clone(),
            container_runtime_version: format!("{}://{}", node.runtime_name, node.runtime_version),
            kernel_version: machine.kernel_version.clone(),
            kube_proxy_version: String::new(),
            kubelet_version: KUBELET_VERSION.into(),
            machine_id: machine.machine_id.clone(),
            operating_system: "linux".into(),
            os_image: machine.os_image.clone(),
            swap: None,
            system_uuid: machine.system_uuid.clone(),
        }),
        images: Some(node_images(images)),
        ..Default::default()
    }
}

/// The largest images first, as upstream lists them; each named by its tags
/// and digests (an image with neither is left out).
fn node_images(images: &[v1::Image]) -> Vec<ContainerImage> {
    let mut sorted: Vec<&v1::Image> = images.iter().collect();
    sorted.sort_by_key(|img| std::cmp::Reverse(img.size));
    sorted
        .into_iter()
        .filter_map(|img| {
            let names: Vec<String> = img
                .repo_digests
                .iter()
                .chain(&img.repo_tags)
                .cloned()
                .collect();
            (!names.is_empty()).then(|| ContainerImage {
                names: Some(names),
                size_bytes: i64::try_from(img.size).ok(),
            })
        })
        .take(MAX_IMAGES)
        .collect()
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
    fn status_from_machine_and_images() {
        let node = Registered {
            name: "n1".into(),
            uid: "u".into(),
            host_ip: "127.0.0.1".into(),
            runtime_name: "containerd".into(),
            runtime_version: "1.6.20".into(),
            since: Timestamp::now(),
        };
        let machine = Machine {
            cpus: 2,
            memory_bytes: 4 * 1024 * 1024 * 1024,
            disk_bytes: 1000 * 1024,
            kernel_version: "6.1".into(),
            os_image: "Debian".into(),
            machine_id: String::new(),
            boot_id: String::new(),
            system_uuid: String::new(),
            arch: "amd64",
        };
        let images = vec![
            v1::Image {
                repo_tags: vec!["small:1".into()],
                size: 10,
                ..Default::default()
            },
            v1::Image {
                repo_tags: vec!["big:1".into()],
                repo_digests: vec!["big@sha256:ab".into()],
                size: 100,
                ..Default::default()
            },
            v1::Image {
                size: 1000,
                ..Default::default()
            },
        ];
        let s = node_status(&node, &machine, &images, 10250, Timestamp::now());
        let cap = s.capacity.unwrap_or_default();
        assert_eq!(cap["cpu"].0, "2");
        assert_eq!(cap["memory"].0, "4194304Ki");
        assert_eq!(cap["pods"].0, "110");
        let alloc = s.allocatable.unwrap_or_default();
        assert_eq!(alloc["memory"].0, "4091904Ki");
        let info = s.node_info.unwrap_or_default();
        assert_eq!(info.container_runtime_version, "containerd://1.6.20");
        assert_eq!(info.kubelet_version, KUBELET_VERSION);
        let imgs = s.images.unwrap_or_default();
        assert_eq!(imgs.len(), 2);
        assert_eq!(
            imgs[0].names.as_deref(),
            Some(&["big@sha256:ab".to_string(), "big:1".to_string()][..])
        );
    }
}
