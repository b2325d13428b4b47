//! The EndpointSlice mirroring controller (upstream's
//! `pkg/controller/endpointslicemirroring`): for a Service WITHOUT a selector
//! whose Endpoints are written by hand, EndpointSlices that mirror them,
//! labelled `endpointslice.kubernetes.io/managed-by:
//! endpointslicemirroring-controller.k8s.io` and `kubernetes.io/service-name`,
//! controlled by the Service. Mirrored slices are removed when the Endpoints
//! go, when the Service goes or gains a selector, or when the Endpoints are
//! labelled `endpointslice.kubernetes.io/skip-mirror: "true"` (as the API
//! server labels `default/kubernetes`, whose slice it writes itself; that
//! Service is skipped by name as well).

mod mirror;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};

use crate::endpointslice::feeds;
use crate::endpointslice::queue::{self, Queue};
use crate::endpointslice::reconciler::{self, SliceMeta};
use crate::endpointslice::{Error, apply, managed_slices, slice_meta, split_stale, trigger};

/// This controller's value of the managed-by label.
pub const CONTROLLER_NAME: &str = "endpointslicemirroring-controller.k8s.io";
/// Label on Endpoints that must not be mirrored.
pub const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
/// Annotation of leader-election records kept in Endpoints (never mirrored).
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";
/// Annotations of the Endpoints not copied to the slices.
const NOT_COPIED: [&str; 2] = [
    trigger::ANNOTATION,
    "kubectl.kubernetes.io/last-applied-configuration",
];

const FIELD_MANAGER: &str = "endpointslicemirroring-controller";

/// Runs the mirroring controller until its watches end.
pub async fn run(client: kube::Client) {
    let (services, svc_writer) = reflector::store::<Service>();
    let (endpoints, ep_writer) = reflector::store::<Endpoints>();
    let queue = Queue::default();

    let service_feed = feeds::same_name(client.clone(), svc_writer, queue.clone());
    let endpoints_feed = feeds::same_name(client.clone(), ep_writer, queue.clone());
    let slice_feed = feeds::slices(client.clone(), CONTROLLER_NAME, queue.clone());

    let ctx = Arc::new(Ctx {
        client,
        services,
        endpoints,
    });
    let ctx = &ctx;
    let caches = vec![feeds::ready(&ctx.services), feeds::ready(&ctx.endpoints)];
    let worker = feeds::work(
        &queue,
        "endpointslicemirroring",
        "EndpointSlice mirroring",
        caches,
        |key| async move { ctx.sync(&key).await },
    );
    tokio::join!(service_feed, endpoints_feed, slice_feed, worker);
}

struct Ctx {
    client: kube::Client,
    services: Store<Service>,
    endpoints: Store<Endpoints>,
}

/// Whether these Endpoints are mirrored at all.
fn should_mirror(endpoints: &Endpoints) -> bool {
    let skip = endpoints
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SKIP_MIRROR_LABEL))
        .is_some_and(|v| v == "true");
    let leader = endpoints
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(LEADER_ANNOTATION));
    !skip && !leader
}

impl Ctx {
    async fn sync(&self, key: &str) -> Result<(), Error> {
        let (ns, name) = queue::split(key);
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
        let existing = managed_slices(&api, name, CONTROLLER_NAME).await?;
        let svc = self.services.get(&ObjectRef::new(name).within(ns));
        let endpoints = self.endpoints.get(&ObjectRef::new(name).within(ns));
        let mirrored = match (&svc, &endpoints) {
            (Some(svc), Some(ep))
                if key != "default/kubernetes"
                    && svc.spec.as_ref().is_none_or(|s| s.selector.is_none())
                    && svc.metadata.deletion_timestamp.is_none()
                    && should_mirror(ep) =>
            {
                Some((svc.clone(), ep.clone()))
            }
            _ => None,
        };
        let Some((svc, ep)) = mirrored else {
            // Nothing to mirror: whatever was mirrored goes.
            let plan = reconciler::Plan {
                delete: existing,
                ..reconciler::Plan::default()
            };
            return apply(&api, plan, FIELD_MANAGER).await;
        };

        let all = ep.metadata.annotations.clone().unwrap_or_default();
        let trigger_time = all.get(trigger::ANNOTATION).cloned();
        let annotations = all
            .into_iter()
            .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
            .collect();
        let labels = ep.metadata.labels.clone().unwrap_or_default();
        let meta = SliceMeta {
            annotations,
            trigger_time,
            ..slice_meta(key, &svc, CONTROLLER_NAME, labels)
        };
        // Slices of an earlier Service of the same name are replaced.
        let (stale, ours) = split_stale(existing, &svc);
        let mut plan = reconciler::plan(
            ours,
            mirror::groups(&ep),
            &meta,
            mirror::MAX_ENDPOINTS_PER_SUBSET,
            None,
        );
        plan.delete.extend(stale);
        apply(&api, plan, FIELD_MANAGER).await
    }
}
