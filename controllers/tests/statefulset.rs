//! End-to-end: the StatefulSet controller against a real in-process API
//! server, with the scheduler and fake nodes running the pods. Covers what
//! upstream's StatefulSet conformance tests check: ordered scale up and down,
//! stable identities, recreation of deleted pods, burst (Parallel) scaling,
//! canary and phased rolling updates with a partition, rollback through
//! ControllerRevisions, OnDelete, and claims with their retention policy.

mod common;

use std::collections::BTreeSet;

use common::{Cluster, TestResult, eventually};
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn stateful_set(name: &str, replicas: i32, extra_spec: Value) -> StatefulSet {
    let fixed = json!({"replicas": replicas, "serviceName": "svc"});
    common::workload("StatefulSet", name, &[fixed, extra_spec])
}

async fn start(nodes: usize) -> TestResult<(Cluster, Api<StatefulSet>, Api<Pod>)> {
    let cluster = Cluster::with_fake_nodes(nodes).await?;
    cluster.run(controllers::statefulset::run);
    let sets = Api::namespaced(cluster.client.clone(), "default");
    let pods = Api::namespaced(cluster.client.clone(), "default");
    Ok((cluster, sets, pods))
}

/// Live (not terminating) pods, by name.
async fn live_pods(pods: &Api<Pod>) -> Vec<Pod> {
    let mut list: Vec<Pod> = pods
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    list.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    list
}

fn names(pods: &[Pod]) -> Vec<String> {
    pods.iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect()
}

fn image(pod: &Pod) -> String {
    pod.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap_or_default()
}

fn revision(pod: &Pod) -> String {
    pod.metadata.labels.as_ref().unwrap()["controller-revision-hash"].clone()
}

