//! End-to-end: the Deployment controller (with the ReplicaSet controller under
//! it) against a real in-process API server, with the scheduler and two
//! kwok-style fake nodes running the pods. Pods are Ready as soon as they run
//! unless their template carries the fake node's `ready: "false"`
//! ([`UNREADY`]): then a rolling update stops where `maxSurge` and
//! `maxUnavailable` allow without available pods, which some tests pin down;
//! flipping the annotation on the pods makes them Ready later.

mod common;

use std::time::Duration;

use common::{Cluster, READY, TestResult, annotate, annotations_json, eventually, holds_for};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

/// Pod annotations that keep the pods Running but never Ready.
const UNREADY: &[(&str, &str)] = &[(READY, "false")];

/// A cluster with two fake nodes and the Deployment and ReplicaSet controllers.
async fn start() -> TestResult<Cluster> {
    let cluster = Cluster::with_fake_nodes(2).await?;
    cluster.run(controllers::deployment::run);
    cluster.run(controllers::replicaset::run);
    Ok(cluster)
}

/// A Deployment whose pods carry the fake node's `pod_annotations`.
fn deployment(
    name: &str,
    replicas: i32,
    image: &str,
    strategy: serde_json::Value,
    pod_annotations: &[(&str, &str)],
) -> Deployment {
    let annotations = annotations_json(pod_annotations);
    serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": {"team": "blue"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": annotations},
                "spec": {"containers": [{"name": "c", "image": image}]}
            }
        }
    }))
    .unwrap()
}

fn owned_by<'a>(rss: &'a [ReplicaSet], uid: &str) -> Vec<&'a ReplicaSet> {
    rss.iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.uid == uid && r.controller == Some(true))
        })
        .collect()
}

fn annotation<'a>(rs: &'a ReplicaSet, key: &str) -> Option<&'a str> {
    rs.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

fn replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(-1)
}

fn condition<'a>(d: &'a Deployment, type_: &str) -> Option<&'a DeploymentCondition> {
    d.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

fn template_hash(rs: &ReplicaSet) -> String {
    rs.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("pod-template-hash"))
        .cloned()
        .unwrap_or_default()
}

