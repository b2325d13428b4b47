//! Controller references and the claim rules of upstream's ControllerRefManager:
//! a controller keeps the objects it owns that still match its selector,
//! adopts matching orphans (by patching in its controller reference) and
//! releases owned objects that stopped matching (by patching the reference out).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::serde::de::DeserializeOwned;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use kube::core::{Selector, SelectorExt};
use serde_json::json;

/// The controlling object, as the claim rules need it.
#[derive(Debug, Clone)]
pub(crate) struct Owner {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) namespace: String,
    pub(crate) uid: String,
    pub(crate) deleting: bool,
}

impl Owner {
    pub(crate) fn from_meta(api_version: &str, kind: &str, meta: &ObjectMeta) -> Option<Self> {
        Some(Self {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            name: meta.name.clone()?,
            namespace: meta.namespace.clone().unwrap_or_default(),
            uid: meta.uid.clone()?,
            deleting: meta.deletion_timestamp.is_some(),
        })
    }

    /// The controller reference children carry: `controller` and
    /// `blockOwnerDeletion` both true.
    pub(crate) fn reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }
}

/// The controller reference of an object, if any.
pub(crate) fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// What to do with one candidate child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Owned and matching: keep.
    Keep,
    /// A matching orphan: adopt.
    Adopt,
    /// Owned but no longer matching: release.
    Release,
    /// Someone else's, or not ours to touch.
    Ignore,
}

/// Applies the claim rules to one child.
pub(crate) fn classify(owner: &Owner, selector: &Selector, child: &ObjectMeta) -> Claim {
    let empty = Default::default();
    let labels = child.labels.as_ref().unwrap_or(&empty);
    let matches = selector.matches(labels);
    if let Some(r) = controller_of(child) {
        if r.uid != owner.uid {
            return Claim::Ignore;
        }
        if matches {
            return Claim::Keep;
        }
        // A controller being deleted leaves its children alone so the
        // garbage collector can find them.
        return if owner.deleting {
            Claim::Ignore
        } else {
            Claim::Release
        };
    }
    if owner.deleting || !matches || child.deletion_timestamp.is_some() {
        return Claim::Ignore;
    }
    if !owner.namespace.is_empty() && child.namespace.as_deref() != Some(owner.namespace.as_str()) {
        return Claim::Ignore;
    }
    Claim::Adopt
}

/// A strategic-merge patch adding the owner's controller reference; the
/// child's UID guards against adopting a recreated namesake.
pub(crate) fn adopt_patch(owner: &Owner, child_uid: &str) -> serde_json::Value {
    json!({"metadata": {"ownerReferences": [owner.reference()], "uid": child_uid}})
}

