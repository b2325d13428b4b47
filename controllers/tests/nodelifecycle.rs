//! End-to-end: the node lifecycle controller against a real in-process API
//! server, with the scheduler, fake nodes and a short grace period. A node
//! "dies" when the test stops its fake node (which then renews no Lease);
//! a node that reports Ready=False is a Node the test registers and plays
//! the kubelet of.

mod common;

use std::time::Duration;

use common::{Cluster, TestResult, eventually, holds_for};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kubelet::fake::FakeNodeConfig;
use serde_json::json;

const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const NOT_READY: &str = "node.kubernetes.io/not-ready";
const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

fn fast_nodes(names: &[&str]) -> FakeNodeConfig {
    let mut config = FakeNodeConfig::new(names.iter().map(|n| n.to_string()).collect());
    config.lease_interval = Duration::from_millis(500);
    config
}

fn lifecycle_config() -> controllers::nodelifecycle::Config {
    controllers::nodelifecycle::Config {
        node_monitor_period: Duration::from_millis(200),
        node_monitor_grace_period: Duration::from_secs(3),
        node_startup_grace_period: Duration::from_secs(3),
        ..Default::default()
    }
}

fn taints(node: &Node) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|ts| {
            ts.iter()
                .map(|t| (t.key.clone(), t.effect.clone()))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn pair(key: &str, effect: &str) -> (String, String) {
    (key.to_string(), effect.to_string())
}

fn condition<'a>(
    pod: &'a Pod,
    type_: &str,
) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

fn pod_on(name: &str, node: &str, toleration_seconds: Option<i64>) -> TestResult<Pod> {
    let mut toleration = json!({"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"});
    if let Some(s) = toleration_seconds {
        toleration["tolerationSeconds"] = json!(s);
    }
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "tolerations": [toleration],
            "containers": [{"name": "c", "image": "busybox"}]
        }
    }))?)
}

async fn wait_node(
    nodes: &Api<Node>,
    name: &str,
    what: &str,
    check: impl Fn(&Node) -> bool,
) -> Node {
    eventually(what, || async {
        let n = nodes.get(name).await.ok()?;
        check(&n).then_some(n)
    })
    .await
}

