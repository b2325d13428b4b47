//! The control plane acting, driven as a user drives it with stock kubectl:
//! Deployments become ReplicaSets become Pods that the scheduler binds to nodes,
//! rollouts, scaling, cascading deletion, Jobs, disruption budgets and quotas.
//!
//! The nodes are ironkube's kwok-style FAKE nodes (`ironkube server
//! --fake-nodes 2`): they run nothing, and report every pod bound to them
//! Running and Ready (Job pods Succeeded), as kwok does. Nothing here writes a
//! status: the controllers, the scheduler and the fake nodes do.

mod common;

use std::time::Duration;

use serde_json::Value;

use common::{KUBECTL_132, Kubectl, Server, kubectl_134, poll};

const WAIT: Duration = Duration::from_secs(60);

/// A server with two fake nodes, once both have registered Ready.
fn cluster() -> Server {
    let s = Server::start_with(&["--fake-nodes", "2"]);
    let k = s.kubectl(&kubectl_134());
    poll("two Ready nodes", WAIT, || {
        let ready = items(&k, &["get", "nodes"])
            .iter()
            .filter(|n| {
                n["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .count();
        (ready == 2).then_some(())
    });
    s
}

fn json(k: &Kubectl, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&k.ok(&all)).expect("kubectl -o json")
}

fn items(k: &Kubectl, args: &[&str]) -> Vec<Value> {
    json(k, args)["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Pods of `selector` that are Running and bound, once there are `n` of them.
fn running_pods(k: &Kubectl, selector: &str, n: usize) -> Vec<Value> {
    poll(&format!("{n} running pods of {selector}"), WAIT, || {
        let pods: Vec<Value> = items(k, &["get", "pods", "-l", selector])
            .into_iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .collect();
        let running = pods
            .iter()
            .filter(|p| p["status"]["phase"] == "Running" && p["spec"]["nodeName"].is_string())
            .count();
        (pods.len() == n && running == n).then_some(pods)
    })
}

fn rollout_status(k: &Kubectl, what: &str) {
    let out = k.ok(&["rollout", "status", what, "--timeout=60s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
}

/// [sig-apps] Deployment RollingUpdateDeployment should delete old pods and
/// create new ones; RecreateDeployment; deployment should support rollover.
fn deployment_lifecycle(kubectl: &std::path::Path) {
    let s = cluster();
    let k = s.kubectl(kubectl);
    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox:1.36",
        "--replicas=3",
    ]);
    rollout_status(&k, "deployment/web");
    let pods = running_pods(&k, "app=web", 3);
    let nodes: std::collections::BTreeSet<&str> = pods
        .iter()
        .filter_map(|p| p["spec"]["nodeName"].as_str())
        .collect();
    assert_eq!(
        nodes.len(),
        2,
        "three pods spread over both nodes: {nodes:?}"
    );

    k.ok(&["scale", "deployment", "web", "--replicas=5"]);
    rollout_status(&k, "deployment/web");
    running_pods(&k, "app=web", 5);

    k.ok(&["set", "image", "deployment/web", "busybox=busybox:1.37"]);
    rollout_status(&k, "deployment/web");
    let pods = running_pods(&k, "app=web", 5);
    assert!(
        pods.iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "busybox:1.37"),
        "every pod runs the new image"
    );
    let history = k.ok(&["rollout", "history", "deployment/web"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");
    let rs = items(&k, &["get", "rs", "-l", "app=web"]);
    assert_eq!(rs.len(), 2, "old and new ReplicaSets");

    k.ok(&["rollout", "undo", "deployment/web"]);
    rollout_status(&k, "deployment/web");
    let pods = running_pods(&k, "app=web", 5);
    assert!(
        pods.iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "busybox:1.36"),
        "undo brings the old image back"
    );

    k.ok(&["rollout", "restart", "deployment/web"]);
    rollout_status(&k, "deployment/web");

    let d = json(&k, &["get", "deployment", "web"]);
    let status = &d["status"];
    assert_eq!(status["replicas"], 5, "{status}");
    assert_eq!(status["updatedReplicas"], 5, "{status}");
    assert_eq!(status["readyReplicas"], 5, "{status}");
    assert_eq!(status["availableReplicas"], 5, "{status}");
    assert_eq!(status["observedGeneration"], d["metadata"]["generation"]);
    let reasons: Vec<&str> = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"MinimumReplicasAvailable"), "{reasons:?}");
    assert!(reasons.contains(&"NewReplicaSetAvailable"), "{reasons:?}");

    // Deleting the deployment deletes its ReplicaSets and their pods.
    k.ok(&["delete", "deployment", "web"]);
    poll("ReplicaSets and pods of web gone", WAIT, || {
        (items(&k, &["get", "rs", "-l", "app=web"]).is_empty()
            && items(&k, &["get", "pods", "-l", "app=web"]).is_empty())
        .then_some(())
    });
}

#[test]
fn deployment_lifecycle_with_kubectl_134() {
    deployment_lifecycle(&kubectl_134());
}

#[test]
fn deployment_lifecycle_with_kubectl_132() {
    deployment_lifecycle(std::path::Path::new(KUBECTL_132));
}

/// [sig-api-machinery] Garbage collector should orphan RS created by
/// deployment when deleteOptions.PropagationPolicy is Orphan.
#[test]
fn orphaned_replicasets_outlive_their_deployment() {
    let s = cluster();
    let k = s.kubectl(&kubectl_134());
    k.ok(&[
        "create",
        "deployment",
        "keep",
        "--image=busybox",
        "--replicas=2",
    ]);
    running_pods(&k, "app=keep", 2);
    k.ok(&["delete", "deployment", "keep", "--cascade=orphan"]);
    poll("the deployment gone", WAIT, || {
        k.run(&["get", "deployment", "keep"])
            .stderr
            .contains("NotFound")
            .then_some(())
    });
    let rs = poll("the orphaned ReplicaSet without an owner", WAIT, || {
        let rs = items(&k, &["get", "rs", "-l", "app=keep"]);
        (rs.len() == 1 && rs[0]["metadata"]["ownerReferences"].is_null()).then_some(rs)
    });
    assert_eq!(rs[0]["spec"]["replicas"], 2);
    // Its pods stay with it.
    running_pods(&k, "app=keep", 2);
}

/// [sig-api-machinery] Namespaces should ensure that all pods are removed when
/// a namespace is deleted.
#[test]
fn deleting_a_namespace_empties_and_removes_it() {
    let s = cluster();
    let k = s.kubectl(&kubectl_134());
    k.ok(&["create", "namespace", "doomed"]);
    k.ok(&[
        "-n",
        "doomed",
        "create",
        "deployment",
        "d",
        "--image=busybox",
        "--replicas=2",
    ]);
    poll("two running pods in doomed", WAIT, || {
        let pods = items(&k, &["-n", "doomed", "get", "pods"]);
        (pods.len() == 2 && pods.iter().all(|p| p["status"]["phase"] == "Running")).then_some(())
    });
    k.ok(&["delete", "namespace", "doomed", "--wait=false"]);
    poll("namespace doomed gone", WAIT, || {
        k.run(&["get", "namespace", "doomed"])
            .stderr
            .contains("NotFound")
            .then_some(())
    });
}

/// [sig-apps] Job should run a job to completion when tasks succeed.
#[test]
fn a_job_runs_to_completion() {
    let s = cluster();
    let k = s.kubectl(&kubectl_134());
    k.ok(&["create", "job", "once", "--image=busybox", "--", "true"]);
    let out = k.ok(&[
        "wait",
        "--for=condition=complete",
        "job/once",
        "--timeout=60s",
    ]);
    assert!(out.contains("condition met"), "{out}");
    let job = json(&k, &["get", "job", "once"]);
    assert_eq!(job["status"]["succeeded"], 1, "{job}");
    assert!(job["status"]["completionTime"].is_string(), "{job}");
}

/// [sig-apps] DisruptionController should block an eviction until the PDB is
/// updated to allow it.
#[test]
fn an_eviction_a_budget_forbids_answers_429() {
    let s = cluster();
    let k = s.kubectl(&kubectl_134());
    k.ok(&[
        "create",
        "deployment",
        "guarded",
        "--image=busybox",
        "--replicas=2",
    ]);
    let pods = running_pods(&k, "app=guarded", 2);
    k.ok(&[
        "create",
        "pdb",
        "guard",
        "--selector=app=guarded",
        "--min-available=2",
    ]);
    poll("the budget observed", WAIT, || {
        let pdb = json(&k, &["get", "pdb", "guard"]);
        (pdb["status"]["observedGeneration"] == pdb["metadata"]["generation"]
            && pdb["status"]["currentHealthy"] == 2)
            .then_some(())
    });
    let name = pods[0]["metadata"]["name"].as_str().expect("pod name");
    let eviction = serde_json::json!({"apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": {"name": name, "namespace": "default"}});
    let r = s.send_json(
        "POST",
        &format!("/api/v1/namespaces/default/pods/{name}/eviction"),
        &eviction,
    );
    assert_eq!(r.status, 429, "{}", r.body);
    let status = r.json();
    assert_eq!(
        status["message"],
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    assert_eq!(
        status["details"]["causes"][0]["message"],
        "The disruption budget guard needs 2 healthy pods and has 2 currently"
    );
    // With room in the budget the eviction goes through and the pod is replaced.
    k.ok(&[
        "patch",
        "pdb",
        "guard",
        "--type=merge",
        "-p",
        r#"{"spec":{"minAvailable":1}}"#,
    ]);
    let evicted = poll("an eviction the budget allows", WAIT, || {
        let r = s.send_json(
            "POST",
            &format!("/api/v1/namespaces/default/pods/{name}/eviction"),
            &eviction,
        );
        (r.status == 201).then_some(r)
    });
    assert_eq!(evicted.json()["status"], "Success");
    poll("the evicted pod replaced", WAIT, || {
        let pods = items(&k, &["get", "pods", "-l", "app=guarded"]);
        let names: Vec<&str> = pods
            .iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .filter_map(|p| p["metadata"]["name"].as_str())
            .collect();
        (names.len() == 2 && !names.contains(&name)).then_some(())
    });
}

/// [sig-api-machinery] ResourceQuota should create a ResourceQuota and
/// capture the life of a pod.
#[test]
fn a_quota_counts_pods_and_refuses_the_one_too_many() {
    let s = cluster();
    let k = s.kubectl(&kubectl_134());
    k.ok(&["create", "quota", "q", "--hard=pods=2,requests.cpu=1"]);
    let used = |k: &Kubectl| json(k, &["get", "quota", "q"])["status"]["used"].clone();
    poll("the quota counted", WAIT, || {
        (used(&k)["pods"] == "0").then_some(())
    });
    for name in ["a", "b"] {
        k.ok(&["run", name, "--image=busybox", "--overrides",
            r#"{"spec":{"containers":[{"name":"c","image":"busybox","resources":{"requests":{"cpu":"400m"}}}]}}"#]);
    }
    poll("two pods counted", WAIT, || {
        let u = used(&k);
        (u["pods"] == "2" && u["requests.cpu"] == "800m").then_some(())
    });
    let r = k.run(&["run", "c", "--image=busybox", "--overrides",
        r#"{"spec":{"containers":[{"name":"c","image":"busybox","resources":{"requests":{"cpu":"100m"}}}]}}"#]);
    assert_ne!(r.status, 0);
    assert!(
        r.stderr.contains(r#"pods "c" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"#),
        "{}",
        r.stderr
    );
    k.ok(&["delete", "pod", "a", "--wait=true"]);
    poll("the deleted pod released", WAIT, || {
        let u = used(&k);
        (u["pods"] == "1" && u["requests.cpu"] == "400m").then_some(())
    });
}
