//! The Deployment's status: counts summed over its ReplicaSets, the
//! `Available` condition, and the `Progressing` condition that tracks a
//! rollout against `progressDeadlineSeconds`, with upstream's reasons and
//! messages so `kubectl rollout status` and `kubectl describe` read the same.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::strategy;
use super::util;

pub(crate) const AVAILABLE: &str = "Available";
pub(crate) const PROGRESSING: &str = "Progressing";
pub(crate) const REPLICA_FAILURE: &str = "ReplicaFailure";

pub(crate) const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub(crate) const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub(crate) const RS_UPDATED: &str = "ReplicaSetUpdated";
pub(crate) const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub(crate) const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub(crate) const PAUSED: &str = "DeploymentPaused";
pub(crate) const RESUMED: &str = "DeploymentResumed";
pub(crate) const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
pub(crate) const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
pub(crate) const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";

pub(crate) fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

pub(crate) fn get_condition<'a>(
    status: &'a DeploymentStatus,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// Sets a condition as upstream does: unchanged if status and reason are the
/// same; the transition time kept if only the reason changed; a changed
/// condition moves to the end of the list.
pub(crate) fn set_condition(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    if let Some(current) = get_condition(status, &cond.type_) {
        if current.status == cond.status && current.reason == cond.reason {
            return;
        }
        if current.status == cond.status {
            cond.last_transition_time = current.last_transition_time.clone();
        }
    }
    let mut conditions: Vec<DeploymentCondition> = status
        .conditions
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.type_ != cond.type_)
        .collect();
    conditions.push(cond);
    status.conditions = Some(conditions);
}

pub(crate) fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != type_);
        if conditions.is_empty() {
            status.conditions = None;
        }
    }
}

fn count(v: Option<i32>) -> i32 {
    v.unwrap_or(0)
}

/// The status with zero counts written as absent (upstream's `omitempty`), so
/// a status read back compares equal to the one computed.
pub(crate) fn normalized(mut s: DeploymentStatus) -> DeploymentStatus {
    let nz = |v: Option<i32>| v.filter(|n| *n != 0);
    s.replicas = nz(s.replicas);
    s.updated_replicas = nz(s.updated_replicas);
    s.ready_replicas = nz(s.ready_replicas);
    s.available_replicas = nz(s.available_replicas);
    s.unavailable_replicas = nz(s.unavailable_replicas);
    s.observed_generation = s.observed_generation.filter(|g| *g != 0);
    if s.conditions.as_ref().is_some_and(Vec::is_empty) {
        s.conditions = None;
    }
    s
}

pub(crate) fn has_progress_deadline(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .is_some_and(|p| p != i32::MAX)
}

/// Counts over all ReplicaSets and the `Available` condition.
pub(crate) fn calculate(
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    d: &Deployment,
    now: Timestamp,
) -> DeploymentStatus {
    let available = util::total_available(all);
    let total = util::total_spec(all);
    let current = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(util::total_status(all)),
        updated_replicas: Some(new.map_or(0, util::status_replicas)),
        ready_replicas: Some(util::total_ready(all)),
        available_replicas: Some(available),
        unavailable_replicas: Some((total - available).max(0)),
        collision_count: current.collision_count,
        conditions: current.conditions.clone(),
        terminating_replicas: None,
    };
    let desired = strategy::replicas(d);
    if available >= desired - strategy::max_unavailable(d) {
        set_condition(
            &mut status,
            new_condition(
                AVAILABLE,
                "True",
                MIN_AVAILABLE,
                "Deployment has minimum availability.".into(),
                now,
            ),
        );
    } else {
        set_condition(
            &mut status,
            new_condition(
                AVAILABLE,
                "False",
                MIN_UNAVAILABLE,
                "Deployment does not have minimum availability.".into(),
                now,
            ),
        );
    }
    normalized(status)
}

/// All replicas updated and available, and the latest spec observed.
pub(crate) fn complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let desired = strategy::replicas(d);
    count(s.updated_replicas) == desired
        && count(s.replicas) == desired
        && count(s.available_replicas) == desired
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Whether the rollout moved since the recorded status: more updated, fewer
/// old, more ready or more available replicas.
pub(crate) fn progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let old_old = count(old.replicas) - count(old.updated_replicas);
    let new_old = count(new.replicas) - count(new.updated_replicas);
    count(new.updated_replicas) > count(old.updated_replicas)
        || new_old < old_old
        || count(new.ready_replicas) > count(old.ready_replicas)
        || count(new.available_replicas) > count(old.available_replicas)
}

fn deadline(d: &Deployment) -> i64 {
    i64::from(
        d.spec
            .as_ref()
            .and_then(|s| s.progress_deadline_seconds)
            .unwrap_or(i32::MAX),
    )
}

/// Whether the rollout has made no progress for `progressDeadlineSeconds`.
pub(crate) fn timed_out(d: &Deployment, s: &DeploymentStatus, now: Timestamp) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(cond) = get_condition(s, PROGRESSING) else {
        return false;
    };
    match cond.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => cond
            .last_update_time
            .as_ref()
            .is_some_and(|t| t.0.as_second() + deadline(d) < now.as_second()),
    }
}

