//! End-to-end tests of probes, lifecycle hooks, activeDeadlineSeconds and
//! termination messages on a real containerd (see `support`): the kubelet
//! under test writes every status; the tests only create and delete pods
//! and poll.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, ContainerStatus, ExecAction, HTTPGetAction, HTTPHeader, Lifecycle,
    LifecycleHandler, Pod, Probe, SleepAction, TCPSocketAction,
};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, ListParams};
use support::{BUSYBOX, Env, TestResult, busybox_pod, condition, eventually, main_status, phase};

fn exec_probe(cmd: &[&str]) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(cmd.iter().map(|s| s.to_string()).collect()),
        }),
        period_seconds: Some(1),
        failure_threshold: Some(1),
        ..Default::default()
    }
}

fn exec_hook(cmd: &[&str]) -> LifecycleHandler {
    LifecycleHandler {
        exec: Some(ExecAction {
            command: Some(cmd.iter().map(|s| s.to_string()).collect()),
        }),
        ..Default::default()
    }
}

fn main_container(pod: &mut Pod) -> &mut Container {
    &mut pod.spec.as_mut().expect("spec").containers[0]
}

fn status_of<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|s| s.name == name)
}

fn is_running(s: &ContainerStatus) -> bool {
    s.state.as_ref().is_some_and(|st| st.running.is_some())
}

