//! Watch integrity under concurrency, and durability across `kill -9`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};

use common::Server;

const OBJECTS: usize = 50;
const UPDATES_PER_OBJECT: usize = 20;
const WATCHERS: usize = 10;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "data": {"n": "0"}}))
        .expect("configmap")
}

fn rv_of(cm: &ConfigMap) -> u64 {
    cm.metadata
        .resource_version
        .as_deref()
        .and_then(|r| r.parse().ok())
        .expect("numeric resourceVersion")
}

/// Collects MODIFIED events (rv, name, n) until `count` arrived.
async fn collect(api: Api<ConfigMap>, from: String, count: usize) -> Vec<(u64, String, String)> {
    let wp = WatchParams::default().timeout(290);
    let stream = api.watch(&wp, &from).await.expect("watch");
    let mut stream = std::pin::pin!(stream);
    let mut out = Vec::new();
    while out.len() < count {
        let ev = tokio::time::timeout(Duration::from_secs(120), stream.try_next())
            .await
            .expect("event before the deadline")
            .expect("watch stream ok")
            .expect("stream open");
        match ev {
            WatchEvent::Modified(cm) => {
                let n = cm
                    .data
                    .as_ref()
                    .and_then(|d| d.get("n"))
                    .cloned()
                    .unwrap_or_default();
                out.push((rv_of(&cm), cm.metadata.name.clone().unwrap_or_default(), n));
            }
            WatchEvent::Added(_) | WatchEvent::Deleted(_) | WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_watchers_see_every_concurrent_update_once_in_order() {
    let server = Server::start_apiserver(&[]);
    let client = server.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..OBJECTS {
        api.create(&PostParams::default(), &cm(&format!("w{i}")))
            .await
            .expect("create");
    }
    let start = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("list rv");
    let total = OBJECTS * UPDATES_PER_OBJECT;
    let watchers: Vec<_> = (0..WATCHERS)
        .map(|_| tokio::spawn(collect(api.clone(), start.clone(), total)))
        .collect();
    let writers: Vec<_> = (0..OBJECTS)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move {
                for n in 1..=UPDATES_PER_OBJECT {
                    let patch = serde_json::json!({"data": {"n": n.to_string()}});
                    api.patch(
                        &format!("w{i}"),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await
                    .expect("patch");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    let mut seen = Vec::new();
    for w in watchers {
        seen.push(w.await.expect("watcher"));
    }
    let reference = &seen[0];
    assert_eq!(reference.len(), total);
    assert!(
        reference.windows(2).all(|p| p[0].0 < p[1].0),
        "events out of resourceVersion order or duplicated"
    );
    let mut per_object: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (_, name, n) in reference {
        per_object
            .entry(name.as_str())
            .or_default()
            .push(n.as_str());
    }
    assert_eq!(per_object.len(), OBJECTS);
    for values in per_object.values() {
        let want: Vec<String> = (1..=UPDATES_PER_OBJECT).map(|n| n.to_string()).collect();
        assert_eq!(
            values.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            want,
            "an object's updates were lost or reordered"
        );
    }
    for other in &seen[1..] {
        assert_eq!(other, reference, "watchers disagree");
    }
    // Restarting from any observed resourceVersion resumes with no gap and no duplicate.
    for cut in [0usize, 1, 137, 500, 998] {
        let from = reference[cut].0.to_string();
        let rest = collect(api.clone(), from, total - cut - 1).await;
        assert_eq!(
            rest.as_slice(),
            &reference[cut + 1..],
            "resume from event {cut}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_kill_9() {
    let mut server = Server::start_apiserver(&[]);
    let client = server.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let created: Vec<ConfigMap> = futures::stream::iter(0..1000)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &cm(&format!("d{i:04}")))
                    .await
                    .expect("create")
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let before: BTreeMap<String, u64> = created
        .iter()
        .map(|c| (c.metadata.name.clone().unwrap_or_default(), rv_of(c)))
        .collect();
    assert_eq!(before.len(), 1000);
    server.kill9();
    server.spawn();
    let client = server.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let after: BTreeMap<String, u64> = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(|c| (c.metadata.name.clone().unwrap_or_default(), rv_of(c)))
        .collect();
    assert_eq!(
        after, before,
        "objects or resourceVersions changed across kill -9"
    );
    let max = before.values().max().copied().unwrap_or(0);
    let next = api
        .create(&PostParams::default(), &cm("after-restart"))
        .await
        .expect("create");
    assert!(
        rv_of(&next) > max,
        "resourceVersion went backwards after restart"
    );
}
