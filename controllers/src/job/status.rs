//! Pure pieces of a Job's status: how pods count (active, ready, terminating,
//! finished), how many pods to want, when the Job has failed or succeeded, and
//! the condition list edits (upstream's `ensureJobConditionStatus`).

use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// Finalizer that keeps a finished pod until the Job has counted it.
pub(crate) const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";

pub(crate) const COMPLETE: &str = "Complete";
pub(crate) const FAILED: &str = "Failed";
pub(crate) const FAILURE_TARGET: &str = "FailureTarget";
pub(crate) const SUCCESS_CRITERIA_MET: &str = "SuccessCriteriaMet";
pub(crate) const SUSPENDED: &str = "Suspended";

pub(crate) const REASON_BACKOFF_LIMIT: &str = "BackoffLimitExceeded";
pub(crate) const MESSAGE_BACKOFF_LIMIT: &str = "Job has reached the specified backoff limit";
pub(crate) const REASON_DEADLINE: &str = "DeadlineExceeded";
pub(crate) const MESSAGE_DEADLINE: &str = "Job was active longer than specified deadline";
pub(crate) const REASON_COMPLETIONS: &str = "CompletionsReached";
pub(crate) const MESSAGE_COMPLETIONS: &str = "Reached expected number of succeeded pods";

/// Delay before replacing a failed pod, doubled per consecutive failure.
const POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
const MAX_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(360);

/// How a Job is going to end, decided before its last pods are accounted for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Finish {
    /// Interim `SuccessCriteriaMet`, then `Complete`.
    Success { reason: String, message: String },
    /// Interim `FailureTarget`, then `Failed`.
    Failure { reason: String, message: String },
}

impl Finish {
    fn failure(reason: &str, message: &str) -> Self {
        Self::Failure {
            reason: reason.into(),
            message: message.into(),
        }
    }

    pub(crate) fn completions_reached() -> Self {
        Self::Success {
            reason: REASON_COMPLETIONS.into(),
            message: MESSAGE_COMPLETIONS.into(),
        }
    }

    /// The (interim, final) condition types.
    pub(crate) fn types(&self) -> (&'static str, &'static str) {
        match self {
            Self::Success { .. } => (SUCCESS_CRITERIA_MET, COMPLETE),
            Self::Failure { .. } => (FAILURE_TARGET, FAILED),
        }
    }

    pub(crate) fn reason_message(&self) -> (&str, &str) {
        match self {
            Self::Success { reason, message } | Self::Failure { reason, message } => {
                (reason, message)
            }
        }
    }
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

pub(crate) fn succeeded(pod: &Pod) -> bool {
    phase(pod) == "Succeeded"
}

fn terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Running or about to: neither finished nor being deleted.
pub(crate) fn active(pod: &Pod) -> bool {
    !terminal(pod) && pod.metadata.deletion_timestamp.is_none()
}

/// Being deleted but not finished yet.
pub(crate) fn terminating(pod: &Pod) -> bool {
    !terminal(pod) && pod.metadata.deletion_timestamp.is_some()
}

pub(crate) fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Whether the pod counts as failed. Unless only `Failed` pods are replaced
/// (`podReplacementPolicy: Failed`), a pod deleted before succeeding counts
/// as failed, so orphaned pods that never reach a phase are accounted for.
pub(crate) fn failed(pod: &Pod, only_replace_failed: bool) -> bool {
    match phase(pod) {
        "Failed" => true,
        "Succeeded" => false,
        _ => !only_replace_failed && pod.metadata.deletion_timestamp.is_some(),
    }
}

pub(crate) fn has_tracking_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == TRACKING_FINALIZER))
}

/// The true condition of this type, if any.
pub(crate) fn condition<'a>(job: &'a Job, type_: &str) -> Option<&'a JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
}

/// Complete or Failed: nothing more to do but cleanup.
pub(crate) fn finished(job: &Job) -> Option<&JobCondition> {
    condition(job, COMPLETE).or_else(|| condition(job, FAILED))
}

