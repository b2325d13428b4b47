//! Wiring of the replica controller: reflectors for the owners and for pods,
//! pod events mapped to the owners they concern (their controller, or for an
//! orphan every owner whose selector matches it), and the expectations fed by
//! pod events, all driving `kube::runtime`'s applier.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::{Action, trigger_self, trigger_with};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, applier, watcher};

use super::kind::ReplicaKind;
use super::sync::{Ctx, Error, reconcile};
use crate::workload::backoff::Backoff;
use crate::workload::events::Events;
use crate::workload::expectations::Expectations;
use crate::workload::ownership;

/// The owners a pod event concerns.
fn owners_of_pod<K: ReplicaKind>(owners: &Store<K>, pod: &Pod) -> Vec<ObjectRef<K>> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    if let Some(r) = ownership::controller_of(&pod.metadata) {
        if r.kind == K::KIND {
            return vec![ObjectRef::new(&r.name).within(&ns)];
        }
        return Vec::new();
    }
    let empty = Default::default();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    owners
        .state()
        .iter()
        .filter(|o| o.meta().namespace.as_deref() == Some(ns.as_str()))
        .filter(|o| {
            Selector::try_from(o.spec_view().selector)
                .is_ok_and(|s| !s.selects_all() && s.matches(labels))
        })
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

/// Lowers the expectations of the pod's controller for what the event shows.
fn observe<K: ReplicaKind>(expectations: &Expectations, event: &watcher::Event<Pod>) {
    let (pod, deleted) = match event {
        watcher::Event::Apply(p) | watcher::Event::InitApply(p) => (p, false),
        watcher::Event::Delete(p) => (p, true),
        watcher::Event::Init | watcher::Event::InitDone => return,
    };
    let (Some(r), Some(name)) = (
        ownership::controller_of(&pod.metadata),
        pod.metadata.name.as_deref(),
    ) else {
        return;
    };
    if r.kind != K::KIND {
        return;
    }
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    expectations.observe(
        &format!("{ns}/{}", r.name),
        name,
        deleted || pod.metadata.deletion_timestamp.is_some(),
    );
}

fn key_of<K: ReplicaKind>(obj: &K) -> String {
    let meta = obj.meta();
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

fn error_policy<K: ReplicaKind>(obj: Arc<K>, err: &Error, ctx: Arc<Ctx<K>>) -> Action {
    let delay = ctx.backoff.next(&key_of(obj.as_ref()));
    tracing::warn!(kind = K::KIND, name = ?obj.meta().name, error = %err, ?delay, "replica sync failed; retrying");
    Action::requeue(delay)
}

/// A sync, forgetting the object's failures when it succeeds.
async fn sync_once<K: ReplicaKind>(obj: Arc<K>, ctx: Arc<Ctx<K>>) -> Result<Action, Error> {
    let key = key_of(obj.as_ref());
    let result = reconcile(obj, ctx.clone()).await;
    if result.is_ok() {
        ctx.backoff.reset(&key);
    }
    result
}

/// Runs the controller for kind `K` until its watches end.
pub(crate) async fn run<K: ReplicaKind>(client: kube::Client) {
    let expectations = Arc::new(Expectations::default());
    let (owner_store, owner_writer) = reflector::store::<K>();
    let (pod_store, pod_writer) = reflector::store::<Pod>();

    let forget = expectations.clone();
    let owner_events = watcher(Api::<K>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(owner_writer)
        .inspect_ok(move |event| {
            if let watcher::Event::Delete(o) = event {
                let meta = o.meta();
                forget.forget(&format!(
                    "{}/{}",
                    meta.namespace.as_deref().unwrap_or_default(),
                    meta.name.as_deref().unwrap_or_default()
                ));
            }
        })
        .touched_objects();

    let seen = expectations.clone();
    let owners_for_pods = owner_store.clone();
    let pod_events = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(pod_writer)
        .inspect_ok(move |event| observe::<K>(&seen, event))
        .touched_objects();

    let queue = stream::select(
        trigger_self(owner_events, ()).boxed(),
        trigger_with(pod_events, move |pod: Pod| {
            owners_of_pod(&owners_for_pods, &pod)
        })
        .boxed(),
    );
    let ctx = Arc::new(Ctx {
        events: Events::new(client.clone(), K::REPORTER),
        client,
        pods: pod_store,
        owners: owner_store.clone(),
        expectations,
        backoff: Backoff::default(),
    });
    applier(
        |obj, ctx| Box::pin(sync_once::<K>(obj, ctx)),
        error_policy::<K>,
        ctx,
        owner_store,
        queue,
        Default::default(),
    )
    .for_each(|result| async move {
        if let Err(e) = result {
            tracing::debug!(kind = K::KIND, error = %e, "replica controller");
        }
    })
    .await;
}
