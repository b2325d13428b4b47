//! Watch requests read as upstream reads them: boolean query parameters in
//! Go's forms (`watch=True`), a watch on one named object (legacy `/watch/`
//! paths) limited to that object, and `timeoutSeconds` ending WebSocket
//! watches as it ends HTTP ones.

mod common;

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use common::{Server, stream_get};

const CM: &str = "/api/v1/namespaces/default/configmaps";

fn post(s: &Server, name: &str) {
    let r = s.send_json("POST", CM, &json!({"metadata": {"name": name}}));
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_true_in_any_case_is_a_watch() {
    let s = Server::start_apiserver(&[]);
    let client = s.client().await;
    post(&s, "a");
    for value in ["True", "1", "yes"] {
        let mut w = stream_get(&client, &format!("{CM}?watch={value}"), "application/json").await;
        assert_eq!(w.status, 200);
        let ev = w.next(Duration::from_secs(20)).await.expect("an event");
        assert_eq!(ev["type"], "ADDED", "watch={value} gave {ev}");
        assert_eq!(ev["object"]["metadata"]["name"], "a");
    }
    // `false` and `0` are lists.
    for value in ["False", "0"] {
        let r = s.send_json("GET", &format!("{CM}?watch={value}"), &Value::Null);
        assert_eq!(r.json()["kind"], "ConfigMapList", "watch={value}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_named_watch_sees_only_its_object() {
    let s = Server::start_apiserver(&[]);
    let client = s.client().await;
    post(&s, "other");
    post(&s, "mine");
    let path = "/api/v1/watch/namespaces/default/configmaps/mine";
    let mut w = stream_get(&client, path, "application/json").await;
    let ev = w
        .next(Duration::from_secs(20))
        .await
        .expect("initial event");
    assert_eq!(ev["object"]["metadata"]["name"], "mine", "{ev}");
    // A change to another object is not seen; the next event is ours.
    let patch = |name: &str| {
        let r = common::raw_request(
            &s.addr(),
            "PATCH",
            &format!("{CM}/{name}"),
            "application/merge-patch+json",
            br#"{"data":{"k":"v"}}"#,
        );
        assert_eq!(r.status, 200, "{}", r.body);
    };
    patch("other");
    patch("mine");
    let ev = w
        .next(Duration::from_secs(20))
        .await
        .expect("modified event");
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("MODIFIED"), Some("mine"))
    );
    // A field selector naming another object contradicts the path.
    let r = s.send_json(
        "GET",
        &format!("{path}?fieldSelector=metadata.name%3Dother"),
        &Value::Null,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "fieldSelector metadata.name doesn't match requested name"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_watches_end_at_their_timeout() {
    let s = Server::start_apiserver(&[]);
    post(&s, "a");
    let url = format!("ws://127.0.0.1:{}{CM}?watch=true&timeoutSeconds=1", s.port);
    let tls = common::tls_connect_async(&s.addr()).await.expect("TLS");
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls)
        .await
        .expect("connect");
    // The initial event, then the server closes the watch.
    let mut frames = 0;
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(m) if m.is_text() || m.is_binary() => frames += 1,
                Ok(m) if m.is_close() => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the watch must end after timeoutSeconds");
    assert_eq!(frames, 1);
}
