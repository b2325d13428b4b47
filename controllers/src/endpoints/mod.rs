//! The Endpoints controller (upstream's `pkg/controller/endpoint`): for every
//! Service with a selector (and not of type ExternalName), an `Endpoints`
//! object of the same name listing the selected pods, as [`subsets`]
//! computes them. The object carries the Service's labels, the
//! `endpoints.kubernetes.io/managed-by: endpoint-controller` label,
//! `service.kubernetes.io/headless` for headless Services, and the
//! `endpoints.kubernetes.io/last-change-trigger-time` annotation.
//!
//! As upstream, Endpoints have no owner reference: when a Service goes, this
//! controller deletes the Endpoints of the same name itself. Services without
//! a selector are left alone — their Endpoints are written by hand, and the
//! API server keeps `default/kubernetes` itself. At start-up the Endpoints
//! this controller once wrote are checked for a Service that is gone (only
//! those with its label, so hand-written ones without a Service survive).

mod subsets;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, reflector, watcher};

use crate::endpointslice::queue::{self, Queue};
use crate::endpointslice::{HEADLESS_LABEL, feeds, is_headless, pods, trigger};
use crate::workload::api_errors;

/// Label marking the Endpoints this controller manages.
pub const MANAGED_BY_LABEL: &str = "endpoints.kubernetes.io/managed-by";
/// This controller's value of [`MANAGED_BY_LABEL`].
pub const CONTROLLER_NAME: &str = "endpoint-controller";
/// Annotation set when the addresses were cut to the capacity.
const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";

const FIELD_MANAGER: &str = "endpoint-controller";

#[derive(Debug, thiserror::Error)]
#[error("{verb} Endpoints: {source}")]
struct Error {
    verb: &'static str,
    #[source]
    source: kube::Error,
}

fn err(verb: &'static str) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error { verb, source }
}

/// Runs the Endpoints controller until its watches end.
pub async fn run(client: kube::Client) {
    let (services, svc_writer) = reflector::store::<Service>();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let queue = Queue::default();

    let service_feed = feeds::same_name(client.clone(), svc_writer, queue.clone());
    let pod_feed = feeds::pods(client.clone(), pod_writer, services.clone(), queue.clone());
    // Ours deleted by someone else: written again (or, Service gone, left).
    // The initial list brings in ours whose Service may be gone.
    let q = queue.clone();
    let endpoints_feed = watcher(
        Api::<Endpoints>::all(client.clone()),
        feeds::managed_by_label(MANAGED_BY_LABEL, CONTROLLER_NAME),
    )
    .default_backoff()
    .for_each(move |event| {
        if let Ok(watcher::Event::Delete(e) | watcher::Event::InitApply(e)) = event {
            q.add(feeds::key_of(&e));
        }
        futures::future::ready(())
    });

    let ctx = Arc::new(Ctx {
        client,
        services,
        pods,
        triggers: trigger::Tracker::default(),
    });
    let ctx = &ctx;
    let caches = vec![feeds::ready(&ctx.services), feeds::ready(&ctx.pods)];
    let worker = feeds::work(&queue, "endpoints", "Endpoints", caches, |key| async move {
        ctx.sync(&key).await
    });
    tokio::join!(service_feed, pod_feed, endpoints_feed, worker);
}

struct Ctx {
    client: kube::Client,
    services: Store<Service>,
    pods: Store<Pod>,
    triggers: trigger::Tracker,
}

/// Labels compared for "nothing to write": ours are not the Service's.
fn comparable_labels(meta: &ObjectMeta) -> BTreeMap<String, String> {
    let mut labels = meta.labels.clone().unwrap_or_default();
    labels.remove(HEADLESS_LABEL);
    labels.remove(MANAGED_BY_LABEL);
    labels
}

impl Ctx {
    async fn sync(&self, key: &str) -> Result<(), Error> {
        let (ns, name) = queue::split(key);
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), ns);
        let Some(svc) = self.services.get(&ObjectRef::new(name).within(ns)) else {
            // The Service is gone: so are its Endpoints.
            self.triggers.forget(key);
            return match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => Ok(()),
                Err(e) if api_errors::code(&e) == Some(404) => Ok(()),
                Err(e) => Err(err("deleting")(e)),
            };
        };
        if pods::selector(&svc).is_none() {
            return Ok(());
        }
        let selected = pods::selected_pods(&self.pods, &svc);
        let selected: Vec<&Pod> = selected.iter().map(AsRef::as_ref).collect();
        let trigger_time = self.triggers.compute(key, &svc, &selected);
        let mut subsets = subsets::compute(&svc, &selected);

        let current = api.get_opt(name).await.map_err(err("reading"))?;
        let service_labels = svc.metadata.labels.clone().unwrap_or_default();
        if let Some(current) = &current {
            let current_subsets = current.subsets.clone().unwrap_or_default();
            let over = current
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(OVER_CAPACITY));
            let needs_truncation = subsets
                .iter()
                .map(|s| {
                    s.addresses.as_ref().map_or(0, Vec::len)
                        + s.not_ready_addresses.as_ref().map_or(0, Vec::len)
                })
                .sum::<usize>()
                > subsets::MAX_CAPACITY;
            let ours = current
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(MANAGED_BY_LABEL))
                .is_some_and(|v| v == CONTROLLER_NAME);
            if current_subsets == subsets
                && comparable_labels(&current.metadata) == service_labels
                && ours
                && !over
                && !needs_truncation
            {
                return Ok(());
            }
        }

        let mut endpoints = current.clone().unwrap_or_else(|| Endpoints {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(ns.to_string()),
                ..ObjectMeta::default()
            },
            subsets: None,
        });
        let mut annotations = endpoints.metadata.annotations.take().unwrap_or_default();
        match trigger_time {
            Some(t) => annotations.insert(trigger::ANNOTATION.into(), trigger::format(t)),
            None => annotations.remove(trigger::ANNOTATION),
        };
        if subsets::truncate(&mut subsets) {
            annotations.insert(OVER_CAPACITY.into(), "truncated".into());
        } else {
            annotations.remove(OVER_CAPACITY);
        }
        endpoints.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
        let mut labels = service_labels;
        labels.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
        if is_headless(&svc) {
            labels.insert(HEADLESS_LABEL.into(), String::new());
        } else {
            labels.remove(HEADLESS_LABEL);
        }
        endpoints.metadata.labels = Some(labels);
        endpoints.subsets = (!subsets.is_empty()).then_some(subsets);

        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        if current.is_some() {
            api.replace(name, &params, &endpoints)
                .await
                .map_err(err("updating"))?;
        } else {
            match api.create(&params, &endpoints).await {
                Ok(_) => {}
                // The namespace is going away; so will the Service.
                Err(e) if api_errors::namespace_terminating(&e) => {}
                Err(e) => return Err(err("creating")(e)),
            }
        }
        tracing::debug!(service = %key, "wrote Endpoints");
        Ok(())
    }
}
