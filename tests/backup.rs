//! Backup and restore of both backends under write load, checked object by object
//! against the state at the snapshot's revision; migration from the embedded
//! store to etcd.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use parking_lot::Mutex;

use common::{Etcd, Server, ironkube, poll_async};

type Data = Option<BTreeMap<String, String>>;
type State = BTreeMap<String, (u64, Data)>;
type Change = (u64, String, Option<ConfigMap>);

fn rv(c: &ConfigMap) -> u64 {
    c.metadata
        .resource_version
        .as_deref()
        .and_then(|r| r.parse().ok())
        .expect("rv")
}

fn entry(c: &ConfigMap) -> (String, (u64, Data)) {
    (
        c.metadata.name.clone().unwrap_or_default(),
        (rv(c), c.data.clone()),
    )
}

/// Every change to ConfigMaps in `default`, in order: (rv, name, object or None if deleted).
type Log = Arc<Mutex<Vec<Change>>>;

async fn record(api: Api<ConfigMap>, from: String, log: Log) {
    let stream = api
        .watch(&WatchParams::default().timeout(290), &from)
        .await
        .expect("watch");
    let mut stream = std::pin::pin!(stream);
    while let Ok(Some(ev)) = stream.try_next().await {
        match ev {
            WatchEvent::Added(c) | WatchEvent::Modified(c) => {
                log.lock()
                    .push((rv(&c), c.metadata.name.clone().unwrap_or_default(), Some(c)))
            }
            WatchEvent::Deleted(c) => {
                log.lock()
                    .push((rv(&c), c.metadata.name.clone().unwrap_or_default(), None))
            }
            _ => {}
        }
    }
}

fn state_at(initial: &State, log: &[Change], revision: u64) -> State {
    let mut state = initial.clone();
    for (rv, name, obj) in log.iter().filter(|(rv, _, _)| *rv <= revision) {
        match obj {
            Some(c) => {
                state.insert(name.clone(), (*rv, c.data.clone()));
            }
            None => {
                state.remove(name);
            }
        }
    }
    state
}

/// Creates, updates and deletes ConfigMaps until `stop`.
fn write_load(
    api: Api<ConfigMap>,
    stop: Arc<AtomicBool>,
    acks: Arc<Mutex<usize>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4)
        .map(|w| {
            let (api, stop, acks) = (api.clone(), stop.clone(), acks.clone());
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let name = format!("l{w}-{i}");
                    let c: ConfigMap = serde_json::from_value(
                        serde_json::json!({"metadata": {"name": name}, "data": {"v": "0"}}),
                    )
                    .expect("cm");
                    if api.create(&PostParams::default(), &c).await.is_ok() {
                        let p = serde_json::json!({"data": {"v": "1"}});
                        let _ = api
                            .patch(&name, &PatchParams::default(), &Patch::Merge(&p))
                            .await;
                        if i.is_multiple_of(3) {
                            let _ = api.delete(&name, &DeleteParams::default()).await;
                        }
                        *acks.lock() += 1;
                    }
                    i += 1;
                }
            })
        })
        .collect()
}

fn parse_revision(out: &str) -> u64 {
    out.split_whitespace()
        .nth(2)
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no revision in {out:?}"))
}

async fn list_state(api: &Api<ConfigMap>) -> State {
    api.list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(entry)
        .collect()
}