pub(crate) fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> JobCondition {
    JobCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Sets a condition to `status`: an existing one is rewritten when anything
/// differs, a missing one is only added when not "False". Returns whether the
/// list changed.
pub(crate) fn ensure_condition(
    list: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> bool {
    if let Some(c) = list.iter_mut().find(|c| c.type_ == type_) {
        let same = c.status == status
            && c.reason.as_deref() == Some(reason)
            && c.message.as_deref() == Some(message);
        if same {
            return false;
        }
        *c = new_condition(type_, status, reason, message, now);
        return true;
    }
    if status == "False" {
        return false;
    }
    list.push(new_condition(type_, status, reason, message, now));
    true
}

/// Why the Job is failing, if it is: too many failed pods (or container
/// restarts under `restartPolicy: OnFailure`), or past its active deadline.
pub(crate) fn failure(
    failed: i32,
    backoff_limit: i32,
    restarts: Option<i32>,
    past_deadline: bool,
) -> Option<Finish> {
    let restarts_exceeded = restarts.is_some_and(|r| {
        if backoff_limit == 0 {
            r > 0
        } else {
            r >= backoff_limit
        }
    });
    if failed > backoff_limit || restarts_exceeded {
        Some(Finish::failure(REASON_BACKOFF_LIMIT, MESSAGE_BACKOFF_LIMIT))
    } else if past_deadline {
        Some(Finish::failure(REASON_DEADLINE, MESSAGE_DEADLINE))
    } else {
        None
    }
}

/// How many pods should be running (upstream `manageJob`'s `wantActive`).
pub(crate) fn want_active(
    completions: Option<i32>,
    parallelism: i32,
    succeeded: i32,
    active: i32,
) -> i32 {
    match completions {
        // Work queue style: once one pod succeeded, let the others finish.
        None if succeeded > 0 => active,
        None => parallelism,
        Some(c) => (c - succeeded).clamp(0, parallelism.max(0)),
    }
}

/// Whether the Job met its completions with nothing left running.
pub(crate) fn complete(completions: Option<i32>, succeeded: i32, active: i32) -> bool {
    match completions {
        None => succeeded > 0 && active == 0,
        Some(c) => succeeded >= c && active == 0,
    }
}

/// Delay before creating pods again after `failures` consecutive failures.
pub(crate) fn pod_failure_backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let shift = (failures - 1).min(16);
    POD_FAILURE_BACKOFF
        .checked_mul(1u32 << shift)
        .map_or(MAX_POD_FAILURE_BACKOFF, |d| d.min(MAX_POD_FAILURE_BACKOFF))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pod(phase: &str, deleting: bool) -> Pod {
        let mut p = Pod {
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..PodStatus::default()
            }),
            ..Pod::default()
        };
        if deleting {
            p.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        }
        p
    }

    #[test]
    fn pod_classes() {
        // (phase, deleting) -> (active, terminating, failed, failed-only-replace-failed)
        for (phase, deleting, want) in [
            ("Pending", false, (true, false, false, false)),
            ("Running", true, (false, true, true, false)),
            ("Failed", false, (false, false, true, true)),
            ("Succeeded", true, (false, false, false, false)),
        ] {
            let p = pod(phase, deleting);
            assert_eq!(
                (
                    active(&p),
                    terminating(&p),
                    failed(&p, false),
                    failed(&p, true)
                ),
                want,
                "{phase} deleting={deleting}"
            );
        }
    }

    #[test]
    fn wanted_pods() {
        for (completions, parallelism, succeeded, active, want) in [
            (Some(3), 2, 0, 0, 2),
            (Some(3), 2, 2, 0, 1),
            (Some(3), 2, 3, 0, 0),
            (Some(3), 2, 5, 0, 0),
            (None, 4, 0, 1, 4),
            (None, 4, 1, 2, 2),
        ] {
            assert_eq!(
                want_active(completions, parallelism, succeeded, active),
                want
            );
        }
    }

    #[test]
    fn completion() {
        assert!(complete(Some(3), 3, 0));
        assert!(!complete(Some(3), 3, 1));
        assert!(!complete(Some(3), 2, 0));
        assert!(complete(None, 1, 0));
        assert!(!complete(None, 0, 0));
    }

    #[test]
    fn failures() {
        assert_eq!(failure(1, 1, None, false), None);
        assert_eq!(
            failure(2, 1, None, true),
            Some(Finish::failure(REASON_BACKOFF_LIMIT, MESSAGE_BACKOFF_LIMIT))
        );
        assert_eq!(
            failure(0, 6, None, true),
            Some(Finish::failure(REASON_DEADLINE, MESSAGE_DEADLINE))
        );
        assert!(failure(0, 0, Some(1), false).is_some());
        assert!(failure(0, 2, Some(1), false).is_none());
        assert!(failure(0, 2, Some(2), false).is_some());
    }

    #[test]
    fn condition_transitions() {
        let t0 = Timestamp::UNIX_EPOCH;
        let t1 = Timestamp::from_second(100).unwrap();
        let mut list = Vec::new();
        // A False condition is not added from nothing.
        assert!(!ensure_condition(
            &mut list,
            SUSPENDED,
            "False",
            "JobResumed",
            "Job resumed",
            t0
        ));
        assert!(ensure_condition(
            &mut list,
            SUSPENDED,
            "True",
            "JobSuspended",
            "Job suspended",
            t0
        ));
        assert!(!ensure_condition(
            &mut list,
            SUSPENDED,
            "True",
            "JobSuspended",
            "Job suspended",
            t1
        ));
        assert_eq!(list[0].last_transition_time, Some(Time(t0)));
        assert!(ensure_condition(
            &mut list,
            SUSPENDED,
            "False",
            "JobResumed",
            "Job resumed",
            t1
        ));
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].status, "False");
        assert_eq!(list[0].last_transition_time, Some(Time(t1)));
    }

    #[test]
    fn finish_condition_types() {
        assert_eq!(
            Finish::completions_reached().types(),
            (SUCCESS_CRITERIA_MET, COMPLETE)
        );
        assert_eq!(
            Finish::failure(REASON_DEADLINE, MESSAGE_DEADLINE).types(),
            (FAILURE_TARGET, FAILED)
        );
    }

    #[test]
    fn backoff_doubles() {
        assert_eq!(pod_failure_backoff(0), Duration::ZERO);
        assert_eq!(pod_failure_backoff(1), Duration::from_secs(10));
        assert_eq!(pod_failure_backoff(3), Duration::from_secs(40));
        assert_eq!(pod_failure_backoff(10), MAX_POD_FAILURE_BACKOFF);
    }
}
