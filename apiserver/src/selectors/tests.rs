//! Parsing, matching and per-kind field-label cases, with upstream's messages.

use super::*;
use serde_json::json;

const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const QNAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

fn labels(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn lerr(s: &str) -> String {
    match LabelSelector::parse(s) {
        Err(e) => e.to_string(),
        Ok(sel) => panic!("expected error for {s:?}, got {sel:?}"),
    }
}

fn ferr(s: &str) -> String {
    match FieldSelector::parse(s) {
        Err(e) => e.to_string(),
        Ok(sel) => panic!("expected error for {s:?}, got {sel:?}"),
    }
}

#[test]
fn label_parse_valid_forms() {
    let cases = [
        ("", ""),
        ("x=a", "x=a"),
        ("x==a", "x==a"),
        ("x!=a", "x!=a"),
        (" x = a , y ", "x=a,y"),
        ("x in (b,a)", "x in (a,b)"),
        ("x notin (a)", "x notin (a)"),
        ("!x", "!x"),
        ("x", "x"),
        ("x in ()", "x in ()"),
        ("x in (,a)", "x in (,a)"),
        ("x=", "x="),
        ("x>1,y<2", "x>1,y<2"),
        ("example.com/a-b_c.d=Foo", "example.com/a-b_c.d=Foo"),
        ("in in (in)", "in in (in)"),
        ("z=1,a=2", "a=2,z=1"),
        ("\tx\n=\ra", "x=a"),
    ];
    for (input, rendered) in cases {
        match LabelSelector::parse(input) {
            Ok(sel) => assert_eq!(sel.to_string(), rendered, "{input:?}"),
            Err(e) => panic!("{input:?}: {e}"),
        }
    }
    assert!(
        LabelSelector::parse("  ")
            .map(|s| s.is_empty())
            .unwrap_or(false)
    );
}

#[test]
fn label_parse_errors() {
    assert_eq!(lerr("x=a,"), "found '', expected: identifier after ','");
    assert_eq!(
        lerr(",x"),
        "found ',', expected: !, identifier, or 'end of string'"
    );
    assert_eq!(lerr("x=a y"), "found 'y', expected: ',' or 'end of string'");
    assert_eq!(
        lerr("x y"),
        "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, gt, lt"
    );
    assert_eq!(
        lerr("x in a"),
        "unable to parse requirement: found 'a' expected: '('"
    );
    assert_eq!(
        lerr("x in (a"),
        "unable to parse requirement: found '', expected: ',' or ')'"
    );
    assert_eq!(
        lerr("x in (=)"),
        "unable to parse requirement: found '=', expected: ',', ')' or identifier"
    );
    assert_eq!(
        lerr("x in (a,="),
        "unable to parse requirement: found '=', expected: ',', or identifier"
    );
    assert_eq!(
        lerr("x=(a)"),
        "unable to parse requirement: found '(', expected: identifier"
    );
    assert_eq!(
        lerr("!"),
        "unable to parse requirement: found '', expected: identifier"
    );
    assert_eq!(lerr("!x=a"), "found '=', expected: ',' or 'end of string'");
    assert_eq!(
        lerr("x===a"),
        "unable to parse requirement: found '=', expected: identifier"
    );
    assert_eq!(lerr("x=a b"), "found 'b', expected: ',' or 'end of string'");
    assert_eq!(
        lerr("a/b/c=d"),
        "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
    );
    assert_eq!(
        lerr("-x"),
        format!("unable to parse requirement: <nil>: Invalid value: \"-x\": {QNAME_MSG}")
    );
    assert_eq!(
        lerr("x=a@b"),
        format!(
            "unable to parse requirement: values[0][x]: Invalid value: \"a@b\": {LABEL_VALUE_MSG}"
        )
    );
    assert_eq!(
        lerr("x in (-a,-b)"),
        format!(
            "unable to parse requirement: [values[0][x]: Invalid value: \"-a\": {LABEL_VALUE_MSG}, values[1][x]: Invalid value: \"-b\": {LABEL_VALUE_MSG}]"
        )
    );
    assert_eq!(
        lerr("x>a"),
        format!(
            "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer"
        )
    );
    assert_eq!(
        lerr(&format!("x={}", "a".repeat(64))),
        format!(
            "unable to parse requirement: values[0][x]: Invalid value: \"{}\": must be no more than 63 characters",
            "a".repeat(64)
        )
    );
    // Negative numbers are not valid label values.
    assert_eq!(
        lerr("y<-2"),
        format!(
            "unable to parse requirement: values[0][y]: Invalid value: \"-2\": {LABEL_VALUE_MSG}"
        )
    );
    // A NUL byte at the start of a token ends the input, as upstream's lexer does.
    assert_eq!(lerr("a=b,\0"), "found '', expected: identifier after ','");
    assert_eq!(
        LabelSelector::parse("\0a=b").map(|s| s.is_empty()),
        Ok(true)
    );
    let e = LabelSelector::parse("x=(").err();
    assert_eq!(e.as_ref().map(SelectorError::code), Some(400));
}

#[test]
fn label_matching() {
    let ls = labels(json!({"app": "web", "tier": "front", "n": "5"}));
    let m = |s: &str| {
        LabelSelector::parse(s)
            .map(|sel| sel.matches(Some(&ls)))
            .unwrap_or(false)
    };
    assert!(m(""));
    assert!(m("app=web"));
    assert!(m("app==web,tier"));
    assert!(!m("app!=web"));
    assert!(m("missing!=x"));
    assert!(m("missing notin (a)"));
    assert!(!m("missing in (a)"));
    assert!(m("app in (db,web)"));
    assert!(!m("app notin (db,web)"));
    assert!(m("!missing"));
    assert!(!m("!app"));
    assert!(m("n>4"));
    assert!(!m("n>5"));
    assert!(m("n<6"));
    assert!(!m("app>1"));
    assert!(!m("missing"));
    let sel = LabelSelector::parse("missing!=x,!other").ok();
    assert_eq!(sel.map(|s| s.matches(None)), Some(true));
    let sel = LabelSelector::parse("a=").ok();
    assert_eq!(sel.as_ref().map(|s| s.matches(None)), Some(false));
    assert_eq!(
        sel.map(|s| s.matches(Some(&labels(json!({"a": ""}))))),
        Some(true)
    );
}

#[test]
fn label_selector_json() {
    let ls = labels(json!({"app": "web", "env": "prod"}));
    let conv = |v: Value| from_label_selector_json(&v);
    let sel = conv(json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "staging"]},
            {"key": "gone", "operator": "DoesNotExist"}
        ]
    }));
    assert_eq!(sel.as_ref().map(|s| s.matches(Some(&ls))), Ok(true));
    assert_eq!(
        sel.map(|s| s.to_string()),
        Ok("app=web,env in (prod,staging),!gone".to_string())
    );
    assert_eq!(conv(Value::Null).map(|s| s.matches(Some(&ls))), Ok(false));
    assert_eq!(conv(json!({})).map(|s| s.is_empty()), Ok(true));
    assert_eq!(
        conv(json!({"matchExpressions": [{"key": "a", "operator": "Foo"}]}))
            .err()
            .map(|e| e.to_string()),
        Some("\"Foo\" is not a valid label selector operator".to_string())
    );
    assert_eq!(
        conv(json!({"matchExpressions": [{"key": "a", "operator": "In"}]}))
            .err()
            .map(|e| e.to_string()),
        Some(
            "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"
                .to_string()
        )
    );
    assert_eq!(
        conv(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x", "y"]}]}))
            .err()
            .map(|e| e.to_string()),
        Some("values: Invalid value: [\"x\",\"y\"]: values set must be empty for exists and does not exist".to_string())
    );
    assert_eq!(
        go_json_strings(&["<a&\"".to_string()]),
        "[\"\\u003ca\\u0026\\\"\"]"
    );
    assert_eq!(
        conv(json!({"matchLabels": {"-bad": "ok"}}))
            .err()
            .map(|e| e.to_string()),
        Some(format!("key: Invalid value: \"-bad\": {QNAME_MSG}"))
    );
}

