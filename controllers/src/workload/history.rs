//! Controller revisions: the history of a StatefulSet's or DaemonSet's pod
//! template, kept as ControllerRevision objects owned by the workload. Each
//! revision's `data` is the strategic-merge patch that restores its template
//! (`{"spec": {"template": {..., "$patch": "replace"}}}`), which is what
//! `kubectl rollout undo` applies to roll back; `revision` numbers grow, and
//! re-using an old template bumps that old revision to the newest number
//! rather than creating a duplicate.
//!
//! Names are `<parent>-<hash>`, the hash taken over `data` and the parent's
//! `collisionCount`: a namesake with other data (a collision) makes the caller
//! bump the count and try again, as upstream.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::Selector;
use serde_json::{Value, json};

use super::hash;
use super::ownership::{self, Claim, Owner};

/// The label on pods (and DaemonSet revisions) naming their revision.
pub(crate) const REVISION_HASH_LABEL: &str = "controller-revision-hash";
/// The label on every ControllerRevision holding its hash.
pub(crate) const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// How many times a collision is retried before giving up for this sync.
const MAX_COLLISIONS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("kube API: {0}")]
    Kube(#[from] kube::Error),
    #[error("encoding the pod template: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("controller revision {0}: too many hash collisions")]
    Collisions(String),
}

/// The revision data that restores `template`.
pub(crate) fn template_patch(template: &PodTemplateSpec) -> Result<Value, serde_json::Error> {
    let mut t = serde_json::to_value(template)?;
    if let Value::Object(map) = &mut t {
        map.insert("$patch".to_string(), Value::String("replace".to_string()));
    }
    Ok(json!({"spec": {"template": t}}))
}

/// The pod template a revision restores.
pub(crate) fn template_of(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = rev.data.as_ref()?.0.pointer("/spec/template")?.clone();
    if let Value::Object(map) = &mut t {
        map.remove("$patch");
    }
    serde_json::from_value(t).ok()
}

/// The hash of revision data with the parent's collision count.
pub(crate) fn hash_of(data: &Value, collision_count: i32) -> String {
    hash::hash_value(data, Some(collision_count))
}

fn data_of(rev: &ControllerRevision) -> Option<&Value> {
    rev.data.as_ref().map(|d| &d.0)
}

/// The last revision (highest number) whose data is `data`.
pub(crate) fn find_equal<'a>(
    revisions: &'a [ControllerRevision],
    data: &Value,
) -> Option<&'a ControllerRevision> {
    revisions
        .iter()
        .filter(|r| data_of(r) == Some(data))
        .max_by_key(|r| r.revision)
}

/// The number the next revision gets.
pub(crate) fn next_number(revisions: &[ControllerRevision]) -> i64 {
    revisions.iter().map(|r| r.revision).max().unwrap_or(0) + 1
}

/// The hash a revision carries (its label, else the suffix of its name).
pub(crate) fn hash_label(rev: &ControllerRevision) -> String {
    rev.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(HASH_LABEL))
        .cloned()
        .unwrap_or_else(|| {
            let name = rev.metadata.name.as_deref().unwrap_or_default();
            name.rsplit('-').next().unwrap_or_default().to_string()
        })
}

