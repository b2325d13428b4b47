//! Pod status as upstream's kubelet reports it, computed from the pod and
//! what the runtime holds ([`Observed`]); free of I/O so it is table-tested.
//!
//! Container states map from the CRI as: no container yet → waiting
//! (`ContainerCreating`, `PodInitializing`, or the pull/back-off reason the
//! worker recorded); CRI running → running; CRI exited → terminated (or,
//! while a restart backs off, waiting `CrashLoopBackOff` with the exit as
//! `lastState`). A running container is `started` once its startup probe
//! passed and `ready` once started and its readiness probe passes (the
//! [`Probed`] results the worker's prober hands in); without such probes it
//! is both as soon as it runs. Terminated states carry the termination
//! message the worker read ([`crate::lifecycle`]).
//!
//! Ephemeral containers get statuses of the same shape
//! (`ephemeralContainerStatuses`), never ready and left out of the phase
//! and the pod's readiness.
//!
//! The condition helpers ([`condition`], [`merge_conditions`],
//! [`gated_ready`]) are shared with the fake nodes' statuses.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::cri::v1;

/// What the runtime holds for one pod.
#[derive(Debug, Clone, Default)]
pub(crate) struct Observed {
    /// The pod's ready sandbox, if any.
    pub(crate) sandbox: Option<Sandbox>,
    /// Per container name, its containers newest first.
    pub(crate) containers: HashMap<String, Vec<v1::ContainerStatus>>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Sandbox {
    pub(crate) id: String,
    pub(crate) ips: Vec<String>,
}

impl Observed {
    pub(crate) fn latest(&self, name: &str) -> Option<&v1::ContainerStatus> {
        self.containers.get(name).and_then(|h| h.first())
    }
}

pub(crate) fn is_running(c: &v1::ContainerStatus) -> bool {
    c.state == v1::ContainerState::ContainerRunning as i32
}

pub(crate) fn is_exited(c: &v1::ContainerStatus) -> bool {
    c.state == v1::ContainerState::ContainerExited as i32
}

/// What a container's probes say about its running instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Probed {
    /// The CRI ID of the instance these results are about.
    pub(crate) container_id: String,
    /// Its startup probe passed.
    pub(crate) started: bool,
    /// Its readiness probe passes.
    pub(crate) ready: bool,
}

/// The inputs the status is computed from, besides the pod and observation.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub(crate) host_ip: &'a str,
    /// Scheme of container IDs (`containerd`).
    pub(crate) runtime_name: &'a str,
    /// Waiting reasons and messages the worker recorded per container
    /// (ErrImagePull, ImagePullBackOff, CrashLoopBackOff, ...).
    pub(crate) waiting: &'a HashMap<String, (String, String)>,
    /// The pod is being torn down: containers that will not run again make
    /// it terminal whatever its restart policy.
    pub(crate) terminating: bool,
    /// Probe results per container name (containers without probes need
    /// no entry).
    pub(crate) probed: &'a HashMap<String, Probed>,
    /// Termination messages per CRI container ID, read by the worker.
    pub(crate) messages: &'a HashMap<String, String>,
    /// The kubelet failed the pod (reason, message), e.g. `DeadlineExceeded`.
    pub(crate) failure: Option<(&'a str, &'a str)>,
    pub(crate) now: Timestamp,
}

