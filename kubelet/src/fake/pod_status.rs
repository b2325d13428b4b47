//! The pod statuses a fake node reports, as pure functions of the pod: what
//! kwok's "pod-ready", "pod-complete" and the kubelet's stop-on-delete stages
//! write, shaped by the pod's [`Script`](super::script::Script). Kept free of
//! I/O so the shapes are unit-tested.

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus,
    HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::script::{End, Terminal};
use crate::pods::status::{condition, gated_ready, merge_conditions};

/// Phases after which a pod's containers never run again.
pub(crate) fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

pub(crate) fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// kwok's pod-complete stage selects pods with any owner of kind Job.
pub(crate) fn is_job_owned(pod: &Pod) -> bool {
    pod.metadata
        .owner_references
        .as_ref()
        .is_some_and(|refs| refs.iter().any(|r| r.kind == "Job"))
}

pub(crate) fn uses_host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

/// The status of a pod whose containers have all started: Running, with
/// every kubelet-owned condition True but ContainersReady and Ready, which
/// follow `ready` (and Ready the readiness gates too).
pub(crate) fn running(
    pod: &Pod,
    host_ip: &str,
    pod_ip: &str,
    ready: bool,
    now: Timestamp,
) -> PodStatus {
    let mut status = pod.status.clone().unwrap_or_default();
    let uid = pod.metadata.uid.as_deref().unwrap_or("");
    let spec = pod.spec.as_ref();
    status.phase = Some("Running".into());
    status.host_ip = Some(host_ip.into());
    status.host_ips = Some(vec![HostIP { ip: host_ip.into() }]);
    status.pod_ip = Some(pod_ip.into());
    status.pod_ips = Some(vec![PodIP { ip: pod_ip.into() }]);
    status.start_time.get_or_insert(Time(now));
    let init = spec
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or(&[]);
    let containers = spec.map(|s| s.containers.as_slice()).unwrap_or(&[]);
    status.init_container_statuses =
        (!init.is_empty()).then(|| init.iter().map(|c| init_done(uid, c, now)).collect());
    status.container_statuses = Some(
        containers
            .iter()
            .map(|c| ContainerStatus {
                ready,
                ..started(uid, c, now)
            })
            .collect(),
    );
    let mut ours = vec![
        condition("PodReadyToStartContainers", true, None, None, now),
        condition("Initialized", true, None, None, now),
        containers_ready_condition(pod, ready, now),
    ];
    let existing = status.conditions.take().unwrap_or_default();
    ours.push(ready_condition(pod, &existing, ready, now));
    ours.push(condition("PodScheduled", true, None, None, now));
    status.conditions = Some(merge_conditions(existing, ours));
    status
}

/// The status a Running pod should have now that its containers' readiness
/// is `ready`, or `None` when the reported one already says so (readiness,
/// the Ready condition given the readiness gates, and the acknowledged
/// generation, as the kubelet does on a spec change).
pub(crate) fn resync(pod: &Pod, ready: bool, now: Timestamp) -> Option<PodStatus> {
    let mut status = pod.status.clone().unwrap_or_default();
    let conditions = status.conditions.take().unwrap_or_default();
    let desired = [
        containers_ready_condition(pod, ready, now),
        ready_condition(pod, &conditions, ready, now),
    ];
    let conditions_stale = desired.iter().any(|want| {
        conditions
            .iter()
            .find(|c| c.type_ == want.type_)
            .map(|c| (&c.status, &c.reason, &c.message))
            != Some((&want.status, &want.reason, &want.message))
    });
    let containers = status.container_statuses.as_deref().unwrap_or(&[]);
    let containers_stale = containers.iter().any(|c| c.ready != ready);
    let generation_stale = status.observed_generation != pod.metadata.generation;
    if !(conditions_stale || containers_stale || generation_stale) {
        return None;
    }
    for c in status.container_statuses.iter_mut().flatten() {
        c.ready = ready;
    }
    status.conditions = Some(merge_conditions(conditions, desired.into()));
    Some(status)
}

/// The status of a pod whose containers all exited as `end` says.
pub(crate) fn ended(pod: &Pod, end: &End, now: Timestamp) -> PodStatus {
    let reason = if end.exit_code == 0 {
        "Completed"
    } else {
        "Error"
    };
    finished(pod, end.phase, end.exit_code, reason, now)
}

/// The status the kubelet writes once it has stopped a pod being deleted:
/// terminal, containers terminated by SIGTERM (exit 143).
pub(crate) fn stopped(pod: &Pod, now: Timestamp) -> PodStatus {
    finished(pod, Terminal::Failed, 143, "Error", now)
}

