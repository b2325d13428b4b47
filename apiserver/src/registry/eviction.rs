//! `pods/eviction` (policy/v1 `Eviction`): a delete that honours the pod's
//! PodDisruptionBudget, as upstream's `EvictionREST`.
//!
//! A pod that is not running (Pending, Succeeded, Failed) or already being
//! deleted is deleted at once. Otherwise the one PDB that selects it must allow
//! a disruption: the eviction takes one from `status.disruptionsAllowed`,
//! records the pod in `status.disruptedPods` (so the disruption controller does
//! not count it as healthy while it goes) and then deletes the pod. A budget
//! that does not allow it answers 429 with a `DisruptionBudget` cause.

use std::time::Duration;

use serde_json::{Value, json};

use super::list::ListRequest;
use super::meta;
use super::store::{Store, UpdateTarget};
use super::{DeleteOptions, WriteOptions};
use crate::api_error::{ApiError, ApiResult};
use crate::resources::ResourceInfo;
use crate::selectors::from_label_selector_json;

/// Upstream's cap on `status.disruptedPods` before evictions are refused.
const MAX_DISRUPTED_PODS: usize = 2000;
/// Attempts at the PDB's compare-and-swap, and the pause between them.
const PDB_ATTEMPTS: usize = 20;
const PDB_RETRY: Duration = Duration::from_millis(50);

