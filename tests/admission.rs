//! What the API server itself decides about new objects, beyond their own
//! schema: built-in admission (LimitRanger, RuntimeClass), the objects it
//! bootstraps, Secret/ConfigMap rules and the review resources. Each test names
//! the upstream conformance test whose behaviour it checks.

mod common;

use serde_json::{Value, json};

use common::{Server, raw_request};

fn pod(name: &str, resources: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": resources}]}})
}

/// [sig-scheduling] LimitRange should create a LimitRange with defaults and
/// ensure pod has those defaults applied.
#[test]
fn limit_ranges_default_and_bound_container_resources() {
    let s = Server::start_apiserver(&[]);
    let q = |cpu: &str, mem: &str| json!({"cpu": cpu, "memory": mem});
    let lr = json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr"},
        "spec": {"limits": [{"type": "Container", "min": q("50m", "100Mi"), "max": q("500m", "500Mi"),
            "default": q("500m", "500Mi"), "defaultRequest": q("100m", "200Mi")}]}});
    let r = s.send_json("POST", "/api/v1/namespaces/default/limitranges", &lr);
    assert_eq!(r.status, 201, "{}", r.body);

    let pods = "/api/v1/namespaces/default/pods";
    let r = s.send_json("POST", pods, &pod("none", json!({})));
    assert_eq!(r.status, 201, "{}", r.body);
    let res = &r.json()["spec"]["containers"][0]["resources"];
    assert_eq!(res["requests"], q("100m", "200Mi"), "{res}");
    assert_eq!(res["limits"], q("500m", "500Mi"), "{res}");

    // A limit without a request is requested at the limit (pod defaulting),
    // before the range's defaults fill in the rest.
    let partial = json!({"requests": {"memory": "150Mi"}, "limits": {"cpu": "300m"}});
    let r = s.send_json("POST", pods, &pod("partial", partial));
    assert_eq!(r.status, 201, "{}", r.body);
    let res = &r.json()["spec"]["containers"][0]["resources"];
    assert_eq!(res["requests"], q("300m", "150Mi"), "{res}");
    assert_eq!(res["limits"], q("300m", "500Mi"), "{res}");

    let r = s.send_json(
        "POST",
        pods,
        &pod("small", json!({"requests": q("10m", "50Mi")})),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body
            .contains("minimum cpu usage per Container is 50m, but request is 10m"),
        "{}",
        r.body
    );
    let r = s.send_json(
        "POST",
        pods,
        &pod("big", json!({"requests": q("600m", "600Mi")})),
    );
    assert_eq!(r.status, 403, "{}", r.body);
}

/// [sig-node] RuntimeClass should reject a Pod requesting a non-existent
/// RuntimeClass.
#[test]
fn pods_naming_a_missing_runtime_class_are_forbidden() {
    let s = Server::start_apiserver(&[]);
    let mut p = pod("rc", json!({}));
    p["spec"]["runtimeClassName"] = json!("nope");
    // Admission runs on dry runs too (upstream's test asks with dryRun=All).
    let r = s.send_json("POST", "/api/v1/namespaces/default/pods?dryRun=All", &p);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = s.send_json("POST", "/api/v1/namespaces/default/pods", &p);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "pods \"rc\" is forbidden: pod rejected: RuntimeClass \"nope\" not found"
    );
    let rc = json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
        "metadata": {"name": "nope"}, "handler": "runc",
        "overhead": {"podFixed": {"cpu": "10m"}}});
    let r = s.send_json("POST", "/apis/node.k8s.io/v1/runtimeclasses", &rc);
    assert_eq!(r.status, 201, "{}", r.body);
    let r = s.send_json("POST", "/api/v1/namespaces/default/pods", &p);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["spec"]["overhead"], json!({"cpu": "10m"}));
}

