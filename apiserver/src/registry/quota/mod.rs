//! ResourceQuota admission: a create in a namespace with quotas must fit in
//! every quota that measures it, and then reserves what it uses in those
//! quotas' `status.used` (a compare-and-swap write of each quota, retried on
//! conflicts), so concurrent creates can never overrun a quota between two
//! recalculations. The resource quota controller (an API client) recounts
//! `status.used` from the objects themselves and corrects any reservation a
//! failed create left behind. As upstream, a quota constrains only the
//! resources in its `status.hard`: a quota the controller has not seen yet
//! constrains nothing.

pub mod index;
pub mod usage;

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::list::ListRequest;
use super::meta;
use super::store::Store;
use crate::api_error::{ApiError, ApiResult};
use crate::printers::quantity;
use crate::resources::ResourceInfo;
use usage::Usage;

/// Attempts at reserving usage before giving up on conflicting writers.
const ATTEMPTS: usize = 10;

/// Admits `obj`, a new object of `info` in `ns`, against the namespace's
/// quotas, reserving its usage unless this is a dry run.
pub async fn admit(
    store: &Store,
    info: &ResourceInfo,
    obj: &Value,
    dry_run: bool,
) -> ApiResult<()> {
    if !info.namespaced {
        return Ok(());
    }
    let ns = meta::namespace(obj);
    let Some(quotas_info) = store.table.get("", "v1", "resourcequotas") else {
        return Ok(());
    };
    let prefix = quotas_info.list_prefix(None);
    if store
        .quota_index
        .has_quotas(&store.storage, &prefix, ns)
        .await
        == Some(false)
    {
        return Ok(());
    }
    let used_by_obj = usage::of_object(info, obj);
    for _ in 0..ATTEMPTS {
        let quotas = store
            .list(&quotas_info, Some(ns), &ListRequest::default())
            .await?
            .items;
        if quotas.is_empty() {
            return Ok(());
        }
        let mut reservations = Vec::new();
        for q in &quotas {
            if let Some(next) = check(info, obj, &used_by_obj, q)? {
                reservations.push(next);
            }
        }
        if dry_run {
            return Ok(());
        }
        match reserve(store, &quotas_info, reservations).await {
            Ok(()) => return Ok(()),
            Err(e) if e.code == 409 => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::new(
        500,
        "InternalError",
        format!(
            "Internal error occurred: resource quota evaluation timed out for namespace {ns:?}"
        ),
    ))
}

/// Writes each quota's new `status.used`, pinned to the version checked (a
/// storage compare-and-swap: a conflict means another create reserved first,
/// and the whole evaluation runs again).
async fn reserve(
    store: &Store,
    quotas_info: &ResourceInfo,
    reservations: Vec<Value>,
) -> ApiResult<()> {
    for next in reservations {
        let name = meta::name(&next);
        let key = quotas_info.key(Some(meta::namespace(&next)), name);
        let revision: i64 = meta::resource_version(&next)
            .parse()
            .map_err(|_| ApiError::internal("a listed quota has no resourceVersion"))?;
        store
            .storage
            .update(
                &key,
                meta::encode_for_storage(quotas_info, &next)?,
                revision,
            )
            .await
            .map_err(|e| ApiError::from_storage(e, quotas_info, name))?;
    }
    Ok(())
}

fn list_of(quota: &Value, pointer: &str) -> Usage {
    quota
        .pointer(pointer)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|q| (k.clone(), q.to_string())))
        .collect()
}