async fn list_rs(api: &Api<ReplicaSet>) -> Vec<ReplicaSet> {
    api.list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_respects_surge_and_unavailability() -> TestResult {
    let cluster = start().await?;
    let deployments: Api<Deployment> = cluster.api();
    let rs_api: Api<ReplicaSet> = cluster.api();
    let pods: Api<Pod> = cluster.api();

    let strategy =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}});
    let d = deployments
        .create(
            &PostParams::default(),
            &deployment("web", 3, "nginx:1", strategy, UNREADY),
        )
        .await?;
    let uid = d.metadata.uid.clone().unwrap();

    // One ReplicaSet named after the template hash, with three pods.
    let first = eventually("first ReplicaSet at 3", || async {
        let rss = list_rs(&rs_api).await;
        let mine = owned_by(&rss, &uid);
        (mine.len() == 1 && replicas(mine[0]) == 3).then(|| mine[0].clone())
    })
    .await;
    let hash = template_hash(&first);
    assert!(
        !hash.is_empty()
            && hash
                .chars()
                .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
        "{hash}"
    );
    assert_eq!(
        first.metadata.name.as_deref(),
        Some(format!("web-{hash}").as_str())
    );
    let spec = first.spec.as_ref().unwrap();
    assert_eq!(
        spec.selector.match_labels.as_ref().unwrap()["pod-template-hash"],
        hash
    );
    let template_labels = spec
        .template
        .as_ref()
        .unwrap()
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .as_ref()
        .unwrap();
    assert_eq!(template_labels["pod-template-hash"], hash);
    assert_eq!(
        annotation(&first, "deployment.kubernetes.io/revision"),
        Some("1")
    );
    assert_eq!(
        annotation(&first, "deployment.kubernetes.io/desired-replicas"),
        Some("3")
    );
    assert_eq!(
        annotation(&first, "deployment.kubernetes.io/max-replicas"),
        Some("4")
    );
    assert_eq!(
        annotation(&first, "team"),
        Some("blue"),
        "the Deployment's annotations are copied"
    );
    let owner = &first.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.block_owner_deletion),
        ("Deployment", Some(true))
    );
    eventually("three pods with the hash label", || async {
        let all = pods
            .list(&ListParams::default().labels(&format!("pod-template-hash={hash}")))
            .await
            .ok()?;
        (all.items.len() == 3).then_some(())
    })
    .await;

    // The scaling is recorded as an event on the Deployment.
    let events: Api<k8s_openapi::api::core::v1::Event> = cluster.api();
    let scaled = format!("Scaled up replica set web-{hash} from 0 to 3");
    eventually("ScalingReplicaSet event", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("ScalingReplicaSet")
                    && e.involved_object.kind.as_deref() == Some("Deployment")
                    && e.message.as_deref() == Some(scaled.as_str())
            })
            .then_some(())
    })
    .await;

    // Status as `kubectl rollout status` reads it, and the conditions.
    let d = eventually("deployment status for 3 replicas", || async {
        let d = deployments.get("web").await.ok()?;
        let s = d.status.as_ref()?;
        (s.observed_generation == d.metadata.generation
            && s.replicas == Some(3)
            && s.updated_replicas == Some(3))
        .then_some(d)
    })
    .await;
    let s = d.status.as_ref().unwrap();
    assert_eq!(s.unavailable_replicas, Some(3));
    assert_eq!(s.available_replicas.unwrap_or(0), 0);
    assert_eq!(s.ready_replicas.unwrap_or(0), 0);
    let available = condition(&d, "Available").expect("Available condition");
    assert_eq!(
        (
            available.status.as_str(),
            available.reason.as_deref(),
            available.message.as_deref()
        ),
        (
            "False",
            Some("MinimumReplicasUnavailable"),
            Some("Deployment does not have minimum availability.")
        )
    );
    let progressing = condition(&d, "Progressing").expect("Progressing condition");
    assert_eq!(progressing.status, "True");
    let first_name = first.metadata.name.clone().unwrap();
    assert!(
        matches!(
            (progressing.reason.as_deref(), progressing.message.as_deref()),
            (Some("NewReplicaSetCreated"), Some(m)) if m == format!("Created new replica set \"{first_name}\"")
        ) || matches!(
            (progressing.reason.as_deref(), progressing.message.as_deref()),
            (Some("ReplicaSetUpdated"), Some(m)) if m == format!("ReplicaSet \"{first_name}\" is progressing.")
        ),
        "{progressing:?}"
    );

    // A new image: a second ReplicaSet. With no pod available the rollout
    // may only use the surge (4 pods in all) and keep 2 = 3 - maxUnavailable.
    deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}})))
        .await?;
    let (old, new) = eventually("rollout held at surge", || async {
        let rss = list_rs(&rs_api).await;
        let mine = owned_by(&rss, &uid);
        if mine.len() != 2 {
            return None;
        }
        let old = mine
            .iter()
            .find(|rs| rs.metadata.name.as_deref() == Some(first_name.as_str()))?;
        let new = mine
            .iter()
            .find(|rs| rs.metadata.name.as_deref() != Some(first_name.as_str()))?;
        (replicas(old) == 2 && replicas(new) == 2).then(|| ((*old).clone(), (*new).clone()))
    })
    .await;
    assert_eq!(
        annotation(&new, "deployment.kubernetes.io/revision"),
        Some("2")
    );
    assert_eq!(
        annotation(&old, "deployment.kubernetes.io/revision"),
        Some("1")
    );
    assert_ne!(template_hash(&new), hash);
    let new_name = new.metadata.name.clone().unwrap();
    let d = eventually("status mid-rollout", || async {
        let d = deployments.get("web").await.ok()?;
        let s = d.status.as_ref()?;
        (s.observed_generation == d.metadata.generation
            && s.replicas == Some(4)
            && s.updated_replicas == Some(2))
        .then_some(d)
    })
    .await;
    assert_eq!(d.status.as_ref().unwrap().unavailable_replicas, Some(4));
    let progressing = condition(&d, "Progressing").unwrap();
    assert_eq!(progressing.status, "True");
    assert_eq!(progressing.reason.as_deref(), Some("ReplicaSetUpdated"));
    assert_eq!(
        progressing.message.as_deref(),
        Some(format!("ReplicaSet \"{new_name}\" is progressing.").as_str())
    );
    // The rollout holds there: never more than 4 pods, never fewer than 2 old.
    holds_for("rollout held", Duration::from_secs(2), || async {
        let rss = list_rs(&rs_api).await;
        let mine = owned_by(&rss, &uid);
        let total: i32 = mine.iter().map(|rs| replicas(rs)).sum();
        if total > 4 {
            return Err(format!("surge exceeded: {total}"));
        }
        let old_now = mine
            .iter()
            .find(|rs| rs.metadata.name.as_deref() == Some(first_name.as_str()))
            .ok_or("old ReplicaSet gone")?;
        if replicas(old_now) < 2 {
            return Err("old scaled below replicas - maxUnavailable".into());
        }
        Ok(())
    })
    .await;

    // Scaling mid-rollout spreads the change proportionally: 7 = 6 + surge,
    // split 4 (new, the newer of two equal ReplicaSets) and 3 (old).
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 6}})),
        )
        .await?;
    eventually("proportional scale-up", || async {
        let rss = list_rs(&rs_api).await;
        let mine = owned_by(&rss, &uid);
        let old = mine
            .iter()
            .find(|rs| rs.metadata.name.as_deref() == Some(first_name.as_str()))?;
        let new = mine
            .iter()
            .find(|rs| rs.metadata.name.as_deref() == Some(new_name.as_str()))?;
        (replicas(old) == 3
            && replicas(new) == 4
            && annotation(old, "deployment.kubernetes.io/desired-replicas") == Some("6")
            && annotation(new, "deployment.kubernetes.io/max-replicas") == Some("7"))
        .then_some(())
    })
    .await;

    // Settled: the controllers stop writing (no status or scale churn).
    eventually("deployment status settled", || async {
        let d = deployments.get("web").await.ok()?;
        let s = d.status.as_ref()?;
        (s.observed_generation == d.metadata.generation
            && s.replicas == Some(7)
            && s.updated_replicas == Some(4))
        .then_some(())
    })
    .await;
    let versions = || async {
        let d = deployments
            .get("web")
            .await
            .ok()
            .and_then(|d| d.metadata.resource_version);
        let rss: Vec<Option<String>> = list_rs(&rs_api)
            .await
            .into_iter()
            .map(|rs| rs.metadata.resource_version)
            .collect();
        (d, rss)
    };
    let before = versions().await;
    holds_for("rollout settled", Duration::from_secs(2), || async {
        let now = versions().await;
        if now == before {
            Ok(())
        } else {
            Err(format!("objects keep changing: {before:?} -> {now:?}"))
        }
    })
    .await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revision_annotation_and_paused_condition() -> TestResult {
    let cluster = start().await?;
    let deployments: Api<Deployment> = cluster.api();
    let rs_api: Api<ReplicaSet> = cluster.api();
    let d = deployments
        .create(
            &PostParams::default(),
            &deployment("api", 2, "nginx:1", json!({"type": "RollingUpdate"}), &[]),
        )
        .await?;
    let uid = d.metadata.uid.clone().unwrap();
    eventually("revision 1 on the Deployment", || async {
        let d = deployments.get("api").await.ok()?;
        (d.metadata
            .annotations
            .as_ref()?
            .get("deployment.kubernetes.io/revision")?
            == "1")
            .then_some(())
    })
    .await;

    deployments
        .patch(
            "api",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": true}})),
        )
        .await?;
    let d = eventually("paused condition", || async {
        let d = deployments.get("api").await.ok()?;
        let c = condition(&d, "Progressing")?;
        (c.reason.as_deref() == Some("DeploymentPaused")).then_some(d)
    })
    .await;
    let c = condition(&d, "Progressing").unwrap();
    assert_eq!(
        (c.status.as_str(), c.message.as_deref()),
        ("Unknown", Some("Deployment is paused"))
    );
    // A template change while paused creates no ReplicaSet.
    deployments
        .patch("api", &PatchParams::default(), &Patch::Merge(json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}})))
        .await?;
    eventually("generation observed while paused", || async {
        let d = deployments.get("api").await.ok()?;
        (d.status.as_ref()?.observed_generation == d.metadata.generation).then_some(())
    })
    .await;
    assert_eq!(owned_by(&list_rs(&rs_api).await, &uid).len(), 1);

    // Resuming rolls the change out as revision 2.
    deployments
        .patch(
            "api",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": false}})),
        )
        .await?;
    eventually("second ReplicaSet after resume", || async {
        let rss = list_rs(&rs_api).await;
        owned_by(&rss, &uid)
            .iter()
            .any(|rs| annotation(rs, "deployment.kubernetes.io/revision") == Some("2"))
            .then_some(())
    })
    .await;
    eventually("revision 2 on the Deployment", || async {
        let d = deployments.get("api").await.ok()?;
        (d.metadata
            .annotations
            .as_ref()?
            .get("deployment.kubernetes.io/revision")?
            == "2")
            .then_some(())
    })
    .await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_scales_old_down_first() -> TestResult {
    let cluster = start().await?;
    let deployments: Api<Deployment> = cluster.api();
    let rs_api: Api<ReplicaSet> = cluster.api();
    let d = deployments
        .create(
            &PostParams::default(),
            &deployment("batch", 2, "busybox:1", json!({"type": "Recreate"}), &[]),
        )
        .await?;
    let uid = d.metadata.uid.clone().unwrap();
    let first = eventually("first ReplicaSet at 2", || async {
        let rss = list_rs(&rs_api).await;
        let mine = owned_by(&rss, &uid);
        (mine.len() == 1 && replicas(mine[0]) == 2).then(|| mine[0].metadata.name.clone().unwrap())
    })
    .await;
    deployments
        .patch("batch", &PatchParams::default(), &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}}})))
        .await?;
    // The old ReplicaSet goes to zero; the new one gets all replicas once the
    // old pods are gone.
    eventually("recreate done", || async {
        let rss = list_rs(&rs_api).await;
        let mine = owned_by(&rss, &uid);
        let old = mine
            .iter()
            .find(|rs| rs.metadata.name.as_deref() == Some(first.as_str()))?;
        let new = mine
            .iter()
            .find(|rs| rs.metadata.name.as_deref() != Some(first.as_str()))?;
        (replicas(old) == 0 && replicas(new) == 2).then_some(())
    })
    .await;
    Ok(())
}

