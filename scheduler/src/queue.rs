//! The scheduling queue, modelled on upstream's `PriorityQueue`:
//!
//! - an active queue popped by priority (higher first), then by the time the
//!   pod entered the queue;
//! - a backoff queue holding pods that failed recently, each for
//!   1 s × 2^(attempts-1), capped at 10 s;
//! - an unschedulable set of pods no node fit; cluster events (a node added or
//!   changed, an assigned pod deleted) move them back to active (or backoff),
//!   and a pod left there longer than 5 minutes is retried anyway.
//!
//! `QueueState` is the synchronous logic (time passed in, for tests);
//! `SchedulingQueue` wraps it for the async scheduler loop.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::node_info::pod_priority;

/// Timings of the queue (upstream defaults).
#[derive(Debug, Clone, Copy)]
pub struct QueueTimings {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub max_in_unschedulable: Duration,
}

impl Default for QueueTimings {
    fn default() -> Self {
        QueueTimings {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            max_in_unschedulable: Duration::from_secs(5 * 60),
        }
    }
}

/// A pod handed to the scheduling loop.
#[derive(Debug, Clone)]
pub struct QueuedPod {
    pub key: String,
    pub pod: Arc<Pod>,
    /// Scheduling attempts so far, including this one.
    pub attempts: u32,
    /// The queue's move counter when this attempt started (see
    /// `QueueState::add_unschedulable`).
    pub cycle: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    Active,
    Backoff,
    Unschedulable,
    /// Popped and being scheduled.
    InFlight,
}

#[derive(Debug)]
struct Entry {
    pod: Arc<Pod>,
    place: Where,
    attempts: u32,
    /// Bumped each time the pod is (re)inserted, to invalidate stale heap items.
    seq: u64,
    /// When the last attempt failed (backoff start).
    last_failure: Option<Instant>,
    /// When the pod entered the unschedulable set.
    unschedulable_since: Option<Instant>,
}

#[derive(Debug, PartialEq, Eq)]
struct ActiveItem {
    priority: i32,
    seq: u64,
    key: String,
}

