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
                tokio::spawn(clean_orphans(ctx.clone(), present));
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

/// Removes this node's sandboxes whose pod no longer exists (deleted while
/// the kubelet was down).
async fn clean_orphans(ctx: Arc<Ctx>, present: HashSet<String>) {
    let sandboxes = match runtime::node_sandboxes(&ctx.runtime, &ctx.node.name).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "listing sandboxes for clean-up failed");
            return;
        }
    };
    for s in sandboxes {
        let uid = s.labels.get(runtime::POD_UID).cloned().unwrap_or_default();
        if present.contains(&uid) {
            continue;
        }
        tracing::info!(sandbox = %s.id, %uid, "removing the sandbox of a pod that no longer exists");
        if let Err(e) = runtime::kill_pod(&ctx.runtime, &uid, 0).await {
            tracing::warn!(sandbox = %s.id, error = %e, "removing orphaned sandbox failed");
        }
    }
    crate::volumes::remove_orphan_pod_dirs(&ctx.config.root_dir, &present).await;
}
