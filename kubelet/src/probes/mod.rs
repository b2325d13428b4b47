//! Liveness, readiness and startup probes, as upstream's prober manager runs
//! them: one task per running container instance and probe kind, which
//! waits `initialDelaySeconds` from the container's start, then runs the
//! handler every `periodSeconds` (each run bounded by `timeoutSeconds`) and
//! flips its result after `successThreshold` successes or
//! `failureThreshold` failures in a row.
//!
//! ```text
//!   container running ──► startup task (if any) ── success ──► task ends
//!                              │ failure×threshold            │
//!                              ▼                              ▼
//!                       kill & restart             liveness / readiness tasks
//!                                                  liveness failure×threshold
//!                                                  ──► result Failure, task ends
//!                                                      (the worker kills; the
//!                                                      next instance gets new tasks)
//! ```
//!
//! Results live in a map the tasks write and the pod worker reads on each
//! sync: readiness and startup feed the container status (`ready`,
//! `started`), a liveness or startup failure makes the worker kill the
//! container. Results belong to one container ID: a restarted container
//! starts again with readiness False, liveness Success and startup unknown.

mod handlers;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, ObjectReference, Pod, Probe};
use k8s_openapi::jiff::Timestamp;
use tokio::task::JoinHandle;

pub(crate) use handlers::{Outcome, Target, exec, http_get};

use crate::cri::Runtime;
use crate::events::{Events, container_ref};
use crate::pods::status::{Observed, Probed, is_running};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Liveness,
    Readiness,
    Startup,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Startup, Kind::Liveness, Kind::Readiness];

    /// Upstream's word for the probe in events and messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
            Kind::Startup => "Startup",
        }
    }

    pub(crate) fn of(self, c: &Container) -> Option<&Probe> {
        match self {
            Kind::Liveness => c.liveness_probe.as_ref(),
            Kind::Readiness => c.readiness_probe.as_ref(),
            Kind::Startup => c.startup_probe.as_ref(),
        }
    }
}

/// Per (container name, kind): the container instance it is about and its
/// current result.
type Results = Arc<Mutex<HashMap<(String, Kind), (String, bool)>>>;

struct Task {
    container_id: String,
    handle: JoinHandle<()>,
}

/// The probes of one pod.
pub(crate) struct Prober {
    events: Events,
    tasks: HashMap<(String, Kind), Task>,
    results: Results,
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop_all();
    }
}

impl Prober {
    pub(crate) fn new(events: Events) -> Self {
        Self {
            events,
            tasks: HashMap::new(),
            results: Arc::default(),
        }
    }

    fn result(&self, name: &str, kind: Kind, container_id: &str) -> Option<bool> {
        let results = self.results.lock().unwrap_or_else(|p| p.into_inner());
        results
            .get(&(name.to_string(), kind))
            .filter(|(id, _)| id == container_id)
            .map(|(_, ok)| *ok)
    }

