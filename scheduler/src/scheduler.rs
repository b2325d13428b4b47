//! The scheduling loop (upstream's `scheduleOne`): pop a pod, pick a node
//! in memory, assume the pod there and bind it asynchronously; or, when no
//! node fits, run the preemption PostFilter, report `FailedScheduling` and
//! park the pod as unschedulable.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use parking_lot::Mutex;
use tokio::sync::Semaphore;

use crate::algorithm::{Algorithm, ScheduleFailure};
use crate::api::{self, ApiError, Nomination, Reporter};
use crate::cache::{Cache, pod_key};
use crate::fit_error::DRA_NO_CLAIMS;
use crate::framework::Profile;
use crate::node_info::PodInfo;
use crate::preemption::{self, Outcome};
use crate::queue::{QueuedPod, SchedulingQueue};

/// How long an identical FailedScheduling event is not repeated.
const EVENT_REPEAT_WINDOW: Duration = Duration::from_secs(6 * 60);
/// Size at which expired entries of `recent_failures` are dropped.
const RECENT_FAILURES_PRUNE_AT: usize = 10_000;

/// Upstream's message when the cluster has no nodes at all.
const NO_NODES_MSG: &str = "no nodes available to schedule pods";

/// A profile and the identity its events carry.
pub(crate) struct ProfileRuntime {
    pub(crate) profile: Profile,
    pub(crate) reporter: Reporter,
}

/// Shared state of one scheduler instance.
pub(crate) struct Scheduler {
    pub(crate) client: kube::Client,
    /// Profiles by scheduler name (`spec.schedulerName`).
    pub(crate) profiles: HashMap<String, Arc<ProfileRuntime>>,
    pub(crate) cache: Arc<Mutex<Cache>>,
    pub(crate) queue: Arc<SchedulingQueue>,
    /// Bounds concurrent API writes from binding/failure tasks.
    pub(crate) writes: Arc<Semaphore>,
    /// Last failure message per pod key, to avoid repeating events.
    pub(crate) recent_failures: Mutex<HashMap<String, (String, Instant)>>,
}

/// What the scheduler will do about a pod for which no node fits.
struct Failure {
    message: String,
    preempt: Option<preemption::Candidate>,
    clear_nomination: bool,
}

fn message_of(e: &ApiError) -> String {
    match e {
        ApiError::Kube(kube::Error::Api(s)) => s.message.clone(),
        other => other.to_string(),
    }
}

impl Scheduler {
    /// Schedules pods forever.
    pub(crate) async fn run_loop(self: Arc<Self>, mut algorithm: Algorithm) {
        loop {
            let qp = self.queue.pop().await;
            self.schedule_one(&mut algorithm, qp);
            // Let informer and binding tasks run between busy cycles.
            tokio::task::consume_budget().await;
        }
    }

    fn schedule_one(self: &Arc<Self>, algorithm: &mut Algorithm, qp: QueuedPod) {
        let pod = qp.pod.clone();
        if pod.metadata.deletion_timestamp.is_some() {
            self.queue.with(|q| q.done(&qp.key));
            return;
        }
        let name = pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or("default-scheduler");
        let Some(rt) = self.profiles.get(name).cloned() else {
            // Not ours (the informer only queues our pods; the name changed).
            self.queue.with(|q| q.done(&qp.key));
            return;
        };
        let info = PodInfo::new(pod.clone());
        let failure = {
            let mut cache = self.cache.lock();
            if cache.is_placed(&qp.key) {
                drop(cache);
                self.queue.with(|q| q.done(&qp.key));
                return;
            }
            match algorithm.schedule(&rt.profile, &cache, &info) {
                Ok(node) => {
                    cache.assume(&qp.key, &node, info.usage.clone());
                    drop(cache);
                    let attempts = self
                        .queue
                        .with(|q| {
                            q.move_pod_affinity_waiters(Instant::now());
                            q.done(&qp.key)
                        })
                        .unwrap_or(qp.attempts);
                    tracing::debug!(pod = %qp.key, %node, "assumed pod");
                    self.spawn_bind(rt, qp.key, pod, node, attempts);
                    return;
                }
                // Counted as unschedulable (not an error): the pod waits
                // for a node to be added.
                Err(ScheduleFailure::NoNodes) => {
                    cache.set_nomination(&qp.key, None);
                    Failure {
                        message: NO_NODES_MSG.to_string(),
                        preempt: None,
                        clear_nomination: true,
                    }
                }
                Err(ScheduleFailure::Fit(fe)) => {
                    let mut post = Vec::new();
                    let has_claims = info
                        .spec()
                        .and_then(|s| s.resource_claims.as_ref())
                        .is_some_and(|c| !c.is_empty());
                    if !has_claims {
                        post.push(DRA_NO_CLAIMS.to_string());
                    }
                    let mut preempt = None;
                    let mut clear_nomination = false;
                    match preemption::evaluate(&rt.profile, &cache, &info, &fe) {
                        Outcome::NotEligible(msg) => post.push(msg),
                        Outcome::NoCandidates(msg) => {
                            post.push(msg);
                            clear_nomination = true;
                            cache.set_nomination(&qp.key, None);
                        }
                        // A successful PostFilter ends the chain with no message.
                        Outcome::Preempt(c) => {
                            // Reserve the room at once, before the victims go.
                            cache.set_nomination(&qp.key, Some((&c.node, info.usage.clone())));
                            post.clear();
                            preempt = Some(c);
                        }
                    }
                    Failure {
                        message: fe.message(&post),
                        preempt,
                        clear_nomination,
                    }
                }
            }
        };
        tracing::debug!(pod = %qp.key, message = %failure.message, "pod is unschedulable");
        self.queue
            .with(|q| q.add_unschedulable(&qp, Instant::now()));
        self.spawn_report_failure(rt, pod, failure);
    }