#[test]
fn field_parse() {
    let fs = FieldSelector::parse("status.phase!=Running,spec.nodeName=n1").ok();
    let reqs: Vec<String> = fs
        .as_ref()
        .map(|f| f.requirements().iter().map(|r| r.to_string()).collect())
        .unwrap_or_default();
    // Terms are sorted by raw text.
    assert_eq!(reqs, vec!["spec.nodeName=n1", "status.phase!=Running"]);
    let fs = FieldSelector::parse(r"a==x\,y\=z\\w").ok();
    let r = fs.as_ref().and_then(|f| f.requirements().first().cloned());
    assert_eq!(
        r,
        Some(FieldRequirement {
            field: "a".into(),
            op: FieldOp::Equals,
            value: r"x,y=z\w".into()
        })
    );
    assert_eq!(fs.map(|f| f.to_string()), Some(r"a=x\,y\=z\\w".to_string()));
    assert_eq!(FieldSelector::parse("").map(|f| f.is_empty()), Ok(true));
    assert_eq!(FieldSelector::parse(",,").map(|f| f.is_empty()), Ok(true));
    let sp = FieldSelector::parse("metadata.name = x").ok();
    assert_eq!(
        sp.and_then(|f| f
            .requirements()
            .first()
            .map(|r| (r.field.clone(), r.value.clone()))),
        Some(("metadata.name ".to_string(), " x".to_string()))
    );
    assert_eq!(
        FieldSelector::parse("a=")
            .ok()
            .and_then(|f| f.requirements().first().map(|r| r.value.clone())),
        Some(String::new())
    );
}