/// The status to write: the pod's current one with every kubelet-owned field
/// recomputed. Conditions others own are kept; ours keep their
/// `lastTransitionTime` while their status is unchanged.
pub(crate) fn compute(pod: &Pod, observed: &Observed, cx: &Context<'_>) -> PodStatus {
    let now = seconds(cx.now);
    let mut status = pod.status.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let host_network = spec.host_network.unwrap_or(false);
    let init_specs = spec.init_containers.as_deref().unwrap_or(&[]);
    let init_done = |name: &str| {
        observed
            .latest(name)
            .is_some_and(|c| is_exited(c) && c.exit_code == 0)
    };
    let all_init_done = init_specs.iter().all(|c| init_done(&c.name));

    let init_statuses: Vec<ContainerStatus> = init_specs
        .iter()
        .map(|c| init_container_status(c, observed, cx))
        .collect();
    let default_reason = if all_init_done {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let statuses: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| container_status(c, observed, cx, default_reason))
        .collect();

    let restart_policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let mut phase = phase(restart_policy, &init_statuses, &statuses, cx.terminating);
    if let Some((reason, message)) = cx.failure {
        phase = "Failed";
        status.reason = Some(reason.into());
        status.message = Some(message.into());
    }
    let terminal = matches!(phase, "Succeeded" | "Failed");

    let mut ours = Vec::new();
    let sandbox_ready = observed.sandbox.is_some() && !terminal;
    ours.push(condition(
        "PodReadyToStartContainers",
        sandbox_ready,
        None,
        None,
        now,
    ));
    let unfinished: Vec<&str> = init_specs
        .iter()
        .filter(|c| !init_done(&c.name))
        .map(|c| c.name.as_str())
        .collect();
    // A terminal pod stays Initialized once it was (upstream keeps it True).
    let initialized = unfinished.is_empty() || (terminal && was_true(pod, "Initialized"));
    ours.push(if initialized {
        condition("Initialized", true, None, None, now)
    } else {
        condition(
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: [{}]",
                unfinished.join(" ")
            )),
            now,
        )
    });
    let unready: Vec<&str> = statuses
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let containers_ready = if terminal {
        condition("ContainersReady", false, Some("PodCompleted"), None, now)
    } else if unready.is_empty() {
        condition("ContainersReady", true, None, None, now)
    } else {
        condition(
            "ContainersReady",
            false,
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
            now,
        )
    };
    let existing = status.conditions.take().unwrap_or_default();
    let mut ready = containers_ready.clone();
    ready.type_ = "Ready".into();
    if containers_ready.status == "True" {
        ready = gated_ready(pod, &existing, now);
    }
    ours.push(containers_ready);
    ours.push(ready);
    status.conditions = Some(merge_conditions(existing, ours));

    status.phase = Some(phase.into());
    status.observed_generation = pod.metadata.generation;
    status.host_ip = Some(cx.host_ip.into());
    status.host_ips = Some(vec![HostIP {
        ip: cx.host_ip.into(),
    }]);
    let pod_ips: Vec<String> = if host_network {
        vec![cx.host_ip.to_string()]
    } else {
        observed
            .sandbox
            .as_ref()
            .map(|s| s.ips.clone())
            .unwrap_or_default()
    };
    // IPs stay reported after the sandbox is gone, as upstream's do.
    if !pod_ips.is_empty() {
        status.pod_ip = pod_ips.first().cloned();
        status.pod_ips = Some(pod_ips.into_iter().map(|ip| PodIP { ip }).collect());
    }
    status.start_time.get_or_insert(Time(now));
    if status.qos_class.is_none() {
        status.qos_class = Some(qos_class(&spec.containers, init_specs).into());
    }
    status.init_container_statuses = (!init_statuses.is_empty()).then_some(init_statuses);
    status.container_statuses = Some(statuses);
    let ephemeral = ephemeral_statuses(pod, observed, cx, default_reason);
    status.ephemeral_container_statuses = (!ephemeral.is_empty()).then_some(ephemeral);
    status
}

/// The ephemeral containers' statuses, by name as upstream sorts them:
/// states as the regular containers', but never ready, without `started`,
/// and no part of the pod's phase or conditions.
fn ephemeral_statuses(
    pod: &Pod,
    observed: &Observed,
    cx: &Context<'_>,
    default_reason: &str,
) -> Vec<ContainerStatus> {
    let mut statuses: Vec<ContainerStatus> = super::ephemeral::all(pod)
        .iter()
        .map(|e| ContainerStatus {
            ready: false,
            started: None,
            ..container_status(&e.container, observed, cx, default_reason)
        })
        .collect();
    statuses.sort_by(|a, b| a.name.cmp(&b.name));
    statuses
}

fn was_true(pod: &Pod, ty: &str) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == ty && c.status == "True"))
}

