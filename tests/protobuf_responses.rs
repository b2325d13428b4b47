//! Protobuf responses (`application/vnd.kubernetes.protobuf`), as client-go
//! asks for them for built-in types: objects, lists, metadata-only forms,
//! error and delete `Status`es, and length-delimited watch streams, each
//! decoded and compared with the JSON the same server gives for the same
//! request. Custom resources have no protobuf form: the server falls back to
//! the next type the client accepts, or answers 406, as upstream does.

mod common;

use std::time::Duration;

use http_body_util::BodyExt;
use serde_json::{Value, json};

use common::{Server, raw_request_with};

const PB: &str = "application/vnd.kubernetes.protobuf";
/// What client-go sends for built-in types.
const CLIENT_GO: &str = "application/vnd.kubernetes.protobuf, */*";

/// A response read whole, body kept as bytes.
struct Binary {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

async fn send(client: &kube::Client, method: &str, path: &str, accept: &str) -> Binary {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("accept", accept)
        .body(kube::client::Body::empty())
        .expect("request");
    let resp = client.send(req).await.expect("send");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Binary {
        status,
        content_type,
        body,
    }
}

fn get_json(s: &Server, path: &str) -> Value {
    let r = raw_request_with(
        &s.addr(),
        "GET",
        path,
        &[("Accept", "application/json")],
        b"",
    );
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r.json()
}

/// GETs `path` in protobuf and in JSON and checks they carry the same object.
/// Controllers may write the object between the two reads (a CRD's
/// conditions, a Deployment's status): the pair is compared once both reads
/// saw the same resourceVersion.
async fn same_in_protobuf(s: &Server, client: &kube::Client, path: &str) -> Value {
    let rv = |v: &Value| v["metadata"]["resourceVersion"].clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let pb = send(client, "GET", path, CLIENT_GO).await;
        assert_eq!(pb.status, 200, "GET {path}");
        assert_eq!(pb.content_type, PB, "GET {path}");
        let decoded = apiserver::protobuf::decode(&pb.body).expect("protobuf body decodes");
        let json = get_json(s, path);
        if rv(&decoded) == rv(&json) || tokio::time::Instant::now() > deadline {
            assert_eq!(decoded, json, "GET {path}: protobuf and JSON differ");
            return decoded;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_objects_and_lists_in_protobuf() {
    let s = Server::start_apiserver(&[]);
    let client = s.client().await;
    let objects = [
        (
            "/api/v1/namespaces/default/configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "labels": {"a": "b"}, "annotations": {"x": "y"}}, "data": {"k": "v"}, "binaryData": {"b": "AAE="}}),
        ),
        (
            "/api/v1/namespaces/default/secrets",
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"}, "type": "Opaque", "stringData": {"password": "hunter2"}}),
        ),
        (
            "/api/v1/namespaces/default/pods",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}], "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}),
        ),
        (
            "/apis/apps/v1/namespaces/default/deployments",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}}, "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}}, "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
        ),
        (
            "/api/v1/namespaces/default/services",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}, "spec": {"selector": {"app": "d"}, "ports": [{"port": 80, "targetPort": "http"}]}}),
        ),
        (
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pb-ns"}}),
        ),
        (
            "/api/v1/nodes",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}, "spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}}),
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "pb-reader"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}),
        ),
        (
            "/apis/batch/v1/namespaces/default/jobs",
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}}}),
        ),
        (
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            widget_crd(),
        ),
    ];
    for (collection, obj) in &objects {
        let r = s.send_json("POST", collection, obj);
        assert_eq!(r.status, 201, "POST {collection}: {}", r.body);
        let name = r.json()["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_string();
        let got = same_in_protobuf(&s, &client, &format!("{collection}/{name}")).await;
        assert_eq!(got["kind"], obj["kind"]);
        let list = same_in_protobuf(&s, &client, collection).await;
        assert_eq!(
            list["kind"].as_str(),
            Some(format!("{}List", obj["kind"].as_str().unwrap_or_default()).as_str())
        );
    }

    // The metadata client (garbage collector, namespace controller).
    let accept = format!(
        "{PB};as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
    );
    let r = send(
        &client,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        &accept,
    )
    .await;
    assert_eq!((r.status, r.content_type.as_str()), (200, PB));
    let pom = apiserver::protobuf::decode(&r.body).expect("decodes");
    assert_eq!(pom["kind"], "PartialObjectMetadataList");
    assert_eq!(pom["apiVersion"], "meta.k8s.io/v1");
    assert!(
        pom["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i["metadata"]["name"] == "cm"))
    );

    // kubectl's Table request is unchanged; Table has no protobuf form.
    let r = send(
        &client,
        "GET",
        "/api/v1/namespaces/default/pods",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
    )
    .await;
    assert_eq!(
        (r.status, r.content_type.as_str()),
        (200, "application/json")
    );
    let table: Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(table["kind"], "Table");
    let r = send(
        &client,
        "GET",
        "/api/v1/namespaces/default/pods",
        &format!("{PB};as=Table;v=v1;g=meta.k8s.io"),
    )
    .await;
    assert_eq!(r.status, 406);
}

fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.pb.example.com"},
        "spec": {
            "group": "pb.example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                }}},
            }],
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_in_protobuf() {
    let s = Server::start_apiserver(&[]);
    let client = s.client().await;
    let cm = "/api/v1/namespaces/default/configmaps";

    // An error is a Status message when the client accepts protobuf.
    let r = send(&client, "GET", &format!("{cm}/missing"), CLIENT_GO).await;
    assert_eq!((r.status, r.content_type.as_str()), (404, PB));
    let status = apiserver::protobuf::decode(&r.body).expect("decodes");
    assert_eq!(
        (&status["kind"], &status["reason"], &status["code"]),
        (&json!("Status"), &json!("NotFound"), &json!(404))
    );
    assert_eq!(status["message"], "configmaps \"missing\" not found");

    // A delete answers with a Status too (configmaps return no object).
    let r = s.send_json(
        "POST",
        cm,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gone"}}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = send(&client, "DELETE", &format!("{cm}/gone"), CLIENT_GO).await;
    assert_eq!((r.status, r.content_type.as_str()), (200, PB));
    let status = apiserver::protobuf::decode(&r.body).expect("decodes");
    assert_eq!(status["status"], "Success");
    assert_eq!(status["details"]["name"], "gone");

    // Nothing acceptable at all: a 406 Status in (indented) JSON.
    let r = send(&client, "GET", cm, "text/html").await;
    assert_eq!(
        (r.status, r.content_type.as_str()),
        (406, "application/json")
    );
    let status: Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(status["reason"], "NotAcceptable");
}

/// Reads a protobuf watch stream: 4-byte big-endian lengths, each followed
/// by a `WatchEvent`.
struct Frames {
    body: kube::client::Body,
    buf: Vec<u8>,
}

impl Frames {
    /// The next event's type and object; panics after `timeout`.
    async fn next(&mut self, timeout: Duration) -> (String, Value) {
        use http_body_util::BodyExt;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.buf.len() >= 4 {
                let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]])
                    as usize;
                if self.buf.len() >= 4 + len {
                    let message: Vec<u8> = self.buf.drain(..4 + len).skip(4).collect();
                    return apiserver::protobuf::decode_watch_event(&message)
                        .expect("a WatchEvent");
                }
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .expect("a frame before the deadline")
                .expect("the stream is open")
                .expect("a good frame");
            if let Some(d) = frame.data_ref() {
                self.buf.extend_from_slice(d);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_stream_length_delimited_protobuf() {
    let s = Server::start_apiserver(&[]);
    let client = s.client().await;
    let cm = "/api/v1/namespaces/default/configmaps";
    let t = Duration::from_secs(20);
    let rv = get_json(&s, cm)["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let req = http::Request::get(format!(
        "{cm}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true"
    ))
    .header("accept", CLIENT_GO)
    .body(kube::client::Body::empty())
    .expect("request");
    let resp = client.send(req).await.expect("watch");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/vnd.kubernetes.protobuf;stream=watch")
    );
    let mut frames = Frames {
        body: resp.into_body(),
        buf: Vec::new(),
    };

    let r = s.send_json(
        "POST",
        cm,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w1"}, "data": {"a": "1"}}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = s.send_json(
        "DELETE",
        &format!("{cm}/w1"),
        &json!({"apiVersion": "v1", "kind": "DeleteOptions"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let (kind, added) = frames.next(t).await;
    assert_eq!(kind, "ADDED");
    assert_eq!(added["kind"], "ConfigMap");
    assert_eq!(added["data"]["a"], "1");
    let (kind, deleted) = frames.next(t).await;
    assert_eq!(kind, "DELETED");
    assert_eq!(deleted["metadata"]["name"], "w1");
}

/// Over WebSocket each event is one binary message: the bare `WatchEvent`,
/// without the HTTP stream's length prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_watches_send_one_binary_message_per_event() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let s = Server::start_apiserver(&[]);
    let cm = "/api/v1/namespaces/default/configmaps";
    let r = s.send_json(
        "POST",
        cm,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ws1"}}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let mut req = format!("ws://127.0.0.1:{}{cm}?watch=true", s.port)
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("Accept", CLIENT_GO.parse().expect("header"));
    let tls = common::tls_connect_async(&s.addr()).await.expect("TLS");
    let (mut ws, _) = tokio_tungstenite::client_async(req, tls)
        .await
        .expect("connect");
    let frame = tokio::time::timeout(Duration::from_secs(20), ws.next())
        .await
        .expect("a message in time")
        .expect("open")
        .expect("ok");
    let Message::Binary(message) = frame else {
        panic!("expected a binary message, got {frame:?}")
    };
    let (kind, obj) = apiserver::protobuf::decode_watch_event(&message).expect("decodes");
    assert_eq!(kind, "ADDED");
    assert_eq!(obj["metadata"]["name"], "ws1");
    ws.close(None).await.expect("close");
}
