//! End-to-end: the Endpoints, EndpointSlice and EndpointSlice mirroring
//! controllers against a real in-process API server, with kwok-style fake
//! nodes running the pods (and the ReplicaSet controller and garbage
//! collector where a test needs them).
//!
//! Covers the behaviour of these conformance tests:
//! - `[sig-network] EndpointSlice should create Endpoints and EndpointSlices
//!   for Pods matching a Service [Conformance]`
//!   ([`pods_matching_services_as_the_conformance_test_sees_them`], and
//!   [`pods_matching_a_service_get_endpoints_and_slices`] for readiness and
//!   scale-down);
//! - `[sig-network] EndpointSlice should create and delete Endpoints and
//!   EndpointSlices for a Service with a selector specified [Conformance]`,
//!   named in v1.35 `... should create and delete EndpointSlices for a
//!   Service with a selector that matches no pods [Conformance]`
//!   ([`a_service_matching_no_pods_gets_an_empty_slice`]);
//! - `[sig-network] EndpointSliceMirroring should mirror a custom Endpoints
//!   resource through create update and delete [Conformance]`
//!   ([`custom_endpoints_are_mirrored_through_create_update_and_delete`]).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Cluster, READY, TestResult, annotate, eventually, holds_for};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const SERVICE_NAME: &str = "kubernetes.io/service-name";
const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";

/// Runs the three endpoints controllers.
fn run_endpoints_controllers(cluster: &Cluster) {
    cluster.run(controllers::endpoints::run);
    cluster.run(controllers::endpointslice::run);
    cluster.run(controllers::endpointslicemirroring::run);
}

fn service(
    name: &str,
    selector: Option<serde_json::Value>,
    ports: serde_json::Value,
) -> TestResult<Service> {
    let mut spec = json!({"ports": ports});
    if let Some(sel) = selector {
        spec["selector"] = sel;
    }
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"team": "net"}},
        "spec": spec,
    }))?)
}

async fn slices_of(api: &Api<EndpointSlice>, service: &str) -> Vec<EndpointSlice> {
    api.list(&ListParams::default().labels(&format!("{SERVICE_NAME}={service}")))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

fn ips(list: &Option<Vec<EndpointAddress>>) -> Vec<String> {
    let mut v: Vec<String> = list.iter().flatten().map(|a| a.ip.clone()).collect();
    v.sort();
    v
}

/// (ready, not ready) addresses of all subsets.
fn addresses(ep: &Endpoints) -> (Vec<String>, Vec<String>) {
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    for s in ep.subsets.iter().flatten() {
        ready.extend(ips(&s.addresses));
        not_ready.extend(ips(&s.not_ready_addresses));
    }
    ready.sort();
    not_ready.sort();
    (ready, not_ready)
}

/// (ip, ready) of every endpoint of the slices, sorted.
fn slice_endpoints(slices: &[EndpointSlice]) -> Vec<(String, Option<bool>)> {
    let mut v: Vec<(String, Option<bool>)> = slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .map(|e| {
            (
                e.addresses.first().cloned().unwrap_or_default(),
                e.conditions.as_ref().and_then(|c| c.ready),
            )
        })
        .collect();
    v.sort();
    v
}

fn pod_ip(p: &Pod) -> Option<String> {
    p.status.as_ref()?.pod_ip.clone()
}

async fn running_pods(pods: &Api<Pod>, app: &str) -> Option<BTreeMap<String, String>> {
    let list = pods
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .ok()?;
    list.items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| Some((p.metadata.name.clone()?, pod_ip(p)?)))
        .collect()
}

