//! Wiring of the StatefulSet controller: the shared workload runner (sets,
//! pods, expectations, back-off) with nothing more to watch.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::sync::{Ctx, KIND, reconcile};
use crate::workload::runner::{self, PodOwner};

impl PodOwner for StatefulSet {
    const KIND: &'static str = KIND;

    fn pod_selector(&self) -> Option<LabelSelector> {
        self.spec.as_ref().map(|s| s.selector.clone())
    }
}

pub(crate) async fn run(client: kube::Client) {
    runner::run(
        client,
        "statefulset-controller",
        reconcile,
        |shared| Ctx {
            client: shared.client,
            pods: shared.pods,
            expectations: shared.expectations,
            events: shared.events,
        },
        runner::no_more_requests,
    )
    .await;
}
