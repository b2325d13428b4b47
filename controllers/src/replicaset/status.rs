//! The replica controller's status computation: counts over the active pods it
//! owns, and the `ReplicaFailure` condition that reports a failed create or
//! delete (for example a pod refused by a quota) until a sync succeeds.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::kind::{ReplicaCondition, ReplicaSpec, ReplicaStatus};
use crate::workload::pods;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub(crate) const REPLICA_FAILURE: &str = "ReplicaFailure";

/// The new status for a controller at `generation` owning the active `pods`;
/// `manage_error` is the message of a failed create/delete in this sync.
pub(crate) fn calculate(
    current: &ReplicaStatus,
    spec: &ReplicaSpec,
    generation: i64,
    pods: &[Pod],
    manage_error: Option<&str>,
    now: Timestamp,
) -> ReplicaStatus {
    let empty = BTreeMap::new();
    let template_labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref())
        .unwrap_or(&empty);
    let fully_labeled = pods
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.as_ref().unwrap_or(&empty);
            template_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
        })
        .count();
    let ready = pods.iter().filter(|p| pods::is_ready(p)).count();
    let available = pods
        .iter()
        .filter(|p| pods::is_available(p, spec.min_ready_seconds, now))
        .count();
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);

    let mut conditions = current.conditions.clone();
    let has_failure = conditions.iter().any(|c| c.type_ == REPLICA_FAILURE);
    match manage_error {
        Some(message) if !has_failure => {
            let diff = i64::try_from(pods.len()).unwrap_or(i64::MAX) - i64::from(spec.replicas);
            let reason = match diff {
                d if d < 0 => "FailedCreate",
                d if d > 0 => "FailedDelete",
                _ => "",
            };
            conditions.push(ReplicaCondition {
                type_: REPLICA_FAILURE.to_string(),
                status: "True".to_string(),
                reason: Some(reason.to_string()),
                message: Some(message.to_string()),
                last_transition_time: Some(Time(now)),
            });
        }
        None if has_failure => conditions.retain(|c| c.type_ != REPLICA_FAILURE),
        _ => {}
    }

    ReplicaStatus {
        replicas: count(pods.len()),
        fully_labeled_replicas: count(fully_labeled),
        ready_replicas: count(ready),
        available_replicas: count(available),
        observed_generation: generation,
        conditions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn pod(labels: serde_json::Value, ready_at: Option<i64>) -> Pod {
        let conditions = match ready_at {
            Some(t) => {
                json!([{"type": "Ready", "status": "True", "lastTransitionTime": ts(t).to_string()}])
            }
            None => json!([{"type": "Ready", "status": "False"}]),
        };
        serde_json::from_value(json!({"metadata": {"labels": labels}, "status": {"phase": "Running", "conditions": conditions}})).unwrap()
    }

    fn spec(replicas: i32, min_ready: i32) -> ReplicaSpec {
        ReplicaSpec {
            replicas,
            min_ready_seconds: min_ready,
            template: Some(
                serde_json::from_value(
                    json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}}),
                )
                .unwrap(),
            ),
            ..ReplicaSpec::default()
        }
    }

    #[test]
    fn counts() {
        let now = ts(1000);
        let pods = vec![
            pod(json!({"app": "web", "tier": "fe"}), Some(100)),
            pod(json!({"app": "web", "tier": "fe", "x": "y"}), Some(995)),
            pod(json!({"app": "web"}), None),
        ];
        // (min ready seconds, expected (replicas, fully labeled, ready, available))
        let cases = [(0, (3, 2, 2, 2)), (10, (3, 2, 2, 1)), (1000, (3, 2, 2, 0))];
        for (min_ready, (r, fl, rd, av)) in cases {
            let s = calculate(
                &ReplicaStatus::default(),
                &spec(3, min_ready),
                7,
                &pods,
                None,
                now,
            );
            assert_eq!(
                (
                    s.replicas,
                    s.fully_labeled_replicas,
                    s.ready_replicas,
                    s.available_replicas,
                    s.observed_generation
                ),
                (r, fl, rd, av, 7),
                "minReadySeconds {min_ready}"
            );
            assert!(s.conditions.is_empty());
        }
    }

    #[test]
    fn replica_failure_condition() {
        let now = ts(1000);
        let one = vec![pod(json!({"app": "web"}), None)];
        let failed = calculate(
            &ReplicaStatus::default(),
            &spec(3, 0),
            1,
            &one,
            Some("exceeded quota"),
            now,
        );
        assert_eq!(failed.conditions.len(), 1);
        let c = &failed.conditions[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str()),
            ("ReplicaFailure", "True")
        );
        assert_eq!(c.reason.as_deref(), Some("FailedCreate"));
        assert_eq!(c.message.as_deref(), Some("exceeded quota"));

        // A later failure keeps the first condition; a success clears it.
        let again = calculate(&failed, &spec(3, 0), 1, &one, Some("other"), ts(2000));
        assert_eq!(again.conditions, failed.conditions);
        let cleared = calculate(&failed, &spec(3, 0), 1, &one, None, now);
        assert!(cleared.conditions.is_empty());

        let too_many = vec![pod(json!({}), None), pod(json!({}), None)];
        let del = calculate(
            &ReplicaStatus::default(),
            &spec(1, 0),
            1,
            &too_many,
            Some("boom"),
            now,
        );
        assert_eq!(del.conditions[0].reason.as_deref(), Some("FailedDelete"));
    }
}
