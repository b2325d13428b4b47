//! Quota scopes: which objects a scoped ResourceQuota tracks. A quota's
//! `spec.scopes` and `spec.scopeSelector` all have to match; object kinds
//! without a scope notion match no scope at all, as upstream.

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, Pod, PodAffinityTerm, ResourceQuota, ScopedResourceSelectorRequirement,
};

/// Every scope requirement of the quota: each `spec.scopes` entry as an
/// `Exists` requirement, then the selector's expressions.
pub(crate) fn requirements(quota: &ResourceQuota) -> Vec<ScopedResourceSelectorRequirement> {
    let Some(spec) = quota.spec.as_ref() else {
        return Vec::new();
    };
    let mut reqs: Vec<_> = spec
        .scopes
        .iter()
        .flatten()
        .map(|scope| ScopedResourceSelectorRequirement {
            scope_name: scope.clone(),
            operator: "Exists".into(),
            values: None,
        })
        .collect();
    if let Some(selector) = &spec.scope_selector {
        reqs.extend(selector.match_expressions.iter().flatten().cloned());
    }
    reqs
}

pub(crate) fn pod_matches_all(pod: &Pod, reqs: &[ScopedResourceSelectorRequirement]) -> bool {
    reqs.iter().all(|r| pod_matches(pod, r))
}

pub(crate) fn pvc_matches_all(
    pvc: &PersistentVolumeClaim,
    reqs: &[ScopedResourceSelectorRequirement],
) -> bool {
    reqs.iter().all(|r| pvc_matches(pvc, r))
}

fn pod_matches(pod: &Pod, req: &ScopedResourceSelectorRequirement) -> bool {
    match req.scope_name.as_str() {
        "Terminating" => is_terminating(pod),
        "NotTerminating" => !is_terminating(pod),
        "BestEffort" => is_best_effort(pod),
        "NotBestEffort" => !is_best_effort(pod),
        "PriorityClass" => {
            let class = pod
                .spec
                .as_ref()
                .and_then(|s| s.priority_class_name.as_deref())
                .unwrap_or("");
            if req.operator == "Exists" {
                !class.is_empty()
            } else {
                // Upstream matches a one-label set {PriorityClass: <name>}, so
                // the key always exists, even for pods without a class.
                value_matches(Some(class), req)
            }
        }
        "CrossNamespacePodAffinity" => uses_cross_namespace_affinity(pod),
        _ => false,
    }
}

fn pvc_matches(pvc: &PersistentVolumeClaim, req: &ScopedResourceSelectorRequirement) -> bool {
    if req.scope_name != "VolumeAttributesClass" {
        return false;
    }
    let mut classes: Vec<&str> = Vec::new();
    if let Some(c) = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_attributes_class_name.as_deref())
    {
        classes.push(c);
    }
    if let Some(status) = &pvc.status {
        if let Some(c) = status.current_volume_attributes_class_name.as_deref() {
            classes.push(c);
        }
        if let Some(c) = status
            .modify_volume_status
            .as_ref()
            .and_then(|m| m.target_volume_attributes_class_name.as_deref())
        {
            classes.push(c);
        }
    }
    classes.retain(|c| !c.is_empty());
    if req.operator == "Exists" {
        return !classes.is_empty();
    }
    if classes.is_empty() {
        return value_matches(None, req);
    }
    classes.into_iter().any(|c| value_matches(Some(c), req))
}

