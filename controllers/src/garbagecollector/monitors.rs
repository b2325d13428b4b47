//! Discovery for the collector: which resources to watch (every one that
//! supports list, watch and delete, as upstream's `GetDeletableResources`),
//! a kind → resource mapper for owner references, and one metadata-only
//! watch per resource feeding the graph builder.

use std::collections::{HashMap, HashSet};

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, PartialObjectMeta};
use kube::discovery::{Discovery, Scope, verbs};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};

use super::graph::{Change, Identity, Observed};

/// Resources never collected, as upstream's default ignored resources.
const IGNORED: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];

/// Maps an owner reference's apiVersion and kind to its resource, over every
/// served version (references may name a non-preferred one).
#[derive(Default, Debug)]
pub(crate) struct Mapper {
    by_kind: HashMap<(String, String), (ApiResource, bool)>,
}

impl Mapper {
    pub(crate) fn from_discovery(discovery: &Discovery) -> Self {
        let mut by_kind = HashMap::new();
        for group in discovery.groups() {
            for version in group.versions() {
                for (ar, caps) in group.versioned_resources(version) {
                    let namespaced = caps.scope == Scope::Namespaced;
                    by_kind.insert((ar.api_version.clone(), ar.kind.clone()), (ar, namespaced));
                }
            }
        }
        Self { by_kind }
    }

    /// The resource for a kind, and whether it is namespaced.
    pub(crate) fn resolve(&self, api_version: &str, kind: &str) -> Option<(ApiResource, bool)> {
        self.by_kind
            .get(&(api_version.to_string(), kind.to_string()))
            .cloned()
    }
}

/// The resources the collector watches: preferred versions only.
pub(crate) fn deletable_resources(discovery: &Discovery) -> Vec<ApiResource> {
    let mut out = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            let ignored = IGNORED
                .iter()
                .any(|(g, r)| ar.group == *g && ar.plural == *r);
            let verbs_ok = [verbs::LIST, verbs::WATCH, verbs::DELETE]
                .iter()
                .all(|v| caps.supports_operation(v));
            if verbs_ok && !ignored {
                out.push(ar);
            }
        }
    }
    out
}

fn key(ar: &ApiResource) -> String {
    format!("{}/{}", ar.api_version, ar.plural)
}

/// The running watches, one per resource; dropping this stops them all.
#[derive(Default)]
pub(crate) struct Monitors {
    tasks: JoinSet<()>,
    running: HashMap<String, AbortHandle>,
}

impl Monitors {
    /// Starts watches for new resources and stops those for resources no
    /// longer served; returns a receiver per new watch, signalled when its
    /// first full list has reached the graph builder.
    pub(crate) fn sync(
        &mut self,
        client: &kube::Client,
        resources: Vec<ApiResource>,
        changes: &mpsc::UnboundedSender<Change>,
    ) -> Vec<oneshot::Receiver<()>> {
        let wanted: HashSet<String> = resources.iter().map(key).collect();
        self.running.retain(|k, handle| {
            let keep = wanted.contains(k);
            if !keep {
                tracing::info!(resource = %k, "garbage collector stops watching a removed resource");
                handle.abort();
            }
            keep
        });
        // Reap finished (aborted) tasks without waiting.
        while self.tasks.try_join_next().is_some() {}
        let mut synced = Vec::new();
        for ar in resources {
            let k = key(&ar);
            if self.running.contains_key(&k) {
                continue;
            }
            let (tx, rx) = oneshot::channel();
            synced.push(rx);
            let handle = self
                .tasks
                .spawn(monitor(client.clone(), ar, changes.clone(), tx));
            self.running.insert(k, handle);
        }
        synced
    }
}

fn observed(ar: &ApiResource, obj: &PartialObjectMeta<DynamicObject>) -> Option<Observed> {
    let meta = &obj.metadata;
    Some(Observed {
        // Metadata-only lists report the kind as PartialObjectMetadata: the
        // resource being watched is what names the object's kind.
        identity: Identity {
            api_version: ar.api_version.clone(),
            kind: ar.kind.clone(),
            namespace: meta.namespace.clone(),
            name: meta.name.clone()?,
            uid: meta.uid.clone()?,
        },
        owners: meta.owner_references.clone().unwrap_or_default(),
        being_deleted: meta.deletion_timestamp.is_some(),
        finalizers: meta.finalizers.clone().unwrap_or_default(),
    })
}

/// Watches one resource's objects (metadata only) and reports them as graph
/// changes. After a relist, objects that vanished meanwhile are reported deleted.
async fn monitor(
    client: kube::Client,
    ar: ApiResource,
    changes: mpsc::UnboundedSender<Change>,
    first_sync: oneshot::Sender<()>,
) {
    let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(client, &ar);
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut first_sync = Some(first_sync);
    let mut known: HashSet<String> = HashSet::new();
    let mut relisted: Option<HashSet<String>> = None;
    while let Some(event) = stream.next().await {
        let change = match event {
            Ok(watcher::Event::Init) => {
                relisted = Some(HashSet::new());
                None
            }
            Ok(watcher::Event::InitApply(obj)) => observed(&ar, &obj).map(|o| {
                relisted
                    .get_or_insert_with(HashSet::new)
                    .insert(o.identity.uid.clone());
                Change::Upsert(o)
            }),
            Ok(watcher::Event::InitDone) => {
                let fresh = relisted.take().unwrap_or_default();
                for gone in known.difference(&fresh) {
                    if changes.send(Change::Deleted(gone.clone())).is_err() {
                        return;
                    }
                }
                known = fresh;
                if let Some(tx) = first_sync.take() {
                    let _ = tx.send(());
                }
                None
            }
            Ok(watcher::Event::Apply(obj)) => observed(&ar, &obj).map(|o| {
                known.insert(o.identity.uid.clone());
                Change::Upsert(o)
            }),
            Ok(watcher::Event::Delete(obj)) => obj.metadata.uid.clone().map(|uid| {
                known.remove(&uid);
                Change::Deleted(uid)
            }),
            Err(e) => {
                tracing::debug!(resource = %key(&ar), error = %e, "garbage collector watch");
                None
            }
        };
        if let Some(change) = change
            && changes.send(change).is_err()
        {
            return;
        }
    }
}
