//! End-to-end tests of the kwok-style fake node against a real in-process API
//! server: nodes register and heartbeat, and bound pods go through their
//! lifecycle without a scheduler or a container runtime.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Container, Node, Pod, PodReadinessGate, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kubelet::fake::{FakeNodeConfig, run};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `check` until it yields a value or the deadline passes.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> Result<T, Box<dyn std::error::Error>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if start.elapsed() > DEADLINE {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn config(names: &[&str]) -> FakeNodeConfig {
    let mut config = FakeNodeConfig::new(names.iter().map(|n| n.to_string()).collect());
    config.lease_interval = Duration::from_secs(1);
    config.status_interval = Duration::from_secs(1);
    config
}

fn pod(name: &str, node: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some(node.into()),
            containers: vec![Container {
                name: "app".into(),
                image: Some("registry.k8s.io/pause:3.10".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

fn condition(pod: &Pod, ty: &str) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == ty)
        .map(|c| c.status.clone())
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

async fn client(kubeconfig: &std::path::Path) -> Result<kube::Client, Box<dyn std::error::Error>> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await?;
    Ok(kube::Client::try_from(config)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_register_ready_and_renew_leases() -> TestResult {
    let dir = tempfile::tempdir()?;
    let server = apiserver::testing::spawn(dir.path()).await?;
    let client = client(&server.kubeconfig).await?;
    let fake = tokio::spawn(run(client.clone(), config(&["fake-node-0", "fake-node-1"])));

    let nodes: Api<Node> = Api::all(client.clone());
    let mut cidrs = BTreeSet::new();
    for name in ["fake-node-0", "fake-node-1"] {
        let node = eventually("node Ready", || async {
            let node = nodes.get_opt(name).await.ok()??;
            let ready = node
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            ready.then_some(node)
        })
        .await?;
        let status = node.status.clone().unwrap_or_default();
        let cap = status.capacity.clone().unwrap_or_default();
        assert_eq!(cap.get("cpu").map(|q| q.0.as_str()), Some("32"));
        assert_eq!(cap.get("memory").map(|q| q.0.as_str()), Some("256Gi"));
        assert_eq!(cap.get("pods").map(|q| q.0.as_str()), Some("110"));
        assert_eq!(status.allocatable, status.capacity);
        let labels = node.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get("kubernetes.io/hostname").map(String::as_str),
            Some(name)
        );
        assert_eq!(labels.get("type").map(String::as_str), Some("kwok"));
        let annotations = node.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            annotations.get("kwok.x-k8s.io/node").map(String::as_str),
            Some("fake")
        );
        let info = status.node_info.clone().unwrap_or_default();
        assert_eq!(info.kubelet_version, "v1.34.0-fake");
        let cidr = node
            .spec
            .as_ref()
            .and_then(|s| s.pod_cidr.clone())
            .unwrap_or_default();
        assert!(cidr.starts_with("10.244."), "pod CIDR {cidr}");
        cidrs.insert(cidr);
    }
    assert_eq!(cidrs.len(), 2, "each node has its own pod CIDR");

    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let first = eventually("lease", || async {
        let lease = leases.get_opt("fake-node-0").await.ok()??;
        lease.spec?.renew_time
    })
    .await?;
    let lease = leases.get("fake-node-0").await?;
    let spec = lease.spec.clone().unwrap_or_default();
    assert_eq!(spec.holder_identity.as_deref(), Some("fake-node-0"));
    assert_eq!(spec.lease_duration_seconds, Some(40));
    eventually("lease renewal", || async {
        let renewed = leases.get("fake-node-0").await.ok()?.spec?.renew_time?;
        (renewed.0 > first.0).then_some(())
    })
    .await?;

    // The Ready condition's heartbeat moves on; its transition time does not.
    let ready = |node: Node| {
        node.status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "Ready")
    };
    let before = ready(nodes.get("fake-node-1").await?).ok_or("no Ready")?;
    eventually("node heartbeat", || async {
        let now = ready(nodes.get("fake-node-1").await.ok()?)?;
        (now.last_heartbeat_time > before.last_heartbeat_time).then_some(now)
    })
    .await
    .map(|now| assert_eq!(now.last_transition_time, before.last_transition_time))?;
    fake.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bound_pods_run_complete_and_delete() -> TestResult {
    let dir = tempfile::tempdir()?;
    let server = apiserver::testing::spawn(dir.path()).await?;
    let client = client(&server.kubeconfig).await?;
    let fake = tokio::spawn(run(client.clone(), config(&["fake-node-0"])));
    let nodes: Api<Node> = Api::all(client.clone());
    let cidr = eventually("node CIDR", || async {
        nodes.get_opt("fake-node-0").await.ok()??.spec?.pod_cidr
    })
    .await?;
    let prefix = cidr.trim_end_matches("0/24").to_string();

    // A pod bound up front (no scheduler) runs and becomes Ready.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("web", "fake-node-0"))
        .await?;
    let running = eventually("pod Ready", || async {
        let p = pods.get("web").await.ok()?;
        (phase(&p) == Some("Running") && condition(&p, "Ready").as_deref() == Some("True"))
            .then_some(p)
    })
    .await?;
    let status = running.status.clone().unwrap_or_default();
    let ip = status.pod_ip.clone().unwrap_or_default();
    assert!(ip.starts_with(&prefix), "pod IP {ip} in {cidr}");
    assert!(status.host_ip.is_some() && status.start_time.is_some());
    assert_eq!(status.observed_generation, running.metadata.generation);
    for ty in [
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
        "PodScheduled",
    ] {
        assert_eq!(condition(&running, ty).as_deref(), Some("True"), "{ty}");
    }
    let cs = &status.container_statuses.clone().unwrap_or_default()[0];
    assert!(cs.ready && cs.started == Some(true) && cs.restart_count == 0);
    let uid = running.metadata.uid.clone().unwrap_or_default();
    assert_eq!(cs.container_id.clone(), Some(format!("fake://{uid}/app")));

    // A second pod gets a different IP.
    pods.create(&PostParams::default(), &pod("web-2", "fake-node-0"))
        .await?;
    let ip2 = eventually("second pod IP", || async {
        pods.get("web-2").await.ok()?.status?.pod_ip
    })
    .await?;
    assert_ne!(ip, ip2);

    // A Job's pod runs to completion.
    let mut job_pod = pod("job-pod", "fake-node-0");
    job_pod.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        name: "job".into(),
        uid: "00000000-0000-0000-0000-000000000001".into(),
        controller: Some(true),
        ..Default::default()
    }]);
    pods.create(&PostParams::default(), &job_pod).await?;
    let done = eventually("job pod Succeeded", || async {
        let p = pods.get("job-pod").await.ok()?;
        (phase(&p) == Some("Succeeded")).then_some(p)
    })
    .await?;
    let cs = &done
        .status
        .clone()
        .unwrap_or_default()
        .container_statuses
        .unwrap_or_default()[0];
    let terminated = cs
        .state
        .clone()
        .and_then(|s| s.terminated)
        .ok_or("not terminated")?;
    assert_eq!(terminated.exit_code, 0);
    assert_eq!(terminated.reason.as_deref(), Some("Completed"));

    // A graceful delete (30 s) of a running pod completes promptly.
    pods.delete(
        "web",
        &DeleteParams {
            grace_period_seconds: Some(30),
            ..Default::default()
        },
    )
    .await?;
    eventually("pod gone", || async {
        match pods.get_opt("web").await {
            Ok(None) => Some(()),
            _ => None,
        }
    })
    .await?;

    // Readiness gates hold Ready back until their condition (set by some
    // other controller, e.g. a load balancer's) is True.
    let mut gated = pod("gated", "fake-node-0");
    if let Some(spec) = gated.spec.as_mut() {
        spec.readiness_gates = Some(vec![PodReadinessGate {
            condition_type: "example.com/lb-ready".into(),
        }]);
    }
    pods.create(&PostParams::default(), &gated).await?;
    eventually("gated pod running, not ready", || async {
        let p = pods.get("gated").await.ok()?;
        (phase(&p) == Some("Running") && condition(&p, "Ready").as_deref() == Some("False"))
            .then_some(())
    })
    .await?;
    // The load balancer controller's part, not the node's.
    pods.patch_status(
        "gated",
        &PatchParams::default(),
        &Patch::Strategic(serde_json::json!({
            "status": { "conditions": [
                { "type": "example.com/lb-ready", "status": "True" }
            ] }
        })),
    )
    .await?;
    eventually("gated pod ready", || async {
        let p = pods.get("gated").await.ok()?;
        (condition(&p, "Ready").as_deref() == Some("True")).then_some(())
    })
    .await?;

    // A pod held by a finalizer is stopped (terminal phase) and stays until
    // the finalizer goes.
    let mut held = pod("held", "fake-node-0");
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    pods.create(&PostParams::default(), &held).await?;
    eventually("held pod running", || async {
        (phase(&pods.get("held").await.ok()?) == Some("Running")).then_some(())
    })
    .await?;
    pods.delete("held", &DeleteParams::default()).await?;
    let stopped = eventually("held pod stopped", || async {
        let p = pods.get("held").await.ok()?;
        (phase(&p) == Some("Failed")).then_some(p)
    })
    .await?;
    let cs = &stopped
        .status
        .clone()
        .unwrap_or_default()
        .container_statuses
        .unwrap_or_default()[0];
    assert!(
        cs.state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .is_some()
    );
    pods.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "metadata": { "finalizers": null } })),
    )
    .await?;
    eventually("held pod gone", || async {
        matches!(pods.get_opt("held").await, Ok(None)).then_some(())
    })
    .await?;

    // After a restart, existing pods keep their IPs and new ones avoid them.
    fake.abort();
    let _ = fake.await;
    let fake = tokio::spawn(run(client.clone(), config(&["fake-node-0"])));
    let node = nodes.get("fake-node-0").await?;
    assert_eq!(node.spec.and_then(|s| s.pod_cidr), Some(cidr));
    let mut seen = BTreeSet::from([ip2.clone()]);
    for i in 0..3 {
        let name = format!("after-restart-{i}");
        pods.create(&PostParams::default(), &pod(&name, "fake-node-0"))
            .await?;
        let ip = eventually("pod IP after restart", || async {
            pods.get(&name).await.ok()?.status?.pod_ip
        })
        .await?;
        assert!(seen.insert(ip.clone()), "IP {ip} handed out twice");
    }
    assert_eq!(
        pods.get("web-2").await?.status.and_then(|s| s.pod_ip),
        Some(ip2)
    );
    fake.abort();
    Ok(())
}
