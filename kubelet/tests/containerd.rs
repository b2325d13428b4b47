//! End-to-end tests of the kubelet on a real containerd: an in-process API
//! server, the kubelet under test, and pods bound by `spec.nodeName` (no
//! scheduler). containerd is started with `hack/containerd.sh start` and the
//! test images come from `hack/conformance images` when they are missing.
//! Every test uses its own node name; a guard removes the sandboxes it
//! created even when the test fails.

mod support;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Container, Node};
use kube::api::{Api, DeleteParams};
use kubelet::cri::{Runtime, v1};
use support::{
    BUSYBOX, Env, POD_CIDR, SOCKET, TestResult, busybox_pod, condition, eventually, http_get,
    main_status, phase,
};

#[tokio::test(flavor = "multi_thread")]
async fn node_registers_ready_with_machine_facts() -> TestResult {
    let env = Env::start("kubelet-test-node").await?;
    let nodes: Api<Node> = Api::all(env.client.clone());
    let node = eventually("node Ready", || async {
        let n = nodes.get_opt("kubelet-test-node").await.ok().flatten()?;
        let ready = n
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then_some(n)
    })
    .await?;
    let status = node.status.clone().unwrap_or_default();
    let capacity = status.capacity.unwrap_or_default();
    let cpus = std::thread::available_parallelism()?.get().to_string();
    assert_eq!(capacity.get("cpu").map(|q| q.0.clone()), Some(cpus));
    assert_eq!(capacity.get("pods").map(|q| q.0.as_str()), Some("110"));
    assert!(capacity.get("memory").is_some_and(|q| q.0.ends_with("Ki")));
    assert!(capacity.contains_key("ephemeral-storage"));
    let info = status.node_info.unwrap_or_default();
    assert!(
        info.container_runtime_version.starts_with("containerd://"),
        "{info:?}"
    );
    assert!(info.kubelet_version.starts_with("v1.34."));
    assert_eq!(info.operating_system, "linux");
    assert!(!info.kernel_version.is_empty());
    let images = status.images.unwrap_or_default();
    assert!(
        images
            .iter()
            .flat_map(|i| i.names.iter().flatten())
            .any(|n| n == BUSYBOX),
        "busybox not among the node's images"
    );
    let port = status
        .daemon_endpoints
        .and_then(|d| d.kubelet_endpoint)
        .map(|e| e.port);
    assert!(port.is_some_and(|p| p > 0));
    let labels = node.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get("kubernetes.io/hostname").map(String::as_str),
        Some("kubelet-test-node")
    );
    assert_eq!(
        labels.get("kubernetes.io/os").map(String::as_str),
        Some("linux")
    );
    assert_eq!(
        node.spec.and_then(|s| s.pod_cidr).as_deref(),
        Some(POD_CIDR)
    );
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), "kube-node-lease");
    eventually("lease", || async {
        leases.get_opt("kubelet-test-node").await.ok().flatten()
    })
    .await?;
    // /healthz of the kubelet's server.
    let port = port.unwrap_or_default();
    let body = http_get(port, "/healthz").await?;
    assert_eq!(body, "ok");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn completed_and_failed_pods_reach_their_phases() -> TestResult {
    let env = Env::start("kubelet-test-exit").await?;
    env.create(busybox_pod(
        "ok",
        &env.node,
        "Never",
        "echo hello from ok; exit 0",
    ))
    .await?;
    env.create(busybox_pod("bad", &env.node, "Never", "exit 3"))
        .await?;
    let ok = env
        .wait_pod("ok", "ok Succeeded", |p| phase(p) == "Succeeded")
        .await?;
    let terminated = main_status(&ok)
        .and_then(|s| s.state.clone())
        .and_then(|s| s.terminated)
        .ok_or("no terminated state")?;
    assert_eq!(
        (terminated.exit_code, terminated.reason.as_deref()),
        (0, Some("Completed"))
    );
    let cs = main_status(&ok).ok_or("no container status")?;
    assert!(
        cs.container_id
            .as_deref()
            .is_some_and(|id| id.starts_with("containerd://"))
    );
    assert!(!cs.image_id.is_empty());
    assert_eq!(condition(&ok, "Ready").as_deref(), Some("False"));
    assert_eq!(condition(&ok, "Initialized").as_deref(), Some("True"));
    let status = ok.status.clone().unwrap_or_default();
    assert!(status.start_time.is_some());
    assert_eq!(status.host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));

    let bad = env
        .wait_pod("bad", "bad Failed", |p| phase(p) == "Failed")
        .await?;
    let terminated = main_status(&bad)
        .and_then(|s| s.state.clone())
        .and_then(|s| s.terminated)
        .ok_or("no terminated state")?;
    assert_eq!(
        (terminated.exit_code, terminated.reason.as_deref()),
        (3, Some("Error"))
    );

    // The container's log through the kubelet's HTTP server.
    let nodes: Api<Node> = Api::all(env.client.clone());
    let port = nodes
        .get(&env.node)
        .await?
        .status
        .and_then(|s| s.daemon_endpoints)
        .and_then(|d| d.kubelet_endpoint)
        .map(|e| e.port)
        .ok_or("no kubelet port")?;
    let log = http_get(port, "/containerLogs/default/ok/main").await?;
    assert_eq!(log, "hello from ok\n");

    // The container's life as events on the pod, found the way e2e's
    // `WaitForErrorEventOrSuccess` searches for them (by involved object).
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(env.client.clone(), "default");
    let uid = ok.metadata.uid.clone().unwrap_or_default();
    let selector =
        format!("involvedObject.name=ok,involvedObject.kind=Pod,involvedObject.uid={uid}");
    let reasons = support::eventually("Pulled, Created and Started events", || async {
        let list = events
            .list(&kube::api::ListParams::default().fields(&selector))
            .await
            .ok()?;
        let reasons: Vec<String> = list.items.into_iter().filter_map(|e| e.reason).collect();
        ["Pulled", "Created", "Started"]
            .iter()
            .all(|r| reasons.iter().any(|x| x == r))
            .then_some(reasons)
    })
    .await?;
    assert!(reasons.iter().any(|r| r == "Started"), "{reasons:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn running_pod_is_ready_with_an_ip_and_deletion_removes_it() -> TestResult {
    let env = Env::start("kubelet-test-run").await?;
    let mut pod = busybox_pod(
        "web",
        &env.node,
        "Always",
        "trap 'exit 0' TERM; sleep 3600 & wait",
    );
    if let Some(spec) = pod.spec.as_mut() {
        spec.init_containers = Some(vec![Container {
            name: "init".into(),
            image: Some(BUSYBOX.into()),
            image_pull_policy: Some("IfNotPresent".into()),
            command: Some(vec!["true".into()]),
            ..Default::default()
        }]);
    }
    let created = env.create(pod).await?;
    let uid = created.metadata.uid.clone().unwrap_or_default();
    let running = env
        .wait_pod("web", "web Running and Ready", |p| {
            phase(p) == "Running" && condition(p, "Ready").as_deref() == Some("True")
        })
        .await?;
    for ty in [
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
    ] {
        assert_eq!(condition(&running, ty).as_deref(), Some("True"), "{ty}");
    }
    let ip: Ipv4Addr = running
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .ok_or("no pod IP")?
        .parse()?;
    let o = ip.octets();
    assert_eq!(
        (o[0], o[1], o[2]),
        (10, 244, 0),
        "pod IP {ip} outside {POD_CIDR}"
    );
    let init = running
        .status
        .as_ref()
        .and_then(|s| s.init_container_statuses.as_ref())
        .and_then(|s| s.first())
        .and_then(|s| s.state.clone())
        .and_then(|s| s.terminated)
        .ok_or("init container not terminated")?;
    assert_eq!(init.reason.as_deref(), Some("Completed"));
    // A completed init container is reported ready, as upstream's are
    // ("[sig-node] InitContainer should invoke init containers on a
    // RestartAlways pod [Conformance]" checks it).
    let init_ready = running
        .status
        .as_ref()
        .and_then(|s| s.init_container_statuses.as_ref())
        .and_then(|s| s.first())
        .map(|s| s.ready);
    assert_eq!(init_ready, Some(true));

    env.pods().delete("web", &DeleteParams::default()).await?;
    eventually("web removed", || async {
        env.pods()
            .get_opt("web")
            .await
            .ok()
            .map(|p| p.is_none())
            .and_then(|gone| gone.then_some(()))
    })
    .await?;
    let runtime = Runtime::connect(Path::new(SOCKET)).await?;
    let left = runtime
        .runtime
        .clone()
        .list_containers(v1::ListContainersRequest {
            filter: Some(v1::ContainerFilter {
                label_selector: HashMap::from([("io.kubernetes.pod.uid".to_string(), uid)]),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .containers;
    assert!(left.is_empty(), "containers left: {left:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn absent_image_reports_pull_errors() -> TestResult {
    let env = Env::start("kubelet-test-pull").await?;
    let mut pod = busybox_pod("absent", &env.node, "Always", "true");
    if let Some(c) = pod.spec.as_mut().and_then(|s| s.containers.first_mut()) {
        c.image = Some("127.0.0.1:1/ironkube/absent:v1".into());
    }
    env.create(pod).await?;
    let pod = env
        .wait_pod("absent", "ErrImagePull", |p| {
            let reason = main_status(p)
                .and_then(|s| s.state.as_ref())
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.clone());
            matches!(reason.as_deref(), Some("ErrImagePull" | "ImagePullBackOff"))
        })
        .await?;
    assert_eq!(phase(&pod), "Pending");
    env.wait_pod("absent", "ImagePullBackOff", |p| {
        main_status(p)
            .and_then(|s| s.state.as_ref())
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref())
            == Some("ImagePullBackOff")
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn crashing_container_backs_off() -> TestResult {
    let env = Env::start("kubelet-test-crash").await?;
    env.create(busybox_pod("crash", &env.node, "Always", "exit 1"))
        .await?;
    let pod = env
        .wait_pod("crash", "CrashLoopBackOff", |p| {
            main_status(p)
                .and_then(|s| s.state.as_ref())
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref())
                == Some("CrashLoopBackOff")
        })
        .await?;
    let cs = main_status(&pod).ok_or("no status")?;
    assert!(cs.restart_count >= 1);
    assert_eq!(
        cs.last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| t.exit_code),
        Some(1)
    );
    assert_eq!(phase(&pod), "Running");
    Ok(())
}
