//! The collector's workers: they take a uid from a queue, look the object
//! and its owners up in the API (a fresh GET, never the graph alone), decide
//! with [`super::decide`], and act with uid or resourceVersion preconditions
//! so a decision never lands on a newer object than it was made on.

use std::sync::Arc;

use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, PartialObjectMeta, Patch, PatchParams,
    Preconditions, PropagationPolicy,
};

use super::Shared;
use super::decide::{self, Decision, ForegroundStep, OwnerState, Propagation};
use super::graph::{Change, FOREGROUND, Identity, ORPHAN};

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("kube API: {0}")]
    Kube(#[from] kube::Error),
    #[error("no served resource for {api_version} {kind}")]
    UnknownKind { api_version: String, kind: String },
    #[error("the graph builder stopped")]
    GraphClosed,
    /// Never resolves by retrying: upstream records an event and gives up.
    #[error("cluster-scoped {kind} {name} names a namespaced owner {owner_kind}")]
    NamespacedOwnerOfClusterScoped {
        kind: String,
        name: String,
        owner_kind: String,
    },
}

type Meta = PartialObjectMeta<DynamicObject>;

/// An object's API handle, resolved from its identity.
struct Target {
    api: Api<DynamicObject>,
    namespaced: bool,
}

fn resolve(shared: &Shared, api_version: &str, kind: &str) -> Result<(ApiResource, bool), Error> {
    shared
        .mapper()
        .resolve(api_version, kind)
        .ok_or_else(|| Error::UnknownKind {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        })
}

/// The API for `identity`'s object; `None` when a namespaced kind has no
/// namespace to look in (a cluster-scoped dependent naming a namespaced owner).
fn target(shared: &Shared, identity: &Identity) -> Result<Option<Target>, Error> {
    let (ar, namespaced) = resolve(shared, &identity.api_version, &identity.kind)?;
    let api = match (namespaced, identity.namespace.as_deref()) {
        (true, Some(ns)) => Api::namespaced_with(shared.client.clone(), ns, &ar),
        (true, None) => return Ok(None),
        (false, _) => Api::all_with(shared.client.clone(), &ar),
    };
    Ok(Some(Target { api, namespaced }))
}

/// The object at `identity`'s coordinates if it still has that uid.
async fn get_same(target: &Target, identity: &Identity) -> Result<Option<Meta>, Error> {
    let found = target.api.get_metadata_opt(&identity.name).await?;
    Ok(found.filter(|m| m.metadata.uid.as_deref() == Some(identity.uid.as_str())))
}

fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

fn ignore_not_found<T>(r: Result<T, kube::Error>) -> Result<(), Error> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn report_absent(shared: &Shared, identity: Identity) -> Result<(), Error> {
    shared
        .changes
        .send(Change::Absent(identity))
        .map_err(|_| Error::GraphClosed)
}

/// upstream's `attemptToDeleteItem`.
pub(crate) async fn attempt_to_delete(shared: &Arc<Shared>, uid: &str) -> Result<(), Error> {
    let Some(view) = shared.view(uid) else {
        return Ok(());
    };
    let Some(target) = target(shared, &view.identity)? else {
        return report_absent(shared, view.identity);
    };
    let Some(latest) = get_same(&target, &view.identity).await? else {
        // Gone, or replaced by a namesake: its dependents check their owners.
        return report_absent(shared, view.identity);
    };
    if view.virtual_node {
        // It exists; its watch will report it.
        return Ok(());
    }
    let meta = &latest.metadata;
    let finalizers = meta.finalizers.clone().unwrap_or_default();
    if meta.deletion_timestamp.is_some() {
        if finalizers.iter().any(|f| f == FOREGROUND) {
            return process_deleting_dependents(shared, &target, &view.identity, &latest).await;
        }
        // Being deleted by someone else.
        return Ok(());
    }
    let refs = meta.owner_references.clone().unwrap_or_default();
    if refs.is_empty() {
        return Ok(());
    }
    let mut states = Vec::with_capacity(refs.len());
    for r in &refs {
        let state = classify(shared, r, &view.identity, target.namespaced).await?;
        states.push((r.uid.clone(), state));
    }
    let rv = meta.resource_version.clone().unwrap_or_default();
    let name = &view.identity.name;
    match decide::decide(&states, view.has_dependents, &finalizers) {
        Decision::Keep => Ok(()),
        Decision::RemoveReferences(uids) => {
            tracing::info!(object = %name, kind = %view.identity.kind, owners = ?uids, "removing dangling owner references");
            let patch = decide::remove_references_patch(&rv, &refs, &uids);
            ignore_not_found(
                target
                    .api
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await,
            )
        }
        Decision::UnblockThenDeleteForeground(uids) => {
            tracing::info!(object = %name, kind = %view.identity.kind, "unblocking owners waiting on it, then deleting in the foreground");
            let patch = decide::unblock_patch(&rv, &refs, &uids);
            target
                .api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            delete(&target, &view.identity, Propagation::Foreground).await
        }
        Decision::Delete(policy) => {
            tracing::info!(object = %name, kind = %view.identity.kind, ?policy, "deleting object whose owners are gone");
            delete(&target, &view.identity, policy).await
        }
    }
}

