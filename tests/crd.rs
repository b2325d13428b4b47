//! CustomResourceDefinitions end to end, with stock kubectl 1.32 and 1.34
//! against a real `ironkube apiserver`: a CRD becomes Established and its
//! resources are served (discovery, CRUD, printer columns, patches, status
//! and scale subresources, server-side apply, dry run, selectors), bodies
//! are validated, pruned and defaulted by the schema, name conflicts are
//! reported, deleting the CRD deletes its objects, the schema is published
//! in OpenAPI v2 and v3 (`kubectl explain`), `selectableFields` filter
//! lists and watches, and cert-manager's real CRDs install and validate a
//! Certificate.

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

const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

fn get_json(server: &Server, path: &str) -> Value {
    server.send_json("GET", path, &Value::Null).json()
}

/// The group-versions the `/openapi/v3` index lists, with their URLs.
fn v3_index(server: &Server) -> Value {
    get_json(server, "/openapi/v3")["paths"].clone()
}

/// A CRD's schema is published in `/openapi/v2` (JSON and protobuf) and
/// `/openapi/v3` under upstream's definition names; `kubectl explain`
/// reads it with both kubectls; a version that stops being served, and a
/// deleted CRD, leave both documents.
#[test]
fn custom_resources_publish_openapi_and_explain() {
    let server = Server::start_apiserver(&[]);
    let k = server.kubectl(&kubectl_134());
    k.ok(&["apply", "-f", &fixture("selectable.yaml")]);
    established(&k, "shirts.example.com");
    let v2 = poll("Shirt in /openapi/v2", Duration::from_secs(10), || {
        let doc = get_json(&server, "/openapi/v2");
        doc["definitions"]["com.example.v1.Shirt"]
            .is_object()
            .then_some(doc)
    });
    let shirt = &v2["definitions"]["com.example.v1.Shirt"];
    assert_eq!(
        shirt["description"],
        "A shirt, for selecting by its fields."
    );
    assert_eq!(
        shirt["properties"]["spec"]["properties"]["color"],
        serde_json::json!({"description": "The color of the shirt.", "type": "string"})
    );
    assert_eq!(
        shirt["properties"]["metadata"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert_eq!(
        shirt["x-kubernetes-group-version-kind"],
        serde_json::json!([{"group": "example.com", "kind": "Shirt", "version": "v1"}])
    );
    assert_eq!(
        shirt["x-kubernetes-selectable-fields"],
        serde_json::json!([{"fieldPath": "spec.color"}, {"fieldPath": "spec.size"}])
    );
    assert!(v2["definitions"]["com.example.v1.ShirtList"].is_object());
    assert!(v2["definitions"]["io.k8s.api.core.v1.Pod"].is_object());
    assert!(v2["paths"]["/apis/example.com/v1/namespaces/{namespace}/shirts/{name}"].is_object());
    let pb = common::raw_request_with(
        &server.addr(),
        "GET",
        "/openapi/v2",
        &[("Accept", V2_PROTOBUF)],
        b"",
    );
    assert_eq!(pb.status, 200);
    assert!(pb.body.contains("com.example.v1.Shirt"));

    let index = v3_index(&server);
    let url = index["apis/example.com/v1"]["serverRelativeURL"]
        .as_str()
        .expect("example.com/v1 listed")
        .to_string();
    let doc = get_json(&server, &url);
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["com.example.v1.Shirt"]["x-kubernetes-group-version-kind"][0]["kind"],
        "Shirt"
    );
    assert!(schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].is_object());

    for kubectl in [PathBuf::from(KUBECTL_132), kubectl_134()] {
        let k = server.kubectl(&kubectl);
        let out = k.ok(&["explain", "shirts"]);
        for want in [
            "KIND:       Shirt",
            "A shirt, for selecting by its fields.",
            "  spec\t<Object>",
            "  metadata\t<ObjectMeta>",
            "  apiVersion\t<string>",
        ] {
            assert!(out.contains(want), "{kubectl:?}: {want:?} in\n{out}");
        }
        let out = k.ok(&["explain", "shirt.spec"]);
        for want in [
            "FIELD: spec <Object>",
            "What the shirt looks like.",
            "  color\t<string>",
            "The color of the shirt.",
            "  tags\t<[]string>",
        ] {
            assert!(out.contains(want), "{kubectl:?}: {want:?} in\n{out}");
        }
        let out = k.ok(&["explain", "shirts.metadata"]);
        assert!(out.contains("creationTimestamp"), "{kubectl:?}:\n{out}");
        let missing = k.run(&["explain", "shirts.spec.bogus"]);
        assert_ne!(missing.status, 0);
        assert!(
            missing.stderr.contains(r#"field "bogus" does not exist"#),
            "{kubectl:?}: {}",
            missing.stderr
        );
    }

    // A second served version is published; un-serving it removes it.
    let add = r#"[{"op": "add", "path": "/spec/versions/-", "value": {"name": "v2", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "object", "description": "Shirt v2."}}}}]"#;
    k.ok(&[
        "patch",
        "crd",
        "shirts.example.com",
        "--type=json",
        "-p",
        add,
    ]);
    poll("Shirt v2 published", Duration::from_secs(10), || {
        let doc = get_json(&server, "/openapi/v2");
        (doc["definitions"]["com.example.v2.Shirt"]["description"] == "Shirt v2."
            && v3_index(&server)["apis/example.com/v2"].is_object())
        .then_some(())
    });
    let unserve = r#"[{"op": "replace", "path": "/spec/versions/1/served", "value": false}]"#;
    k.ok(&[
        "patch",
        "crd",
        "shirts.example.com",
        "--type=json",
        "-p",
        unserve,
    ]);
    poll("Shirt v2 unpublished", Duration::from_secs(10), || {
        let doc = get_json(&server, "/openapi/v2");
        (doc["definitions"]["com.example.v2.Shirt"].is_null()
            && doc["definitions"]["com.example.v1.Shirt"].is_object()
            && v3_index(&server)["apis/example.com/v2"].is_null())
        .then_some(())
    });

    // Deleting the CRD removes its definitions and its group-version.
    k.ok(&["delete", "crd", "shirts.example.com", "--timeout=20s"]);
    poll("Shirt unpublished", Duration::from_secs(10), || {
        let doc = get_json(&server, "/openapi/v2");
        (doc["definitions"]["com.example.v1.Shirt"].is_null()
            && v3_index(&server)["apis/example.com/v1"].is_null())
        .then_some(())
    });
}

/// `selectableFields`: field selectors on the declared paths filter lists
/// and watches; undeclared fields get upstream's error.
#[test]
fn selectable_fields_filter_lists_and_watches() {
    let server = Server::start_apiserver(&[]);
    let k = server.kubectl(&kubectl_134());
    k.ok(&["apply", "-f", &fixture("selectable.yaml")]);
    established(&k, "shirts.example.com");
    for (name, color, size) in [
        ("red-1", "red", 1),
        ("red-2", "red", 2),
        ("blue-1", "blue", 1),
    ] {
        k.ok_stdin(
            &["create", "-f", "-"],
            &format!(
                "apiVersion: example.com/v1\nkind: Shirt\nmetadata: {{name: {name}}}\nspec: {{color: {color}, size: {size}}}\n"
            ),
        );
    }
    let names = |selector: &str| -> Vec<String> {
        let out = k.ok(&["get", "shirts", "--field-selector", selector, "-o", "name"]);
        let mut names: Vec<String> = out
            .lines()
            .map(|l| l.trim_start_matches("shirt.example.com/").to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names("spec.color=red"), ["red-1", "red-2"]);
    assert_eq!(names("spec.color=red,spec.size=2"), ["red-2"]);
    assert_eq!(names("spec.size!=1"), ["red-2"]);
    assert_eq!(names("metadata.name=blue-1"), ["blue-1"]);
    assert_eq!(names("metadata.namespace=default").len(), 3);

    let bad = k.run(&["get", "shirts", "--field-selector", "spec.tags=x"]);
    assert_ne!(bad.status, 0);
    assert!(
        bad.stderr.contains("field label not supported: spec.tags"),
        "{}",
        bad.stderr
    );

    let watch = common::raw_request_with(
        &server.addr(),
        "GET",
        "/apis/example.com/v1/namespaces/default/shirts?watch=true&timeoutSeconds=1&fieldSelector=spec.color%3Dblue",
        &[("Accept", "application/json")],
        b"",
    );
    assert_eq!(watch.status, 200, "{}", watch.body);
    assert!(watch.body.contains(r#""name":"blue-1""#), "{}", watch.body);
    assert!(!watch.body.contains("red-"), "{}", watch.body);
    let refused = common::raw_request_with(
        &server.addr(),
        "GET",
        "/apis/example.com/v1/namespaces/default/shirts?watch=true&timeoutSeconds=1&fieldSelector=spec.tags%3Dx",
        &[("Accept", "application/json")],
        b"",
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(
        refused.json()["message"],
        "field label not supported: spec.tags"
    );
}

/// Server-side apply with `fieldValidation=Strict` refuses fields the schema
/// does not declare with upstream's typed-conversion error.
#[test]
fn strict_server_side_apply_names_undeclared_fields() {
    let server = Server::start_apiserver(&[]);
    let k = server.kubectl(&kubectl_134());
    k.ok(&["apply", "-f", &fixture("selectable.yaml")]);
    established(&k, "shirts.example.com");
    let apply = |body: &str| {
        common::raw_request(
            &server.addr(),
            "PATCH",
            "/apis/example.com/v1/namespaces/default/shirts/s1?fieldManager=test&fieldValidation=Strict",
            "application/apply-patch+yaml",
            body.as_bytes(),
        )
    };
    let refused = apply(
        "apiVersion: example.com/v1\nkind: Shirt\nmetadata: {name: s1, unknownMeta: x}\nspec: {color: red, bogus: 1}\n",
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    let message = refused.json()["message"].as_str().unwrap_or("").to_string();
    for want in [
        "failed to create typed patch object (/s1; example.com/v1, Kind=Shirt): errors:",
        ".metadata.unknownMeta: field not declared in schema",
        ".spec.bogus: field not declared in schema",
    ] {
        assert!(message.contains(want), "{want:?} in {message}");
    }
    let applied = apply(
        "apiVersion: example.com/v1\nkind: Shirt\nmetadata: {name: s1}\nspec: {color: red}\n",
    );
    assert_eq!(applied.status, 201, "{}", applied.body);
}
