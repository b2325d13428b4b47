//! The one behaviour suite every storage backend must pass (as upstream's
//! `pkg/storage/testing/store_tests.go`). Backends call [`run_all`] from their tests
//! with a fresh, empty store; each case uses its own key prefix.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;

use super::{EventKind, ListOptions, Storage, StorageError};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Runs every case against `store`. Panics (as tests do) on the first failure.
pub async fn run_all(store: Arc<dyn Storage>) {
    run_create_get(&*store).await;
    run_update_conflict(&*store).await;
    run_delete_preconditions(&*store).await;
    run_list_pagination_at_revision(&*store).await;
    run_watch_from_revision(&*store).await;
    run_concurrent_updates_serialize(store.clone()).await;
    run_compaction(&*store).await;
}

pub async fn run_create_get(s: &dyn Storage) {
    let rev = s.create("/t1/a", b("one")).await.expect("create");
    let kv = s.get("/t1/a").await.expect("get").expect("present");
    assert_eq!(kv.value, b("one"));
    assert_eq!(kv.mod_revision, rev);
    assert_eq!(kv.create_revision, rev);
    assert!(matches!(
        s.create("/t1/a", b("two")).await,
        Err(StorageError::AlreadyExists(_))
    ));
    assert!(s.get("/t1/missing").await.expect("get").is_none());
    assert!(s.current_revision().await.expect("rev") >= rev);
}

pub async fn run_update_conflict(s: &dyn Storage) {
    let r1 = s.create("/t2/a", b("v1")).await.expect("create");
    let r2 = s.update("/t2/a", b("v2"), r1).await.expect("update");
    assert!(r2 > r1);
    match s.update("/t2/a", b("v3"), r1).await {
        Err(StorageError::Conflict { actual, .. }) => assert_eq!(actual, r2),
        other => panic!("expected conflict, got {other:?}"),
    }
    assert!(matches!(
        s.update("/t2/missing", b("x"), 1).await,
        Err(StorageError::NotFound(_))
    ));
    let kv = s.get("/t2/a").await.expect("get").expect("present");
    assert_eq!(
        (kv.value, kv.create_revision, kv.mod_revision),
        (b("v2"), r1, r2)
    );
}

pub async fn run_delete_preconditions(s: &dyn Storage) {
    let r1 = s.create("/t3/a", b("v1")).await.expect("create");
    assert!(matches!(
        s.delete("/t3/a", Some(r1 + 1000)).await,
        Err(StorageError::Conflict { .. })
    ));
    let gone = s.delete("/t3/a", Some(r1)).await.expect("delete");
    assert_eq!(gone.value, b("v1"));
    assert!(gone.mod_revision > r1);
    assert!(s.get("/t3/a").await.expect("get").is_none());
    assert!(matches!(
        s.delete("/t3/a", None).await,
        Err(StorageError::NotFound(_))
    ));
    // A deleted key can be created again, with a fresh create revision.
    let r3 = s.create("/t3/a", b("again")).await.expect("recreate");
    assert_eq!(
        s.get("/t3/a")
            .await
            .expect("get")
            .expect("present")
            .create_revision,
        r3
    );
}