async fn delete(target: &Target, identity: &Identity, policy: Propagation) -> Result<(), Error> {
    let propagation_policy = match policy {
        Propagation::Background => PropagationPolicy::Background,
        Propagation::Foreground => PropagationPolicy::Foreground,
        Propagation::Orphan => PropagationPolicy::Orphan,
    };
    let params = DeleteParams {
        propagation_policy: Some(propagation_policy),
        preconditions: Some(Preconditions {
            uid: Some(identity.uid.clone()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    ignore_not_found(target.api.delete(&identity.name, &params).await)
}

/// Whether one owner reference names an existing owner (upstream's `isDangling`
/// plus the foreground check of `classifyReferences`).
async fn classify(
    shared: &Shared,
    r: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    dependent: &Identity,
    dependent_namespaced: bool,
) -> Result<OwnerState, Error> {
    let namespace = dependent_namespaced
        .then(|| dependent.namespace.clone())
        .flatten();
    let owner = Identity::of_owner(r, namespace.as_deref());
    if shared.is_absent(&owner) {
        return Ok(OwnerState::Dangling);
    }
    let Some(target) = target(shared, &owner)? else {
        return Err(Error::NamespacedOwnerOfClusterScoped {
            kind: dependent.kind.clone(),
            name: dependent.name.clone(),
            owner_kind: owner.kind.clone(),
        });
    };
    let Some(found) = get_same(&target, &owner).await? else {
        shared.mark_absent(&owner);
        return Ok(OwnerState::Dangling);
    };
    let m = &found.metadata;
    let foreground = m
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == FOREGROUND));
    if m.deletion_timestamp.is_some() && foreground {
        Ok(OwnerState::WaitingForDependents)
    } else {
        Ok(OwnerState::Solid)
    }
}

/// An owner deleted in the foreground: finish once nothing blocks it.
async fn process_deleting_dependents(
    shared: &Arc<Shared>,
    target: &Target,
    identity: &Identity,
    latest: &Meta,
) -> Result<(), Error> {
    let blocking = shared
        .view(&identity.uid)
        .map(|v| v.blocking)
        .unwrap_or_default();
    match decide::foreground_step(&blocking) {
        ForegroundStep::Finish => {
            tracing::info!(object = %identity.name, kind = %identity.kind, "dependents gone; removing the foregroundDeletion finalizer");
            remove_finalizer(target, &identity.name, latest, FOREGROUND).await
        }
        ForegroundStep::Wait(dependents) => {
            for d in dependents {
                shared.attempt_to_delete.add(d);
            }
            Ok(())
        }
    }
}

async fn remove_finalizer(
    target: &Target,
    name: &str,
    latest: &Meta,
    finalizer: &str,
) -> Result<(), Error> {
    let finalizers = latest.metadata.finalizers.clone().unwrap_or_default();
    if !finalizers.iter().any(|f| f == finalizer) {
        return Ok(());
    }
    let rv = latest.metadata.resource_version.clone().unwrap_or_default();
    let patch = decide::remove_finalizer_patch(&rv, &finalizers, finalizer);
    ignore_not_found(
        target
            .api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await,
    )
}

/// upstream's `attemptToOrphanWorker`: drop the owner from every dependent's
/// references, then its `orphan` finalizer.
pub(crate) async fn attempt_to_orphan(shared: &Arc<Shared>, uid: &str) -> Result<(), Error> {
    let Some(view) = shared.view(uid) else {
        return Ok(());
    };
    for dependent in &view.dependents {
        let Some(target) = target(shared, dependent)? else {
            continue;
        };
        let Some(latest) = get_same(&target, dependent).await? else {
            continue;
        };
        let refs = latest.metadata.owner_references.clone().unwrap_or_default();
        if !refs.iter().any(|r| r.uid == uid) {
            continue;
        }
        let rv = latest.metadata.resource_version.clone().unwrap_or_default();
        let patch = decide::remove_references_patch(&rv, &refs, &[uid.to_string()]);
        tracing::info!(object = %dependent.name, kind = %dependent.kind, owner = %view.identity.name, "orphaning dependent");
        ignore_not_found(
            target
                .api
                .patch(
                    &dependent.name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await,
        )?;
    }
    let Some(target) = target(shared, &view.identity)? else {
        return Ok(());
    };
    let Some(latest) = get_same(&target, &view.identity).await? else {
        return Ok(());
    };
    if latest.metadata.deletion_timestamp.is_none() {
        return Ok(());
    }
    remove_finalizer(&target, &view.identity.name, &latest, ORPHAN).await
}