#[test]
fn field_parse_errors() {
    assert_eq!(
        ferr("foo"),
        "invalid selector: 'foo'; can't understand 'foo'"
    );
    assert_eq!(
        ferr("b=1,foo"),
        "invalid selector: 'b=1,foo'; can't understand 'foo'"
    );
    assert_eq!(
        ferr("a=b=c"),
        "invalid field selector: unescaped character in value: 61"
    );
    assert_eq!(
        ferr(r"a=b\x"),
        r"invalid field selector: invalid escape sequence: \x"
    );
    assert_eq!(
        ferr(r"a=b\"),
        r"invalid field selector: invalid escape sequence: \"
    );
}

#[test]
fn field_matching() {
    let fs = FieldSelector::parse("a=1,b!=2,c=").ok();
    let lookup = |f: &str| match f {
        "a" => Some("1".to_string()),
        "b" => Some("3".to_string()),
        _ => None,
    };
    assert_eq!(fs.as_ref().map(|f| f.matches(lookup)), Some(true));
    assert_eq!(fs.as_ref().map(|f| f.matches(|_| None)), Some(false));
    assert_eq!(
        FieldSelector::parse("metadata.name=x,metadata.name!=y")
            .ok()
            .and_then(|f| f.requires_exact_match("metadata.name").map(str::to_string)),
        Some("x".to_string())
    );
}

fn fv(group: &str, resource: &str, obj: &Value, field: &str) -> Result<Option<String>, String> {
    field_value(group, resource, obj, field).map_err(|e| e.to_string())
}

#[test]
fn pod_fields() {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"nodeName": "n1", "serviceAccount": "legacy", "hostNetwork": true, "restartPolicy": "Always"},
        "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}]}
    });
    assert_eq!(fv("", "pods", &pod, "spec.nodeName"), Ok(Some("n1".into())));
    assert_eq!(fv("", "pods", &pod, "spec.host"), Ok(Some("n1".into())));
    assert_eq!(
        fv("", "pods", &pod, "spec.hostNetwork"),
        Ok(Some("true".into()))
    );
    assert_eq!(
        fv("", "pods", &pod, "spec.serviceAccountName"),
        Ok(Some("legacy".into()))
    );
    assert_eq!(
        fv("", "pods", &pod, "spec.schedulerName"),
        Ok(Some(String::new()))
    );
    assert_eq!(
        fv("", "pods", &pod, "status.podIP"),
        Ok(Some("10.0.0.1".into()))
    );
    assert_eq!(fv("", "pods", &pod, "status.podIPs"), Ok(None));
    assert_eq!(
        fv("", "pods", &pod, "metadata.namespace"),
        Ok(Some("ns".into()))
    );
    assert_eq!(
        fv("", "pods", &pod, "spec.foo"),
        Err("field label not supported: spec.foo".into())
    );
    let empty = json!({});
    assert_eq!(
        fv("", "pods", &empty, "spec.hostNetwork"),
        Ok(Some("false".into()))
    );
    let sel = FieldSelector::parse("spec.host=n1,status.phase!=Failed").ok();
    assert_eq!(
        sel.map(|s| s.matches_object("", "pods", &pod)),
        Some(Ok(true))
    );
}

#[test]
fn other_core_fields() {
    let node = json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}});
    assert_eq!(
        fv("", "nodes", &node, "spec.unschedulable"),
        Ok(Some("true".into()))
    );
    assert_eq!(
        fv("", "nodes", &node, "metadata.namespace"),
        Err("field label not supported: metadata.namespace".into())
    );
    let ns = json!({"metadata": {"name": "a"}, "status": {"phase": "Active"}});
    assert_eq!(
        fv("", "namespaces", &ns, "status.phase"),
        Ok(Some("Active".into()))
    );
    let rc = json!({"status": {"replicas": 3}});
    assert_eq!(
        fv("", "replicationcontrollers", &rc, "status.replicas"),
        Ok(Some("3".into()))
    );
    assert_eq!(
        fv("", "replicationcontrollers", &json!({}), "status.replicas"),
        Ok(Some("0".into()))
    );
    let secret = json!({"type": "Opaque"});
    assert_eq!(
        fv("", "secrets", &secret, "type"),
        Ok(Some("Opaque".into()))
    );
    let svc = json!({"spec": {"clusterIP": "None", "type": "ClusterIP"}});
    assert_eq!(
        fv("", "services", &svc, "spec.clusterIP"),
        Ok(Some("None".into()))
    );
    assert_eq!(
        fv("", "services", &svc, "spec.type"),
        Ok(Some("ClusterIP".into()))
    );
    assert_eq!(
        fv("", "configmaps", &svc, "data.foo"),
        Err("\"data.foo\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"".into())
    );
    assert_eq!(
        fv(
            "",
            "configmaps",
            &json!({"metadata": {"name": "c"}}),
            "metadata.name"
        ),
        Ok(Some("c".into()))
    );
}