/// Pods of a ReplicaSet behind a Service with a named target port: the
/// Endpoints and an EndpointSlice list their IPs with the resolved port;
/// a pod turning unready moves to `notReadyAddresses` and `ready: false`;
/// scaling down removes it; deleting the Service deletes both.
#[tokio::test]
async fn pods_matching_a_service_get_endpoints_and_slices() -> TestResult {
    let mut nodes = kubelet::fake::FakeNodeConfig::numbered("node", 2);
    nodes
        .labels
        .insert("topology.kubernetes.io/zone".into(), "zone-a".into());
    let cluster = Cluster::with_fake_node_config(nodes).await?;
    run_endpoints_controllers(&cluster);
    cluster.run(controllers::replicaset::run);
    cluster.run(controllers::garbagecollector::run);

    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1",
                    "ports": [{"name": "http", "containerPort": 8080}]}]}
            }
        }
    }))?;
    let replicasets: Api<ReplicaSet> = cluster.api();
    replicasets.create(&PostParams::default(), &rs).await?;
    let services: Api<Service> = cluster.api();
    let svc = services
        .create(
            &PostParams::default(),
            &service(
                "web",
                Some(json!({"app": "web"})),
                json!([{"name": "web", "port": 80, "targetPort": "http"}]),
            )?,
        )
        .await?;

    let pods: Api<Pod> = cluster.api();
    let running = eventually("two pods with IPs", || async {
        running_pods(&pods, "web").await.filter(|m| m.len() == 2)
    })
    .await;
    let mut all_ips: Vec<String> = running.values().cloned().collect();
    all_ips.sort();

    let endpoints: Api<Endpoints> = cluster.api();
    let ep = eventually("Endpoints with both pods ready", || async {
        let ep = endpoints.get_opt("web").await.ok()??;
        (addresses(&ep) == (all_ips.clone(), Vec::new())).then_some(ep)
    })
    .await;
    let labels = ep.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("team").map(String::as_str), Some("net"));
    assert_eq!(
        labels
            .get("endpoints.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("endpoint-controller")
    );
    assert!(
        ep.metadata.owner_references.is_none(),
        "Endpoints have no owner"
    );
    let subset = &ep.subsets.as_ref().expect("subsets")[0];
    let ports = subset.ports.as_ref().expect("ports");
    assert_eq!(ports.len(), 1);
    assert_eq!(
        (ports[0].name.as_deref(), ports[0].port),
        (Some("web"), 8080)
    );
    for addr in subset.addresses.iter().flatten() {
        let target = addr.target_ref.as_ref().expect("targetRef");
        assert_eq!(target.kind.as_deref(), Some("Pod"));
        let name = target.name.clone().unwrap_or_default();
        assert_eq!(
            running.get(&name),
            Some(&addr.ip),
            "targetRef names the pod"
        );
        assert!(
            addr.node_name
                .as_deref()
                .is_some_and(|n| n.starts_with("node-"))
        );
    }

    let slice_api: Api<EndpointSlice> = cluster.api();
    let want: Vec<(String, Option<bool>)> =
        all_ips.iter().map(|ip| (ip.clone(), Some(true))).collect();
    let slices = eventually("an EndpointSlice with both pods", || async {
        let slices = slices_of(&slice_api, "web").await;
        (slices.len() == 1 && slice_endpoints(&slices) == want).then_some(slices)
    })
    .await;
    let slice = &slices[0];
    assert_eq!(slice.address_type, "IPv4");
    let labels = slice.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get(MANAGED_BY).map(String::as_str),
        Some("endpointslice-controller.k8s.io")
    );
    assert_eq!(labels.get("team").map(String::as_str), Some("net"));
    assert_eq!(slice.metadata.generate_name.as_deref(), Some("web-"));
    let owner = &slice.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Service", "web")
    );
    assert_eq!(Some(owner.uid.clone()), svc.metadata.uid);
    assert_eq!(owner.controller, Some(true));
    let ports = slice.ports.as_ref().expect("slice ports");
    assert_eq!(
        (
            ports[0].name.as_deref(),
            ports[0].port,
            ports[0].protocol.as_deref()
        ),
        (Some("web"), Some(8080), Some("TCP"))
    );
    for e in &slice.endpoints {
        assert!(e.node_name.is_some() && e.target_ref.is_some());
        assert_eq!(
            e.zone.as_deref(),
            Some("zone-a"),
            "zone from the node's label"
        );
        let c = e.conditions.as_ref().expect("conditions");
        assert_eq!((c.serving, c.terminating), (Some(true), Some(false)));
    }

    // Nothing changes, nothing is written.
    let endpoints_rv = endpoints.get("web").await?.metadata.resource_version;
    let slice_rv = slice.metadata.resource_version.clone();
    holds_for(
        "no rewrites while nothing changes",
        Duration::from_secs(1),
        || async {
            let ep = endpoints.get("web").await.map_err(|e| e.to_string())?;
            let slices = slices_of(&slice_api, "web").await;
            let now = slices
                .first()
                .and_then(|s| s.metadata.resource_version.clone());
            if ep.metadata.resource_version != endpoints_rv || now != slice_rv {
                return Err("Endpoints or slice rewritten".into());
            }
            Ok(())
        },
    )
    .await;

    // One pod turns unready.
    let (unready_name, unready_ip) = running
        .iter()
        .next()
        .map(|(n, i)| (n.clone(), i.clone()))
        .expect("a pod");
    let ready_ip = all_ips
        .iter()
        .find(|ip| **ip != unready_ip)
        .cloned()
        .expect("other pod");
    annotate(&pods, &unready_name, &[(READY, "false")]).await?;
    eventually("the unready pod in notReadyAddresses", || async {
        let ep = endpoints.get_opt("web").await.ok()??;
        (addresses(&ep) == (vec![ready_ip.clone()], vec![unready_ip.clone()])).then_some(())
    })
    .await;
    let want = {
        let mut v = vec![
            (ready_ip.clone(), Some(true)),
            (unready_ip.clone(), Some(false)),
        ];
        v.sort();
        v
    };
    eventually("the unready pod ready: false in the slice", || async {
        let slices = slices_of(&slice_api, "web").await;
        (slice_endpoints(&slices) == want).then_some(())
    })
    .await;

    // Scale down: the unready pod goes first, and leaves both.
    replicasets
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 1}})),
        )
        .await?;
    eventually("Endpoints with the remaining pod", || async {
        let ep = endpoints.get_opt("web").await.ok()??;
        (addresses(&ep) == (vec![ready_ip.clone()], Vec::new())).then_some(())
    })
    .await;
    eventually("the slice with the remaining pod", || async {
        let slices = slices_of(&slice_api, "web").await;
        (slice_endpoints(&slices) == vec![(ready_ip.clone(), Some(true))]).then_some(())
    })
    .await;

    services.delete("web", &DeleteParams::default()).await?;
    eventually("Endpoints and slices deleted with the Service", || async {
        let ep = endpoints.get_opt("web").await.ok()?;
        (ep.is_none() && slices_of(&slice_api, "web").await.is_empty()).then_some(())
    })
    .await;
    Ok(())
}

