//! End-to-end: the DaemonSet controller against a real in-process API server,
//! with the scheduler binding the pinned pods and fake nodes running them.
//! Covers what upstream's DaemonSet conformance tests check: a simple daemon
//! (one pod per node, revived when stopped), a complex daemon (node selector,
//! relabelled nodes, selector changes), nodes added and removed, taints,
//! rolling updates with maxUnavailable and maxSurge, rollback without
//! restarting pods already on the old template, and status.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Cluster, TestResult, eventually};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn daemon_set(name: &str, extra_spec: Value) -> DaemonSet {
    common::workload("DaemonSet", name, &[extra_spec])
}

struct Env {
    cluster: Cluster,
    sets: Api<DaemonSet>,
    pods: Api<Pod>,
    nodes: Api<Node>,
}

async fn start(nodes: usize) -> TestResult<Env> {
    let cluster = Cluster::with_fake_nodes(nodes).await?;
    cluster.run(controllers::daemonset::run);
    Ok(Env {
        sets: Api::namespaced(cluster.client.clone(), "default"),
        pods: Api::namespaced(cluster.client.clone(), "default"),
        nodes: Api::all(cluster.client.clone()),
        cluster,
    })
}

fn running_ready(pod: &Pod) -> bool {
    let Some(s) = pod.status.as_ref() else {
        return false;
    };
    s.phase.as_deref() == Some("Running")
        && s.conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn node_of(pod: &Pod) -> Option<String> {
    pod.spec.as_ref()?.node_name.clone()
}

fn image(pod: &Pod) -> String {
    pod.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap_or_default()
}

fn hash(pod: &Pod) -> String {
    pod.metadata.labels.as_ref().unwrap()["controller-revision-hash"].clone()
}

/// Live pods of DaemonSet `app`, by the node they run on.
async fn pods_by_node(pods: &Api<Pod>, app: &str) -> BTreeMap<String, Vec<Pod>> {
    let mut map: BTreeMap<String, Vec<Pod>> = BTreeMap::new();
    let list = pods
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    for p in list
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        map.entry(node_of(&p).unwrap_or_default())
            .or_default()
            .push(p);
    }
    map
}