/// What an eviction did, for the response.
pub enum Evicted {
    /// The pod was deleted (or marked for graceful deletion).
    Deleted,
    /// Upstream answers a pod under several PDBs with a 500 `Status` body
    /// rather than an error; this is that body's message.
    Refused(&'static str),
}

/// Evicts `name`; `opts` are the eviction's `deleteOptions` (query dry-run
/// already folded in).
pub async fn evict(
    store: &Store,
    pods: &ResourceInfo,
    ns: &str,
    name: &str,
    opts: &DeleteOptions,
) -> ApiResult<Evicted> {
    let pod = store.get(pods, Some(ns), name).await?;
    if can_ignore_budget(&pod) {
        store.delete(pods, Some(ns), name, opts).await?;
        return Ok(Evicted::Deleted);
    }
    let pdbs = store
        .table
        .get("policy", "v1", "poddisruptionbudgets")
        .ok_or_else(|| ApiError::internal("poddisruptionbudgets are not served"))?;
    let budgets = matching_budgets(store, &pdbs, ns, &pod).await?;
    let mut opts = opts.clone();
    match budgets.as_slice() {
        [] => {}
        [_, _, ..] => {
            return Ok(Evicted::Refused(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
        [pdb] => {
            let unhealthy_may_go = !is_ready(&pod)
                && (always_allow_unhealthy(pdb)
                    || (int_at(pdb, "/status/currentHealthy")
                        >= int_at(pdb, "/status/desiredHealthy")
                        && int_at(pdb, "/status/desiredHealthy") > 0));
            if unhealthy_may_go {
                // The pod does not count as healthy, so the budget is not
                // spent; the delete must not race the pod becoming ready.
                if opts.precondition_resource_version.is_none() {
                    opts.precondition_resource_version =
                        Some(meta::resource_version(&pod).to_string());
                }
            } else {
                take_disruption(store, &pdbs, ns, meta::name(pdb), name, opts.dry_run).await?;
            }
        }
    }
    store.delete(pods, Some(ns), name, &opts).await?;
    Ok(Evicted::Deleted)
}

/// Pods that are not running, or already going, disrupt nothing more.
fn can_ignore_budget(pod: &Value) -> bool {
    matches!(
        meta::str_at(pod, "/status/phase").unwrap_or(""),
        "Succeeded" | "Failed" | "Pending"
    ) || meta::is_deleting(pod)
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

fn always_allow_unhealthy(pdb: &Value) -> bool {
    meta::str_at(pdb, "/spec/unhealthyPodEvictionPolicy") == Some("AlwaysAllow")
}

fn int_at(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// The PDBs in `ns` whose selector matches the pod; an empty or invalid
/// selector matches nothing.
async fn matching_budgets(
    store: &Store,
    pdbs: &ResourceInfo,
    ns: &str,
    pod: &Value,
) -> ApiResult<Vec<Value>> {
    let listed = store.list(pdbs, Some(ns), &ListRequest::default()).await?;
    let labels = pod.pointer("/metadata/labels").and_then(Value::as_object);
    Ok(listed
        .items
        .into_iter()
        .filter(|pdb| {
            pdb.pointer("/spec/selector")
                .and_then(|s| from_label_selector_json(s).ok())
                .is_some_and(|sel| !sel.is_empty() && sel.matches(labels))
        })
        .collect())
}

fn too_many_requests(cause: String, retry_after: i64) -> ApiError {
    let mut details = json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]});
    if retry_after > 0 {
        details["retryAfterSeconds"] = json!(retry_after);
    }
    ApiError::new(
        429,
        "TooManyRequests",
        "Cannot evict pod as it would violate the pod's disruption budget.",
    )
    .with_details(details)
}

fn forbidden(pdb: &str, why: &str) -> ApiError {
    ApiError::new(
        403,
        "Forbidden",
        format!("poddisruptionbudget.policy {pdb:?} is forbidden: {why}"),
    )
    .with_details(json!({"name": pdb, "group": "policy", "kind": "poddisruptionbudget"}))
}

/// Checks the budget and spends one disruption for `pod`, retrying the PDB's
/// compare-and-swap on conflicts with other evictions.
async fn take_disruption(
    store: &Store,
    pdbs: &ResourceInfo,
    ns: &str,
    pdb_name: &str,
    pod: &str,
    dry_run: bool,
) -> ApiResult<()> {
    let opts = WriteOptions {
        dry_run,
        field_manager: Some("kube-apiserver".into()),
        ..Default::default()
    };
    for _ in 0..PDB_ATTEMPTS {
        let current = store.get(pdbs, Some(ns), pdb_name).await?;
        let mut next = spend(&current, pod)?;
        // Pin the write to what was checked.
        meta::meta_mut(&mut next).insert(
            "resourceVersion".into(),
            json!(meta::resource_version(&current)),
        );
        let written = store
            .update(
                pdbs,
                Some(ns),
                pdb_name,
                UpdateTarget::Status,
                &opts,
                |_| Ok(next.clone()),
            )
            .await;
        match written {
            Ok(_) => return Ok(()),
            Err(e) if e.code == 409 => tokio::time::sleep(PDB_RETRY).await,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::new(
        504,
        "Timeout",
        format!("couldn't update PodDisruptionBudget {pdb_name:?} due to conflicts"),
    )
    .with_details(json!({"retryAfterSeconds": 10})))
}

/// The PDB after one disruption for `pod`, or why the budget refuses it.
fn spend(pdb: &Value, pod: &str) -> ApiResult<Value> {
    let name = meta::name(pdb);
    if int_at(pdb, "/status/observedGeneration") < int_at(pdb, "/metadata/generation") {
        return Err(too_many_requests(
            format!("The disruption budget {name} is still being processed by the server."),
            10,
        ));
    }
    let allowed = int_at(pdb, "/status/disruptionsAllowed");
    if allowed < 0 {
        return Err(forbidden(name, "pdb disruptions allowed is negative"));
    }
    let disrupted = pdb
        .pointer("/status/disruptedPods")
        .and_then(Value::as_object)
        .map_or(0, |m| m.len());
    if disrupted > MAX_DISRUPTED_PODS {
        return Err(forbidden(
            name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if allowed == 0 {
        return Err(too_many_requests(
            format!(
                "The disruption budget {name} needs {} healthy pods and has {} currently",
                int_at(pdb, "/status/desiredHealthy"),
                int_at(pdb, "/status/currentHealthy")
            ),
            0,
        ));
    }
    let mut next = pdb.clone();
    next["status"]["disruptionsAllowed"] = json!(allowed - 1);
    if allowed - 1 == 0 {
        mark_insufficient(&mut next);
    }
    let status = next["status"].as_object_mut();
    if let Some(status) = status {
        let map = status.entry("disruptedPods").or_insert_with(|| json!({}));
        if let Some(map) = map.as_object_mut() {
            map.insert(pod.to_string(), json!(meta::now_rfc3339()));
        }
    }
    Ok(next)
}

/// The `DisruptionAllowed` condition once no disruption is left (upstream's
/// `UpdateDisruptionAllowedCondition`).
fn mark_insufficient(pdb: &mut Value) {
    let generation = int_at(pdb, "/metadata/generation");
    let Some(status) = pdb.get_mut("status").and_then(Value::as_object_mut) else {
        return;
    };
    let conditions = status.entry("conditions").or_insert_with(|| json!([]));
    let Some(conditions) = conditions.as_array_mut() else {
        return;
    };
    let existing = conditions
        .iter()
        .position(|c| c.get("type").and_then(Value::as_str) == Some("DisruptionAllowed"));
    let unchanged = existing
        .map(|i| &conditions[i])
        .is_some_and(|c| c.get("status").and_then(Value::as_str) == Some("False"));
    if unchanged {
        return;
    }
    let condition = json!({
        "type": "DisruptionAllowed",
        "status": "False",
        "observedGeneration": generation,
        "lastTransitionTime": meta::now_rfc3339(),
        "reason": "InsufficientPods",
        "message": "",
    });
    match existing {
        Some(i) => conditions[i] = condition,
        None => conditions.push(condition),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdb(allowed: i64) -> Value {
        json!({
            "metadata": {"name": "b", "generation": 1},
            "status": {"observedGeneration": 1, "disruptionsAllowed": allowed, "desiredHealthy": 2, "currentHealthy": 2, "expectedPods": 2},
        })
    }

    #[test]
    fn a_spent_budget_answers_429_with_its_cause() {
        let err = spend(&pdb(0), "p").unwrap_err();
        assert_eq!(err.code, 429);
        assert_eq!(err.reason, "TooManyRequests");
        let details = err.details.expect("details");
        assert_eq!(
            details["causes"][0]["message"],
            "The disruption budget b needs 2 healthy pods and has 2 currently"
        );
        assert_eq!(details["causes"][0]["reason"], "DisruptionBudget");
        assert!(details.get("retryAfterSeconds").is_none());
    }

    #[test]
    fn an_unobserved_budget_asks_to_retry() {
        let mut b = pdb(1);
        b["metadata"]["generation"] = json!(2);
        let err = spend(&b, "p").unwrap_err();
        assert_eq!(err.code, 429);
        assert_eq!(err.details.expect("details")["retryAfterSeconds"], 10);
    }

    #[test]
    fn spending_the_last_disruption_records_the_pod_and_the_condition() {
        let next = spend(&pdb(1), "p").expect("allowed");
        assert_eq!(next["status"]["disruptionsAllowed"], 0);
        assert!(next["status"]["disruptedPods"]["p"].is_string());
        assert_eq!(
            next["status"]["conditions"][0]["reason"],
            "InsufficientPods"
        );
        let next = spend(&pdb(3), "p").expect("allowed");
        assert_eq!(next["status"]["disruptionsAllowed"], 2);
        assert!(next["status"].get("conditions").is_none());
    }

    #[test]
    fn pods_that_are_not_running_ignore_budgets() {
        for phase in ["Pending", "Succeeded", "Failed"] {
            assert!(can_ignore_budget(&json!({"status": {"phase": phase}})));
        }
        assert!(!can_ignore_budget(&json!({"status": {"phase": "Running"}})));
        assert!(can_ignore_budget(
            &json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Running"}})
        ));
    }
}
