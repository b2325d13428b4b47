//! `kubectl explain` against the vendored OpenAPI v3 documents, with stock
//! kubectl 1.32 and 1.34, and field validation still answered by the server.

mod common;

use std::path::{Path, PathBuf};

use common::{KUBECTL_132, Server, kubectl_134};

fn kubectls() -> Vec<PathBuf> {
    vec![PathBuf::from(KUBECTL_132), kubectl_134()]
}

fn assert_lines(out: &str, expected: &[&str], what: &str) {
    for line in expected {
        assert!(
            out.lines().any(|l| l.trim_end() == *line),
            "{what}: missing line {line:?} in:\n{out}"
        );
    }
}

fn explain_probe(server: &Server, kubectl: &Path) {
    let k = server.kubectl(kubectl);
    let out = k.ok(&["explain", "pod.spec.containers.livenessProbe"]);
    assert_lines(
        &out,
        &[
            "KIND:       Pod",
            "VERSION:    v1",
            "FIELD: livenessProbe <Probe>",
            "DESCRIPTION:",
            "FIELDS:",
            "  exec\t<ExecAction>",
            "  failureThreshold\t<integer>",
            "  httpGet\t<HTTPGetAction>",
            "  initialDelaySeconds\t<integer>",
            "  tcpSocket\t<TCPSocketAction>",
            "  terminationGracePeriodSeconds\t<integer>",
        ],
        "explain pod.spec.containers.livenessProbe",
    );
    assert!(
        out.contains("Periodic probe of container liveness."),
        "field description missing:\n{out}"
    );
    let port = k.ok(&["explain", "pod.spec.containers.livenessProbe.httpGet.port"]);
    assert_lines(
        &port,
        &["FIELD: port <IntOrString>"],
        "explain …httpGet.port",
    );
}

fn explain_deployment(server: &Server, kubectl: &Path) {
    let out = server
        .kubectl(kubectl)
        .ok(&["explain", "deployment", "--recursive"]);
    assert_lines(
        &out,
        &[
            "GROUP:      apps",
            "KIND:       Deployment",
            "VERSION:    v1",
            "DESCRIPTION:",
            "    Deployment enables declarative updates for Pods and ReplicaSets.",
            "FIELDS:",
            "  apiVersion\t<string>",
            "  kind\t<string>",
            "  metadata\t<ObjectMeta>",
            "    labels\t<map[string]string>",
            "  spec\t<DeploymentSpec>",
            "    replicas\t<integer>",
            "    selector\t<LabelSelector> -required-",
            "    strategy\t<DeploymentStrategy>",
            "        maxSurge\t<IntOrString>",
            "    template\t<PodTemplateSpec> -required-",
            "        containers\t<[]Container> -required-",
            "          livenessProbe\t<Probe>",
            "          name\t<string> -required-",
            "  status\t<DeploymentStatus>",
            "    conditions\t<[]DeploymentCondition>",
        ],
        "explain deployment --recursive",
    );
}

/// `--output plaintext-openapiv2` reads `/openapi/v2` in gnostic's protobuf form.
fn explain_v2(server: &Server, kubectl: &Path) {
    let k = server.kubectl(kubectl);
    let out = k.ok(&[
        "explain",
        "pod.spec.containers.livenessProbe",
        "--output",
        "plaintext-openapiv2",
    ]);
    assert_lines(
        &out,
        &[
            "KIND:     Pod",
            "VERSION:  v1",
            "RESOURCE: livenessProbe <Object>",
            "   failureThreshold\t<integer>",
            "   httpGet\t<Object>",
        ],
        "explain --output plaintext-openapiv2",
    );
    let out = k.ok(&[
        "explain",
        "deployment",
        "--recursive",
        "--output",
        "plaintext-openapiv2",
    ]);
    assert_lines(
        &out,
        &[
            "KIND:     Deployment",
            "VERSION:  apps/v1",
            "   spec\t<Object>",
            "            containers\t<[]Object>",
        ],
        "explain deployment --recursive --output plaintext-openapiv2",
    );
}

#[test]
fn explain_with_kubectl_132_and_134() {
    let server = Server::start();
    for kubectl in kubectls() {
        explain_probe(&server, &kubectl);
        explain_deployment(&server, &kubectl);
        explain_v2(&server, &kubectl);
    }
}

#[test]
fn unknown_fields_still_fail_strict_validation() {
    let server = Server::start();
    let manifest = server.data_dir().join("bad.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: bad\nspec:\n  replicas: 1\n  replicaz: 2\n  selector: {matchLabels: {app: bad}}\n  template:\n    metadata: {labels: {app: bad}}\n    spec:\n      containers: [{name: c, image: nginx}]\n",
    )
    .expect("write manifest");
    for kubectl in kubectls() {
        let run = server
            .kubectl(&kubectl)
            .run(&["create", "-f", &manifest.to_string_lossy()]);
        assert!(
            run.status != 0,
            "{kubectl:?}: create with an unknown field succeeded"
        );
        let expected = format!(
            "Error from server (BadRequest): error when creating \"{}\": Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.replicaz\"",
            manifest.display()
        );
        assert!(
            run.stderr.trim_end() == expected,
            "{kubectl:?}: stderr {:?}, expected {expected:?}",
            run.stderr
        );
    }
}
