//! Ephemeral containers on a real kubelet and containerd: added to a
//! running pod through `pods/ephemeralcontainers`, started once in the
//! pod's sandbox, reported in `status.ephemeralContainerStatuses`, reachable
//! by `kubectl logs`/`exec`, and created by stock `kubectl debug --target`
//! (1.32 and 1.34) in the target container's PID namespace.
//!
//! Covers what these conformance tests check (and more):
//! - "[sig-node] Ephemeral Containers [NodeConformance] will start an
//!   ephemeral container in an existing pod [Conformance]": the container
//!   runs, the pod's generation is 2, exec into it answers, its log is
//!   readable;
//! - "[sig-node] Ephemeral Containers [NodeConformance] should update the
//!   ephemeral containers in an existing pod [Conformance]": the
//!   subresource shows one ephemeral container, an update through it adds
//!   a second, and it then shows two.

mod support;

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{ContainerStatus, EphemeralContainer, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kubelet::cri::v1;
use support::kubectl::Kubectl;
use support::*;

fn ephemeral_status<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    pod.status
        .as_ref()?
        .ephemeral_container_statuses
        .as_ref()?
        .iter()
        .find(|s| s.name == name)
}

fn is_running(s: &ContainerStatus) -> bool {
    s.state.as_ref().is_some_and(|st| st.running.is_some())
}

fn exit_code(s: &ContainerStatus) -> Option<i32> {
    s.state.as_ref()?.terminated.as_ref().map(|t| t.exit_code)
}