/// Waits until exactly `nodes` run one Running, Ready pod of `app` each
/// (with `image`) and the status agrees; returns the pods by node.
async fn settled_on(env: &Env, app: &str, nodes: &[&str], image_: &str) -> BTreeMap<String, Pod> {
    let want: BTreeSet<String> = nodes.iter().map(|n| n.to_string()).collect();
    let n = i32::try_from(nodes.len()).unwrap();
    eventually(&format!("{app} on {nodes:?} with {image_}"), || async {
        let by_node = pods_by_node(&env.pods, app).await;
        let keys: BTreeSet<String> = by_node.keys().cloned().collect();
        let one_each = by_node
            .values()
            .all(|ps| ps.len() == 1 && running_ready(&ps[0]) && image(&ps[0]) == image_);
        if keys != want || !one_each {
            return None;
        }
        let ds = env.sets.get(app).await.ok()?;
        let s = ds.status?;
        let ok = s.observed_generation == ds.metadata.generation
            && s.desired_number_scheduled == n
            && s.current_number_scheduled == n
            && s.number_ready == n
            && s.number_available.unwrap_or(0) == n
            && s.updated_number_scheduled.unwrap_or(0) == n
            && s.number_unavailable.unwrap_or(0) == 0
            && s.number_misscheduled == 0;
        ok.then(|| {
            by_node
                .into_iter()
                .map(|(k, mut v)| (k, v.remove(0)))
                .collect()
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_daemon_runs_everywhere_and_follows_nodes() -> TestResult {
    let env = start(3).await?;
    let ds = env
        .sets
        .create(&PostParams::default(), &daemon_set("simple", json!({})))
        .await?;
    let pods = settled_on(&env, "simple", &["node-0", "node-1", "node-2"], "nginx:1").await;
    let revs: Api<ControllerRevision> = Api::namespaced(env.cluster.client.clone(), "default");
    let revisions = revs.list(&ListParams::default()).await?.items;
    assert_eq!(revisions.len(), 1);
    let rev_hash =
        revisions[0].metadata.labels.as_ref().unwrap()["controller-revision-hash"].clone();
    assert_eq!(
        revisions[0].metadata.name.clone().unwrap(),
        format!("simple-{rev_hash}")
    );
    for (node, p) in &pods {
        let labels = p.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["controller-revision-hash"], rev_hash);
        assert_eq!(labels["pod-template-generation"], "1");
        let spec = p.spec.as_ref().unwrap();
        let terms = &spec
            .affinity
            .as_ref()
            .unwrap()
            .node_affinity
            .as_ref()
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .as_ref()
            .unwrap()
            .node_selector_terms;
        assert_eq!(
            serde_json::to_value(terms)?,
            json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}])
        );
        let tolerated: BTreeSet<String> = spec
            .tolerations
            .iter()
            .flatten()
            .filter_map(|t| t.key.clone())
            .collect();
        for key in [
            "not-ready",
            "unreachable",
            "disk-pressure",
            "memory-pressure",
            "pid-pressure",
            "unschedulable",
        ] {
            assert!(
                tolerated.contains(&format!("node.kubernetes.io/{key}")),
                "{key}"
            );
        }
        let owner = &p.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.uid, ds.metadata.uid.clone().unwrap());
    }

    // A stopped daemon pod is revived.
    let victim = pods["node-1"].metadata.name.clone().unwrap();
    env.pods.delete(&victim, &DeleteParams::default()).await?;
    let revived = settled_on(&env, "simple", &["node-0", "node-1", "node-2"], "nginx:1").await;
    assert_ne!(revived["node-1"].metadata.name.clone().unwrap(), victim);

    // A new node gets a pod; a removed node is no longer counted.
    tokio::spawn(kubelet::fake::run(
        env.cluster.client.clone(),
        kubelet::fake::FakeNodeConfig::new(vec!["extra".to_string()]),
    ));
    settled_on(
        &env,
        "simple",
        &["extra", "node-0", "node-1", "node-2"],
        "nginx:1",
    )
    .await;
    env.nodes.delete("extra", &DeleteParams::default()).await?;
    eventually("status after the node went", || async {
        let s = env.sets.get("simple").await.ok()?.status?;
        (s.desired_number_scheduled == 3
            && s.current_number_scheduled == 3
            && s.number_available == Some(3))
        .then_some(())
    })
    .await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complex_daemon_follows_selectors_labels_and_taints() -> TestResult {
    let env = start(3).await?;
    let spec = json!({"template": {
        "metadata": {"labels": {"app": "complex"}},
        "spec": {"nodeSelector": {"color": "blue"}, "containers": [{"name": "c", "image": "nginx:1"}]}
    }});
    env.sets
        .create(&PostParams::default(), &daemon_set("complex", spec))
        .await?;
    eventually("no eligible node, no pods", || async {
        let s = env.sets.get("complex").await.ok()?.status?;
        (s.observed_generation == Some(1) && s.desired_number_scheduled == 0).then_some(())
    })
    .await;
    assert!(pods_by_node(&env.pods, "complex").await.is_empty());

    let label = |color: &str| json!({"metadata": {"labels": {"color": color}}});
    env.nodes
        .patch(
            "node-1",
            &PatchParams::default(),
            &Patch::Merge(label("blue")),
        )
        .await?;
    settled_on(&env, "complex", &["node-1"], "nginx:1").await;

    // Relabelled away: the pod goes.
    env.nodes
        .patch(
            "node-1",
            &PatchParams::default(),
            &Patch::Merge(label("green")),
        )
        .await?;
    eventually("pod removed from the relabelled node", || async {
        pods_by_node(&env.pods, "complex")
            .await
            .is_empty()
            .then_some(())
    })
    .await;

    // The selector follows to green, through node affinity this time.
    env.sets
        .patch(
            "complex",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {
                "nodeSelector": null,
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "color", "operator": "In", "values": ["green"]}]}
                ]}}}
            }}}})),
        )
        .await?;
    settled_on(&env, "complex", &["node-1"], "nginx:1").await;

    // A NoExecute taint it does not tolerate evicts it; removing it brings it back.
    let taint = |taints: Value| json!({"spec": {"taints": taints}});
    env.nodes
        .patch(
            "node-1",
            &PatchParams::default(),
            &Patch::Merge(taint(
                json!([{"key": "dedicated", "value": "x", "effect": "NoExecute"}]),
            )),
        )
        .await?;
    eventually("pod removed from the tainted node", || async {
        let s = env.sets.get("complex").await.ok()?.status?;
        (pods_by_node(&env.pods, "complex").await.is_empty() && s.desired_number_scheduled == 0)
            .then_some(())
    })
    .await;
    env.nodes
        .patch(
            "node-1",
            &PatchParams::default(),
            &Patch::Merge(taint(Value::Null)),
        )
        .await?;
    settled_on(&env, "complex", &["node-1"], "nginx:1").await;
    Ok(())
}

