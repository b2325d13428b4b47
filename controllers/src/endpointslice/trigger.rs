//! The `endpoints.kubernetes.io/last-change-trigger-time` annotation, as
//! upstream's trigger-time tracker computes it: the earliest time of the
//! changes a sync is the first to see — a Service's creation, a pod's `Ready`
//! transition — or none when the sync saw no such change.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::jiff::Timestamp;

/// The annotation's key.
pub(crate) const ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";

#[derive(Default)]
struct Seen {
    service: Option<Timestamp>,
    /// Trigger time of each pod (by UID) at the last sync.
    pods: HashMap<String, Option<Timestamp>>,
}

/// Per Service, the trigger times last synced.
#[derive(Default)]
pub(crate) struct Tracker {
    seen: Mutex<HashMap<String, Seen>>,
}

fn pod_trigger(pod: &Pod) -> Option<Timestamp> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

impl Tracker {
    /// The trigger time for a sync of `svc` over `pods`, recording them.
    pub(crate) fn compute(&self, key: &str, svc: &Service, pods: &[&Pod]) -> Option<Timestamp> {
        let mut guard = match self.seen.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let seen = guard.entry(key.to_string()).or_default();
        let mut earliest: Option<Timestamp> = None;
        let mut consider = |t: Option<Timestamp>| {
            if let Some(t) = t {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
        };
        let service_time = svc.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if seen.service != service_time {
            consider(service_time);
            seen.service = service_time;
        }
        let mut pods_now = HashMap::new();
        for pod in pods {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            let t = pod_trigger(pod);
            if seen.pods.get(&uid) != Some(&t) {
                consider(t);
            }
            pods_now.insert(uid, t);
        }
        seen.pods = pods_now;
        earliest
    }

    /// Forgets a deleted Service.
    pub(crate) fn forget(&self, key: &str) {
        let mut guard = match self.seen.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        guard.remove(key);
    }
}

/// The annotation's value for a time.
pub(crate) fn format(t: Timestamp) -> String {
    t.to_string()
}
