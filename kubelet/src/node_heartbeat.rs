//! What every node, real kubelet or kwok-style fake, reports to stay alive:
//! its Lease `kube-node-lease/<node>`, held by the node and renewed on a short
//! period (how the node lifecycle controller tells a live node from a dead
//! one), and the four conditions of a healthy node in its status.
//! The callers differ only in their field manager and how they know the node.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::NodeCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};

/// The namespace of node Leases.
pub(crate) const LEASE_NAMESPACE: &str = "kube-node-lease";
/// Upstream kubelet's default `nodeLeaseDurationSeconds`.
pub(crate) const LEASE_DURATION_SECONDS: i32 = 40;

/// The node a heartbeat is for, and who writes it.
pub(crate) struct Heartbeat<'a> {
    pub(crate) node_name: &'a str,
    pub(crate) node_uid: &'a str,
    pub(crate) field_manager: &'a str,
}

/// Renews the node's Lease, creating it (owned by the Node, as upstream's
/// kubelet does) when it does not exist.
pub(crate) async fn renew_lease(
    client: &kube::Client,
    hb: &Heartbeat<'_>,
) -> Result<(), kube::Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let now = MicroTime(Timestamp::now());
    let patch = serde_json::json!({
        "spec": {
            "holderIdentity": hb.node_name,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": now,
        }
    });
    match api
        .patch(
            hb.node_name,
            &patch_params(hb.field_manager),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(hb.node_name.into()),
                    namespace: Some(LEASE_NAMESPACE.into()),
                    owner_references: Some(vec![OwnerReference {
                        api_version: "v1".into(),
                        kind: "Node".into(),
                        name: hb.node_name.into(),
                        uid: hb.node_uid.into(),
                        ..Default::default()
                    }]),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(hb.node_name.into()),
                    lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
                    renew_time: Some(now),
                    ..Default::default()
                }),
            };
            match api.create(&post_params(hb.field_manager), &lease).await {
                Ok(_) => Ok(()),
                // Created concurrently; the next renewal patches it.
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// The four node conditions a healthy kubelet reports, true `since`, last
/// reported at `heartbeat`.
pub(crate) fn healthy_conditions(since: Timestamp, heartbeat: Timestamp) -> Vec<NodeCondition> {
    [
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        (
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        (
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        (
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ]
    .into_iter()
    .map(|(ty, status, reason, message)| NodeCondition {
        type_: ty.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(Time(heartbeat)),
        last_transition_time: Some(Time(since)),
    })
    .collect()
}

/// Create options writing as `field_manager`.
pub(crate) fn post_params(field_manager: &str) -> PostParams {
    PostParams {
        field_manager: Some(field_manager.into()),
        ..Default::default()
    }
}

/// Patch options writing as `field_manager`.
pub(crate) fn patch_params(field_manager: &str) -> PatchParams {
    PatchParams {
        field_manager: Some(field_manager.into()),
        ..Default::default()
    }
}