/// Checks one quota; `Some(quota with the new usage)` when it measures the
/// object and must be updated.
fn check(
    info: &ResourceInfo,
    obj: &Value,
    used_by_obj: &Usage,
    quota: &Value,
) -> ApiResult<Option<Value>> {
    let hard = list_of(quota, "/status/hard");
    let measured: Vec<&String> = hard.keys().filter(|n| usage::measures(info, n)).collect();
    if measured.is_empty() || !scopes_match(info, obj, quota) {
        return Ok(None);
    }
    let quota_name = meta::name(quota);
    let used = list_of(quota, "/status/used");
    let unknown: Vec<&str> = measured
        .iter()
        .filter(|n| !used.contains_key(n.as_str()))
        .map(|n| n.as_str())
        .collect();
    if !unknown.is_empty() {
        return Err(forbidden(
            info,
            obj,
            &format!(
                "status unknown for quota: {quota_name}, resources: {}",
                unknown.join(",")
            ),
        ));
    }
    let requested: Usage = measured
        .iter()
        .filter_map(|n| {
            used_by_obj
                .get(n.as_str())
                .map(|q| ((*n).clone(), q.clone()))
        })
        .filter(|(_, q)| quantity::compare(q, "0") != Some(std::cmp::Ordering::Equal))
        .collect();
    if requested.is_empty() {
        return Ok(None);
    }
    let mut new_used = used.clone();
    let mut exceeded = Vec::new();
    for (name, q) in &requested {
        let have = used.get(name).map_or("0", String::as_str);
        let total = quantity::add(have, q).unwrap_or_else(|| q.clone());
        if let Some(limit) = hard.get(name)
            && quantity::compare(&total, limit) == Some(std::cmp::Ordering::Greater)
        {
            exceeded.push(name.clone());
        }
        new_used.insert(name.clone(), total);
    }
    if !exceeded.is_empty() {
        let print = |list: &Usage| {
            exceeded
                .iter()
                .map(|n| {
                    format!(
                        "{n}={}",
                        list.get(n)
                            .map_or("0".to_string(), |q| quantity::add("0", q)
                                .unwrap_or_else(|| q.clone()))
                    )
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        return Err(forbidden(
            info,
            obj,
            &format!(
                "exceeded quota: {quota_name}, requested: {}, used: {}, limited: {}",
                print(&requested),
                print(&used),
                print(&hard)
            ),
        ));
    }
    let mut next = quota.clone();
    let used_json: Map<String, Value> = new_used.into_iter().map(|(k, v)| (k, json!(v))).collect();
    next["status"]["used"] = Value::Object(used_json);
    Ok(Some(next))
}

/// Whether the quota's scopes select the object. Scopes only ever select pods;
/// a scoped quota never measures other kinds.
fn scopes_match(info: &ResourceInfo, obj: &Value, quota: &Value) -> bool {
    let mut selectors: Vec<(String, String, Vec<String>)> = quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| (s.to_string(), "Exists".to_string(), Vec::new()))
        .collect();
    for e in quota
        .pointer("/spec/scopeSelector/matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        selectors.push((
            e.get("scopeName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            e.get("operator")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            e.get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        ));
    }
    if selectors.is_empty() {
        return true;
    }
    if !(info.group.is_empty() && info.plural == "pods") {
        return false;
    }
    selectors
        .iter()
        .all(|(scope, op, values)| pod_in_scope(obj, scope, op, values))
}

fn pod_in_scope(pod: &Value, scope: &str, op: &str, values: &[String]) -> bool {
    let terminating = pod
        .pointer("/spec/activeDeadlineSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|s| s >= 0);
    let best_effort = meta::str_at(pod, "/status/qosClass") == Some("BestEffort");
    match scope {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => best_effort,
        "NotBestEffort" => !best_effort,
        "PriorityClass" => {
            let class = meta::str_at(pod, "/spec/priorityClassName").unwrap_or("");
            match op {
                "Exists" => !class.is_empty(),
                "DoesNotExist" => class.is_empty(),
                "In" => values.iter().any(|v| v == class),
                "NotIn" => !values.iter().any(|v| v == class),
                _ => false,
            }
        }
        "CrossNamespacePodAffinity" => has_cross_namespace_affinity(pod),
        _ => false,
    }
}

/// Whether a pod's (anti-)affinity terms reach other namespaces.
fn has_cross_namespace_affinity(pod: &Value) -> bool {
    ["podAffinity", "podAntiAffinity"].iter().any(|kind| {
        let base = format!("/spec/affinity/{kind}");
        let required = pod
            .pointer(&format!(
                "{base}/requiredDuringSchedulingIgnoredDuringExecution"
            ))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let preferred = pod
            .pointer(&format!(
                "{base}/preferredDuringSchedulingIgnoredDuringExecution"
            ))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|w| w.get("podAffinityTerm").cloned())
            .collect::<Vec<_>>();
        required.iter().chain(&preferred).any(|t| {
            t.get("namespaceSelector").is_some()
                || t.get("namespaces")
                    .and_then(Value::as_array)
                    .is_some_and(|n| !n.is_empty())
        })
    })
}

/// Upstream's admission `Forbidden`: `pods "name" is forbidden: ...`.
fn forbidden(info: &ResourceInfo, obj: &Value, why: &str) -> ApiError {
    let name = match meta::name(obj) {
        "" => meta::str_at(obj, "/metadata/generateName").unwrap_or("Unknown"),
        n => n,
    };
    let mut details = json!({"name": name});
    if !info.group.is_empty() {
        details["group"] = json!(info.group);
    }
    details["kind"] = json!(info.plural);
    ApiError::new(
        403,
        "Forbidden",
        format!("{} {name:?} is forbidden: {why}", info.qualified()),
    )
    .with_details(details)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::ResourceTable;

    fn pods() -> std::sync::Arc<ResourceInfo> {
        ResourceTable::with_builtins()
            .get("", "v1", "pods")
            .expect("pods")
    }

    fn quota(hard: Value, used: Value) -> Value {
        json!({"metadata": {"name": "q"}, "spec": {"hard": hard}, "status": {"hard": hard, "used": used}})
    }

    fn pod(cpu: &str) -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"resources": {"requests": {"cpu": cpu}}}]}})
    }

    #[test]
    fn a_create_that_fits_reserves_its_usage() {
        let info = pods();
        let p = pod("500m");
        let q = quota(
            json!({"pods": "2", "requests.cpu": "1"}),
            json!({"pods": "1", "requests.cpu": "250m"}),
        );
        let next = check(&info, &p, &usage::of_object(&info, &p), &q)
            .expect("fits")
            .expect("measured");
        assert_eq!(
            next["status"]["used"],
            json!({"pods": "2", "requests.cpu": "750m"})
        );
    }

    #[test]
    fn a_create_over_the_limit_is_forbidden_as_upstream_words_it() {
        let info = pods();
        let p = pod("500m");
        let q = quota(
            json!({"pods": "1", "requests.cpu": "1"}),
            json!({"pods": "1", "requests.cpu": "0"}),
        );
        let err = check(&info, &p, &usage::of_object(&info, &p), &q).unwrap_err();
        assert_eq!(err.code, 403);
        assert_eq!(
            err.message,
            r#"pods "p" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1"#
        );
    }

    #[test]
    fn a_quota_without_usage_for_a_measured_resource_refuses() {
        let info = pods();
        let p = pod("1");
        let q = quota(
            json!({"pods": "1", "requests.cpu": "1"}),
            json!({"pods": "0"}),
        );
        let err = check(&info, &p, &usage::of_object(&info, &p), &q).unwrap_err();
        assert_eq!(
            err.message,
            r#"pods "p" is forbidden: status unknown for quota: q, resources: requests.cpu"#
        );
        // A quota the controller has not filled in yet constrains nothing.
        let fresh =
            json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "0"}}, "status": {}});
        assert!(
            check(&info, &p, &usage::of_object(&info, &p), &fresh)
                .expect("ok")
                .is_none()
        );
    }

    #[test]
    fn scoped_quotas_measure_only_matching_pods() {
        let info = pods();
        let mut q = quota(json!({"pods": "1"}), json!({"pods": "1"}));
        q["spec"]["scopes"] = json!(["Terminating"]);
        let p = pod("1");
        assert!(
            check(&info, &p, &usage::of_object(&info, &p), &q)
                .expect("not measured")
                .is_none()
        );
        let mut t = pod("1");
        t["spec"]["activeDeadlineSeconds"] = json!(10);
        assert!(check(&info, &t, &usage::of_object(&info, &t), &q).is_err());
    }
}
