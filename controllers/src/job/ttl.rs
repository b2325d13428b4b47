//! The TTL-after-finished controller: deletes a finished Job (Complete or
//! Failed) `ttlSecondsAfterFinished` seconds after it finished, with
//! background propagation so the garbage collector removes its pods.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Preconditions, PropagationPolicy};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;

use super::{Error, status};

struct Ctx {
    client: kube::Client,
}

pub(crate) async fn run(client: kube::Client) {
    let jobs: Api<Job> = Api::all(client.clone());
    let ctx = Arc::new(Ctx { client });
    Controller::new(jobs, watcher::Config::default())
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "job ttl reconcile");
            }
        })
        .await;
}

fn error_policy(_job: Arc<Job>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(error = %err, "job ttl controller error; retrying");
    Action::requeue(Duration::from_secs(2))
}

/// How long until the Job expires (zero once expired); `None` when it has no
/// TTL, is not finished, or is already being deleted.
pub(crate) fn time_left(job: &Job, now: Timestamp) -> Option<Duration> {
    if job.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let finished = status::finished(job)?;
    let at = finished.last_transition_time.as_ref()?.0;
    let elapsed = now.duration_since(at).as_secs_f64().max(0.0);
    Some(Duration::from_secs_f64((ttl as f64 - elapsed).max(0.0)))
}

async fn reconcile(job: Arc<Job>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let (Some(ns), Some(name)) = (
        job.metadata.namespace.as_deref(),
        job.metadata.name.as_deref(),
    ) else {
        return Ok(Action::await_change());
    };
    match time_left(&job, Timestamp::now()) {
        None => return Ok(Action::await_change()),
        Some(left) if !left.is_zero() => return Ok(Action::requeue(left)),
        Some(_) => {}
    }
    // Check the latest version: the TTL may have been changed meanwhile.
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    let Some(fresh) = api.get_opt(name).await? else {
        return Ok(Action::await_change());
    };
    match time_left(&fresh, Timestamp::now()) {
        None => return Ok(Action::await_change()),
        Some(left) if !left.is_zero() => return Ok(Action::requeue(left)),
        Some(_) => {}
    }
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: Some(Preconditions {
            resource_version: fresh.metadata.resource_version.clone(),
            uid: None,
        }),
        ..DeleteParams::default()
    };
    tracing::info!(job = %name, namespace = %ns, "deleting job whose TTL after finishing expired");
    match api.delete(name, &params).await {
        Ok(_) => Ok(Action::await_change()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobSpec, JobStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn job(ttl: Option<i32>, finished_at: Option<i64>) -> Job {
        let conditions = finished_at.map(|s| {
            vec![status::new_condition(
                status::COMPLETE,
                "True",
                "CompletionsReached",
                "",
                Timestamp::from_second(s).unwrap(),
            )]
        });
        Job {
            spec: Some(JobSpec {
                ttl_seconds_after_finished: ttl,
                ..JobSpec::default()
            }),
            status: Some(JobStatus {
                conditions,
                ..JobStatus::default()
            }),
            ..Job::default()
        }
    }

    #[test]
    fn ttl_counts_from_the_finish() {
        let now = Timestamp::from_second(1000).unwrap();
        assert_eq!(time_left(&job(None, Some(900)), now), None);
        assert_eq!(time_left(&job(Some(10), None), now), None);
        assert_eq!(
            time_left(&job(Some(200), Some(900)), now),
            Some(Duration::from_secs(100))
        );
        assert_eq!(
            time_left(&job(Some(0), Some(900)), now),
            Some(Duration::ZERO)
        );
        let mut deleting = job(Some(0), Some(900));
        deleting.metadata.deletion_timestamp = Some(Time(now));
        assert_eq!(time_left(&deleting, now), None);
    }
}
