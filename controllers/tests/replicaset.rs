//! End-to-end: the ReplicaSet and ReplicationController controllers against a
//! real in-process API server. No kubelet runs, so pods stay Pending and never
//! become ready; the assertions are about ownership, counts and status.

mod common;

use std::time::Duration;

use common::{Cluster, TestResult, eventually, holds_for};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn controller_uid(pod: &Pod) -> Option<String> {
    pod.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.clone())
}

/// Active (not terminating) pods whose controller has `uid`.
async fn owned_pods(pods: &Api<Pod>, uid: &str) -> Vec<Pod> {
    pods.list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none() && controller_uid(p).as_deref() == Some(uid)
        })
        .collect()
}

fn replica_set(name: &str, app: &str, replicas: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}, "annotations": {"note": "from-template"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}
            }
        }
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_creates_scales_adopts_and_releases() -> TestResult {
    let cluster = Cluster::start().await?;
    cluster.run(controllers::replicaset::run);
    let rss: Api<ReplicaSet> = cluster.api();
    let pods: Api<Pod> = cluster.api();

    let rs = rss
        .create(&PostParams::default(), &replica_set("web", "web", 3))
        .await?;
    let uid = rs.metadata.uid.clone().unwrap();

    // Three owned pods, shaped from the template, and a status saying so.
    let status = eventually("status.replicas == 3", || async {
        let rs = rss.get("web").await.ok()?;
        let s = rs.status?;
        (s.replicas == 3 && s.observed_generation == rs.metadata.generation).then_some(s)
    })
    .await;
    assert_eq!(status.fully_labeled_replicas, Some(3));
    assert_eq!(
        status.ready_replicas.unwrap_or(0),
        0,
        "no pod can be ready without a node"
    );
    assert_eq!(status.available_replicas.unwrap_or(0), 0);
    let owned = owned_pods(&pods, &uid).await;
    assert_eq!(owned.len(), 3);
    for p in &owned {
        assert!(p.metadata.name.as_deref().unwrap().starts_with("web-"));
        assert_eq!(p.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(p.metadata.labels.as_ref().unwrap()["app"], "web");
        assert_eq!(
            p.metadata.annotations.as_ref().unwrap()["note"],
            "from-template"
        );
        let r = &p.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (r.kind.as_str(), r.name.as_str(), r.api_version.as_str()),
            ("ReplicaSet", "web", "apps/v1")
        );
        assert_eq!(
            (r.controller, r.block_owner_deletion),
            (Some(true), Some(true))
        );
    }
    // No extra pod shows up later (a slow watch must not cause a second round
    // of creates): the count stays at 3 over a further period of checks.
    holds_for("three pods", Duration::from_secs(2), || async {
        match owned_pods(&pods, &uid).await.len() {
            3 => Ok(()),
            n => Err(format!("{n} pods")),
        }
    })
    .await;
    assert_eq!(pods.list(&ListParams::default()).await?.items.len(), 3);
    // Nor does the status keep being rewritten.
    let rv = rss.get("web").await?.metadata.resource_version;
    holds_for("no status churn", Duration::from_secs(1), || async {
        let now = rss.get("web").await.map_err(|e| e.to_string())?;
        if now.metadata.resource_version == rv {
            Ok(())
        } else {
            Err(format!("{rv:?} -> {:?}", now.metadata.resource_version))
        }
    })
    .await;

    // Creations are recorded as events on the ReplicaSet.
    let events: Api<k8s_openapi::api::core::v1::Event> = cluster.api();
    eventually("SuccessfulCreate events", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        let created = list
            .items
            .iter()
            .filter(|e| {
                e.reason.as_deref() == Some("SuccessfulCreate")
                    && e.involved_object.name.as_deref() == Some("web")
                    && e.message
                        .as_deref()
                        .is_some_and(|m| m.starts_with("Created pod: web-"))
            })
            .count();
        // Repeats of an event may be folded into one series.
        (created >= 1).then_some(())
    })
    .await;

    // Scale down to 1: two pods go.
    rss.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await?;
    eventually("scale down to 1", || async {
        let rs = rss.get("web").await.ok()?;
        let s = rs.status?;
        let owned = owned_pods(&pods, &uid).await;
        (owned.len() == 1 && s.replicas == 1 && s.observed_generation == rs.metadata.generation)
            .then_some(())
    })
    .await;

    // An orphan pod matching the selector is adopted, and the excess removed.
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "orphan", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}
    }))?;
    let orphan = pods.create(&PostParams::default(), &orphan).await?;
    eventually("orphan adopted", || async {
        let p = pods.get_opt("orphan").await.ok()?;
        match p {
            // Adopted, then possibly chosen for deletion as the excess pod.
            Some(p) if controller_uid(&p).as_deref() == Some(uid.as_str()) => Some(()),
            Some(p) if p.metadata.uid != orphan.metadata.uid => Some(()),
            Some(_) => None,
            None => Some(()),
        }
    })
    .await;
    eventually("back to one owned pod", || async {
        (owned_pods(&pods, &uid).await.len() == 1).then_some(())
    })
    .await;

    // A pod whose labels stop matching is released and replaced.
    let survivor = owned_pods(&pods, &uid).await.remove(0);
    let name = survivor.metadata.name.clone().unwrap();
    pods.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
    )
    .await?;
    let released = eventually("pod released", || async {
        let p = pods.get(&name).await.ok()?;
        controller_uid(&p).is_none().then_some(p)
    })
    .await;
    assert!(
        released
            .metadata
            .owner_references
            .unwrap_or_default()
            .iter()
            .all(|r| r.uid != uid),
        "the ReplicaSet's reference is removed entirely"
    );
    eventually("replacement created", || async {
        let owned = owned_pods(&pods, &uid).await;
        (owned.len() == 1 && owned[0].metadata.name.as_deref() != Some(name.as_str())).then_some(())
    })
    .await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_controller_keeps_replicas() -> TestResult {
    let cluster = Cluster::start().await?;
    cluster.run(controllers::replicaset::run);
    let rcs: Api<ReplicationController> = cluster.api();
    let pods: Api<Pod> = cluster.api();
    let rc: ReplicationController = serde_json::from_value(json!({
        "metadata": {"name": "legacy"},
        "spec": {
            "replicas": 2,
            "selector": {"app": "legacy"},
            "template": {"metadata": {"labels": {"app": "legacy"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
        }
    }))?;
    let rc = rcs.create(&PostParams::default(), &rc).await?;
    let uid = rc.metadata.uid.clone().unwrap();
    eventually("rc status.replicas == 2", || async {
        let rc = rcs.get("legacy").await.ok()?;
        let s = rc.status?;
        (s.replicas == 2 && s.observed_generation == rc.metadata.generation).then_some(())
    })
    .await;
    let owned = owned_pods(&pods, &uid).await;
    assert_eq!(owned.len(), 2);
    let r = &owned[0].metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (r.kind.as_str(), r.api_version.as_str()),
        ("ReplicationController", "v1")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_refusal_sets_replica_failure_until_resolved() -> TestResult {
    let cluster = Cluster::start().await?;
    // The quota controller fills in the quota's status, without which the
    // API server's quota admission constrains nothing.
    cluster.run(controllers::resourcequota::run);
    cluster.run(controllers::replicaset::run);
    let quotas: Api<k8s_openapi::api::core::v1::ResourceQuota> = cluster.api();
    let quota = serde_json::from_value(json!({
        "metadata": {"name": "two-pods"},
        "spec": {"hard": {"pods": "2"}}
    }))?;
    quotas.create(&PostParams::default(), &quota).await?;
    eventually("quota status filled in", || async {
        let q = quotas.get("two-pods").await.ok()?;
        q.status?.hard?.contains_key("pods").then_some(())
    })
    .await;

    let rss: Api<ReplicaSet> = cluster.api();
    rss.create(&PostParams::default(), &replica_set("capped", "capped", 3))
        .await?;
    let condition = eventually("ReplicaFailure condition", || async {
        let rs = rss.get("capped").await.ok()?;
        let s = rs.status?;
        let c = s
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "ReplicaFailure")?;
        (s.replicas == 2).then_some(c)
    })
    .await;
    assert_eq!(condition.status, "True");
    assert_eq!(condition.reason.as_deref(), Some("FailedCreate"));
    assert!(
        condition
            .message
            .as_deref()
            .is_some_and(|m| m.contains("exceeded quota: two-pods")),
        "{condition:?}"
    );

    // Asking for what fits clears the condition.
    rss.patch(
        "capped",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await?;
    eventually("ReplicaFailure cleared", || async {
        let rs = rss.get("capped").await.ok()?;
        let s = rs.status?;
        let failing = s
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "ReplicaFailure");
        (!failing && s.observed_generation == rs.metadata.generation).then_some(())
    })
    .await;
    Ok(())
}