/// Label-selector semantics of one requirement against one optional value.
fn value_matches(value: Option<&str>, req: &ScopedResourceSelectorRequirement) -> bool {
    let values = req.values.as_deref().unwrap_or(&[]);
    let listed = value.is_some_and(|v| values.iter().any(|x| x == v));
    match req.operator.as_str() {
        "In" => listed,
        "NotIn" => !listed,
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

fn is_terminating(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.active_deadline_seconds)
        .is_some_and(|d| d >= 0)
}

/// BestEffort QoS: the recorded class, else no cpu/memory request or limit
/// anywhere in the pod.
pub(crate) fn is_best_effort(pod: &Pod) -> bool {
    if let Some(class) = pod.status.as_ref().and_then(|s| s.qos_class.as_deref()) {
        return class == "BestEffort";
    }
    let Some(spec) = pod.spec.as_ref() else {
        return true;
    };
    let compute = |r: &Option<k8s_openapi::api::core::v1::ResourceRequirements>| {
        r.as_ref().is_some_and(|r| {
            [&r.requests, &r.limits].into_iter().flatten().any(|m| {
                m.iter().any(|(k, v)| {
                    (k == "cpu" || k == "memory")
                        && super::quantity::Qty::parse(&v.0).is_ok_and(|q| !q.is_zero())
                })
            })
        })
    };
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    !(compute(&spec.resources) || containers.into_iter().any(|c| compute(&c.resources)))
}

fn uses_cross_namespace_affinity(pod: &Pod) -> bool {
    let Some(affinity) = pod.spec.as_ref().and_then(|s| s.affinity.as_ref()) else {
        return false;
    };
    let crosses = |t: &PodAffinityTerm| {
        t.namespace_selector.is_some() || t.namespaces.as_ref().is_some_and(|n| !n.is_empty())
    };
    let mut terms: Vec<&PodAffinityTerm> = Vec::new();
    if let Some(a) = &affinity.pod_affinity {
        terms.extend(
            a.required_during_scheduling_ignored_during_execution
                .iter()
                .flatten(),
        );
        terms.extend(
            a.preferred_during_scheduling_ignored_during_execution
                .iter()
                .flatten()
                .map(|w| &w.pod_affinity_term),
        );
    }
    if let Some(a) = &affinity.pod_anti_affinity {
        terms.extend(
            a.required_during_scheduling_ignored_during_execution
                .iter()
                .flatten(),
        );
        terms.extend(
            a.preferred_during_scheduling_ignored_during_execution
                .iter()
                .flatten()
                .map(|w| &w.pod_affinity_term),
        );
    }
    terms.into_iter().any(crosses)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};

    fn pod(deadline: Option<i64>, qos: &str, class: Option<&str>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                active_deadline_seconds: deadline,
                priority_class_name: class.map(Into::into),
                ..Default::default()
            }),
            status: Some(PodStatus {
                qos_class: Some(qos.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn req(scope: &str, op: &str, values: &[&str]) -> ScopedResourceSelectorRequirement {
        ScopedResourceSelectorRequirement {
            scope_name: scope.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn pod_scopes() {
        let terminating_be = pod(Some(30), "BestEffort", None);
        let long_burstable = pod(None, "Burstable", Some("high"));
        let cases = [
            (req("Terminating", "Exists", &[]), true, false),
            (req("NotTerminating", "Exists", &[]), false, true),
            (req("BestEffort", "Exists", &[]), true, false),
            (req("NotBestEffort", "Exists", &[]), false, true),
            (req("PriorityClass", "Exists", &[]), false, true),
            (req("PriorityClass", "In", &["high", "mid"]), false, true),
            (req("PriorityClass", "NotIn", &["high"]), true, false),
            (req("PriorityClass", "DoesNotExist", &[]), false, false),
            (
                req("CrossNamespacePodAffinity", "Exists", &[]),
                false,
                false,
            ),
        ];
        for (r, a, b) in cases {
            assert_eq!(
                pod_matches(&terminating_be, &r),
                a,
                "{r:?} terminating best-effort"
            );
            assert_eq!(pod_matches(&long_burstable, &r), b, "{r:?} burstable");
        }
        assert!(pod_matches_all(&terminating_be, &[]));
    }

    #[test]
    fn best_effort_computed_without_status() {
        let mut p = pod(None, "x", None);
        p.status = None;
        assert!(is_best_effort(&p));
    }
}