    fn spawn_bind(
        self: &Arc<Self>,
        rt: Arc<ProfileRuntime>,
        key: String,
        pod: Arc<Pod>,
        node: String,
        attempts: u32,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            let _permit = this.writes.clone().acquire_owned().await;
            match api::bind(&this.client, &pod, &node).await {
                Ok(()) => {
                    let msg = format!("Successfully assigned {key} to {node}");
                    api::record_event(
                        &this.client,
                        &rt.reporter,
                        &pod,
                        "Normal",
                        "Scheduled",
                        "Binding",
                        &msg,
                    )
                    .await;
                }
                Err(e) => {
                    tracing::info!(pod = %key, %node, error = %e, "binding failed");
                    this.cache.lock().forget(&key);
                    if e.is_not_found() {
                        return;
                    }
                    this.queue
                        .with(|q| q.add_backoff(&key, pod.clone(), attempts, Instant::now()));
                    let message = format!("Binding rejected: {}", message_of(&e));
                    this.report_failure(
                        &rt.reporter,
                        &pod,
                        "SchedulerError",
                        &message,
                        Nomination::Keep,
                    )
                    .await;
                }
            }
        });
    }

    fn spawn_report_failure(
        self: &Arc<Self>,
        rt: Arc<ProfileRuntime>,
        pod: Arc<Pod>,
        failure: Failure,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            let _permit = this.writes.clone().acquire_owned().await;
            let nominated = failure.preempt.as_ref().map(|c| c.node.clone());
            let nomination = match &nominated {
                Some(n) => Nomination::Set(n),
                None if failure.clear_nomination => Nomination::Clear,
                None => Nomination::Keep,
            };
            if let Some(c) = &failure.preempt {
                for victim in &c.victims {
                    if let Err(e) =
                        api::preempt_victim(&this.client, &rt.reporter, victim, &pod, &c.node).await
                    {
                        tracing::warn!(victim = %victim, error = %e, "preempting victim failed");
                    }
                }
            }
            this.report_failure(
                &rt.reporter,
                &pod,
                "Unschedulable",
                &failure.message,
                nomination,
            )
            .await;
        });
    }

    /// The FailedScheduling event and the PodScheduled=False condition.
    /// Identical failures of the same pod within `EVENT_REPEAT_WINDOW` are
    /// reported once: a stuck pod is retried on every cluster event, and
    /// upstream's event library folds such repeats into one series too.
    async fn report_failure(
        &self,
        reporter: &Reporter,
        pod: &Pod,
        reason: &str,
        message: &str,
        nomination: Nomination<'_>,
    ) {
        if self.is_new_failure(&pod_key(pod), message) {
            api::record_event(
                &self.client,
                reporter,
                pod,
                "Warning",
                "FailedScheduling",
                "Scheduling",
                message,
            )
            .await;
        }
        if let Err(e) = api::set_unschedulable(&self.client, pod, reason, message, nomination).await
            && !e.is_not_found()
        {
            tracing::warn!(pod = %pod_key(pod), error = %e, "updating pod condition failed");
        }
    }
}

impl Scheduler {
    /// Records `message` as the pod's latest failure; false if it repeats
    /// the previous one within the window.
    fn is_new_failure(&self, key: &str, message: &str) -> bool {
        let now = Instant::now();
        let mut recent = self.recent_failures.lock();
        if recent.len() > RECENT_FAILURES_PRUNE_AT {
            recent.retain(|_, (_, at)| now.duration_since(*at) < EVENT_REPEAT_WINDOW);
        }
        match recent.get(key) {
            Some((m, at)) if m == message && now.duration_since(*at) < EVENT_REPEAT_WINDOW => false,
            _ => {
                recent.insert(key.to_string(), (message.to_string(), now));
                true
            }
        }
    }
}

/// Retries unschedulable pods left too long, like upstream's 30 s
/// `flushUnschedulablePodsLeftover`.
pub(crate) async fn flush_periodically(queue: Arc<SchedulingQueue>) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tick.tick().await;
        queue.with(|q| q.flush(Instant::now()));
    }
}