/// Waits for an event about `pod` with `reason` whose note starts with
/// `prefix`; returns its note.
async fn wait_event(env: &Env, pod: &str, reason: &str, prefix: &str) -> TestResult<String> {
    let events: Api<Event> = Api::namespaced(env.client.clone(), "default");
    eventually(&format!("event {reason} on {pod}"), || {
        let events = events.clone();
        async move {
            let list = events.list(&ListParams::default()).await.ok()?;
            list.items.into_iter().find_map(|e| {
                let about = e.regarding.as_ref()?.name.as_deref()? == pod;
                let note = e.note.clone().unwrap_or_default();
                (about && e.reason.as_deref() == Some(reason) && note.starts_with(prefix))
                    .then_some(note)
            })
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_follows_an_exec_probe() -> TestResult {
    let env = Env::start("kubelet-probe-ready").await?;
    let mut pod = busybox_pod(
        "flip",
        &env.node,
        "Always",
        "trap 'exit 0' TERM; while true; do touch /tmp/ready; sleep 4; rm -f /tmp/ready; sleep 4; done",
    );
    main_container(&mut pod).readiness_probe = Some(exec_probe(&["cat", "/tmp/ready"]));
    env.create(pod).await?;
    let ready = |p: &Pod| main_status(p).is_some_and(|s| s.ready && is_running(s));
    let p = env
        .wait_pod("flip", "ready", |p| {
            ready(p) && condition(p, "Ready").as_deref() == Some("True")
        })
        .await?;
    assert_eq!(condition(&p, "ContainersReady").as_deref(), Some("True"));
    assert_eq!(main_status(&p).and_then(|s| s.started), Some(true));
    let p = env
        .wait_pod("flip", "unready while running", |p| {
            main_status(p).is_some_and(|s| !s.ready && is_running(s))
                && condition(p, "Ready").as_deref() == Some("False")
        })
        .await?;
    assert_eq!(phase(&p), "Running");
    assert_eq!(main_status(&p).map(|s| s.restart_count), Some(0));
    assert_eq!(condition(&p, "ContainersReady").as_deref(), Some("False"));
    wait_event(&env, "flip", "Unhealthy", "Readiness probe failed").await?;
    env.wait_pod("flip", "ready again", ready).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn liveness_failure_restarts_after_pre_stop() -> TestResult {
    let env = Env::start("kubelet-probe-live").await?;
    let mut pod = busybox_pod(
        "live",
        &env.node,
        "Always",
        "trap 'cat /tmp/pre-stop; echo got TERM; exit 0' TERM; touch /tmp/alive; sleep 2; rm /tmp/alive; while true; do sleep 1; done",
    );
    let c = main_container(&mut pod);
    c.liveness_probe = Some(Probe {
        termination_grace_period_seconds: Some(3),
        ..exec_probe(&["test", "-f", "/tmp/alive"])
    });
    c.lifecycle = Some(Lifecycle {
        pre_stop: Some(exec_hook(&["sh", "-c", "echo prestop ran > /tmp/pre-stop"])),
        ..Default::default()
    });
    let uid = env.create(pod).await?.metadata.uid.unwrap_or_default();
    let p = env
        .wait_pod("live", "two restarts", |p| {
            main_status(p).is_some_and(|s| s.restart_count >= 2)
        })
        .await?;
    assert_eq!(phase(&p), "Running");
    wait_event(&env, "live", "Unhealthy", "Liveness probe failed").await?;
    let note = wait_event(
        &env,
        "live",
        "Killing",
        "Container main failed liveness probe",
    )
    .await?;
    assert_eq!(
        note,
        "Container main failed liveness probe, will be restarted"
    );
    // The first instance's log: its SIGTERM trap printed what preStop wrote.
    let log = env
        .root
        .join("logs")
        .join(format!("default_live_{uid}"))
        .join("main/0.log");
    let log = std::fs::read_to_string(&log)?;
    let (hook, term) = (log.find("prestop ran"), log.find("got TERM"));
    assert!(
        hook.is_some() && term.is_some() && hook < term,
        "preStop before SIGTERM in: {log}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn startup_probe_gates_readiness() -> TestResult {
    let env = Env::start("kubelet-probe-start").await?;
    let mut pod = busybox_pod(
        "slow",
        &env.node,
        "Always",
        "sleep 5; touch /tmp/started; exec sleep 3600",
    );
    let c = main_container(&mut pod);
    c.startup_probe = Some(Probe {
        failure_threshold: Some(30),
        ..exec_probe(&["test", "-f", "/tmp/started"])
    });
    c.readiness_probe = Some(exec_probe(&["true"]));
    // Would kill the container if it ran before startup succeeded.
    c.liveness_probe = Some(exec_probe(&["test", "-f", "/tmp/started"]));
    env.create(pod).await?;
    env.wait_pod("slow", "running, not started", |p| {
        main_status(p).is_some_and(|s| is_running(s) && s.started == Some(false) && !s.ready)
    })
    .await?;
    let p = env
        .wait_pod("slow", "started and ready", |p| {
            main_status(p).is_some_and(|s| s.started == Some(true) && s.ready)
                && condition(p, "Ready").as_deref() == Some("True")
        })
        .await?;
    assert_eq!(main_status(&p).map(|s| s.restart_count), Some(0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn http_get_readiness_and_tcp_liveness() -> TestResult {
    let env = Env::start("kubelet-probe-http").await?;
    let httpd = |port: u16| {
        format!("mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p {port} -h /www")
    };
    let mut pod = busybox_pod("web", &env.node, "Always", &httpd(8080));
    let web = main_container(&mut pod);
    web.name = "web".into();
    web.ports = Some(vec![ContainerPort {
        name: Some("http".into()),
        container_port: 8080,
        ..Default::default()
    }]);
    web.readiness_probe = Some(Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/index.html".into()),
            port: IntOrString::String("http".into()),
            http_headers: Some(vec![HTTPHeader {
                name: "X-Probe".into(),
                value: "1".into(),
            }]),
            ..Default::default()
        }),
        period_seconds: Some(1),
        ..Default::default()
    });
    web.liveness_probe = Some(Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::Int(8080),
            host: None,
        }),
        period_seconds: Some(1),
        ..Default::default()
    });
    let mut missing = web.clone();
    missing.name = "missing".into();
    missing.command = Some(vec!["sh".into(), "-c".into(), httpd(8081)]);
    missing.ports = None;
    missing.liveness_probe = None;
    missing.readiness_probe = Some(Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/missing".into()),
            port: IntOrString::Int(8081),
            ..Default::default()
        }),
        period_seconds: Some(1),
        failure_threshold: Some(1),
        ..Default::default()
    });
    pod.spec.as_mut().expect("spec").containers.push(missing);
    env.create(pod).await?;
    let p = env
        .wait_pod("web", "web ready, missing running unready", |p| {
            status_of(p, "web").is_some_and(|s| s.ready)
                && status_of(p, "missing").is_some_and(|s| is_running(s) && !s.ready)
        })
        .await?;
    assert_eq!(condition(&p, "Ready").as_deref(), Some("False"));
    wait_event(
        &env,
        "web",
        "Unhealthy",
        "Readiness probe failed: HTTP probe failed with statuscode: 404",
    )
    .await?;
    let p = env.pods().get("web").await?;
    assert_eq!(status_of(&p, "web").map(|s| s.restart_count), Some(0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn hooks_run_and_a_failed_post_start_kills() -> TestResult {
    let env = Env::start("kubelet-probe-hooks").await?;
    let quiet = "trap 'exit 0' TERM; while true; do sleep 1; done";
    let mut pod = busybox_pod("hooked", &env.node, "Always", quiet);
    let c = main_container(&mut pod);
    c.lifecycle = Some(Lifecycle {
        post_start: Some(exec_hook(&["sh", "-c", "echo done > /tmp/post-start"])),
        pre_stop: Some(LifecycleHandler {
            sleep: Some(SleepAction { seconds: 3 }),
            ..Default::default()
        }),
        ..Default::default()
    });
    c.readiness_probe = Some(exec_probe(&["test", "-f", "/tmp/post-start"]));
    if let Some(spec) = pod.spec.as_mut() {
        spec.termination_grace_period_seconds = Some(20);
    }
    env.create(pod).await?;

    let mut bad = busybox_pod("bad-hook", &env.node, "Always", quiet);
    main_container(&mut bad).lifecycle = Some(Lifecycle {
        post_start: Some(exec_hook(&["sh", "-c", "exit 7"])),
        ..Default::default()
    });
    env.create(bad).await?;

    env.wait_pod("hooked", "ready after postStart", |p| {
        main_status(p).is_some_and(|s| s.ready)
    })
    .await?;
    // preStop's sleep holds SIGTERM back, which the container obeys at once.
    let start = Instant::now();
    env.pods()
        .delete("hooked", &DeleteParams::default())
        .await?;
    eventually("hooked removed", || async {
        env.pods()
            .get_opt("hooked")
            .await
            .ok()
            .and_then(|p| p.is_none().then_some(()))
    })
    .await?;
    assert!(
        start.elapsed() >= Duration::from_secs(3),
        "removed after {:?}, before preStop's sleep ended",
        start.elapsed()
    );

    let note = wait_event(
        &env,
        "bad-hook",
        "FailedPostStartHook",
        "Exec lifecycle hook",
    )
    .await?;
    assert!(note.contains("bad-hook"), "{note}");
    env.wait_pod("bad-hook", "restarted", |p| {
        main_status(p).is_some_and(|s| s.restart_count >= 1)
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn active_deadline_fails_the_pod() -> TestResult {
    let env = Env::start("kubelet-probe-deadline").await?;
    let mut pod = busybox_pod("late", &env.node, "Always", "exec sleep 3600");
    if let Some(spec) = pod.spec.as_mut() {
        spec.active_deadline_seconds = Some(3);
        spec.termination_grace_period_seconds = Some(1);
    }
    env.create(pod).await?;
    let p = env
        .wait_pod("late", "Failed", |p| phase(p) == "Failed")
        .await?;
    let status = p.status.clone().unwrap_or_default();
    assert_eq!(status.reason.as_deref(), Some("DeadlineExceeded"));
    assert!(
        main_status(&p)
            .and_then(|s| s.state.as_ref())
            .is_some_and(|s| s.terminated.is_some()),
        "{status:?}"
    );
    assert_eq!(condition(&p, "Ready").as_deref(), Some("False"));
    wait_event(
        &env,
        "late",
        "DeadlineExceeded",
        "Pod was active on the node longer",
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn termination_messages_from_files_and_logs() -> TestResult {
    let env = Env::start("kubelet-probe-message").await?;
    let mut pod = busybox_pod(
        "msg",
        &env.node,
        "Never",
        "printf bye > /dev/termination-log; exit 1",
    );
    let base = main_container(&mut pod).clone();
    let custom = Container {
        name: "custom".into(),
        command: Some(vec![
            "sh".into(),
            "-c".into(),
            "printf custom > /tmp/msg".into(),
        ]),
        termination_message_path: Some("/tmp/msg".into()),
        ..base.clone()
    };
    let logs = Container {
        name: "logs".into(),
        command: Some(vec![
            "sh".into(),
            "-c".into(),
            "echo first; echo boom; exit 2".into(),
        ]),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..base.clone()
    };
    let quiet_ok = Container {
        name: "quiet".into(),
        command: Some(vec!["sh".into(), "-c".into(), "echo not a message".into()]),
        image: Some(BUSYBOX.into()),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..base
    };
    pod.spec
        .as_mut()
        .expect("spec")
        .containers
        .extend([custom, logs, quiet_ok]);
    env.create(pod).await?;
    let p = env
        .wait_pod("msg", "Failed", |p| phase(p) == "Failed")
        .await?;
    let message = |name: &str| {
        status_of(&p, name)
            .and_then(|s| s.state.as_ref())
            .and_then(|s| s.terminated.as_ref())
            .and_then(|t| t.message.clone())
    };
    assert_eq!(message("main").as_deref(), Some("bye"));
    assert_eq!(message("custom").as_deref(), Some("custom"));
    assert_eq!(message("logs").as_deref(), Some("first\nboom\n"));
    assert_eq!(message("quiet"), None, "exit 0 never falls back to logs");
    Ok(())
}