/// Waits until the rollout is complete as `kubectl rollout status` judges it,
/// and returns the Deployment.
async fn rolled_out(deployments: &Api<Deployment>, name: &str, replicas: i32) -> Deployment {
    eventually("rollout complete", || async {
        let d = deployments.get(name).await.ok()?;
        let s = d.status.as_ref()?;
        let done = s.observed_generation >= d.metadata.generation
            && s.updated_replicas == Some(replicas)
            && s.replicas == Some(replicas)
            && s.available_replicas == Some(replicas)
            && condition(&d, "Progressing")?.reason.as_deref() == Some("NewReplicaSetAvailable");
        done.then_some(d)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_rollout_with_ready_pods_history_and_rollback() -> TestResult {
    let cluster = start().await?;
    let deployments: Api<Deployment> = cluster.api();
    let rs_api: Api<ReplicaSet> = cluster.api();

    let mut d = deployment(
        "full",
        3,
        "app:1",
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}),
        &[],
    );
    d.spec.as_mut().unwrap().revision_history_limit = Some(1);
    let d = deployments.create(&PostParams::default(), &d).await?;
    let uid = d.metadata.uid.clone().unwrap();

    let d = rolled_out(&deployments, "full", 3).await;
    let rss = list_rs(&rs_api).await;
    let first = owned_by(&rss, &uid)[0].metadata.name.clone().unwrap();
    let p = condition(&d, "Progressing").unwrap();
    assert_eq!(p.status, "True");
    assert_eq!(
        p.message.as_deref(),
        Some(format!("ReplicaSet \"{first}\" has successfully progressed.").as_str())
    );
    let a = condition(&d, "Available").unwrap();
    assert_eq!(
        (a.status.as_str(), a.reason.as_deref(), a.message.as_deref()),
        (
            "True",
            Some("MinimumReplicasAvailable"),
            Some("Deployment has minimum availability.")
        )
    );
    assert_eq!(d.status.as_ref().unwrap().unavailable_replicas, None);

    let set_image = |image: &str| json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}});
    // Revision 2 replaces all pods, the old ReplicaSet kept at zero.
    deployments
        .patch(
            "full",
            &PatchParams::default(),
            &Patch::Merge(set_image("app:2")),
        )
        .await?;
    let d = rolled_out(&deployments, "full", 3).await;
    let rss = list_rs(&rs_api).await;
    let mine = owned_by(&rss, &uid);
    assert_eq!(mine.len(), 2);
    let second = mine
        .iter()
        .find(|rs| annotation(rs, "deployment.kubernetes.io/revision") == Some("2"))
        .expect("revision 2");
    let second_name = second.metadata.name.clone().unwrap();
    assert_eq!(replicas(second), 3);
    let old = mine
        .iter()
        .find(|rs| rs.metadata.name.as_deref() == Some(first.as_str()))
        .unwrap();
    assert_eq!(replicas(old), 0);
    assert_eq!(
        condition(&d, "Progressing").unwrap().message.as_deref(),
        Some(format!("ReplicaSet \"{second_name}\" has successfully progressed.").as_str())
    );

    // Revision 3: with revisionHistoryLimit 1 the oldest ReplicaSet goes.
    deployments
        .patch(
            "full",
            &PatchParams::default(),
            &Patch::Merge(set_image("app:3")),
        )
        .await?;
    rolled_out(&deployments, "full", 3).await;
    eventually("history trimmed to one old ReplicaSet", || async {
        let rss = list_rs(&rs_api).await;
        let mine = owned_by(&rss, &uid);
        let names: Vec<&str> = mine
            .iter()
            .filter_map(|rs| rs.metadata.name.as_deref())
            .collect();
        (mine.len() == 2
            && !names.contains(&first.as_str())
            && names.contains(&second_name.as_str()))
        .then_some(())
    })
    .await;

    // A rollback (what `kubectl rollout undo` does: the old template back)
    // reuses revision 2's ReplicaSet as revision 4.
    deployments
        .patch(
            "full",
            &PatchParams::default(),
            &Patch::Merge(set_image("app:2")),
        )
        .await?;
    rolled_out(&deployments, "full", 3).await;
    let back = rs_api.get(&second_name).await?;
    assert_eq!(replicas(&back), 3);
    assert_eq!(
        annotation(&back, "deployment.kubernetes.io/revision"),
        Some("4")
    );
    assert_eq!(
        annotation(&back, "deployment.kubernetes.io/revision-history"),
        Some("2")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_deadline_exceeded_without_available_pods() -> TestResult {
    let cluster = start().await?;
    let deployments: Api<Deployment> = cluster.api();
    let pods: Api<Pod> = cluster.api();
    let mut d = deployment(
        "slow",
        2,
        "app:1",
        json!({"type": "RollingUpdate"}),
        UNREADY,
    );
    d.spec.as_mut().unwrap().progress_deadline_seconds = Some(2);
    deployments.create(&PostParams::default(), &d).await?;
    // The pods run but never turn Ready, so the rollout stops progressing
    // and, with nothing else changing, the deadline alone must flip the
    // condition.
    let d = eventually("ProgressDeadlineExceeded", || async {
        let d = deployments.get("slow").await.ok()?;
        let c = condition(&d, "Progressing")?;
        (c.reason.as_deref() == Some("ProgressDeadlineExceeded")).then_some(d)
    })
    .await;
    let c = condition(&d, "Progressing").unwrap();
    assert_eq!(c.status, "False");
    let message = c.message.clone().unwrap();
    assert!(
        message.starts_with("ReplicaSet \"slow-")
            && message.ends_with("\" has timed out progressing."),
        "{message}"
    );

    // The pods turn Ready at last: the rollout completes after all.
    let running = pods
        .list(&ListParams::default().labels("app=slow"))
        .await?
        .items;
    assert_eq!(running.len(), 2);
    for p in &running {
        let name = p.metadata.name.as_deref().unwrap_or_default();
        annotate(&pods, name, &[(READY, "true")]).await?;
    }
    let d = rolled_out(&deployments, "slow", 2).await;
    assert_eq!(condition(&d, "Progressing").unwrap().status, "True");
    assert_eq!(condition(&d, "Available").unwrap().status, "True");
    Ok(())
}