fn finished(pod: &Pod, phase: Terminal, exit_code: i32, reason: &str, now: Timestamp) -> PodStatus {
    let mut status = pod.status.clone().unwrap_or_default();
    status.phase = Some(phase.as_str().into());
    if let Some(statuses) = status.container_statuses.as_mut() {
        for cs in statuses {
            let started_at = cs
                .state
                .as_ref()
                .and_then(|s| s.running.as_ref())
                .and_then(|r| r.started_at.clone());
            cs.state = Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    container_id: cs.container_id.clone(),
                    exit_code,
                    finished_at: Some(Time(now)),
                    reason: Some(reason.into()),
                    started_at,
                    ..Default::default()
                }),
                ..Default::default()
            });
            cs.ready = false;
            cs.started = Some(false);
        }
    }
    let existing = status.conditions.take().unwrap_or_default();
    let ours = vec![
        condition("PodReadyToStartContainers", false, None, None, now),
        condition("ContainersReady", false, Some("PodCompleted"), None, now),
        condition("Ready", false, Some("PodCompleted"), None, now),
    ];
    status.conditions = Some(merge_conditions(existing, ours));
    status
}

/// ContainersReady, with upstream's reason and message when not.
fn containers_ready_condition(pod: &Pod, ready: bool, now: Timestamp) -> PodCondition {
    if ready {
        condition("ContainersReady", true, None, None, now)
    } else {
        let msg = unready_message(pod);
        condition(
            "ContainersReady",
            false,
            Some("ContainersNotReady"),
            Some(msg),
            now,
        )
    }
}

/// The kubelet's message naming the containers that are not ready.
fn unready_message(pod: &Pod) -> String {
    let names: Vec<&str> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.iter().map(|c| c.name.as_str()).collect())
        .unwrap_or_default();
    format!("containers with unready status: [{}]", names.join(" "))
}

/// The Ready condition: True only when the containers are ready and every
/// `spec.readinessGates` condition is True (upstream's message otherwise).
pub(crate) fn ready_condition(
    pod: &Pod,
    conditions: &[PodCondition],
    containers_ready: bool,
    now: Timestamp,
) -> PodCondition {
    if !containers_ready {
        let msg = unready_message(pod);
        return condition("Ready", false, Some("ContainersNotReady"), Some(msg), now);
    }
    gated_ready(pod, conditions, now)
}

fn base_status(uid: &str, c: &Container) -> ContainerStatus {
    let image = c.image.clone().unwrap_or_default();
    ContainerStatus {
        name: c.name.clone(),
        image_id: format!("fake-image://{image}"),
        image,
        container_id: Some(format!("fake://{uid}/{}", c.name)),
        restart_count: 0,
        ..Default::default()
    }
}

fn started(uid: &str, c: &Container, now: Timestamp) -> ContainerStatus {
    ContainerStatus {
        state: Some(ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(Time(now)),
            }),
            ..Default::default()
        }),
        ready: true,
        started: Some(true),
        ..base_status(uid, c)
    }
}

