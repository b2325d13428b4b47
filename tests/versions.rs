//! One resource served in several versions from one stored object:
//! `autoscaling/v1` and `autoscaling/v2` HorizontalPodAutoscalers. Covers what
//! [sig-api-machinery] Discovery should locate the groupVersion and a resource
//! within each APIGroup, and AggregatedDiscovery should support aggregated
//! discovery interface, expect of `autoscaling/v1`.

mod common;

use std::time::Duration;

use serde_json::{Value, json};

use common::{Server, raw_request, stream_get};

fn addr(s: &Server) -> String {
    format!("127.0.0.1:{}", s.port)
}

fn send(s: &Server, method: &str, path: &str, body: &Value) -> common::RawResponse {
    raw_request(
        &addr(s),
        method,
        path,
        "application/json",
        body.to_string().as_bytes(),
    )
}

const V1: &str = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers";
const V2: &str = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpas_are_one_object_in_v1_and_v2() {
    let s = Server::start_apiserver(&[]);
    let group = raw_request(
        &addr(&s),
        "GET",
        "/apis/autoscaling",
        "application/json",
        b"",
    )
    .json();
    assert_eq!(group["preferredVersion"]["version"], "v2", "{group}");
    assert_eq!(group["versions"][1]["version"], "v1", "{group}");

    let memory = json!({"type": "Resource", "resource": {"name": "memory",
        "target": {"type": "AverageValue", "averageValue": "100Mi"}}});
    let hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 4, "metrics": [memory]}});
    let r = send(&s, "POST", V2, &hpa);
    assert_eq!(r.status, 201, "{}", r.body);

    let r = raw_request(
        &addr(&s),
        "GET",
        &format!("{V1}/web"),
        "application/json",
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let mut v1 = r.json();
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["maxReplicas"], 4);
    assert!(v1["spec"].get("metrics").is_none());

    // A v1 client sets a CPU target; the v2 metric it cannot see is kept.
    v1["spec"]["targetCPUUtilizationPercentage"] = json!(60);
    let r = send(&s, "PUT", &format!("{V1}/web"), &v1);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["spec"]["targetCPUUtilizationPercentage"], 60);
    let v2 = raw_request(
        &addr(&s),
        "GET",
        &format!("{V2}/web"),
        "application/json",
        b"",
    )
    .json();
    assert_eq!(v2["apiVersion"], "autoscaling/v2");
    assert_eq!(
        v2["spec"]["metrics"],
        json!([memory, {"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 60}}}]),
        "{v2}"
    );
    assert!(v2["metadata"].get("annotations").is_none(), "{v2}");

    // Lists and watches speak the version asked for.
    let list = raw_request(&addr(&s), "GET", V1, "application/json", b"").json();
    assert_eq!(
        list["items"][0]["spec"]["targetCPUUtilizationPercentage"],
        60
    );
    let client = s.client().await;
    let mut events = stream_get(
        &client,
        &format!("{V1}?watch=true&resourceVersion=0"),
        "application/json",
    )
    .await;
    let first = events
        .next(Duration::from_secs(10))
        .await
        .expect("an event");
    assert_eq!(first["object"]["apiVersion"], "autoscaling/v1", "{first}");
}