#[test]
fn event_fields() {
    let core = json!({
        "apiVersion": "v1",
        "involvedObject": {"kind": "Pod", "name": "p"},
        "reason": "Started", "type": "Normal", "reportingComponent": "kubelet",
        "source": {"component": ""}
    });
    assert_eq!(
        fv("", "events", &core, "involvedObject.kind"),
        Ok(Some("Pod".into()))
    );
    assert_eq!(
        fv("", "events", &core, "source"),
        Ok(Some("kubelet".into()))
    );
    assert_eq!(
        fv("", "events", &core, "reportingComponent"),
        Ok(Some("kubelet".into()))
    );
    assert_eq!(
        fv("", "events", &core, "regarding.kind"),
        Err("field label not supported: regarding.kind".into())
    );
    let ev1 = json!({
        "apiVersion": "events.k8s.io/v1",
        "regarding": {"kind": "Node", "name": "n"},
        "reportingController": "ctl", "deprecatedSource": {"component": "src"}
    });
    assert_eq!(
        fv("events.k8s.io", "events", &ev1, "regarding.kind"),
        Ok(Some("Node".into()))
    );
    assert_eq!(
        fv("events.k8s.io", "events", &ev1, "reportingController"),
        Ok(Some("ctl".into()))
    );
    assert_eq!(
        fv("events.k8s.io", "events", &ev1, "source"),
        Err("field label not supported: source".into())
    );
    assert_eq!(
        fv("events.k8s.io", "events", &ev1, "involvedObject.kind"),
        Err("field label not supported: involvedObject.kind".into())
    );
}

#[test]
fn group_fields() {
    let job = json!({"status": {"succeeded": 2}});
    assert_eq!(
        fv("batch", "jobs", &job, "status.successful"),
        Ok(Some("2".into()))
    );
    assert_eq!(
        fv("batch", "jobs", &job, "status.succeeded"),
        Err("field label \"status.succeeded\" not supported for Job".into())
    );
    assert_eq!(
        fv("apps", "replicasets", &job, "status.replicas"),
        Err("\"status.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"".into())
    );
    let csr = json!({"spec": {"signerName": "kubernetes.io/kubelet-serving"}});
    assert_eq!(
        fv(
            "certificates.k8s.io",
            "certificatesigningrequests",
            &csr,
            "spec.signerName"
        ),
        Ok(Some("kubernetes.io/kubelet-serving".into()))
    );
    assert_eq!(
        fv(
            "certificates.k8s.io",
            "certificatesigningrequests",
            &csr,
            "metadata.namespace"
        ),
        Err("field label not supported: metadata.namespace".into())
    );
    let slice =
        json!({"apiVersion": "resource.k8s.io/v1beta2", "spec": {"driver": "d", "nodeName": null}});
    assert_eq!(
        fv("resource.k8s.io", "resourceslices", &slice, "spec.nodeName"),
        Ok(Some(String::new()))
    );
    assert_eq!(
        fv("resource.k8s.io", "resourceslices", &slice, "spec.pool.name"),
        Err("field label not supported for resource.k8s.io/v1beta2, Kind=ResourceSlice: spec.pool.name".into())
    );
    let fs = FieldSelector::parse("spec.foo=1,status.bar=2").ok();
    assert_eq!(
        fs.map(|f| f.validate_for("", "v1", "pods").map_err(|e| e.to_string())),
        Some(Err("field label not supported: spec.foo".to_string()))
    );
}

#[test]
fn custom_resources() {
    assert!(convert_custom_resource_field_label(false, &["spec.color"], "spec.color").is_ok());
    assert!(convert_custom_resource_field_label(false, &[], "metadata.namespace").is_ok());
    assert_eq!(
        convert_custom_resource_field_label(true, &[], "metadata.namespace")
            .map_err(|e| e.to_string()),
        Err("field label not supported: metadata.namespace".to_string())
    );
    let obj = json!({"spec": {"color": "red", "size": 3, "on": false}});
    assert_eq!(custom_resource_field_value(&obj, "spec.color"), "red");
    assert_eq!(custom_resource_field_value(&obj, "spec.size"), "3");
    assert_eq!(custom_resource_field_value(&obj, "spec.on"), "false");
    assert_eq!(custom_resource_field_value(&obj, "spec.none"), "");
}
