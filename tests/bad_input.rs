//! Hostile and malformed requests get upstream's Status errors, never a panic,
//! and never leave anything stored.

mod common;

use common::{Server, raw_request};

const CM: &str = "/api/v1/namespaces/default/configmaps";

fn assert_status(r: &common::RawResponse, code: u16, reason: &str) -> serde_json::Value {
    assert_eq!(r.status, code, "{}", r.body);
    let v = r.json();
    assert_eq!(v["kind"], "Status");
    assert_eq!(v["apiVersion"], "v1");
    assert_eq!(v["status"], "Failure");
    assert_eq!(v["reason"], reason, "{}", r.body);
    assert_eq!(v["code"], code);
    v
}

fn stored_configmaps(s: &Server) -> usize {
    let r = raw_request(&s.addr(), "GET", CM, "application/json", b"");
    assert_eq!(r.status, 200);
    r.json()["items"].as_array().map_or(0, Vec::len)
}

#[test]
fn malformed_and_hostile_bodies_are_rejected_like_upstream() {
    let s = Server::start_apiserver(&[]);
    let a = s.addr();
    let post = |ct: &str, body: &[u8]| raw_request(&a, "POST", CM, ct, body);

    assert_status(
        &post("application/json", b"{\"apiVersion\":"),
        400,
        "BadRequest",
    );
    assert_status(
        &post("application/yaml", b"metadata: [unclosed"),
        400,
        "BadRequest",
    );
    assert_status(&post("application/json", b"[1,2,3]"), 400, "BadRequest");
    assert_status(
        &post("application/json", b"\"just a string\""),
        400,
        "BadRequest",
    );
    let nested = format!(
        "{{\"metadata\":{}{}}}",
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    assert_status(
        &post("application/json", nested.as_bytes()),
        400,
        "BadRequest",
    );
    let nested_yaml = format!("a: {}", "[".repeat(50_000));
    assert_status(
        &post("application/yaml", nested_yaml.as_bytes()),
        400,
        "BadRequest",
    );
    let wrong_version = post(
        "application/json",
        br#"{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"x"}}"#,
    );
    let v = assert_status(&wrong_version, 400, "BadRequest");
    assert_eq!(
        v["message"],
        "the API version in the data (apps/v1) does not match the expected API version (v1)"
    );
    assert_status(
        &post(
            "application/json",
            br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}"#,
        ),
        400,
        "BadRequest",
    );
    let wrong_ns = post(
        "application/json",
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"other"}}"#,
    );
    let v = assert_status(&wrong_ns, 400, "BadRequest");
    assert_eq!(
        v["message"],
        "the namespace of the provided object does not match the namespace sent on the request"
    );
    let bad_name = post(
        "application/json",
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}"#,
    );
    let v = assert_status(&bad_name, 422, "Invalid");
    assert_eq!(
        v["message"],
        "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    );
    assert_eq!(v["details"]["causes"][0]["field"], "metadata.name");
    let no_name = post(
        "application/json",
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}"#,
    );
    let v = assert_status(&no_name, 422, "Invalid");
    assert_eq!(
        v["message"],
        "ConfigMap \"\" is invalid: metadata.name: Required value: name or generateName is required"
    );
    let long_ns = raw_request(
        &a,
        "POST",
        "/api/v1/namespaces",
        "application/json",
        br#"{"metadata":{"name":"has.dots"}}"#,
    );
    assert_status(&long_ns, 422, "Invalid");
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"k":"{}"}}}}"#,
        "x".repeat(3 * 1024 * 1024 + 10)
    );
    let r = post("application/json", big.as_bytes());
    let v = assert_status(&r, 413, "RequestEntityTooLarge");
    assert_eq!(v["message"], "Request entity too large: limit is 3145728");
    assert_status(&post("text/plain", b"hello"), 415, "UnsupportedMediaType");
    let strict = raw_request(
        &a,
        "POST",
        &format!("{CM}?fieldValidation=Strict"),
        "application/json",
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"s"},"dta":{}}"#,
    );
    let v = assert_status(&strict, 400, "BadRequest");
    assert_eq!(
        v["message"],
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"dta\""
    );
    let bogus_validation = raw_request(
        &a,
        "POST",
        &format!("{CM}?fieldValidation=Maybe"),
        "application/json",
        b"{}",
    );
    // Upstream validates CreateOptions before decoding the body (checked
    // against the reference kube-apiserver by the differential test).
    let v = assert_status(&bogus_validation, 422, "Invalid");
    assert_eq!(v["details"]["kind"], "CreateOptions");
    assert_eq!(
        stored_configmaps(&s),
        0,
        "a rejected request stored something"
    );

    // Unknown places.
    let r = raw_request(
        &a,
        "GET",
        "/api/v1/namespaces/default/widgets",
        "application/json",
        b"",
    );
    let v = assert_status(&r, 404, "NotFound");
    assert_eq!(
        v["message"],
        "the server could not find the requested resource"
    );
    assert_status(
        &raw_request(
            &a,
            "GET",
            "/apis/nope.example.com/v1/things",
            "application/json",
            b"",
        ),
        404,
        "NotFound",
    );
    assert_status(
        &raw_request(&a, "GET", "/apis/nope.example.com", "application/json", b""),
        404,
        "NotFound",
    );
    assert_status(
        &raw_request(
            &a,
            "GET",
            "/api/v1/namespaces/default/configmaps/missing",
            "application/json",
            b"",
        ),
        404,
        "NotFound",
    );
    assert_status(
        &raw_request(
            &a,
            "POST",
            "/api/v1/namespaces/nowhere/configmaps",
            "application/json",
            br#"{"metadata":{"name":"x"}}"#,
        ),
        404,
        "NotFound",
    );
    assert_status(
        &raw_request(
            &a,
            "PUT",
            "/api/v1/componentstatuses/x",
            "application/json",
            b"{}",
        ),
        405,
        "MethodNotAllowed",
    );

    // The server is still healthy and consistent.
    let ok = raw_request(
        &a,
        "POST",
        CM,
        "application/json",
        br#"{"metadata":{"name":"fine"}}"#,
    );
    assert_eq!(ok.status, 201, "{}", ok.body);
    assert_eq!(stored_configmaps(&s), 1);
}

