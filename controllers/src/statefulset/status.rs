//! A StatefulSet's status, computed from the pods it owns and its revisions:
//! counts of created, ready, available, current and updated pods, and the
//! revisions. A rolling update is complete (the update revision becomes the
//! current one) once every pod is updated and ready.

use k8s_openapi::api::apps::v1::StatefulSetStatus;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::identity::revision_of;
use crate::workload::pods;

/// Running with its Ready condition true.
pub(crate) fn running_and_ready(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") && pods::is_ready(pod)
}

pub(crate) fn terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Running, ready for `min_ready_seconds`, and not being deleted.
pub(crate) fn healthy(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    running_and_ready(pod) && !terminating(pod) && pods::is_available(pod, min_ready_seconds, now)
}

/// What the status is computed from.
pub(crate) struct Inputs<'a> {
    pub(crate) generation: Option<i64>,
    pub(crate) pods: &'a [Pod],
    pub(crate) current_revision: &'a str,
    pub(crate) update_revision: &'a str,
    pub(crate) collision_count: i32,
    pub(crate) min_ready_seconds: i32,
    pub(crate) rolling_update: bool,
    pub(crate) previous: Option<&'a StatefulSetStatus>,
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub(crate) fn calculate(i: &Inputs<'_>, now: Timestamp) -> StatefulSetStatus {
    let created: Vec<&Pod> = i
        .pods
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()).is_some())
        .collect();
    let ready = i.pods.iter().filter(|p| running_and_ready(p)).count();
    let available = i
        .pods
        .iter()
        .filter(|p| running_and_ready(p) && pods::is_available(p, i.min_ready_seconds, now))
        .count();
    let live = || created.iter().filter(|p| !terminating(p));
    let current = live()
        .filter(|p| revision_of(p) == Some(i.current_revision))
        .count();
    let updated = live()
        .filter(|p| revision_of(p) == Some(i.update_revision))
        .count();
    let mut status = StatefulSetStatus {
        observed_generation: i.generation,
        replicas: count(created.len()),
        ready_replicas: Some(count(ready)),
        available_replicas: Some(count(available)),
        current_replicas: Some(count(current)),
        updated_replicas: Some(count(updated)),
        current_revision: Some(i.current_revision.to_string()),
        update_revision: Some(i.update_revision.to_string()),
        collision_count: Some(i.collision_count),
        conditions: i.previous.and_then(|p| p.conditions.clone()),
    };
    if i.rolling_update && updated == created.len() && ready == created.len() {
        status.current_replicas = status.updated_replicas;
        status.current_revision = status.update_revision.clone();
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(rev: &str, phase: &str, ready: bool, deleting: bool) -> Pod {
        let mut v = json!({
            "metadata": {"labels": {"controller-revision-hash": rev}},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}, "lastTransitionTime": "2024-01-01T00:00:00Z"}]}
        });
        if deleting {
            v["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        }
        serde_json::from_value(v).unwrap()
    }

    fn inputs<'a>(pods: &'a [Pod], rolling: bool, min_ready: i32) -> Inputs<'a> {
        Inputs {
            generation: Some(3),
            pods,
            current_revision: "r1",
            update_revision: "r2",
            collision_count: 0,
            min_ready_seconds: min_ready,
            rolling_update: rolling,
            previous: None,
        }
    }

    #[test]
    fn counts_and_revisions() {
        let now = Timestamp::from_second(1_704_067_230).unwrap(); // 30 s after ready
        let pods = vec![
            pod("r1", "Running", true, false),
            pod("r2", "Running", true, false),
            pod("r2", "Pending", false, false),
            pod("r1", "Running", true, true),
        ];
        let s = calculate(&inputs(&pods, true, 0), now);
        assert_eq!(s.replicas, 4);
        assert_eq!(s.ready_replicas, Some(3));
        assert_eq!(s.available_replicas, Some(3));
        assert_eq!(
            s.current_replicas,
            Some(1),
            "terminating pods are not current"
        );
        assert_eq!(s.updated_replicas, Some(2));
        assert_eq!(s.current_revision.as_deref(), Some("r1"));
        assert_eq!(s.observed_generation, Some(3));
        let s = calculate(&inputs(&pods, true, 60), now);
        assert_eq!(s.available_replicas, Some(0), "not ready long enough");
    }

    #[test]
    fn rolling_update_completes_when_all_updated_and_ready() {
        let now = Timestamp::from_second(1_704_067_230).unwrap();
        let pods = vec![
            pod("r2", "Running", true, false),
            pod("r2", "Running", true, false),
        ];
        let s = calculate(&inputs(&pods, true, 0), now);
        assert_eq!(s.current_revision.as_deref(), Some("r2"));
        assert_eq!(s.current_replicas, Some(2));
        let s = calculate(&inputs(&pods, false, 0), now);
        assert_eq!(
            s.current_revision.as_deref(),
            Some("r1"),
            "OnDelete keeps it"
        );
    }
}
