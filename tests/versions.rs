//! One resource served in several versions from one stored object:
//! `autoscaling/v1` and `autoscaling/v2` HorizontalPodAutoscalers. Covers what
//! [sig-api-machinery] Discovery should locate the groupVersion and a resource
//! within each APIGroup, and AggregatedDiscovery should support aggregated
//! discovery interface, expect of `autoscaling/v1`.

mod common;

use std::time::Duration;

use serde_json::json;

use common::{Server, raw_request, stream_get};

const V1: &str = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers";
const V2: &str = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpas_are_one_object_in_v1_and_v2() {
    let s = Server::start_apiserver(&[]);
    let group = raw_request(
        &s.addr(),
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
    let r = s.send_json("POST", V2, &hpa);
    assert_eq!(r.status, 201, "{}", r.body);

    let r = raw_request(
        &s.addr(),
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
    let r = s.send_json("PUT", &format!("{V1}/web"), &v1);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["spec"]["targetCPUUtilizationPercentage"], 60);
    let v2 = raw_request(
        &s.addr(),
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
    let list = raw_request(&s.addr(), "GET", V1, "application/json", b"").json();
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

/// [sig-instrumentation] Events API should ensure that an event can be
/// fetched, patched, deleted, and listed: an `events.k8s.io/v1` Event is the
/// core Event of the same name.
#[test]
fn events_are_one_object_in_both_groups() {
    let s = Server::start_apiserver(&[]);
    let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1"},
        "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
        "eventTime": "2017-09-19T13:49:16.000000Z", "note": "hello", "action": "Do",
        "reason": "Test", "type": "Normal", "reportingController": "test-controller",
        "reportingInstance": "test-node"});
    let r = s.send_json(
        "POST",
        "/apis/events.k8s.io/v1/namespaces/default/events",
        &ev,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let core = raw_request(
        &s.addr(),
        "GET",
        "/api/v1/namespaces/default/events?fieldSelector=source%3Dtest-controller",
        "application/json",
        b"",
    )
    .json();
    let item = &core["items"][0];
    assert_eq!(item["metadata"]["name"], "e1", "{core}");
    assert_eq!(item["message"], "hello");
    assert_eq!(item["involvedObject"]["name"], "p");
    assert_eq!(item["reportingComponent"], "test-controller");
    let again = raw_request(
        &s.addr(),
        "GET",
        "/apis/events.k8s.io/v1/namespaces/default/events/e1",
        "application/json",
        b"",
    )
    .json();
    assert_eq!(again["note"], "hello", "{again}");
    assert_eq!(again["regarding"]["name"], "p");
}
