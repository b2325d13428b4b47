//! `kubectl apply` (client-side and server-side), `diff`, `patch`, `replace` and
//! server-side dry-run, with stock kubectl 1.32 and 1.34.

mod common;

use std::path::Path;

use common::{Server, kubectl_134};

const BASE: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: default
  labels: {tier: web, keep: "yes"}
spec:
  replicas: 1
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec:
      containers:
      - name: c
        image: nginx:1.25
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
"#;

fn jsonpath(k: &common::Kubectl, what: &str, path: &str) -> String {
    k.ok(&["get", what, "-o", &format!("jsonpath={path}")])
}

fn scenario(kubectl: &Path) {
    let server = Server::start();
    let k = server.kubectl(kubectl);
    let dir = server.data_dir().to_path_buf();
    let file = dir.join("app.yaml");
    let f = file.to_str().expect("path");

    // Client-side apply: create, then re-apply without a label and an env var.
    std::fs::write(&file, BASE).expect("write");
    assert_eq!(k.ok(&["apply", "-f", f]), "deployment.apps/app created\n");
    // Another writer changes a field the manifest does not mention.
    k.ok(&["annotate", "deploy", "app", "owner=ops"]);
    std::fs::write(
        &file,
        BASE.replace(", keep: \"yes\"", "")
            .replace("        - {name: B, value: \"2\"}\n", ""),
    )
    .expect("write");
    let diff = k.run(&["diff", "-f", f]);
    assert_eq!(
        diff.status, 1,
        "diff must report a difference: {}{}",
        diff.stdout, diff.stderr
    );
    assert!(
        diff.stdout.contains("-    keep: \"yes\""),
        "{}",
        diff.stdout
    );
    assert_eq!(
        k.ok(&["apply", "-f", f]),
        "deployment.apps/app configured\n"
    );
    assert_eq!(
        jsonpath(&k, "deploy/app", "{.metadata.labels}"),
        r#"{"tier":"web"}"#
    );
    assert_eq!(
        jsonpath(
            &k,
            "deploy/app",
            "{.spec.template.spec.containers[0].env[*].name}"
        ),
        "A"
    );
    assert_eq!(
        jsonpath(&k, "deploy/app", "{.metadata.annotations.owner}"),
        "ops",
        "another writer's field is kept"
    );
    // Moving to server-side apply: kubectl's upgrade path from client-side apply
    // works without conflicts when the values agree.
    let upgraded = k.run(&["apply", "--server-side", "-f", f]);
    assert_eq!(upgraded.status, 0, "{}{}", upgraded.stdout, upgraded.stderr);
    assert_eq!(upgraded.stdout, "deployment.apps/app serverside-applied\n");
    let same = k.run(&["diff", "-f", f]);
    assert_eq!(
        (same.status, same.stdout.as_str()),
        (0, ""),
        "{}",
        same.stderr
    );
    assert_eq!(k.ok(&["apply", "-f", f]), "deployment.apps/app unchanged\n");

    // patch: json, merge, strategic (containers merge by name).
    assert_eq!(
        k.ok(&[
            "patch",
            "deploy",
            "app",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/replicas","value":2}]"#
        ]),
        "deployment.apps/app patched\n"
    );
    k.ok(&[
        "patch",
        "deploy",
        "app",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"merged":"true"}}}"#,
    ]);
    k.ok(&[
        "patch",
        "deploy",
        "app",
        "--type=strategic",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"side","image":"busybox:1.36"}]}}}}"#,
    ]);
    assert_eq!(
        jsonpath(
            &k,
            "deploy/app",
            "{.spec.replicas} {.metadata.labels.merged} {.spec.template.spec.containers[*].name}"
        ),
        "2 true side c"
    );
    let failed = k.run(&[
        "patch",
        "deploy",
        "app",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/spec/replicas","value":9}]"#,
    ]);
    assert_eq!(failed.status, 1);
    assert!(
        failed
            .stderr
            .contains("the server rejected our request due to an error in our request"),
        "{}",
        failed.stderr
    );

    // replace and replace --force.
    let current = k.ok(&["get", "deploy", "app", "-o", "yaml"]);
    let replaced = dir.join("replaced.yaml");
    std::fs::write(&replaced, current.replace("replicas: 2", "replicas: 4")).expect("write");
    assert_eq!(
        k.ok(&["replace", "-f", replaced.to_str().expect("path")]),
        "deployment.apps/app replaced\n"
    );
    assert_eq!(jsonpath(&k, "deploy/app", "{.spec.replicas}"), "4");
    let uid = jsonpath(&k, "deploy/app", "{.metadata.uid}");
    let forced = k.ok(&["replace", "--force", "-f", f]);
    assert!(
        forced.ends_with("deployment.apps/app replaced\n"),
        "{forced}"
    );
    assert_ne!(
        jsonpath(&k, "deploy/app", "{.metadata.uid}"),
        uid,
        "replace --force recreates"
    );

    // create --dry-run=server -o yaml: the server's defaulted object, nothing stored.
    let dry = k.ok(&[
        "create",
        "configmap",
        "dry",
        "--from-literal=a=b",
        "--dry-run=server",
        "-o",
        "yaml",
    ]);
    assert!(dry.contains("name: dry") && dry.contains("uid: "), "{dry}");
    assert!(
        k.run(&["get", "configmap", "dry"])
            .stderr
            .contains("NotFound")
    );

    // Server-side apply: create, conflict with another manager, --force-conflicts.
    let ssa = dir.join("ssa.yaml");
    let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n  namespace: default\ndata:\n  owned: \"1\"\n  common: x\n";
    std::fs::write(&ssa, manifest).expect("write");
    let s = ssa.to_str().expect("path");
    assert_eq!(
        k.ok(&["apply", "--server-side", "-f", s]),
        "configmap/shared serverside-applied\n"
    );
    k.ok(&[
        "patch",
        "configmap",
        "shared",
        "--type=merge",
        "-p",
        r#"{"data":{"owned":"2"}}"#,
        "--field-manager=intruder",
    ]);
    std::fs::write(&ssa, manifest.replace("owned: \"1\"", "owned: \"3\"")).expect("write");
    let conflict = k.run(&["apply", "--server-side", "-f", s]);
    assert_eq!(conflict.status, 1);
    assert!(
        conflict
            .stderr
            .contains("Apply failed with 1 conflict: conflict with \"intruder\" using v1 at "),
        "{}",
        conflict.stderr
    );
    assert!(
        conflict.stderr.contains(": .data.owned"),
        "{}",
        conflict.stderr
    );
    assert_eq!(
        k.ok(&["apply", "--server-side", "--force-conflicts", "-f", s]),
        "configmap/shared serverside-applied\n"
    );
    assert_eq!(jsonpath(&k, "configmap/shared", "{.data.owned}"), "3");
    // A field the applier stops applying is removed.
    std::fs::write(
        &ssa,
        manifest
            .replace("owned: \"1\"", "owned: \"3\"")
            .replace("  common: x\n", ""),
    )
    .expect("write");
    k.ok(&["apply", "--server-side", "-f", s]);
    assert_eq!(
        jsonpath(&k, "configmap/shared", "{.data}"),
        r#"{"owned":"3"}"#
    );
    let managed = k.ok(&[
        "get",
        "configmap",
        "shared",
        "-o",
        "json",
        "--show-managed-fields",
    ]);
    let v: serde_json::Value = serde_json::from_str(&managed).expect("json");
    let entries = v["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .clone();
    let apply_entry = entries
        .iter()
        .find(|e| e["operation"] == "Apply")
        .expect("an Apply entry");
    assert_eq!(apply_entry["manager"], "kubectl");
    assert_eq!(apply_entry["fieldsType"], "FieldsV1");
    assert_eq!(
        apply_entry["fieldsV1"],
        serde_json::json!({"f:data": {"f:owned": {}}})
    );

    // apply --prune -l: objects with the label that left the manifest are deleted.
    let pruned = dir.join("prune.yaml");
    let two = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: p1\n  namespace: default\n  labels: {set: s}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: p2\n  namespace: default\n  labels: {set: s}\n";
    std::fs::write(&pruned, two).expect("write");
    let p = pruned.to_str().expect("path");
    k.ok(&[
        "apply",
        "-f",
        p,
        "--prune",
        "-l",
        "set=s",
        "--prune-allowlist=core/v1/ConfigMap",
    ]);
    std::fs::write(&pruned, two.split("---\n").next().unwrap_or("")).expect("write");
    let out = k.ok(&[
        "apply",
        "-f",
        p,
        "--prune",
        "-l",
        "set=s",
        "--prune-allowlist=core/v1/ConfigMap",
    ]);
    assert!(out.contains("configmap/p2 pruned"), "{out}");
    assert!(
        k.run(&["get", "configmap", "p2"])
            .stderr
            .contains("NotFound")
    );
}

#[test]
fn kubectl_1_32_apply_diff_patch_replace() {
    scenario(Path::new(common::KUBECTL_132));
}

#[test]
fn kubectl_1_34_apply_diff_patch_replace() {
    let bin = kubectl_134();
    assert!(
        bin.exists(),
        "kubectl 1.34 missing at {}: run hack/install-deps.sh",
        bin.display()
    );
    scenario(&bin);
}