/// A strategic-merge patch removing the owner's reference from a child.
pub(crate) fn release_patch(owner: &Owner, child_uid: &str) -> serde_json::Value {
    json!({"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner.uid}], "uid": child_uid}})
}

/// Adopts `child`; `Ok(None)` if it vanished meanwhile.
pub(crate) async fn adopt<K>(
    api: &Api<K>,
    owner: &Owner,
    name: &str,
    uid: &str,
) -> Result<Option<K>, kube::Error>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = adopt_patch(owner, uid);
    match api
        .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
    {
        Ok(obj) => Ok(Some(obj)),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

/// Releases `child`; a child already gone or already changed is fine.
pub(crate) async fn release<K>(
    api: &Api<K>,
    owner: &Owner,
    name: &str,
    uid: &str,
) -> Result<(), kube::Error>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = release_patch(owner, uid);
    match api
        .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
    {
        Ok(_) => Ok(()),
        // Gone, or its UID changed (a namesake): nothing of ours to release.
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 422 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Why claiming failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClaimError {
    #[error("kube API: {0}")]
    Kube(#[from] kube::Error),
    /// A fresh read of the owner forbids adoption.
    #[error("{kind} {namespace}/{name}: {reason}; not adopting")]
    CannotAdopt {
        kind: String,
        namespace: String,
        name: String,
        reason: &'static str,
    },
}

/// Fresh read of the owner before adopting: an owner that was deleted, is
/// being deleted, or was recreated under the same name must not adopt.
async fn check_adoptable<O>(owners: &Api<O>, owner: &Owner) -> Result<(), ClaimError>
where
    O: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let refuse = |reason| ClaimError::CannotAdopt {
        kind: owner.kind.clone(),
        namespace: owner.namespace.clone(),
        name: owner.name.clone(),
        reason,
    };
    let fresh = owners
        .get_opt(&owner.name)
        .await?
        .ok_or_else(|| refuse("it was deleted"))?;
    if fresh.meta().uid.as_deref() != Some(owner.uid.as_str()) {
        return Err(refuse("its UID changed"));
    }
    if fresh.meta().deletion_timestamp.is_some() {
        return Err(refuse("it is being deleted"));
    }
    Ok(())
}

/// Applies the claim rules to `candidates` through `children`: keeps the
/// owner's own, releases those that stopped matching and adopts matching
/// orphans, after one fresh read of the owner through `owners`. The owned
/// children, adopted ones as the API server returned them.
pub(crate) async fn claim<C, O>(
    children: &Api<C>,
    owners: &Api<O>,
    owner: &Owner,
    selector: &Selector,
    candidates: impl IntoIterator<Item = C>,
) -> Result<Vec<C>, ClaimError>
where
    C: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    O: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut owned = Vec::new();
    let mut adoption_checked = false;
    for child in candidates {
        let meta = child.meta();
        let (Some(name), Some(uid)) = (meta.name.clone(), meta.uid.clone()) else {
            continue;
        };
        match classify(owner, selector, meta) {
            Claim::Keep => owned.push(child),
            Claim::Ignore => {}
            Claim::Release => {
                tracing::info!(kind = %owner.kind, owner = %owner.name, child = %name, "releasing a child that no longer matches");
                release(children, owner, &name, &uid).await?;
            }
            Claim::Adopt => {
                if !adoption_checked {
                    check_adoptable(owners, owner).await?;
                    adoption_checked = true;
                }
                tracing::info!(kind = %owner.kind, owner = %owner.name, child = %name, "adopting an orphan");
                if let Some(adopted) = adopt(children, owner, &name, &uid).await? {
                    owned.push(adopted);
                }
            }
        }
    }
    Ok(owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn owner(deleting: bool) -> Owner {
        Owner {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: "rs".into(),
            namespace: "ns".into(),
            uid: "owner-uid".into(),
            deleting,
        }
    }

    fn meta(v: serde_json::Value) -> ObjectMeta {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn claim_rules() {
        let selector: Selector = [("app".to_string(), "web".to_string())]
            .into_iter()
            .collect();
        let mine = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "owner-uid", "controller": true}]);
        let theirs = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": "other", "controller": true}]);
        let cases = [
            (
                "owned, matching",
                false,
                json!({"namespace": "ns", "labels": {"app": "web"}, "ownerReferences": mine}),
                Claim::Keep,
            ),
            (
                "owned, not matching",
                false,
                json!({"namespace": "ns", "labels": {"app": "db"}, "ownerReferences": mine}),
                Claim::Release,
            ),
            (
                "owned, not matching, owner deleting",
                true,
                json!({"namespace": "ns", "labels": {"app": "db"}, "ownerReferences": mine}),
                Claim::Ignore,
            ),
            (
                "other controller",
                false,
                json!({"namespace": "ns", "labels": {"app": "web"}, "ownerReferences": theirs}),
                Claim::Ignore,
            ),
            (
                "orphan, matching",
                false,
                json!({"namespace": "ns", "labels": {"app": "web"}}),
                Claim::Adopt,
            ),
            (
                "orphan, owner deleting",
                true,
                json!({"namespace": "ns", "labels": {"app": "web"}}),
                Claim::Ignore,
            ),
            (
                "orphan, not matching",
                false,
                json!({"namespace": "ns", "labels": {"app": "db"}}),
                Claim::Ignore,
            ),
            (
                "orphan being deleted",
                false,
                json!({"namespace": "ns", "labels": {"app": "web"}, "deletionTimestamp": "2024-01-01T00:00:00Z"}),
                Claim::Ignore,
            ),
            (
                "orphan elsewhere",
                false,
                json!({"namespace": "other", "labels": {"app": "web"}}),
                Claim::Ignore,
            ),
        ];
        for (what, deleting, m, want) in cases {
            assert_eq!(
                classify(&owner(deleting), &selector, &meta(m)),
                want,
                "{what}"
            );
        }
    }

    #[test]
    fn patches() {
        let o = owner(false);
        assert_eq!(
            adopt_patch(&o, "c"),
            json!({"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "owner-uid", "controller": true, "blockOwnerDeletion": true}], "uid": "c"}})
        );
        assert_eq!(
            release_patch(&o, "c"),
            json!({"metadata": {"ownerReferences": [{"$patch": "delete", "uid": "owner-uid"}], "uid": "c"}})
        );
    }
}
