//! What an update may change in a pod (upstream's `ValidatePodUpdate`): images,
//! a lowered `activeDeadlineSeconds`, added tolerations; never resources or
//! anything else in the spec. The conformance test "[sig-api-machinery]
//! ResourceQuota should create a ResourceQuota and capture the life of a pod.
//! [Conformance]" relies on the resources rule (its update used to pass only
//! when a scheduler's status write made it conflict first); "[sig-node] Pods
//! should allow activeDeadlineSeconds to be updated [NodeConformance]
//! [Conformance]" on the deadline rule.

mod common;

use serde_json::{Value, json};

use common::Server;

const PODS: &str = "/api/v1/namespaces/default/pods";

fn create(s: &Server) -> Value {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {
            "activeDeadlineSeconds": 600,
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [{"name": "c", "image": "busybox:1",
                "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}}}]}});
    let r = s.send_json("POST", PODS, &pod);
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()
}

fn put(s: &Server, pod: &Value) -> common::RawResponse {
    s.send_json("PUT", &format!("{PODS}/p"), pod)
}

#[test]
fn pod_updates_change_only_what_upstream_allows() {
    let s = Server::start_apiserver(&[]);
    let created = create(&s);

    let mut resized = created.clone();
    resized["spec"]["containers"][0]["resources"]["requests"]["cpu"] = json!("200m");
    let r = put(&s, &resized);
    assert_eq!(r.status, 422, "{}", r.body);
    let status = r.json();
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(status["details"]["causes"][0]["field"], "spec");
    assert_eq!(
        status["details"]["causes"][0]["reason"],
        "FieldValueForbidden"
    );
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("pod updates may not change fields other than"),
        "{message}"
    );

    let mut raised = created.clone();
    raised["spec"]["activeDeadlineSeconds"] = json!(900);
    let r = put(&s, &raised);
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.json()["details"]["causes"][0]["field"],
        "spec.activeDeadlineSeconds"
    );

    let mut dropped = created.clone();
    dropped["spec"]["tolerations"] = json!([]);
    let r = put(&s, &dropped);
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.json()["details"]["causes"][0]["field"],
        "spec.tolerations"
    );

    let mut allowed = created.clone();
    allowed["spec"]["containers"][0]["image"] = json!("busybox:2");
    allowed["spec"]["activeDeadlineSeconds"] = json!(300);
    allowed["spec"]["tolerations"]
        .as_array_mut()
        .expect("tolerations")
        .push(json!({"key": "extra", "operator": "Exists"}));
    allowed["metadata"]["labels"] = json!({"edited": "yes"});
    let r = put(&s, &allowed);
    assert_eq!(r.status, 200, "{}", r.body);
    let stored = r.json();
    assert_eq!(stored["spec"]["containers"][0]["image"], "busybox:2");
    assert_eq!(stored["spec"]["activeDeadlineSeconds"], 300);
}

/// `pods/ephemeralcontainers`: containers are added through the subresource
/// only, never changed or removed ("[sig-node] Ephemeral Containers should
/// update the ephemeral containers in an existing pod [Conformance]
/// [NodeConformance]" adds two, one update at a time).
#[test]
fn ephemeral_containers_are_added_through_their_subresource_only() {
    let s = Server::start_apiserver(&[]);
    let created = create(&s);
    let sub = format!("{PODS}/p/ephemeralcontainers");

    let r = s.send_json("GET", &sub, &Value::Null);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["kind"], "Pod");

    let mut through_main = created.clone();
    through_main["spec"]["ephemeralContainers"] =
        json!([{"name": "debugger", "image": "busybox:1"}]);
    let r = put(&s, &through_main);
    assert_eq!(r.status, 422, "the main resource refuses them: {}", r.body);

    let r = s.send_json("PUT", &sub, &through_main);
    assert_eq!(r.status, 200, "{}", r.body);
    let pod = r.json();
    assert_eq!(pod["spec"]["ephemeralContainers"][0]["name"], "debugger");
    assert_eq!(
        pod["spec"]["ephemeralContainers"][0]["terminationMessagePolicy"], "File",
        "defaulted as containers are"
    );
    assert_eq!(pod["spec"]["containers"][0]["image"], "busybox:1");

    let patch = json!({"spec": {"ephemeralContainers": [
        {"name": "debugger", "image": "busybox:1"},
        {"name": "second", "image": "busybox:1"}]}});
    let r = common::raw_request(
        &s.addr(),
        "PATCH",
        &sub,
        "application/strategic-merge-patch+json",
        patch.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let names: Vec<Value> = r.json()["spec"]["ephemeralContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, [json!("debugger"), json!("second")]);

    let change = json!({"spec": {"ephemeralContainers": [
        {"name": "debugger", "image": "other:2"}]}});
    let r = common::raw_request(
        &s.addr(),
        "PATCH",
        &sub,
        "application/strategic-merge-patch+json",
        change.to_string().as_bytes(),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("may not be changed"), "{}", r.body);
}

/// Sysctl names are checked when a pod is created ("[sig-node] Sysctls
/// [LinuxOnly] [NodeConformance] should reject invalid sysctls
/// [MinimumKubeletVersion:1.21] [Conformance]").
#[test]
fn pods_with_malformed_sysctl_names_are_refused() {
    let s = Server::start_apiserver(&[]);
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sysctls"},
        "spec": {
            "securityContext": {"sysctls": [
                {"name": "foo-", "value": "bar"},
                {"name": "kernel.shmmax", "value": "100000000"},
                {"name": "safe-and-unsafe", "value": "100000000"},
                {"name": "bar..", "value": "42"}]},
            "containers": [{"name": "c", "image": "busybox:1"}]}});
    let r = s.send_json("POST", PODS, &pod);
    assert_eq!(r.status, 422, "{}", r.body);
    let message = r.json()["message"].as_str().unwrap_or_default().to_string();
    assert!(
        message.contains(r#"Invalid value: \"foo-\""#)
            || message.contains(r#"Invalid value: "foo-""#),
        "{message}"
    );
    assert!(message.contains("bar.."), "{message}");
    assert!(!message.contains("kernel.shmmax"), "{message}");
    assert!(!message.contains("safe-and-unsafe"), "{message}");
}