/// Init containers have run to completion; restartable ones (sidecars) keep running.
fn init_done(uid: &str, c: &Container, now: Timestamp) -> ContainerStatus {
    if c.restart_policy.as_deref() == Some("Always") {
        return started(uid, c, now);
    }
    let base = base_status(uid, c);
    ContainerStatus {
        state: Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                container_id: base.container_id.clone(),
                exit_code: 0,
                reason: Some("Completed".into()),
                started_at: Some(Time(now)),
                finished_at: Some(Time(now)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ready: true,
        started: Some(false),
        ..base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodReadinessGate, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    fn pod(gates: &[&str]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "app".into(),
                    image: Some("nginx".into()),
                    ..Default::default()
                }],
                init_containers: Some(vec![Container {
                    name: "setup".into(),
                    image: Some("busybox".into()),
                    ..Default::default()
                }]),
                readiness_gates: (!gates.is_empty()).then(|| {
                    gates
                        .iter()
                        .map(|g| PodReadinessGate {
                            condition_type: (*g).into(),
                        })
                        .collect()
                }),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Pending".into()),
                qos_class: Some("BestEffort".into()),
                conditions: Some(vec![condition(
                    "PodScheduled",
                    true,
                    None,
                    None,
                    Timestamp::UNIX_EPOCH,
                )]),
                ..Default::default()
            }),
        }
    }

    fn cond<'a>(s: &'a PodStatus, ty: &str) -> &'a PodCondition {
        s.conditions
            .as_ref()
            .and_then(|c| c.iter().find(|c| c.type_ == ty))
            .unwrap_or_else(|| panic!("no {ty}"))
    }

    #[test]
    fn running_sets_everything_a_kubelet_would() {
        let now = Timestamp::now();
        let s = running(&pod(&[]), "10.0.0.2", "10.244.0.5", true, now);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.pod_ip.as_deref(), Some("10.244.0.5"));
        assert_eq!(s.host_ips.as_ref().map(Vec::len), Some(1));
        assert_eq!(s.qos_class.as_deref(), Some("BestEffort"), "kept");
        for ty in [
            "PodReadyToStartContainers",
            "Initialized",
            "ContainersReady",
            "Ready",
            "PodScheduled",
        ] {
            assert_eq!(cond(&s, ty).status, "True", "{ty}");
        }
        assert_eq!(
            cond(&s, "PodScheduled").last_transition_time,
            Some(Time(Timestamp::UNIX_EPOCH)),
            "unchanged condition keeps its transition time"
        );
        let cs = &s.container_statuses.as_ref().expect("statuses")[0];
        assert!(cs.ready && cs.started == Some(true));
        assert_eq!(cs.container_id.as_deref(), Some("fake://u1/app"));
        assert!(cs.state.as_ref().and_then(|s| s.running.as_ref()).is_some());
        let init = &s.init_container_statuses.as_ref().expect("init")[0];
        let term = init
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .expect("terminated");
        assert_eq!(
            (term.exit_code, term.reason.as_deref()),
            (0, Some("Completed"))
        );
    }

    #[test]
    fn readiness_gates_hold_ready_back() {
        let now = Timestamp::now();
        let mut p = pod(&["example.com/lb"]);
        let s = running(&p, "h", "i", true, now);
        let ready = cond(&s, "Ready");
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("ReadinessGatesNotReady"));
        assert_eq!(
            ready.message.as_deref(),
            Some(
                "corresponding condition of pod readiness gate \"example.com/lb\" does not exist."
            )
        );
        let mut with_gate = s.clone();
        with_gate
            .conditions
            .get_or_insert_with(Vec::new)
            .push(condition("example.com/lb", false, None, None, now));
        p.status = Some(with_gate.clone());
        let conds = with_gate.conditions.clone().unwrap_or_default();
        assert_eq!(ready_condition(&p, &conds, true, now).status, "False");
        let conds: Vec<_> = conds
            .into_iter()
            .map(|mut c| {
                if c.type_ == "example.com/lb" {
                    c.status = "True".into();
                }
                c
            })
            .collect();
        assert_eq!(ready_condition(&p, &conds, true, now).status, "True");
    }

    #[test]
    fn not_ready_pods_run_unready_until_flipped() {
        let now = Timestamp::now();
        let mut p = pod(&[]);
        let s = running(&p, "h", "i", false, now);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        for ty in ["ContainersReady", "Ready"] {
            let c = cond(&s, ty);
            assert_eq!(
                (c.status.as_str(), c.reason.as_deref(), c.message.as_deref()),
                (
                    "False",
                    Some("ContainersNotReady"),
                    Some("containers with unready status: [app]")
                ),
                "{ty}"
            );
        }
        let cs = &s.container_statuses.as_ref().expect("statuses")[0];
        assert!(!cs.ready && cs.started == Some(true));
        assert_eq!(cond(&s, "Initialized").status, "True");

        p.status = Some(s);
        assert_eq!(resync(&p, false, now), None, "already says so");
        let flipped = resync(&p, true, now).expect("a change");
        assert_eq!(cond(&flipped, "Ready").status, "True");
        assert_eq!(cond(&flipped, "ContainersReady").status, "True");
        assert!(flipped.container_statuses.expect("statuses")[0].ready);

        // A spec change is acknowledged even when readiness stands.
        p.metadata.generation = Some(2);
        let acked = resync(&p, false, now).expect("generation to acknowledge");
        assert_eq!(cond(&acked, "Ready").status, "False");
    }

    #[test]
    fn finished_pods_are_terminal() {
        let now = Timestamp::now();
        let mut p = pod(&[]);
        p.metadata.owner_references = Some(vec![OwnerReference {
            kind: "Job".into(),
            ..Default::default()
        }]);
        assert!(is_job_owned(&p));
        p.status = Some(running(&p, "h", "i", true, now));
        let end = |phase, exit_code| End {
            phase,
            exit_code,
            after: std::time::Duration::ZERO,
        };
        for (s, phase, code, reason) in [
            (
                ended(&p, &end(Terminal::Succeeded, 0), now),
                "Succeeded",
                0,
                "Completed",
            ),
            (
                ended(&p, &end(Terminal::Failed, 42), now),
                "Failed",
                42,
                "Error",
            ),
            (stopped(&p, now), "Failed", 143, "Error"),
        ] {
            assert_eq!(s.phase.as_deref(), Some(phase));
            let cs = &s.container_statuses.as_ref().expect("statuses")[0];
            let t = cs
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .expect("terminated");
            assert_eq!((t.exit_code, t.reason.as_deref()), (code, Some(reason)));
            assert!(t.started_at.is_some() && t.finished_at.is_some());
            assert!(!cs.ready);
            assert_eq!(cond(&s, "Ready").status, "False");
            assert_eq!(cond(&s, "Initialized").status, "True");
        }
    }
}