fn bare_pod(name: &str, labels: &[&str], ports: serde_json::Value) -> TestResult<Pod> {
    let labels: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|l| (l.to_string(), json!("on")))
        .collect();
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "container1", "image": "nginx:1", "ports": ports}]}
    }))?)
}

/// The conformance test's shape: bare pods, a Service with a numeric target
/// port selecting one pod, one with a named target port resolving to a
/// different number on each of two pods (two subsets, two slices), one
/// matching nothing (no subsets, one slice without ports); the slices of a
/// Service deleted by hand come back.
#[tokio::test]
async fn pods_matching_services_as_the_conformance_test_sees_them() -> TestResult {
    let cluster = Cluster::with_fake_nodes(1).await?;
    run_endpoints_controllers(&cluster);
    let pods: Api<Pod> = cluster.api();
    pods.create(
        &PostParams::default(),
        &bare_pod(
            "pod1",
            &["pod1", "shared12"],
            json!([{"name": "example-name", "containerPort": 3000}]),
        )?,
    )
    .await?;
    pods.create(
        &PostParams::default(),
        &bare_pod(
            "pod2",
            &["pod2", "shared12"],
            json!([{"name": "example-name", "containerPort": 3001}, {"name": "other-port", "containerPort": 3002}]),
        )?,
    )
    .await?;
    let services: Api<Service> = cluster.api();
    let make = |name: &str,
                sel: &str,
                port_name: &str,
                target: serde_json::Value|
     -> TestResult<Service> {
        Ok(serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"selector": {sel: "on"}, "publishNotReadyAddresses": true,
                     "ports": [{"name": port_name, "port": 80, "targetPort": target, "protocol": "TCP"}]}
        }))?)
    };
    services
        .create(
            &PostParams::default(),
            &make("example-int-port", "pod1", "example", json!(3000))?,
        )
        .await?;
    services
        .create(
            &PostParams::default(),
            &make(
                "example-named-port",
                "shared12",
                "http",
                json!("example-name"),
            )?,
        )
        .await?;
    services
        .create(
            &PostParams::default(),
            &make("example-no-match", "pod3", "example-no-match", json!(8080))?,
        )
        .await?;
    let running = eventually("both pods with IPs", || async {
        let list = pods.list(&ListParams::default()).await.ok()?;
        let m: BTreeMap<String, String> = list
            .items
            .iter()
            .filter_map(|p| Some((pod_ip(p)?, p.metadata.name.clone()?)))
            .collect();
        (m.len() == 2).then_some(m)
    })
    .await;
    let endpoints: Api<Endpoints> = cluster.api();
    let slice_api: Api<EndpointSlice> = cluster.api();

    // (subsets, addresses) of the Endpoints; (slices, endpoints, ports per slice) of the slices.
    let shape = |name: &'static str| {
        let endpoints = endpoints.clone();
        let slice_api = slice_api.clone();
        async move {
            let ep = endpoints.get_opt(name).await.ok()??;
            let subsets = ep.subsets.clone().unwrap_or_default();
            let (ready, not_ready) = addresses(&ep);
            let slices = slices_of(&slice_api, name).await;
            Some((subsets, ready.len() + not_ready.len(), slices))
        }
    };
    let (subsets, n, slices) = eventually("example-int-port", || async {
        shape("example-int-port")
            .await
            .filter(|(s, n, sl)| s.len() == 1 && *n == 1 && slice_endpoints(sl).len() == 1)
    })
    .await;
    assert_eq!(subsets[0].ports.as_ref().map(|p| p[0].port), Some(3000));
    assert_eq!(n, 1);
    let ports = slices[0].ports.clone().unwrap_or_default();
    assert_eq!(
        (ports[0].name.as_deref(), ports[0].port),
        (Some("example"), Some(3000))
    );

    let check_named = |subsets: &[k8s_openapi::api::core::v1::EndpointSubset],
                       slices: &[EndpointSlice]| {
        for s in subsets {
            let port = s.ports.as_ref().expect("ports")[0].clone();
            assert_eq!(port.name.as_deref(), Some("http"));
            for a in s.addresses.iter().flatten() {
                let pod = &running[&a.ip];
                let want = if pod == "pod1" { 3000 } else { 3001 };
                assert_eq!(port.port, want, "{pod}'s named port");
                assert_eq!(
                    a.target_ref.as_ref().and_then(|r| r.name.as_ref()),
                    Some(pod)
                );
            }
        }
        for sl in slices {
            let port = sl.ports.as_ref().expect("slice ports")[0].clone();
            for e in &sl.endpoints {
                let pod = &running[&e.addresses[0]];
                let want = if pod == "pod1" { 3000 } else { 3001 };
                assert_eq!(port.port, Some(want), "{pod}'s named port in its slice");
            }
        }
    };
    let (subsets, _, slices) =
        eventually("example-named-port: two subsets, two slices", || async {
            shape("example-named-port").await.filter(|(s, n, sl)| {
                s.len() == 2 && *n == 2 && sl.len() == 2 && slice_endpoints(sl).len() == 2
            })
        })
        .await;
    check_named(&subsets, &slices);

    let (_, _, slices) = eventually("example-no-match: no subsets, one slice", || async {
        shape("example-no-match")
            .await
            .filter(|(s, n, sl)| s.is_empty() && *n == 0 && sl.len() == 1)
    })
    .await;
    assert!(slices[0].endpoints.is_empty());
    assert!(
        slices[0].ports.as_ref().is_none_or(Vec::is_empty),
        "no ports without pods"
    );

    for slice in slices_of(&slice_api, "example-named-port").await {
        slice_api
            .delete(
                &slice.metadata.name.unwrap_or_default(),
                &DeleteParams::default(),
            )
            .await?;
    }
    let (subsets, _, slices) = eventually("example-named-port's slices recreated", || async {
        shape("example-named-port")
            .await
            .filter(|(_, _, sl)| sl.len() == 2 && slice_endpoints(sl).len() == 2)
    })
    .await;
    check_named(&subsets, &slices);
    Ok(())
}

