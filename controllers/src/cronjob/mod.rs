//! The CronJob controller (batch/v1), as upstream's second controller: each
//! sync reconciles `status.active` with the Jobs the CronJob controls, then,
//! unless suspended, starts the Job for the most recent missed schedule time
//! (honouring `startingDeadlineSeconds` and `concurrencyPolicy`), trims
//! finished Jobs to the history limits, and requeues itself for the next
//! schedule time. Job events requeue the CronJob that owns them.
//!
//! The controller's clock is part of its [`Config`], so tests can move time
//! forward instead of waiting for minutes to pass.

mod plan;
pub mod schedule;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;

use crate::workload::backoff::Backoff;
use crate::workload::events::Events;

/// Where the controller reads the time.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// How the CronJob controller runs.
#[derive(Clone)]
pub struct Config {
    /// The current time; the system clock unless a test steers it.
    pub clock: Clock,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            clock: Arc::new(Timestamp::now),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config").finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kube API: {0}")]
    Kube(#[from] kube::Error),
    #[error("job {0} exists but is not controlled by this CronJob")]
    Conflict(String),
}

pub(crate) struct Ctx {
    client: kube::Client,
    events: Events,
    clock: Clock,
    backoff: Backoff,
}

/// Runs the CronJob controller with upstream's defaults.
pub async fn run(client: kube::Client) {
    run_with(client, Config::default()).await;
}

/// Runs the CronJob controller with `config` until the future is dropped.
pub async fn run_with(client: kube::Client, config: Config) {
    let cronjobs: Api<CronJob> = Api::all(client.clone());
    let jobs: Api<Job> = Api::all(client.clone());
    let ctx = Arc::new(Ctx {
        events: Events::new(client.clone(), "cronjob-controller"),
        client,
        clock: config.clock,
        backoff: Backoff::default(),
    });
    Controller::new(cronjobs, watcher::Config::default())
        .owns(jobs, watcher::Config::default())
        .run(sync::reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "cronjob reconcile");
            }
        })
        .await;
}

fn key(cj: &CronJob) -> String {
    format!(
        "{}/{}",
        cj.metadata.namespace.as_deref().unwrap_or_default(),
        cj.metadata.name.as_deref().unwrap_or_default()
    )
}

fn error_policy(cj: Arc<CronJob>, err: &Error, ctx: Arc<Ctx>) -> Action {
    let delay = ctx.backoff.next(&key(&cj));
    tracing::warn!(cronjob = %key(&cj), error = %err, ?delay, "cronjob sync failed; retrying");
    Action::requeue(delay.max(Duration::from_millis(200)))
}
