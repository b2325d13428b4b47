//! ironkube's scheduler: an API client that assigns pending pods to nodes,
//! modelled on upstream kube-scheduler's scheduling framework.
//!
//! - `informers` watch Nodes and Pods into the `cache` (per-node usage) and
//!   the `queue` (pending pods, with backoff and an unschedulable set);
//! - `scheduler` pops pods and runs the `algorithm` (the `plugins` of a
//!   `framework::Profile`), then binds through `api`, or reports the
//!   `fit_error` and runs `preemption`;
//! - `quantity` and `resources` do the resource arithmetic.
//!
//! Leader election is the caller's job.

pub mod algorithm;
pub mod api;
pub mod cache;
pub mod fit_error;
pub mod framework;
mod informers;
pub mod node_info;
pub mod plugins;
pub mod preemption;
pub mod quantity;
pub mod queue;
pub mod resources;
mod scheduler;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use crate::api::Reporter;
use crate::cache::Cache;
use crate::queue::{QueueTimings, SchedulingQueue};

/// Scheduler settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Pods whose `spec.schedulerName` equals this are scheduled.
    pub scheduler_name: String,
    /// More scheduler names served by this instance, each with its own
    /// (default-plugin) profile, like upstream's multiple profiles.
    pub additional_scheduler_names: Vec<String>,
    /// Fixed share of nodes to find feasible before scoring (1..=100);
    /// `None` uses upstream's adaptive default.
    pub percentage_of_nodes_to_score: Option<u32>,
    /// Backoff and unschedulable-retry timings.
    pub queue: QueueTimings,
    /// Maximum concurrent API writes (bindings, events, status updates).
    pub max_concurrent_writes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            scheduler_name: "default-scheduler".to_string(),
            additional_scheduler_names: Vec::new(),
            percentage_of_nodes_to_score: None,
            queue: QueueTimings::default(),
            max_concurrent_writes: 256,
        }
    }
}

/// Runs the scheduler forever.
pub async fn run(client: kube::Client, config: Config) {
    let cache = Arc::new(Mutex::new(Cache::default()));
    let queue = Arc::new(SchedulingQueue::new(config.queue));
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "ironkube".to_string());
    let names: Vec<String> = std::iter::once(config.scheduler_name.clone())
        .chain(config.additional_scheduler_names.iter().cloned())
        .collect();
    let profiles = names
        .iter()
        .map(|name| {
            let rt = scheduler::ProfileRuntime {
                profile: plugins::default_profile(name),
                reporter: Reporter {
                    component: name.clone(),
                    instance: format!("{name}-{host}"),
                },
            };
            (name.clone(), Arc::new(rt))
        })
        .collect();
    let sched = Arc::new(scheduler::Scheduler {
        client: client.clone(),
        profiles,
        cache: cache.clone(),
        queue: queue.clone(),
        writes: Arc::new(Semaphore::new(config.max_concurrent_writes.max(1))),
        recent_failures: Mutex::new(Default::default()),
    });
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    let algorithm = algorithm::Algorithm::new(seed, config.percentage_of_nodes_to_score);
    tracing::info!(schedulers = ?names, "starting scheduler");
    // Separate tasks so informers and the loop run in parallel; the set
    // aborts them all if this future is dropped (e.g. leadership lost).
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(informers::watch_nodes(
        client.clone(),
        cache.clone(),
        queue.clone(),
    ));
    tasks.spawn(informers::watch_pods(
        client,
        Arc::new(names.into_iter().collect()),
        cache,
        queue.clone(),
    ));
    tasks.spawn(scheduler::flush_periodically(queue));
    tasks.spawn(sched.run_loop(algorithm));
    while let Some(ended) = tasks.join_next().await {
        tracing::error!(result = ?ended, "a scheduler task ended unexpectedly");
    }
}
