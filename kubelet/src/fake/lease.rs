//! Node heartbeats through Leases: `kube-node-lease/<node>` held by the node
//! and renewed on a short period, which is how upstream's node lifecycle
//! controller tells a live kubelet from a dead one.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch};

use super::Error;
use super::node::{Registered, patch_params, post_params};

pub(crate) const NAMESPACE: &str = "kube-node-lease";
/// Upstream kubelet's default `nodeLeaseDurationSeconds`.
pub(crate) const DURATION_SECONDS: i32 = 40;

/// Renews the node's Lease, creating it (owned by the Node, as the kubelet
/// does) when it does not exist.
pub(crate) async fn renew(client: &kube::Client, node: &Registered) -> Result<(), Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let now = MicroTime(Timestamp::now());
    let patch = serde_json::json!({
        "spec": {
            "holderIdentity": node.name,
            "leaseDurationSeconds": DURATION_SECONDS,
            "renewTime": now,
        }
    });
    match api
        .patch(&node.name, &patch_params(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(node.name.clone()),
                    namespace: Some(NAMESPACE.into()),
                    owner_references: Some(vec![OwnerReference {
                        api_version: "v1".into(),
                        kind: "Node".into(),
                        name: node.name.clone(),
                        uid: node.uid.clone(),
                        ..Default::default()
                    }]),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(node.name.clone()),
                    lease_duration_seconds: Some(DURATION_SECONDS),
                    renew_time: Some(now),
                    ..Default::default()
                }),
            };
            match api.create(&post_params(), &lease).await {
                Ok(_) => Ok(()),
                // Created concurrently; the next renewal patches it.
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}
