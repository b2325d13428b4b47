//! Facts about a Deployment's ReplicaSets: their sizes, revisions and the
//! annotations the Deployment controller keeps on them, which one is the
//! "new" ReplicaSet (its template equals the Deployment's, ignoring the
//! `pod-template-hash` label), and the orders upstream sorts them in.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

use super::strategy;

pub(crate) const HASH_LABEL: &str = "pod-template-hash";
pub(crate) const REVISION: &str = "deployment.kubernetes.io/revision";
pub(crate) const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub(crate) const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub(crate) const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
/// Longest `revision-history` annotation kept.
const MAX_REVISION_HISTORY_CHARS: usize = 2000;

/// Annotations of the Deployment that are not copied onto its ReplicaSets.
fn skip_copy(key: &str) -> bool {
    matches!(
        key,
        LAST_APPLIED | REVISION | REVISION_HISTORY | DESIRED_REPLICAS | MAX_REPLICAS | ROLLBACK_TO
    )
}

pub(crate) fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub(crate) fn status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

pub(crate) fn available_replicas(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

pub(crate) fn ready_replicas(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

pub(crate) fn name(rs: &ReplicaSet) -> &str {
    rs.metadata.name.as_deref().unwrap_or_default()
}

fn annotation<'a>(rs: &'a ReplicaSet, key: &str) -> Option<&'a str> {
    rs.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// The revision annotation as a number (0 when absent or malformed).
pub(crate) fn revision(rs: &ReplicaSet) -> i64 {
    annotation(rs, REVISION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub(crate) fn max_revision(rss: &[&ReplicaSet]) -> i64 {
    rss.iter().map(|rs| revision(rs)).max().unwrap_or(0)
}

pub(crate) fn desired_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation(rs, DESIRED_REPLICAS)?.parse().ok()
}

pub(crate) fn max_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation(rs, MAX_REPLICAS)?.parse().ok()
}

/// Oldest first; equal times by name.
pub(crate) fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let t = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
    match (t(a), t(b)) {
        (x, y) if x == y => name(a).cmp(name(b)),
        (x, y) => x.cmp(&y),
    }
}

/// Lowest revision first; equal revisions by creation.
pub(crate) fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    revision(a)
        .cmp(&revision(b))
        .then_with(|| by_creation(a, b))
}

/// Largest first; equal sizes newest first (where to add replicas).
pub(crate) fn by_size_newer(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    spec_replicas(b)
        .cmp(&spec_replicas(a))
        .then_with(|| by_creation(b, a))
}

/// Largest first; equal sizes oldest first (where to remove replicas).
pub(crate) fn by_size_older(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    spec_replicas(b)
        .cmp(&spec_replicas(a))
        .then_with(|| by_creation(a, b))
}

/// Drops nulls and empty lists/maps, which the API treats like absent fields.
pub(crate) fn semantic(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, semantic(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(semantic).collect()),
        other => other,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn template_without_hash(t: &PodTemplateSpec) -> Value {
    let mut t = t.clone();
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(HASH_LABEL);
    }
    semantic(serde_json::to_value(t).unwrap_or(Value::Null))
}

/// Template equality ignoring the `pod-template-hash` label.
pub(crate) fn templates_equal_ignoring_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    template_without_hash(a) == template_without_hash(b)
}

/// The template hashed for the ReplicaSet name: its semantic JSON.
pub(crate) fn hashable_template(t: &PodTemplateSpec) -> Value {
    semantic(serde_json::to_value(t).unwrap_or(Value::Null))
}

/// The ReplicaSet whose template equals the Deployment's (the oldest, should
/// there be several).
pub(crate) fn find_new<'a>(d: &Deployment, rss: &'a [ReplicaSet]) -> Option<&'a ReplicaSet> {
    let template = &d.spec.as_ref()?.template;
    let mut sorted: Vec<&ReplicaSet> = rss.iter().collect();
    sorted.sort_by(|a, b| by_creation(a, b));
    sorted.into_iter().find(|rs| {
        rs.spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .is_some_and(|t| templates_equal_ignoring_hash(t, template))
    })
}

/// Every ReplicaSet except the new one.
pub(crate) fn find_old<'a>(d: &Deployment, rss: &'a [ReplicaSet]) -> Vec<&'a ReplicaSet> {
    let new_uid = find_new(d, rss).and_then(|rs| rs.metadata.uid.clone());
    rss.iter()
        .filter(|rs| rs.metadata.uid != new_uid || new_uid.is_none())
        .collect()
}

