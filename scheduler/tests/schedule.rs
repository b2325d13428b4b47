//! End to end: the scheduler against a real in-process API server. Three
//! nodes (one a tainted control plane) are registered with their capacity,
//! pods are created through the API, and the test waits for the scheduler
//! to bind them where upstream would, or to report why it cannot.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const DEADLINE: Duration = Duration::from_secs(30);

async fn start() -> Result<
    (
        tempfile::TempDir,
        apiserver::testing::TestServer,
        kube::Client,
    ),
    Box<dyn std::error::Error>,
> {
    let dir = tempfile::tempdir()?;
    let server = apiserver::testing::spawn(dir.path()).await?;
    let kc = kube::config::Kubeconfig::read_from(&server.kubeconfig)?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await?;
    let client = kube::Client::try_from(config)?;
    Ok((dir, server, client))
}

/// Registers a node with its status, as the node agent would.
async fn create_node(
    client: &kube::Client,
    name: &str,
    cpu: &str,
    labels: Value,
    taints: Value,
) -> TestResult {
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints},
        "status": {
            "capacity": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]
        }
    }))?;
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await?;
    Ok(())
}

async fn create_pod(client: &kube::Client, name: &str, spec: Value) -> TestResult {
    let mut spec = spec;
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "app", "image": "registry.k8s.io/pause:3.10"}]);
    }
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec
    }))?;
    Api::<Pod>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &pod)
        .await?;
    Ok(())
}

fn requests(cpu: &str) -> Value {
    json!([{"name": "app", "image": "registry.k8s.io/pause:3.10",
        "resources": {"requests": {"cpu": cpu, "memory": "128Mi"}}}])
}

