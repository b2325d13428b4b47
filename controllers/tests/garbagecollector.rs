//! End-to-end: the garbage collector against a real in-process API server.
//! Background, foreground and orphan propagation, owners that never existed,
//! owners of another kind, partially gone owners and ownership cycles.

mod common;

use common::{Cluster, TestResult, eventually};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

/// An API server with the garbage collector.
async fn start() -> TestResult<Cluster> {
    let cluster = Cluster::start().await?;
    cluster.run(controllers::garbagecollector::run);
    Ok(cluster)
}

fn owner_ref<K: Resource<DynamicType = ()>>(owner: &K, block: bool) -> OwnerReference {
    let meta = owner.meta();
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        block_owner_deletion: block.then_some(true),
        controller: None,
    }
}

fn cm(name: &str, owners: Vec<OwnerReference>, finalizers: Option<Vec<String>>) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            owner_references: (!owners.is_empty()).then_some(owners),
            finalizers,
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    }
}

async fn create(api: &Api<ConfigMap>, obj: ConfigMap) -> TestResult<ConfigMap> {
    Ok(api.create(&PostParams::default(), &obj).await?)
}

async fn gone<K>(api: &Api<K>, name: &str) -> Option<()>
where
    K: Resource + Clone + k8s_openapi::serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get_opt(name).await {
        Ok(None) => Some(()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_orphan_and_bogus_owners() -> TestResult {
    let cluster = start().await?;
    let cms: Api<ConfigMap> = cluster.api();

    // Background: the dependent goes after its owner.
    let owner = create(&cms, cm("bg-owner", vec![], None)).await?;
    create(&cms, cm("bg-dep", vec![owner_ref(&owner, false)], None)).await?;
    cms.delete("bg-owner", &DeleteParams::background()).await?;
    eventually("bg-dep collected", || gone(&cms, "bg-dep")).await;

    // An owner that never existed (bogus uid, no such name).
    create(
        &cms,
        cm(
            "ghost-dep",
            vec![OwnerReference {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                name: "never-existed".into(),
                uid: "00000000-0000-0000-0000-000000000000".into(),
                ..OwnerReference::default()
            }],
            None,
        ),
    )
    .await?;
    eventually("ghost-dep collected", || gone(&cms, "ghost-dep")).await;

    // An owner with the right name but another uid is absent too.
    let namesake = create(&cms, cm("namesake", vec![], None)).await?;
    let mut wrong = owner_ref(&namesake, false);
    wrong.uid = "11111111-1111-1111-1111-111111111111".into();
    create(&cms, cm("namesake-dep", vec![wrong], None)).await?;
    eventually("namesake-dep collected", || gone(&cms, "namesake-dep")).await;
    assert!(
        cms.get_opt("namesake").await?.is_some(),
        "the namesake itself stays"
    );

    // Orphan: the dependent stays, without the reference.
    let owner = create(&cms, cm("or-owner", vec![], None)).await?;
    let keep = create(&cms, cm("or-keep", vec![], None)).await?;
    create(
        &cms,
        cm(
            "or-dep",
            vec![owner_ref(&owner, false), owner_ref(&keep, false)],
            None,
        ),
    )
    .await?;
    cms.delete("or-owner", &DeleteParams::orphan()).await?;
    eventually("or-owner deleted", || gone(&cms, "or-owner")).await;
    let dep = cms.get("or-dep").await?;
    let refs = dep.metadata.owner_references.unwrap_or_default();
    assert_eq!(
        refs.len(),
        1,
        "only the orphaning owner's reference is removed: {refs:?}"
    );
    assert_eq!(refs[0].name, "or-keep");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_waits_for_blocking_dependents() -> TestResult {
    let cluster = start().await?;
    let cms: Api<ConfigMap> = cluster.api();
    let hold = "example.com/hold".to_string();

    let owner = create(&cms, cm("fg-owner", vec![], None)).await?;
    // The dependent carries a finalizer of this test's own, so the ordering
    // can be observed: the owner must wait while the dependent is held.
    create(
        &cms,
        cm(
            "fg-dep",
            vec![owner_ref(&owner, true)],
            Some(vec![hold.clone()]),
        ),
    )
    .await?;
    cms.delete("fg-owner", &DeleteParams::foreground()).await?;
    eventually("fg-dep marked for deletion", || async {
        let dep = cms.get_opt("fg-dep").await.ok()??;
        dep.metadata.deletion_timestamp.map(|_| ())
    })
    .await;
    let owner_now = cms.get("fg-owner").await?;
    assert!(owner_now.metadata.deletion_timestamp.is_some());
    assert!(
        owner_now
            .metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"foregroundDeletion".to_string()),
        "the owner waits on its dependent"
    );
    // Release our finalizer: the dependent goes, then the owner.
    cms.patch(
        "fg-dep",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await?;
    eventually("fg-dep deleted", || gone(&cms, "fg-dep")).await;
    eventually("fg-owner deleted", || gone(&cms, "fg-owner")).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_kinds_partial_owners_and_cycles() -> TestResult {
    let cluster = start().await?;
    let cms: Api<ConfigMap> = cluster.api();
    let secrets: Api<Secret> = cluster.api();

    // A Secret owned by a ConfigMap.
    let owner = create(&cms, cm("kind-owner", vec![], None)).await?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("owned-secret".into()),
            owner_references: Some(vec![owner_ref(&owner, false)]),
            ..ObjectMeta::default()
        },
        ..Secret::default()
    };
    secrets.create(&PostParams::default(), &secret).await?;

    // Two owners, one goes: the dependent stays with the other reference.
    let a = create(&cms, cm("two-a", vec![], None)).await?;
    let b = create(&cms, cm("two-b", vec![], None)).await?;
    create(
        &cms,
        cm(
            "two-dep",
            vec![owner_ref(&a, false), owner_ref(&b, false)],
            None,
        ),
    )
    .await?;

    cms.delete("kind-owner", &DeleteParams::background())
        .await?;
    cms.delete("two-a", &DeleteParams::background()).await?;
    eventually("owned-secret collected", || gone(&secrets, "owned-secret")).await;
    eventually("two-dep keeps only two-b", || async {
        let dep = cms.get_opt("two-dep").await.ok()??;
        let refs = dep.metadata.owner_references.unwrap_or_default();
        (refs.len() == 1 && refs[0].name == "two-b").then_some(())
    })
    .await;

    // A cycle, both references blocking: foreground deletion of one still
    // ends with both gone.
    let x = create(&cms, cm("cycle-x", vec![], None)).await?;
    let y = create(&cms, cm("cycle-y", vec![owner_ref(&x, true)], None)).await?;
    let x_with_owner = cm("cycle-x", vec![owner_ref(&y, true)], None);
    cms.patch(
        "cycle-x",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"ownerReferences": x_with_owner.metadata.owner_references}}),
        ),
    )
    .await?;
    assert_eq!(x.metadata.name.as_deref(), Some("cycle-x"));
    cms.delete("cycle-x", &DeleteParams::foreground()).await?;
    eventually("cycle-x deleted", || gone(&cms, "cycle-x")).await;
    eventually("cycle-y deleted", || gone(&cms, "cycle-y")).await;
    Ok(())
}
