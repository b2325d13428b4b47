//! Stock kubectl 1.32 and 1.34 against a real `ironkube server`: the everyday
//! commands, with their output checked against what upstream prints.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Server, expect_table, kubectl_134, poll, table};

const MANIFEST_YAML: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: demo
  labels: {app: web, tier: config}
data: {mode: "fast"}
"#;

const POD_JSON: &str = r#"{
  "apiVersion": "v1",
  "kind": "Pod",
  "metadata": {"name": "p1", "namespace": "demo", "labels": {"app": "web"}},
  "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}
}"#;

/// `deleted` as this kubectl prints it (1.34 names the namespace).
fn deleted(what: &str, ns: &str, v134: bool) -> String {
    if v134 {
        format!("{what} deleted from {ns} namespace\n")
    } else {
        format!("{what} deleted\n")
    }
}

fn scenario(kubectl: &Path, v134: bool) {
    scenario_on(kubectl, v134, Server::start());
}

fn scenario_on(kubectl: &Path, v134: bool, server: Server) {
    let k = server.kubectl(kubectl);
    let dir = server.data_dir().to_path_buf();

    let version = k.ok(&["version"]);
    assert!(version.contains("Server Version: v1.34."), "{version}");
    let versions = k.ok(&["api-versions"]);
    for gv in [
        "v1",
        "apps/v1",
        "batch/v1",
        "rbac.authorization.k8s.io/v1",
        "apiextensions.k8s.io/v1",
    ] {
        assert!(
            versions.lines().any(|l| l == gv),
            "api-versions lacks {gv}: {versions}"
        );
    }
    let resources = k.ok(&["api-resources"]);
    let header: Vec<&str> = resources
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    );
    let row = |name: &str| -> Vec<String> {
        resources
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("api-resources lacks {name}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(row("pods"), ["pods", "po", "v1", "true", "Pod"]);
    assert_eq!(
        row("deployments"),
        ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    );
    assert_eq!(
        row("namespaces"),
        ["namespaces", "ns", "v1", "false", "Namespace"]
    );
    let namespaced = k.ok(&["api-resources", "--namespaced=false", "-o", "name"]);
    assert!(namespaced.lines().any(|l| l == "nodes"));

    assert_eq!(
        k.ok(&["create", "namespace", "demo"]),
        "namespace/demo created\n"
    );
    // As upstream, the controllers give every namespace its root CA bundle.
    poll("kube-root-ca.crt in demo", Duration::from_secs(30), || {
        (k.run(&["get", "configmap", "kube-root-ca.crt", "-n", "demo"])
            .status
            == 0)
            .then_some(())
    });
    let yaml = dir.join("m.yaml");
    std::fs::write(&yaml, MANIFEST_YAML).expect("write yaml");
    let json = dir.join("p.json");
    std::fs::write(&json, POD_JSON).expect("write json");
    assert_eq!(
        k.ok(&["create", "-f", yaml.to_str().expect("path")]),
        "deployment.apps/web created\nconfigmap/settings created\n"
    );
    assert_eq!(
        k.ok(&["create", "-f", json.to_str().expect("path")]),
        "pod/p1 created\n"
    );
    // kubectl's default strict validation reports an unknown field as upstream does.
    let typo = dir.join("typo.yaml");
    std::fs::write(&typo, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\n  namespace: demo\ndta:\n  a: b\n").expect("write");
    let strict = k.run(&["create", "-f", typo.to_str().expect("path")]);
    assert_eq!(strict.status, 1);
    assert_eq!(
        strict.stderr.trim(),
        format!(
            "Error from server (BadRequest): error when creating \"{}\": ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"dta\"",
            typo.display()
        )
    );
    let again = k.run(&["create", "-f", json.to_str().expect("path")]);
    assert_eq!(again.status, 1);
    assert_eq!(again.stderr.trim(), r#"Error from server (AlreadyExists): error when creating "PATH": pods "p1" already exists"#.replace("PATH", json.to_str().expect("path")));

    // get: default table, wide, yaml, json, name, jsonpath, -A, -l, --field-selector
    assert_eq!(
        table(&k.ok(&["get", "configmaps", "-n", "demo"])),
        expect_table(&[
            "NAME|DATA|AGE",
            "kube-root-ca.crt|1|<age>",
            "settings|1|<age>"
        ])
    );
    // The deployment controller creates both pods; with no node to run
    // them none is ready or available.
    let want = expect_table(&[
        "NAME|READY|UP-TO-DATE|AVAILABLE|AGE|CONTAINERS|IMAGES|SELECTOR",
        "web|0/2|2|0|<age>|nginx|nginx:1.25|app=web",
    ]);
    poll(
        "the deployment's pods created",
        Duration::from_secs(30),
        || (table(&k.ok(&["get", "deploy", "-n", "demo", "-o", "wide"])) == want).then_some(()),
    );
    let pod_yaml = k.ok(&["get", "pod", "p1", "-n", "demo", "-o", "yaml"]);
    for line in [
        "kind: Pod",
        "  name: p1",
        "  namespace: demo",
        "  phase: Pending",
        "  qosClass: BestEffort",
        "    terminationMessagePath: /dev/termination-log",
    ] {
        assert!(
            pod_yaml.lines().any(|l| l == line),
            "pod yaml lacks {line:?}:\n{pod_yaml}"
        );
    }
    let pod_json: serde_json::Value =
        serde_json::from_str(&k.ok(&["get", "pod", "p1", "-n", "demo", "-o", "json"]))
            .expect("json");
    assert_eq!(pod_json["metadata"]["labels"]["app"], "web");
    assert!(
        pod_json["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );
    // (The deployment's own pods carry a pod-template-hash; p1 does not.)
    let not_deployed = "!pod-template-hash";
    assert_eq!(
        k.ok(&[
            "get",
            "pods,cm",
            "-n",
            "demo",
            "-l",
            not_deployed,
            "-o",
            "name"
        ]),
        "pod/p1\nconfigmap/kube-root-ca.crt\nconfigmap/settings\n"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "cm",
            "settings",
            "-n",
            "demo",
            "-o",
            "jsonpath={.data.mode}"
        ]),
        "fast"
    );
    assert_eq!(
        table(&k.ok(&["get", "pods", "-A", "-l", not_deployed])),
        expect_table(&[
            "NAMESPACE|NAME|READY|STATUS|RESTARTS|AGE",
            "demo|p1|0/1|Pending|0|<age>"
        ])
    );
    assert_eq!(
        k.ok(&["get", "cm", "-n", "demo", "-l", "tier=config", "-o", "name"]),
        "configmap/settings\n"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "cm",
            "-n",
            "demo",
            "-l",
            "tier notin (config)",
            "-o",
            "name"
        ]),
        "configmap/kube-root-ca.crt\n"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "pods",
            "-A",
            "--field-selector",
            "metadata.name=p1",
            "-o",
            "name"
        ]),
        "pod/p1\n"
    );
    let bad_field = k.run(&[
        "get",
        "pods",
        "-n",
        "demo",
        "--field-selector",
        "spec.bogus=x",
    ]);
    assert_eq!(bad_field.status, 1);
    assert!(
        bad_field
            .stderr
            .contains("field label not supported: spec.bogus"),
        "{}",
        bad_field.stderr
    );
    let labels = k.ok(&["get", "pods", "-n", "demo", "--show-labels"]);
    assert!(labels.contains("app=web"), "{labels}");
    let col = k.ok(&["get", "pods", "-n", "demo", "-L", "app"]);
    assert!(col.lines().next().unwrap_or("").ends_with("APP"), "{col}");

    // describe
    let described = k.ok(&["describe", "pod", "p1", "-n", "demo"]);
    for want in [
        "Name:             p1",
        "Namespace:        demo",
        "Status:           Pending",
        "QoS Class:                   BestEffort",
    ] {
        let key = want.split(':').next().unwrap_or(want);
        let value = want.rsplit(' ').next().unwrap_or(want);
        assert!(
            described
                .lines()
                .any(|l| l.starts_with(key) && l.trim_end().ends_with(value)),
            "describe lacks {want:?}:\n{described}"
        );
    }

    // label, annotate, scale, edit
    assert_eq!(
        k.ok(&["label", "pod", "p1", "-n", "demo", "tier=fe"]),
        "pod/p1 labeled\n"
    );
    assert_eq!(
        k.ok(&["annotate", "pod", "p1", "-n", "demo", "note=hello"]),
        "pod/p1 annotated\n"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "pod",
            "p1",
            "-n",
            "demo",
            "-o",
            "jsonpath={.metadata.labels.tier}/{.metadata.annotations.note}"
        ]),
        "fe/hello"
    );
    assert_eq!(
        k.ok(&["label", "pod", "p1", "-n", "demo", "tier-"]),
        "pod/p1 unlabeled\n"
    );
    assert_eq!(
        k.ok(&["scale", "deployment", "web", "-n", "demo", "--replicas=3"]),
        "deployment.apps/web scaled\n"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "deploy",
            "web",
            "-n",
            "demo",
            "-o",
            "jsonpath={.spec.replicas}/{.metadata.generation}"
        ]),
        "3/2"
    );
    let editor = dir.join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/mode: fast/mode: slow/' \"$1\"\n",
    )
    .expect("editor");
    make_executable(&editor);
    let edited = k
        .command(&["edit", "configmap", "settings", "-n", "demo"])
        .env("EDITOR", &editor)
        .output()
        .expect("edit");
    assert!(
        edited.status.success(),
        "{}",
        String::from_utf8_lossy(&edited.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&edited.stdout),
        "configmap/settings edited\n"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "cm",
            "settings",
            "-n",
            "demo",
            "-o",
            "jsonpath={.data.mode}"
        ]),
        "slow"
    );

    // get -w: events appear as they happen
    let mut watch = k
        .command(&[
            "get",
            "configmaps",
            "-n",
            "demo",
            "-w",
            "--output-watch-events",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("watch");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = BufReader::new(watch.stdout.take().expect("stdout"));
    let sink = lines.clone();
    let pump = std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            sink.lock().expect("lock").push(line);
        }
    });
    poll("initial watch listing", Duration::from_secs(20), || {
        lines
            .lock()
            .expect("lock")
            .iter()
            .any(|l| l.contains("settings"))
            .then_some(())
    });
    k.ok(&[
        "create",
        "configmap",
        "live",
        "-n",
        "demo",
        "--from-literal=a=b",
    ]);
    poll("ADDED event for live", Duration::from_secs(20), || {
        lines
            .lock()
            .expect("lock")
            .iter()
            .any(|l| l.starts_with("ADDED") && l.contains("live"))
            .then_some(())
    });
    k.ok(&["delete", "configmap", "live", "-n", "demo"]);
    poll("DELETED event for live", Duration::from_secs(20), || {
        lines
            .lock()
            .expect("lock")
            .iter()
            .any(|l| l.starts_with("DELETED") && l.contains("live"))
            .then_some(())
    });
    let _ = watch.kill();
    let _ = watch.wait();
    let _ = pump.join();

    // the create subcommands (typed clients: protobuf bodies)
    let creates: &[(&[&str], &str)] = &[
        (
            &[
                "create",
                "configmap",
                "c1",
                "-n",
                "demo",
                "--from-literal=k=v",
            ],
            "configmap/c1 created\n",
        ),
        (
            &[
                "create",
                "secret",
                "generic",
                "s1",
                "-n",
                "demo",
                "--from-literal=password=hunter2",
            ],
            "secret/s1 created\n",
        ),
        (
            &[
                "create",
                "deployment",
                "d1",
                "-n",
                "demo",
                "--image=nginx:1.25",
                "--replicas=2",
            ],
            "deployment.apps/d1 created\n",
        ),
        (
            &[
                "create",
                "service",
                "clusterip",
                "svc1",
                "-n",
                "demo",
                "--tcp=80:8080",
            ],
            "service/svc1 created\n",
        ),
        (
            &["create", "job", "j1", "-n", "demo", "--image=busybox:1.36"],
            "job.batch/j1 created\n",
        ),
        (
            &[
                "create",
                "cronjob",
                "cj1",
                "-n",
                "demo",
                "--image=busybox:1.36",
                "--schedule=*/5 * * * *",
            ],
            "cronjob.batch/cj1 created\n",
        ),
        (
            &["create", "serviceaccount", "sa1", "-n", "demo"],
            "serviceaccount/sa1 created\n",
        ),
        (
            &[
                "create",
                "role",
                "r1",
                "-n",
                "demo",
                "--verb=get",
                "--resource=pods",
            ],
            "role.rbac.authorization.k8s.io/r1 created\n",
        ),
        (
            &[
                "create",
                "rolebinding",
                "rb1",
                "-n",
                "demo",
                "--role=r1",
                "--serviceaccount=demo:sa1",
            ],
            "rolebinding.rbac.authorization.k8s.io/rb1 created\n",
        ),
        (
            &["create", "quota", "q1", "-n", "demo", "--hard=pods=10"],
            "resourcequota/q1 created\n",
        ),
        (
            &["create", "priorityclass", "high", "--value=1000"],
            "priorityclass.scheduling.k8s.io/high created\n",
        ),
    ];
    for (args, want) in creates {
        assert_eq!(k.ok(args), *want, "kubectl {args:?}");
    }
    assert_eq!(
        k.ok(&[
            "get",
            "secret",
            "s1",
            "-n",
            "demo",
            "-o",
            "jsonpath={.data.password}"
        ]),
        "aHVudGVyMg=="
    );
    assert_eq!(
        k.ok(&[
            "get",
            "job",
            "j1",
            "-n",
            "demo",
            "-o",
            "jsonpath={.spec.template.spec.restartPolicy}"
        ]),
        "Never"
    );
    let svc = k.ok(&[
        "get",
        "svc",
        "svc1",
        "-n",
        "demo",
        "-o",
        "jsonpath={.spec.type} {.spec.ports[0].port} {.spec.ports[0].targetPort}",
    ]);
    assert_eq!(svc, "ClusterIP 80 8080");
    assert_eq!(
        table(&k.ok(&["get", "secrets", "-n", "demo"])),
        expect_table(&["NAME|TYPE|DATA|AGE", "s1|Opaque|1|<age>"])
    );

    // delete by label, --all, and wait --for=delete
    assert_eq!(
        k.ok(&["delete", "cm", "-n", "demo", "-l", "tier=config"]),
        deleted("configmap \"settings\"", "demo", v134)
    );
    let mut wait = k
        .command(&[
            "wait",
            "--for=delete",
            "configmap/c1",
            "-n",
            "demo",
            "--timeout=30s",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("wait");
    k.ok(&["delete", "configmap", "c1", "-n", "demo"]);
    let waited = wait.wait().expect("wait exit");
    assert!(waited.success());
    let both = deleted("deployment.apps \"d1\"", "demo", v134)
        + &deleted("deployment.apps \"web\"", "demo", v134);
    assert_eq!(k.ok(&["delete", "deploy", "--all", "-n", "demo"]), both);
    // The garbage collector removes the deployments' ReplicaSets and pods.
    k.ok(&["delete", "pods", "--all", "-n", "demo"]);
    poll("no pods left in demo", Duration::from_secs(30), || {
        (k.run(&["get", "pods", "-n", "demo"]).stderr.trim()
            == "No resources found in demo namespace.")
            .then_some(())
    });
    // Deleting the namespace removes its content, then the namespace itself.
    k.ok(&[
        "delete",
        "namespace",
        "demo",
        "--wait=true",
        "--timeout=60s",
    ]);
    assert_eq!(
        k.run(&["get", "namespace", "demo"]).stderr.trim(),
        "Error from server (NotFound): namespaces \"demo\" not found"
    );
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut perm = std::fs::metadata(path).expect("meta").permissions();
    perm.set_mode(0o755);
    std::fs::set_permissions(path, perm).expect("chmod");
}

#[test]
fn kubectl_1_32_everyday_commands() {
    scenario(Path::new(common::KUBECTL_132), false);
}

/// The same scenario with the server storing objects in a real etcd.
#[test]
fn kubectl_1_34_everyday_commands_on_etcd() {
    let etcd = common::Etcd::start();
    let server = Server::start_with(&["--etcd-servers", &etcd.url()]);
    scenario_on(&kubectl_134(), true, server);
    drop(etcd);
}

#[test]
fn kubectl_1_34_everyday_commands() {
    let bin = kubectl_134();
    assert!(
        bin.exists(),
        "kubectl 1.34 missing at {}: run hack/install-deps.sh",
        bin.display()
    );
    scenario(&bin, true);
}