/// A Service whose selector matches nothing gets empty Endpoints and one
/// empty placeholder slice; deleting the Service deletes them.
#[tokio::test]
async fn a_service_matching_no_pods_gets_an_empty_slice() -> TestResult {
    let cluster = Cluster::start().await?;
    run_endpoints_controllers(&cluster);
    cluster.run(controllers::garbagecollector::run);
    let services: Api<Service> = cluster.api();
    services
        .create(
            &PostParams::default(),
            &service(
                "empty",
                Some(json!({"app": "nothing"})),
                json!([{"port": 80}]),
            )?,
        )
        .await?;
    let endpoints: Api<Endpoints> = cluster.api();
    let slice_api: Api<EndpointSlice> = cluster.api();
    eventually("empty Endpoints and one empty slice", || async {
        let ep = endpoints.get_opt("empty").await.ok()??;
        let slices = slices_of(&slice_api, "empty").await;
        (ep.subsets.as_ref().is_none_or(Vec::is_empty)
            && slices.len() == 1
            && slices[0].endpoints.is_empty())
        .then_some(())
    })
    .await;
    services.delete("empty", &DeleteParams::default()).await?;
    eventually("both deleted with the Service", || async {
        let ep = endpoints.get_opt("empty").await.ok()?;
        (ep.is_none() && slices_of(&slice_api, "empty").await.is_empty()).then_some(())
    })
    .await;
    Ok(())
}