/// [sig-network] EndpointSlice should have Endpoints and EndpointSlices
/// pointing to API Server; [sig-network] ServiceCIDR and IPAddress API should
/// support ServiceCIDR API operations.
#[test]
fn the_api_server_publishes_its_endpoints_and_service_cidr() {
    let s = Server::start_apiserver(&[]);
    let get = |path: &str| raw_request(&s.addr(), "GET", path, "application/json", b"").json();
    let ep = get("/api/v1/namespaces/default/endpoints/kubernetes");
    assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "127.0.0.1");
    assert_eq!(ep["subsets"][0]["ports"][0]["port"], json!(s.port));
    let slices = get(
        "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dkubernetes",
    );
    let slice = &slices["items"][0];
    assert_eq!(slice["endpoints"][0]["addresses"][0], "127.0.0.1");
    assert_eq!(slice["ports"][0]["port"], json!(s.port));
    let cidr = get("/apis/networking.k8s.io/v1/servicecidrs/kubernetes/status");
    assert_eq!(cidr["spec"]["cidrs"], json!(["10.96.0.0/12"]));
    assert_eq!(cidr["status"]["conditions"][0]["type"], "Ready");
    assert_eq!(cidr["status"]["conditions"][0]["status"], "True");
}

/// [sig-storage] Secrets should be immutable if `immutable` field is set;
/// [sig-storage] ConfigMap should be immutable if `immutable` field is set;
/// [sig-node] Secrets should fail to create secret due to empty secret key.
#[test]
fn secrets_and_config_maps_keep_their_rules() {
    let s = Server::start_apiserver(&[]);
    let secrets = "/api/v1/namespaces/default/secrets";
    let bad = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bad"}, "data": {"": "eA=="}});
    let r = s.send_json("POST", secrets, &bad);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("data[]: Invalid value: \\\"\\\": a valid config key must consist of alphanumeric characters"), "{}", r.body);

    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "immutable": true, "stringData": {"k": "v"}});
    let r = s.send_json("POST", secrets, &secret);
    assert_eq!(r.status, 201, "{}", r.body);
    let created = r.json();
    assert_eq!(
        created["data"],
        json!({"k": "dg=="}),
        "stringData folds into data"
    );
    assert!(created.get("stringData").is_none());
    assert_eq!(created["type"], "Opaque");
    let mut changed = created.clone();
    changed["data"]["k"] = json!("dzI=");
    let r = s.send_json("PUT", &format!("{secrets}/s"), &changed);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body
            .contains("data: Forbidden: field is immutable when `immutable` is set"),
        "{}",
        r.body
    );

    let cms = "/api/v1/namespaces/default/configmaps";
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "immutable": true, "data": {"k": "v"}});
    let created = s.send_json("POST", cms, &cm).json();
    let mut changed = created.clone();
    changed["immutable"] = json!(false);
    let r = s.send_json("PUT", &format!("{cms}/c"), &changed);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body
            .contains("immutable: Forbidden: field is immutable when `immutable` is set"),
        "{}",
        r.body
    );
}

/// [sig-auth] SubjectReview should support SubjectReview API operations;
/// [sig-api-machinery] Servers with support for Table transformation should
/// return a 406 for a backend which does not implement metadata.
#[test]
fn reviews_are_answered_not_stored() {
    let s = Server::start_apiserver(&[]);
    let sar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "alice", "resourceAttributes": {"verb": "list", "resource": "configmaps", "namespace": "default"}}});
    let path = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
    let r = s.send_json("POST", path, &sar);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["status"]["allowed"], false, "alice holds no role");
    let mut master = sar.clone();
    master["spec"]["groups"] = json!(["system:masters"]);
    let r = s.send_json("POST", path, &master);
    assert_eq!(r.json()["status"]["allowed"], true, "{}", r.body);

    let mut anonymous = sar.clone();
    anonymous["spec"]["user"] = json!("");
    let r = s.send_json("POST", path, &anonymous);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body
            .contains("at least one of user or group must be specified"),
        "{}",
        r.body
    );

    let r = common::raw_request_with(
        &s.addr(),
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io"),
        ],
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"nonResourceAttributes": {"path": "/", "verb": "get"}}})
        .to_string()
        .as_bytes(),
    );
    assert_eq!(r.status, 406, "{}", r.body);
}