/// A node whose fake kubelet stops goes Unknown and gets the unreachable
/// taints; its pods go unready, a pod tolerating it for 0 s is evicted at
/// once (and its ReplicaSet's replacement runs on the other node), one
/// tolerating for 2 s after that, one tolerating forever stays. When the
/// node comes back, the taints go. Cordoning adds the unschedulable taint.
#[tokio::test]
async fn silent_node_is_tainted_and_its_pods_evicted() -> TestResult {
    let cluster = Cluster::with_fake_node_config(fast_nodes(&["node-0"])).await?;
    cluster.run(|c| controllers::nodelifecycle::run_with(c, lifecycle_config()));
    cluster.run(controllers::replicaset::run);
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let pods: Api<Pod> = cluster.api();
    let doomed = tokio::spawn(kubelet::fake::run(
        cluster.client.clone(),
        fast_nodes(&["doomed"]),
    ));
    wait_node(&nodes, "doomed", "doomed registered Ready", |n| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    })
    .await;

    // Cordon node-0 so the ReplicaSet's pod lands on the doomed node.
    let cordon = |on: bool| json!({"spec": {"unschedulable": on}});
    nodes
        .patch(
            "node-0",
            &PatchParams::default(),
            &Patch::Merge(cordon(true)),
        )
        .await?;
    wait_node(&nodes, "node-0", "the unschedulable taint", |n| {
        taints(n) == [pair(UNSCHEDULABLE, "NoSchedule")]
    })
    .await;
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}],
                                  // Admission would give it upstream's 300 s.
                                  "tolerations": [{"key": UNREACHABLE, "operator": "Exists",
                                                   "effect": "NoExecute", "tolerationSeconds": 0}]}}
        }
    }))?;
    let rss: Api<ReplicaSet> = cluster.api();
    rss.create(&PostParams::default(), &rs).await?;
    let lp = ListParams::default().labels("app=web");
    let first = eventually("the web pod running on doomed", || async {
        let list = pods.list(&lp).await.ok()?;
        list.items.into_iter().find(|p| {
            p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("doomed")
                && condition(p, "Ready").is_some_and(|c| c.status == "True")
        })
    })
    .await;
    nodes
        .patch(
            "node-0",
            &PatchParams::default(),
            &Patch::Merge(cordon(false)),
        )
        .await?;
    wait_node(&nodes, "node-0", "no taints after uncordon", |n| {
        taints(n).is_empty()
    })
    .await;
    pods.create(&PostParams::default(), &pod_on("short", "doomed", Some(2))?)
        .await?;
    pods.create(&PostParams::default(), &pod_on("forever", "doomed", None)?)
        .await?;
    for name in ["short", "forever"] {
        eventually(&format!("{name} ready"), || async {
            let p = pods.get(name).await.ok()?;
            condition(&p, "Ready")
                .is_some_and(|c| c.status == "True")
                .then_some(())
        })
        .await;
    }

    // The node dies.
    doomed.abort();
    let node = wait_node(&nodes, "doomed", "doomed unreachable and tainted", |n| {
        taints(n)
            == [
                pair(UNREACHABLE, "NoExecute"),
                pair(UNREACHABLE, "NoSchedule"),
            ]
    })
    .await;
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .cloned()
        .ok_or("no Ready condition")?;
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("Unknown", Some("NodeStatusUnknown"))
    );
    let tainted_at = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .and_then(|ts| ts.iter().find(|t: &&Taint| t.effect == "NoExecute"))
        .and_then(|t| t.time_added.as_ref())
        .map(|t| t.0.as_second())
        .ok_or("NoExecute taint without timeAdded")?;

    // The pod tolerating 0 s goes at once and is replaced on node-0.
    let first_name = first.metadata.name.clone().unwrap_or_default();
    eventually("the web pod evicted", || async {
        let p = pods.get(&first_name).await.ok()?;
        p.metadata.deletion_timestamp.is_some().then_some(())
    })
    .await;
    eventually("a replacement running on node-0", || async {
        let list = pods.list(&lp).await.ok()?;
        list.items
            .iter()
            .any(|p| {
                p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("node-0")
                    && condition(p, "Ready").is_some_and(|c| c.status == "True")
            })
            .then_some(())
    })
    .await;

    // The 2 s toleration runs out; the evicted pod says why.
    let short = eventually("short evicted", || async {
        let p = pods.get("short").await.ok()?;
        p.metadata.deletion_timestamp.is_some().then_some(p)
    })
    .await;
    let disruption = condition(&short, "DisruptionTarget").ok_or("no DisruptionTarget")?;
    assert_eq!(disruption.reason.as_deref(), Some("DeletionByTaintManager"));
    let grace = short.metadata.deletion_grace_period_seconds.unwrap_or(0);
    let evicted_at = short
        .metadata
        .deletion_timestamp
        .as_ref()
        .map_or(0, |t| t.0.as_second())
        - grace;
    assert!(
        evicted_at >= tainted_at + 2,
        "evicted at {evicted_at}, tainted at {tainted_at}"
    );

    // The pod tolerating forever stays, marked not ready.
    let forever = pods.get("forever").await?;
    assert_eq!(
        condition(&forever, "Ready").map(|c| c.status.as_str()),
        Some("False")
    );
    holds_for("forever stays", Duration::from_secs(1), || async {
        match pods.get("forever").await {
            Ok(p) if p.metadata.deletion_timestamp.is_none() => Ok(()),
            other => Err(format!("forever went: {other:?}")),
        }
    })
    .await;

    // The node comes back: Ready again, taints gone.
    tokio::spawn(kubelet::fake::run(
        cluster.client.clone(),
        fast_nodes(&["doomed"]),
    ));
    wait_node(&nodes, "doomed", "doomed back without taints", |n| {
        taints(n).is_empty()
    })
    .await;
    Ok(())
}

/// A node that reports Ready=False (a fake node told so through its
/// annotation, while it keeps renewing its Lease) gets the not-ready taints,
/// and loses them when it reports Ready again.
#[tokio::test]
async fn not_ready_node_gets_not_ready_taints() -> TestResult {
    let mut config = fast_nodes(&["node-0", "sick"]);
    config.status_interval = Duration::from_millis(500);
    let cluster = Cluster::with_fake_node_config(config).await?;
    cluster.run(|c| controllers::nodelifecycle::run_with(c, lifecycle_config()));
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let report_ready =
        |ready: &str| json!({"metadata": {"annotations": {kubelet::fake::READY: ready}}});
    nodes
        .patch(
            "sick",
            &PatchParams::default(),
            &Patch::Merge(report_ready("false")),
        )
        .await?;
    wait_node(&nodes, "sick", "not-ready taints", |n| {
        taints(n) == [pair(NOT_READY, "NoExecute"), pair(NOT_READY, "NoSchedule")]
    })
    .await;
    nodes
        .patch(
            "sick",
            &PatchParams::default(),
            &Patch::Merge(report_ready("true")),
        )
        .await?;
    wait_node(&nodes, "sick", "taints removed once ready", |n| {
        taints(n).is_empty()
    })
    .await;
    Ok(())
}
