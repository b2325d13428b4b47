//! Node heartbeats through Leases for the fake nodes, written as the real
//! kubelet writes them (`crate::node_heartbeat`) under the fake's field manager.

use super::node::Registered;
use super::{Error, FIELD_MANAGER};
use crate::node_heartbeat::{self, Heartbeat};

/// Renews the node's Lease, creating it (owned by the Node) when it does not
/// exist.
pub(crate) async fn renew(client: &kube::Client, node: &Registered) -> Result<(), Error> {
    let heartbeat = Heartbeat {
        node_name: &node.name,
        node_uid: &node.uid,
        field_manager: FIELD_MANAGER,
    };
    Ok(node_heartbeat::renew_lease(client, &heartbeat).await?)
}
