//! Watches Nodes and Pods and feeds the cache and the queue, as upstream's
//! event handlers do: assigned pods count toward their node, pending pods
//! for this scheduler are queued, and events that may free room (a node
//! added or changed, an assigned pod deleted or finished) move the
//! unschedulable pods back to the active queue.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use parking_lot::Mutex;

use crate::cache::{Cache, is_terminal, pod_key};
use crate::node_info::PodUsage;
use crate::queue::SchedulingQueue;

/// Watches nodes forever.
pub(crate) async fn watch_nodes(
    client: kube::Client,
    cache: Arc<Mutex<Cache>>,
    queue: Arc<SchedulingQueue>,
) {
    let api: Api<Node> = Api::all(client);
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut seen: HashSet<String> = HashSet::new();
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => seen.clear(),
            Ok(Event::InitApply(node)) => {
                if let Some(name) = node.metadata.name.clone() {
                    seen.insert(name);
                }
                cache.lock().upsert_node(node);
            }
            Ok(Event::InitDone) => {
                {
                    let mut c = cache.lock();
                    let gone: Vec<String> = c
                        .node_names()
                        .iter()
                        .filter(|n| !seen.contains(*n))
                        .cloned()
                        .collect();
                    for n in gone {
                        c.remove_node(&n);
                    }
                }
                queue.with(|q| q.move_all_to_active_or_backoff(Instant::now()));
            }
            Ok(Event::Apply(node)) => {
                let relevant = cache.lock().upsert_node(node);
                if relevant {
                    queue.with(|q| q.move_all_to_active_or_backoff(Instant::now()));
                }
            }
            Ok(Event::Delete(node)) => {
                if let Some(name) = node.metadata.name.as_deref() {
                    cache.lock().remove_node(name);
                }
            }
            Err(e) => tracing::warn!(error = %e, "node watch failed; retrying"),
        }
    }
}

/// Whether this scheduler should place the (unassigned) pod.
fn wants_scheduling(pod: &Pod, scheduler_names: &HashSet<String>) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    spec.node_name.as_deref().unwrap_or_default().is_empty()
        && scheduler_names.contains(spec.scheduler_name.as_deref().unwrap_or("default-scheduler"))
        && pod.metadata.deletion_timestamp.is_none()
        && !is_terminal(pod)
        // Gated pods wait outside the queue (upstream's SchedulingGates).
        && spec.scheduling_gates.as_ref().is_none_or(|g| g.is_empty())
}

fn is_assigned(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

/// Applies one added/updated pod to the cache and queue.
fn apply_pod(
    pod: Pod,
    scheduler_names: &HashSet<String>,
    cache: &Mutex<Cache>,
    queue: &SchedulingQueue,
) {
    let key = pod_key(&pod);
    if is_assigned(&pod) {
        let (freed, added) = {
            let mut c = cache.lock();
            let was_placed = c.is_placed(&key);
            c.upsert_assigned_pod(&pod);
            let placed = c.is_placed(&key);
            (was_placed && !placed, !was_placed && placed)
        };
        queue.with(|q| {
            q.delete(&key);
            if freed {
                q.move_all_to_active_or_backoff(Instant::now());
            } else if added {
                q.move_pod_affinity_waiters(Instant::now());
            }
        });
        return;
    }
    if wants_scheduling(&pod, scheduler_names) {
        {
            let mut c = cache.lock();
            // A pod assumed by us awaits its binding; it is not pending anymore.
            if c.is_placed(&key) {
                return;
            }
            let nominated = pod
                .status
                .as_ref()
                .and_then(|s| s.nominated_node_name.as_deref())
                .filter(|n| !n.is_empty());
            c.set_nomination(&key, nominated.map(|n| (n, PodUsage::of(&pod))));
        }
        queue.with(|q| q.add_or_update(&key, Arc::new(pod), Instant::now()));
    } else {
        cache.lock().set_nomination(&key, None);
        queue.with(|q| q.delete(&key));
    }
}

fn delete_pod(key: &str, cache: &Mutex<Cache>, queue: &SchedulingQueue) {
    let freed = cache.lock().remove_pod(key);
    queue.with(|q| {
        q.delete(key);
        if freed {
            q.move_all_to_active_or_backoff(Instant::now());
        }
    });
}

/// Watches all pods forever.
pub(crate) async fn watch_pods(
    client: kube::Client,
    scheduler_names: Arc<HashSet<String>>,
    cache: Arc<Mutex<Cache>>,
    queue: Arc<SchedulingQueue>,
) {
    let api: Api<Pod> = Api::all(client);
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut seen: HashSet<String> = HashSet::new();
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => seen.clear(),
            Ok(Event::InitApply(pod)) => {
                seen.insert(pod_key(&pod));
                apply_pod(pod, &scheduler_names, &cache, &queue);
            }
            Ok(Event::InitDone) => {
                // Pods deleted while the watch was down.
                let cached = cache.lock().pod_keys();
                let queued = queue.with(|q| q.keys());
                for key in cached.into_iter().chain(queued) {
                    if !seen.contains(&key) {
                        delete_pod(&key, &cache, &queue);
                    }
                }
                seen = HashSet::new();
            }
            Ok(Event::Apply(pod)) => apply_pod(pod, &scheduler_names, &cache, &queue),
            Ok(Event::Delete(pod)) => delete_pod(&pod_key(&pod), &cache, &queue),
            Err(e) => tracing::warn!(error = %e, "pod watch failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn which_pods_are_queued() {
        let pod = |v: serde_json::Value| -> Pod {
            serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "d"}, "spec": v}))
                .expect("pod")
        };
        let c = json!([{"name": "c"}]);
        let names: HashSet<String> = ["default-scheduler".to_string(), "second".to_string()].into();
        let cases = [
            (json!({"containers": c}), true),
            (
                json!({"containers": c, "schedulerName": "default-scheduler"}),
                true,
            ),
            (json!({"containers": c, "schedulerName": "other"}), false),
            (json!({"containers": c, "schedulerName": "second"}), true),
            (json!({"containers": c, "nodeName": "n"}), false),
            (
                json!({"containers": c, "schedulingGates": [{"name": "g"}]}),
                false,
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(wants_scheduling(&pod(spec.clone()), &names), want, "{spec}");
        }
        let mut terminating = pod(json!({"containers": c}));
        terminating.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        assert!(!wants_scheduling(&terminating, &names));
    }
}
