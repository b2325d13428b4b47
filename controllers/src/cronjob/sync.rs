//! One sync of a CronJob (upstream `syncCronJob`), in order:
//!
//! 1. list the Jobs it controls and reconcile `status.active` with them;
//! 2. stop there if it is being deleted, suspended, or its schedule or time
//!    zone is invalid (the last two with a warning event);
//! 3. find the most recent due schedule time; skip it if it is past the
//!    starting deadline or already started, or if a Job is still active
//!    under `Forbid` (under `Replace` the active Jobs are deleted first);
//! 4. create the Job, record it in `status.active` and `lastScheduleTime`;
//! 5. delete finished Jobs beyond the history limits;
//! 6. requeue at the next schedule time.

use std::sync::Arc;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::controller::Action;

use super::plan::{self, MISSED_WARNING_THRESHOLD};
use super::schedule::{self, Schedule};
use super::{Ctx, Error, key};
use crate::workload::ownership::{Owner, controller_of};

const FIELD_MANAGER: &str = "cronjob-controller";

pub(crate) async fn reconcile(cj: Arc<CronJob>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let action = sync(&cj, &ctx).await?;
    ctx.backoff.reset(&key(&cj));
    Ok(action)
}

async fn sync(cj: &CronJob, ctx: &Ctx) -> Result<Action, Error> {
    let (Some(ns), Some(name), Some(spec)) = (
        cj.metadata.namespace.as_deref(),
        cj.metadata.name.as_deref(),
        cj.spec.as_ref(),
    ) else {
        return Ok(Action::await_change());
    };
    let Some(owner) = Owner::from_meta("batch/v1", "CronJob", &cj.metadata) else {
        return Ok(Action::await_change());
    };
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    let cj_api: Api<CronJob> = Api::namespaced(ctx.client.clone(), ns);
    let me = cj.object_ref(&());

    let all = jobs_api.list(&ListParams::default()).await?.items;
    let owned = plan::controlled(cj, &all);
    let changes = plan::reconcile_active(cj, &owned);
    for (job, condition) in &changes.completed {
        ctx.events.normal(
            me.clone(),
            "SawCompletedJob",
            "Sync",
            format!("Saw completed job: {job}, condition: {condition}"),
        );
    }
    for job in &changes.unexpected {
        ctx.events.warning(
            me.clone(),
            "UnexpectedJob",
            "Sync",
            format!("Saw a job that the controller did not create or forgot: {job}"),
        );
    }
    for job in &changes.missing {
        ctx.events.normal(
            me.clone(),
            "MissingJob",
            "Sync",
            format!("Active job went missing: {job}"),
        );
    }
    let status = cj.status.clone().unwrap_or_default();
    let mut active = changes.active;
    let mut last_schedule = status.last_schedule_time.as_ref().map(|t| t.0);
    let last_successful = changes.last_successful;

    let now = (ctx.clock)();
    let outcome = if cj.metadata.deletion_timestamp.is_some() || spec.suspend == Some(true) {
        None
    } else {
        match schedule_of(cj, ctx, &me) {
            None => None,
            Some((sched, tz)) => Some(
                start_due(
                    cj,
                    ctx,
                    &owner,
                    &jobs_api,
                    &sched,
                    &tz,
                    now,
                    &mut active,
                    &mut last_schedule,
                )
                .await?,
            ),
        }
    };

    let before = plan::status_patch(
        status.active.as_deref().unwrap_or_default(),
        status.last_schedule_time.as_ref().map(|t| t.0),
        status.last_successful_time.as_ref().map(|t| t.0),
    );
    let after = plan::status_patch(&active, last_schedule, last_successful);
    if before != after {
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        cj_api
            .patch_status(name, &params, &Patch::Merge(&after))
            .await?;
    }

    if cj.metadata.deletion_timestamp.is_none() {
        for job in plan::beyond_history(cj, &owned) {
            delete_job(ctx, &jobs_api, &me, job).await?;
        }
    }
    Ok(outcome
        .flatten()
        .map_or_else(Action::await_change, Action::requeue))
}

/// The parsed schedule and time zone, or `None` after a warning event.
fn schedule_of(
    cj: &CronJob,
    ctx: &Ctx,
    me: &k8s_openapi::api::core::v1::ObjectReference,
) -> Option<(Schedule, jiff::tz::TimeZone)> {
    let spec = cj.spec.as_ref()?;
    let tz = match schedule::time_zone(spec.time_zone.as_deref()) {
        Ok(tz) => tz,
        Err(e) => {
            ctx.events.warning(
                me.clone(),
                "UnknownTimeZone",
                "Sync",
                format!(
                    "invalid timeZone: {:?}: {e}",
                    spec.time_zone.as_deref().unwrap_or_default()
                ),
            );
            return None;
        }
    };
    match Schedule::parse(&spec.schedule) {
        Ok(s) => Some((s, tz)),
        Err(e) => {
            ctx.events.warning(
                me.clone(),
                "UnparseableSchedule",
                "Sync",
                format!("unparseable schedule: {:?} : {e}", spec.schedule),
            );
            None
        }
    }
}

