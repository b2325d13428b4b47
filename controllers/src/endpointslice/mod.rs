//! The EndpointSlice controller (upstream's `pkg/controller/endpointslice`):
//! for every Service with a selector (and not of type ExternalName), the
//! `discovery.k8s.io/v1` EndpointSlices that list the selected pods —
//! labelled `kubernetes.io/service-name` and
//! `endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`,
//! controlled by the Service (so the garbage collector deletes them with it),
//! named `<service>-<random>`, at most [`MAX_ENDPOINTS_PER_SLICE`] endpoints
//! each, grouped by address type and resolved port list.
//!
//! Also home of what the three endpoints controllers share: the keyed work
//! queue, pod predicates, the trigger-time tracker and the slice reconciler.

pub(crate) mod desired;
pub(crate) mod pods;
pub(crate) mod queue;
pub(crate) mod reconciler;
pub(crate) mod trigger;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, reflector, watcher};

use self::queue::Queue;
use self::reconciler::{Plan, SliceMeta};
use crate::workload::api_errors;

/// Label naming the Service a slice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Label naming the controller that manages a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's value of [`MANAGED_BY_LABEL`].
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// Label of the slices (and Endpoints) of headless Services.
pub(crate) const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// Upstream's default `--max-endpoints-per-slice`.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

const FIELD_MANAGER: &str = "endpointslice-controller";

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("{verb} EndpointSlice: {source}")]
    Api {
        verb: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("a selected pod's node is not known yet")]
    NodeMissing,
}

/// Runs the EndpointSlice controller until its watches end.
pub async fn run(client: kube::Client) {
    let (services, svc_writer) = reflector::store::<Service>();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let (nodes, node_writer) = reflector::store::<Node>();
    let queue = Queue::default();

    let q = queue.clone();
    let service_feed = watcher(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(svc_writer)
    .for_each(move |event| {
        if let Ok(
            watcher::Event::Apply(s) | watcher::Event::InitApply(s) | watcher::Event::Delete(s),
        ) = event
        {
            q.add(queue::key(
                s.metadata.namespace.as_deref(),
                s.metadata.name.as_deref(),
            ));
        }
        futures::future::ready(())
    });
    let pod_feed = pod_feed(client.clone(), pod_writer, services.clone(), queue.clone());
    let node_feed = watcher(Api::<Node>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(node_writer)
        .for_each(|_| futures::future::ready(()));
    // A slice of ours changed by someone else (or deleted) brings its Service
    // back in line.
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
        pods,
        nodes,
        triggers: trigger::Tracker::default(),
    });
    let worker = async {
        let (a, b, c) = tokio::join!(
            ctx.services.wait_until_ready(),
            ctx.pods.wait_until_ready(),
            ctx.nodes.wait_until_ready()
        );
        if a.is_err() || b.is_err() || c.is_err() {
            tracing::error!("EndpointSlice controller caches never became ready");
            return;
        }
        queue
            .work("endpointslice", |key| {
                let ctx = ctx.clone();
                async move { ctx.sync(&key).await }
            })
            .await;
    };
    tokio::join!(service_feed, pod_feed, node_feed, slice_feed, worker);
}