/// Sum of `spec.replicas`.
pub(crate) fn total_spec(rss: &[&ReplicaSet]) -> i32 {
    rss.iter().map(|rs| spec_replicas(rs)).sum()
}

/// Sum of `status.replicas`.
pub(crate) fn total_status(rss: &[&ReplicaSet]) -> i32 {
    rss.iter().map(|rs| status_replicas(rs)).sum()
}

pub(crate) fn total_available(rss: &[&ReplicaSet]) -> i32 {
    rss.iter().map(|rs| available_replicas(rs)).sum()
}

pub(crate) fn total_ready(rss: &[&ReplicaSet]) -> i32 {
    rss.iter().map(|rs| ready_replicas(rs)).sum()
}

/// ReplicaSets with a nonzero `spec.replicas`.
pub(crate) fn active<'a>(rss: &[&'a ReplicaSet]) -> Vec<&'a ReplicaSet> {
    rss.iter()
        .copied()
        .filter(|rs| spec_replicas(rs) > 0)
        .collect()
}

fn annotations_mut(rs: &mut ReplicaSet) -> &mut BTreeMap<String, String> {
    rs.metadata.annotations.get_or_insert_with(BTreeMap::new)
}

/// Sets the desired/max replicas annotations; whether anything changed.
pub(crate) fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let a = annotations_mut(rs);
    let mut changed = false;
    for (key, value) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let value = value.to_string();
        if a.get(key) != Some(&value) {
            a.insert(key.to_string(), value);
            changed = true;
        }
    }
    changed
}

pub(crate) fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    annotation(rs, DESIRED_REPLICAS) != Some(desired.to_string().as_str())
        || annotation(rs, MAX_REPLICAS) != Some(max.to_string().as_str())
}

/// Copies the Deployment's own annotations (not the bookkeeping ones) onto
/// the ReplicaSet; whether anything changed.
fn copy_deployment_annotations(d: &Deployment, rs: &mut ReplicaSet) -> bool {
    let mut changed = false;
    let a = annotations_mut(rs);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if skip_copy(k) || a.get(k) == Some(v) {
            continue;
        }
        a.insert(k.clone(), v.clone());
        changed = true;
    }
    changed
}

