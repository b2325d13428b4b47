//! The wiring the three endpoints controllers share: watch feeds that keep a
//! reflector store and turn each event into the `namespace/name` key of the
//! Service it concerns, and the worker that waits for the caches before it
//! drains the [`Queue`]. A controller picks the feeds it needs and keeps only
//! its own sync.

use std::future::Future;

use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::runtime::reflector::store::{Writer, WriterDropped};
use kube::runtime::{WatchStreamExt, watcher};

use super::queue::{self, Queue};
use super::{MANAGED_BY_LABEL, SERVICE_NAME_LABEL, pods};

/// What a watched kind must be to feed a store.
pub(crate) trait Watched:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static
{
}

impl<K> Watched for K where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

/// Every `K` the config lets through, with the usual back-off.
fn watch<K: Watched>(
    client: kube::Client,
    config: watcher::Config,
) -> impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send {
    watcher(Api::<K>::all(client), config).default_backoff()
}

/// The key of an object: its own `namespace/name`.
pub(crate) fn key_of<K: Resource>(obj: &K) -> String {
    let meta = obj.meta();
    queue::key(meta.namespace.as_deref(), meta.name.as_deref())
}

/// Queues `key(obj)` for every object an event touches (applied, deleted, or
/// listed at start).
async fn enqueue_touched<K, S>(events: S, queue: Queue, key: impl Fn(&K) -> Option<String>)
where
    K: Watched,
    S: Stream<Item = watcher::Result<watcher::Event<K>>>,
{
    events
        .touched_objects()
        .for_each(move |obj| {
            if let Ok(obj) = obj
                && let Some(key) = key(&obj)
            {
                queue.add(key);
            }
            futures::future::ready(())
        })
        .await;
}

/// Watches every `K` into `writer`, queueing each touched object's own key
/// (a Service, or the Endpoints of the same name).
pub(crate) async fn same_name<K: Watched>(client: kube::Client, writer: Writer<K>, queue: Queue) {
    let events = watch::<K>(client, watcher::Config::default()).reflect(writer);
    enqueue_touched(events, queue, |obj: &K| Some(key_of(obj))).await;
}

/// Watches every `K` into `writer`, queueing nothing: a cache the syncs read.
pub(crate) async fn cache_only<K: Watched>(client: kube::Client, writer: Writer<K>) {
    watch::<K>(client, watcher::Config::default())
        .reflect(writer)
        .for_each(|_| futures::future::ready(()))
        .await;
}

/// Only the objects whose managed-by `label` names `manager`.
pub(crate) fn managed_by_label(label: &str, manager: &str) -> watcher::Config {
    watcher::Config::default().labels(&format!("{label}={manager}"))
}

/// Watches the slices `manager` manages: one changed by someone else (or
/// deleted) brings its Service back in line.
pub(crate) async fn slices(client: kube::Client, manager: &str, queue: Queue) {
    let events = watch::<EndpointSlice>(client, managed_by_label(MANAGED_BY_LABEL, manager));
    enqueue_touched(events, queue, |slice: &EndpointSlice| {
        let svc = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
        Some(queue::key(slice.metadata.namespace.as_deref(), Some(svc)))
    })
    .await;
}

/// Watches pods into `writer`, queueing the Services each pod event concerns.
pub(crate) async fn pods(
    client: kube::Client,
    writer: Writer<Pod>,
    services: Store<Service>,
    queue: Queue,
) {
    let mut memberships = pods::Memberships::default();
    watch::<Pod>(client, watcher::Config::default())
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

/// A store's wait for its first full list, as [`work`] takes it.
pub(crate) fn ready<K: Watched>(store: &Store<K>) -> BoxFuture<'_, Result<(), WriterDropped>> {
    Box::pin(store.wait_until_ready())
}

/// Waits for every cache, then syncs keys with `sync` for ever. `name` names
/// the controller in logs, `title` in the one logged when a cache never fills.
pub(crate) async fn work<E, F, Fut>(
    queue: &Queue,
    name: &str,
    title: &str,
    caches: Vec<BoxFuture<'_, Result<(), WriterDropped>>>,
    sync: F,
) where
    E: std::fmt::Display,
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let waited = futures::future::join_all(caches).await;
    if waited.iter().any(Result::is_err) {
        tracing::error!("{title} controller caches never became ready");
        return;
    }
    queue.work(name, sync).await;
}
