//! Helm 4 (server-side apply) and Helm 3 (three-way strategic merge patches)
//! install, upgrade, roll back, list and uninstall a chart against a real server.
//!
//! No workload controllers exist yet, so a small stand-in (a thread in this
//! test, talking HTTP to the server like any client) marks Deployments
//! available and hook Jobs complete, which is what `--wait` and hooks wait for.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use common::{Kubectl, Server, kubectl_134, raw_request};

fn tools(name: &str) -> PathBuf {
    let dir = std::env::var("IRONKUBE_TOOLS_DIR").unwrap_or_else(|_| "/opt/ironkube-tools".into());
    PathBuf::from(dir).join("bin").join(name)
}

fn chart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo-chart")
}

struct Helm {
    bin: PathBuf,
    kubeconfig: PathBuf,
    home: PathBuf,
}

impl Helm {
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(&self.bin)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CACHE_HOME", self.home.join("cache"))
            .env("HELM_CONFIG_HOME", self.home.join("config"))
            .env("HELM_DATA_HOME", self.home.join("data"))
            .output()
            .expect("run helm");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "helm {args:?} failed: {out}{err}");
        out
    }
}

/// Marks every Deployment available and every Job complete until stopped.
fn stand_in_controllers(addr: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let deployments = raw_request(
                &addr,
                "GET",
                "/apis/apps/v1/deployments",
                "application/json",
                b"",
            );
            for d in deployments.json()["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                let generation = d["metadata"]["generation"].as_i64().unwrap_or(1);
                if d["status"]["observedGeneration"].as_i64() == Some(generation) {
                    continue;
                }
                let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
                let status = json!({"status": {
                    "observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
                    "readyReplicas": replicas, "availableReplicas": replicas,
                    "conditions": [
                        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "ok"},
                        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "ok"},
                    ],
                }});
                let ns = d["metadata"]["namespace"].as_str().unwrap_or("");
                let name = d["metadata"]["name"].as_str().unwrap_or("");
                ready_replica_set(&addr, &d, replicas);
                let path = format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}/status");
                raw_request(
                    &addr,
                    "PATCH",
                    &path,
                    "application/merge-patch+json",
                    status.to_string().as_bytes(),
                );
            }
            let jobs = raw_request(&addr, "GET", "/apis/batch/v1/jobs", "application/json", b"");
            for j in jobs.json()["items"].as_array().cloned().unwrap_or_default() {
                if j["status"]["succeeded"].as_i64() == Some(1) {
                    continue;
                }
                let now = chrono_now();
                let status = json!({"status": {
                    "succeeded": 1, "startTime": now, "completionTime": now,
                    "conditions": [
                        {"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": now, "lastTransitionTime": now},
                        {"type": "Complete", "status": "True", "lastProbeTime": now, "lastTransitionTime": now},
                    ],
                }});
                let path = format!(
                    "/apis/batch/v1/namespaces/{}/jobs/{}/status",
                    j["metadata"]["namespace"].as_str().unwrap_or(""),
                    j["metadata"]["name"].as_str().unwrap_or("")
                );
                raw_request(
                    &addr,
                    "PATCH",
                    &path,
                    "application/merge-patch+json",
                    status.to_string().as_bytes(),
                );
            }
            std::thread::park_timeout(Duration::from_millis(100));
        }
    })
}

/// The ReplicaSet a deployment controller would run for `d`'s current template,
/// ready (Helm 3's `--wait` looks for it).
fn ready_replica_set(addr: &str, d: &Value, replicas: i64) {
    let ns = d["metadata"]["namespace"].as_str().unwrap_or("");
    let template = d["spec"]["template"].clone();
    let hash = format!(
        "{:x}",
        template
            .to_string()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b))
                .wrapping_mul(0x0100_0000_01b3))
    );
    let hash = &hash[..10.min(hash.len())];
    let name = format!("{}-{hash}", d["metadata"]["name"].as_str().unwrap_or(""));
    let mut template = template;
    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let mut selector = d["spec"]["selector"].clone();
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    let rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": name, "namespace": ns, "labels": template["metadata"]["labels"].clone(),
            "annotations": {"deployment.kubernetes.io/revision": "1"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": d["metadata"]["name"], "uid": d["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {"replicas": replicas, "selector": selector, "template": template},
    });
    let base = format!("/apis/apps/v1/namespaces/{ns}/replicasets");
    raw_request(
        addr,
        "POST",
        &base,
        "application/json",
        rs.to_string().as_bytes(),
    );
    let status = json!({"status": {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas, "fullyLabeledReplicas": replicas, "observedGeneration": 1}});
    raw_request(
        addr,
        "PATCH",
        &format!("{base}/{name}/status"),
        "application/merge-patch+json",
        status.to_string().as_bytes(),
    );
}

