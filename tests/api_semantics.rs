//! The API's semantics over the wire: discovery, tables, metadata rules,
//! subresources, pagination, watches (HTTP and WebSocket), dry-run and field
//! validation — checked against upstream's documented behaviour.

mod common;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};

use common::{Server, poll, raw_request, raw_request_with, stream_get};

const CM: &str = "/api/v1/namespaces/default/configmaps";
const SECOND: Duration = Duration::from_secs(1);

fn post(s: &Server, path: &str, body: Value) -> Value {
    let r = raw_request(
        &s.addr(),
        "POST",
        path,
        "application/json",
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "POST {path}: {}", r.body);
    r.json()
}

fn get(s: &Server, path: &str) -> common::RawResponse {
    raw_request(&s.addr(), "GET", path, "application/json", b"")
}

fn put(s: &Server, path: &str, body: &Value) -> common::RawResponse {
    raw_request(
        &s.addr(),
        "PUT",
        path,
        "application/json",
        body.to_string().as_bytes(),
    )
}

fn patch(s: &Server, path: &str, body: Value) -> common::RawResponse {
    raw_request(
        &s.addr(),
        "PATCH",
        path,
        "application/merge-patch+json",
        body.to_string().as_bytes(),
    )
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn discovery_version_and_health() {
    let s = Server::start_apiserver(&[]);
    let a = s.addr();
    let api = get(&s, "/api").json();
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"], json!(["v1"]));
    let apis = get(&s, "/apis").json();
    assert_eq!(apis["kind"], "APIGroupList");
    let apps = apis["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["name"] == "apps")
        .expect("apps group")
        .clone();
    assert_eq!(
        apps["preferredVersion"],
        json!({"groupVersion": "apps/v1", "version": "v1"})
    );
    assert_eq!(get(&s, "/apis/apps").json()["kind"], "APIGroup");
    let v1 = get(&s, "/api/v1").json();
    let entry = |list: &Value, name: &str| {
        list["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    let pods = entry(&v1, "pods");
    assert_eq!(pods["shortNames"], json!(["po"]));
    assert_eq!(pods["categories"], json!(["all"]));
    assert_eq!(
        pods["verbs"],
        json!([
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch"
        ])
    );
    assert_eq!(
        entry(&v1, "pods/status")["verbs"],
        json!(["get", "patch", "update"])
    );
    let scale = entry(&get(&s, "/apis/apps/v1").json(), "deployments/scale");
    assert_eq!(
        (
            scale["group"].as_str(),
            scale["version"].as_str(),
            scale["kind"].as_str()
        ),
        (Some("autoscaling"), Some("v1"), Some("Scale"))
    );
    // Aggregated discovery, chosen by Accept, with an ETag.
    let accept =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let agg = raw_request_with(&a, "GET", "/apis", &[("Accept", accept)], b"");
    assert_eq!(agg.status, 200);
    assert_eq!(
        agg.header("content-type").as_deref(),
        Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    );
    let doc = agg.json();
    assert_eq!(doc["kind"], "APIGroupDiscoveryList");
    let apps = doc["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|g| g["metadata"]["name"] == "apps")
        .expect("apps");
    let deploy = apps["versions"][0]["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["resource"] == "deployments")
        .expect("deployments");
    assert_eq!(deploy["scope"], "Namespaced");
    // As upstream: group and version only where they differ from the resource's.
    assert_eq!(
        deploy["responseKind"],
        json!({"group": "", "version": "", "kind": "Deployment"})
    );
    assert!(
        deploy["subresources"]
            .as_array()
            .expect("subresources")
            .iter()
            .any(|s| s["subresource"] == "scale" && s["responseKind"]["kind"] == "Scale")
    );
    let etag = agg.header("etag").expect("etag");
    let again = raw_request_with(
        &a,
        "GET",
        "/apis",
        &[("Accept", accept), ("If-None-Match", &etag)],
        b"",
    );
    assert_eq!(again.status, 304);
    let core = raw_request_with(&a, "GET", "/api", &[("Accept", accept)], b"").json();
    assert!(
        core["items"][0]["versions"][0]["resources"]
            .as_array()
            .expect("core")
            .iter()
            .any(|r| r["resource"] == "pods")
    );
    // Version and health.
    let version = get(&s, "/version").json();
    assert!(
        version["gitVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("v1.34.")),
        "{version}"
    );
    assert_eq!(
        (version["major"].as_str(), version["minor"].as_str()),
        (Some("1"), Some("34"))
    );
    for path in ["/healthz", "/livez", "/readyz", "/livez/ping"] {
        let r = get(&s, path);
        assert_eq!((r.status, r.body.as_str()), (200, "ok"), "{path}");
    }
    let verbose = get(&s, "/readyz?verbose").body;
    assert!(
        verbose.contains("[+]ping ok") && verbose.ends_with("readyz check passed\n"),
        "{verbose}"
    );
}

#[test]
fn tables_and_partial_metadata() {
    let s = Server::start_apiserver(&[]);
    let a = s.addr();
    post(
        &s,
        "/api/v1/namespaces/default/pods",
        json!({"metadata": {"name": "p", "labels": {"x": "y"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    );
    let table_accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    let t = raw_request_with(
        &a,
        "GET",
        "/api/v1/namespaces/default/pods",
        &[("Accept", table_accept)],
        b"",
    )
    .json();
    assert_eq!(t["kind"], "Table");
    let cols: Vec<(&str, i64)> = t["columnDefinitions"]
        .as_array()
        .expect("cols")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or(""),
                c["priority"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        cols,
        [
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1),
            ("Node", 1),
            ("Nominated Node", 1),
            ("Readiness Gates", 1)
        ]
    );
    assert_eq!(
        t["rows"][0]["cells"].as_array().map(|c| c[..4].to_vec()),
        Some(vec![json!("p"), json!("0/1"), json!("Pending"), json!("0")])
    );
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(t["rows"][0]["object"]["metadata"]["labels"]["x"], "y");
    let full = raw_request_with(
        &a,
        "GET",
        "/api/v1/namespaces/default/pods?includeObject=Object",
        &[("Accept", table_accept)],
        b"",
    )
    .json();
    assert_eq!(full["rows"][0]["object"]["kind"], "Pod");
    let none = raw_request_with(
        &a,
        "GET",
        "/api/v1/namespaces/default/pods/p?includeObject=None",
        &[("Accept", table_accept)],
        b"",
    )
    .json();
    assert!(none["rows"][0].get("object").is_none());
    let roles = raw_request_with(
        &a,
        "GET",
        "/apis/rbac.authorization.k8s.io/v1/roles",
        &[("Accept", table_accept)],
        b"",
    )
    .json();
    let names: Vec<&str> = roles["columnDefinitions"]
        .as_array()
        .expect("cols")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["Name", "Created At"]);
    let pom = raw_request_with(
        &a,
        "GET",
        "/api/v1/namespaces/default/pods",
        &[(
            "Accept",
            "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
        )],
        b"",
    )
    .json();
    assert_eq!(pom["kind"], "PartialObjectMetadataList");
    assert_eq!(pom["items"][0]["metadata"]["name"], "p");
    assert!(pom["items"][0].get("spec").is_none());
    let proto_or_json = raw_request_with(
        &a,
        "GET",
        "/api/v1/namespaces/default/pods/p",
        &[(
            "Accept",
            "application/vnd.kubernetes.protobuf,application/json",
        )],
        b"",
    );
    // The first acceptable type wins: protobuf, as client-go asks for it.
    assert_eq!(proto_or_json.status, 200);
    assert_eq!(
        proto_or_json.header("content-type").as_deref(),
        Some("application/vnd.kubernetes.protobuf")
    );
    let json_or_proto = raw_request_with(
        &a,
        "GET",
        "/api/v1/namespaces/default/pods/p",
        &[(
            "Accept",
            "application/json,application/vnd.kubernetes.protobuf",
        )],
        b"",
    );
    assert_eq!(json_or_proto.json()["kind"], "Pod");
    let proto_only = raw_request_with(
        &a,
        "GET",
        "/api/v1/namespaces/default/pods/p",
        &[(
            "Accept",
            "application/vnd.kubernetes.protobuf;q=1,text/html",
        )],
        b"",
    );
    // Built-in kinds are served as protobuf, as upstream serves them.
    assert_eq!(proto_only.status, 200, "{}", proto_only.body);
    assert_eq!(
        proto_only.header("content-type").as_deref(),
        Some("application/vnd.kubernetes.protobuf")
    );
    let yaml = raw_request_with(
        &a,
        "GET",
        "/api/v1/namespaces/default/pods/p",
        &[("Accept", "application/yaml")],
        b"",
    );
    assert!(yaml.body.contains("kind: Pod"), "{}", yaml.body);
}

#[test]
fn metadata_rules_subresources_and_deletion() {
    let s = Server::start_apiserver(&[]);
    let a = s.addr();
    let g = post(&s, CM, json!({"metadata": {"generateName": "gen-"}}));
    let name = g["metadata"]["name"].as_str().expect("name");
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    assert_eq!(g["metadata"]["uid"].as_str().map(str::len), Some(36));
    assert!(
        g["metadata"]["creationTimestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(
        g["metadata"].get("generation").is_none(),
        "configmaps have no generation"
    );

    // generation moves with spec only; status is its own subresource.
    let deploy_path = "/apis/apps/v1/namespaces/default/deployments";
    let d = post(
        &s,
        deploy_path,
        json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}, "status": {"replicas": 7}}),
    );
    assert_eq!(d["metadata"]["generation"], 1);
    assert!(
        d.get("status")
            .is_none_or(|st| st.get("replicas").is_none()),
        "status is cleared on create"
    );
    let one = format!("{deploy_path}/d");
    assert_eq!(
        patch(&s, &one, json!({"metadata": {"labels": {"l": "1"}}})).json()["metadata"]["generation"],
        1
    );
    assert_eq!(
        patch(&s, &one, json!({"spec": {"replicas": 4}})).json()["metadata"]["generation"],
        2
    );
    let st = raw_request(
        &a,
        "PATCH",
        &format!("{one}/status"),
        "application/merge-patch+json",
        json!({"status": {"replicas": 3}, "spec": {"replicas": 9}, "metadata": {"annotations": {"via": "status"}}})
            .to_string()
            .as_bytes(),
    )
    .json();
    assert_eq!(
        (
            st["status"]["replicas"].as_i64(),
            st["spec"]["replicas"].as_i64(),
            st["metadata"]["generation"].as_i64()
        ),
        (Some(3), Some(4), Some(2))
    );
    assert_eq!(
        st["metadata"]["annotations"]["via"], "status",
        "metadata changes go through a status write"
    );
    let mut whole = get(&s, &one).json();
    whole["status"]["replicas"] = json!(100);
    let after = put(&s, &one, &whole).json();
    assert_eq!(
        after["status"]["replicas"], 3,
        "a main-resource update ignores status"
    );
    // scale on every scalable kind
    post(
        &s,
        "/apis/apps/v1/namespaces/default/replicasets",
        json!({"metadata": {"name": "rs"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
    );
    post(
        &s,
        "/apis/apps/v1/namespaces/default/statefulsets",
        json!({"metadata": {"name": "ss"}, "spec": {"serviceName": "x", "selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
    );
    post(
        &s,
        "/api/v1/namespaces/default/replicationcontrollers",
        json!({"metadata": {"name": "rc"}, "spec": {"selector": {"a": "b"}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
    );
    for path in [
        "/apis/apps/v1/namespaces/default/deployments/d",
        "/apis/apps/v1/namespaces/default/replicasets/rs",
        "/apis/apps/v1/namespaces/default/statefulsets/ss",
        "/api/v1/namespaces/default/replicationcontrollers/rc",
    ] {
        let scale = get(&s, &format!("{path}/scale")).json();
        assert_eq!(scale["kind"], "Scale", "{path}");
        assert_eq!(scale["apiVersion"], "autoscaling/v1");
        assert_eq!(scale["status"]["selector"], "a=b", "{path}");
        let mut to = scale.clone();
        to["spec"]["replicas"] = json!(5);
        let r = put(&s, &format!("{path}/scale"), &to);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(get(&s, path).json()["spec"]["replicas"], 5, "{path}");
        let stale = put(&s, &format!("{path}/scale"), &to);
        assert_eq!(
            stale.status, 409,
            "a stale Scale is a conflict: {}",
            stale.body
        );
    }

    // finalizers hold a deleted object until removed
    post(
        &s,
        CM,
        json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    );
    let del = raw_request(&a, "DELETE", &format!("{CM}/held"), "application/json", b"");
    assert_eq!(del.status, 200, "{}", del.body);
    let held = get(&s, &format!("{CM}/held")).json();
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(held["metadata"]["deletionGracePeriodSeconds"], 0);
    assert_eq!(
        patch(&s, &format!("{CM}/held"), json!({"data": {"k": "v"}})).status,
        200,
        "updates still allowed"
    );
    assert_eq!(
        patch(
            &s,
            &format!("{CM}/held"),
            json!({"metadata": {"finalizers": null}})
        )
        .status,
        200
    );
    assert_eq!(get(&s, &format!("{CM}/held")).status, 404);
    // a plain delete answers with a success Status
    post(&s, CM, json!({"metadata": {"name": "plain"}}));
    let gone = raw_request(
        &a,
        "DELETE",
        &format!("{CM}/plain"),
        "application/json",
        b"",
    )
    .json();
    assert_eq!(
        (
            gone["kind"].as_str(),
            gone["status"].as_str(),
            gone["details"]["name"].as_str()
        ),
        (Some("Status"), Some("Success"), Some("plain"))
    );
    // propagationPolicy=Foreground holds the object with foregroundDeletion
    post(&s, CM, json!({"metadata": {"name": "fg"}}));
    let r = raw_request(
        &a,
        "DELETE",
        &format!("{CM}/fg"),
        "application/json",
        br#"{"propagationPolicy":"Foreground"}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        get(&s, &format!("{CM}/fg")).json()["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    let bad = raw_request(
        &a,
        "DELETE",
        &format!("{CM}/fg"),
        "application/json",
        br#"{"propagationPolicy":"Sometimes"}"#,
    );
    assert_eq!(bad.status, 422);
    // resourceVersion precondition
    let p = post(&s, CM, json!({"metadata": {"name": "pre"}}));
    let body = json!({"preconditions": {"resourceVersion": "1"}}).to_string();
    assert_eq!(
        raw_request(
            &a,
            "DELETE",
            &format!("{CM}/pre"),
            "application/json",
            body.as_bytes()
        )
        .status,
        409
    );
    let body =
        json!({"preconditions": {"resourceVersion": p["metadata"]["resourceVersion"]}}).to_string();
    assert_eq!(
        raw_request(
            &a,
            "DELETE",
            &format!("{CM}/pre"),
            "application/json",
            body.as_bytes()
        )
        .status,
        200
    );
    // pods not bound to a node go at once; bound ones wait for their kubelet
    post(
        &s,
        "/api/v1/namespaces/default/pods",
        json!({"metadata": {"name": "free"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    );
    post(
        &s,
        "/api/v1/namespaces/default/pods",
        json!({"metadata": {"name": "bound"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}}),
    );
    assert_eq!(
        raw_request(
            &a,
            "DELETE",
            "/api/v1/namespaces/default/pods/free",
            "application/json",
            b""
        )
        .status,
        200
    );
    assert_eq!(get(&s, "/api/v1/namespaces/default/pods/free").status, 404);
    let bound = raw_request(
        &a,
        "DELETE",
        "/api/v1/namespaces/default/pods/bound",
        "application/json",
        b"",
    )
    .json();
    assert_eq!(bound["metadata"]["deletionGracePeriodSeconds"], 30);
    let force = raw_request(
        &a,
        "DELETE",
        "/api/v1/namespaces/default/pods/bound?gracePeriodSeconds=0",
        "application/json",
        b"",
    );
    assert_eq!(force.status, 200);
    assert_eq!(get(&s, "/api/v1/namespaces/default/pods/bound").status, 404);
    // deletecollection by label
    for (n, l) in [("dc1", "x"), ("dc2", "x"), ("dc3", "y")] {
        post(
            &s,
            CM,
            json!({"metadata": {"name": n, "labels": {"grp": l}}}),
        );
    }
    assert_eq!(
        raw_request(
            &a,
            "DELETE",
            &format!("{CM}?labelSelector=grp%3Dx"),
            "application/json",
            b""
        )
        .status,
        200
    );
    assert_eq!(
        names(&get(&s, &format!("{CM}?labelSelector=grp")).json()),
        ["dc3"]
    );
}

#[test]
fn namespaces_gate_creates() {
    let s = Server::start_apiserver(&[]);
    let ns = get(&s, "/api/v1/namespaces").json();
    for want in ["default", "kube-node-lease", "kube-public", "kube-system"] {
        assert!(names(&ns).iter().any(|n| n == want), "{want} missing");
    }
    let missing = raw_request(
        &s.addr(),
        "POST",
        "/api/v1/namespaces/nope/configmaps",
        "application/json",
        br#"{"metadata":{"name":"x"}}"#,
    );
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["message"], "namespaces \"nope\" not found");
    post(
        &s,
        "/api/v1/namespaces",
        json!({"metadata": {"name": "ending", "finalizers": ["example.com/hold"]}}),
    );
    assert_eq!(
        raw_request(
            &s.addr(),
            "DELETE",
            "/api/v1/namespaces/ending",
            "application/json",
            b""
        )
        .status,
        200
    );
    let ns = get(&s, "/api/v1/namespaces/ending").json();
    assert_eq!(ns["status"]["phase"], "Terminating");
    let r = raw_request(
        &s.addr(),
        "POST",
        "/api/v1/namespaces/ending/configmaps",
        "application/json",
        br#"{"metadata":{"name":"late"}}"#,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let v = r.json();
    assert_eq!(v["reason"], "Forbidden");
    assert_eq!(
        v["message"],
        "configmaps \"late\" is forbidden: unable to create new content in namespace ending because it is being terminated"
    );
    assert_eq!(v["details"]["causes"][0]["reason"], "NamespaceTerminating");
}

#[test]
fn pagination_resource_versions_and_expiry() {
    let s = Server::start_apiserver(&["--compaction-interval-seconds", "1"]);
    for i in 0..5 {
        post(
            &s,
            CM,
            json!({"metadata": {"name": format!("p{i}")}, "data": {"v": "old"}}),
        );
    }
    let page1 = get(&s, &format!("{CM}?limit=2")).json();
    assert_eq!(names(&page1), ["p0", "p1"]);
    assert_eq!(page1["metadata"]["remainingItemCount"], 3);
    let rv = page1["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let token = page1["metadata"]["continue"]
        .as_str()
        .expect("continue")
        .to_string();
    patch(&s, &format!("{CM}/p3"), json!({"data": {"v": "new"}}));
    let page2 = get(&s, &format!("{CM}?limit=2&continue={token}")).json();
    assert_eq!(names(&page2), ["p2", "p3"]);
    assert_eq!(
        page2["items"][1]["data"]["v"], "old",
        "later pages are read at the first page's revision"
    );
    assert_eq!(page2["metadata"]["resourceVersion"], rv.as_str());
    let token2 = page2["metadata"]["continue"]
        .as_str()
        .expect("continue")
        .to_string();
    let page3 = get(&s, &format!("{CM}?limit=2&continue={token2}")).json();
    assert_eq!(names(&page3), ["p4"]);
    assert!(page3["metadata"].get("continue").is_none());
    let exact = get(
        &s,
        &format!("{CM}/?resourceVersion={rv}&resourceVersionMatch=Exact"),
    )
    .json();
    let p3 = exact["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["metadata"]["name"] == "p3")
        .expect("p3")
        .clone();
    assert_eq!(p3["data"]["v"], "old");
    assert_eq!(get(&s, &format!("{CM}?continue=garbage")).status, 400);
    assert_eq!(
        get(&s, &format!("{CM}?resourceVersionMatch=Exact")).status,
        400
    );
    // Once compaction passes the token's revision, it is 410 Expired with upstream's message.
    let expired = poll(
        "compaction to pass the continue token",
        Duration::from_secs(30),
        || {
            patch(&s, &format!("{CM}/p4"), json!({"data": {"tick": "x"}}));
            let r = get(&s, &format!("{CM}?limit=2&continue={token}"));
            (r.status == 410).then_some(r)
        },
    );
    let v = expired.json();
    assert_eq!(v["reason"], "Expired");
    assert!(
        v["message"].as_str().is_some_and(|m| m.starts_with(
            "The provided continue parameter is too old to display a consistent list result."
        )),
        "{v}"
    );
    assert!(
        v["metadata"]["continue"].is_string(),
        "a fresh token is offered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_semantics() {
    let s = Server::start_apiserver(&["--compaction-interval-seconds", "1"]);
    let client = s.client().await;
    let t = Duration::from_secs(20);
    post(
        &s,
        CM,
        json!({"metadata": {"name": "a", "labels": {"team": "x"}}}),
    );
    let rv0 = get(&s, CM).json()["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();

    // Label-selected watch: an object that stops matching yields DELETED.
    let mut w = stream_get(
        &client,
        &format!("{CM}?watch=true&labelSelector=team%3Dx&resourceVersion={rv0}"),
        "application/json",
    )
    .await;
    assert_eq!(w.status, 200);
    patch(
        &s,
        &format!("{CM}/a"),
        json!({"metadata": {"labels": {"team": "y"}}}),
    );
    let ev = w.next(t).await.expect("event");
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("DELETED"), Some("a"))
    );
    patch(
        &s,
        &format!("{CM}/a"),
        json!({"metadata": {"labels": {"team": "x"}}}),
    );
    assert_eq!(w.next(t).await.expect("event")["type"], "ADDED");

    // No resourceVersion: current state as ADDED first; legacy watch path too.
    let mut w = stream_get(
        &client,
        "/api/v1/watch/namespaces/default/configmaps",
        "application/json",
    )
    .await;
    let first = w.next(t).await.expect("event");
    assert_eq!(
        (first["type"].as_str(), first["object"]["kind"].as_str()),
        (Some("ADDED"), Some("ConfigMap"))
    );

    // sendInitialEvents ends the initial state with an annotated bookmark.
    let path = format!(
        "{CM}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
    );
    let mut w = stream_get(&client, &path, "application/json").await;
    assert_eq!(w.next(t).await.expect("event")["type"], "ADDED");
    let bm = w.next(t).await.expect("bookmark");
    assert_eq!(bm["type"], "BOOKMARK");
    assert_eq!(
        bm["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    let invalid = raw_request(
        &s.addr(),
        "GET",
        &format!("{CM}?watch=true&sendInitialEvents=true"),
        "application/json",
        b"",
    );
    assert_eq!(invalid.status, 422);

    // timeoutSeconds ends the stream.
    let mut w = stream_get(
        &client,
        &format!("{CM}?watch=true&resourceVersion={rv0}&timeoutSeconds=1"),
        "application/json",
    )
    .await;
    let mut ended = false;
    for _ in 0..10 {
        if w.next(t).await.is_none() {
            ended = true;
            break;
        }
    }
    assert!(ended, "watch did not end after timeoutSeconds");

    // A compacted resourceVersion: ERROR event with a 410 Expired Status.
    let ev = poll("compaction past rv0", Duration::from_secs(30), || {
        patch(&s, &format!("{CM}/a"), json!({"data": {"tick": "x"}}));
        let fut = async {
            let mut w = stream_get(
                &client,
                &format!("{CM}?watch=true&resourceVersion={rv0}"),
                "application/json",
            )
            .await;
            w.next(SECOND * 5).await
        };
        let ev = tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(fut))?;
        (ev["type"] == "ERROR").then_some(ev)
    });
    assert_eq!(ev["object"]["code"], 410);
    assert_eq!(ev["object"]["reason"], "Expired");
    assert!(
        ev["object"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("too old resource version: "))
    );

    // Table watches carry a one-row Table per event.
    let table_accept = "application/json;as=Table;v=v1;g=meta.k8s.io";
    let mut w = stream_get(&client, &format!("{CM}?watch=true"), table_accept).await;
    let ev = w.next(t).await.expect("event");
    assert_eq!(ev["object"]["kind"], "Table");
    assert_eq!(ev["object"]["rows"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_watch_with_base64_framing_and_bearer_subprotocol() {
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let s = Server::start_apiserver(&[]);
    post(&s, CM, json!({"metadata": {"name": "ws1"}}));
    let url = format!("ws://127.0.0.1:{}{CM}?watch=true", s.port);
    let mut req = url.clone().into_client_request().expect("request");
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "base64.binary.k8s.io, base64url.bearer.authorization.k8s.io.dG9rZW4"
            .parse()
            .expect("header"),
    );
    let tls = common::tls_connect_async(&s.addr()).await.expect("TLS");
    let (mut ws, resp) = tokio_tungstenite::client_async(req, tls)
        .await
        .expect("connect");
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("base64.binary.k8s.io")
    );
    let frame = tokio::time::timeout(Duration::from_secs(20), ws.next())
        .await
        .expect("frame")
        .expect("open")
        .expect("ok");
    let Message::Text(text) = frame else {
        panic!("expected a text frame, got {frame:?}")
    };
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(text.as_str())
        .expect("base64");
    let ev: Value = serde_json::from_slice(&decoded).expect("json");
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("ws1"))
    );
    ws.close(None).await.expect("close");
    // Without a subprotocol: plain JSON text frames.
    let tls = common::tls_connect_async(&s.addr()).await.expect("TLS");
    let (mut plain, _) = tokio_tungstenite::client_async(url, tls)
        .await
        .expect("connect");
    post(&s, CM, json!({"metadata": {"name": "ws2"}}));
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let frame = tokio::time::timeout(Duration::from_secs(20), plain.next())
            .await
            .expect("frame")
            .expect("open")
            .expect("ok");
        if let Message::Text(t) = frame {
            let ev: Value = serde_json::from_str(t.as_str()).expect("json");
            seen.push(
                ev["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            );
        }
    }
    assert!(seen.contains(&"ws2".to_string()), "{seen:?}");
    let _ = plain.send(Message::Close(None)).await;
}

#[test]
fn dry_run_and_field_validation() {
    let s = Server::start_apiserver(&[]);
    let a = s.addr();
    let r = raw_request(
        &a,
        "POST",
        &format!("{CM}?dryRun=All"),
        "application/json",
        br#"{"metadata":{"name":"dry"}}"#,
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["metadata"]["name"], "dry");
    assert_eq!(
        get(&s, &format!("{CM}/dry")).status,
        404,
        "dry-run create stored nothing"
    );
    post(
        &s,
        CM,
        json!({"metadata": {"name": "real"}, "data": {"k": "v1"}}),
    );
    let r = raw_request(
        &a,
        "PATCH",
        &format!("{CM}/real?dryRun=All"),
        "application/merge-patch+json",
        br#"{"data":{"k":"v2"}}"#,
    );
    assert_eq!(r.json()["data"]["k"], "v2");
    let mut obj = get(&s, &format!("{CM}/real")).json();
    assert_eq!(obj["data"]["k"], "v1");
    obj["data"]["k"] = json!("v3");
    assert_eq!(
        raw_request(
            &a,
            "PUT",
            &format!("{CM}/real?dryRun=All"),
            "application/json",
            obj.to_string().as_bytes()
        )
        .status,
        200
    );
    assert_eq!(
        raw_request(
            &a,
            "DELETE",
            &format!("{CM}/real?dryRun=All"),
            "application/json",
            b""
        )
        .status,
        200
    );
    let still = get(&s, &format!("{CM}/real")).json();
    assert_eq!(still["data"]["k"], "v1");
    assert_eq!(
        raw_request(
            &a,
            "POST",
            &format!("{CM}?dryRun=Some"),
            "application/json",
            b"{}"
        )
        .status,
        422,
        "an unsupported dryRun value is an invalid CreateOptions, as upstream"
    );
    // Warn (the default) answers with a warning header; Ignore is silent; YAML bodies work.
    let warn = raw_request(
        &a,
        "POST",
        CM,
        "application/json",
        br#"{"metadata":{"name":"w"},"bogus":1}"#,
    );
    assert_eq!(warn.status, 201);
    assert_eq!(
        warn.header("warning").as_deref(),
        Some(r#"299 - "unknown field \"bogus\"""#)
    );
    let ignore = raw_request(
        &a,
        "POST",
        &format!("{CM}?fieldValidation=Ignore"),
        "application/json",
        br#"{"metadata":{"name":"i"},"bogus":1}"#,
    );
    assert_eq!((ignore.status, ignore.header("warning")), (201, None));
    let yaml = raw_request(
        &a,
        "POST",
        CM,
        "application/yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  k: v\n",
    );
    assert_eq!(yaml.status, 201, "{}", yaml.body);
    assert_eq!(get(&s, &format!("{CM}/from-yaml")).json()["data"]["k"], "v");
}

#[test]
fn field_selectors_per_kind() {
    let s = Server::start_apiserver(&[]);
    post(
        &s,
        "/api/v1/namespaces/default/events",
        json!({"metadata": {"name": "e1"}, "involvedObject": {"kind": "Pod", "name": "p1", "namespace": "default"}, "reason": "Started", "type": "Normal"}),
    );
    post(
        &s,
        "/api/v1/namespaces/default/events",
        json!({"metadata": {"name": "e2"}, "involvedObject": {"kind": "Pod", "name": "p2", "namespace": "default"}, "reason": "Failed", "type": "Warning"}),
    );
    let ev = get(&s, "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dp1,involvedObject.kind%3DPod").json();
    assert_eq!(names(&ev), ["e1"]);
    assert_eq!(
        names(&get(&s, "/api/v1/events?fieldSelector=type%21%3DNormal").json()),
        ["e2"]
    );
    post(
        &s,
        "/api/v1/namespaces/default/secrets",
        json!({"metadata": {"name": "tls"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}),
    );
    post(
        &s,
        "/api/v1/namespaces/default/secrets",
        json!({"metadata": {"name": "opaque"}}),
    );
    assert_eq!(
        names(
            &get(
                &s,
                "/api/v1/namespaces/default/secrets?fieldSelector=type%3Dkubernetes.io/tls"
            )
            .json()
        ),
        ["tls"]
    );
    post(
        &s,
        "/api/v1/namespaces/default/pods",
        json!({"metadata": {"name": "on-n1"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}}),
    );
    post(
        &s,
        "/api/v1/namespaces/default/pods",
        json!({"metadata": {"name": "unbound"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    );
    assert_eq!(
        names(&get(&s, "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1").json()),
        ["on-n1"]
    );
    assert_eq!(
        names(
            &get(
                &s,
                "/api/v1/pods?fieldSelector=spec.nodeName%3D,status.phase%3DPending"
            )
            .json()
        ),
        ["unbound"]
    );
    let bad = get(&s, "/api/v1/pods?fieldSelector=spec.bogus%3Dx");
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.json()["message"],
        "field label not supported: spec.bogus"
    );
    let bad_label = get(&s, "/api/v1/pods?labelSelector=a%20in%20(");
    assert_eq!(bad_label.status, 400);
}

#[test]
fn sigterm_stops_the_server_even_with_open_watches() {
    let mut s = Server::start_apiserver(&[]);
    let a = s.addr();
    // An open watch that never ends by itself.
    let mut watch = common::tls_connect(&a).expect("connect");
    use std::io::Write;
    write!(watch, "GET {CM}?watch=true HTTP/1.1\r\nHost: {a}\r\n\r\n").expect("write");
    watch.flush().expect("flush");
    poll("the watch to be served", Duration::from_secs(10), || {
        (get(&s, "/readyz").status == 200).then_some(())
    });
    let mut child = s.child.take().expect("child");
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let exited = poll(
        "the server to exit after SIGTERM",
        Duration::from_secs(20),
        || child.try_wait().ok().flatten(),
    );
    assert!(exited.success(), "{exited:?}");
}
