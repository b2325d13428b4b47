//! The expected pod count of a budget relative to scale: the summed
//! `spec.replicas` of the controllers owning the selected pods (a
//! ReplicaSet's Deployment stands for it; other kinds through their `scale`
//! subresource), each controller counted once.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DynamicObject, GroupVersionKind};

use super::Error;

fn controller_of(refs: Option<&Vec<OwnerReference>>) -> Option<&OwnerReference> {
    refs?.iter().find(|r| r.controller == Some(true))
}

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

fn is_apps(r: &OwnerReference, kind: &str) -> bool {
    r.kind == kind && matches!(group_of(&r.api_version), "apps" | "extensions")
}

/// The summed scale and the names of selected pods with no controller.
pub(crate) async fn expected_scale(
    client: &kube::Client,
    ns: &str,
    pods: &[&Pod],
) -> Result<(i32, Vec<String>), Error> {
    // Pod owner uid -> the uid of the controller whose scale counts (a
    // ReplicaSet's Deployment), and that controller's scale.
    let mut resolved: BTreeMap<String, String> = BTreeMap::new();
    let mut scales: BTreeMap<String, i32> = BTreeMap::new();
    let mut unmanaged = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(owner) = controller_of(pod.metadata.owner_references.as_ref()) else {
            unmanaged.push(name);
            continue;
        };
        if resolved.contains_key(&owner.uid) {
            continue;
        }
        let (uid, scale) = find_scale(client, ns, owner)
            .await?
            .ok_or(Error::NoController(name))?;
        resolved.insert(owner.uid.clone(), uid.clone());
        scales.insert(uid, scale);
    }
    let total = scales.values().fold(0i32, |acc, s| acc.saturating_add(*s));
    Ok((total, unmanaged))
}

/// `(controller uid, replicas)` of the pod's controller, if it is a kind
/// with a scale this controller knows and it still exists with that uid.
async fn find_scale(
    client: &kube::Client,
    ns: &str,
    owner: &OwnerReference,
) -> Result<Option<(String, i32)>, Error> {
    if is_apps(owner, "ReplicaSet") {
        let Some(rs) = Api::<ReplicaSet>::namespaced(client.clone(), ns)
            .get_opt(&owner.name)
            .await?
        else {
            return Ok(None);
        };
        if rs.metadata.uid.as_deref() != Some(owner.uid.as_str()) {
            return Ok(None);
        }
        if let Some(dep_ref) = controller_of(rs.metadata.owner_references.as_ref())
            && is_apps(dep_ref, "Deployment")
        {
            let Some(dep) = Api::<Deployment>::namespaced(client.clone(), ns)
                .get_opt(&dep_ref.name)
                .await?
            else {
                return Ok(None);
            };
            if dep.metadata.uid.as_deref() != Some(dep_ref.uid.as_str()) {
                return Ok(None);
            }
            let replicas = dep.spec.and_then(|s| s.replicas).unwrap_or(1);
            return Ok(Some((dep_ref.uid.clone(), replicas)));
        }
        let replicas = rs.spec.and_then(|s| s.replicas).unwrap_or(1);
        return Ok(Some((owner.uid.clone(), replicas)));
    }
    if is_apps(owner, "StatefulSet") {
        let found = Api::<StatefulSet>::namespaced(client.clone(), ns)
            .get_opt(&owner.name)
            .await?
            .filter(|s| s.metadata.uid.as_deref() == Some(owner.uid.as_str()));
        return Ok(found.map(|s| {
            (
                owner.uid.clone(),
                s.spec.and_then(|s| s.replicas).unwrap_or(1),
            )
        }));
    }
    if owner.kind == "ReplicationController" && group_of(&owner.api_version).is_empty() {
        let found = Api::<ReplicationController>::namespaced(client.clone(), ns)
            .get_opt(&owner.name)
            .await?
            .filter(|s| s.metadata.uid.as_deref() == Some(owner.uid.as_str()));
        return Ok(found.map(|s| {
            (
                owner.uid.clone(),
                s.spec.and_then(|s| s.replicas).unwrap_or(1),
            )
        }));
    }
    scale_subresource(client, ns, owner).await
}

/// Any other controller kind: its `scale` subresource, as upstream's generic
/// finder (custom resources with scale, Deployments owning pods directly).
async fn scale_subresource(
    client: &kube::Client,
    ns: &str,
    owner: &OwnerReference,
) -> Result<Option<(String, i32)>, Error> {
    let (group, version) = owner
        .api_version
        .rsplit_once('/')
        .unwrap_or(("", owner.api_version.as_str()));
    let gvk = GroupVersionKind::gvk(group, version, &owner.kind);
    let (resource, caps) = match kube::discovery::pinned_kind(client, &gvk).await {
        Ok(found) => found,
        // A kind the server does not serve has no scale to find.
        Err(kube::Error::Discovery(_)) => return Ok(None),
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let group_resource = if resource.group.is_empty() {
        resource.plural.clone()
    } else {
        format!("{}.{}", resource.plural, resource.group)
    };
    if !caps
        .subresources
        .iter()
        .any(|(sub, _)| sub.plural == "scale")
    {
        return Err(Error::NoScale(group_resource));
    }
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
    let scale = match api.get_scale(&owner.name).await {
        Ok(scale) => scale,
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if scale.metadata.uid.as_deref() != Some(owner.uid.as_str()) {
        return Ok(None);
    }
    let replicas = scale.spec.and_then(|s| s.replicas).unwrap_or(0);
    Ok(Some((owner.uid.clone(), replicas)))
}
