//! `pods/binding` and the legacy `bindings` collection, as a scheduler (or a
//! user with kubectl) binds pods: set the node once, mark `PodScheduled`, and
//! refuse a second binding with upstream's conflict.

mod common;

use serde_json::{Value, json};

use common::{Server, kubectl_134};

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
}

fn binding(pod: &str, node: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node}})
}

const PODS: &str = "/api/v1/namespaces/default/pods";

#[test]
fn binding_sets_the_node_once_and_marks_the_pod_scheduled() {
    let s = Server::start_apiserver(&[]);
    let r = s.send_json("POST", PODS, &pod("p1"));
    assert_eq!(r.status, 201, "{}", r.body);

    let mut b = binding("p1", "node-a");
    b["metadata"]["annotations"] = json!({"scheduled-by": "test"});
    let r = s.send_json("POST", &format!("{PODS}/p1/binding"), &b);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
    );

    let p = s
        .send_json("GET", &format!("{PODS}/p1"), &Value::Null)
        .json();
    assert_eq!(p["spec"]["nodeName"], "node-a");
    assert_eq!(p["metadata"]["annotations"]["scheduled-by"], "test");
    let scheduled: Vec<&Value> = p["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["type"] == "PodScheduled")
        .collect();
    assert_eq!(scheduled.len(), 1, "{p}");
    assert_eq!(scheduled[0]["status"], "True");

    // A bound pod is never re-bound.
    let r = s.send_json(
        "POST",
        &format!("{PODS}/p1/binding"),
        &binding("p1", "node-b"),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    let status = r.json();
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(
        status["message"],
        r#"Operation cannot be fulfilled on pods/binding "p1": pod p1 is already assigned to node "node-a""#
    );
    assert_eq!(
        status["details"],
        json!({"name": "p1", "kind": "pods/binding"})
    );
}

#[test]
fn bindings_are_refused_as_upstream_refuses_them() {
    let s = Server::start_apiserver(&[]);
    let mut gated = pod("gated");
    gated["spec"]["schedulingGates"] = json!([{"name": "example.com/wait"}]);
    assert_eq!(s.send_json("POST", PODS, &gated).status, 201);
    let r = s.send_json(
        "POST",
        &format!("{PODS}/gated/binding"),
        &binding("gated", "n"),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        r#"Operation cannot be fulfilled on pods/binding "gated": pod gated has non-empty .spec.schedulingGates"#
    );

    assert_eq!(s.send_json("POST", PODS, &pod("p")).status, 201);
    // The URL and the body must name the same pod.
    let r = s.send_json("POST", &format!("{PODS}/p/binding"), &binding("other", "n"));
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "name in URL does not match name in Binding object"
    );
    // A target that is not a node (upstream's validation error, unwrapped).
    let mut bad = binding("p", "");
    bad["target"]["kind"] = json!("Pod");
    let r = s.send_json("POST", &format!("{PODS}/p/binding"), &bad);
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        r#"[target.kind: Unsupported value: "Pod": supported values: "Node", "<empty>", target.name: Required value]"#
    );
    // A uid precondition that does not hold.
    let mut stale = binding("p", "n");
    stale["metadata"]["uid"] = json!("not-the-uid");
    let r = s.send_json("POST", &format!("{PODS}/p/binding"), &stale);
    assert_eq!(r.status, 409, "{}", r.body);
    // A missing pod.
    let r = s.send_json(
        "POST",
        &format!("{PODS}/nope/binding"),
        &binding("nope", "n"),
    );
    assert_eq!(r.status, 404, "{}", r.body);
    // Nothing above bound the pod.
    let p = s
        .send_json("GET", &format!("{PODS}/p"), &Value::Null)
        .json();
    assert!(p["spec"].get("nodeName").is_none(), "{p}");
}

/// `kubectl create -f` of a `Binding` posts to the legacy `bindings` collection,
/// which binds the pod its body names.
#[test]
fn kubectl_binds_through_the_legacy_bindings_collection() {
    let s = Server::start_apiserver(&[]);
    assert_eq!(s.send_json("POST", PODS, &pod("web")).status, 201);
    let k = s.kubectl(&kubectl_134());
    // The answer is a `Status`, which kubectl reports as created.
    k.ok_stdin(
        &["create", "-f", "-"],
        &binding("web", "node-x").to_string(),
    );
    let node = k.ok(&["get", "pod", "web", "-o", "jsonpath={.spec.nodeName}"]);
    assert_eq!(node.trim(), "node-x");
    let r = k.run_stdin(
        &["create", "-f", "-"],
        &binding("web", "node-y").to_string(),
    );
    assert_ne!(r.status, 0, "second binding must fail");
    assert!(
        r.stderr.contains("is already assigned to node \"node-x\""),
        "{}",
        r.stderr
    );
}