fn running_ready(pod: &Pod) -> bool {
    let Some(s) = pod.status.as_ref() else {
        return false;
    };
    s.phase.as_deref() == Some("Running")
        && s.conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Waits until the set's status reports `replicas` pods, all ready and on one
/// revision, for its current generation; returns the set.
async fn settled(sets: &Api<StatefulSet>, name: &str, replicas: i32) -> StatefulSet {
    eventually(&format!("{name} settled at {replicas}"), || async {
        let set = sets.get(name).await.ok()?;
        let s = set.status.clone()?;
        let ok = s.observed_generation == set.metadata.generation
            && s.replicas == replicas
            && s.ready_replicas.unwrap_or(0) == replicas
            && s.available_replicas.unwrap_or(0) == replicas
            && s.updated_replicas.unwrap_or(0) == replicas
            && s.current_replicas.unwrap_or(0) == replicas
            && s.current_revision.is_some()
            && s.current_revision == s.update_revision;
        ok.then_some(set)
    })
    .await
}

async fn scale(sets: &Api<StatefulSet>, name: &str, replicas: i32) -> TestResult {
    sets.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": replicas}})),
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_ready_scales_in_order_with_stable_identities() -> TestResult {
    let (_cluster, sets, pods) = start(2).await?;
    sets.create(&PostParams::default(), &stateful_set("web", 3, json!({})))
        .await?;

    // Each pod appears only once every lower ordinal is Running and Ready.
    eventually("three pods created in order", || async {
        let live = live_pods(&pods).await;
        for p in &live {
            let name = p.metadata.name.clone().unwrap();
            let ord: usize = name.trim_start_matches("web-").parse().unwrap();
            for lower in 0..ord {
                let prev = live
                    .iter()
                    .find(|q| q.metadata.name.as_deref() == Some(&format!("web-{lower}")));
                assert!(
                    prev.is_some_and(
                        |q| q.metadata.creation_timestamp <= p.metadata.creation_timestamp
                    ),
                    "{name} exists before web-{lower}"
                );
            }
        }
        (live.len() == 3).then_some(())
    })
    .await;
    let set = settled(&sets, "web", 3).await;
    let status = set.status.unwrap();
    assert_eq!(status.collision_count, Some(0));
    assert_eq!(status.observed_generation, set.metadata.generation);
    let live = live_pods(&pods).await;
    assert_eq!(names(&live), ["web-0", "web-1", "web-2"]);
    for (i, p) in live.iter().enumerate() {
        let labels = p.metadata.labels.as_ref().unwrap();
        assert_eq!(
            labels["statefulset.kubernetes.io/pod-name"],
            format!("web-{i}")
        );
        assert_eq!(labels["apps.kubernetes.io/pod-index"], i.to_string());
        assert_eq!(revision(p), status.update_revision.clone().unwrap());
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some(format!("web-{i}").as_str()));
        assert_eq!(spec.subdomain.as_deref(), Some("svc"));
        assert!(spec.node_name.is_some(), "bound by the scheduler");
        assert!(running_ready(p));
    }
    // The revision is a ControllerRevision owned by the set.
    let revs: Api<ControllerRevision> = Api::namespaced(_cluster.client.clone(), "default");
    let rev = revs.get(status.update_revision.as_deref().unwrap()).await?;
    assert_eq!(rev.revision, 1);
    assert_eq!(
        rev.metadata.owner_references.unwrap()[0].uid,
        set.metadata.uid.unwrap()
    );

    // A deleted (e.g. evicted) pod comes back under the same name.
    let old_uid = pods.get("web-1").await?.metadata.uid;
    pods.delete("web-1", &DeleteParams::default()).await?;
    eventually("web-1 recreated", || async {
        let p = pods.get("web-1").await.ok()?;
        (p.metadata.uid != old_uid && running_ready(&p)).then_some(())
    })
    .await;

    // Scale down: the highest ordinal goes first.
    scale(&sets, "web", 1).await?;
    eventually("scaled down to web-0 in reverse order", || async {
        let live = names(&live_pods(&pods).await);
        assert!(
            !live.contains(&"web-2".to_string()) || live.contains(&"web-1".to_string()),
            "web-1 went before web-2: {live:?}"
        );
        (live == ["web-0"]).then_some(())
    })
    .await;
    settled(&sets, "web", 1).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_burst_scaling_with_ordinals_start() -> TestResult {
    let (_cluster, sets, pods) = start(2).await?;
    let spec = json!({"podManagementPolicy": "Parallel", "ordinals": {"start": 5}});
    sets.create(&PostParams::default(), &stateful_set("db", 4, spec))
        .await?;
    settled(&sets, "db", 4).await;
    assert_eq!(
        names(&live_pods(&pods).await),
        ["db-5", "db-6", "db-7", "db-8"]
    );
    scale(&sets, "db", 0).await?;
    eventually("all pods gone", || async {
        live_pods(&pods).await.is_empty().then_some(())
    })
    .await;
    settled(&sets, "db", 0).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_phased_rolling_update_and_rollback() -> TestResult {
    let (cluster, sets, pods) = start(2).await?;
    let spec =
        json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 3}}});
    sets.create(&PostParams::default(), &stateful_set("ss", 3, spec))
        .await?;
    let first = settled(&sets, "ss", 3).await;
    let rev1 = first.status.unwrap().current_revision.unwrap();

    // A template change behind a partition of 3 updates nothing.
    sets.patch(
        "ss",
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}})),
    )
    .await?;
    let rev2 = eventually("a new update revision", || async {
        let s = sets.get("ss").await.ok()?.status?;
        let update = s.update_revision?;
        (update != rev1).then_some(update)
    })
    .await;
    let status = sets.get("ss").await?.status.unwrap();
    assert_eq!(status.current_revision.as_deref(), Some(rev1.as_str()));
    assert_eq!(status.updated_replicas.unwrap_or(0), 0);
    for p in live_pods(&pods).await {
        assert_eq!(revision(&p), rev1);
        assert_eq!(image(&p), "nginx:1");
    }

    // Canary: partition 2 updates ss-2 only.
    let set_partition = |n: i32| json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": n}}}});
    sets.patch(
        "ss",
        &PatchParams::default(),
        &Patch::Merge(set_partition(2)),
    )
    .await?;
    eventually("ss-2 updated", || async {
        let p = pods.get("ss-2").await.ok()?;
        (revision(&p) == rev2 && image(&p) == "nginx:2" && running_ready(&p)).then_some(())
    })
    .await;
    eventually("status counts the canary", || async {
        let s = sets.get("ss").await.ok()?.status?;
        (s.updated_replicas == Some(1) && s.current_replicas == Some(2)).then_some(())
    })
    .await;
    // A pod below the partition is recreated at the current revision.
    let old_uid = pods.get("ss-0").await?.metadata.uid;
    pods.delete("ss-0", &DeleteParams::default()).await?;
    eventually("ss-0 recreated at the current revision", || async {
        let p = pods.get("ss-0").await.ok()?;
        (p.metadata.uid != old_uid && running_ready(&p)).then_some(p)
    })
    .await;
    let p0 = pods.get("ss-0").await?;
    assert_eq!(
        (revision(&p0), image(&p0)),
        (rev1.clone(), "nginx:1".to_string())
    );

    // Phased: partition 0 rolls out the rest; the update completes.
    sets.patch(
        "ss",
        &PatchParams::default(),
        &Patch::Merge(set_partition(0)),
    )
    .await?;
    let done = settled(&sets, "ss", 3).await;
    assert_eq!(
        done.status.unwrap().current_revision.as_deref(),
        Some(rev2.as_str())
    );
    for p in live_pods(&pods).await {
        assert_eq!(image(&p), "nginx:2");
    }

    // Roll back as `kubectl rollout undo` does: apply the previous
    // revision's data as a strategic-merge patch. The old revision is
    // reused, renumbered as the newest.
    let revs: Api<ControllerRevision> = Api::namespaced(cluster.client.clone(), "default");
    let old = revs.get(&rev1).await?;
    let data = old.data.unwrap().0;
    sets.patch("ss", &PatchParams::default(), &Patch::Strategic(data))
        .await?;
    let back = eventually("rolled back to the first revision", || async {
        let set = sets.get("ss").await.ok()?;
        let s = set.status.clone()?;
        (s.update_revision.as_deref() == Some(rev1.as_str())
            && s.current_revision.as_deref() == Some(rev1.as_str())
            && s.updated_replicas == Some(3)
            && s.ready_replicas == Some(3))
        .then_some(set)
    })
    .await;
    assert_eq!(
        back.status.unwrap().observed_generation,
        back.metadata.generation
    );
    for p in live_pods(&pods).await {
        assert_eq!(
            (revision(&p), image(&p)),
            (rev1.clone(), "nginx:1".to_string())
        );
    }
    let all: BTreeSet<(String, i64)> = revs
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|r| (r.metadata.name.unwrap(), r.revision))
        .collect();
    assert_eq!(all, BTreeSet::from([(rev1.clone(), 3), (rev2.clone(), 2)]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_delete_updates_only_deleted_pods() -> TestResult {
    let (_cluster, sets, pods) = start(1).await?;
    let spec = json!({"updateStrategy": {"type": "OnDelete"}, "podManagementPolicy": "Parallel"});
    sets.create(&PostParams::default(), &stateful_set("od", 2, spec))
        .await?;
    settled(&sets, "od", 2).await;
    sets.patch(
        "od",
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}})),
    )
    .await?;
    eventually("update revision observed", || async {
        let set = sets.get("od").await.ok()?;
        let s = set.status?;
        (s.observed_generation == set.metadata.generation
            && s.update_revision != s.current_revision)
            .then_some(())
    })
    .await;
    for p in live_pods(&pods).await {
        assert_eq!(image(&p), "nginx:1", "OnDelete leaves running pods alone");
    }
    pods.delete("od-1", &DeleteParams::default()).await?;
    eventually("od-1 recreated with the new template", || async {
        let p = pods.get("od-1").await.ok()?;
        (image(&p) == "nginx:2" && running_ready(&p)).then_some(())
    })
    .await;
    assert_eq!(image(&pods.get("od-0").await?), "nginx:1");
    eventually("status counts one updated pod", || async {
        let s = sets.get("od").await.ok()?.status?;
        (s.updated_replicas == Some(1) && s.current_replicas == Some(1)).then_some(())
    })
    .await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_claims_and_retention_policy() -> TestResult {
    let (cluster, sets, pods) = start(1).await?;
    cluster.run(controllers::garbagecollector::run);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), "default");
    let spec = json!({
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
        "persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete", "whenDeleted": "Retain"}
    });
    sets.create(&PostParams::default(), &stateful_set("vol", 2, spec))
        .await?;
    settled(&sets, "vol", 2).await;
    let claim_names = || async {
        let mut n = names_of(
            claims
                .list(&ListParams::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default(),
        );
        n.sort();
        n
    };
    assert_eq!(claim_names().await, ["data-vol-0", "data-vol-1"]);
    let pvc = claims.get("data-vol-1").await?;
    assert_eq!(pvc.metadata.labels.unwrap()["app"], "vol");
    let p1 = pods.get("vol-1").await?;
    let volume = p1
        .spec
        .unwrap()
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == "data")
        .unwrap();
    assert_eq!(
        volume.persistent_volume_claim.unwrap().claim_name,
        "data-vol-1"
    );

    // whenScaled: Delete — the condemned pod's claim goes with it.
    scale(&sets, "vol", 1).await?;
    eventually("claim of the removed ordinal deleted", || async {
        let n = claim_names().await;
        (n == ["data-vol-0"]).then_some(())
    })
    .await;
    // whenDeleted: Retain — deleting the set keeps the claim.
    sets.delete("vol", &DeleteParams::default()).await?;
    eventually("pods gone with the set", || async {
        live_pods(&pods).await.is_empty().then_some(())
    })
    .await;
    assert_eq!(claim_names().await, ["data-vol-0"]);
    Ok(())
}

fn names_of(claims: Vec<PersistentVolumeClaim>) -> Vec<String> {
    claims
        .into_iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .filter_map(|c| c.metadata.name)
        .collect()
}