pub async fn run_list_pagination_at_revision(s: &dyn Storage) {
    for i in 0..5 {
        s.create(&format!("/t4/k{i}"), b(&i.to_string()))
            .await
            .expect("create");
    }
    s.create("/t4x/other", b("x")).await.expect("create");
    let page1 = s
        .list(
            "/t4/",
            ListOptions {
                limit: Some(2),
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(page1.items.len(), 2);
    assert_eq!(page1.remaining, 3);
    // A write after the first page must not show up in later pages at the same revision.
    s.create("/t4/k9", b("late")).await.expect("create");
    s.delete("/t4/k3", None).await.expect("delete");
    let page2 = s
        .list(
            "/t4/",
            ListOptions {
                revision: Some(page1.revision),
                start_after: page1.items.last().map(|kv| kv.key.clone()),
                limit: Some(10),
                min_revision: None,
            },
        )
        .await
        .expect("list page 2");
    let keys: Vec<_> = page2.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/t4/k2", "/t4/k3", "/t4/k4"]);
    assert_eq!(page2.revision, page1.revision);
    let now = s.list("/t4/", ListOptions::default()).await.expect("list");
    let keys: Vec<_> = now.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/t4/k0", "/t4/k1", "/t4/k2", "/t4/k4", "/t4/k9"]);
}

pub async fn run_watch_from_revision(s: &dyn Storage) {
    let start = s.current_revision().await.expect("rev");
    let r1 = s.create("/t5/a", b("1")).await.expect("create");
    let r2 = s.update("/t5/a", b("2"), r1).await.expect("update");
    s.create("/t5x/ignored", b("x")).await.expect("create");
    let r3 = s.delete("/t5/a", None).await.expect("delete").mod_revision;
    let mut w = s.watch("/t5/", start).expect("watch");
    let mut seen = Vec::new();
    for _ in 0..3 {
        let ev = tokio::time::timeout(std::time::Duration::from_secs(10), w.next())
            .await
            .expect("event in time")
            .expect("stream open")
            .expect("event");
        seen.push((
            ev.kind,
            ev.kv.mod_revision,
            ev.kv.value.clone(),
            ev.prev_value.clone(),
        ));
    }
    assert_eq!(
        seen,
        vec![
            (EventKind::Put, r1, b("1"), None),
            (EventKind::Put, r2, b("2"), Some(b("1"))),
            (EventKind::Delete, r3, b("2"), Some(b("2"))),
        ]
    );
    // Resuming from the middle yields exactly the rest.
    let mut w = s.watch("/t5/", r1).expect("watch");
    let ev = w.next().await.expect("open").expect("event");
    assert_eq!(ev.kv.mod_revision, r2);
    // Live events arrive too.
    let mut live = s.watch("/t5/", r3).expect("watch");
    let r4 = s.create("/t5/b", b("live")).await.expect("create");
    let ev = tokio::time::timeout(std::time::Duration::from_secs(10), live.next())
        .await
        .expect("event in time")
        .expect("open")
        .expect("event");
    assert_eq!(ev.kv.mod_revision, r4);
}

pub async fn run_concurrent_updates_serialize(s: Arc<dyn Storage>) {
    let r0 = s.create("/t6/counter", b("0")).await.expect("create");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                loop {
                    let kv = s.get("/t6/counter").await.expect("get").expect("present");
                    let n: u64 = std::str::from_utf8(&kv.value)
                        .expect("utf8")
                        .parse()
                        .expect("number");
                    match s
                        .update("/t6/counter", b(&(n + 1).to_string()), kv.mod_revision)
                        .await
                    {
                        Ok(_) => break,
                        Err(StorageError::Conflict { .. }) => continue,
                        Err(e) => panic!("update: {e}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let kv = s.get("/t6/counter").await.expect("get").expect("present");
    assert_eq!(kv.value, b("80"));
    assert!(kv.mod_revision > r0);
}

pub async fn run_compaction(s: &dyn Storage) {
    let r1 = s.create("/t7/a", b("1")).await.expect("create");
    let r2 = s.update("/t7/a", b("2"), r1).await.expect("update");
    s.compact(r2).await.expect("compact");
    assert!(s.compacted_revision() >= r2);
    assert!(matches!(
        s.watch("/t7/", r1),
        Err(StorageError::Compacted { .. })
    ));
    let listed = s
        .list(
            "/t7/",
            ListOptions {
                revision: Some(r1),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(listed, Err(StorageError::Compacted { .. })));
    assert_eq!(
        s.get("/t7/a").await.expect("get").expect("present").value,
        b("2")
    );
    let _stream = s
        .watch("/t7/", r2)
        .expect("watch at compacted revision is allowed");
}

/// The prefixes [`run_all`] uses, as resource prefixes for a
/// [`super::cache::CachedStorage`] in front of a backend under test.
pub fn suite_prefixes() -> Vec<String> {
    (1..=7).map(|i| format!("/t{i}")).collect()
}

/// The resource prefixes [`run_cache_cases`] uses.
pub fn cache_prefixes() -> Vec<String> {
    vec!["/c1".into(), "/c2".into(), "/c3".into()]
}

/// Cases only a [`super::cache::CachedStorage`] (built with
/// [`cache_prefixes`] and a window of `window` events) must pass. Each
/// cache is made ready first, so that every watch from the revision read
/// after that is served by the cache rather than the backend.
pub async fn run_cache_cases(store: Arc<super::cache::CachedStorage>, window: usize) {
    for prefix in ["/c1/", "/c2/", "/c3/"] {
        store.ready(prefix).await.expect("a cached prefix");
    }
    run_cache_fan_out(&*store).await;
    run_cache_slow_watcher(&*store).await;
    run_cache_window(&*store, window).await;
}

const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

async fn next_event(w: &mut super::WatchStream) -> super::Event {
    tokio::time::timeout(WAIT, w.next())
        .await
        .expect("event in time")
        .expect("stream open")
        .expect("event")
}

/// Watchers of the whole resource and of one namespace each see every
/// event once, in order; lists that accept any recent state agree.
pub async fn run_cache_fan_out(s: &dyn Storage) {
    let start = s.current_revision().await.expect("rev");
    let mut all: Vec<_> = (0..20)
        .map(|_| s.watch("/c1/", start).expect("watch"))
        .collect();
    let mut ns1 = s.watch("/c1/ns1/", start).expect("watch");
    let mut revs = Vec::new();
    for i in 0..10 {
        let ns = if i % 2 == 0 { "ns1" } else { "ns2" };
        revs.push(
            s.create(&format!("/c1/{ns}/o{i}"), b("v"))
                .await
                .expect("create"),
        );
    }
    for w in &mut all {
        for want in &revs {
            assert_eq!(next_event(w).await.kv.mod_revision, *want);
        }
    }
    for want in revs.iter().step_by(2) {
        assert_eq!(next_event(&mut ns1).await.kv.mod_revision, *want);
    }
    let last = *revs.last().expect("writes");
    let listed = s
        .list(
            "/c1/ns2/",
            ListOptions {
                min_revision: Some(last),
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert!(listed.revision >= last);
    let keys: Vec<_> = listed.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "/c1/ns2/o1",
            "/c1/ns2/o3",
            "/c1/ns2/o5",
            "/c1/ns2/o7",
            "/c1/ns2/o9"
        ]
    );
    let page = s
        .list(
            "/c1/",
            ListOptions {
                min_revision: Some(0),
                limit: Some(4),
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert_eq!((page.items.len(), page.remaining), (4, 6));
}

/// A watcher that stops reading is cut off once its buffer is full; the
/// others get every event meanwhile.
pub async fn run_cache_slow_watcher(s: &dyn Storage) {
    let start = s.current_revision().await.expect("rev");
    let mut stalled = s.watch("/c2/", start).expect("watch");
    let mut reader = s.watch("/c2/", start).expect("watch");
    // Both are registered once their first event has been seen.
    let first = s.create("/c2/first", b("v")).await.expect("create");
    assert_eq!(next_event(&mut stalled).await.kv.mod_revision, first);
    let total = super::cache::SUBSCRIBER_BUFFER + 100;
    let reading = async {
        let mut seen = vec![next_event(&mut reader).await.kv.mod_revision];
        while seen.len() < total + 1 {
            seen.push(next_event(&mut reader).await.kv.mod_revision);
        }
        seen
    };
    let writing = async {
        let mut revs = vec![first];
        for i in 0..total {
            revs.push(
                s.create(&format!("/c2/k{i}"), b("v"))
                    .await
                    .expect("create"),
            );
        }
        revs
    };
    let (seen, written) = tokio::join!(reading, writing);
    assert_eq!(
        seen, written,
        "the reading watcher saw every event in order"
    );
    // The stalled one gets what it had buffered, in order, then its end.
    let mut buffered = Vec::new();
    while let Some(item) = tokio::time::timeout(WAIT, stalled.next())
        .await
        .expect("the stalled watch ends")
    {
        buffered.push(item.expect("event").kv.mod_revision);
    }
    assert_eq!(buffered.len(), super::cache::SUBSCRIBER_BUFFER);
    assert_eq!(buffered[..], written[1..=buffered.len()]);
}

/// A watch resumes from the window, and from the backend once the window
/// has moved past its revision.
pub async fn run_cache_window(s: &dyn Storage, window: usize) {
    let start = s.current_revision().await.expect("rev");
    // Start the cache, then write more than its window holds.
    let mut live = s.watch("/c3/", start).expect("watch");
    let mut revs = Vec::new();
    for i in 0..window + 5 {
        revs.push(
            s.create(&format!("/c3/k{i}"), b("v"))
                .await
                .expect("create"),
        );
    }
    for want in &revs {
        assert_eq!(next_event(&mut live).await.kv.mod_revision, *want);
    }
    for from in [start, revs[2], revs[revs.len() - 3]] {
        let mut w = s.watch("/c3/", from).expect("watch");
        for want in revs.iter().filter(|r| **r > from) {
            assert_eq!(next_event(&mut w).await.kv.mod_revision, *want);
        }
    }
}