/// Steps 3 and 4; returns when to sync next.
#[allow(clippy::too_many_arguments)]
async fn start_due(
    cj: &CronJob,
    ctx: &Ctx,
    owner: &Owner,
    jobs_api: &Api<Job>,
    sched: &Schedule,
    tz: &jiff::tz::TimeZone,
    now: Timestamp,
    active: &mut Vec<k8s_openapi::api::core::v1::ObjectReference>,
    last_schedule: &mut Option<Timestamp>,
) -> Result<Option<std::time::Duration>, Error> {
    let me = cj.object_ref(&());
    let next = plan::requeue_after(sched, tz, now);
    let due = plan::due(cj, sched, tz, now);
    if due.too_many_missed {
        ctx.events.warning(
            me.clone(),
            "TooManyMissedTimes",
            "Sync",
            format!(
                "too many missed start times (> {MISSED_WARNING_THRESHOLD}). Set or decrease .spec.startingDeadlineSeconds or check clock skew"
            ),
        );
    }
    let Some(scheduled) = due.scheduled else {
        return Ok(next);
    };
    if plan::too_late(cj, scheduled, now) {
        ctx.events.warning(
            me.clone(),
            "MissSchedule",
            "Sync",
            format!(
                "Missed scheduled time to start a job: {}",
                plan::format_in_zone(scheduled, tz)
            ),
        );
        return Ok(next);
    }
    let name = plan::job_name(&owner.name, scheduled);
    if active
        .iter()
        .any(|r| r.name.as_deref() == Some(name.as_str()))
        || *last_schedule == Some(scheduled)
    {
        return Ok(next);
    }
    let policy = cj
        .spec
        .as_ref()
        .and_then(|s| s.concurrency_policy.as_deref())
        .unwrap_or("Allow");
    if policy == "Forbid" && !active.is_empty() {
        tracing::debug!(cronjob = %key(cj), "not starting a job: the previous one is still running (Forbid)");
        return Ok(next);
    }
    if policy == "Replace" {
        for r in std::mem::take(active) {
            let Some(job_name) = r.name.as_deref() else {
                continue;
            };
            let Some(job) = jobs_api.get_opt(job_name).await? else {
                continue;
            };
            delete_job(ctx, jobs_api, &me, &job).await?;
        }
    }
    let Some(job) = plan::job_for(cj, owner, scheduled, tz) else {
        return Ok(next);
    };
    let created = match jobs_api.create(&PostParams::default(), &job).await {
        Ok(j) => {
            ctx.events.normal(
                me.clone(),
                "SuccessfulCreate",
                "Create",
                format!("Created job {name}"),
            );
            j
        }
        Err(kube::Error::Api(e)) if e.code == 409 => {
            // Created by an earlier sync whose status write was lost.
            let existing = jobs_api.get(&name).await?;
            if controller_of(&existing.metadata).is_none_or(|r| r.uid != owner.uid) {
                ctx.events.warning(
                    me.clone(),
                    "FailedCreate",
                    "Create",
                    format!("Error creating job: a job named {name} exists and is not ours"),
                );
                return Err(Error::Conflict(name));
            }
            existing
        }
        Err(e) => {
            ctx.events.warning(
                me.clone(),
                "FailedCreate",
                "Create",
                format!("Error creating job: {e}"),
            );
            return Err(e.into());
        }
    };
    if plan::finished(&created).is_none() && !active.iter().any(|r| r.uid == created.metadata.uid) {
        active.push(plan::reference(&created));
    }
    *last_schedule = Some(scheduled);
    Ok(next)
}

async fn delete_job(
    ctx: &Ctx,
    api: &Api<Job>,
    me: &k8s_openapi::api::core::v1::ObjectReference,
    job: &Job,
) -> Result<(), Error> {
    let Some(name) = job.metadata.name.as_deref() else {
        return Ok(());
    };
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => {
            ctx.events.normal(
                me.clone(),
                "SuccessfulDelete",
                "Delete",
                format!("Deleted job {name}"),
            );
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => {
            ctx.events.warning(
                me.clone(),
                "FailedDelete",
                "Delete",
                format!("Deleted job: {e}"),
            );
            Err(e.into())
        }
    }
}
