//! Patches that must fail get upstream's errors, and leave the object untouched.

mod common;

use common::{Server, raw_request};

const CM: &str = "/api/v1/namespaces/default/configmaps";

fn patch(addr: &str, content_type: &str, query: &str, body: &str) -> common::RawResponse {
    raw_request(
        addr,
        "PATCH",
        &format!("{CM}/p{query}"),
        content_type,
        body.as_bytes(),
    )
}

#[test]
fn failing_patches_are_rejected_and_store_nothing() {
    let s = Server::start();
    let a = format!("127.0.0.1:{}", s.port);
    let created = raw_request(
        &a,
        "POST",
        CM,
        "application/json",
        br#"{"metadata":{"name":"p"},"data":{"k":"v"}}"#,
    );
    assert_eq!(created.status, 201);
    let rv = created.json()["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();

    let cases: Vec<(&str, &str, &str, u16, &str)> = vec![
        (
            "application/json-patch+json",
            "",
            r#"[{"op":"test","path":"/data/k","value":"nope"}]"#,
            422,
            "the server rejected our request due to an error in our request",
        ),
        (
            "application/json-patch+json",
            "",
            r#"[{"op":"remove","path":"/data/missing"}]"#,
            422,
            "the server rejected our request due to an error in our request",
        ),
        (
            "application/json-patch+json",
            "",
            r#"{"op":"add"}"#,
            400,
            "",
        ),
        (
            "application/merge-patch+json",
            "",
            r#"{"apiVersion":"apps/v1"}"#,
            400,
            "the API version in the data (apps/v1) does not match the expected API version (v1)",
        ),
        (
            "application/merge-patch+json",
            "",
            r#"{"kind":"Secret"}"#,
            400,
            "",
        ),
        (
            "application/merge-patch+json",
            "",
            r#"{"metadata":{"name":"other"}}"#,
            400,
            "the name of the object (other) does not match the name on the URL (p)",
        ),
        (
            "application/strategic-merge-patch+json",
            "",
            r#"[1]"#,
            400,
            "",
        ),
        (
            "application/apply-patch+yaml",
            "",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: p\n",
            422,
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ),
        (
            "application/apply-patch+yaml",
            "?fieldManager=m",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n",
            400,
            "",
        ),
        (
            "application/merge-patch+json",
            "?force=true",
            r#"{"data":{"k":"x"}}"#,
            422,
            "",
        ),
        (
            "application/merge-patch+json",
            "",
            r#"{"metadata":{"managedFields":[{"manager":"m","operation":"Update","fieldsType":"FieldsV1","fieldsV1":{"bogus":{}}}]}}"#,
            400,
            "",
        ),
        ("text/plain", "", "hello", 415, ""),
    ];
    for (ct, query, body, code, message) in cases {
        let r = patch(&a, ct, query, body);
        assert_eq!(r.status, code, "{ct} {body}: {}", r.body);
        let v = r.json();
        assert_eq!(v["kind"], "Status", "{}", r.body);
        if !message.is_empty() {
            assert_eq!(v["message"], message, "{ct} {body}");
        }
        let now = raw_request(&a, "GET", &format!("{CM}/p"), "application/json", b"").json();
        assert_eq!(
            now["metadata"]["resourceVersion"],
            rv.as_str(),
            "a failed patch ({ct} {body}) changed the object"
        );
        assert_eq!(now["data"]["k"], "v");
    }
    assert_eq!(
        raw_request(&a, "GET", &format!("{CM}/other"), "application/json", b"").status,
        404
    );
}
