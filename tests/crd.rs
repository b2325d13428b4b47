//! CustomResourceDefinitions end to end, with stock kubectl 1.32 and 1.34
//! against a real `ironkube apiserver`: a CRD becomes Established and its
//! resources are served (discovery, CRUD, printer columns, patches, status
//! and scale subresources, server-side apply, dry run, selectors), bodies
//! are validated, pruned and defaulted by the schema, name conflicts are
//! reported, deleting the CRD deletes its objects, and cert-manager's real
//! CRDs install and validate a Certificate.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use common::{KUBECTL_132, Kubectl, Server, expect_table, kubectl_134, poll, table};

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/crd")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn json(k: &Kubectl, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&k.ok(&all)).expect("kubectl printed JSON")
}

fn established(k: &Kubectl, crd: &str) {
    k.ok(&[
        "wait",
        "--for=condition=Established",
        &format!("crd/{crd}"),
        "--timeout=10s",
    ]);
}

/// Everything a user does with one CRD, through one kubectl version.
fn exercise(kubectl: &Path) {
    let server = Server::start_apiserver(&[]);
    let k = server.kubectl(kubectl);

    // The CRD gets its conditions, accepted names and stored versions.
    k.ok(&["apply", "-f", &fixture("widgets.yaml")]);
    established(&k, "widgets.example.com");
    let crd = json(&k, &["get", "crd", "widgets.example.com"]);
    let cond = |ty: &str| {
        crd["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(cond("NamesAccepted")["reason"], "NoConflicts");
    assert_eq!(cond("Established")["reason"], "InitialNamesAccepted");
    assert_eq!(crd["status"]["acceptedNames"]["shortNames"][0], "wd");
    assert_eq!(crd["status"]["storedVersions"], serde_json::json!(["v1"]));
    assert_eq!(crd["spec"]["names"]["listKind"], "WidgetList");

    // Discovery: kubectl api-resources lists it with its short name.
    let resources = k.ok(&["api-resources", "--api-group=example.com"]);
    assert!(
        resources
            .lines()
            .any(|l| l.starts_with("widgets") && l.contains("wd") && l.contains("Widget")),
        "{resources}"
    );

    // Strict field validation (kubectl's default) refuses unknown fields.
    let bad = k.run_stdin(
        &["create", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w0}\nspec: {size: 2, bogus: 1}\n",
    );
    assert_ne!(bad.status, 0);
    assert!(
        bad.stderr
            .contains(r#"strict decoding error: unknown field "spec.bogus""#),
        "{}",
        bad.stderr
    );

    // Without it, unknown fields are pruned and defaults applied.
    k.ok_stdin(
        &["create", "--validate=false", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, labels: {app: one}}\nspec: {size: 2, bogus: 1, selector: app=one, extra: {kept: true}}\nstatus: {phase: ignored}\n",
    );
    let w1 = json(&k, &["get", "widget", "w1"]);
    assert_eq!(w1["spec"]["color"], "red");
    assert_eq!(w1["spec"]["replicas"], 1);
    assert_eq!(w1["spec"]["extra"]["kept"], true);
    assert!(w1["spec"].get("bogus").is_none(), "{w1}");
    assert!(w1.pointer("/status/phase").is_none(), "{w1}");
    assert_eq!(w1["metadata"]["generation"], 1);

    // Schema validation, with upstream's text.
    let invalid = k.run_stdin(
        &["create", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w2}\nspec: {size: 20, color: green, name: ABC}\n",
    );
    assert_ne!(invalid.status, 0);
    for want in [
        r#"The Widget "w2" is invalid"#,
        "spec.size: Invalid value: 20: spec.size in body should be less than or equal to 10",
        r#"spec.color: Unsupported value: "green": supported values: "red", "blue""#,
        r#"spec.name: Invalid value: "ABC": spec.name in body should match '^[a-z]+$'"#,
    ] {
        assert!(invalid.stderr.contains(want), "{want}\n{}", invalid.stderr);
    }

    // Printer columns, short names and categories.
    assert_eq!(
        table(&k.ok(&["get", "wd"])),
        expect_table(&["NAME | SIZE | COLOR | AGE", "w1 | 2 | red | <age>"])
    );
    assert!(k.ok(&["get", "gadgets"]).contains("w1"));

    // Server-side apply and dry run.
    k.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w3, labels: {app: three}}\nspec: {size: 3}\n",
    );
    k.ok_stdin(
        &["create", "--dry-run=server", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: dry}\nspec: {size: 3}\n",
    );
    assert_ne!(k.run(&["get", "widget", "dry"]).status, 0);

    // Label and field selectors.
    assert_eq!(
        k.ok(&["get", "widgets", "-l", "app=three", "-o", "name"])
            .trim(),
        "widget.example.com/w3"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "widgets",
            "--field-selector",
            "metadata.name=w1",
            "-o",
            "name"
        ])
        .trim(),
        "widget.example.com/w1"
    );

    // Patches: merge and JSON; strategic merge is refused as upstream does.
    k.ok(&[
        "patch",
        "widget",
        "w1",
        "--type=merge",
        "-p",
        r#"{"spec":{"size":5}}"#,
    ]);
    k.ok(&[
        "patch",
        "widget",
        "w1",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/color","value":"blue"}]"#,
    ]);
    let smp = k.run(&["patch", "widget", "w1", "-p", r#"{"spec":{"size":6}}"#]);
    assert_ne!(smp.status, 0);
    assert!(
        smp.stderr.contains("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"),
        "{}",
        smp.stderr
    );
    let w1 = json(&k, &["get", "widget", "w1"]);
    assert_eq!(
        (w1["spec"]["size"].clone(), w1["spec"]["color"].clone()),
        (5.into(), "blue".into())
    );
    assert_eq!(w1["metadata"]["generation"], 3);

    // The status subresource writes status only; the main resource ignores status.
    k.ok(&[
        "patch",
        "widget",
        "w1",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"spec":{"size":9},"status":{"replicas":2,"phase":"Ready"}}"#,
    ]);
    k.ok(&[
        "patch",
        "widget",
        "w1",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Ignored"}}"#,
    ]);
    let w1 = json(&k, &["get", "widget", "w1"]);
    assert_eq!(w1["spec"]["size"], 5);
    assert_eq!(w1["status"]["replicas"], 2);
    assert_eq!(w1["status"]["phase"], "Ready");

    // The scale subresource.
    k.ok(&["scale", "widget", "w1", "--replicas=4"]);
    let w1 = json(&k, &["get", "widget", "w1"]);
    assert_eq!(w1["spec"]["replicas"], 4);
    let scale = server.send_json(
        "GET",
        "/apis/example.com/v1/namespaces/default/widgets/w1/scale",
        &Value::Null,
    );
    let scale = scale.json();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 4);
    assert_eq!(scale["status"]["replicas"], 2);
    assert_eq!(scale["status"]["selector"], "app=one");

    // Custom resources are JSON only: a protobuf-only Accept is refused.
    let pb = common::raw_request_with(
        &server.addr(),
        "GET",
        "/apis/example.com/v1/namespaces/default/widgets/w1",
        &[("Accept", "application/vnd.kubernetes.protobuf")],
        b"",
    );
    assert_eq!(pb.status, 406, "{}", pb.body);

    // A cluster-scoped CRD.
    k.ok(&["apply", "-f", &fixture("gizmos.yaml")]);
    established(&k, "gizmos.example.com");
    k.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Gizmo\nmetadata: {name: g1}\nanything: {goes: 1}\n",
    );
    let g1 = json(&k, &["get", "gizmo", "g1"]);
    assert_eq!(g1["anything"]["goes"], 1);
    assert!(g1["metadata"].get("namespace").is_none());

    // A name already accepted by another CRD of the group is refused.
    k.ok(&["apply", "-f", &fixture("conflicting.yaml")]);
    let sprockets = poll(
        "NamesAccepted on sprockets",
        Duration::from_secs(10),
        || {
            let c = json(&k, &["get", "crd", "sprockets.example.com"]);
            let found = c["status"]["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == "NamesAccepted")?
                .clone();
            Some(found)
        },
    );
    assert_eq!(sprockets["status"], "False");
    assert_eq!(sprockets["reason"], "SingularConflict");
    assert_eq!(sprockets["message"], r#""widget" is already in use"#);
    k.ok(&["delete", "crd", "sprockets.example.com"]);

    // Deleting the CRD deletes its objects first, then stops serving it.
    k.ok(&["delete", "widget", "w3"]);
    k.ok(&["delete", "crd", "widgets.example.com", "--timeout=20s"]);
    let gone = k.run(&["get", "widgets.example.com"]);
    assert_ne!(gone.status, 0, "{}", gone.stdout);
    k.ok(&["apply", "-f", &fixture("widgets.yaml")]);
    established(&k, "widgets.example.com");
    let listed = poll("widgets served again", Duration::from_secs(10), || {
        let r = k.run(&["get", "widgets", "-A", "-o", "name"]);
        (r.status == 0).then_some(r.stdout)
    });
    assert!(
        listed.trim().is_empty(),
        "the old objects were deleted with their CRD: {listed}"
    );
}

#[test]
fn kubectl_132_serves_custom_resources() {
    exercise(Path::new(KUBECTL_132));
}

#[test]
fn kubectl_134_serves_custom_resources() {
    exercise(&kubectl_134());
}

/// cert-manager's CRDs (kept as fixtures) install, show in discovery with
/// their printer columns, and validate a Certificate.
#[test]
fn cert_manager_crds_install_and_validate() {
    let server = Server::start_apiserver(&[]);
    let k = server.kubectl(&kubectl_134());
    k.ok(&["create", "-f", &fixture("cert-manager")]);
    for crd in [
        "certificates.cert-manager.io",
        "certificaterequests.cert-manager.io",
        "issuers.cert-manager.io",
        "clusterissuers.cert-manager.io",
        "orders.acme.cert-manager.io",
        "challenges.acme.cert-manager.io",
    ] {
        established(&k, crd);
    }
    let resources = k.ok(&["api-resources", "--api-group=cert-manager.io"]);
    assert!(resources.contains("certificates"), "{resources}");
    k.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata: {name: selfsigned, namespace: default}\nspec: {selfSigned: {}}\n",
    );
    k.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: web, namespace: default}\nspec:\n  secretName: web-tls\n  dnsNames: [example.com]\n  issuerRef: {name: selfsigned, kind: Issuer}\n",
    );
    assert_eq!(
        table(&k.ok(&["get", "certs"])),
        expect_table(&["NAME | READY | SECRET | AGE", "web | | web-tls | <age>"])
            .into_iter()
            .map(|r| r.into_iter().filter(|c| !c.is_empty()).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );
    let bad = k.run_stdin(
        &["apply", "-f", "-"],
        "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: bad, namespace: default}\nspec:\n  dnsNames: [example.com]\n  issuerRef: {name: selfsigned}\n  duration: 1x\n",
    );
    assert_ne!(bad.status, 0);
    assert!(
        bad.stderr.contains("spec.secretName: Required value"),
        "{}",
        bad.stderr
    );
}
