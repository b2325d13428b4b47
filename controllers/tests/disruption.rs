//! End-to-end test of the disruption controller against a real in-process
//! API server: budgets over bare and ReplicaSet-owned pods get the status the
//! eviction API relies on, and it follows pod readiness, which kwok-style
//! fake nodes report (the pods start unready by their `ready` annotation and
//! the test flips it).

mod common;

use std::collections::BTreeMap;

use common::{Cluster, READY, TestResult, annotate, eventually};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::api::policy::v1::{
    PodDisruptionBudget, PodDisruptionBudgetSpec, PodDisruptionBudgetStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, PostParams};

fn labels(app: &str) -> BTreeMap<String, String> {
    [("app".to_string(), app.to_string())].into_iter().collect()
}

fn pod(name: &str, app: &str, owner: Option<OwnerReference>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels(app)),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        spec: Some(PodSpec {
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

fn budget(
    name: &str,
    app: &str,
    min: Option<IntOrString>,
    max: Option<IntOrString>,
) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(LabelSelector {
                match_labels: Some(labels(app)),
                ..Default::default()
            }),
            min_available: min,
            max_unavailable: max,
            ..Default::default()
        }),
        status: None,
    }
}

/// Waits for a status satisfying `check` (observed at the budget's generation).
async fn wait_status(
    budgets: &Api<PodDisruptionBudget>,
    name: &str,
    check: impl Fn(&PodDisruptionBudgetStatus) -> bool,
) -> PodDisruptionBudgetStatus {
    eventually(&format!("status of {name}"), || async {
        let pdb = budgets.get(name).await.ok()?;
        let status = pdb.status?;
        (status.observed_generation == pdb.metadata.generation && check(&status)).then_some(status)
    })
    .await
}