/// The CRI containers of the pod named `container` (every instance).
async fn instances(uid: &str, container: &str) -> TestResult<Vec<v1::Container>> {
    let runtime = ensure_containerd().await?;
    Ok(runtime
        .runtime
        .clone()
        .list_containers(v1::ListContainersRequest {
            filter: Some(v1::ContainerFilter {
                label_selector: HashMap::from([
                    ("io.kubernetes.pod.uid".to_string(), uid.to_string()),
                    ("io.kubernetes.container.name".to_string(), container.into()),
                ]),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .containers)
}

async fn ready(env: &Env, name: &str) -> TestResult<Pod> {
    env.wait_pod(name, "the pod ready", |p| {
        main_status(p).is_some_and(|s| s.ready)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_containers_start_once_and_are_reported() -> TestResult {
    let env = Env::start("ephemeral").await?;
    let kubectls = Kubectl::both(env.kubeconfig())?;
    let name = "ephemeral-containers-target-pod";
    env.create(busybox_pod(name, &env.node, "Always", "exec sleep 10000"))
        .await?;
    let pod = ready(&env, name).await?;
    assert_eq!(pod.metadata.generation, Some(1));
    let uid = pod.metadata.uid.clone().ok_or("no uid")?;
    let pods = env.pods();

    // Added as e2e's AddEphemeralContainerSync adds it: a strategic merge
    // patch of the subresource.
    let debugger = EphemeralContainer {
        name: "debugger".into(),
        image: Some(BUSYBOX.into()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            "while true; do echo polo; sleep 2; done".into(),
        ]),
        stdin: Some(true),
        tty: Some(true),
        ..Default::default()
    };
    let patch = serde_json::json!({ "spec": { "ephemeralContainers": [debugger] } });
    pods.patch_ephemeral_containers(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await?;
    let pod = env
        .wait_pod(name, "the debugger running", |p| {
            ephemeral_status(p, "debugger").is_some_and(is_running)
        })
        .await?;
    assert_eq!(pod.metadata.generation, Some(2));
    let s = ephemeral_status(&pod, "debugger").ok_or("no status")?;
    assert_eq!(s.image, BUSYBOX);
    assert!(!s.image_id.is_empty(), "{s:?}");
    assert!(
        s.container_id
            .as_deref()
            .is_some_and(|id| id.starts_with("containerd://")),
        "{s:?}"
    );
    assert!(!s.ready && s.restart_count == 0, "{s:?}");
    // The regular containers and the pod's readiness are untouched.
    assert_eq!(phase(&pod), "Running");
    assert_eq!(condition(&pod, "Ready").as_deref(), Some("True"));
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    assert_eq!(statuses.map(Vec::len), Some(1));

    // Its log through the kubelet and the API server; exec into it.
    let log = eventually("polo in the debugger's log", || async {
        env.log(name, "debugger")
            .await
            .ok()
            .filter(|l| l.contains("polo"))
    })
    .await?;
    assert!(log.contains("polo"), "{log}");
    let params = kube::api::LogParams {
        container: Some("debugger".into()),
        ..Default::default()
    };
    assert!(pods.logs(name, &params).await?.contains("polo"));
    for k in &kubectls {
        let shown = k.bin.display().to_string();
        let out = k
            .ok(&["exec", name, "-c", "debugger", "--", "/bin/echo", "marco"])
            .await?;
        assert!(out.contains("marco"), "{shown}: {out}");
        let out = k.ok(&["logs", name, "-c", "debugger"]).await?;
        assert!(out.contains("polo"), "{shown}: {out}");
    }

    // The subresource shows one; an update through it adds a second.
    let mut current = pods.get_ephemeral_containers(name).await?;
    let listed = current
        .spec
        .as_ref()
        .and_then(|s| s.ephemeral_containers.as_ref());
    assert_eq!(listed.map(Vec::len), Some(1));
    if let Some(list) = current
        .spec
        .as_mut()
        .and_then(|s| s.ephemeral_containers.as_mut())
    {
        list.push(EphemeralContainer {
            name: "debugger2".into(),
            image: Some(BUSYBOX.into()),
            image_pull_policy: Some("IfNotPresent".into()),
            termination_message_policy: Some("File".into()),
            command: Some(vec!["sh".into(), "-c".into(), "exit 3".into()]),
            ..Default::default()
        });
    }
    pods.replace_ephemeral_containers(name, &PostParams::default(), &current)
        .await?;
    let listed = pods.get_ephemeral_containers(name).await?;
    let count = listed
        .spec
        .as_ref()
        .and_then(|s| s.ephemeral_containers.as_ref())
        .map(Vec::len);
    assert_eq!(count, Some(2));

    // debugger2 fails and stays failed: ephemeral containers never restart,
    // and their exit does not fail the pod.
    let pod = env
        .wait_pod(name, "debugger2 terminated", |p| {
            ephemeral_status(p, "debugger2").and_then(exit_code) == Some(3)
        })
        .await?;
    assert_eq!(phase(&pod), "Running");
    assert_eq!(condition(&pod, "Ready").as_deref(), Some("True"));
    let names: Vec<String> = pod
        .status
        .as_ref()
        .and_then(|s| s.ephemeral_container_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(names, ["debugger", "debugger2"]);
    // A later sync, one that starts a third ephemeral container, leaves
    // the exited one alone: still its one instance, still terminated.
    let third = EphemeralContainer {
        name: "debugger3".into(),
        image: Some(BUSYBOX.into()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(vec!["sleep".into(), "10000".into()]),
        ..Default::default()
    };
    let patch = serde_json::json!({ "spec": { "ephemeralContainers": [third] } });
    pods.patch_ephemeral_containers(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await?;
    let again = env
        .wait_pod(name, "debugger3 running", |p| {
            ephemeral_status(p, "debugger3").is_some_and(is_running)
        })
        .await?;
    let first = ephemeral_status(&pod, "debugger2").and_then(|s| s.container_id.clone());
    let now = ephemeral_status(&again, "debugger2");
    assert_eq!(now.and_then(|s| s.container_id.clone()), first);
    assert_eq!(now.and_then(exit_code), Some(3));
    assert_eq!(now.map(|s| s.restart_count), Some(0));
    assert_eq!(instances(&uid, "debugger2").await?.len(), 1);

    // Killed with the pod.
    pods.delete(name, &DeleteParams::default()).await?;
    eventually("the pod gone", || async {
        pods.get_opt(name).await.ok()?.is_none().then_some(())
    })
    .await?;
    assert!(instances(&uid, "debugger").await?.is_empty());
    Ok(())
}

/// `kubectl debug <pod> --image=busybox --target=main -- sh -c ...` with
/// both kubectls: the debug container runs once, in `main`'s PID namespace
/// (its PID 1 is main's `sleep`), and `kubectl logs -c` shows its output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_debug_targets_a_container() -> TestResult {
    let env = Env::start("ephemeral-debug").await?;
    let name = "debugged";
    env.create(busybox_pod(name, &env.node, "Always", "exec sleep 10001"))
        .await?;
    ready(&env, name).await?;
    let pods: Api<Pod> = env.pods();
    let script = "echo from-debug; tr '\\0' ' ' < /proc/1/cmdline; echo";
    for k in Kubectl::both(env.kubeconfig())? {
        let shown = k.bin.display().to_string();
        let before = ephemeral_names(&pods, name).await?;
        let image = format!("--image={BUSYBOX}");
        k.ok(&[
            "debug",
            name,
            &image,
            "--image-pull-policy=IfNotPresent",
            "--target=main",
            "--",
            "sh",
            "-c",
            script,
        ])
        .await?;
        let added: Vec<String> = ephemeral_names(&pods, name)
            .await?
            .into_iter()
            .filter(|n| !before.contains(n))
            .collect();
        let [debugger] = added.as_slice() else {
            return Err(format!("{shown}: added {added:?}").into());
        };
        let pod = env
            .wait_pod(name, "the debug container done", |p| {
                ephemeral_status(p, debugger).and_then(exit_code) == Some(0)
            })
            .await?;
        assert_eq!(phase(&pod), "Running", "{shown}");
        let out = k.ok(&["logs", name, "-c", debugger]).await?;
        assert!(out.contains("from-debug"), "{shown}: {out}");
        assert!(
            out.contains("sleep 10001"),
            "{shown}: the target's processes are not visible: {out}"
        );
    }
    Ok(())
}

async fn ephemeral_names(pods: &Api<Pod>, name: &str) -> TestResult<Vec<String>> {
    let pod = pods.get(name).await?;
    Ok(pod
        .spec
        .and_then(|s| s.ephemeral_containers)
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.name)
        .collect())
}
