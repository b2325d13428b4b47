//! One sync of a Job (upstream `syncJob`): count its pods, decide whether it
//! has failed or succeeded, create or delete pods, then record finished pods
//! through `status.uncountedTerminatedPods` before releasing their tracking
//! finalizers, and add the final condition once every pod is accounted for.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::{Job, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::controller::Action;

use super::claim::{self, Claim};
use super::policies::{self, Verdict};
use super::status::{self, Finish};
use super::{Ctx, Error, FailureRecord, indexes, pods};

/// At most this many pod uids wait in `uncountedTerminatedPods` at once.
const MAX_UNCOUNTED: usize = 500;
/// At most this many pods are created or deleted in one sync.
const MAX_CREATE_DELETE: usize = 500;

/// What a Job's spec says, with defaults applied.
struct Spec {
    indexed: bool,
    completions: Option<i32>,
    parallelism: i32,
    backoff_limit: i32,
    suspended: bool,
    only_replace_failed: bool,
    active_deadline: Option<i64>,
    restart_on_failure: bool,
}

impl Spec {
    fn of(job: &Job) -> Option<Self> {
        let s = job.spec.as_ref()?;
        Some(Self {
            indexed: s.completion_mode.as_deref() == Some("Indexed"),
            completions: s.completions,
            parallelism: s.parallelism.unwrap_or(1),
            backoff_limit: s.backoff_limit.unwrap_or(6),
            suspended: s.suspend == Some(true),
            only_replace_failed: s.pod_replacement_policy.as_deref() == Some("Failed")
                || s.pod_failure_policy.is_some(),
            active_deadline: s.active_deadline_seconds,
            restart_on_failure: s
                .template
                .spec
                .as_ref()
                .and_then(|p| p.restart_policy.as_deref())
                == Some("OnFailure"),
        })
    }
}