fn condition(status: &PodDisruptionBudgetStatus) -> (String, String, String) {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "DisruptionAllowed")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_status_follows_pods() -> TestResult {
    let cluster = Cluster::with_fake_nodes(2).await?;
    cluster.run(controllers::disruption::run);

    let pods: Api<Pod> = cluster.api();
    let budgets: Api<PodDisruptionBudget> = cluster.api();
    for i in 0..3 {
        // Running, but not Ready until the test says so.
        let mut p = pod(&format!("web-{i}"), "web", None);
        p.metadata.annotations = Some([(READY.to_string(), "false".to_string())].into());
        pods.create(&PostParams::default(), &p).await?;
    }
    budgets
        .create(
            &PostParams::default(),
            &budget("web", "web", Some(IntOrString::Int(2)), None),
        )
        .await?;

    // No pod is Ready yet: nothing may be disrupted.
    let status = wait_status(&budgets, "web", |s| s.expected_pods == 3).await;
    assert_eq!((status.current_healthy, status.desired_healthy), (0, 2));
    assert_eq!(status.disruptions_allowed, 0);
    assert_eq!(
        condition(&status),
        ("False".into(), "InsufficientPods".into(), String::new())
    );

    // The containers pass their readiness checks: the nodes report Ready.
    for i in 0..3 {
        annotate(&pods, &format!("web-{i}"), &[(READY, "true")]).await?;
    }
    let status = wait_status(&budgets, "web", |s| s.current_healthy == 3).await;
    assert_eq!(status.disruptions_allowed, 1);
    assert_eq!(
        condition(&status),
        ("True".into(), "SufficientPods".into(), String::new())
    );

    // A disruption recorded for a pod that no longer exists is dropped.
    let mut recorded = budgets.get_status("web").await?;
    if let Some(s) = recorded.status.as_mut() {
        s.disrupted_pods = Some(
            [(
                "ghost".to_string(),
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::now(),
                ),
            )]
            .into_iter()
            .collect(),
        );
    }
    budgets
        .replace_status("web", &PostParams::default(), &recorded)
        .await?;
    wait_status(&budgets, "web", |s| {
        s.disrupted_pods.as_ref().is_none_or(BTreeMap::is_empty) && s.disruptions_allowed == 1
    })
    .await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_relative_to_controller_scale() -> TestResult {
    // No nodes: these budgets do not depend on readiness, and the pods may
    // stay Pending.
    let cluster = Cluster::start().await?;
    cluster.run(controllers::disruption::run);

    // A ReplicaSet wanting 4 pods, of which 2 exist (no ReplicaSet
    // controller runs here; the pods are made as it would make them).
    let sets: Api<ReplicaSet> = cluster.api();
    let rs = sets
        .create(
            &PostParams::default(),
            &ReplicaSet {
                metadata: ObjectMeta {
                    name: Some("api".into()),
                    ..Default::default()
                },
                spec: Some(ReplicaSetSpec {
                    replicas: Some(4),
                    selector: LabelSelector {
                        match_labels: Some(labels("api")),
                        ..Default::default()
                    },
                    template: Some(PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: Some(labels("api")),
                            ..Default::default()
                        }),
                        spec: pod("t", "api", None).spec,
                    }),
                    ..Default::default()
                }),
                status: None,
            },
        )
        .await?;
    let owner = OwnerReference {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        name: "api".into(),
        uid: rs.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let pods: Api<Pod> = cluster.api();
    for i in 0..2 {
        pods.create(
            &PostParams::default(),
            &pod(&format!("api-{i}"), "api", Some(owner.clone())),
        )
        .await?;
    }
    let budgets: Api<PodDisruptionBudget> = cluster.api();
    budgets
        .create(
            &PostParams::default(),
            &budget("api-max", "api", None, Some(IntOrString::Int(1))),
        )
        .await?;
    budgets
        .create(
            &PostParams::default(),
            &budget(
                "api-pct",
                "api",
                Some(IntOrString::String("50%".into())),
                None,
            ),
        )
        .await?;
    let status = wait_status(&budgets, "api-max", |s| s.expected_pods == 4).await;
    assert_eq!((status.desired_healthy, status.disruptions_allowed), (3, 0));
    assert_eq!(condition(&status).1, "InsufficientPods");
    let status = wait_status(&budgets, "api-pct", |s| s.expected_pods == 4).await;
    assert_eq!(status.desired_healthy, 2);

    // A pod whose controller cannot be found makes a scale-relative budget
    // fail safe.
    let mut orphan_owner = owner.clone();
    orphan_owner.name = "missing".into();
    orphan_owner.uid = "00000000-0000-0000-0000-00000000dead".into();
    pods.create(
        &PostParams::default(),
        &pod("lost", "lost", Some(orphan_owner)),
    )
    .await?;
    budgets
        .create(
            &PostParams::default(),
            &budget("lost", "lost", None, Some(IntOrString::Int(1))),
        )
        .await?;
    let failed = eventually("SyncFailed", || async {
        let status = budgets.get("lost").await.ok()?.status?;
        let c = condition(&status);
        (c.1 == "SyncFailed").then_some(c)
    })
    .await;
    assert_eq!(failed.0, "False");
    assert_eq!(failed.2, "found no controllers for pod \"lost\"");

    // A controller kind without a scale subresource cannot give a scale.
    let mut daemon_owner = owner.clone();
    daemon_owner.kind = "DaemonSet".into();
    daemon_owner.name = "agent".into();
    pods.create(
        &PostParams::default(),
        &pod("agent-x", "agent", Some(daemon_owner)),
    )
    .await?;
    budgets
        .create(
            &PostParams::default(),
            &budget("agent", "agent", None, Some(IntOrString::Int(1))),
        )
        .await?;
    let failed = eventually("SyncFailed for a DaemonSet's pod", || async {
        let status = budgets.get("agent").await.ok()?.status?;
        let c = condition(&status);
        (c.1 == "SyncFailed").then_some(c)
    })
    .await;
    assert_eq!(
        failed.2,
        "daemonsets.apps does not implement the scale subresource"
    );
    Ok(())
}
