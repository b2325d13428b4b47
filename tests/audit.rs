//! Auditing end to end: `ironkube server --audit-policy-file --audit-log-path`
//! writes `audit.k8s.io/v1` events as JSON lines, and each request the policy
//! selects is found with its user (and impersonated user), verb, object and
//! response code, at the level its rule gives (bodies at RequestResponse).

mod common;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use common::{Kubectl, Server, kubectl_134, poll};

const POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  nonResourceURLs: [/readyz, /healthz, /livez]
- level: RequestResponse
  resources:
  - group: \"\"
    resources: [configmaps]
- level: Metadata
";

fn events(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON event"))
        .collect()
}

/// Waits for the first event that `pick` accepts.
fn find(log: &Path, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
    poll(what, Duration::from_secs(20), || {
        events(log).into_iter().find(|e| pick(e))
    })
}

#[test]
fn requests_are_audited_with_user_verb_object_and_code() {
    let files = tempfile::tempdir().expect("tempdir");
    let policy = files.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).expect("policy");
    let log = files.path().join("audit/audit.log");
    let tokens = files.path().join("tokens.csv");
    std::fs::write(&tokens, "jane-token-0123456789,jane,uid-jane\n").expect("tokens");
    let server = Server::start_with(&[
        "--audit-policy-file",
        policy.to_str().expect("utf-8"),
        "--audit-log-path",
        log.to_str().expect("utf-8"),
        "--token-auth-file",
        tokens.to_str().expect("utf-8"),
    ]);
    let admin = server.kubectl(&kubectl_134());
    admin.ok(&["create", "configmap", "audited", "--from-literal=k=v"]);
    let missing = admin.run(&["get", "secret", "no-such-secret"]);
    assert_ne!(missing.status, 0);
    let impersonated = admin.run(&["get", "pods", "-n", "kube-system", "--as=jane"]);
    assert_ne!(impersonated.status, 0);
    let jane_config = server.token_kubeconfig(files.path(), "jane-token-0123456789");
    let jane = Kubectl {
        bin: kubectl_134(),
        kubeconfig: jane_config,
    };
    assert_ne!(jane.run(&["create", "configmap", "refused"]).status, 0);

    let created = find(&log, "the create of configmap audited", |e| {
        e["verb"] == "create" && e["objectRef"]["name"] == "audited"
    });
    assert_eq!(created["kind"], "Event");
    assert_eq!(created["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(created["level"], "RequestResponse");
    assert_eq!(created["stage"], "ResponseComplete");
    assert_eq!(created["user"]["username"], "kubernetes-admin");
    assert_eq!(created["objectRef"]["resource"], "configmaps");
    assert_eq!(created["objectRef"]["namespace"], "default");
    assert_eq!(created["objectRef"]["apiVersion"], "v1");
    assert_eq!(created["responseStatus"]["code"], 201);
    assert_eq!(created["requestObject"]["data"]["k"], "v");
    assert!(created["responseObject"]["metadata"]["uid"].is_string());
    assert_eq!(created["sourceIPs"][0], "127.0.0.1");
    assert!(!created["auditID"].as_str().unwrap_or("").is_empty());

    let not_found = find(&log, "the get of a missing secret", |e| {
        e["verb"] == "get" && e["objectRef"]["name"] == "no-such-secret"
    });
    assert_eq!(not_found["level"], "Metadata");
    assert_eq!(not_found["responseStatus"]["code"], 404);
    assert!(not_found.get("requestObject").is_none());
    assert!(not_found.get("responseObject").is_none());

    let as_jane = find(&log, "the impersonated list", |e| {
        e["impersonatedUser"]["username"] == "jane"
    });
    assert_eq!(as_jane["user"]["username"], "kubernetes-admin");
    assert_eq!(as_jane["verb"], "list");
    assert_eq!(as_jane["objectRef"]["resource"], "pods");
    assert_eq!(as_jane["objectRef"]["namespace"], "kube-system");
    assert_eq!(as_jane["responseStatus"]["code"], 403);

    let refused = find(&log, "jane's refused create", |e| {
        e["user"]["username"] == "jane" && e["verb"] == "create"
    });
    assert_eq!(refused["responseStatus"]["code"], 403);
    assert_eq!(refused["objectRef"]["resource"], "configmaps");

    let all = events(&log);
    assert!(
        all.iter().all(|e| e["stage"] != "RequestReceived"),
        "RequestReceived is omitted by the policy"
    );
    assert!(
        all.iter().all(|e| e["requestURI"]
            .as_str()
            .is_some_and(|u| !u.starts_with("/readyz"))),
        "health checks are not audited"
    );
}
