//! The stable identity of a StatefulSet's pods: the name `<set>-<ordinal>`,
//! the `statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index`
//! labels, hostname and subdomain (the governing Service), and the claims
//! `<claim>-<set>-<ordinal>` made from `volumeClaimTemplates` and mounted in
//! place of same-named volumes. Pure functions, so they are unit-tested here.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::workload::history::REVISION_HASH_LABEL;

pub(crate) const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub(crate) const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The ordinal of a pod named `<set>-<ordinal>`, if it is one of `set`'s.
pub(crate) fn ordinal_of(set: &str, pod_name: &str) -> Option<i32> {
    let rest = pod_name.strip_prefix(set)?.strip_prefix('-')?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // "01" is not an ordinal the controller would have created.
    if rest.len() > 1 && rest.starts_with('0') {
        return None;
    }
    rest.parse().ok()
}

pub(crate) fn pod_name(set: &str, ordinal: i32) -> String {
    format!("{set}-{ordinal}")
}

pub(crate) fn claim_name(claim: &str, set: &str, ordinal: i32) -> String {
    format!("{claim}-{set}-{ordinal}")
}

/// The revision (name) a pod was made from.
pub(crate) fn revision_of(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()?
        .get(REVISION_HASH_LABEL)
        .map(String::as_str)
}

/// The pod for `ordinal` built from `template` (the template of `revision`).
pub(crate) fn new_pod(
    set: &StatefulSet,
    template: &PodTemplateSpec,
    ordinal: i32,
    revision: &str,
    owner: OwnerReference,
) -> Pod {
    let set_name = set.metadata.name.clone().unwrap_or_default();
    let name = pod_name(&set_name, ordinal);
    let meta = template.metadata.clone().unwrap_or_default();
    let mut labels = meta.labels.unwrap_or_default();
    labels.insert(POD_NAME_LABEL.to_string(), name.clone());
    labels.insert(POD_INDEX_LABEL.to_string(), ordinal.to_string());
    labels.insert(REVISION_HASH_LABEL.to_string(), revision.to_string());
    let mut spec = template.spec.clone().unwrap_or_default();
    spec.hostname = Some(name.clone());
    let service = set
        .spec
        .as_ref()
        .and_then(|s| s.service_name.clone())
        .filter(|s| !s.is_empty());
    if service.is_some() {
        spec.subdomain = service;
    }
    let claims = claim_templates(set);
    if !claims.is_empty() {
        let mut volumes: Vec<Volume> = spec.volumes.take().unwrap_or_default();
        for claim in &claims {
            let Some(claim_template) = claim.metadata.name.as_deref() else {
                continue;
            };
            volumes.retain(|v| v.name != claim_template);
            volumes.push(Volume {
                name: claim_template.to_string(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim_name(claim_template, &set_name, ordinal),
                    read_only: None,
                }),
                ..Volume::default()
            });
        }
        spec.volumes = Some(volumes);
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: set.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

fn claim_templates(set: &StatefulSet) -> Vec<PersistentVolumeClaim> {
    set.spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.clone())
        .unwrap_or_default()
}

/// The claims pod `ordinal` needs, labelled with the claim template's labels
/// and the set's `matchLabels` (as upstream), owned by `owner` if given (the
/// set, when its retention policy deletes claims with it).
pub(crate) fn claims_for(
    set: &StatefulSet,
    ordinal: i32,
    owner: Option<OwnerReference>,
) -> Vec<PersistentVolumeClaim> {
    let set_name = set.metadata.name.clone().unwrap_or_default();
    let match_labels: BTreeMap<String, String> = set
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    claim_templates(set)
        .into_iter()
        .filter_map(|template| {
            let template_name = template.metadata.name.clone()?;
            let mut labels = template.metadata.labels.clone().unwrap_or_default();
            labels.extend(match_labels.clone());
            Some(PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim_name(&template_name, &set_name, ordinal)),
                    namespace: set.metadata.namespace.clone(),
                    labels: Some(labels),
                    annotations: template.metadata.annotations.clone(),
                    owner_references: owner.clone().map(|o| vec![o]),
                    ..ObjectMeta::default()
                },
                spec: template.spec.clone(),
                status: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set() -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {
                "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}], "volumes": [{"name": "www", "emptyDir": {}}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "www", "labels": {"tier": "data"}}, "spec": {"accessModes": ["ReadWriteOnce"]}}]
            }
        }))
        .unwrap()
    }

    fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "StatefulSet".into(),
            name: "web".into(),
            uid: "u".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    #[test]
    fn ordinals() {
        for (set, pod, want) in [
            ("web", "web-0", Some(0)),
            ("web", "web-12", Some(12)),
            ("web", "web-01", None),
            ("web", "web-", None),
            ("web", "web-x", None),
            ("web", "webb-1", None),
            ("web", "web-db-1", None),
            ("a-b", "a-b-3", Some(3)),
        ] {
            assert_eq!(ordinal_of(set, pod), want, "{set} {pod}");
        }
    }

    #[test]
    fn pod_identity_and_volumes() {
        let s = set();
        let template = s.spec.as_ref().unwrap().template.clone();
        let p = new_pod(&s, &template, 2, "web-abc", owner());
        assert_eq!(p.metadata.name.as_deref(), Some("web-2"));
        let labels = p.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[POD_NAME_LABEL], "web-2");
        assert_eq!(labels[POD_INDEX_LABEL], "2");
        assert_eq!(labels[REVISION_HASH_LABEL], "web-abc");
        assert_eq!(labels["app"], "web");
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("web-2"));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let vols = spec.volumes.as_ref().unwrap();
        assert_eq!(vols.len(), 1, "the template's volume is replaced");
        assert_eq!(
            vols[0].persistent_volume_claim.as_ref().unwrap().claim_name,
            "www-web-2"
        );
        assert_eq!(revision_of(&p), Some("web-abc"));

        let claims = claims_for(&s, 2, None);
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].metadata.name.as_deref(), Some("www-web-2"));
        let l = claims[0].metadata.labels.as_ref().unwrap();
        assert_eq!((l["app"].as_str(), l["tier"].as_str()), ("web", "data"));
        assert!(claims[0].metadata.owner_references.is_none());
        assert!(
            claims_for(&s, 0, Some(owner()))[0]
                .metadata
                .owner_references
                .is_some()
        );
    }
}
