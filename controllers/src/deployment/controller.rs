//! Wiring of the Deployment controller: reflectors for Deployments,
//! ReplicaSets and pods; ReplicaSet events go to their owning Deployment (or,
//! for an orphan, to every Deployment whose selector matches it), pod
//! deletions to the Deployment owning the pod's ReplicaSet (a Recreate
//! rollout waits for old pods to be gone), all driving `kube::runtime`'s
//! applier.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::{Action, trigger_self, trigger_with};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, applier, watcher};

use super::sync::{Ctx, Error, reconcile};
use crate::workload::backoff::Backoff;
use crate::workload::events::Events;
use crate::workload::ownership;

fn deployments_of_replica_set(
    deployments: &Store<Deployment>,
    rs: &ReplicaSet,
) -> Vec<ObjectRef<Deployment>> {
    let ns = rs.metadata.namespace.clone().unwrap_or_default();
    if let Some(r) = ownership::controller_of(&rs.metadata) {
        if r.kind == "Deployment" {
            return vec![ObjectRef::new(&r.name).within(&ns)];
        }
        return Vec::new();
    }
    let empty = Default::default();
    let labels = rs.metadata.labels.as_ref().unwrap_or(&empty);
    deployments
        .state()
        .iter()
        .filter(|d| d.metadata.namespace.as_deref() == Some(ns.as_str()))
        .filter(|d| {
            d.spec
                .as_ref()
                .and_then(|s| Selector::try_from(s.selector.clone()).ok())
                .is_some_and(|s| !s.selects_all() && s.matches(labels))
        })
        .map(|d| ObjectRef::from_obj(d.as_ref()))
        .collect()
}

fn deployment_of_pod(replica_sets: &Store<ReplicaSet>, pod: &Pod) -> Option<ObjectRef<Deployment>> {
    let ns = pod.metadata.namespace.clone()?;
    let r = ownership::controller_of(&pod.metadata)?;
    if r.kind != "ReplicaSet" {
        return None;
    }
    let rs = replica_sets.get(&ObjectRef::new(&r.name).within(&ns))?;
    let owner = ownership::controller_of(&rs.metadata)?;
    (owner.kind == "Deployment").then(|| ObjectRef::new(&owner.name).within(&ns))
}

fn key_of(d: &Deployment) -> String {
    format!(
        "{}/{}",
        d.metadata.namespace.as_deref().unwrap_or_default(),
        d.metadata.name.as_deref().unwrap_or_default()
    )
}

fn error_policy(d: Arc<Deployment>, err: &Error, ctx: Arc<Ctx>) -> Action {
    let delay = ctx.backoff.next(&key_of(&d));
    tracing::warn!(deployment = ?d.metadata.name, error = %err, ?delay, "deployment sync failed; retrying");
    Action::requeue(delay)
}

/// A sync, forgetting the Deployment's failures when it succeeds.
async fn sync_once(d: Arc<Deployment>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let key = key_of(&d);
    let result = reconcile(d, ctx.clone()).await;
    if result.is_ok() {
        ctx.backoff.reset(&key);
    }
    result
}

pub(crate) async fn run(client: kube::Client) {
    let (d_store, d_writer) = reflector::store::<Deployment>();
    let (rs_store, rs_writer) = reflector::store::<ReplicaSet>();
    let (pod_store, pod_writer) = reflector::store::<Pod>();

    let d_events = watcher(
        Api::<Deployment>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(d_writer)
    .touched_objects();
    let rs_events = watcher(
        Api::<ReplicaSet>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(rs_writer)
    .touched_objects();
    let pod_deletions = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(pod_writer)
        .try_filter_map(|event| async move {
            Ok(match event {
                watcher::Event::Delete(p) => Some(p),
                _ => None,
            })
        });

    let deployments_for_rs = d_store.clone();
    let rs_for_pods = rs_store.clone();
    let queue = stream::select_all([
        trigger_self(d_events, ()).boxed(),
        trigger_with(rs_events, move |rs: ReplicaSet| {
            deployments_of_replica_set(&deployments_for_rs, &rs)
        })
        .boxed(),
        trigger_with(pod_deletions, move |pod: Pod| {
            deployment_of_pod(&rs_for_pods, &pod)
        })
        .boxed(),
    ]);
    let ctx = Arc::new(Ctx {
        events: Events::new(client.clone(), "deployment-controller"),
        client,
        replica_sets: rs_store,
        pods: pod_store,
        backoff: Backoff::default(),
    });
    applier(
        |d, ctx| Box::pin(sync_once(d, ctx)),
        error_policy,
        ctx,
        d_store,
        queue,
        Default::default(),
    )
    .for_each(|result| async move {
        if let Err(e) = result {
            tracing::debug!(error = %e, "deployment controller");
        }
    })
    .await;
}
