//! The Job controller (batch/v1): runs a Job's pods to completion, counting
//! finished pods through the `batch.kubernetes.io/job-tracking` finalizer, and
//! reports progress and the terminal conditions in the Job's status. Beside
//! it run the cleanup of tracking finalizers on pods whose Job is gone
//! ([`orphans`]) and the TTL-after-finished controller ([`ttl`]).

mod claim;
mod indexes;
mod orphans;
mod pods;
mod policies;
mod status;
mod sync;
mod ttl;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kube API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the job has no pod template spec")]
    NoTemplate,
}

/// Consecutive pod failures of one Job, for the pod creation back-off.
struct FailureRecord {
    failures_after_last_success: u32,
    last_failure: Instant,
}

struct Ctx {
    client: kube::Client,
    /// By Job uid; in memory like upstream's backoff store.
    failures: Mutex<HashMap<String, FailureRecord>>,
}

impl Ctx {
    fn failures(&self) -> MutexGuard<'_, HashMap<String, FailureRecord>> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs the Job controller, the orphan-pod finalizer cleanup and the
/// TTL-after-finished controller until the future is dropped.
pub async fn run(client: kube::Client) {
    tokio::join!(
        run_jobs(client.clone()),
        orphans::run(client.clone()),
        ttl::run(client)
    );
}

async fn run_jobs(client: kube::Client) {
    let jobs: Api<Job> = Api::all(client.clone());
    let pods: Api<Pod> = Api::all(client.clone());
    let ctx = Arc::new(Ctx {
        client,
        failures: Mutex::new(HashMap::new()),
    });
    let controller = Controller::new(jobs, watcher::Config::default());
    let store = controller.store();
    controller
        .watches(pods, watcher::Config::default(), move |pod| {
            jobs_of_pod(&store, &pod)
        })
        .run(sync::reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "job reconcile");
            }
        })
        .await;
}

/// The Jobs a pod event concerns: its controlling Job, or, for a pod without
/// a controller, every Job in its namespace whose selector matches it (one of
/// them may adopt it).
fn jobs_of_pod(store: &Store<Job>, pod: &Pod) -> Vec<ObjectRef<Job>> {
    let Some(ns) = pod.metadata.namespace.as_deref() else {
        return Vec::new();
    };
    let controller = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true));
    if let Some(r) = controller {
        if r.kind == "Job" && r.api_version.starts_with("batch/") {
            return vec![ObjectRef::new(&r.name).within(ns)];
        }
        return Vec::new();
    }
    let empty = BTreeMap::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    store
        .state()
        .iter()
        .filter(|j| j.metadata.namespace.as_deref() == Some(ns))
        .filter(|j| {
            j.spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .is_some_and(|s| claim::selects(s, labels))
        })
        .map(|j| ObjectRef::from_obj(j.as_ref()))
        .collect()
}

fn error_policy(_job: Arc<Job>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(error = %err, "job controller error; retrying");
    Action::requeue(Duration::from_secs(1))
}