fn custom_endpoints(name: &str, ip: &str, port: i32) -> TestResult<Endpoints> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"origin": "hand"}},
        "subsets": [{
            "addresses": [{"ip": ip}],
            "ports": [{"name": "example", "port": port, "protocol": "TCP"}]
        }]
    }))?)
}

/// (ip, port) of a mirrored slice, if there is exactly one.
fn mirrored(slices: &[EndpointSlice]) -> Option<(String, i32)> {
    let [slice] = slices else { return None };
    let labels = slice.metadata.labels.as_ref()?;
    if labels.get(MANAGED_BY).map(String::as_str)
        != Some("endpointslicemirroring-controller.k8s.io")
        || labels.get("origin").map(String::as_str) != Some("hand")
    {
        return None;
    }
    let [ep] = slice.endpoints.as_slice() else {
        return None;
    };
    let port = slice.ports.as_ref()?.first()?.port?;
    Some((ep.addresses.first()?.clone(), port))
}

/// A selector-less Service's hand-written Endpoints are mirrored into a
/// slice that follows their updates and goes when they are deleted; the
/// Endpoints controller leaves them alone; Endpoints labelled skip-mirror
/// are not mirrored.
#[tokio::test]
async fn custom_endpoints_are_mirrored_through_create_update_and_delete() -> TestResult {
    let cluster = Cluster::start().await?;
    run_endpoints_controllers(&cluster);
    let services: Api<Service> = cluster.api();
    services
        .create(
            &PostParams::default(),
            &service("custom", None, json!([{"name": "example", "port": 80}]))?,
        )
        .await?;
    let endpoints: Api<Endpoints> = cluster.api();
    endpoints
        .create(
            &PostParams::default(),
            &custom_endpoints("custom", "10.1.2.3", 8080)?,
        )
        .await?;
    let slice_api: Api<EndpointSlice> = cluster.api();
    let slice = eventually("a mirrored slice", || async {
        let slices = slices_of(&slice_api, "custom").await;
        (mirrored(&slices) == Some(("10.1.2.3".into(), 8080))).then(|| slices[0].clone())
    })
    .await;
    let owner = &slice.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Service", "custom")
    );

    let mut ep = endpoints.get("custom").await?;
    ep.subsets = custom_endpoints("custom", "10.2.3.4", 8081)?.subsets;
    endpoints
        .replace("custom", &PostParams::default(), &ep)
        .await?;
    eventually("the mirrored slice updated", || async {
        let slices = slices_of(&slice_api, "custom").await;
        (mirrored(&slices) == Some(("10.2.3.4".into(), 8081))).then_some(())
    })
    .await;
    let ep = endpoints.get("custom").await?;
    assert!(
        !ep.metadata
            .labels
            .unwrap_or_default()
            .contains_key("endpoints.kubernetes.io/managed-by"),
        "the Endpoints controller leaves hand-written Endpoints alone"
    );

    endpoints.delete("custom", &DeleteParams::default()).await?;
    eventually("the mirrored slice deleted", || async {
        slices_of(&slice_api, "custom")
            .await
            .is_empty()
            .then_some(())
    })
    .await;

    // Endpoints that opt out are not mirrored.
    services
        .create(
            &PostParams::default(),
            &service("skipped", None, json!([{"port": 80}]))?,
        )
        .await?;
    let mut skipped = custom_endpoints("skipped", "10.9.9.9", 80)?;
    skipped.metadata.labels = Some(BTreeMap::from([(
        "endpointslice.kubernetes.io/skip-mirror".to_string(),
        "true".to_string(),
    )]));
    endpoints.create(&PostParams::default(), &skipped).await?;
    holds_for(
        "no slice for skip-mirror Endpoints",
        Duration::from_secs(2),
        || async {
            let n = slices_of(&slice_api, "skipped").await.len();
            if n == 0 {
                Ok(())
            } else {
                Err(format!("{n} slices"))
            }
        },
    )
    .await;
    Ok(())
}

