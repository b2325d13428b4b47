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
//! queue, the watch feeds and worker, pod predicates, the trigger-time tracker and the slice reconciler.

pub(crate) mod desired;
pub(crate) mod feeds;
pub(crate) mod pods;
pub(crate) mod queue;
pub(crate) mod reconciler;
pub(crate) mod trigger;

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::reflector::{self, ObjectRef, Store};

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

    let service_feed = feeds::same_name(client.clone(), svc_writer, queue.clone());
    let pod_feed = feeds::pods(client.clone(), pod_writer, services.clone(), queue.clone());
    let node_feed = feeds::cache_only(client.clone(), node_writer);
    let slice_feed = feeds::slices(client.clone(), CONTROLLER_NAME, queue.clone());

    let ctx = Arc::new(Ctx {
        client,
        services,
        pods,
        nodes,
        triggers: trigger::Tracker::default(),
    });
    let ctx = &ctx;
    let caches = vec![
        feeds::ready(&ctx.services),
        feeds::ready(&ctx.pods),
        feeds::ready(&ctx.nodes),
    ];
    let worker = feeds::work(
        &queue,
        "endpointslice",
        "EndpointSlice",
        caches,
        |key| async move { ctx.sync(&key).await },
    );
    tokio::join!(service_feed, pod_feed, node_feed, slice_feed, worker);
}

/// The controller reference a Service's slices carry.
fn owner_of(svc: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: svc.metadata.name.clone().unwrap_or_default(),
        uid: svc.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// What every slice `manager` writes for the Service at `key` carries:
/// `labels` plus the Service-name and managed-by labels, a generated name
/// and the Service as controller; no annotations or trigger time yet.
pub(crate) fn slice_meta(
    key: &str,
    svc: &Service,
    manager: &str,
    mut labels: BTreeMap<String, String>,
) -> SliceMeta {
    let (namespace, name) = queue::split(key);
    labels.insert(SERVICE_NAME_LABEL.into(), name.into());
    labels.insert(MANAGED_BY_LABEL.into(), manager.into());
    SliceMeta {
        namespace: namespace.to_string(),
        generate_name: generate_name(name),
        labels,
        annotations: BTreeMap::new(),
        owner: owner_of(svc),
        trigger_time: None,
    }
}

/// The slices controlled by an earlier Service of the same name (to be
/// deleted), and the others (to be reconciled).
pub(crate) fn split_stale(
    slices: Vec<EndpointSlice>,
    svc: &Service,
) -> (Vec<EndpointSlice>, Vec<EndpointSlice>) {
    let uid = svc.metadata.uid.as_deref();
    slices.into_iter().partition(|s| {
        crate::workload::ownership::controller_of(&s.metadata)
            .is_some_and(|o| Some(o.uid.as_str()) != uid)
    })
}

/// `<name>-`, cut so that the generated name stays a valid object name.
fn generate_name(name: &str) -> String {
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
        let existing = managed_slices(&api, name, CONTROLLER_NAME).await?;
        let (stale, ours) = split_stale(existing, &svc);

        let mut labels: BTreeMap<String, String> = svc.metadata.labels.clone().unwrap_or_default();
        labels.remove(HEADLESS_LABEL);
        if is_headless(&svc) {
            labels.insert(HEADLESS_LABEL.into(), String::new());
        }
        let meta = SliceMeta {
            trigger_time: trigger_time.map(trigger::format),
            ..slice_meta(key, &svc, CONTROLLER_NAME, labels)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> Service {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "new", "labels": {"app": "web"}}
        }))
        .expect("service")
    }

    fn slice(name: &str, owner_uid: Option<&str>) -> EndpointSlice {
        let owners = owner_uid.map(|uid| {
            serde_json::json!([{
                "apiVersion": "v1", "kind": "Service", "name": "web", "uid": uid, "controller": true
            }])
        });
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "ns", "ownerReferences": owners},
            "addressType": "IPv4",
            "endpoints": []
        }))
        .expect("slice")
    }

    #[test]
    fn slices_of_an_earlier_service_are_stale() {
        let (stale, ours) = split_stale(
            vec![
                slice("a", Some("new")),
                slice("b", Some("old")),
                slice("c", None),
            ],
            &service(),
        );
        let names = |v: &[EndpointSlice]| -> Vec<String> {
            v.iter().filter_map(|s| s.metadata.name.clone()).collect()
        };
        assert_eq!(names(&stale), ["b"]);
        assert_eq!(names(&ours), ["a", "c"]);
    }

    #[test]
    fn slice_meta_names_service_and_manager() {
        let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
        let meta = slice_meta("ns/web", &service(), CONTROLLER_NAME, labels);
        assert_eq!(meta.namespace, "ns");
        assert_eq!(meta.generate_name, "web-");
        assert_eq!(
            meta.labels.get(SERVICE_NAME_LABEL).map(String::as_str),
            Some("web")
        );
        assert_eq!(
            meta.labels.get(MANAGED_BY_LABEL).map(String::as_str),
            Some(CONTROLLER_NAME)
        );
        assert_eq!(meta.labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(meta.owner.uid, "new");
        assert!(meta.annotations.is_empty() && meta.trigger_time.is_none());
    }
}
