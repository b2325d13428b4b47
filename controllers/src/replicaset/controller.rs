//! Wiring of the replica controller: the shared workload runner (owners,
//! pods, expectations, back-off) for either kind it manages.

use super::kind::ReplicaKind;
use super::sync::{Ctx, reconcile};
use crate::workload::runner;

/// Runs the controller for kind `K` until its watches end.
pub(crate) async fn run<K: ReplicaKind>(client: kube::Client) {
    runner::run(
        client,
        K::REPORTER,
        reconcile::<K>,
        |shared| Ctx {
            client: shared.client,
            pods: shared.pods,
            owners: shared.owners,
            expectations: shared.expectations,
            events: shared.events,
        },
        runner::no_more_requests,
    )
    .await;
}
