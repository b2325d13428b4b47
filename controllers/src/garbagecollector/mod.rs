//! The garbage collector: deletes objects whose owners are gone, and carries
//! out the `foregroundDeletion` and `orphan` finalizers the API server adds
//! when a DELETE asks for foreground or orphan propagation.
//!
//! Watches of every deletable resource ([`monitors`]) feed one graph builder
//! task that owns the dependency [`graph`] and queues work; workers
//! ([`worker`]) verify each decision against the API before acting.
//! Discovery is re-run periodically so resources added at runtime (custom
//! resources) are collected too.

mod decide;
mod graph;
mod monitors;
mod queue;
mod worker;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use kube::discovery::Discovery;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;

use graph::{Change, Graph, Identity, View, Work};
use monitors::{Mapper, Monitors};
use queue::WorkQueue;

/// How often discovery is re-run to pick up added and removed resources.
const RESYNC_PERIOD: Duration = Duration::from_secs(30);
/// How long the workers wait for the first full listing of every resource.
const INITIAL_SYNC_TIMEOUT: Duration = Duration::from_secs(30);
const DELETE_WORKERS: usize = 8;
const ORPHAN_WORKERS: usize = 2;
/// Least time between two discoveries asked for by workers meeting a kind
/// discovery did not know (a custom resource defined meanwhile).
const MIN_REDISCOVERY_GAP: Duration = Duration::from_secs(2);
/// Bound on remembered absent owners; the cache is only a shortcut.
const ABSENT_CACHE_LIMIT: usize = 1000;

/// State shared by the graph builder and the workers. Locks are only held
/// for in-memory reads and writes, never across an API call.
pub(crate) struct Shared {
    client: kube::Client,
    graph: Mutex<Graph>,
    mapper: RwLock<Mapper>,
    absent: Mutex<HashSet<Identity>>,
    attempt_to_delete: Arc<WorkQueue<String>>,
    attempt_to_orphan: Arc<WorkQueue<String>>,
    changes: mpsc::UnboundedSender<Change>,
    /// Wakes the discovery loop early.
    rediscover: Notify,
}

impl Shared {
    fn view(&self, uid: &str) -> Option<View> {
        self.graph
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .view(uid)
    }

    fn mapper(&self) -> std::sync::RwLockReadGuard<'_, Mapper> {
        self.mapper.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_absent(&self, owner: &Identity) -> bool {
        self.absent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(owner)
    }

    fn mark_absent(&self, owner: &Identity) {
        let mut absent = self.absent.lock().unwrap_or_else(PoisonError::into_inner);
        if absent.len() >= ABSENT_CACHE_LIMIT {
            absent.clear();
        }
        absent.insert(owner.clone());
    }

    fn apply(&self, change: Change) {
        let work = self
            .graph
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .apply(change);
        for w in work {
            match w {
                Work::AttemptToDelete(uid) => self.attempt_to_delete.add(uid),
                Work::AttemptToOrphan(uid) => self.attempt_to_orphan.add(uid),
            }
        }
    }
}

/// Runs the garbage collector until the future is dropped; every task it
/// starts lives in a `JoinSet` owned here, so dropping it stops them all.
pub async fn run(client: kube::Client) {
    let (changes, mut incoming) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        client: client.clone(),
        graph: Mutex::new(Graph::default()),
        mapper: RwLock::new(Mapper::default()),
        absent: Mutex::new(HashSet::new()),
        attempt_to_delete: WorkQueue::new(),
        attempt_to_orphan: WorkQueue::new(),
        changes: changes.clone(),
        rediscover: Notify::new(),
    });
    let mut tasks = JoinSet::new();
    let builder = shared.clone();
    tasks.spawn(async move {
        while let Some(change) = incoming.recv().await {
            builder.apply(change);
        }
    });

    let mut monitors = Monitors::default();
    let mut workers_started = false;
    loop {
        match Discovery::new(client.clone()).run().await {
            Ok(discovery) => {
                *shared
                    .mapper
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Mapper::from_discovery(&discovery);
                let resources = monitors::deletable_resources(&discovery);
                let synced = monitors.sync(&client, resources, &changes);
                if !workers_started {
                    // Acting on a half-built graph could, e.g., finish a
                    // foreground deletion before its dependents were seen.
                    let all = futures::future::join_all(synced);
                    if tokio::time::timeout(INITIAL_SYNC_TIMEOUT, all)
                        .await
                        .is_err()
                    {
                        tracing::warn!(
                            "garbage collector: not every resource listed in time; starting anyway"
                        );
                    }
                    start_workers(&mut tasks, &shared);
                    workers_started = true;
                    tracing::info!("garbage collector synced and running");
                }
            }
            Err(e) => tracing::warn!(error = %e, "garbage collector discovery failed; retrying"),
        }
        tokio::select! {
            () = tokio::time::sleep(RESYNC_PERIOD) => {}
            () = shared.rediscover.notified() => tokio::time::sleep(MIN_REDISCOVERY_GAP).await,
        }
    }
}

fn start_workers(tasks: &mut JoinSet<()>, shared: &Arc<Shared>) {
    for _ in 0..DELETE_WORKERS {
        let shared = shared.clone();
        tasks.spawn(async move {
            let queue = shared.attempt_to_delete.clone();
            loop {
                let uid = queue.get().await;
                match worker::attempt_to_delete(&shared, &uid).await {
                    Ok(()) => queue.forget(&uid),
                    Err(e @ worker::Error::NamespacedOwnerOfClusterScoped { .. }) => {
                        tracing::warn!(error = %e, "garbage collector: invalid owner reference ignored");
                        queue.forget(&uid);
                    }
                    Err(e) => {
                        if matches!(e, worker::Error::UnknownKind { .. }) {
                            shared.rediscover.notify_one();
                        }
                        tracing::debug!(%uid, error = %e, "garbage collector: retrying attemptToDelete");
                        queue.add_rate_limited(uid.clone());
                    }
                }
                queue.done(&uid);
            }
        });
    }
    for _ in 0..ORPHAN_WORKERS {
        let shared = shared.clone();
        tasks.spawn(async move {
            let queue = shared.attempt_to_orphan.clone();
            loop {
                let uid = queue.get().await;
                match worker::attempt_to_orphan(&shared, &uid).await {
                    Ok(()) => queue.forget(&uid),
                    Err(e) => {
                        if matches!(e, worker::Error::UnknownKind { .. }) {
                            shared.rediscover.notify_one();
                        }
                        tracing::debug!(%uid, error = %e, "garbage collector: retrying attemptToOrphan");
                        queue.add_rate_limited(uid.clone());
                    }
                }
                queue.done(&uid);
            }
        });
    }
}