/// Brings the new ReplicaSet's annotations up to date: the Deployment's
/// annotations, the revision (raised to `new_revision`, the previous one moved
/// into `revision-history`), and for a ReplicaSet being created the replicas
/// annotations. Returns whether anything changed.
pub(crate) fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: &str,
    exists: bool,
) -> bool {
    let mut changed = copy_deployment_annotations(d, rs);
    let old = annotation(rs, REVISION).map(str::to_string);
    let old_number: i64 = match old.as_deref() {
        None | Some("") => 0,
        Some(v) => match v.parse() {
            Ok(n) => n,
            Err(_) => {
                tracing::warn!(replicaset = %name(rs), revision = v, "unparsable revision annotation");
                return false;
            }
        },
    };
    let Ok(new_number) = new_revision.parse::<i64>() else {
        return false;
    };
    if old_number < new_number {
        annotations_mut(rs).insert(REVISION.to_string(), new_revision.to_string());
        changed = true;
        if let Some(old) = old {
            let history = annotation(rs, REVISION_HISTORY)
                .unwrap_or_default()
                .to_string();
            if history.is_empty() {
                annotations_mut(rs).insert(REVISION_HISTORY.to_string(), old);
            } else {
                let mut entries: Vec<&str> = history.split(',').collect();
                let mut total = history.len() + old.len() + 1;
                let mut start = 0;
                while total > MAX_REVISION_HISTORY_CHARS && start < entries.len() {
                    total -= entries[start].len() + 1;
                    start += 1;
                }
                if total <= MAX_REVISION_HISTORY_CHARS {
                    entries = entries.split_off(start);
                    entries.push(&old);
                    let joined = entries.join(",");
                    annotations_mut(rs).insert(REVISION_HISTORY.to_string(), joined);
                }
            }
        }
    }
    if !exists {
        let desired = strategy::replicas(d);
        changed |= set_replicas_annotations(rs, desired, desired + strategy::max_surge(d));
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn rs(
        name: &str,
        created: i64,
        revision: Option<&str>,
        template: Value,
    ) -> ReplicaSet {
        let mut annotations = serde_json::Map::new();
        if let Some(r) = revision {
            annotations.insert(REVISION.into(), json!(r));
        }
        serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "uid": format!("uid-{name}"),
                "creationTimestamp": k8s_openapi::jiff::Timestamp::from_second(created).unwrap().to_string(),
                "annotations": annotations
            },
            "spec": {"replicas": 1, "selector": {}, "template": template}
        }))
        .unwrap()
    }

    fn deployment(template: Value, annotations: Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "annotations": annotations},
            "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}}, "template": template,
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}}
        }))
        .unwrap()
    }

    #[test]
    fn new_and_old_replica_sets() {
        let t1 = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "v1"}]}});
        let t2 = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "v2"}]}});
        let with_hash = |t: &Value, h: &str| {
            let mut t = t.clone();
            t["metadata"]["labels"][HASH_LABEL] = json!(h);
            t
        };
        let rss = vec![
            rs("web-a", 10, Some("1"), with_hash(&t1, "a")),
            rs("web-b", 20, Some("2"), with_hash(&t2, "b")),
            rs("web-c", 30, Some("3"), with_hash(&t2, "c")),
        ];
        let d2 = deployment(t2.clone(), json!({}));
        assert_eq!(
            find_new(&d2, &rss).map(name),
            Some("web-b"),
            "the oldest matching template"
        );
        let old: Vec<&str> = find_old(&d2, &rss).into_iter().map(name).collect();
        assert_eq!(old, ["web-a", "web-c"]);
        let d3 = deployment(
            json!({"spec": {"containers": [{"name": "c", "image": "v3"}]}}),
            json!({}),
        );
        assert!(find_new(&d3, &rss).is_none());
        assert_eq!(find_old(&d3, &rss).len(), 3);
        // Empty lists and maps compare equal to absent ones.
        let mut t1_empty = t1.clone();
        t1_empty["spec"]["volumes"] = json!([]);
        t1_empty["metadata"]["annotations"] = json!({});
        let d1 = deployment(t1_empty, json!({}));
        assert_eq!(find_new(&d1, &rss).map(name), Some("web-a"));
        let refs: Vec<&ReplicaSet> = rss.iter().collect();
        assert_eq!(max_revision(&refs), 3);
    }

    #[test]
    fn sort_orders() {
        let mut rss = [
            rs("b", 20, Some("5"), json!({})),
            rs("a", 20, Some("2"), json!({})),
            rs("c", 10, Some("9"), json!({})),
        ];
        rss.sort_by(by_creation);
        assert_eq!(rss.iter().map(name).collect::<Vec<_>>(), ["c", "a", "b"]);
        rss.sort_by(by_revision);
        assert_eq!(rss.iter().map(name).collect::<Vec<_>>(), ["a", "b", "c"]);
        rss[0].spec.as_mut().unwrap().replicas = Some(3);
        rss.sort_by(by_size_newer);
        assert_eq!(rss.iter().map(name).collect::<Vec<_>>(), ["a", "b", "c"]);
        rss.sort_by(by_size_older);
        assert_eq!(rss.iter().map(name).collect::<Vec<_>>(), ["a", "c", "b"]);
    }

    #[test]
    fn new_rs_annotations() {
        let d = deployment(
            json!({}),
            json!({"team": "x", REVISION: "7", LAST_APPLIED: "{}"}),
        );
        // A ReplicaSet being created.
        let mut fresh = rs("web-a", 1, None, json!({}));
        assert!(set_new_rs_annotations(&d, &mut fresh, "1", false));
        let a = fresh.metadata.annotations.clone().unwrap();
        assert_eq!(a.get("team").map(String::as_str), Some("x"));
        assert_eq!(a.get(REVISION).map(String::as_str), Some("1"));
        assert_eq!(a.get(DESIRED_REPLICAS).map(String::as_str), Some("4"));
        assert_eq!(a.get(MAX_REPLICAS).map(String::as_str), Some("5"));
        assert!(!a.contains_key(LAST_APPLIED) && !a.contains_key(REVISION_HISTORY));
        // Unchanged on a second pass.
        assert!(!set_new_rs_annotations(&d, &mut fresh, "1", true));
        // A rollback to it raises its revision and records the old one.
        assert!(set_new_rs_annotations(&d, &mut fresh, "4", true));
        assert!(set_new_rs_annotations(&d, &mut fresh, "6", true));
        let a = fresh.metadata.annotations.clone().unwrap();
        assert_eq!(a.get(REVISION).map(String::as_str), Some("6"));
        assert_eq!(a.get(REVISION_HISTORY).map(String::as_str), Some("1,4"));
        // A lower revision never replaces a higher one.
        assert!(!set_new_rs_annotations(&d, &mut fresh, "2", true));
    }
}
