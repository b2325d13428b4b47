//! Wiring of the DaemonSet controller: the shared workload runner (owners,
//! pods, expectations, back-off) plus a node reflector whose every event
//! (added, removed, relabelled, tainted) requeues every DaemonSet.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::Api;
use kube::runtime::controller::trigger_with;
use kube::runtime::{WatchStreamExt, reflector, watcher};

use super::sync::{Ctx, KIND, reconcile};
use crate::workload::runner::{self, PodOwner};

impl PodOwner for DaemonSet {
    const KIND: &'static str = KIND;

    fn pod_selector(&self) -> Option<LabelSelector> {
        self.spec.as_ref().map(|s| s.selector.clone())
    }
}

pub(crate) async fn run(client: kube::Client) {
    let (nodes, node_writer) = reflector::store::<Node>();
    let node_events = watcher(Api::<Node>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(node_writer)
        .touched_objects();
    runner::run(
        client,
        "daemonset-controller",
        reconcile,
        |shared| Ctx {
            client: shared.client,
            pods: shared.pods,
            nodes,
            expectations: shared.expectations,
            events: shared.events,
        },
        |sets| trigger_with(node_events, move |_node: Node| runner::all_owners(&sets)).boxed(),
    )
    .await;
}