/// An init container's status: a sidecar (restartable) one is ready as a
/// regular container is; any other is ready once it has completed, as
/// upstream reports them.
fn init_container_status(c: &Container, observed: &Observed, cx: &Context<'_>) -> ContainerStatus {
    let mut status = container_status(c, observed, cx, "PodInitializing");
    if c.restart_policy.as_deref() != Some("Always") {
        status.ready = status
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .is_some_and(|t| t.exit_code == 0);
    }
    status
}

fn container_status(
    c: &Container,
    observed: &Observed,
    cx: &Context<'_>,
    default_reason: &str,
) -> ContainerStatus {
    let history = observed
        .containers
        .get(&c.name)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let image = c.image.clone().unwrap_or_default();
    let override_waiting = cx.waiting.get(&c.name);
    let Some(latest) = history.first() else {
        let (reason, message) = override_waiting
            .cloned()
            .unwrap_or_else(|| (default_reason.to_string(), String::new()));
        return ContainerStatus {
            name: c.name.clone(),
            image,
            image_id: String::new(),
            ready: false,
            started: Some(false),
            restart_count: 0,
            state: Some(waiting(reason, message)),
            ..Default::default()
        };
    };
    let container_id = format!("{}://{}", cx.runtime_name, latest.id);
    let restart_count = latest
        .metadata
        .as_ref()
        .map(|m| i32::try_from(m.attempt).unwrap_or(i32::MAX))
        .unwrap_or(0);
    let probed = cx
        .probed
        .get(&c.name)
        .filter(|p| p.container_id == latest.id);
    let started =
        is_running(latest) && (c.startup_probe.is_none() || probed.is_some_and(|p| p.started));
    let probes_ready = started && (c.readiness_probe.is_none() || probed.is_some_and(|p| p.ready));
    let (state, last_state, ready) = if is_running(latest) {
        let running = ContainerState {
            running: Some(ContainerStateRunning {
                started_at: time_of(latest.started_at),
            }),
            ..Default::default()
        };
        (
            running,
            history.get(1).map(|p| terminated(p, cx)),
            probes_ready,
        )
    } else if is_exited(latest) {
        match override_waiting {
            Some((reason, message)) => (
                waiting(reason.clone(), message.clone()),
                Some(terminated(latest, cx)),
                false,
            ),
            None => (
                terminated(latest, cx),
                history.get(1).map(|p| terminated(p, cx)),
                false,
            ),
        }
    } else {
        let (reason, message) = override_waiting
            .cloned()
            .unwrap_or_else(|| ("ContainerCreating".into(), String::new()));
        (
            waiting(reason, message),
            history.get(1).map(|p| terminated(p, cx)),
            false,
        )
    };
    ContainerStatus {
        name: c.name.clone(),
        image,
        image_id: latest.image_ref.clone(),
        container_id: Some(container_id),
        ready: ready && !cx.terminating,
        started: Some(started),
        restart_count,
        state: Some(state),
        last_state: last_state.or_else(|| Some(ContainerState::default())),
        ..Default::default()
    }
}

fn waiting(reason: String, message: String) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason),
            message: (!message.is_empty()).then_some(message),
        }),
        ..Default::default()
    }
}

fn terminated(c: &v1::ContainerStatus, cx: &Context<'_>) -> ContainerState {
    let reason = if !c.reason.is_empty() {
        c.reason.clone()
    } else if c.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            container_id: Some(format!("{}://{}", cx.runtime_name, c.id)),
            exit_code: c.exit_code,
            reason: Some(reason),
            message: termination_message(c, cx),
            started_at: time_of(c.started_at),
            finished_at: time_of(c.finished_at),
            signal: None,
        }),
        ..Default::default()
    }
}

/// The runtime's message and the one the container left (file or log),
/// joined as upstream does.
fn termination_message(c: &v1::ContainerStatus, cx: &Context<'_>) -> Option<String> {
    let left = cx.messages.get(&c.id).map(String::as_str).unwrap_or("");
    let message = match (c.message.as_str(), left) {
        ("", m) | (m, "") => m.to_string(),
        (runtime, container) => format!("{runtime}: {container}"),
    };
    (!message.is_empty()).then_some(message)
}

