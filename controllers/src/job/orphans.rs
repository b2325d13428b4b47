//! Releases the tracking finalizer of Job pods nobody will count any more:
//! pods whose controlling Job is gone (deleted, or replaced by a namesake),
//! or that have no controlling Job at all. Without this, the pods of a
//! deleted Job would stay forever.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;

use super::{Error, pods, status};

/// Label the API server puts on every Job's pod template; watching only
/// pods that carry it keeps unrelated pods out of memory.
const JOB_POD_LABEL: &str = "batch.kubernetes.io/controller-uid";

struct Ctx {
    client: kube::Client,
}

pub(crate) async fn run(client: kube::Client) {
    let pods: Api<Pod> = Api::all(client.clone());
    let ctx = Arc::new(Ctx { client });
    Controller::new(pods, watcher::Config::default().labels(JOB_POD_LABEL))
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "job orphan pod reconcile");
            }
        })
        .await;
}

fn error_policy(_pod: Arc<Pod>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(error = %err, "job orphan pod cleanup error; retrying");
    Action::requeue(Duration::from_secs(2))
}

async fn reconcile(pod: Arc<Pod>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if !status::has_tracking_finalizer(&pod) {
        return Ok(Action::await_change());
    }
    let Some(ns) = pod.metadata.namespace.as_deref() else {
        return Ok(Action::await_change());
    };
    let controller = pod.metadata.owner_references.iter().flatten().find(|r| {
        r.controller == Some(true) && r.kind == "Job" && r.api_version.starts_with("batch/")
    });
    let orphaned = match controller {
        None => true,
        Some(r) => {
            let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
            match jobs.get_opt(&r.name).await? {
                None => true,
                Some(job) => job.metadata.uid.as_deref() != Some(r.uid.as_str()),
            }
        }
    };
    if orphaned {
        tracing::debug!(pod = ?pod.metadata.name, namespace = %ns, "releasing the tracking finalizer of an orphaned job pod");
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
        pods::release(&api, &pod).await?;
    }
    Ok(Action::await_change())
}
