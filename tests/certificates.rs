//! CertificateSigningRequests with stock kubectl 1.34: `kubectl certificate
//! approve` gets a certificate from the controller manager's signer whose
//! subject is the request's, `deny` gets none, and the `approval` and
//! `status` subresources enforce upstream's rules with upstream's errors.

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use common::{Server, kubectl_134, poll};

const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

fn request_pem(cn: &str, org: &str) -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, org);
    params
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem")
}

fn csr(name: &str, signer: &str, cn: &str, extra: Value) -> Value {
    let mut obj = json!({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": B64.encode(request_pem(cn, "devs")),
            "signerName": signer,
            "usages": ["digital signature", "client auth"],
        },
    });
    if let (Some(spec), Some(more)) = (obj["spec"].as_object_mut(), extra.as_object()) {
        spec.extend(more.clone());
    }
    obj
}

fn get(server: &Server, name: &str) -> Value {
    let resp = common::raw_request_with(
        &server.addr(),
        "GET",
        &format!("{CSRS}/{name}"),
        &[("Accept", "application/json")],
        b"",
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp.json()
}

fn conditions(obj: &Value) -> Vec<(String, String)> {
    obj["status"]["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    (
                        c["type"].as_str().unwrap_or("").to_string(),
                        c["reason"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn kubectl_certificate_approve_issues_a_certificate() {
    let server = Server::start();
    let k = server.kubectl(&kubectl_134());
    let alice = csr(
        "alice",
        "kubernetes.io/kube-apiserver-client",
        "alice",
        json!({"expirationSeconds": 7200}),
    );
    k.ok_stdin(&["create", "-f", "-"], &alice.to_string());
    let bob = csr(
        "bob",
        "kubernetes.io/kube-apiserver-client",
        "bob",
        json!({}),
    );
    k.ok_stdin(&["create", "-f", "-"], &bob.to_string());
    let created = get(&server, "alice");
    assert_eq!(
        created["status"],
        json!({}),
        "a new request has an empty status"
    );

    k.ok(&["certificate", "deny", "bob"]);
    let out = k.ok(&["certificate", "approve", "alice"]);
    assert!(out.contains("approved"), "{out}");
    let issued = poll("alice's certificate", Duration::from_secs(30), || {
        let obj = get(&server, "alice");
        obj["status"]["certificate"].as_str().map(str::to_string)
    });
    let pem = B64.decode(issued).expect("base64");
    let der = x509_parser::pem::parse_x509_pem(&pem).expect("pem").1;
    let cert = x509_parser::parse_x509_certificate(&der.contents)
        .expect("cert")
        .1;
    assert_eq!(cert.subject().to_string(), "CN=alice, O=devs");
    assert_eq!(cert.issuer().to_string(), "CN=kubernetes");
    let v = cert.validity();
    assert_eq!(v.not_after.timestamp() - v.not_before.timestamp(), 7200);
    // Signed by the CA kept in the data dir.
    let ca_pem = std::fs::read(server.data_dir().join("pki/ca.crt")).expect("ca.crt");
    let ca_der = x509_parser::pem::parse_x509_pem(&ca_pem).expect("pem").1;
    let ca = x509_parser::parse_x509_certificate(&ca_der.contents)
        .expect("ca")
        .1;
    cert.verify_signature(Some(ca.public_key()))
        .expect("signed by the cluster CA");

    let alice = get(&server, "alice");
    let approved = &alice["status"]["conditions"][0];
    assert_eq!(approved["type"], "Approved");
    assert_eq!(approved["reason"], "KubectlApprove");
    assert!(approved["lastUpdateTime"].is_string() && approved["lastTransitionTime"].is_string());
    let table = k.ok(&["get", "csr", "alice", "bob"]);
    assert!(table.contains("Approved,Issued"), "{table}");
    assert!(table.contains("Denied"), "{table}");
    assert_eq!(
        get(&server, "bob")["status"].get("certificate"),
        None,
        "a denied request is never signed"
    );
}

#[test]
fn approval_and_status_follow_upstreams_rules() {
    let server = Server::start();
    let k = server.kubectl(&kubectl_134());
    let obj = csr("c", "example.com/signer", "carol", json!({}));
    assert_eq!(server.send_json("POST", CSRS, &obj).status, 201);
    let current = get(&server, "c");
    let put = |sub: &str, body: &Value| server.send_json("PUT", &format!("{CSRS}/c/{sub}"), body);
    let with_conditions = |conds: Value| {
        let mut o = current.clone();
        o["status"] = json!({"conditions": conds});
        o
    };
    let approve = json!({"type": "Approved", "status": "True", "reason": "R"});
    let deny = json!({"type": "Denied", "status": "True", "reason": "R"});

    // Both at once is refused.
    let resp = put("approval", &with_conditions(json!([approve, deny])));
    assert_eq!(resp.status, 422, "{}", resp.body);
    // (The kind prefix is the shared `ApiError::invalid`'s; upstream's is
    // `CertificateSigningRequest.certificates.k8s.io`.)
    let message = resp.json()["message"].as_str().unwrap_or("").to_string();
    assert!(
        message.ends_with(r#" "c" is invalid: status.conditions: Invalid value: "Denied": Approved and Denied conditions are mutually exclusive"#),
        "{message}"
    );
    // Approval through /status is refused; through /approval it is taken,
    // and nothing but the conditions changes.
    let resp = put("status", &with_conditions(json!([approve])));
    assert_eq!(resp.status, 422, "{}", resp.body);
    assert!(
        resp.json()["message"].as_str().unwrap_or("").contains(
            r#"status.conditions: Forbidden: updates may not add a condition of type "Approved""#
        ),
        "{}",
        resp.body
    );
    let mut sneaky = with_conditions(json!([approve]));
    sneaky["spec"]["usages"] = json!(["server auth"]);
    sneaky["status"]["certificate"] = json!(B64.encode("junk"));
    let resp = put("approval", &sneaky);
    assert_eq!(resp.status, 200, "{}", resp.body);
    let approved = resp.json();
    assert_eq!(
        conditions(&approved),
        [("Approved".to_string(), "R".to_string())]
    );
    assert_eq!(approved["spec"]["usages"], current["spec"]["usages"]);
    assert_eq!(approved["status"].get("certificate"), None);
    // Approval cannot be withdrawn, nor turned into a denial.
    let resp = put("approval", &{
        let mut o = approved.clone();
        o["status"]["conditions"] = json!([]);
        o
    });
    assert_eq!(resp.status, 422);
    assert!(
        resp.body
            .contains(r#"updates may not remove a condition of type \"Approved\""#),
        "{}",
        resp.body
    );
    // Nor turned into a denial (kubectl refuses that itself; the server too).
    let resp = put("approval", &{
        let mut o = approved.clone();
        o["status"]["conditions"] = json!([approve, deny]);
        o
    });
    assert_eq!(resp.status, 422);
    assert!(resp.body.contains("mutually exclusive"), "{}", resp.body);
    let r = k.run(&["certificate", "deny", "c"]);
    assert_ne!(r.status, 0, "{}", r.stdout);

    // /status: the certificate must be PEM certificates, set once.
    let resp = put("status", &{
        let mut o = approved.clone();
        o["status"]["certificate"] = json!(B64.encode("junk"));
        o
    });
    assert_eq!(resp.status, 422);
    assert!(
        resp.body.contains("status.certificate: Invalid value: \\\"<certificate data>\\\": must contain at least one CERTIFICATE PEM block"),
        "{}",
        resp.body
    );
    let ca_pem = std::fs::read_to_string(server.data_dir().join("pki/ca.crt")).expect("ca");
    let with_cert = |pem: &str| {
        let mut o = approved.clone();
        o["status"]["certificate"] = json!(B64.encode(pem));
        o["metadata"]
            .as_object_mut()
            .map(|m| m.remove("resourceVersion"));
        o
    };
    let resp = put("status", &with_cert(&ca_pem));
    assert_eq!(resp.status, 200, "{}", resp.body);
    let other = rcgen::CertificateParams::new(vec!["x.example".to_string()])
        .expect("params")
        .self_signed(&rcgen::KeyPair::generate().expect("key"))
        .expect("cert")
        .pem();
    let resp = put("status", &with_cert(&other));
    assert_eq!(resp.status, 422);
    assert!(
        resp.body
            .contains("updates may not modify existing certificate content"),
        "{}",
        resp.body
    );

    // An update of the object itself keeps spec and status.
    let mut plain = get(&server, "c");
    plain["status"] = json!({});
    plain["metadata"]["labels"] = json!({"l": "v"});
    let resp = server.send_json("PUT", &format!("{CSRS}/c"), &plain);
    assert_eq!(resp.status, 200, "{}", resp.body);
    let kept = resp.json();
    assert_eq!(kept["metadata"]["labels"]["l"], "v");
    assert!(kept["status"]["certificate"].is_string());

    // Merge patches of /approval go through the same rules.
    let resp = common::raw_request(
        &server.addr(),
        "PATCH",
        &format!("{CSRS}/c/approval"),
        "application/merge-patch+json",
        br#"{"status":{"conditions":[{"type":"Denied","status":"True"}]}}"#,
    );
    assert_eq!(resp.status, 422, "{}", resp.body);
}

#[test]
fn requests_are_validated_on_create() {
    let server = Server::start();
    let resp = server.send_json(
        "POST",
        CSRS,
        &csr("legacy", "kubernetes.io/legacy-unknown", "x", json!({})),
    );
    assert_eq!(resp.status, 422);
    let message = resp.json()["message"].as_str().unwrap_or("").to_string();
    assert!(
        message.ends_with(r#" "legacy" is invalid: spec.signerName: Invalid value: "kubernetes.io/legacy-unknown": the legacy signerName is not allowed via this API version"#),
        "{message}"
    );
    let resp = server.send_json(
        "POST",
        CSRS,
        &csr(
            "short",
            "kubernetes.io/kube-apiserver-client",
            "x",
            json!({"expirationSeconds": 100}),
        ),
    );
    assert_eq!(resp.status, 422);
    assert!(
        resp.body.contains("spec.expirationSeconds: Invalid value: 100: may not specify a duration less than 600 seconds (10 minutes)"),
        "{}",
        resp.body
    );
    let mut bad = csr(
        "bad",
        "kubernetes.io/kube-apiserver-client",
        "x",
        json!({"usages": ["client auth", "client auth"]}),
    );
    bad["spec"]["request"] = json!(B64.encode("not a request"));
    let resp = server.send_json("POST", CSRS, &bad);
    assert_eq!(resp.status, 422);
    let causes: Vec<String> = resp.json()["details"]["causes"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| c["field"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(causes, ["spec.request", "spec.usages[1]"], "{}", resp.body);
    assert!(
        resp.body
            .contains("PEM block type must be CERTIFICATE REQUEST"),
        "{}",
        resp.body
    );
    // A pre-approved request is not: status is the server's.
    let mut preapproved = csr("pre", "kubernetes.io/kube-apiserver-client", "x", json!({}));
    preapproved["status"] = json!({"conditions": [{"type": "Approved", "status": "True"}]});
    let resp = server.send_json("POST", CSRS, &preapproved);
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(resp.json()["status"], json!({}));
}
