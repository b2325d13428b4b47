//! A deduplicating work queue with per-item exponential retry delays, the
//! shape of client-go's rate-limited work queue: an item queued while it is
//! being processed is processed again once, after the current attempt ends,
//! and never by two workers at the same time.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::Notify;

/// The first retry delay of a failing item.
const BASE_DELAY: Duration = Duration::from_millis(5);
/// The longest retry delay, however often an item has failed.
const MAX_DELAY: Duration = Duration::from_secs(60);

pub(crate) struct WorkQueue<T> {
    inner: Mutex<Inner<T>>,
    ready: Notify,
}

struct Inner<T> {
    queue: VecDeque<T>,
    /// Items waiting to be processed (in `queue`, or re-queued while processing).
    dirty: HashSet<T>,
    processing: HashSet<T>,
    failures: HashMap<T, u32>,
}

impl<T: Clone + Eq + Hash + Send + Sync + 'static> WorkQueue<T> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                failures: HashMap::new(),
            }),
            ready: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item` unless it is already waiting.
    pub(crate) fn add(&self, item: T) {
        let wake = {
            let mut inner = self.lock();
            if !inner.dirty.insert(item.clone()) {
                false
            } else if inner.processing.contains(&item) {
                // `done` queues it again when the current attempt ends.
                false
            } else {
                inner.queue.push_back(item);
                true
            }
        };
        if wake {
            self.ready.notify_one();
        }
    }

    /// Queues `item` after `delay`, unless the queue is gone by then.
    pub(crate) fn add_after(self: &Arc<Self>, item: T, delay: Duration) {
        let queue: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(queue) = queue.upgrade() {
                queue.add(item);
            }
        });
    }

    /// Queues `item` again after a delay that doubles with each consecutive failure.
    pub(crate) fn add_rate_limited(self: &Arc<Self>, item: T) {
        let failures = {
            let mut inner = self.lock();
            let n = inner.failures.entry(item.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        self.add_after(item, retry_delay(failures));
    }

    /// Clears the failure count of `item` after it succeeded.
    pub(crate) fn forget(&self, item: &T) {
        self.lock().failures.remove(item);
    }

    /// Waits for the next item; the caller must call [`WorkQueue::done`] with it.
    pub(crate) async fn get(&self) -> T {
        loop {
            let notified = self.ready.notified();
            {
                let mut inner = self.lock();
                if let Some(item) = inner.queue.pop_front() {
                    inner.dirty.remove(&item);
                    inner.processing.insert(item.clone());
                    return item;
                }
            }
            notified.await;
        }
    }

    /// Ends the processing of `item`, queueing it again if it was added meanwhile.
    pub(crate) fn done(&self, item: &T) {
        let wake = {
            let mut inner = self.lock();
            inner.processing.remove(item);
            if inner.dirty.contains(item) {
                inner.queue.push_back(item.clone());
                true
            } else {
                false
            }
        };
        if wake {
            self.ready.notify_one();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().queue.len()
    }
}

/// `BASE_DELAY * 2^(failures-1)`, capped at `MAX_DELAY`.
pub(crate) fn retry_delay(failures: u32) -> Duration {
    let shift = failures.saturating_sub(1).min(31);
    BASE_DELAY
        .checked_mul(1u32 << shift)
        .map_or(MAX_DELAY, |d| d.min(MAX_DELAY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_up_to_the_cap() {
        for (failures, want) in [
            (1, Duration::from_millis(5)),
            (2, Duration::from_millis(10)),
            (4, Duration::from_millis(40)),
            (30, MAX_DELAY),
            (u32::MAX, MAX_DELAY),
        ] {
            assert_eq!(retry_delay(failures), want, "failures={failures}");
        }
    }

    #[tokio::test]
    async fn an_item_is_queued_once_and_requeued_after_processing() {
        let q = WorkQueue::new();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        let first = q.get().await;
        assert_eq!(first, "a");
        // Added while processing: not handed out until `done`.
        q.add("a");
        assert_eq!(q.get().await, "b");
        assert_eq!(q.len(), 0);
        q.done(&"a");
        assert_eq!(q.get().await, "a");
    }
}