fn chrono_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // RFC 3339 in UTC without a date library: days since epoch to a civil date.
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn scenario(helm_bin: &Path, kubectl_bin: &Path) {
    assert!(
        helm_bin.exists(),
        "{} missing: run hack/install-deps.sh",
        helm_bin.display()
    );
    let server = Server::start();
    let k: Kubectl = server.kubectl(kubectl_bin);
    let helm = Helm {
        bin: helm_bin.to_path_buf(),
        kubeconfig: server.kubeconfig.clone(),
        home: server.data_dir().join("helm"),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let stand_in = stand_in_controllers(format!("127.0.0.1:{}", server.port), stop.clone());
    let chart = chart();
    let c = chart.to_str().expect("chart path");

    let installed = helm.ok(&["install", "r1", c, "--wait", "--timeout", "60s"]);
    assert!(installed.contains("STATUS: deployed"), "{installed}");
    assert_eq!(
        k.ok(&["get", "cm", "r1-cfg", "-o", "jsonpath={.data.message}"]),
        "hello"
    );
    assert_eq!(
        k.ok(&["get", "job", "r1-pre", "-o", "jsonpath={.status.succeeded}"]),
        "1",
        "the pre-install hook ran"
    );
    for what in [
        "secret/r1-secret",
        "sa/r1-sa",
        "role/r1-role",
        "rolebinding/r1-rb",
        "svc/r1-svc",
        "deploy/r1-web",
    ] {
        k.ok(&["get", what]);
    }
    let release = k.ok(&["get", "secret", "sh.helm.release.v1.r1.v1", "-o", "json"]);
    let release: Value = serde_json::from_str(&release).expect("json");
    assert_eq!(release["type"], "helm.sh/release.v1");
    assert_eq!(release["metadata"]["labels"]["owner"], "helm");
    assert_eq!(release["metadata"]["labels"]["name"], "r1");
    assert!(
        release["data"]["release"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );

    helm.ok(&[
        "upgrade",
        "r1",
        c,
        "--set",
        "message=bye",
        "--set",
        "replicas=2",
        "--wait",
        "--timeout",
        "60s",
    ]);
    assert_eq!(
        k.ok(&["get", "cm", "r1-cfg", "-o", "jsonpath={.data.message}"]),
        "bye"
    );
    assert_eq!(
        k.ok(&["get", "deploy", "r1-web", "-o", "jsonpath={.spec.replicas}"]),
        "2"
    );
    helm.ok(&["rollback", "r1", "1", "--wait", "--timeout", "60s"]);
    assert_eq!(
        k.ok(&["get", "cm", "r1-cfg", "-o", "jsonpath={.data.message}"]),
        "hello"
    );
    let history = helm.ok(&["history", "r1"]);
    let revisions: Vec<&str> = history
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["1", "2", "3"], "{history}");
    assert!(
        history.lines().last().unwrap_or("").contains("deployed"),
        "{history}"
    );
    let list = helm.ok(&["list", "-A"]);
    let row: Vec<&str> = list
        .lines()
        .nth(1)
        .unwrap_or("")
        .split('\t')
        .map(str::trim)
        .collect();
    assert_eq!(
        (
            row.first().copied(),
            row.get(1).copied(),
            row.get(2).copied()
        ),
        (Some("r1"), Some("default"), Some("3")),
        "{list}"
    );

    // helm template | kubectl apply -f -, and a server-side dry run.
    let rendered = helm.ok(&["template", "r2", c, "--namespace", "default"]);
    let applied = k.ok_stdin(&["apply", "-f", "-"], &rendered);
    assert!(applied.contains("configmap/r2-cfg created"), "{applied}");
    let dry = helm.ok(&["install", "r3", c, "--dry-run=server"]);
    assert!(dry.contains("r3-cfg"), "{dry}");
    assert!(
        k.run(&["get", "cm", "r3-cfg"]).stderr.contains("NotFound"),
        "dry-run stored nothing"
    );

    let uninstalled = helm.ok(&["uninstall", "r1"]);
    assert!(
        uninstalled.contains("release \"r1\" uninstalled"),
        "{uninstalled}"
    );
    assert!(k.run(&["get", "cm", "r1-cfg"]).stderr.contains("NotFound"));
    assert_eq!(
        k.ok(&["get", "secrets", "-l", "owner=helm,name=r1", "-o", "name"]),
        ""
    );
    stop.store(true, Ordering::Relaxed);
    stand_in.thread().unpark();
    let _ = stand_in.join();
}

#[test]
fn helm_4_with_kubectl_1_34() {
    scenario(&tools("helm4"), &kubectl_134());
}

#[test]
fn helm_3_with_kubectl_1_32() {
    scenario(&tools("helm3"), Path::new(common::KUBECTL_132));
}
