//! Taint-based eviction (upstream's taint eviction controller): a pod on a
//! node with NoExecute taints is deleted at once if it does not tolerate
//! every one of them, and otherwise once the shortest `tolerationSeconds`
//! among the tolerations it uses has passed (never, if none of them sets
//! one). The time counts from the taint's `timeAdded`, so a restarted
//! controller keeps the deadlines. Before deleting, the pod gets the
//! `DisruptionTarget` condition, as upstream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use super::Error;
use crate::workload::events::Events;
use crate::workload::time;

struct Ctx {
    client: kube::Client,
    nodes: Store<Node>,
    events: Events,
    /// When NoExecute taints without `timeAdded` were first seen, by node.
    first_seen: Mutex<HashMap<String, Timestamp>>,
}

/// What to do with one pod now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No NoExecute taint, or tolerated forever.
    Keep,
    /// Evict after this long.
    EvictIn(Duration),
    Evict,
}

/// Upstream's `ToleratesTaint`.
pub(crate) fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    if t.key
        .as_deref()
        .is_some_and(|k| !k.is_empty() && k != taint.key)
    {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// The verdict for a pod with `tolerations` on a node with `taints`, at
/// `now`; `since` is when the NoExecute taints appeared.
pub(crate) fn verdict(
    tolerations: &[Toleration],
    taints: &[Taint],
    since: Timestamp,
    now: Timestamp,
) -> Verdict {
    let no_execute: Vec<&Taint> = taints.iter().filter(|t| t.effect == "NoExecute").collect();
    if no_execute.is_empty() {
        return Verdict::Keep;
    }
    let mut used: Vec<&Toleration> = Vec::new();
    for taint in &no_execute {
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Verdict::Evict;
        }
        used.extend(matching);
    }
    // The shortest bounded toleration wins; none bounded means forever.
    let Some(seconds) = used.iter().filter_map(|t| t.toleration_seconds).min() else {
        return Verdict::Keep;
    };
    if seconds <= 0 {
        return Verdict::Evict;
    }
    let deadline = since.as_second().saturating_add(seconds);
    let left = deadline.saturating_sub(now.as_second());
    if left <= 0 {
        Verdict::Evict
    } else {
        Verdict::EvictIn(Duration::from_secs(left.unsigned_abs()))
    }
}

pub(crate) async fn run(client: kube::Client, nodes: Store<Node>, controller: Controller<Pod>) {
    let ctx = Arc::new(Ctx {
        events: Events::new(client.clone(), "taint-eviction-controller"),
        client: client.clone(),
        nodes,
        first_seen: Mutex::new(HashMap::new()),
    });
    let pods = controller.store();
    let node_api: Api<Node> = Api::all(client);
    controller
        .watches(node_api, watcher::Config::default(), move |node| {
            pods_on(&pods, node.metadata.name.as_deref().unwrap_or_default())
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "taint eviction reconcile");
            }
        })
        .await;
}

fn pods_on(pods: &Store<Pod>, node: &str) -> Vec<ObjectRef<Pod>> {
    if node.is_empty() {
        return Vec::new();
    }
    pods.state()
        .iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
        .map(|p| ObjectRef::from_obj(p.as_ref()))
        .collect()
}

fn error_policy(_pod: Arc<Pod>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(error = %err, "taint eviction failed; retrying");
    Action::requeue(Duration::from_secs(1))
}

/// When the node's NoExecute taints appeared: the latest `timeAdded`, or
/// when this controller first saw them.
fn tainted_since(ctx: &Ctx, node: &str, taints: &[Taint], now: Timestamp) -> Timestamp {
    let added = taints
        .iter()
        .filter(|t| t.effect == "NoExecute")
        .map(|t| t.time_added.as_ref().map(|t| t.0))
        .collect::<Vec<_>>();
    let mut seen = ctx
        .first_seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if added.is_empty() {
        seen.remove(node);
        return now;
    }
    if added.iter().all(Option::is_some) {
        return added.into_iter().flatten().max().unwrap_or(now);
    }
    *seen.entry(node.to_string()).or_insert(now)
}