fn uid_of(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

/// Moves uncounted uids whose pods no longer hold the finalizer into the
/// counters (upstream `cleanUncountedPodsWithoutFinalizers`).
fn count_released(
    status: &mut JobStatus,
    succeeded: &mut Vec<String>,
    failed: &mut Vec<String>,
    with_finalizer: &HashSet<String>,
) {
    let before = succeeded.len();
    succeeded.retain(|u| with_finalizer.contains(u));
    let released = i32::try_from(before - succeeded.len()).unwrap_or(i32::MAX);
    if released > 0 {
        status.succeeded = Some(status.succeeded.unwrap_or(0).saturating_add(released));
    }
    let before = failed.len();
    failed.retain(|u| with_finalizer.contains(u));
    let released = i32::try_from(before - failed.len()).unwrap_or(i32::MAX);
    if released > 0 {
        status.failed = Some(status.failed.unwrap_or(0).saturating_add(released));
    }
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn nonzero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

pub(crate) async fn reconcile(job: Arc<Job>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let (Some(ns), Some(name), Some(uid)) = (
        job.metadata.namespace.as_deref(),
        job.metadata.name.as_deref(),
        job.metadata.uid.as_deref(),
    ) else {
        return Ok(Action::await_change());
    };
    let Some(spec) = Spec::of(&job) else {
        return Ok(Action::await_change());
    };
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let all = claim_pods(&job, &ctx, &pods_api).await?;

    if status::finished(&job).is_some() || job.metadata.deletion_timestamp.is_some() {
        // Nothing left to count: release whatever pods still wait on us.
        for pod in all.iter().filter(|p| status::has_tracking_finalizer(p)) {
            pods::release(&pods_api, pod).await?;
        }
        if job.metadata.deletion_timestamp.is_none() {
            ctx.failures().remove(uid);
        }
        return Ok(Action::await_change());
    }

    let now = Timestamp::now();
    let original = job.status.clone().unwrap_or_default();
    let mut st = original.clone();
    let uncounted = st.uncounted_terminated_pods.take().unwrap_or_default();
    let mut unc_succeeded = uncounted.succeeded.unwrap_or_default();
    let mut unc_failed = uncounted.failed.unwrap_or_default();
    let with_finalizer: HashSet<String> = all
        .iter()
        .filter(|p| status::has_tracking_finalizer(p))
        .map(|p| uid_of(p).to_string())
        .collect();
    count_released(
        &mut st,
        &mut unc_succeeded,
        &mut unc_failed,
        &with_finalizer,
    );

    if st.start_time.is_none() && !spec.suspended {
        st.start_time = Some(Time(now));
    }

    let tracked = |p: &&Pod| status::has_tracking_finalizer(p);
    let failure_policy = job
        .spec
        .as_ref()
        .and_then(|s| s.pod_failure_policy.as_ref());
    let counts_as_failure = |p: &Pod| policies::judge(failure_policy, p) != Verdict::Ignore;
    let new_failed = all
        .iter()
        .filter(tracked)
        .filter(|p| {
            status::failed(p, spec.only_replace_failed)
                && !unc_failed.iter().any(|u| u == uid_of(p))
        })
        .filter(|p| counts_as_failure(p))
        .count();
    let new_succeeded = all
        .iter()
        .filter(tracked)
        .filter(|p| status::succeeded(p) && !unc_succeeded.iter().any(|u| u == uid_of(p)))
        .count();
    let failed = st.failed.unwrap_or(0) + count(unc_failed.len()) + count(new_failed);
    record_failures(&ctx, uid, new_failed, new_succeeded);

    let completions_for_index = spec.completions.unwrap_or(0);
    let succeeded_indexes: BTreeSet<i32> = if spec.indexed {
        let mut set = indexes::parse(
            st.completed_indexes.as_deref().unwrap_or(""),
            completions_for_index,
        );
        set.extend(
            all.iter()
                .filter(tracked)
                .filter(|p| status::succeeded(p))
                .filter_map(indexes::of_pod)
                .filter(|i| *i < completions_for_index),
        );
        set
    } else {
        BTreeSet::new()
    };
    let succeeded = if spec.indexed {
        count(succeeded_indexes.len())
    } else {
        st.succeeded.unwrap_or(0) + count(unc_succeeded.len()) + count(new_succeeded)
    };

    let active_pods: Vec<&Pod> = all.iter().filter(|p| status::active(p)).collect();
    let mut active = count(active_pods.len());
    let mut ready = count(active_pods.iter().filter(|p| status::ready(p)).count());
    let mut terminating = count(all.iter().filter(|p| status::terminating(p)).count());

    let past_deadline = deadline_remaining(&spec, &st, now).is_some_and(|d| d.is_zero());
    let restarts = spec.restart_on_failure.then(|| restart_count(&all));
    let mut finish = if let Some(c) = status::condition(&job, status::FAILURE_TARGET) {
        Some(Finish::Failure {
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
        })
    } else if let Some(c) = status::condition(&job, status::SUCCESS_CRITERIA_MET) {
        Some(Finish::Success {
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
        })
    } else if let Some(message) = all
        .iter()
        .filter(|p| status::failed(p, spec.only_replace_failed))
        .find_map(|p| match policies::judge(failure_policy, p) {
            Verdict::FailJob(message) => Some(message),
            _ => None,
        })
    {
        Some(Finish::Failure {
            reason: policies::REASON_POD_FAILURE_POLICY.into(),
            message,
        })
    } else {
        status::failure(failed, spec.backoff_limit, restarts, past_deadline)
    };
    if finish.is_none() && spec.indexed {
        let success_policy = job.spec.as_ref().and_then(|s| s.success_policy.as_ref());
        if let Some(message) =
            policies::success(success_policy, completions_for_index, &succeeded_indexes)
        {
            finish = Some(Finish::Success {
                reason: policies::REASON_SUCCESS_POLICY.into(),
                message,
            });
        }
    }

    let mut requeue: Option<Duration> = None;
    let mut conditions = st.conditions.take().unwrap_or_default();
    if finish.is_some() {
        // The Job is over: stop what still runs. The pods keep their
        // finalizers and are counted as failed once they are gone.
        let mut deleted = 0;
        for pod in active_pods.iter().take(MAX_CREATE_DELETE) {
            if pods::delete(&pods_api, pod).await? {
                deleted += 1;
                if status::ready(pod) {
                    ready -= 1;
                }
            }
        }
        if deleted != active {
            finish = None;
        }
        active -= deleted;
        terminating += deleted;
    } else {
        let managed = manage(
            &job,
            &ctx,
            &spec,
            &pods_api,
            &active_pods,
            succeeded,
            &succeeded_indexes,
            terminating,
        )
        .await?;
        active = managed.active;
        terminating += managed.deleted;
        ready -= managed.deleted_ready;
        requeue = managed.requeue;
        if status::complete(spec.completions, succeeded, active) {
            finish = Some(Finish::completions_reached());
        } else if spec.suspended {
            status::ensure_condition(
                &mut conditions,
                status::SUSPENDED,
                "True",
                "JobSuspended",
                "Job suspended",
                now,
            );
        } else if status::ensure_condition(
            &mut conditions,
            status::SUSPENDED,
            "False",
            "JobResumed",
            "Job resumed",
            now,
        ) {
            // The active deadline counts from the resume.
            st.start_time = Some(Time(now));
        }
        if let Some(left) = deadline_remaining(&spec, &st, now) {
            requeue = Some(requeue.map_or(left, |r| r.min(left)));
        }
    }

    // Record newly finished pods before releasing them.
    let mut to_release: Vec<&Pod> = Vec::new();
    for pod in all.iter().filter(tracked) {
        let considered_failed = status::failed(pod, spec.only_replace_failed);
        if finish.is_none() && !status::succeeded(pod) && !considered_failed {
            continue;
        }
        let pod_uid = uid_of(pod).to_string();
        to_release.push(pod);
        if status::succeeded(pod) && !unc_failed.contains(&pod_uid) {
            if !spec.indexed && !unc_succeeded.contains(&pod_uid) {
                unc_succeeded.push(pod_uid);
            }
        } else if (considered_failed || matches!(finish, Some(Finish::Failure { .. })))
            && !unc_failed.contains(&pod_uid)
            && (!considered_failed || counts_as_failure(pod))
        {
            let valid_index =
                !spec.indexed || indexes::of_pod(pod).is_some_and(|i| i < completions_for_index);
            if valid_index {
                unc_failed.push(pod_uid);
            }
        }
        if unc_succeeded.len() + unc_failed.len() >= MAX_UNCOUNTED {
            break;
        }
    }
    if spec.indexed {
        st.completed_indexes = Some(indexes::format(&succeeded_indexes));
        st.succeeded = nonzero(count(succeeded_indexes.len()));
    }
    let mut final_condition = None;
    if let Some(f) = &finish {
        let (interim, last) = f.types();
        let (reason, message) = f.reason_message();
        if !conditions
            .iter()
            .any(|c| c.type_ == interim && c.status == "True")
        {
            conditions.push(status::new_condition(interim, "True", reason, message, now));
        }
        final_condition = Some(status::new_condition(last, "True", reason, message, now));
    }
    st.active = nonzero(active);
    st.ready = Some(ready.max(0));
    st.terminating = Some(terminating.max(0));
    st.conditions = (!conditions.is_empty()).then_some(conditions);
    st.uncounted_terminated_pods = Some(uncounted_of(&unc_succeeded, &unc_failed));

    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    let mut current = (*job).clone();
    if Some(&st) != job.status.as_ref() {
        current.status = Some(st.clone());
        current = jobs
            .replace_status(name, &PostParams::default(), &current)
            .await?;
    }

    // Release the recorded pods, then count them.
    let mut still_held = with_finalizer;
    let mut release_error = None;
    for pod in to_release {
        match pods::release(&pods_api, pod).await {
            Ok(_) => {
                still_held.remove(uid_of(pod));
            }
            Err(e) => release_error = Some(e),
        }
    }
    let before = st.clone();
    count_released(&mut st, &mut unc_succeeded, &mut unc_failed, &still_held);
    st.uncounted_terminated_pods = Some(uncounted_of(&unc_succeeded, &unc_failed));
    if let Some(cond) = final_condition
        && unc_succeeded.is_empty()
        && unc_failed.is_empty()
        && terminating == 0
        && release_error.is_none()
    {
        let completion_time = cond.last_transition_time.clone();
        let mut conditions = st.conditions.take().unwrap_or_default();
        let (type_, reason, message) = (
            cond.type_.clone(),
            cond.reason.clone().unwrap_or_default(),
            cond.message.clone().unwrap_or_default(),
        );
        status::ensure_condition(&mut conditions, &type_, "True", &reason, &message, now);
        st.conditions = Some(conditions);
        if type_ == status::COMPLETE {
            st.completion_time = completion_time;
        }
        tracing::info!(job = %name, namespace = %ns, condition = %type_, %reason, "job finished");
    }
    if st != before {
        current.status = Some(st);
        jobs.replace_status(name, &PostParams::default(), &current)
            .await?;
    }
    if let Some(e) = release_error {
        return Err(e);
    }
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// The Job's pods, after adopting matching orphans and releasing pods its
/// selector no longer matches. A fresh list each sync: no informer lag, so
/// no creation expectations are needed.
async fn claim_pods(job: &Job, ctx: &Ctx, api: &Api<Pod>) -> Result<Vec<Pod>, Error> {
    let uid = job.metadata.uid.as_deref().unwrap_or("");
    let selector = job
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default();
    let deleting = job.metadata.deletion_timestamp.is_some();
    let mut mine = Vec::new();
    let mut can_adopt: Option<bool> = None;
    for pod in api.list(&ListParams::default()).await?.items {
        match claim::claim(&pod, uid, &selector, deleting) {
            Claim::Keep => mine.push(pod),
            Claim::Ignore => {}
            Claim::Release => {
                tracing::info!(pod = ?pod.metadata.name, job = ?job.metadata.name, "releasing pod the job no longer selects");
                claim::patch(api, &pod, &claim::release_patch(&pod, uid)).await?;
            }
            Claim::Adopt => {
                if can_adopt.is_none() {
                    can_adopt = Some(still_current(job, ctx).await?);
                }
                if can_adopt == Some(true) {
                    tracing::info!(pod = ?pod.metadata.name, job = ?job.metadata.name, "adopting orphan pod");
                    if let Some(adopted) =
                        claim::patch(api, &pod, &claim::adopt_patch(&pod, job)).await?
                    {
                        mine.push(adopted);
                    }
                }
            }
        }
    }
    Ok(mine)
}

/// Adoption checks the live Job, not the cached one: it must still exist
/// with this uid and not be on its way out.
async fn still_current(job: &Job, ctx: &Ctx) -> Result<bool, Error> {
    let (Some(ns), Some(name)) = (
        job.metadata.namespace.as_deref(),
        job.metadata.name.as_deref(),
    ) else {
        return Ok(false);
    };
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    Ok(api.get_opt(name).await?.is_some_and(|fresh| {
        fresh.metadata.uid == job.metadata.uid && fresh.metadata.deletion_timestamp.is_none()
    }))
}

fn uncounted_of(succeeded: &[String], failed: &[String]) -> UncountedTerminatedPods {
    UncountedTerminatedPods {
        succeeded: (!succeeded.is_empty()).then(|| succeeded.to_vec()),
        failed: (!failed.is_empty()).then(|| failed.to_vec()),
    }
}

/// Time left before `activeDeadlineSeconds` (zero once past); `None` when
/// there is no deadline, no start time, or the Job is suspended.
fn deadline_remaining(spec: &Spec, st: &JobStatus, now: Timestamp) -> Option<Duration> {
    if spec.suspended {
        return None;
    }
    let deadline = spec.active_deadline?;
    let start = st.start_time.as_ref()?.0;
    let elapsed = now.duration_since(start).as_secs_f64().max(0.0);
    let left = (deadline as f64 - elapsed).max(0.0);
    Some(Duration::from_secs_f64(left))
}

/// Container restarts of pods still running or pending (`OnFailure` jobs).
fn restart_count(all: &[Pod]) -> i32 {
    all.iter()
        .filter(|p| status::active(p))
        .filter_map(|p| p.status.as_ref())
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .map(|c| c.restart_count)
        .sum()
}

fn record_failures(ctx: &Ctx, uid: &str, new_failed: usize, new_succeeded: usize) {
    if new_failed == 0 && new_succeeded == 0 {
        return;
    }
    let mut records = ctx.failures();
    let rec = records.entry(uid.to_string()).or_insert(FailureRecord {
        failures_after_last_success: 0,
        last_failure: Instant::now(),
    });
    if new_succeeded > 0 {
        rec.failures_after_last_success = 0;
    }
    if new_failed > 0 {
        rec.failures_after_last_success = rec
            .failures_after_last_success
            .saturating_add(u32::try_from(new_failed).unwrap_or(u32::MAX));
        rec.last_failure = Instant::now();
    }
}

/// Time to wait before creating pods after recent failures.
fn backoff_remaining(ctx: &Ctx, uid: &str) -> Duration {
    let records = ctx.failures.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(rec) = records.get(uid) else {
        return Duration::ZERO;
    };
    status::pod_failure_backoff(rec.failures_after_last_success)
        .saturating_sub(rec.last_failure.elapsed())
}

struct Managed {
    active: i32,
    deleted: i32,
    deleted_ready: i32,
    requeue: Option<Duration>,
}

/// Pods of an Indexed Job that must go whatever the counts: a duplicate of
/// another active pod's index, or an index outside `[0, completions)`.
fn invalid_indexed<'a>(active_pods: &[&'a Pod], completions: i32) -> Vec<&'a Pod> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for p in active_pods {
        match indexes::of_pod(p) {
            Some(i) if i < completions && seen.insert(i) => {}
            _ => out.push(*p),
        }
    }
    out
}