#[test]
fn update_conflicts_and_url_mismatches() {
    let s = Server::start_apiserver(&[]);
    let a = s.addr();
    let created = raw_request(
        &a,
        "POST",
        CM,
        "application/json",
        br#"{"metadata":{"name":"c"},"data":{"a":"1"}}"#,
    )
    .json();
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let path = format!("{CM}/c");
    let body = |rv: &str, name: &str, v: &str| {
        format!(
            r#"{{"metadata":{{"name":"{name}","resourceVersion":"{rv}"}},"data":{{"a":"{v}"}}}}"#
        )
    };
    let first = raw_request(
        &a,
        "PUT",
        &path,
        "application/json",
        body(&rv, "c", "2").as_bytes(),
    );
    assert_eq!(first.status, 200, "{}", first.body);
    let stale = raw_request(
        &a,
        "PUT",
        &path,
        "application/json",
        body(&rv, "c", "3").as_bytes(),
    );
    let v = assert_status(&stale, 409, "Conflict");
    assert_eq!(
        v["message"],
        "Operation cannot be fulfilled on configmaps \"c\": the object has been modified; please apply your changes to the latest version and try again"
    );
    assert_eq!(
        v["details"],
        serde_json::json!({"name": "c", "kind": "configmaps"})
    );
    let renamed = raw_request(
        &a,
        "PUT",
        &path,
        "application/json",
        body("", "d", "4").as_bytes(),
    );
    assert_status(&renamed, 400, "BadRequest");
    let got = raw_request(&a, "GET", &path, "application/json", b"").json();
    assert_eq!(got["data"]["a"], "2");
    let dup = raw_request(
        &a,
        "POST",
        CM,
        "application/json",
        br#"{"metadata":{"name":"c"}}"#,
    );
    let v = assert_status(&dup, 409, "AlreadyExists");
    assert_eq!(v["message"], "configmaps \"c\" already exists");
    let pre = raw_request(
        &a,
        "DELETE",
        &path,
        "application/json",
        br#"{"preconditions":{"uid":"nope"}}"#,
    );
    let v = assert_status(&pre, 409, "Conflict");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("Precondition failed: UID in precondition: nope"),
        "{v}"
    );
}
