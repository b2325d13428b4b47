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

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, reflector, watcher};

use crate::endpointslice::queue::{self, Queue};
use crate::endpointslice::reconciler::{self, SliceMeta};
use crate::endpointslice::{
    Error, MANAGED_BY_LABEL, SERVICE_NAME_LABEL, apply, generate_name, managed_slices, owner_of,
    trigger,
};

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

    let q = queue.clone();
    let service_feed = watcher(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(svc_writer)
    .touched_objects()
    .for_each(move |s| {
        if let Ok(s) = s {
            q.add(queue::key(
                s.metadata.namespace.as_deref(),
                s.metadata.name.as_deref(),
            ));
        }
        futures::future::ready(())
    });
    let q = queue.clone();
    let endpoints_feed = watcher(
        Api::<Endpoints>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(ep_writer)
    .touched_objects()
    .for_each(move |e| {
        if let Ok(e) = e {
            q.add(queue::key(
                e.metadata.namespace.as_deref(),
                e.metadata.name.as_deref(),
            ));
        }
        futures::future::ready(())
    });
    let q = queue.clone();
    let slice_feed = watcher(
        Api::<EndpointSlice>::all(client.clone()),
        watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={CONTROLLER_NAME}")),
    )
    .default_backoff()
    .touched_objects()
    .for_each(move |slice| {
        if let Ok(slice) = slice
            && let Some(svc) = slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
        {
            q.add(queue::key(slice.metadata.namespace.as_deref(), Some(svc)));
        }
        futures::future::ready(())
    });

    let ctx = Arc::new(Ctx {
        client,
        services,
        endpoints,
    });
    let worker = async {
        let (a, b) = tokio::join!(
            ctx.services.wait_until_ready(),
            ctx.endpoints.wait_until_ready()
        );
        if a.is_err() || b.is_err() {
            tracing::error!("EndpointSlice mirroring controller caches never became ready");
            return;
        }
        queue
            .work("endpointslicemirroring", |key| {
                let ctx = ctx.clone();
                async move { ctx.sync(&key).await }
            })
            .await;
    };
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

        let mut labels: BTreeMap<String, String> = ep.metadata.labels.clone().unwrap_or_default();
        labels.insert(SERVICE_NAME_LABEL.into(), name.into());
        labels.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
        let all = ep.metadata.annotations.clone().unwrap_or_default();
        let trigger_time = all.get(trigger::ANNOTATION).cloned();
        let annotations = all
            .into_iter()
            .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
            .collect();
        let meta = SliceMeta {
            namespace: ns.to_string(),
            generate_name: generate_name(name),
            labels,
            annotations,
            owner: owner_of(&svc),
            trigger_time,
        };
        // Slices of an earlier Service of the same name are replaced.
        let uid = svc.metadata.uid.as_deref();
        let (stale, ours): (Vec<_>, Vec<_>) = existing.into_iter().partition(|s| {
            crate::workload::ownership::controller_of(&s.metadata)
                .is_some_and(|o| Some(o.uid.as_str()) != uid)
        });
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
