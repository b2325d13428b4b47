//! Which pods belong to a Job (upstream's `PodControllerRefManager`): pods it
//! controls that its selector still matches are kept, controlled pods the
//! selector no longer matches are released, and matching pods without a
//! controller are adopted, with the tracking finalizer, so they are counted.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use super::Error;
use super::status::TRACKING_FINALIZER;

/// Whether `selector` selects `labels`. An empty selector selects nothing:
/// a Job always has a non-empty one, and adopting every pod would be worse.
pub(crate) fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let match_labels = selector.match_labels.iter().flatten();
    let exprs = selector.match_expressions.iter().flatten();
    if selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
    {
        return false;
    }
    match_labels
        .into_iter()
        .all(|(k, v)| labels.get(k) == Some(v))
        && exprs.into_iter().all(|e| {
            let value = labels.get(&e.key);
            let values = e.values.as_deref().unwrap_or_default();
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

/// What to do with one pod of the Job's namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Controlled by this Job and selected: one of its pods.
    Keep,
    /// Controlled by someone else, or neither selected nor controlled.
    Ignore,
    /// Selected and without a controller: take it.
    Adopt,
    /// Controlled by this Job but no longer selected: let it go.
    Release,
}

pub(crate) fn claim(
    pod: &Pod,
    job_uid: &str,
    selector: &LabelSelector,
    job_deleting: bool,
) -> Claim {
    let empty = BTreeMap::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    let selected = selects(selector, labels);
    let controller = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true));
    match controller {
        Some(r) if r.uid != job_uid => Claim::Ignore,
        Some(_) if selected => Claim::Keep,
        // A Job being deleted lets the garbage collector handle its pods.
        Some(_) if job_deleting => Claim::Keep,
        Some(_) => Claim::Release,
        None if selected && !job_deleting && pod.metadata.deletion_timestamp.is_none() => {
            Claim::Adopt
        }
        None => Claim::Ignore,
    }
}

/// The controller reference a Job puts on its pods.
pub(crate) fn controller_ref(job: &Job) -> OwnerReference {
    OwnerReference {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        name: job.metadata.name.clone().unwrap_or_default(),
        uid: job.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Merge patch (pinned to the pod's resourceVersion) adopting the pod.
pub(crate) fn adopt_patch(pod: &Pod, job: &Job) -> Value {
    let mut refs = pod.metadata.owner_references.clone().unwrap_or_default();
    refs.push(controller_ref(job));
    let mut finalizers = pod.metadata.finalizers.clone().unwrap_or_default();
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(TRACKING_FINALIZER.into());
    }
    json!({"metadata": {
        "resourceVersion": pod.metadata.resource_version,
        "ownerReferences": refs,
        "finalizers": finalizers,
    }})
}

/// Merge patch (pinned to the pod's resourceVersion) releasing the pod: the
/// Job's reference and its tracking finalizer go.
pub(crate) fn release_patch(pod: &Pod, job_uid: &str) -> Value {
    let refs: Vec<OwnerReference> = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.uid != job_uid)
        .cloned()
        .collect();
    let finalizers: Vec<String> = pod
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != TRACKING_FINALIZER)
        .cloned()
        .collect();
    let or_null = |v: Value, empty: bool| if empty { Value::Null } else { v };
    json!({"metadata": {
        "resourceVersion": pod.metadata.resource_version,
        "ownerReferences": or_null(json!(refs), refs.is_empty()),
        "finalizers": or_null(json!(finalizers), finalizers.is_empty()),
    }})
}

/// Applies a claim patch; returns the updated pod (`None` if it is gone).
pub(crate) async fn patch(api: &Api<Pod>, pod: &Pod, body: &Value) -> Result<Option<Pod>, Error> {
    let Some(name) = pod.metadata.name.as_deref() else {
        return Ok(None);
    };
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(body))
        .await
    {
        Ok(p) => Ok(Some(p)),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn selector() -> LabelSelector {
        LabelSelector {
            match_labels: Some(labels(&[("app", "x")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "NotIn".into(),
                values: Some(vec!["db".into()]),
            }]),
        }
    }

    #[test]
    fn selection() {
        assert!(selects(&selector(), &labels(&[("app", "x")])));
        assert!(selects(
            &selector(),
            &labels(&[("app", "x"), ("tier", "web")])
        ));
        assert!(!selects(
            &selector(),
            &labels(&[("app", "x"), ("tier", "db")])
        ));
        assert!(!selects(&selector(), &labels(&[("app", "y")])));
        assert!(!selects(
            &LabelSelector::default(),
            &labels(&[("app", "x")])
        ));
    }

    fn pod(app: &str, controller: Option<&str>) -> Pod {
        let mut p = Pod::default();
        p.metadata.labels = Some(labels(&[("app", app)]));
        p.metadata.owner_references = controller.map(|uid| {
            vec![OwnerReference {
                uid: uid.into(),
                controller: Some(true),
                ..OwnerReference::default()
            }]
        });
        p.metadata.finalizers = Some(vec![TRACKING_FINALIZER.into()]);
        p
    }

    #[test]
    fn claims() {
        let s = selector();
        for (pod, deleting, want) in [
            (pod("x", Some("job")), false, Claim::Keep),
            (pod("x", Some("other")), false, Claim::Ignore),
            (pod("y", Some("job")), false, Claim::Release),
            (pod("y", Some("job")), true, Claim::Keep),
            (pod("x", None), false, Claim::Adopt),
            (pod("x", None), true, Claim::Ignore),
            (pod("y", None), false, Claim::Ignore),
        ] {
            assert_eq!(
                claim(&pod, "job", &s, deleting),
                want,
                "{pod:?} deleting={deleting}"
            );
        }
    }

    #[test]
    fn release_drops_reference_and_finalizer() {
        let p = release_patch(&pod("y", Some("job")), "job");
        assert!(p["metadata"]["ownerReferences"].is_null());
        assert!(p["metadata"]["finalizers"].is_null());
    }
}