/// Polls until the pod is bound; returns its node.
async fn wait_bound(
    client: &kube::Client,
    name: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let start = tokio::time::Instant::now();
    loop {
        let pod = pods.get(name).await?;
        if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
            return Ok(node);
        }
        if start.elapsed() > DEADLINE {
            let conditions = pod.status.and_then(|s| s.conditions);
            return Err(format!("pod {name} not bound in time; conditions: {conditions:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls until a FailedScheduling event for the pod exists; returns it.
async fn wait_failed_event(
    client: &kube::Client,
    name: &str,
) -> Result<Event, Box<dyn std::error::Error>> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let start = tokio::time::Instant::now();
    loop {
        let found = events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .find(|e| {
                e.involved_object.name.as_deref() == Some(name)
                    && e.reason.as_deref() == Some("FailedScheduling")
            });
        if let Some(e) = found {
            return Ok(e);
        }
        if start.elapsed() > DEADLINE {
            return Err(format!("no FailedScheduling event for {name}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls until the pod reports PodScheduled=False; returns (reason, message).
async fn wait_unschedulable_condition(
    client: &kube::Client,
    name: &str,
) -> Result<(String, String), Box<dyn std::error::Error>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let start = tokio::time::Instant::now();
    loop {
        let pod = pods.get(name).await?;
        let cond = pod
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
            });
        if let Some(c) = cond {
            return Ok((c.reason.unwrap_or_default(), c.message.unwrap_or_default()));
        }
        if start.elapsed() > DEADLINE {
            return Err(format!("pod {name} has no PodScheduled=False condition").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const CONTROL_PLANE_TAINT: &str = "node-role.kubernetes.io/control-plane";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_pods_and_reports_unschedulable_ones() -> TestResult {
    let (_dir, _server, client) = start().await?;
    create_node(
        &client,
        "control-plane",
        "4",
        json!({"kubernetes.io/hostname": "control-plane", CONTROL_PLANE_TAINT: ""}),
        json!([{"key": CONTROL_PLANE_TAINT, "effect": "NoSchedule"}]),
    )
    .await?;
    create_node(&client, "worker-a", "2", json!({"disk": "ssd"}), json!([])).await?;
    create_node(&client, "worker-b", "4", json!({"disk": "hdd"}), json!([])).await?;

    tokio::spawn(scheduler::run(client.clone(), scheduler::Config::default()));

    // nodeSelector picks the only ssd node.
    create_pod(
        &client,
        "ssd",
        json!({"nodeSelector": {"disk": "ssd"}, "containers": requests("100m")}),
    )
    .await?;
    assert_eq!(wait_bound(&client, "ssd").await?, "worker-a");

    // Tolerating the taint and naming the node by matchFields.
    create_pod(
        &client,
        "on-control-plane",
        json!({
            "tolerations": [{"key": CONTROL_PLANE_TAINT, "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": ["control-plane"]}]}]}}}
        }),
    )
    .await?;
    assert_eq!(
        wait_bound(&client, "on-control-plane").await?,
        "control-plane"
    );

    // 3 cpu only fits the untainted 4-cpu worker.
    create_pod(&client, "big", json!({"containers": requests("3")})).await?;
    assert_eq!(wait_bound(&client, "big").await?, "worker-b");

    // Now 3 more cpu fit nowhere: worker-a is too small, worker-b is full
    // of equal-priority pods, the control plane is tainted.
    create_pod(&client, "huge", json!({"containers": requests("3")})).await?;
    let want = "0/3 nodes are available: 1 node(s) had untolerated taint \
        {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. no new claims to deallocate, \
        preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, \
        2 Preemption is not helpful for scheduling.";
    let event = wait_failed_event(&client, "huge").await?;
    assert_eq!(event.message.as_deref(), Some(want));
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(
        event.reporting_component.as_deref(),
        Some("default-scheduler")
    );
    assert_eq!(
        event.source.as_ref().and_then(|s| s.component.as_deref()),
        Some("default-scheduler")
    );
    assert_eq!(event.involved_object.kind.as_deref(), Some("Pod"));
    let (reason, message) = wait_unschedulable_condition(&client, "huge").await?;
    assert_eq!(reason, "Unschedulable");
    assert_eq!(message, want);

    // Deleting the pod that holds worker-b's cpu makes room: the pending pod
    // is retried on that event and lands there.
    Api::<Pod>::namespaced(client.clone(), "default")
        .delete("big", &DeleteParams::default().grace_period(0))
        .await?;
    assert_eq!(wait_bound(&client, "huge").await?, "worker-b");
    // The binding flips the condition the scheduler had set to False.
    let huge = Api::<Pod>::namespaced(client.clone(), "default")
        .get("huge")
        .await?;
    let scheduled = huge
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .map(|c| c.status);
    assert_eq!(scheduled.as_deref(), Some("True"));

    // Successful bindings are announced with a Scheduled event.
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let scheduled = events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .find(|e| {
            e.involved_object.name.as_deref() == Some("ssd")
                && e.reason.as_deref() == Some("Scheduled")
        })
        .ok_or("no Scheduled event for ssd")?;
    assert_eq!(
        scheduled.message.as_deref(),
        Some("Successfully assigned default/ssd to worker-a")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn higher_priority_pod_preempts_lower_priority_one() -> TestResult {
    let (_dir, _server, client) = start().await?;
    create_node(&client, "only", "2", json!({}), json!([])).await?;
    tokio::spawn(scheduler::run(client.clone(), scheduler::Config::default()));

    // Priority admission gives a pod its class's value (and refuses a
    // `spec.priority` of its own that differs).
    let classes: Api<k8s_openapi::api::scheduling::v1::PriorityClass> = Api::all(client.clone());
    let class: k8s_openapi::api::scheduling::v1::PriorityClass =
        serde_json::from_value(json!({"metadata": {"name": "high"}, "value": 1000}))?;
    classes.create(&PostParams::default(), &class).await?;
    create_pod(&client, "low", json!({"containers": requests("1500m")})).await?;
    assert_eq!(wait_bound(&client, "low").await?, "only");

    create_pod(
        &client,
        "high",
        json!({"priorityClassName": "high", "containers": requests("1")}),
    )
    .await?;
    // The victim is evicted (deleted, or terminating if the server keeps
    // bound pods for their grace period) and the preemptor is nominated to
    // (or already bound on) the node.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let start = tokio::time::Instant::now();
    loop {
        let low = pods.get_opt("low").await?;
        let evicted = low
            .as_ref()
            .is_none_or(|p| p.metadata.deletion_timestamp.is_some());
        let high = pods.get("high").await?;
        let nominated = high.status.and_then(|s| s.nominated_node_name);
        let bound = high.spec.and_then(|s| s.node_name);
        if evicted && (nominated.as_deref() == Some("only") || bound.as_deref() == Some("only")) {
            break;
        }
        if start.elapsed() > DEADLINE {
            return Err(format!(
                "no preemption: victim evicted={evicted}, nominated={nominated:?}, bound={bound:?}"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let preempted = events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .any(|e| {
            e.involved_object.name.as_deref() == Some("low")
                && e.reason.as_deref() == Some("Preempted")
        });
    assert!(preempted, "no Preempted event on the victim");

    // Playing the node agent: the victim's containers stopped, so its
    // deletion completes. The freed room goes to the preemptor.
    match pods
        .delete("low", &DeleteParams::default().grace_period(0))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    assert_eq!(wait_bound(&client, "high").await?, "only");
    Ok(())
}

/// Many pods at once: every pod gets bound, and because usage is assumed
/// before bindings are confirmed, no node receives more than fits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_many_pods_without_overcommitting() -> TestResult {
    use futures::{StreamExt, TryStreamExt};

    let (_dir, _server, client) = start().await?;
    for i in 0..20 {
        create_node(&client, &format!("node-{i}"), "2", json!({}), json!([])).await?;
    }
    tokio::spawn(scheduler::run(client.clone(), scheduler::Config::default()));

    // 20 nodes × 4 pods of 500m = exactly 80 pods fit.
    futures::stream::iter(0..80)
        .map(|i| {
            let client = client.clone();
            async move {
                create_pod(
                    &client,
                    &format!("load-{i}"),
                    json!({"containers": requests("500m")}),
                )
                .await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .map_err(|e| e.to_string())?;

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let start = tokio::time::Instant::now();
    let bound = loop {
        let list = pods.list(&ListParams::default()).await?.items;
        let bound: Vec<String> = list
            .iter()
            .filter_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
            .collect();
        if bound.len() == 80 {
            break bound;
        }
        if start.elapsed() > DEADLINE {
            return Err(format!("only {} of 80 pods bound", bound.len()).into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut per_node = std::collections::HashMap::<String, usize>::new();
    for n in bound {
        *per_node.entry(n).or_default() += 1;
    }
    assert!(
        per_node.values().all(|c| *c == 4),
        "uneven or overcommitted: {per_node:?}"
    );

    // One more cannot fit anywhere.
    create_pod(&client, "extra", json!({"containers": requests("500m")})).await?;
    let event = wait_failed_event(&client, "extra").await?;
    assert_eq!(
        event.message.as_deref(),
        Some(
            "0/20 nodes are available: 20 Insufficient cpu. no new claims to deallocate, \
             preemption: 0/20 nodes are available: 20 No preemption victims found for incoming pod."
        )
    );
    Ok(())
}

/// A second scheduler name is served by its own profile; its events carry
/// that name. Pods for schedulers nobody runs are left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_additional_profiles() -> TestResult {
    let (_dir, _server, client) = start().await?;
    create_node(&client, "n1", "2", json!({}), json!([])).await?;
    let config = scheduler::Config {
        additional_scheduler_names: vec!["second-scheduler".into()],
        ..Default::default()
    };
    tokio::spawn(scheduler::run(client.clone(), config));

    create_pod(&client, "other", json!({"schedulerName": "someone-else"})).await?;
    create_pod(
        &client,
        "second",
        json!({"schedulerName": "second-scheduler"}),
    )
    .await?;
    assert_eq!(wait_bound(&client, "second").await?, "n1");
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let start = tokio::time::Instant::now();
    loop {
        let scheduled = events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .find(|e| {
                e.involved_object.name.as_deref() == Some("second")
                    && e.reason.as_deref() == Some("Scheduled")
            });
        if let Some(e) = scheduled {
            assert_eq!(e.reporting_component.as_deref(), Some("second-scheduler"));
            break;
        }
        if start.elapsed() > DEADLINE {
            return Err("no Scheduled event for second".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Created first and never queued: still pending once the later pod is bound.
    let other = Api::<Pod>::namespaced(client.clone(), "default")
        .get("other")
        .await?;
    assert_eq!(other.spec.and_then(|s| s.node_name), None);
    Ok(())
}

/// Required pod anti-affinity on the hostname puts replicas on distinct
/// nodes; a replica more than there are nodes cannot be placed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_anti_affinity_spreads_replicas() -> TestResult {
    let (_dir, _server, client) = start().await?;
    for n in ["n1", "n2"] {
        create_node(
            &client,
            n,
            "2",
            json!({"kubernetes.io/hostname": n}),
            json!([]),
        )
        .await?;
    }
    tokio::spawn(scheduler::run(client.clone(), scheduler::Config::default()));
    let spec = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "web"}}}]}}});
    let mut nodes = Vec::new();
    for i in 0..2 {
        let name = format!("web-{i}");
        create_labelled_pod(&client, &name, json!({"app": "web"}), spec.clone()).await?;
        nodes.push(wait_bound(&client, &name).await?);
    }
    nodes.sort();
    assert_eq!(nodes, vec!["n1", "n2"]);

    create_labelled_pod(&client, "web-2", json!({"app": "web"}), spec).await?;
    let event = wait_failed_event(&client, "web-2").await?;
    assert_eq!(
        event.message.as_deref(),
        Some(
            "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules. no new claims \
             to deallocate, preemption: 0/2 nodes are available: 2 No preemption victims found for \
             incoming pod."
        )
    );
    Ok(())
}

async fn create_labelled_pod(
    client: &kube::Client,
    name: &str,
    labels: Value,
    spec: Value,
) -> TestResult {
    let mut spec = spec;
    spec["containers"] = json!([{"name": "app", "image": "registry.k8s.io/pause:3.10"}]);
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": spec
    }))?;
    Api::<Pod>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &pod)
        .await?;
    Ok(())
}
