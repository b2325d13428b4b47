//! The Deployment controller: rolls a Deployment's pod template out through
//! ReplicaSets named `<deployment>-<pod-template-hash>`, one per template,
//! scaling the new one up and the old ones down within `maxSurge` and
//! `maxUnavailable` (or all old ones first for `Recreate`), spreading scale
//! changes proportionally mid-rollout, keeping `revisionHistoryLimit` old
//! ReplicaSets, and reporting progress in `status` and its conditions.

mod controller;
mod rolling;
mod scale;
mod status;
mod strategy;
mod sync;
mod util;

/// Runs the Deployment controller.
pub async fn run(client: kube::Client) {
    controller::run(client).await;
}