/// Watches pods into `writer`, queueing the Services each pod event concerns.
pub(crate) async fn pod_feed(
    client: kube::Client,
    writer: reflector::store::Writer<Pod>,
    services: Store<Service>,
    queue: Queue,
) {
    let mut memberships = pods::Memberships::default();
    watcher(Api::<Pod>::all(client), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .for_each(move |event| {
            let touched = match &event {
                Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => {
                    memberships.touched(&services, p, false)
                }
                Ok(watcher::Event::Delete(p)) => memberships.touched(&services, p, true),
                _ => Default::default(),
            };
            for key in touched {
                queue.add(key);
            }
            futures::future::ready(())
        })
        .await;
}

/// The controller reference a Service's slices carry.
pub(crate) fn owner_of(svc: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: svc.metadata.name.clone().unwrap_or_default(),
        uid: svc.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// `<name>-`, cut so that the generated name stays a valid object name.
pub(crate) fn generate_name(name: &str) -> String {
    let cut: String = name.chars().take(57).collect();
    format!("{cut}-")
}

/// Whether the Service is headless (`clusterIP: None`).
pub(crate) fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

/// Applies a plan: creates, then updates, then deletes, as upstream. A
/// create refused because the namespace is being deleted ends the work
/// quietly; everything else is an error, and the Service is synced again.
pub(crate) async fn apply(
    api: &Api<EndpointSlice>,
    plan: Plan,
    manager: &str,
) -> Result<(), Error> {
    let params = PostParams {
        field_manager: Some(manager.to_string()),
        ..PostParams::default()
    };
    for slice in plan.create {
        match api.create(&params, &slice).await {
            Ok(_) => {}
            Err(e) if api_errors::namespace_terminating(&e) => return Ok(()),
            Err(source) => {
                return Err(Error::Api {
                    verb: "creating",
                    source,
                });
            }
        }
    }
    for slice in plan.update {
        let name = slice.metadata.name.clone().unwrap_or_default();
        api.replace(&name, &params, &slice)
            .await
            .map_err(|source| Error::Api {
                verb: "updating",
                source,
            })?;
    }
    for slice in plan.delete {
        let name = slice.metadata.name.clone().unwrap_or_default();
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if api_errors::code(&e) == Some(404) => {}
            Err(source) => {
                return Err(Error::Api {
                    verb: "deleting",
                    source,
                });
            }
        }
    }
    Ok(())
}

/// The slices of a Service that `manager` manages, read from the server
/// (not a cache, so that a sync never misses its previous sync's writes).
pub(crate) async fn managed_slices(
    api: &Api<EndpointSlice>,
    service: &str,
    manager: &str,
) -> Result<Vec<EndpointSlice>, Error> {
    let params = ListParams::default().labels(&format!(
        "{SERVICE_NAME_LABEL}={service},{MANAGED_BY_LABEL}={manager}"
    ));
    api.list(&params)
        .await
        .map(|l| l.items)
        .map_err(|source| Error::Api {
            verb: "listing",
            source,
        })
}

struct Ctx {
    client: kube::Client,
    services: Store<Service>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    triggers: trigger::Tracker,
}

impl Ctx {
    async fn sync(&self, key: &str) -> Result<(), Error> {
        let (ns, name) = queue::split(key);
        let Some(svc) = self.services.get(&ObjectRef::new(name).within(ns)) else {
            // Its slices go with it: the garbage collector follows their
            // controller reference.
            self.triggers.forget(key);
            return Ok(());
        };
        if svc.metadata.deletion_timestamp.is_some() || pods::selector(&svc).is_none() {
            return Ok(());
        }
        let selected = pods::selected_pods(&self.pods, &svc);
        let selected: Vec<&Pod> = selected.iter().map(AsRef::as_ref).collect();
        let trigger_time = self.triggers.compute(key, &svc, &selected);
        let (groups, node_missing) =
            desired::groups(&svc, &selected, |n| self.nodes.get(&ObjectRef::new(n)));

        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
        let mut existing = managed_slices(&api, name, CONTROLLER_NAME).await?;
        // Slices of an earlier Service of the same name are not ours to keep.
        let uid = svc.metadata.uid.as_deref();
        let (stale, ours): (Vec<_>, Vec<_>) = existing.drain(..).partition(|s| {
            crate::workload::ownership::controller_of(&s.metadata)
                .is_some_and(|o| Some(o.uid.as_str()) != uid)
        });

        let mut labels: BTreeMap<String, String> = svc.metadata.labels.clone().unwrap_or_default();
        labels.remove(HEADLESS_LABEL);
        if is_headless(&svc) {
            labels.insert(HEADLESS_LABEL.into(), String::new());
        }
        labels.insert(SERVICE_NAME_LABEL.into(), name.into());
        labels.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
        let meta = SliceMeta {
            namespace: ns.to_string(),
            generate_name: generate_name(name),
            labels,
            annotations: BTreeMap::new(),
            owner: owner_of(&svc),
            trigger_time: trigger_time.map(trigger::format),
        };
        let placeholder = pods::service_address_types(&svc)
            .first()
            .copied()
            .unwrap_or("IPv4");
        let mut plan = reconciler::plan(
            ours,
            groups,
            &meta,
            MAX_ENDPOINTS_PER_SLICE,
            Some(placeholder),
        );
        plan.delete.extend(stale);
        if !plan.is_empty() {
            tracing::debug!(service = %key, create = plan.create.len(), update = plan.update.len(), delete = plan.delete.len(), "syncing EndpointSlices");
        }
        apply(&api, plan, FIELD_MANAGER).await?;
        if node_missing {
            return Err(Error::NodeMissing);
        }
        Ok(())
    }
}