impl Ord for ActiveItem {
    fn cmp(&self, other: &Self) -> Ordering {
        // Max-heap: higher priority first, then earlier insertion.
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for ActiveItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The queue's data; all operations are synchronous.
#[derive(Debug, Default)]
pub struct QueueState {
    timings: QueueTimings,
    entries: HashMap<String, Entry>,
    active: BinaryHeap<ActiveItem>,
    backoff: BinaryHeap<Reverse<(Instant, u64, String)>>,
    next_seq: u64,
    /// Incremented on every pop; compared with `move_cycle`.
    cycle: u64,
    /// The cycle at which cluster events last asked to retry pods.
    move_cycle: u64,
    /// Unschedulable pods with required pod affinity: a pod being placed
    /// anywhere may satisfy them (possibly stale keys, checked on use).
    waiting_for_pods: HashSet<String>,
}

fn has_required_pod_affinity(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.pod_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_some_and(|t| !t.is_empty())
}

/// A pod's spec changed in a way that may change the scheduling outcome
/// (anything but status and bookkeeping metadata).
fn scheduling_relevant_change(old: &Pod, new: &Pod) -> bool {
    old.spec != new.spec
        || old.metadata.labels != new.metadata.labels
        || old.metadata.annotations != new.metadata.annotations
}

impl QueueState {
    pub fn new(timings: QueueTimings) -> Self {
        QueueState {
            timings,
            ..Default::default()
        }
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn backoff_duration(&self, attempts: u32) -> Duration {
        let mut d = self.timings.initial_backoff;
        for _ in 1..attempts {
            d = d.saturating_mul(2);
            if d >= self.timings.max_backoff {
                return self.timings.max_backoff;
            }
        }
        d.min(self.timings.max_backoff)
    }

    fn push_active(&mut self, key: &str) {
        let seq = self.seq();
        if let Some(e) = self.entries.get_mut(key) {
            e.place = Where::Active;
            e.seq = seq;
            e.unschedulable_since = None;
            self.active.push(ActiveItem {
                priority: pod_priority(&e.pod),
                seq,
                key: key.to_string(),
            });
        }
    }

    fn push_backoff(&mut self, key: &str, until: Instant) {
        let seq = self.seq();
        if let Some(e) = self.entries.get_mut(key) {
            e.place = Where::Backoff;
            e.seq = seq;
            e.unschedulable_since = None;
            self.backoff.push(Reverse((until, seq, key.to_string())));
        }
    }

    /// Where a pod leaving the unschedulable set goes: backoff if its
    /// backoff has not elapsed yet, else active.
    fn requeue(&mut self, key: &str, now: Instant) {
        let until = self.entries.get(key).and_then(|e| {
            let until = e.last_failure? + self.backoff_duration(e.attempts);
            (until > now).then_some(until)
        });
        match until {
            Some(until) => self.push_backoff(key, until),
            None => self.push_active(key),
        }
    }

    /// A new or updated pending pod from the informer.
    pub fn add_or_update(&mut self, key: &str, pod: Arc<Pod>, now: Instant) {
        match self.entries.get_mut(key) {
            None => {
                self.entries.insert(
                    key.to_string(),
                    Entry {
                        pod,
                        place: Where::Active,
                        attempts: 0,
                        seq: 0,
                        last_failure: None,
                        unschedulable_since: None,
                    },
                );
                self.push_active(key);
            }
            Some(e) => {
                let relevant = scheduling_relevant_change(&e.pod, &pod);
                e.pod = pod;
                if e.place == Where::Unschedulable && relevant {
                    self.requeue(key, now);
                }
            }
        }
    }

    pub fn delete(&mut self, key: &str) {
        // Heap items of a deleted pod are skipped lazily.
        self.entries.remove(key);
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Moves pods whose backoff elapsed to active, and pods unschedulable for
    /// too long back to active/backoff.
    pub fn flush(&mut self, now: Instant) {
        self.flush_backoff(now);
        self.flush_unschedulable_leftover(now);
    }

    /// Moves pods whose backoff elapsed to active (cheap: heap peeks).
    pub fn flush_backoff(&mut self, now: Instant) {
        while let Some(Reverse((until, seq, key))) = self.backoff.peek().cloned() {
            if until > now {
                break;
            }
            self.backoff.pop();
            let live = self
                .entries
                .get(&key)
                .is_some_and(|e| e.seq == seq && e.place == Where::Backoff);
            if live {
                self.push_active(&key);
            }
        }
    }

    /// Retries pods unschedulable for longer than `max_in_unschedulable`
    /// (a scan of all entries: run it periodically, not per event).
    pub fn flush_unschedulable_leftover(&mut self, now: Instant) {
        let stale: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                e.place == Where::Unschedulable
                    && e.unschedulable_since
                        .is_some_and(|t| now.duration_since(t) >= self.timings.max_in_unschedulable)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            self.requeue(&key, now);
        }
    }

    /// A cluster event may have made unschedulable pods schedulable.
    pub fn move_all_to_active_or_backoff(&mut self, now: Instant) {
        let keys: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.place == Where::Unschedulable)
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.requeue(&key, now);
        }
        self.move_cycle = self.cycle;
    }

    /// The next pod to schedule, if any is active.
    pub fn pop(&mut self) -> Option<QueuedPod> {
        while let Some(item) = self.active.pop() {
            let Some(e) = self.entries.get_mut(&item.key) else {
                continue;
            };
            if e.seq != item.seq || e.place != Where::Active {
                continue;
            }
            e.place = Where::InFlight;
            e.attempts += 1;
            self.cycle += 1;
            return Some(QueuedPod {
                key: item.key,
                pod: e.pod.clone(),
                attempts: e.attempts,
                cycle: self.cycle,
            });
        }
        None
    }

    /// The attempt found no node. If a cluster event arrived while it ran,
    /// the pod retries after backoff; otherwise it waits for one.
    pub fn add_unschedulable(&mut self, qp: &QueuedPod, now: Instant) {
        let Some(e) = self.entries.get_mut(&qp.key) else {
            return;
        };
        e.last_failure = Some(now);
        if self.move_cycle >= qp.cycle {
            let until = now + self.backoff_duration(qp.attempts);
            self.push_backoff(&qp.key, until);
        } else {
            e.place = Where::Unschedulable;
            e.unschedulable_since = Some(now);
            if has_required_pod_affinity(&e.pod) {
                self.waiting_for_pods.insert(qp.key.clone());
            }
        }
    }

    /// A pod was placed on a node: retry the unschedulable pods whose
    /// required pod affinity it may satisfy (upstream's AssignedPod/Add
    /// event for InterPodAffinity), leaving the rest parked.
    pub fn move_pod_affinity_waiters(&mut self, now: Instant) {
        if self.waiting_for_pods.is_empty() {
            return;
        }
        for key in std::mem::take(&mut self.waiting_for_pods) {
            if self
                .entries
                .get(&key)
                .is_some_and(|e| e.place == Where::Unschedulable)
            {
                self.requeue(&key, now);
            }
        }
    }

    /// The attempt failed for another reason (e.g. binding): retry after
    /// backoff. The pod may have left the queue when it was assumed.
    pub fn add_backoff(&mut self, key: &str, pod: Arc<Pod>, attempts: u32, now: Instant) {
        let e = self.entries.entry(key.to_string()).or_insert(Entry {
            pod,
            place: Where::InFlight,
            attempts,
            seq: 0,
            last_failure: None,
            unschedulable_since: None,
        });
        e.attempts = e.attempts.max(attempts).max(1);
        e.last_failure = Some(now);
        let attempts = e.attempts;
        let until = now + self.backoff_duration(attempts);
        self.push_backoff(key, until);
    }

    /// The pod was assumed onto a node: it leaves the queue, keeping its
    /// attempt count in case binding fails and it comes back.
    pub fn done(&mut self, key: &str) -> Option<u32> {
        self.entries.remove(key).map(|e| e.attempts)
    }

    /// The earliest backoff expiry, so the loop can wake up for it.
    pub fn next_backoff(&self) -> Option<Instant> {
        self.backoff.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Keys of every pod the queue holds, wherever it is.
    pub fn keys(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }
}

/// The queue shared by the informers and the scheduling loop.
pub struct SchedulingQueue {
    state: Mutex<QueueState>,
    wake: Notify,
}

impl SchedulingQueue {
    pub fn new(timings: QueueTimings) -> Self {
        SchedulingQueue {
            state: Mutex::new(QueueState::new(timings)),
            wake: Notify::new(),
        }
    }

    /// Runs `f` on the state and wakes the loop (it may have new work).
    pub fn with<R>(&self, f: impl FnOnce(&mut QueueState) -> R) -> R {
        let r = f(&mut self.state.lock());
        self.wake.notify_one();
        r
    }

    /// Waits for the next active pod, promoting pods whose backoff elapsed.
    pub async fn pop(&self) -> QueuedPod {
        loop {
            let notified = self.wake.notified();
            let next_backoff = {
                let mut st = self.state.lock();
                st.flush_backoff(Instant::now());
                if let Some(qp) = st.pop() {
                    return qp;
                }
                st.next_backoff()
            };
            match next_backoff {
                Some(t) => {
                    let _ = tokio::time::timeout_at(t.into(), notified).await;
                }
                None => notified.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, priority: i32) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "d"},
                "spec": {"priority": priority, "containers": [{"name": "c"}]}
            }))
            .expect("pod"),
        )
    }

    fn timings() -> QueueTimings {
        QueueTimings::default()
    }

    #[test]
    fn pops_by_priority_then_insertion() {
        let now = Instant::now();
        let mut q = QueueState::new(timings());
        for (name, prio) in [("a", 0), ("b", 10), ("c", 0), ("d", 10), ("e", -5)] {
            q.add_or_update(name, pod(name, prio), now);
        }
        let order: Vec<String> = std::iter::from_fn(|| q.pop()).map(|p| p.key).collect();
        assert_eq!(order, vec!["b", "d", "a", "c", "e"]);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let q = QueueState::new(timings());
        let secs: Vec<u64> = (1..=6).map(|a| q.backoff_duration(a).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn unschedulable_waits_for_event_then_backs_off() {
        let t0 = Instant::now();
        let mut q = QueueState::new(timings());
        q.add_or_update("a", pod("a", 0), t0);
        let qp = q.pop().expect("a");
        q.add_unschedulable(&qp, t0);
        q.flush(t0 + Duration::from_secs(60));
        assert!(q.pop().is_none(), "stays unschedulable without events");

        // A node event 0.5 s after the failure: still inside the 1 s backoff.
        q.move_all_to_active_or_backoff(t0 + Duration::from_millis(500));
        assert!(q.pop().is_none());
        assert_eq!(q.next_backoff(), Some(t0 + Duration::from_secs(1)));
        q.flush(t0 + Duration::from_secs(1));
        let qp = q.pop().expect("after backoff");
        assert_eq!(qp.attempts, 2);

        // Second failure, event long after the backoff: straight to active.
        q.add_unschedulable(&qp, t0 + Duration::from_secs(2));
        q.move_all_to_active_or_backoff(t0 + Duration::from_secs(30));
        assert_eq!(q.pop().map(|p| p.attempts), Some(3));
    }

    #[test]
    fn event_during_attempt_sends_pod_to_backoff() {
        let t0 = Instant::now();
        let mut q = QueueState::new(timings());
        q.add_or_update("a", pod("a", 0), t0);
        let qp = q.pop().expect("a");
        q.move_all_to_active_or_backoff(t0);
        q.add_unschedulable(&qp, t0);
        assert_eq!(q.next_backoff(), Some(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn leftover_unschedulable_pods_are_retried() {
        let t0 = Instant::now();
        let mut q = QueueState::new(timings());
        q.add_or_update("a", pod("a", 0), t0);
        let qp = q.pop().expect("a");
        q.add_unschedulable(&qp, t0);
        q.flush(t0 + Duration::from_secs(299));
        assert!(q.pop().is_none());
        q.flush(t0 + Duration::from_secs(300));
        assert!(q.pop().is_some());
    }

    #[test]
    fn spec_update_requeues_and_delete_removes() {
        let t0 = Instant::now();
        let mut q = QueueState::new(timings());
        q.add_or_update("a", pod("a", 0), t0);
        let qp = q.pop().expect("a");
        q.add_unschedulable(&qp, t0);
        // Same object again (e.g. a status update): no retry.
        q.add_or_update("a", pod("a", 0), t0 + Duration::from_secs(5));
        assert!(q.pop().is_none());
        q.add_or_update("a", pod("a", 7), t0 + Duration::from_secs(5));
        assert_eq!(q.pop().map(|p| p.key), Some("a".to_string()));

        q.add_or_update("b", pod("b", 0), t0);
        q.delete("b");
        assert!(q.pop().is_none());
        assert!(!q.contains("b"));
    }

    #[test]
    fn placed_pods_wake_only_affinity_waiters() {
        let t0 = Instant::now();
        let mut q = QueueState::new(timings());
        let mut with_affinity = (*pod("aff", 0)).clone();
        with_affinity.spec.as_mut().expect("spec").affinity = Some(
            serde_json::from_value(
                json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                [{"topologyKey": "zone", "labelSelector": {"matchLabels": {"app": "db"}}}]}}),
            )
            .expect("affinity"),
        );
        q.add_or_update("aff", Arc::new(with_affinity), t0);
        q.add_or_update("plain", pod("plain", 0), t0);
        for _ in 0..2 {
            let qp = q.pop().expect("pod");
            q.add_unschedulable(&qp, t0);
        }
        q.move_pod_affinity_waiters(t0 + Duration::from_secs(20));
        assert_eq!(q.pop().map(|p| p.key), Some("aff".to_string()));
        assert!(q.pop().is_none(), "the plain pod stays parked");
    }

    #[test]
    fn bind_failure_backs_off_with_attempts() {
        let t0 = Instant::now();
        let mut q = QueueState::new(timings());
        q.add_or_update("a", pod("a", 0), t0);
        let qp = q.pop().expect("a");
        assert_eq!(q.done("a"), Some(1));
        q.add_backoff("a", qp.pod.clone(), 1, t0);
        assert!(q.pop().is_none());
        q.flush(t0 + Duration::from_secs(1));
        assert!(q.pop().is_some());
    }
}
