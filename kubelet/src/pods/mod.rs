//! The pods bound to this node: a watch on `spec.nodeName=<node>` feeding one
//! [`worker`] task per pod UID, and clean-up of sandboxes whose pod is gone.

mod ephemeral;
pub(crate) mod runtime;
pub(crate) mod status;
mod worker;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub(crate) use crate::Error;
use crate::config::Config;
use crate::cri::Runtime;
use crate::node::Registered;

/// What every pod worker shares.
pub(crate) struct Ctx {
    pub(crate) client: kube::Client,
    pub(crate) runtime: Runtime,
    pub(crate) node: Registered,
    pub(crate) config: Config,
}

struct Handle {
    tx: watch::Sender<Option<Arc<Pod>>>,
    task: JoinHandle<()>,
}

/// Runs until the watch ends (it does not: the watcher retries with back-off).
pub(crate) async fn run(ctx: Arc<Ctx>) {
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let selector = format!("spec.nodeName={}", ctx.node.name);
    let mut events = watcher::watcher(api, watcher::Config::default().fields(&selector))
        .default_backoff()
        .boxed();
    let mut workers: HashMap<String, Handle> = HashMap::new();
    let mut listed: Option<HashSet<String>> = None;
    while let Some(event) = events.next().await {
        match event {
            Err(e) => tracing::warn!(error = %e, "pod watch failed; retrying"),
            Ok(Event::Init) => listed = Some(HashSet::new()),
            Ok(Event::InitApply(pod)) => {
                if let (Some(set), Some(uid)) = (listed.as_mut(), pod.metadata.uid.clone()) {
                    set.insert(uid);
                }
                dispatch(&ctx, &mut workers, pod);
            }
            Ok(Event::InitDone) => {
                let present = listed.take().unwrap_or_default();
                let gone: Vec<String> = workers
                    .keys()
                    .filter(|u| !present.contains(*u))
                    .cloned()
                    .collect();
                for uid in gone {
                    remove(&mut workers, &uid);
                }
                // Found before any new pod is dispatched, so that a pod
                // created after the list is never taken for an orphan.
                let orphans = find_orphans(&ctx, &present).await;
                tokio::spawn(remove_orphans(ctx.clone(), orphans));
            }
            Ok(Event::Apply(pod)) => dispatch(&ctx, &mut workers, pod),
            Ok(Event::Delete(pod)) => {
                if let Some(uid) = pod.metadata.uid.as_deref() {
                    remove(&mut workers, uid);
                }
            }
        }
    }
}

/// Hands the newest pod to its worker, starting one for a new pod.
fn dispatch(ctx: &Arc<Ctx>, workers: &mut HashMap<String, Handle>, pod: Pod) {
    let Some(uid) = pod.metadata.uid.clone() else {
        return;
    };
    let pod = Arc::new(pod);
    if let Some(h) = workers.get(&uid) {
        if !h.task.is_finished() {
            h.tx.send_replace(Some(pod));
            return;
        }
        // Its worker tore the pod down; events still arrive until the object
        // is gone. A deleted pod needs nothing more.
        if pod.metadata.deletion_timestamp.is_some() {
            return;
        }
    }
    let (tx, rx) = watch::channel(Some(pod));
    let task = tokio::spawn(worker::Worker::new(ctx.clone(), uid.clone()).run(rx));
    workers.insert(uid, Handle { tx, task });
}

/// The pod left the API: its worker removes whatever still runs.
fn remove(workers: &mut HashMap<String, Handle>, uid: &str) {
    if let Some(h) = workers.remove(uid) {
        h.tx.send_replace(None);
    }
}

/// What a pod that no longer exists left behind (deleted while the kubelet
/// was down): its sandboxes (by id and pod UID) and its pod directory.
struct Orphans {
    sandboxes: Vec<(String, String)>,
    pod_dirs: Vec<String>,
}

async fn find_orphans(ctx: &Ctx, present: &HashSet<String>) -> Orphans {
    let sandboxes = match runtime::node_sandboxes(&ctx.runtime, &ctx.node.name).await {
        Ok(s) => s
            .into_iter()
            .map(|s| {
                let uid = s.labels.get(runtime::POD_UID).cloned().unwrap_or_default();
                (s.id, uid)
            })
            .filter(|(_, uid)| !present.contains(uid))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "listing sandboxes for clean-up failed");
            Vec::new()
        }
    };
    let pod_dirs = crate::volumes::orphan_pod_dirs(&ctx.config.root_dir, present);
    Orphans {
        sandboxes,
        pod_dirs,
    }
}

async fn remove_orphans(ctx: Arc<Ctx>, orphans: Orphans) {
    for (id, uid) in orphans.sandboxes {
        tracing::info!(sandbox = %id, %uid, "removing the sandbox of a pod that no longer exists");
        if let Err(e) = runtime::kill_pod(&ctx.runtime, &uid, 0).await {
            tracing::warn!(sandbox = %id, error = %e, "removing orphaned sandbox failed");
        }
    }
    for uid in orphans.pod_dirs {
        tracing::info!(%uid, "removing the directory of a pod that no longer exists");
        crate::volumes::remove_pod_dir(&ctx.config.root_dir, &uid).await;
    }
}