async fn reconcile(pod: Arc<Pod>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if pod.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let (Some(ns), Some(name), Some(node_name)) = (
        pod.metadata.namespace.as_deref(),
        pod.metadata.name.as_deref(),
        pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
    ) else {
        return Ok(Action::await_change());
    };
    let Some(node) = ctx.nodes.get(&ObjectRef::new(node_name)) else {
        return Ok(Action::await_change());
    };
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default();
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default();
    let now = time::now();
    let since = tainted_since(&ctx, node_name, taints, now);
    match verdict(tolerations, taints, since, now) {
        Verdict::Keep => Ok(Action::await_change()),
        Verdict::EvictIn(after) => Ok(Action::requeue(after)),
        Verdict::Evict => {
            evict(&ctx, &pod, ns, name, now).await?;
            Ok(Action::await_change())
        }
    }
}

async fn evict(ctx: &Ctx, pod: &Pod, ns: &str, name: &str, now: Timestamp) -> Result<(), Error> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    ctx.events.normal(
        pod.object_ref(&()),
        "TaintManagerEviction",
        "Delete",
        format!("Marking for deletion Pod {ns}/{name}"),
    );
    let patch = serde_json::json!({"status": {"conditions": [{
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "DeletionByTaintManager",
        "message": "Taint manager: deleting due to NoExecute taint",
        "lastTransitionTime": Time(now),
    }]}});
    let params = PatchParams {
        field_manager: Some("taint-eviction-controller".to_string()),
        ..PatchParams::default()
    };
    match api
        .patch_status(name, &params, &Patch::Strategic(&patch))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(namespace = %ns, pod = %name, "evicting pod from a NoExecute-tainted node");
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            ..Taint::default()
        }
    }

    fn tol(v: serde_json::Value) -> Toleration {
        serde_json::from_value(v).unwrap()
    }

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn toleration_matching() {
        let t = Taint {
            value: Some("v".into()),
            ..taint("k", "NoExecute")
        };
        assert!(tolerates(&tol(json!({"operator": "Exists"})), &t));
        assert!(tolerates(
            &tol(json!({"key": "k", "operator": "Exists"})),
            &t
        ));
        assert!(tolerates(&tol(json!({"key": "k", "value": "v"})), &t));
        assert!(!tolerates(&tol(json!({"key": "k", "value": "w"})), &t));
        assert!(!tolerates(
            &tol(json!({"key": "k", "operator": "Exists", "effect": "NoSchedule"})),
            &t
        ));
        assert!(!tolerates(
            &tol(json!({"key": "other", "operator": "Exists"})),
            &t
        ));
    }

    #[test]
    fn verdicts() {
        let unreachable = [taint("node.kubernetes.io/unreachable", "NoExecute")];
        let soft = [taint("node.kubernetes.io/unreachable", "NoSchedule")];
        let short = tol(
            json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                               "effect": "NoExecute", "tolerationSeconds": 30}),
        );
        let forever = tol(
            json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                 "effect": "NoExecute"}),
        );
        let all = tol(json!({"operator": "Exists", "tolerationSeconds": 300}));
        let now = ts(1_010);
        assert_eq!(verdict(&[], &soft, ts(1_000), now), Verdict::Keep);
        assert_eq!(verdict(&[], &unreachable, ts(1_000), now), Verdict::Evict);
        assert_eq!(
            verdict(std::slice::from_ref(&short), &unreachable, ts(1_000), now),
            Verdict::EvictIn(Duration::from_secs(20))
        );
        assert_eq!(
            verdict(std::slice::from_ref(&short), &unreachable, ts(900), now),
            Verdict::Evict
        );
        assert_eq!(
            verdict(std::slice::from_ref(&forever), &unreachable, ts(0), now),
            Verdict::Keep
        );
        assert_eq!(
            verdict(&[forever, all.clone(), short], &unreachable, ts(1_000), now),
            Verdict::EvictIn(Duration::from_secs(20)),
            "the shortest bounded toleration wins"
        );
        let two = [
            taint("node.kubernetes.io/unreachable", "NoExecute"),
            taint("example.com/x", "NoExecute"),
        ];
        assert_eq!(
            verdict(&[all], &two, ts(1_000), now),
            Verdict::EvictIn(Duration::from_secs(290))
        );
        let zero = tol(json!({"operator": "Exists", "tolerationSeconds": 0}));
        assert_eq!(
            verdict(&[zero], &unreachable, ts(1_000), now),
            Verdict::Evict
        );
    }
}
