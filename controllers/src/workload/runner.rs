//! The watch/reconcile wiring every pod-owning workload controller shares
//! (ReplicaSet, ReplicationController, StatefulSet, DaemonSet):
//!
//! - reflectors for the owners and for all pods;
//! - a pod event requeues the owner it concerns: its controller when that is
//!   of this kind, or for an orphan every owner in its namespace whose
//!   (non-empty) selector matches it;
//! - pod events lower the creation/deletion expectations of their controller,
//!   and a deleted owner's expectations are forgotten;
//! - failed syncs retry after a per-object back-off that a success resets.
//!
//! A controller brings its kind ([`PodOwner`]), its context (built from the
//! [`Shared`] parts), its reconcile function and, if it watches more than
//! owners and pods, extra [`Requests`] (the DaemonSet controller's nodes).

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::serde::de::DeserializeOwned;
use kube::Resource;
use kube::api::Api;
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::{Action, ReconcileRequest, trigger_self, trigger_with};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, applier, watcher};

use super::backoff::Backoff;
use super::events::Events;
use super::expectations::Expectations;
use super::ownership;

/// A kind whose objects control pods chosen by a label selector.
pub(crate) trait PodOwner:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The kind its pods' controller references name.
    const KIND: &'static str;
    /// The selector of its pods; `None` when the object has no spec.
    fn pod_selector(&self) -> Option<LabelSelector>;
}

/// What the runner builds that a controller's context holds.
pub(crate) struct Shared<K: PodOwner> {
    pub(crate) client: kube::Client,
    pub(crate) events: Events,
    pub(crate) pods: Store<Pod>,
    pub(crate) owners: Store<K>,
    pub(crate) expectations: Arc<Expectations>,
}

/// More reasons to sync an owner than its own and its pods' events.
pub(crate) type Requests<K> = BoxStream<'static, Result<ReconcileRequest<K>, watcher::Error>>;

/// No requests beyond owner and pod events.
pub(crate) fn no_more_requests<K: PodOwner>(_: Store<K>) -> Requests<K> {
    stream::empty().boxed()
}

/// Every owner in the cache: for events that may concern any of them.
pub(crate) fn all_owners<K: PodOwner>(owners: &Store<K>) -> Vec<ObjectRef<K>> {
    owners
        .state()
        .iter()
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

/// `namespace/name`: the key of expectations and back-off.
pub(crate) fn key_of(meta: &ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

/// The owners a pod event concerns.
fn owners_of_pod<K: PodOwner>(owners: &Store<K>, pod: &Pod) -> Vec<ObjectRef<K>> {
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
            o.pod_selector().is_some_and(|selector| {
                Selector::try_from(selector).is_ok_and(|s| !s.selects_all() && s.matches(labels))
            })
        })
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

/// Lowers the expectations of the pod's controller for what the event shows.
fn observe<K: PodOwner>(expectations: &Expectations, event: &watcher::Event<Pod>) {
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

/// The applier's context: the controller's own, and the retry back-off.
struct Wired<C> {
    ctx: Arc<C>,
    backoff: Backoff,
}

/// Runs the controller for kind `K` until its watches end; `reporter` is the
/// name its events are reported under.
pub(crate) async fn run<K, C, E, Fut>(
    client: kube::Client,
    reporter: &str,
    reconcile: impl Fn(Arc<K>, Arc<C>) -> Fut,
    make_ctx: impl FnOnce(Shared<K>) -> C,
    more_requests: impl FnOnce(Store<K>) -> Requests<K>,
) where
    K: PodOwner,
    C: Send + Sync + 'static,
    E: std::error::Error + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
{
    let expectations = Arc::new(Expectations::default());
    let (owner_store, owner_writer) = reflector::store::<K>();
    let (pod_store, pod_writer) = reflector::store::<Pod>();

    let forget = expectations.clone();
    let owner_events = watcher(Api::<K>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(owner_writer)
        .inspect_ok(move |event| {
            if let watcher::Event::Delete(o) = event {
                forget.forget(&key_of(o.meta()));
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
        stream::select(
            trigger_self(owner_events, ()).boxed(),
            trigger_with(pod_events, move |pod: Pod| {
                owners_of_pod(&owners_for_pods, &pod)
            })
            .boxed(),
        ),
        more_requests(owner_store.clone()),
    );
    let ctx = make_ctx(Shared {
        events: Events::new(client.clone(), reporter),
        client,
        pods: pod_store,
        owners: owner_store.clone(),
        expectations,
    });
    let wired = Arc::new(Wired {
        ctx: Arc::new(ctx),
        backoff: Backoff::default(),
    });
    applier(
        |obj: Arc<K>, wired: Arc<Wired<C>>| {
            // A sync, forgetting the object's failures when it succeeds.
            let sync = reconcile(obj.clone(), wired.ctx.clone());
            Box::pin(async move {
                let result = sync.await;
                if result.is_ok() {
                    wired.backoff.reset(&key_of(obj.meta()));
                }
                result
            })
        },
        |obj: Arc<K>, err: &E, wired: Arc<Wired<C>>| {
            let key = key_of(obj.meta());
            let delay = wired.backoff.next(&key);
            tracing::warn!(kind = K::KIND, object = %key, error = %err, ?delay, "sync failed; retrying");
            Action::requeue(delay)
        },
        wired,
        owner_store,
        queue,
        Default::default(),
    )
    .for_each(|result| async move {
        if let Err(e) = result {
            tracing::debug!(kind = K::KIND, error = %e, "workload controller");
        }
    })
    .await;
}
