//! Expectations: the pods a controller has created or deleted but its pod cache
//! has not yet shown. While any are outstanding the controller does not add or
//! remove pods, so a slow watch never makes it create a pod twice or delete one
//! too many. An expectation is met when the cache shows the created pod (or
//! shows the deleted one gone or terminating), when a watch event reports it,
//! or after a time-to-live, as upstream's five minutes, in case an event was
//! lost across a watch restart.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{ObjectRef, Store};

/// How long unmet expectations hold a controller back at most.
pub(crate) const EXPECTATIONS_TTL: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Default)]
struct Pending {
    creates: HashSet<String>,
    deletes: HashSet<String>,
    since: Option<Instant>,
}

/// What the pod cache says about one pod name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    Absent,
    Present,
    Terminating,
}

impl Seen {
    /// What the pod cache `pods` shows of pod `ns/name`.
    pub(crate) fn in_cache(pods: &Store<Pod>, ns: &str, name: &str) -> Self {
        match pods.get(&ObjectRef::new(name).within(ns)) {
            None => Seen::Absent,
            Some(p) if p.metadata.deletion_timestamp.is_some() => Seen::Terminating,
            Some(_) => Seen::Present,
        }
    }
}

/// Outstanding creations and deletions, keyed by the controller's `ns/name`.
#[derive(Debug)]
pub(crate) struct Expectations {
    pending: Mutex<HashMap<String, Pending>>,
    ttl: Duration,
}

impl Default for Expectations {
    fn default() -> Self {
        Self::new(EXPECTATIONS_TTL)
    }
}

impl Expectations {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Pending>) -> R) -> R {
        let mut guard = match self.pending.lock() {
            Ok(g) => g,
            // A panic elsewhere left the map as it was; it is still usable.
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// Records that `pod` (a name) was created for `key`.
    pub(crate) fn expect_create(&self, key: &str, pod: &str) {
        self.with(|m| {
            let p = m.entry(key.to_string()).or_default();
            p.creates.insert(pod.to_string());
            p.since.get_or_insert_with(Instant::now);
        });
    }

    /// Records that `pod` (a name) was deleted for `key`.
    pub(crate) fn expect_delete(&self, key: &str, pod: &str) {
        self.with(|m| {
            let p = m.entry(key.to_string()).or_default();
            p.deletes.insert(pod.to_string());
            p.since.get_or_insert_with(Instant::now);
        });
    }

    /// A watch event showed `pod` of `key` (`terminating`: deleted, or with a
    /// deletion timestamp).
    pub(crate) fn observe(&self, key: &str, pod: &str, terminating: bool) {
        self.with(|m| {
            if let Some(p) = m.get_mut(key) {
                p.creates.remove(pod);
                if terminating {
                    p.deletes.remove(pod);
                }
                if p.creates.is_empty() && p.deletes.is_empty() {
                    m.remove(key);
                }
            }
        });
    }

    /// Forgets everything about `key` (the controller is gone).
    pub(crate) fn forget(&self, key: &str) {
        self.with(|m| {
            m.remove(key);
        });
    }

    /// Whether `key` may act on its pods: every expectation is met according to
    /// `lookup` (the pod cache) or has outlived the time-to-live.
    pub(crate) fn satisfied(&self, key: &str, lookup: impl Fn(&str) -> Seen) -> bool {
        self.with(|m| {
            let Some(p) = m.get_mut(key) else {
                return true;
            };
            p.creates.retain(|name| lookup(name) == Seen::Absent);
            p.deletes.retain(|name| lookup(name) == Seen::Present);
            let expired = p.since.is_some_and(|s| s.elapsed() >= self.ttl);
            if expired && !(p.creates.is_empty() && p.deletes.is_empty()) {
                tracing::warn!(controller = %key, creates = p.creates.len(), deletes = p.deletes.len(),
                    "expectations expired unobserved");
            }
            if expired || (p.creates.is_empty() && p.deletes.is_empty()) {
                m.remove(key);
                true
            } else {
                false
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn met_by_cache_or_events() {
        let e = Expectations::default();
        assert!(e.satisfied("ns/rs", |_| Seen::Absent));
        e.expect_create("ns/rs", "p1");
        e.expect_create("ns/rs", "p2");
        e.expect_delete("ns/rs", "old");
        // Nothing observed yet: the new pods are absent, the old one present.
        let nothing_seen = |n: &str| {
            if n == "old" {
                Seen::Present
            } else {
                Seen::Absent
            }
        };
        assert!(!e.satisfied("ns/rs", nothing_seen));
        // The cache shows the creations, but the deleted pod is still there.
        assert!(!e.satisfied("ns/rs", |_| Seen::Present));
        // A watch event reports the deletion.
        e.observe("ns/rs", "old", true);
        assert!(e.satisfied("ns/rs", |_| Seen::Absent));
    }

    #[test]
    fn deletion_met_by_terminating_pod_and_expiry() {
        let e = Expectations::default();
        e.expect_delete("k", "p");
        assert!(!e.satisfied("k", |_| Seen::Present));
        assert!(e.satisfied("k", |_| Seen::Terminating));

        let short = Expectations::new(Duration::ZERO);
        short.expect_create("k", "p");
        assert!(
            short.satisfied("k", |_| Seen::Absent),
            "expired expectations release the controller"
        );
        // Other keys are independent; forget drops a key.
        e.expect_create("a", "x");
        assert!(e.satisfied("b", |_| Seen::Absent));
        e.forget("a");
        assert!(e.satisfied("a", |_| Seen::Absent));
    }
}
