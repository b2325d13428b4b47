//! Helm 4 (server-side apply) and Helm 3 (three-way strategic merge patches)
//! install, upgrade, roll back, list and uninstall a chart against a real server.
//!
//! Nothing is faked by the test: the deployment, ReplicaSet and Job
//! controllers and the scheduler do their work, on ironkube's kwok-style FAKE
//! nodes (`--fake-nodes 2`), which report the pods bound to them Running and
//! Ready, and Job pods Succeeded (kwok's behaviour). That is what `--wait` and
//! the hook Job wait for.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use common::{Kubectl, Server, kubectl_134};

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

fn scenario(helm_bin: &Path, kubectl_bin: &Path) {
    assert!(
        helm_bin.exists(),
        "{} missing: run hack/install-deps.sh",
        helm_bin.display()
    );
    let server = Server::start_with(&["--fake-nodes", "2"]);
    let k: Kubectl = server.kubectl(kubectl_bin);
    let helm = Helm {
        bin: helm_bin.to_path_buf(),
        kubeconfig: server.kubeconfig.clone(),
        home: server.data_dir().join("helm"),
    };
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
}

#[test]
fn helm_4_with_kubectl_1_34() {
    scenario(&tools("helm4"), &kubectl_134());
}

#[test]
fn helm_3_with_kubectl_1_32() {
    scenario(&tools("helm3"), Path::new(common::KUBECTL_132));
}
