//! Plain JSON lists are written from the stored bytes (no decoded object per
//! item); they must be the same lists, item for item, as the decoded path
//! writes (which selectors force), in one page or many, from the newest
//! state or from the watch cache (`resourceVersion=0`).

mod common;

use common::Server;
use serde_json::{Value, json};

fn get(server: &Server, path: &str) -> Value {
    let resp = server.send_json("GET", path, &Value::Null);
    assert_eq!(resp.status, 200, "{path}: {}", resp.body);
    resp.json()
}

/// Every page of a list, following `continue`.
fn pages(server: &Server, path: &str, limit: usize) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let page = get(
            server,
            &format!("{path}{sep}limit={limit}&continue={token}"),
        );
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["metadata"]["continue"].as_str() {
            Some(t) if !t.is_empty() => token = t.to_string(),
            _ => return items,
        }
    }
}

#[test]
fn stored_and_decoded_lists_agree() {
    let server = Server::start();
    for i in 0..30 {
        let cm = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": format!("cm-{i:02}"),
                "labels": {"app": "demo", "n": i.to_string()},
                "annotations": {"quote": "say \"hi\"\n\ttab \u{e9}\u{1F600}"},
            },
            "data": {"k": format!("line {i}\nnext \\ back")},
            "binaryData": {"b": "AAEC"},
        });
        let resp = server.send_json("POST", "/api/v1/namespaces/default/configmaps", &cm);
        assert_eq!(resp.status, 201, "{}", resp.body);
    }
    let update = json!({"metadata": {"labels": {"changed": "yes"}}});
    let resp = common::raw_request(
        &server.addr(),
        "PATCH",
        "/api/v1/namespaces/default/configmaps/cm-03",
        "application/merge-patch+json",
        update.to_string().as_bytes(),
    );
    assert_eq!(resp.status, 200, "{}", resp.body);

    let path = "/api/v1/namespaces/default/configmaps";
    let stored = get(&server, path);
    // A selector every object matches takes the decoded path.
    let decoded = get(&server, &format!("{path}?labelSelector=%21absent"));
    assert_eq!(stored["kind"], "ConfigMapList");
    assert_eq!(stored["apiVersion"], "v1");
    assert!(stored["metadata"]["resourceVersion"].is_string());
    let items = stored["items"].as_array().expect("items");
    let ours: Vec<&Value> = items
        .iter()
        .filter(|i| i["metadata"]["labels"]["app"] == "demo")
        .collect();
    assert_eq!(ours.len(), 30);
    assert_eq!(stored["items"], decoded["items"]);
    for item in items {
        assert!(item.get("kind").is_none() && item.get("apiVersion").is_none());
        let name = item["metadata"]["name"].as_str().expect("name");
        let one = get(&server, &format!("{path}/{name}"));
        assert_eq!(item["metadata"], one["metadata"], "{name}");
        assert_eq!(item["data"], one["data"]);
    }
    assert_eq!(
        ours[3]["metadata"]["labels"]["changed"], "yes",
        "the newest version is listed"
    );

    // Pages, and the cache's answer to resourceVersion=0, hold the same items.
    assert_eq!(Value::Array(pages(&server, path, 7)), stored["items"]);
    let cached = get(&server, &format!("{path}?resourceVersion=0"));
    assert_eq!(cached["items"], stored["items"]);

    // Cluster-scoped resources too.
    let namespaces = get(&server, "/api/v1/namespaces");
    let decoded = get(
        &server,
        "/api/v1/namespaces?fieldSelector=metadata.name%21%3Dnone",
    );
    assert_eq!(namespaces["items"], decoded["items"]);
    assert!(namespaces["items"].as_array().is_some_and(|a| a.len() >= 3));
}