/// The status after a rollout step: counts, `Available`, `Progressing` and
/// the `ReplicaFailure` mirrored from the ReplicaSets.
pub(crate) fn rollout(
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    d: &Deployment,
    now: Timestamp,
) -> DeploymentStatus {
    let mut status = calculate(all, new, d, now);
    if !has_progress_deadline(d) {
        remove_condition(&mut status, PROGRESSING);
    }
    let current = d.status.clone().unwrap_or_default();
    let current_cond = get_condition(&current, PROGRESSING);
    let is_complete = count(status.replicas) == count(status.updated_replicas)
        && current_cond.is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE));
    let d_name = d.metadata.name.clone().unwrap_or_default();
    if has_progress_deadline(d) && !is_complete {
        if complete(d, &status) {
            let message = match new {
                Some(rs) => format!(
                    "ReplicaSet \"{}\" has successfully progressed.",
                    util::name(rs)
                ),
                None => format!("Deployment \"{d_name}\" has successfully progressed."),
            };
            set_condition(
                &mut status,
                new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, message, now),
            );
        } else if progressing(d, &status) {
            let message = match new {
                Some(rs) => format!("ReplicaSet \"{}\" is progressing.", util::name(rs)),
                None => format!("Deployment \"{d_name}\" is progressing."),
            };
            let mut cond = new_condition(PROGRESSING, "True", RS_UPDATED, message, now);
            // Progress refreshes the update time; the transition time stays
            // if the condition was already true.
            if let Some(c) = current_cond {
                if c.status == "True" {
                    cond.last_transition_time = c.last_transition_time.clone();
                }
                remove_condition(&mut status, PROGRESSING);
            }
            set_condition(&mut status, cond);
        } else if timed_out(d, &status, now) {
            let message = match new {
                Some(rs) => format!(
                    "ReplicaSet \"{}\" has timed out progressing.",
                    util::name(rs)
                ),
                None => format!("Deployment \"{d_name}\" has timed out progressing."),
            };
            set_condition(
                &mut status,
                new_condition(PROGRESSING, "False", TIMED_OUT, message, now),
            );
        }
    }
    match replica_failure(all, new) {
        Some(cond) => set_condition(&mut status, cond),
        None => remove_condition(&mut status, REPLICA_FAILURE),
    }
    normalized(status)
}

/// The first `ReplicaFailure` among the ReplicaSets, the new one first.
fn replica_failure(all: &[&ReplicaSet], new: Option<&ReplicaSet>) -> Option<DeploymentCondition> {
    let new_uid = new.and_then(|rs| rs.metadata.uid.clone());
    let ordered = new.into_iter().chain(
        all.iter()
            .copied()
            .filter(|rs| new_uid.is_none() || rs.metadata.uid != new_uid),
    );
    for rs in ordered {
        if let Some(c) = rs
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == REPLICA_FAILURE))
        {
            return Some(DeploymentCondition {
                type_: REPLICA_FAILURE.to_string(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_update_time: c.last_transition_time.clone(),
                last_transition_time: c.last_transition_time.clone(),
            });
        }
    }
    None
}

