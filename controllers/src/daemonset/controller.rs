//! Wiring of the DaemonSet controller: reflectors for DaemonSets, pods and
//! nodes; pod events mapped to the DaemonSet they concern (their controller,
//! or for an orphan every one whose selector matches it) and fed to the
//! expectations; node events (added, removed, relabelled, tainted) requeue
//! every DaemonSet. All drive `kube::runtime`'s applier.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::Api;
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::{Action, trigger_self, trigger_with};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, applier, watcher};

use super::sync::{Ctx, Error, KIND, reconcile};
use crate::workload::backoff::Backoff;
use crate::workload::events::Events;
use crate::workload::expectations::Expectations;
use crate::workload::ownership;

fn key_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

/// The sets a pod event concerns.
fn owners_of_pod(sets: &Store<DaemonSet>, pod: &Pod) -> Vec<ObjectRef<DaemonSet>> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    if let Some(r) = ownership::controller_of(&pod.metadata) {
        if r.kind == KIND {
            return vec![ObjectRef::new(&r.name).within(&ns)];
        }
        return Vec::new();
    }
    let empty = Default::default();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    sets.state()
        .iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(ns.as_str()))
        .filter(|s| {
            s.spec.as_ref().is_some_and(|spec| {
                Selector::try_from(spec.selector.clone())
                    .is_ok_and(|sel| !sel.selects_all() && sel.matches(labels))
            })
        })
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

fn observe(expectations: &Expectations, event: &watcher::Event<Pod>) {
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
    if r.kind != KIND {
        return;
    }
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    expectations.observe(
        &format!("{ns}/{}", r.name),
        name,
        deleted || pod.metadata.deletion_timestamp.is_some(),
    );
}

fn error_policy(set: Arc<DaemonSet>, err: &Error, ctx: Arc<Ctx>) -> Action {
    let delay = ctx.backoff.next(&key_of(&set.metadata));
    tracing::warn!(daemonset = %key_of(&set.metadata), error = %err, ?delay, "daemonset sync failed; retrying");
    Action::requeue(delay)
}

async fn sync_once(set: Arc<DaemonSet>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let key = key_of(&set.metadata);
    let result = reconcile(set, ctx.clone()).await;
    if result.is_ok() {
        ctx.backoff.reset(&key);
    }
    result
}

pub(crate) async fn run(client: kube::Client) {
    let expectations = Arc::new(Expectations::default());
    let (ds_store, ds_writer) = reflector::store::<DaemonSet>();
    let (pod_store, pod_writer) = reflector::store::<Pod>();

    let forget = expectations.clone();
    let ds_events = watcher(
        Api::<DaemonSet>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(ds_writer)
    .inspect_ok(move |event| {
        if let watcher::Event::Delete(s) = event {
            forget.forget(&key_of(&s.metadata));
        }
    })
    .touched_objects();
    let seen = expectations.clone();
    let ds_for_pods = ds_store.clone();
    let pod_events = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(pod_writer)
        .inspect_ok(move |event| observe(&seen, event))
        .touched_objects();
    let (node_store, node_writer) = reflector::store::<Node>();
    let ds_for_nodes = ds_store.clone();
    let node_events = watcher(Api::<Node>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(node_writer)
        .touched_objects();
    let queue = stream::select(
        stream::select(
            trigger_self(ds_events, ()).boxed(),
            trigger_with(pod_events, move |pod: Pod| {
                owners_of_pod(&ds_for_pods, &pod)
            })
            .boxed(),
        ),
        trigger_with(node_events, move |_node: Node| {
            ds_for_nodes
                .state()
                .iter()
                .map(|d| ObjectRef::from_obj(d.as_ref()))
                .collect::<Vec<_>>()
        })
        .boxed(),
    );
    let ctx = Arc::new(Ctx {
        events: Events::new(client.clone(), "daemonset-controller"),
        client,
        pods: pod_store,
        nodes: node_store,
        expectations,
        backoff: Backoff::default(),
    });
    applier(
        |ds, ctx| Box::pin(sync_once(ds, ctx)),
        error_policy,
        ctx,
        ds_store,
        queue,
        Default::default(),
    )
    .for_each(|result| async move {
        if let Err(e) = result {
            tracing::debug!(error = %e, "daemonset controller");
        }
    })
    .await;
}