/// The API server's own `default/kubernetes` Endpoints and slice are never
/// written by the controllers.
#[tokio::test]
async fn default_kubernetes_is_left_alone() -> TestResult {
    let cluster = Cluster::start().await?;
    let endpoints: Api<Endpoints> = Api::namespaced(cluster.client.clone(), "default");
    let slice_api: Api<EndpointSlice> = Api::namespaced(cluster.client.clone(), "default");
    let before = eventually("the API server's Endpoints", || async {
        endpoints.get_opt("kubernetes").await.ok()?
    })
    .await;
    let slices_before = slices_of(&slice_api, "kubernetes").await;
    run_endpoints_controllers(&cluster);
    holds_for(
        "default/kubernetes untouched",
        Duration::from_secs(3),
        || async {
            let now = endpoints
                .get("kubernetes")
                .await
                .map_err(|e| e.to_string())?;
            if now.metadata.resource_version != before.metadata.resource_version {
                return Err(format!("Endpoints rewritten: {now:?}"));
            }
            let slices = slices_of(&slice_api, "kubernetes").await;
            let rvs = |s: &[EndpointSlice]| -> Vec<Option<String>> {
                s.iter()
                    .map(|x| x.metadata.resource_version.clone())
                    .collect()
            };
            if rvs(&slices) != rvs(&slices_before) {
                return Err(format!("slices changed: {slices:?}"));
            }
            Ok(())
        },
    )
    .await;
    Ok(())
}
