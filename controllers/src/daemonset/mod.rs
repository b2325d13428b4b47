//! The DaemonSet controller: one pod per eligible node (node selector, node
//! affinity, taints and tolerations), each pinned to its node by a required
//! `metadata.name` affinity term for the scheduler to bind; rolled to a new
//! template through ControllerRevisions with `RollingUpdate` (`maxUnavailable`
//! or `maxSurge`) or `OnDelete`; following nodes as they come, go and change
//! labels or taints; with the per-node counts in `status`.

mod controller;
mod placement;
mod plan;
mod sync;

/// Runs the DaemonSet controller.
pub async fn run(client: kube::Client) {
    controller::run(client).await;
}