/// Runs load, takes a snapshot with `save` mid-load, and returns the initial state,
/// every change recorded, and what `save` printed.
async fn snapshot_under_load(
    api: Api<ConfigMap>,
    save: impl FnOnce() -> String,
) -> (State, Vec<Change>, String) {
    // The initial state and the revision the recorder starts from come from one
    // list, so a write between two lists (a controller's) cannot fall between them.
    let list = api.list(&ListParams::default()).await.expect("list");
    let initial: State = list.items.iter().map(entry).collect();
    let start = list.metadata.resource_version.clone().unwrap_or_default();
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let recorder = tokio::spawn(record(api.clone(), start, log.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(Mutex::new(0usize));
    let writers = write_load(api.clone(), stop.clone(), acks.clone());
    poll_async(
        "load before the snapshot",
        Duration::from_secs(30),
        || async { (*acks.lock() > 100).then_some(()) },
    )
    .await;
    let out = tokio::task::block_in_place(save);
    let at_snapshot = *acks.lock();
    poll_async(
        "load after the snapshot",
        Duration::from_secs(30),
        || async { (*acks.lock() > at_snapshot + 50).then_some(()) },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.await;
    }
    let last = common::list_rv(&api).await;
    let last: u64 = last.parse().expect("rv");
    poll_async(
        "the recorder to catch up",
        Duration::from_secs(30),
        || async {
            log.lock()
                .last()
                .is_some_and(|(rv, _, _)| *rv >= last)
                .then_some(())
        },
    )
    .await;
    recorder.abort();
    let log = log.lock().clone();
    (initial, log, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_snapshot_under_load_restores_exactly() {
    let server = Server::start();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    let dir = server.data_dir().to_str().expect("dir").to_string();
    let file = server.data_dir().join("backup.snap");
    let f = file.to_str().expect("path").to_string();
    let (initial, log, out) = snapshot_under_load(api, || {
        ironkube(&["snapshot", "save", &f, "--data-dir", &dir])
    })
    .await;
    let revision = parse_revision(&out);
    let expected = state_at(&initial, &log, revision);
    assert!(!expected.is_empty());
    let restored_dir = tempfile::tempdir().expect("tempdir");
    let out = ironkube(&[
        "snapshot",
        "restore",
        &f,
        "--data-dir",
        restored_dir.path().to_str().expect("path"),
    ]);
    assert!(
        out.starts_with(&format!("restored revision {revision}")),
        "{out}"
    );
    let restored = Server::start_in(restored_dir, &[]);
    let api: Api<ConfigMap> = Api::namespaced(restored.client().await, "default");
    assert_eq!(
        list_state(&api).await,
        expected,
        "restored objects differ from the state at revision {revision}"
    );
    let c: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "after-restore"}}))
            .expect("cm");
    let next = api
        .create(&PostParams::default(), &c)
        .await
        .expect("create");
    assert!(rv(&next) > revision);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_snapshot_under_load_restores_exactly() {
    let etcd = Etcd::start();
    let server = Server::start_with(&["--etcd-servers", &etcd.url()]);
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    let file = server.data_dir().join("etcd.snap");
    let f = file.to_str().expect("path").to_string();
    let url = etcd.url();
    let (initial, log, out) = snapshot_under_load(api, || {
        ironkube(&["snapshot", "save", &f, "--etcd-servers", &url])
    })
    .await;
    assert!(out.starts_with("saved revision "), "{out}");
    let restored_etcd = Etcd::from_snapshot(&file);
    // etcd 3.4 does not report a snapshot's revision; the restored member starts at it.
    let revision = restored_etcd.revision();
    let expected = state_at(&initial, &log, revision);
    assert!(!expected.is_empty());
    let restored = Server::start_with(&["--etcd-servers", &restored_etcd.url()]);
    let api: Api<ConfigMap> = Api::namespaced(restored.client().await, "default");
    assert_eq!(
        list_state(&api).await,
        expected,
        "restored objects differ from the state at revision {revision}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrate_embedded_store_to_etcd() {
    let mut server = Server::start();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    for i in 0..100 {
        let c: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": format!("m{i:03}")}, "data": {"i": i.to_string()}})).expect("cm");
        api.create(&PostParams::default(), &c)
            .await
            .expect("create");
    }
    for i in (0..100).step_by(7) {
        let p = serde_json::json!({"data": {"touched": "yes"}});
        api.patch(
            &format!("m{i:03}"),
            &PatchParams::default(),
            &Patch::Merge(&p),
        )
        .await
        .expect("patch");
    }
    let before = list_state(&api).await;
    server.kill9();
    let etcd = Etcd::start();
    let out = ironkube(&[
        "migrate",
        "--data-dir",
        server.data_dir().to_str().expect("dir"),
        "--to-etcd",
        &etcd.url(),
    ]);
    assert!(out.starts_with("migrated "), "{out}");
    let moved = Server::start_with(&["--etcd-servers", &etcd.url()]);
    let api: Api<ConfigMap> = Api::namespaced(moved.client().await, "default");
    let after = list_state(&api).await;
    let data = |s: &State| {
        s.iter()
            .map(|(k, (_, d))| (k.clone(), d.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(data(&after), data(&before));
    let order = |s: &State| {
        let mut v: Vec<(u64, String)> = s.iter().map(|(k, (rv, _))| (*rv, k.clone())).collect();
        v.sort();
        v.into_iter().map(|(_, k)| k).collect::<Vec<_>>()
    };
    assert_eq!(
        order(&after),
        order(&before),
        "resourceVersion order changed"
    );
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(moved.client().await);
    assert!(ns.get("kube-system").await.is_ok());
}
