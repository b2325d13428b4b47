//! The `kube` crate works unchanged: typed and dynamic APIs, watches and
//! `kube::runtime::watcher`.

mod common;

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::{ApiResource, Discovery};
use kube::runtime::watcher;

use common::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_dynamic_and_runtime_watcher() {
    let server = Server::start();
    let client = server.client().await;

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "kp", "labels": {"app": "k"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}
    }))
    .expect("pod");
    let created = pods
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    assert_eq!(
        created.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Pending")
    );
    let listed = pods
        .list(&ListParams::default().labels("app=k"))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "kd"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))
    .expect("deployment");
    let d = deployments
        .create(&PostParams::default(), &d)
        .await
        .expect("create deployment");
    assert_eq!(
        d.spec.as_ref().and_then(|s| s.replicas),
        Some(1),
        "replicas defaulted"
    );
    assert_eq!(d.metadata.generation, Some(1));

    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let (cm_resource, caps) = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(r, _)| r.kind == "ConfigMap")
        .expect("configmaps discovered");
    assert!(caps.supports_operation(kube::discovery::verbs::WATCH));
    let dynamic: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &cm_resource);
    let obj: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dyn"}, "data": {"x": "y"}
    }))
    .expect("dynamic");
    dynamic
        .create(&PostParams::default(), &obj)
        .await
        .expect("create dynamic");
    let got = dynamic.get("dyn").await.expect("get dynamic");
    assert_eq!(got.data["data"]["x"], "y");
    let ar = ApiResource::erase::<Deployment>(&());
    let dyn_deploy: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    assert_eq!(
        dyn_deploy
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );

    // kube::runtime::watcher sees the initial state, then a new object and a deletion.
    let stream = watcher(pods.clone(), watcher::Config::default()).boxed();
    let mut stream = stream;
    let mut saw_init = false;
    let mut saw_new = false;
    let mut saw_delete = false;
    let mut created_second = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !(saw_init && saw_new && saw_delete) {
        let ev = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("watcher event in time")
            .expect("stream open")
            .expect("watcher ok");
        match ev {
            watcher::Event::InitDone => {
                saw_init = true;
                if !created_second {
                    created_second = true;
                    let mut p2 = pod.clone();
                    p2.metadata.name = Some("kp2".into());
                    pods.create(&PostParams::default(), &p2)
                        .await
                        .expect("create kp2");
                }
            }
            // kp2 is applied again when its deletion is recorded: delete it once.
            watcher::Event::Apply(p) if p.metadata.name.as_deref() == Some("kp2") && !saw_new => {
                saw_new = true;
                pods.delete("kp2", &DeleteParams::default())
                    .await
                    .expect("delete kp2");
            }
            watcher::Event::Delete(p) if p.metadata.name.as_deref() == Some("kp2") => {
                saw_delete = true
            }
            _ => {}
        }
    }
}