/// The revisions `owner` controls, oldest first, adopting matching orphans
/// and releasing owned ones that stopped matching, as for pods.
pub(crate) async fn list_owned(
    api: &Api<ControllerRevision>,
    owner: &Owner,
    selector: &Selector,
) -> Result<Vec<ControllerRevision>, Error> {
    let all = api.list(&ListParams::default()).await?.items;
    let mut owned = Vec::new();
    for rev in all {
        let (Some(name), Some(uid)) = (rev.metadata.name.clone(), rev.metadata.uid.clone()) else {
            continue;
        };
        match ownership::classify(owner, selector, &rev.metadata) {
            Claim::Keep => owned.push(rev),
            Claim::Ignore => {}
            Claim::Release => ownership::release(api, owner, &name, &uid).await?,
            Claim::Adopt => {
                if let Some(adopted) = ownership::adopt(api, owner, &name, &uid).await? {
                    owned.push(adopted);
                }
            }
        }
    }
    owned.sort_by(|a, b| {
        a.revision
            .cmp(&b.revision)
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    Ok(owned)
}

/// Creates the revision `number` holding `data`, labelled with
/// `labels` plus the hash (and `extra_hash_label`s, e.g. the DaemonSet's
/// `controller-revision-hash`). A namesake with the same data that `owner`
/// controls is returned as is; any other namesake is a collision, which bumps
/// `collision_count` and tries the next name.
pub(crate) async fn create(
    api: &Api<ControllerRevision>,
    owner: &Owner,
    labels: &BTreeMap<String, String>,
    extra_hash_labels: &[&str],
    data: &Value,
    number: i64,
    collision_count: &mut i32,
) -> Result<ControllerRevision, Error> {
    for _ in 0..MAX_COLLISIONS {
        let hash = hash_of(data, *collision_count);
        let name = format!("{}-{hash}", owner.name);
        let mut labels = labels.clone();
        labels.insert(HASH_LABEL.to_string(), hash.clone());
        for l in extra_hash_labels {
            labels.insert((*l).to_string(), hash.clone());
        }
        let rev = ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(owner.namespace.clone()),
                labels: Some(labels),
                owner_references: Some(vec![owner.reference()]),
                ..ObjectMeta::default()
            },
            data: Some(RawExtension(data.clone())),
            revision: number,
        };
        match api.create(&PostParams::default(), &rev).await {
            Ok(created) => return Ok(created),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                if let Some(existing) = api.get_opt(&name).await? {
                    let ours = ownership::controller_of(&existing.metadata)
                        .is_some_and(|r| r.uid == owner.uid);
                    if ours && data_of(&existing) == Some(data) {
                        return Ok(existing);
                    }
                }
                *collision_count = collision_count.saturating_add(1);
                tracing::info!(revision = %name, collision_count = *collision_count, "controller revision hash collision");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Collisions(owner.name.clone()))
}

/// Gives an existing revision a new number (it became current again).
pub(crate) async fn renumber(
    api: &Api<ControllerRevision>,
    rev: &ControllerRevision,
    number: i64,
) -> Result<ControllerRevision, Error> {
    if rev.revision == number {
        return Ok(rev.clone());
    }
    let name = rev.metadata.name.clone().unwrap_or_default();
    let patch = json!({"revision": number});
    Ok(api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?)
}

/// The revisions to delete so that at most `limit` revisions outside `live`
/// (names still in use) remain: the oldest first.
pub(crate) fn to_truncate<'a>(
    revisions: &'a [ControllerRevision],
    live: &HashSet<String>,
    limit: i32,
) -> Vec<&'a ControllerRevision> {
    let mut history: Vec<&ControllerRevision> = revisions
        .iter()
        .filter(|r| !r.metadata.name.as_ref().is_some_and(|n| live.contains(n)))
        .collect();
    history.sort_by_key(|r| r.revision);
    let keep = usize::try_from(limit.max(0)).unwrap_or(0);
    let excess = history.len().saturating_sub(keep);
    history.into_iter().take(excess).collect()
}

/// Deletes the revisions [`to_truncate`] picks; already-gone ones are fine.
pub(crate) async fn truncate(
    api: &Api<ControllerRevision>,
    revisions: &[ControllerRevision],
    live: &HashSet<String>,
    limit: i32,
) -> Result<(), Error> {
    for rev in to_truncate(revisions, live, limit) {
        let Some(name) = rev.metadata.name.as_deref() else {
            continue;
        };
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(name: &str, number: i64, data: Value) -> ControllerRevision {
        ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            data: Some(RawExtension(data)),
            revision: number,
        }
    }

    #[test]
    fn patch_round_trips_the_template() {
        let t: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}
        }))
        .unwrap();
        let data = template_patch(&t).unwrap();
        assert_eq!(data["spec"]["template"]["$patch"], "replace");
        let r = rev("web-1", 1, data.clone());
        assert_eq!(template_of(&r), Some(t));
        assert_ne!(hash_of(&data, 0), hash_of(&data, 1));
    }

    #[test]
    fn equal_next_and_truncation() {
        let a = json!({"spec": {"template": {"x": 1}}});
        let b = json!({"spec": {"template": {"x": 2}}});
        let revs = vec![
            rev("s-a", 1, a.clone()),
            rev("s-b", 2, b.clone()),
            rev("s-a2", 3, a.clone()),
            rev("s-c", 4, json!({})),
        ];
        assert_eq!(
            find_equal(&revs, &a).and_then(|r| r.metadata.name.as_deref()),
            Some("s-a2")
        );
        assert!(find_equal(&revs, &json!({"y": 1})).is_none());
        assert_eq!(next_number(&revs), 5);
        assert_eq!(next_number(&[]), 1);

        let live: HashSet<String> = ["s-c".to_string(), "s-a".to_string()].into();
        let names = |limit| {
            to_truncate(&revs, &live, limit)
                .iter()
                .map(|r| r.metadata.name.clone().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(0), ["s-b", "s-a2"]);
        assert_eq!(names(1), ["s-b"]);
        assert!(names(10).is_empty());
    }
}