    /// Starts the tasks of newly running containers (liveness and readiness
    /// only once startup succeeded) and stops those of containers that no
    /// longer run, forgetting their results.
    pub(crate) fn sync(&mut self, pod: &Pod, observed: &Observed, pod_ip: &str, rt: &Runtime) {
        let spec = pod.spec.as_ref();
        let mut wanted = HashSet::new();
        for c in spec.map(|s| s.containers.as_slice()).unwrap_or(&[]) {
            let Some(latest) = observed.latest(&c.name).filter(|l| is_running(l)) else {
                continue;
            };
            for kind in Kind::ALL {
                let Some(probe) = kind.of(c) else { continue };
                let gated = kind != Kind::Startup
                    && c.startup_probe.is_some()
                    && self.result(&c.name, Kind::Startup, &latest.id) != Some(true);
                if gated {
                    continue;
                }
                let key = (c.name.clone(), kind);
                wanted.insert(key.clone());
                if self
                    .tasks
                    .get(&key)
                    .is_some_and(|t| t.container_id == latest.id)
                {
                    continue;
                }
                let target = Target {
                    runtime: rt.clone(),
                    container_id: latest.id.clone(),
                    pod_ip: pod_ip.into(),
                    container: c.clone(),
                };
                let task = ProbeTask {
                    kind,
                    probe: probe.clone(),
                    target,
                    started_at: latest.started_at,
                    results: self.results.clone(),
                    events: self.events.clone(),
                    regarding: container_ref(pod, &c.name),
                };
                if let Some(old) = self.tasks.remove(&key) {
                    old.handle.abort();
                }
                // The previous instance's result says nothing of this one.
                self.results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
                self.tasks.insert(
                    key,
                    Task {
                        container_id: latest.id.clone(),
                        handle: tokio::spawn(task.run()),
                    },
                );
            }
        }
        let gone: Vec<(String, Kind)> = self
            .tasks
            .keys()
            .filter(|k| !wanted.contains(*k))
            .cloned()
            .collect();
        let mut results = self.results.lock().unwrap_or_else(|p| p.into_inner());
        for key in gone {
            if let Some(t) = self.tasks.remove(&key) {
                t.handle.abort();
            }
            results.remove(&key);
        }
    }

    /// What the status needs: per container name, whether its running
    /// instance started and is ready by its probes.
    pub(crate) fn statuses(&self) -> HashMap<String, Probed> {
        let results = self.results.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: HashMap<String, Probed> = HashMap::new();
        for ((name, kind), (id, ok)) in results.iter() {
            let entry = out.entry(name.clone()).or_insert_with(|| Probed {
                container_id: id.clone(),
                ..Default::default()
            });
            if &entry.container_id != id {
                continue;
            }
            match kind {
                Kind::Startup => entry.started = *ok,
                Kind::Readiness => entry.ready = *ok,
                Kind::Liveness => {}
            }
        }
        out
    }

    /// Containers whose liveness or startup probe failed: (name, container
    /// ID, kind). The worker kills them.
    pub(crate) fn failed(&self) -> Vec<(String, String, Kind)> {
        let results = self.results.lock().unwrap_or_else(|p| p.into_inner());
        results
            .iter()
            .filter(|((_, kind), (_, ok))| *kind != Kind::Readiness && !ok)
            .map(|((name, kind), (id, _))| (name.clone(), id.clone(), *kind))
            .collect()
    }

    pub(crate) fn stop_all(&mut self) {
        for (_, t) in self.tasks.drain() {
            t.handle.abort();
        }
        self.results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// Probe timing with upstream's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    pub(crate) initial_delay: Duration,
    pub(crate) period: Duration,
    pub(crate) timeout: Duration,
    pub(crate) success_threshold: u32,
    pub(crate) failure_threshold: u32,
}

impl Timing {
    pub(crate) fn of(p: &Probe) -> Self {
        let secs = |v: Option<i32>, default: i32, min: i32| {
            Duration::from_secs(u64::try_from(v.unwrap_or(default).max(min)).unwrap_or(0))
        };
        let count =
            |v: Option<i32>, default: i32| u32::try_from(v.unwrap_or(default)).unwrap_or(1).max(1);
        Self {
            initial_delay: secs(p.initial_delay_seconds, 0, 0),
            period: secs(p.period_seconds, 10, 1),
            timeout: secs(p.timeout_seconds, 1, 1),
            success_threshold: count(p.success_threshold, 1),
            failure_threshold: count(p.failure_threshold, 3),
        }
    }
}

/// Counts consecutive outcomes; yields a new result once a run reaches its
/// threshold.
#[derive(Debug, Default)]
struct Streak {
    last: Option<bool>,
    run: u32,
}

impl Streak {
    fn record(&mut self, ok: bool, timing: &Timing) -> Option<bool> {
        if self.last == Some(ok) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(ok);
            self.run = 1;
        }
        let threshold = if ok {
            timing.success_threshold
        } else {
            timing.failure_threshold
        };
        (self.run >= threshold).then_some(ok)
    }
}