/// Creates or deletes pods to match parallelism and remaining completions
/// (upstream `manageJob`); a suspended Job has its active pods deleted.
#[allow(clippy::too_many_arguments)]
async fn manage(
    job: &Job,
    ctx: &Ctx,
    spec: &Spec,
    api: &Api<Pod>,
    active_pods: &[&Pod],
    succeeded: i32,
    succeeded_indexes: &BTreeSet<i32>,
    terminating: i32,
) -> Result<Managed, Error> {
    let mut m = Managed {
        active: count(active_pods.len()),
        deleted: 0,
        deleted_ready: 0,
        requeue: None,
    };
    let uid = job.metadata.uid.as_deref().unwrap_or("");
    let want = if spec.suspended {
        0
    } else {
        status::want_active(spec.completions, spec.parallelism, succeeded, m.active)
    };
    let remove_at_least = usize::try_from(m.active - want).unwrap_or(0);
    let mut to_delete: Vec<&Pod> = if spec.indexed {
        invalid_indexed(active_pods, spec.completions.unwrap_or(0))
    } else {
        Vec::new()
    };
    if to_delete.len() < remove_at_least {
        // Not-ready pods go first, then the youngest.
        let mut rest: Vec<&Pod> = active_pods
            .iter()
            .copied()
            .filter(|p| !to_delete.iter().any(|d| uid_of(d) == uid_of(p)))
            .collect();
        rest.sort_by_key(|p| {
            let created = p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            (status::ready(p), std::cmp::Reverse(created))
        });
        let extra = remove_at_least - to_delete.len();
        to_delete.extend(rest.into_iter().take(extra));
    }
    if !to_delete.is_empty() {
        for pod in to_delete.into_iter().take(MAX_CREATE_DELETE) {
            // Deleted by choice, not failed: release it before deleting so it
            // is not counted.
            pods::release(api, pod).await?;
            if pods::delete(api, pod).await? {
                m.deleted += 1;
                if status::ready(pod) {
                    m.deleted_ready += 1;
                }
            }
        }
        m.active -= m.deleted;
        return Ok(m);
    }
    let in_flight = if spec.only_replace_failed {
        terminating
    } else {
        0
    };
    let diff = usize::try_from(want - in_flight - m.active).unwrap_or(0);
    if diff == 0 {
        return Ok(m);
    }
    let wait = backoff_remaining(ctx, uid);
    if !wait.is_zero() {
        m.requeue = Some(wait);
        return Ok(m);
    }
    let diff = diff.min(MAX_CREATE_DELETE);
    let new_pods: Vec<Pod> = if spec.indexed {
        let active_indexes: BTreeSet<i32> = active_pods
            .iter()
            .filter_map(|p| indexes::of_pod(p))
            .collect();
        indexes::first_pending(
            diff,
            spec.completions.unwrap_or(0),
            succeeded_indexes,
            &active_indexes,
        )
        .into_iter()
        .map(|i| pods::build(job, Some(i)))
        .collect::<Result<_, _>>()?
    } else {
        (0..diff)
            .map(|_| pods::build(job, None))
            .collect::<Result<_, _>>()?
    };
    let (created, error) = pods::create(api, new_pods).await;
    if created > 0 {
        tracing::debug!(job = ?job.metadata.name, created, "created job pods");
    }
    m.active += count(created);
    match error {
        Some(e) => Err(e),
        None => Ok(m),
    }
}