/// When to look again at a rollout that may pass its progress deadline
/// without any other event: just after the deadline.
pub(crate) fn stuck_requeue(
    d: &Deployment,
    new: &DeploymentStatus,
    now: Timestamp,
) -> Option<Duration> {
    let current = d.status.clone().unwrap_or_default();
    let cond = get_condition(&current, PROGRESSING)?;
    if !has_progress_deadline(d) || complete(d, new) || cond.reason.as_deref() == Some(TIMED_OUT) {
        return None;
    }
    let updated = cond.last_update_time.as_ref()?.0.as_second();
    let after = updated + deadline(d) - now.as_second();
    Some(Duration::from_secs(
        u64::try_from(after.max(0)).unwrap_or(0) + 1,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn rs(name: &str, spec: i32, status: i32, ready: i32, available: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": name, "uid": name},
            "spec": {"replicas": spec, "selector": {}},
            "status": {"replicas": status, "readyReplicas": ready, "availableReplicas": available}
        }))
        .unwrap()
    }

    fn deployment(replicas: i32, generation: i64, status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": generation},
            "spec": {"replicas": replicas, "selector": {}, "template": {}, "progressDeadlineSeconds": 600,
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}},
            "status": status
        }))
        .unwrap()
    }

    fn cond<'a>(s: &'a DeploymentStatus, t: &str) -> (&'a str, &'a str, &'a str) {
        let c = get_condition(s, t).unwrap();
        (
            c.status.as_str(),
            c.reason.as_deref().unwrap(),
            c.message.as_deref().unwrap(),
        )
    }

    #[test]
    fn counts_and_availability() {
        let now = ts(1000);
        let old = rs("web-old", 2, 2, 2, 2);
        let new = rs("web-new", 2, 2, 1, 0);
        // (replicas, expected (replicas, updated, ready, available, unavailable), Available status)
        let cases = [
            (3, (Some(4), Some(2), Some(3), Some(2), Some(2)), "True"),
            (4, (Some(4), Some(2), Some(3), Some(2), Some(2)), "False"),
        ];
        for (replicas, want, available) in cases {
            let d = deployment(replicas, 3, json!({}));
            let s = calculate(&[&old, &new], Some(&new), &d, now);
            assert_eq!(
                (
                    s.replicas,
                    s.updated_replicas,
                    s.ready_replicas,
                    s.available_replicas,
                    s.unavailable_replicas
                ),
                want
            );
            assert_eq!(s.observed_generation, Some(3));
            assert_eq!(cond(&s, AVAILABLE).0, available);
        }
        let d = deployment(3, 1, json!({}));
        assert_eq!(
            cond(&calculate(&[&old], None, &d, now), AVAILABLE),
            (
                "True",
                MIN_AVAILABLE,
                "Deployment has minimum availability."
            )
        );
        // Zero counts are absent.
        let empty = calculate(&[], None, &deployment(0, 1, json!({})), now);
        assert_eq!(
            (
                empty.replicas,
                empty.updated_replicas,
                empty.unavailable_replicas
            ),
            (None, None, None)
        );
    }

    #[test]
    fn progressing_condition() {
        let now = ts(10_000);
        let new = rs("web-new", 3, 3, 3, 3);
        // Complete: NewReplicaSetAvailable with upstream's message.
        let d = deployment(3, 2, json!({"observedGeneration": 1}));
        let s = rollout(&[&new], Some(&new), &d, now);
        assert_eq!(
            cond(&s, PROGRESSING),
            (
                "True",
                NEW_RS_AVAILABLE,
                "ReplicaSet \"web-new\" has successfully progressed."
            )
        );

        // Progress: more updated replicas than recorded.
        let partial = rs("web-new", 3, 2, 0, 0);
        let started = ts(9_000).to_string();
        let d = deployment(
            3,
            2,
            json!({"updatedReplicas": 1, "replicas": 1, "conditions": [
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetCreated", "message": "m", "lastUpdateTime": started, "lastTransitionTime": started}]}),
        );
        let s = rollout(&[&partial], Some(&partial), &d, now);
        assert_eq!(
            cond(&s, PROGRESSING),
            ("True", RS_UPDATED, "ReplicaSet \"web-new\" is progressing.")
        );
        let c = get_condition(&s, PROGRESSING).unwrap();
        assert_eq!(
            c.last_transition_time,
            Some(Time(ts(9_000))),
            "transition time kept"
        );
        assert_eq!(c.last_update_time, Some(Time(now)));

        // No progress for longer than the deadline: timed out.
        let d = deployment(
            3,
            2,
            json!({"updatedReplicas": 2, "replicas": 2, "conditions": [
            {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "message": "m", "lastUpdateTime": ts(1_000).to_string(), "lastTransitionTime": ts(1_000).to_string()}]}),
        );
        let s = rollout(&[&partial], Some(&partial), &d, now);
        assert_eq!(
            cond(&s, PROGRESSING),
            (
                "False",
                TIMED_OUT,
                "ReplicaSet \"web-new\" has timed out progressing."
            )
        );
        // Within the deadline nothing changes, and a requeue is due at the deadline.
        let d = deployment(
            3,
            2,
            json!({"updatedReplicas": 2, "replicas": 2, "conditions": [
            {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "message": "m", "lastUpdateTime": ts(9_900).to_string(), "lastTransitionTime": ts(9_900).to_string()}]}),
        );
        let s = rollout(&[&partial], Some(&partial), &d, now);
        assert_eq!(cond(&s, PROGRESSING).1, RS_UPDATED);
        assert_eq!(stuck_requeue(&d, &s, now), Some(Duration::from_secs(501)));
    }

    #[test]
    fn condition_bookkeeping() {
        let mut s = DeploymentStatus::default();
        set_condition(
            &mut s,
            new_condition(PROGRESSING, "True", NEW_RS_CREATED, "a".into(), ts(1)),
        );
        set_condition(
            &mut s,
            new_condition(AVAILABLE, "False", MIN_UNAVAILABLE, "b".into(), ts(1)),
        );
        // Same status and reason: untouched.
        set_condition(
            &mut s,
            new_condition(PROGRESSING, "True", NEW_RS_CREATED, "other".into(), ts(5)),
        );
        assert_eq!(cond(&s, PROGRESSING).2, "a");
        // Same status, new reason: moved last, transition time kept.
        set_condition(
            &mut s,
            new_condition(PROGRESSING, "True", FOUND_NEW_RS, "c".into(), ts(5)),
        );
        let types: Vec<&str> = s
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(types, [AVAILABLE, PROGRESSING]);
        assert_eq!(
            get_condition(&s, PROGRESSING).unwrap().last_transition_time,
            Some(Time(ts(1)))
        );
        remove_condition(&mut s, AVAILABLE);
        remove_condition(&mut s, PROGRESSING);
        assert!(s.conditions.is_none());
    }
}
