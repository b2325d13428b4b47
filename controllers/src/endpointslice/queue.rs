//! A keyed work queue as upstream's: a key waits at most once, a failed key
//! comes back after a per-key back-off, and keys outlive their objects (a
//! deleted Service is still synced, to clean up after it), which is why these
//! controllers do not use `kube::runtime`'s applier: it drops requests for
//! objects that are no longer in its store.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::workload::backoff::Backoff;

#[derive(Default)]
struct Pending {
    order: VecDeque<String>,
    queued: HashSet<String>,
}

/// Keys (`namespace/name`) waiting to be synced; cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Queue {
    pending: Arc<Mutex<Pending>>,
    wake: Arc<Notify>,
    backoff: Arc<Backoff>,
}

impl Queue {
    fn with<R>(&self, f: impl FnOnce(&mut Pending) -> R) -> R {
        let mut guard = match self.pending.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// Queues `key` unless it is already waiting.
    pub(crate) fn add(&self, key: String) {
        let added = self.with(|p| {
            if p.queued.insert(key.clone()) {
                p.order.push_back(key);
                true
            } else {
                false
            }
        });
        if added {
            self.wake.notify_one();
        }
    }

    /// The next key, waiting for one if none is queued.
    pub(crate) async fn next(&self) -> String {
        loop {
            let key = self.with(|p| {
                let key = p.order.pop_front()?;
                p.queued.remove(&key);
                Some(key)
            });
            if let Some(key) = key {
                return key;
            }
            self.wake.notified().await;
        }
    }

    /// `key` synced: its failures are forgotten.
    pub(crate) fn forget(&self, key: &str) {
        self.backoff.reset(key);
    }

    /// `key` failed: it comes back after its back-off.
    pub(crate) fn retry(&self, key: String) -> std::time::Duration {
        let delay = self.backoff.next(&key);
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(key);
        });
        delay
    }

    /// Syncs keys one at a time with `sync`, for ever; `what` names the
    /// controller in logs.
    pub(crate) async fn work<E, F, Fut>(&self, what: &str, mut sync: F)
    where
        E: std::fmt::Display,
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = Result<(), E>>,
    {
        loop {
            let key = self.next().await;
            match sync(key.clone()).await {
                Ok(()) => self.forget(&key),
                Err(e) => {
                    let delay = self.retry(key.clone());
                    tracing::warn!(controller = what, service = %key, error = %e, ?delay, "sync failed; retrying");
                }
            }
        }
    }
}

/// `namespace/name` of an object.
pub(crate) fn key(namespace: Option<&str>, name: Option<&str>) -> String {
    format!(
        "{}/{}",
        namespace.unwrap_or_default(),
        name.unwrap_or_default()
    )
}

/// The namespace and name of a key.
pub(crate) fn split(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dedupes_and_keeps_order() {
        let q = Queue::default();
        q.add("a/1".into());
        q.add("a/2".into());
        q.add("a/1".into());
        assert_eq!(q.next().await, "a/1");
        q.add("a/1".into());
        assert_eq!(q.next().await, "a/2");
        assert_eq!(q.next().await, "a/1");
        assert_eq!(split("ns/name"), ("ns", "name"));
    }
}