/// A CRI timestamp (ns since the epoch; 0 = unset) at the API's precision.
fn time_of(nanos: i64) -> Option<Time> {
    if nanos <= 0 {
        return None;
    }
    Timestamp::from_second(nanos / 1_000_000_000).ok().map(Time)
}

fn seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// Upstream's phase rules: Pending until every init container succeeded (or
/// Failed when one failed and will not be restarted); then Pending while a
/// container has never run, Running while one runs or will be restarted, and
/// Succeeded/Failed once all have stopped for good.
pub(crate) fn phase(
    restart_policy: &str,
    init: &[ContainerStatus],
    containers: &[ContainerStatus],
    terminating: bool,
) -> &'static str {
    let exit_code = |s: &ContainerStatus| -> Option<i32> {
        let state = s.state.as_ref()?;
        if let Some(t) = &state.terminated {
            return Some(t.exit_code);
        }
        // Waiting to be restarted: its last run counts.
        state.waiting.as_ref()?;
        s.last_state
            .as_ref()?
            .terminated
            .as_ref()
            .map(|t| t.exit_code)
    };
    let never = restart_policy == "Never";
    for s in init {
        match exit_code(s) {
            Some(0) => {}
            Some(_) if never || terminating => return "Failed",
            _ if terminating => return "Failed",
            _ => return "Pending",
        }
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in containers {
        let is_running = s.state.as_ref().is_some_and(|st| st.running.is_some());
        match (is_running, exit_code(s)) {
            (true, _) => running += 1,
            (false, Some(code)) => {
                stopped += 1;
                if code == 0 {
                    succeeded += 1;
                }
            }
            (false, None) => waiting += 1,
        }
    }
    let total = containers.len();
    if terminating {
        return if running == 0 && waiting == 0 && succeeded == total && total > 0 {
            "Succeeded"
        } else if running == 0 {
            "Failed"
        } else {
            "Running"
        };
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped == total && total > 0 {
        return match restart_policy {
            "Always" => "Running",
            "OnFailure" if succeeded < total => "Running",
            _ if succeeded == total => "Succeeded",
            _ => "Failed",
        };
    }
    "Pending"
}

/// Ready follows ContainersReady and every readiness gate.
pub(crate) fn gated_ready(pod: &Pod, conditions: &[PodCondition], now: Timestamp) -> PodCondition {
    let gates = pod
        .spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_deref())
        .unwrap_or(&[]);
    let mut unmet = Vec::new();
    for gate in gates {
        let ty = &gate.condition_type;
        match conditions.iter().find(|c| &c.type_ == ty) {
            None => unmet.push(format!(
                "corresponding condition of pod readiness gate \"{ty}\" does not exist."
            )),
            Some(c) if c.status != "True" => unmet.push(format!(
                "the status of pod readiness gate \"{ty}\" is not \"True\", but {}",
                c.status
            )),
            Some(_) => {}
        }
    }
    if unmet.is_empty() {
        condition("Ready", true, None, None, now)
    } else {
        condition(
            "Ready",
            false,
            Some("ReadinessGatesNotReady"),
            Some(unmet.join(", ")),
            now,
        )
    }
}

/// `existing` with each of `ours` put in place of the condition of its type;
/// a condition whose status is unchanged keeps its lastTransitionTime.
pub(crate) fn merge_conditions(
    mut existing: Vec<PodCondition>,
    ours: Vec<PodCondition>,
) -> Vec<PodCondition> {
    for mut cond in ours {
        match existing.iter_mut().find(|c| c.type_ == cond.type_) {
            Some(old) => {
                if old.status == cond.status {
                    cond.last_transition_time = old.last_transition_time.clone();
                }
                cond.observed_generation = old.observed_generation;
                *old = cond;
            }
            None => existing.push(cond),
        }
    }
    existing
}

