//! The reference API server starts and answers with the pinned version.

use conformance::reference::ReferenceApiServer;

#[test]
fn reference_apiserver_serves_its_version() {
    let server = ReferenceApiServer::start().expect("start reference kube-apiserver");
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&server.kubeconfig)
        .args(["version", "-o", "json"])
        .output()
        .expect("run kubectl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "kubectl version failed: {text}");
    assert!(text.contains("\"gitVersion\": \"v1.34."), "{text}");
}