struct ProbeTask {
    kind: Kind,
    probe: Probe,
    target: Target,
    /// The container's start (CRI nanoseconds).
    started_at: i64,
    results: Results,
    events: Events,
    regarding: ObjectReference,
}

impl ProbeTask {
    fn set(&self, ok: bool) {
        let key = (self.target.container.name.clone(), self.kind);
        self.results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (self.target.container_id.clone(), ok));
    }

    async fn run(self) {
        let timing = Timing::of(&self.probe);
        // Until it has passed, a readiness probe holds the container unready;
        // liveness counts as passing until it fails.
        match self.kind {
            Kind::Readiness => self.set(false),
            Kind::Liveness => self.set(true),
            Kind::Startup => {}
        }
        let now_ns = i128::from(Timestamp::now().as_nanosecond() as i64);
        let due = i128::from(self.started_at) + timing.initial_delay.as_nanos() as i128;
        if due > now_ns {
            let wait = u64::try_from(due - now_ns).unwrap_or(0);
            tokio::time::sleep(Duration::from_nanos(wait)).await;
        }
        let mut streak = Streak::default();
        loop {
            let ok = match handlers::run(&self.probe, &self.target, timing.timeout).await {
                Outcome::Success => Some(true),
                Outcome::Failure(output) => {
                    self.events.warning(
                        self.regarding.clone(),
                        "Unhealthy",
                        format!("{} probe failed: {output}", self.kind.name()),
                    );
                    Some(false)
                }
                Outcome::Unknown(e) => {
                    tracing::debug!(container = %self.target.container.name, kind = self.kind.name(), error = %e, "probe could not run");
                    None
                }
            };
            if let Some(result) = ok.and_then(|ok| streak.record(ok, &timing)) {
                self.set(result);
                match (self.kind, result) {
                    // Started for good: liveness and readiness take over.
                    (Kind::Startup, true) => return,
                    // On hold until the worker replaces the container.
                    (Kind::Startup | Kind::Liveness, false) => return,
                    _ => {}
                }
            }
            tokio::time::sleep(timing.period).await;
        }
    }
}

/// The grace period for a container killed by its failed probe: the
/// probe's own `terminationGracePeriodSeconds`, else the pod's.
pub(crate) fn kill_grace(c: Option<&Container>, kind: Kind, pod_grace: i64) -> i64 {
    c.and_then(|c| kind.of(c))
        .and_then(|p| p.termination_grace_period_seconds)
        .unwrap_or(pod_grace)
        .max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_upstream() {
        let t = Timing::of(&Probe::default());
        assert_eq!(
            t,
            Timing {
                initial_delay: Duration::ZERO,
                period: Duration::from_secs(10),
                timeout: Duration::from_secs(1),
                success_threshold: 1,
                failure_threshold: 3,
            }
        );
    }

    #[test]
    fn results_flip_at_their_thresholds() {
        let timing = Timing {
            success_threshold: 2,
            failure_threshold: 3,
            ..Timing::of(&Probe::default())
        };
        let mut s = Streak::default();
        assert_eq!(s.record(true, &timing), None);
        assert_eq!(s.record(true, &timing), Some(true));
        assert_eq!(s.record(false, &timing), None);
        assert_eq!(s.record(false, &timing), None);
        assert_eq!(s.record(true, &timing), None, "a success breaks the run");
        for _ in 0..2 {
            s.record(false, &timing);
        }
        assert_eq!(s.record(false, &timing), Some(false));
        assert_eq!(s.record(false, &timing), Some(false), "stays failed");
    }

    #[test]
    fn probe_grace_overrides_the_pod() {
        let c = Container {
            liveness_probe: Some(Probe {
                termination_grace_period_seconds: Some(3),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(kill_grace(Some(&c), Kind::Liveness, 30), 3);
        assert_eq!(kill_grace(Some(&c), Kind::Startup, 30), 30);
        assert_eq!(kill_grace(None, Kind::Liveness, 30), 30);
    }
}
