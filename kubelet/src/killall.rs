//! Tears a node's pods down: stops and removes every pod sandbox (and so
//! every container and network attachment) the node's kubelet created, as
//! k3s's killall script does. For taking a test node down without leaving
//! pods running in the shared containerd.

use std::path::Path;

use crate::{Result, cri, pods};

/// Removes the node's sandboxes; how many there were.
pub async fn remove_node_pods(runtime_endpoint: &Path, node: &str) -> Result<usize> {
    let runtime = cri::Runtime::connect(runtime_endpoint).await?;
    let sandboxes = pods::runtime::node_sandboxes(&runtime, node).await?;
    for s in &sandboxes {
        pods::runtime::remove_sandbox(&runtime, &s.id).await?;
    }
    Ok(sandboxes.len())
}