pub(crate) fn condition(
    ty: &str,
    status: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: Timestamp,
) -> PodCondition {
    PodCondition {
        type_: ty.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: reason.map(Into::into),
        message,
        last_transition_time: Some(Time(now)),
        ..Default::default()
    }
}

/// Guaranteed when every container limits CPU and memory at its requests,
/// BestEffort when none asks for either, Burstable otherwise.
pub(crate) fn qos_class(containers: &[Container], init: &[Container]) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    for c in containers.iter().chain(init) {
        let res = c.resources.clone().unwrap_or_default();
        let requests = res.requests.unwrap_or_default();
        let limits = res.limits.unwrap_or_default();
        for r in ["cpu", "memory"] {
            let (req, lim) = (requests.get(r).or(limits.get(r)), limits.get(r));
            any |= req.is_some() || lim.is_some();
            if lim.is_none() || req != lim {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(policy: &str, names: &[&str]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                uid: Some("u".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                restart_policy: Some(policy.into()),
                containers: names
                    .iter()
                    .map(|n| Container {
                        name: (*n).into(),
                        image: Some("busybox".into()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn cri(
        name: &str,
        state: v1::ContainerState,
        exit_code: i32,
        attempt: u32,
    ) -> v1::ContainerStatus {
        v1::ContainerStatus {
            id: format!("{name}-{attempt}"),
            metadata: Some(v1::ContainerMetadata {
                name: name.into(),
                attempt,
            }),
            state: state as i32,
            exit_code,
            started_at: 1_700_000_000_000_000_000,
            finished_at: if state == v1::ContainerState::ContainerExited {
                1_700_000_001_000_000_000
            } else {
                0
            },
            image_ref: "sha256:abc".into(),
            ..Default::default()
        }
    }

    fn run(
        pod: &Pod,
        observed: &Observed,
        waiting: &HashMap<String, (String, String)>,
    ) -> PodStatus {
        run_probed(pod, observed, waiting, &HashMap::new())
    }

    fn run_probed(
        pod: &Pod,
        observed: &Observed,
        waiting: &HashMap<String, (String, String)>,
        probed: &HashMap<String, Probed>,
    ) -> PodStatus {
        compute(
            pod,
            observed,
            &Context {
                host_ip: "127.0.0.1",
                runtime_name: "containerd",
                waiting,
                terminating: false,
                probed,
                messages: &HashMap::new(),
                failure: None,
                now: Timestamp::now(),
            },
        )
    }

    fn sandboxed(containers: Vec<v1::ContainerStatus>) -> Observed {
        let mut observed = Observed {
            sandbox: Some(Sandbox {
                id: "s".into(),
                ips: vec!["10.244.0.5".into()],
            }),
            ..Default::default()
        };
        for c in containers {
            let name = c
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default();
            observed.containers.entry(name).or_default().push(c);
        }
        observed
    }

    fn cond(s: &PodStatus, ty: &str) -> String {
        s.conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == ty)
            .map(|c| c.status.clone())
            .unwrap_or_default()
    }

    #[test]
    fn pending_while_creating() {
        let p = pod("Always", &["a"]);
        let s = run(&p, &Observed::default(), &HashMap::new());
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        let cs = &s.container_statuses.unwrap_or_default()[0];
        let w = cs
            .state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .expect("waiting");
        assert_eq!(w.reason.as_deref(), Some("ContainerCreating"));
    }

    #[test]
    fn running_and_ready() {
        let p = pod("Always", &["a"]);
        let obs = sandboxed(vec![cri("a", v1::ContainerState::ContainerRunning, 0, 0)]);
        let s = run(&p, &obs, &HashMap::new());
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.pod_ip.as_deref(), Some("10.244.0.5"));
        for ty in [
            "PodReadyToStartContainers",
            "Initialized",
            "ContainersReady",
            "Ready",
        ] {
            assert_eq!(cond(&s, ty), "True", "{ty}");
        }
        let cs = &s.container_statuses.unwrap_or_default()[0];
        assert_eq!(cs.container_id.as_deref(), Some("containerd://a-0"));
        assert!(cs.ready);
        assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
    }

    #[test]
    fn never_completes_or_fails() {
        let p = pod("Never", &["a"]);
        let ok = sandboxed(vec![cri("a", v1::ContainerState::ContainerExited, 0, 0)]);
        let s = run(&p, &ok, &HashMap::new());
        assert_eq!(s.phase.as_deref(), Some("Succeeded"));
        let t = s.container_statuses.clone().unwrap_or_default()[0]
            .state
            .clone()
            .and_then(|s| s.terminated)
            .expect("terminated");
        assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
        assert_eq!(cond(&s, "Ready"), "False");

        let bad = sandboxed(vec![cri("a", v1::ContainerState::ContainerExited, 3, 0)]);
        let s = run(&p, &bad, &HashMap::new());
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        let t = s.container_statuses.unwrap_or_default()[0]
            .state
            .clone()
            .and_then(|s| s.terminated)
            .expect("terminated");
        assert_eq!((t.exit_code, t.reason.as_deref()), (3, Some("Error")));
    }

    #[test]
    fn crash_loop_keeps_running_phase_with_last_state() {
        let p = pod("Always", &["a"]);
        let obs = sandboxed(vec![
            cri("a", v1::ContainerState::ContainerExited, 1, 1),
            cri("a", v1::ContainerState::ContainerExited, 1, 0),
        ]);
        let waiting = HashMap::from([(
            "a".to_string(),
            ("CrashLoopBackOff".to_string(), "back-off".to_string()),
        )]);
        let s = run(&p, &obs, &waiting);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        let cs = &s.container_statuses.unwrap_or_default()[0];
        assert_eq!(cs.restart_count, 1);
        assert_eq!(
            cs.state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref()),
            Some("CrashLoopBackOff")
        );
        assert_eq!(
            cs.last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .map(|t| t.exit_code),
            Some(1)
        );
    }

    #[test]
    fn init_containers_gate_the_rest() {
        let mut p = pod("Never", &["a"]);
        if let Some(spec) = p.spec.as_mut() {
            spec.init_containers = Some(vec![Container {
                name: "i".into(),
                ..Default::default()
            }]);
        }
        let running = sandboxed(vec![cri("i", v1::ContainerState::ContainerRunning, 0, 0)]);
        let s = run(&p, &running, &HashMap::new());
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(cond(&s, "Initialized"), "False");
        let cs = &s.container_statuses.unwrap_or_default()[0];
        assert_eq!(
            cs.state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref()),
            Some("PodInitializing")
        );
        let failed = sandboxed(vec![cri("i", v1::ContainerState::ContainerExited, 2, 0)]);
        assert_eq!(
            run(&p, &failed, &HashMap::new()).phase.as_deref(),
            Some("Failed")
        );
    }

    #[test]
    fn phase_when_terminating() {
        let p = pod("Always", &["a"]);
        let obs = sandboxed(vec![cri("a", v1::ContainerState::ContainerExited, 137, 0)]);
        let s = compute(
            &p,
            &obs,
            &Context {
                host_ip: "127.0.0.1",
                runtime_name: "containerd",
                waiting: &HashMap::new(),
                terminating: true,
                probed: &HashMap::new(),
                messages: &HashMap::new(),
                failure: None,
                now: Timestamp::now(),
            },
        );
        assert_eq!(s.phase.as_deref(), Some("Failed"));
    }

    #[test]
    fn probes_gate_started_and_ready() {
        let mut p = pod("Always", &["a"]);
        if let Some(c) = p.spec.as_mut().map(|s| &mut s.containers[0]) {
            c.startup_probe = Some(Default::default());
            c.readiness_probe = Some(Default::default());
        }
        let obs = sandboxed(vec![cri("a", v1::ContainerState::ContainerRunning, 0, 0)]);
        let flags = |probed: HashMap<String, Probed>| {
            let s = run_probed(&p, &obs, &HashMap::new(), &probed);
            let cs = s.container_statuses.clone().unwrap_or_default()[0].clone();
            (cs.started, cs.ready, cond(&s, "ContainersReady"))
        };
        let probed = |id: &str, started, ready| {
            HashMap::from([(
                "a".to_string(),
                Probed {
                    container_id: id.into(),
                    started,
                    ready,
                },
            )])
        };
        assert_eq!(flags(HashMap::new()), (Some(false), false, "False".into()));
        assert_eq!(
            flags(probed("a-0", true, false)),
            (Some(true), false, "False".into())
        );
        assert_eq!(
            flags(probed("a-0", true, true)),
            (Some(true), true, "True".into())
        );
        assert_eq!(
            flags(probed("a-0", false, true)),
            (Some(false), false, "False".into()),
            "not ready before started"
        );
        assert_eq!(
            flags(probed("old", true, true)),
            (Some(false), false, "False".into()),
            "results of another instance do not count"
        );
    }

    #[test]
    fn failure_and_messages() {
        let p = pod("Always", &["a"]);
        let obs = sandboxed(vec![cri("a", v1::ContainerState::ContainerExited, 137, 0)]);
        let messages = HashMap::from([("a-0".to_string(), "bye".to_string())]);
        let s = compute(
            &p,
            &obs,
            &Context {
                host_ip: "127.0.0.1",
                runtime_name: "containerd",
                waiting: &HashMap::new(),
                terminating: false,
                probed: &HashMap::new(),
                messages: &messages,
                failure: Some(("DeadlineExceeded", "too long")),
                now: Timestamp::now(),
            },
        );
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        assert_eq!(s.reason.as_deref(), Some("DeadlineExceeded"));
        assert_eq!(s.message.as_deref(), Some("too long"));
        assert_eq!(cond(&s, "ContainersReady"), "False");
        let t = s.container_statuses.unwrap_or_default()[0]
            .state
            .clone()
            .and_then(|s| s.terminated)
            .expect("terminated");
        assert_eq!(t.message.as_deref(), Some("bye"));
    }

    #[test]
    fn ephemeral_containers_are_reported_but_never_ready() {
        use k8s_openapi::api::core::v1::EphemeralContainer;
        let mut p = pod("Always", &["a"]);
        if let Some(spec) = p.spec.as_mut() {
            spec.ephemeral_containers = Some(
                ["dbg2", "dbg1", "dbg0"]
                    .iter()
                    .map(|n| EphemeralContainer {
                        name: (*n).into(),
                        image: Some("busybox".into()),
                        ..Default::default()
                    })
                    .collect(),
            );
        }
        let waiting = HashMap::from([(
            "dbg0".to_string(),
            ("ErrImagePull".to_string(), "no such image".to_string()),
        )]);
        let obs = sandboxed(vec![
            cri("a", v1::ContainerState::ContainerRunning, 0, 0),
            cri("dbg1", v1::ContainerState::ContainerRunning, 0, 0),
            cri("dbg2", v1::ContainerState::ContainerExited, 3, 0),
        ]);
        let s = run(&p, &obs, &waiting);
        // An exited (failed) ephemeral container fails nothing.
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(cond(&s, "Ready"), "True");
        let eph = s.ephemeral_container_statuses.clone().unwrap_or_default();
        let names: Vec<&str> = eph.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["dbg0", "dbg1", "dbg2"]);
        let reason = eph[0]
            .state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref());
        assert_eq!(reason, Some("ErrImagePull"));
        assert!(eph[1].state.as_ref().is_some_and(|s| s.running.is_some()));
        assert_eq!(eph[1].container_id.as_deref(), Some("containerd://dbg1-0"));
        assert_eq!(eph[1].image_id, "sha256:abc");
        assert_eq!(eph[1].image, "busybox");
        let t = eph[2]
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| t.exit_code);
        assert_eq!(t, Some(3));
        assert!(eph.iter().all(|c| !c.ready && c.started.is_none()));
        // Not one of the regular containers.
        assert_eq!(s.container_statuses.unwrap_or_default().len(), 1);
        assert!(
            run(&pod("Always", &["a"]), &obs, &HashMap::new())
                .ephemeral_container_statuses
                .is_none()
        );
    }
}