async fn set_image(sets: &Api<DaemonSet>, name: &str, image_: &str) -> TestResult {
    sets.patch(
        name,
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image_}]}}}})),
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_and_rollback() -> TestResult {
    let env = start(3).await?;
    let all = ["node-0", "node-1", "node-2"];
    env.sets
        .create(&PostParams::default(), &daemon_set("roll", json!({})))
        .await?;
    let before = settled_on(&env, "roll", &all, "nginx:1").await;
    let first_hash = hash(&before["node-0"]);

    set_image(&env.sets, "roll", "nginx:2").await?;
    let after = settled_on(&env, "roll", &all, "nginx:2").await;
    for (node, p) in &after {
        assert_ne!(
            p.metadata.uid, before[node].metadata.uid,
            "replaced on {node}"
        );
        assert_ne!(hash(p), first_hash);
        assert_eq!(
            p.metadata.labels.as_ref().unwrap()["pod-template-generation"],
            "2"
        );
    }
    let revs: Api<ControllerRevision> = Api::namespaced(env.cluster.client.clone(), "default");
    let old = revs
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .find(|r| r.metadata.labels.as_ref().unwrap()["controller-revision-hash"] == first_hash)
        .expect("the first revision is kept");
    assert_eq!(old.revision, 1);

    // Roll back as `kubectl rollout undo` does: the old revision is reused.
    env.sets
        .patch(
            "roll",
            &PatchParams::default(),
            &Patch::Strategic(old.data.clone().unwrap().0),
        )
        .await?;
    let back = settled_on(&env, "roll", &all, "nginx:1").await;
    for p in back.values() {
        assert_eq!(hash(p), first_hash);
    }
    let renumbered = revs.get(old.metadata.name.as_deref().unwrap()).await?;
    assert_eq!(renumbered.revision, 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_delete_and_rollback_without_restarts() -> TestResult {
    let env = start(2).await?;
    let all = ["node-0", "node-1"];
    let spec = json!({"updateStrategy": {"type": "OnDelete"}});
    env.sets
        .create(&PostParams::default(), &daemon_set("od", spec))
        .await?;
    let before = settled_on(&env, "od", &all, "nginx:1").await;

    set_image(&env.sets, "od", "nginx:2").await?;
    eventually("status sees the new template", || async {
        let ds = env.sets.get("od").await.ok()?;
        let s = ds.status?;
        (s.observed_generation == ds.metadata.generation && s.updated_number_scheduled == Some(0))
            .then_some(())
    })
    .await;
    // Only a deleted pod is replaced with the new template.
    env.pods
        .delete(
            before["node-0"].metadata.name.as_deref().unwrap(),
            &DeleteParams::default(),
        )
        .await?;
    eventually("node-0 runs the new template", || async {
        let by_node = pods_by_node(&env.pods, "od").await;
        let p = by_node.get("node-0")?.first()?;
        (image(p) == "nginx:2" && running_ready(p)).then_some(())
    })
    .await;

    // Back to the first template: the untouched pod is current again and is
    // not restarted.
    set_image(&env.sets, "od", "nginx:1").await?;
    eventually("node-1 counts as updated again", || async {
        let ds = env.sets.get("od").await.ok()?;
        let s = ds.status?;
        (s.observed_generation == ds.metadata.generation && s.updated_number_scheduled == Some(1))
            .then_some(())
    })
    .await;
    let by_node = pods_by_node(&env.pods, "od").await;
    assert_eq!(
        by_node["node-1"][0].metadata.uid,
        before["node-1"].metadata.uid
    );
    assert_eq!(image(&by_node["node-0"][0]), "nginx:2");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_surge_keeps_every_node_serving() -> TestResult {
    let env = start(3).await?;
    let all = ["node-0", "node-1", "node-2"];
    let spec = json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}});
    env.sets
        .create(&PostParams::default(), &daemon_set("surge", spec))
        .await?;
    settled_on(&env, "surge", &all, "nginx:1").await;
    set_image(&env.sets, "surge", "nginx:2").await?;
    eventually(
        "surge rollout done, never leaving a node without a ready pod",
        || async {
            let by_node = pods_by_node(&env.pods, "surge").await;
            for node in all {
                let serving = by_node
                    .get(node)
                    .is_some_and(|ps| ps.iter().any(running_ready));
                assert!(serving, "{node} had no ready pod during the surge update");
            }
            let done = by_node
                .values()
                .all(|ps| ps.len() == 1 && image(&ps[0]) == "nginx:2" && running_ready(&ps[0]));
            done.then_some(())
        },
    )
    .await;
    settled_on(&env, "surge", &all, "nginx:2").await;
    Ok(())
}
