//! End-to-end: the pod garbage collector against a real in-process API
//! server, with a short period, a small threshold and a short quarantine.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Cluster, PHASE_AFTER, TestResult, eventually, holds_for};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

fn config(threshold: usize) -> controllers::podgc::Config {
    controllers::podgc::Config {
        terminated_pod_gc_threshold: threshold,
        gc_check_period: Duration::from_millis(200),
        quarantine: Duration::from_secs(1),
    }
}

fn pod(name: &str, extra: serde_json::Value) -> TestResult<Pod> {
    let mut v = json!({
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}
    });
    if let (Some(spec), Some(more)) = (
        v["spec"].as_object_mut(),
        extra.get("spec").and_then(|s| s.as_object()),
    ) {
        for (k, x) in more {
            spec.insert(k.clone(), x.clone());
        }
    }
    if let Some(meta) = extra.get("metadata") {
        for (k, x) in meta.as_object().into_iter().flatten() {
            v["metadata"][k] = x.clone();
        }
    }
    Ok(serde_json::from_value(v)?)
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

async fn names(pods: &Api<Pod>) -> Vec<String> {
    let mut v: Vec<String> = pods
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    v.sort();
    v
}

/// Terminated pods beyond the threshold go, oldest first; running pods stay.
#[tokio::test]
async fn terminated_pods_beyond_the_threshold_are_deleted() -> TestResult {
    let cluster = Cluster::with_fake_nodes(1).await?;
    let pods: Api<Pod> = cluster.api();
    pods.create(&PostParams::default(), &pod("running", json!({}))?)
        .await?;
    for i in 0..4 {
        let p = pod(
            &format!("done-{i}"),
            json!({"metadata": {"annotations": {PHASE_AFTER: "Succeeded"}}}),
        )?;
        pods.create(&PostParams::default(), &p).await?;
    }
    eventually("all four done", || async {
        let list = pods.list(&ListParams::default()).await.ok()?;
        (list
            .items
            .iter()
            .filter(|p| phase(p) == "Succeeded")
            .count()
            == 4)
            .then_some(())
    })
    .await;
    cluster.run(|c| controllers::podgc::run_with(c, config(2)));
    eventually("the two oldest terminated pods deleted", || async {
        (names(&pods).await == ["done-2", "done-3", "running"]).then_some(())
    })
    .await;
    holds_for("the rest stays", Duration::from_secs(1), || async {
        let got = names(&pods).await;
        if got == ["done-2", "done-3", "running"] {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;
    Ok(())
}

/// A pod bound to a node that is deleted is marked Failed with the
/// `DisruptionTarget` condition, then deleted, once the quarantine passed.
#[tokio::test]
async fn pods_of_deleted_nodes_are_deleted() -> TestResult {
    let cluster = Cluster::start().await?;
    cluster.run(|c| controllers::podgc::run_with(c, config(0)));
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let pods: Api<Pod> = cluster.api();
    let ghost: Node = serde_json::from_value(json!({"metadata": {"name": "ghost"}}))?;
    nodes.create(&PostParams::default(), &ghost).await?;
    pods.create(
        &PostParams::default(),
        &pod("orphan", json!({"spec": {"nodeName": "ghost"}}))?,
    )
    .await?;

    // Record every version of the pod, to see what it looked like last.
    let seen: Arc<Mutex<Vec<Pod>>> = Arc::default();
    let record = seen.clone();
    let cfg = watcher::Config::default().fields("metadata.name=orphan");
    tokio::spawn(
        watcher(pods.clone(), cfg)
            .applied_objects()
            .for_each(move |p| {
                if let Ok(p) = p {
                    record.lock().expect("lock").push(p);
                }
                futures::future::ready(())
            }),
    );

    holds_for(
        "a pod on an existing node stays",
        Duration::from_secs(2),
        || async {
            match pods.get("orphan").await {
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await;
    nodes.delete("ghost", &DeleteParams::default()).await?;
    eventually("the orphan deleted", || async {
        pods.get_opt("orphan").await.ok()?.is_none().then_some(())
    })
    .await;
    let last = seen
        .lock()
        .expect("lock")
        .last()
        .cloned()
        .ok_or("no pod versions seen")?;
    assert_eq!(phase(&last), "Failed");
    let condition = last
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "DisruptionTarget"))
        .cloned()
        .ok_or("no DisruptionTarget condition")?;
    assert_eq!(
        (
            condition.status.as_str(),
            condition.reason.as_deref(),
            condition.message.as_deref()
        ),
        (
            "True",
            Some("DeletionByPodGC"),
            Some("PodGC: node no longer exists")
        )
    );
    Ok(())
}

/// A terminating pod that was never scheduled (held by a finalizer here) is
/// marked Failed and force-deleted.
#[tokio::test]
async fn unscheduled_terminating_pods_are_failed_and_deleted() -> TestResult {
    let cluster = Cluster::start().await?;
    cluster.run(|c| controllers::podgc::run_with(c, config(0)));
    let pods: Api<Pod> = cluster.api();
    pods.create(
        &PostParams::default(),
        &pod(
            "stuck",
            json!({"metadata": {"finalizers": ["test.ironkube.dev/hold"]}}),
        )?,
    )
    .await?;
    pods.delete("stuck", &DeleteParams::default()).await?;
    eventually("stuck marked Failed", || async {
        let p = pods.get("stuck").await.ok()?;
        (phase(&p) == "Failed").then_some(())
    })
    .await;
    pods.patch(
        "stuck",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await?;
    eventually("stuck gone", || async {
        pods.get_opt("stuck").await.ok()?.is_none().then_some(())
    })
    .await;
    Ok(())
}
