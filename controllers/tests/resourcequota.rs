//! End-to-end test of the resource quota controller against a real
//! in-process API server: `status.used` follows objects being created and
//! deleted, event-driven (well inside the conformance tests' one minute).

mod common;

use std::collections::BTreeMap;

use common::{Cluster, TestResult, eventually};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Pod, PodSpec, PodTemplateSpec, ResourceQuota, ResourceQuotaSpec,
    ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, DeleteParams, PostParams};

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
        .collect()
}

fn pod(name: &str, cpu: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some("registry.k8s.io/pause:3.10".into()),
                resources: Some(ResourceRequirements {
                    requests: Some(quantities(&[("cpu", cpu)])),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

fn configmap(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn replicaset(name: &str) -> ReplicaSet {
    let labels: BTreeMap<String, String> = [("app".to_string(), name.to_string())].into();
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(0),
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..Default::default()
            },
            template: Some(PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: pod("t", "1").spec,
            }),
            ..Default::default()
        }),
        status: None,
    }
}

/// Waits until `status.used` is exactly `want` and `status.hard` mirrors the spec.
async fn wait_used(
    quotas: &Api<ResourceQuota>,
    name: &str,
    hard: &BTreeMap<String, Quantity>,
    want: &[(&str, &str)],
) -> TestResult {
    let want = quantities(want);
    eventually(&format!("used == {want:?}"), || async {
        let q = quotas.get(name).await.ok()?;
        let status = q.status?;
        (status.used.as_ref() == Some(&want) && status.hard.as_ref() == Some(hard)).then_some(())
    })
    .await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn used_follows_objects() -> TestResult {
    let cluster = Cluster::start().await?;
    cluster.run(controllers::resourcequota::run);

    let quotas: Api<ResourceQuota> = cluster.api();
    let hard = quantities(&[
        ("pods", "2"),
        ("configmaps", "5"),
        ("requests.cpu", "1"),
        ("count/replicasets.apps", "3"),
    ]);
    let quota = ResourceQuota {
        metadata: ObjectMeta {
            name: Some("quota".into()),
            ..Default::default()
        },
        spec: Some(ResourceQuotaSpec {
            hard: Some(hard.clone()),
            ..Default::default()
        }),
        status: None,
    };
    quotas.create(&PostParams::default(), &quota).await?;
    wait_used(
        &quotas,
        "quota",
        &hard,
        &[
            ("pods", "0"),
            ("configmaps", "0"),
            ("requests.cpu", "0"),
            ("count/replicasets.apps", "0"),
        ],
    )
    .await?;

    let pods: Api<Pod> = cluster.api();
    let configmaps: Api<ConfigMap> = cluster.api();
    pods.create(&PostParams::default(), &pod("a", "250m"))
        .await?;
    pods.create(&PostParams::default(), &pod("b", "500m"))
        .await?;
    configmaps
        .create(&PostParams::default(), &configmap("one"))
        .await?;
    wait_used(
        &quotas,
        "quota",
        &hard,
        &[
            ("pods", "2"),
            ("configmaps", "1"),
            ("requests.cpu", "750m"),
            ("count/replicasets.apps", "0"),
        ],
    )
    .await?;

    // Unbound pods are deleted at once (no grace), so usage drops.
    pods.delete("a", &DeleteParams::default()).await?;
    configmaps.delete("one", &DeleteParams::default()).await?;
    wait_used(
        &quotas,
        "quota",
        &hard,
        &[
            ("pods", "1"),
            ("configmaps", "0"),
            ("requests.cpu", "500m"),
            ("count/replicasets.apps", "0"),
        ],
    )
    .await?;

    // A stray edit of status.used is undone by the next recount, which any
    // object change in the namespace triggers.
    let mut stray = quotas.get_status("quota").await?;
    if let Some(used) = stray.status.as_mut().and_then(|s| s.used.as_mut()) {
        used.insert("pods".into(), Quantity("99".into()));
    }
    quotas
        .replace_status("quota", &PostParams::default(), &stray)
        .await?;
    configmaps
        .create(&PostParams::default(), &configmap("two"))
        .await?;
    // Generic `count/<resource>.<group>` names are counted too (no
    // ReplicaSet controller runs here; the object is only counted).
    let sets: Api<ReplicaSet> = cluster.api();
    sets.create(&PostParams::default(), &replicaset("rs"))
        .await?;
    wait_used(
        &quotas,
        "quota",
        &hard,
        &[
            ("pods", "1"),
            ("configmaps", "1"),
            ("requests.cpu", "500m"),
            ("count/replicasets.apps", "1"),
        ],
    )
    .await?;

    // Changing spec.hard is mirrored in status.hard, and dropped names leave `used`.
    let hard = quantities(&[("pods", "5")]);
    let mut current = quotas.get("quota").await?;
    if let Some(spec) = current.spec.as_mut() {
        spec.hard = Some(hard.clone());
    }
    quotas
        .replace("quota", &PostParams::default(), &current)
        .await?;
    wait_used(&quotas, "quota", &hard, &[("pods", "1")]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_quota_counts_only_matching_pods() -> TestResult {
    let cluster = Cluster::start().await?;
    cluster.run(controllers::resourcequota::run);

    let quotas: Api<ResourceQuota> = cluster.api();
    let hard = quantities(&[("pods", "10")]);
    for (name, scope) in [
        ("best-effort", "BestEffort"),
        ("not-best-effort", "NotBestEffort"),
    ] {
        let quota = ResourceQuota {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(ResourceQuotaSpec {
                hard: Some(hard.clone()),
                scopes: Some(vec![scope.into()]),
                ..Default::default()
            }),
            status: None,
        };
        quotas.create(&PostParams::default(), &quota).await?;
    }
    let pods: Api<Pod> = cluster.api();
    pods.create(&PostParams::default(), &pod("burstable", "100m"))
        .await?;
    let mut best_effort = pod("best-effort", "0");
    if let Some(spec) = best_effort.spec.as_mut() {
        spec.containers[0].resources = None;
    }
    pods.create(&PostParams::default(), &best_effort).await?;
    pods.create(&PostParams::default(), &{
        let mut p = best_effort.clone();
        p.metadata.name = Some("best-effort-2".into());
        p
    })
    .await?;
    wait_used(&quotas, "best-effort", &hard, &[("pods", "2")]).await?;
    wait_used(&quotas, "not-best-effort", &hard, &[("pods", "1")]).await?;
    Ok(())
}
