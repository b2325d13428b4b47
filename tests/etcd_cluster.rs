//! Several API servers on one etcd, and faults: a killed API server, a killed etcd.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use parking_lot::Mutex;

use common::{Etcd, Server, poll_async};

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).expect("configmap")
}

fn rv(c: &ConfigMap) -> u64 {
    c.metadata
        .resource_version
        .as_deref()
        .and_then(|r| r.parse().ok())
        .expect("rv")
}

/// Collects ADDED/MODIFIED resourceVersions of a watch until `stop`.
fn spawn_watcher(
    api: Api<ConfigMap>,
    from: String,
    seen: Arc<Mutex<Vec<(u64, String)>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let stream = api
            .watch(&WatchParams::default().timeout(290), &from)
            .await
            .expect("watch");
        let mut stream = std::pin::pin!(stream);
        while let Ok(Some(ev)) = stream.try_next().await {
            if let WatchEvent::Added(c) | WatchEvent::Modified(c) = ev {
                seen.lock()
                    .push((rv(&c), c.metadata.name.clone().unwrap_or_default()));
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_api_servers_on_one_etcd_act_as_one_cluster() {
    let etcd = Etcd::start();
    let flags = ["--etcd-servers", &etcd.url()];
    let env = [("IRONKUBE_LEASE_DURATION_SECONDS", "3")];
    let mut a = Server::start_with_env(&flags, &env);
    let b = Server::start_with_env(&flags, &env);
    let api_a: Api<ConfigMap> = Api::namespaced(a.client().await, "default");
    let api_b: Api<ConfigMap> = Api::namespaced(b.client().await, "default");

    // A write through one server is seen by a watch on the other, and by its reads at once.
    let start = common::list_rv(&api_b).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let watcher = spawn_watcher(api_b.clone(), start, seen.clone());
    let mut written = Vec::new();
    for i in 0..50 {
        let created = api_a
            .create(&PostParams::default(), &cm(&format!("x{i}")))
            .await
            .expect("create on A");
        let read = api_b
            .get(&format!("x{i}"))
            .await
            .expect("a write acknowledged by A is readable on B");
        assert_eq!(rv(&read), rv(&created));
        written.push((rv(&created), format!("x{i}")));
    }
    // Only the test's own objects: the root-CA publisher may write the
    // namespace's kube-root-ca.crt meanwhile.
    let ours = || -> Vec<(u64, String)> {
        seen.lock()
            .iter()
            .filter(|(_, name)| name.starts_with('x'))
            .cloned()
            .collect()
    };
    poll_async(
        "B's watch to see A's writes",
        Duration::from_secs(30),
        || async { (ours().len() >= 50).then_some(()) },
    )
    .await;
    assert_eq!(ours(), written);
    watcher.abort();

    // One controller manager is elected through the Lease.
    let leases: Api<Lease> = Api::namespaced(b.client().await, "kube-system");
    let holder = poll_async("a lease holder", Duration::from_secs(30), || async {
        leases
            .get(controllers::LEASE_NAME)
            .await
            .ok()
            .and_then(|l| l.spec?.holder_identity)
    })
    .await;
    assert!(!holder.is_empty());

    // Kill A under load: B's clients keep working, and a leader keeps renewing.
    let stop = Arc::new(AtomicBool::new(false));
    let b_ok = Arc::new(AtomicUsize::new(0));
    let b_err = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for w in 0..4 {
        let (api, halt, ok, err) = (api_b.clone(), stop.clone(), b_ok.clone(), b_err.clone());
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while !halt.load(Ordering::Relaxed) {
                match api
                    .create(&PostParams::default(), &cm(&format!("load-{w}-{i}")))
                    .await
                {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(_) => err.fetch_add(1, Ordering::Relaxed),
                };
                i += 1;
            }
        }));
        let api = api_a.clone();
        let halt = stop.clone();
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while !halt.load(Ordering::Relaxed) {
                let _ = api
                    .create(&PostParams::default(), &cm(&format!("a-load-{w}-{i}")))
                    .await;
                i += 1;
            }
        }));
    }
    poll_async("load on B", Duration::from_secs(30), || async {
        (b_ok.load(Ordering::Relaxed) > 50).then_some(())
    })
    .await;
    a.kill9();
    let after_kill = b_ok.load(Ordering::Relaxed);
    poll_async(
        "B to keep serving after A died",
        Duration::from_secs(30),
        || async { (b_ok.load(Ordering::Relaxed) > after_kill + 200).then_some(()) },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for t in load {
        let _ = t.await;
    }
    assert_eq!(
        b_err.load(Ordering::Relaxed),
        0,
        "B's clients saw errors when A died"
    );

    // The surviving process leads: the lease keeps being renewed and controllers act.
    let renewed = |l: &Lease| {
        l.spec
            .as_ref()
            .and_then(|s| s.renew_time.clone())
            .map(|t| t.0)
    };
    let first = poll_async("lease", Duration::from_secs(5), || async {
        leases
            .get(controllers::LEASE_NAME)
            .await
            .ok()
            .and_then(|l| renewed(&l))
    })
    .await;
    poll_async(
        "a live leader renewing the lease",
        Duration::from_secs(30),
        || async {
            let l = leases.get(controllers::LEASE_NAME).await.ok()?;
            (renewed(&l)? > first).then_some(())
        },
    )
    .await;
    let namespaces: Api<Namespace> = Api::all(b.client().await);
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "failover"}})).expect("ns");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create ns");
    namespaces
        .delete("failover", &DeleteParams::default())
        .await
        .expect("delete ns");
    poll_async(
        "the elected namespace controller to finalize the namespace",
        Duration::from_secs(60),
        || async {
            matches!(namespaces.get("failover").await, Err(kube::Error::Api(e)) if e.code == 404)
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_etcd_under_write_load_loses_nothing() {
    let mut etcd = Etcd::start();
    let server = Server::start_with(&["--etcd-servers", &etcd.url()]);
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    let start = common::list_rv(&api).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let watcher = spawn_watcher(api.clone(), start, seen.clone());
    let acked = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (api, acked, stop) = (api.clone(), acked.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("w{w}-{i}");
                match api.create(&PostParams::default(), &cm(&name)).await {
                    Ok(c) => {
                        acked.lock().insert(name, rv(&c));
                        i += 1;
                    }
                    Err(kube::Error::Api(e)) if e.code == 409 => i += 1,
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }
    poll_async(
        "writes before the crash",
        Duration::from_secs(30),
        || async { (acked.lock().len() > 100).then_some(()) },
    )
    .await;
    etcd.kill9();
    let at_crash = acked.lock().len();
    etcd.spawn();
    poll_async(
        "writes after etcd restarted",
        Duration::from_secs(60),
        || async { (acked.lock().len() > at_crash + 100).then_some(()) },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().clone();
    let stored: BTreeMap<String, u64> = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(|c| (c.metadata.name.clone().unwrap_or_default(), rv(c)))
        .collect();
    for (name, rv) in &acked {
        assert_eq!(
            stored.get(name),
            Some(rv),
            "acknowledged write {name} lost or changed"
        );
    }
    let wanted: BTreeSet<u64> = acked.values().copied().collect();
    poll_async(
        "the watcher to see every acknowledged write",
        Duration::from_secs(60),
        || async {
            let got: BTreeSet<u64> = seen.lock().iter().map(|(r, _)| *r).collect();
            wanted.is_subset(&got).then_some(())
        },
    )
    .await;
    let events = seen.lock().clone();
    assert!(
        events.windows(2).all(|p| p[0].0 < p[1].0),
        "watch events repeated or out of order"
    );
    watcher.abort();
}
