//! One resource's watch cache: a single storage watch on the resource's
//! prefix, fanned out to every client watch.
//!
//! ```text
//!   storage list ─► State (objects at revision R, window empty)
//!   storage watch from R ─► apply each event ─► dispatch to subscribers
//!                                               (bounded channel each;
//!                                                a full one is cut off)
//!   storage watch ends (fell behind compaction) ─► every subscriber gets
//!                                                  Compacted, then re-list
//! ```
//!
//! A subscriber registers under the same lock that applies events: it takes
//! the window's events after its revision and every later event from its
//! channel, so it sees each revision once, in order, with no gap.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::StreamExt;
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use super::state::State;
use crate::storage::{
    Event, ListOptions, ListResult, Result, Revision, SharedStorage, StorageError, WatchStream,
};

/// Events one client watch may have queued before it is cut off.
pub const SUBSCRIBER_BUFFER: usize = 1024;
/// How long a watch waits for a cache that is (re)listing before it reads
/// from storage directly.
const READY_WAIT: Duration = Duration::from_secs(3);
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

struct Subscriber {
    prefix: String,
    after: Revision,
    tx: mpsc::Sender<Result<Event>>,
}

struct Shared {
    /// `None` while (re)listing.
    state: Option<State>,
    subscribers: Vec<Subscriber>,
}

pub(super) struct ResourceCache {
    prefix: String,
    inner: SharedStorage,
    window: usize,
    shared: Mutex<Shared>,
    ready: watch::Sender<bool>,
}

impl ResourceCache {
    /// Starts the cache of everything under `prefix` (which ends in `/`).
    pub(super) fn start(prefix: String, inner: SharedStorage, window: usize) -> Arc<Self> {
        let cache = Arc::new(Self {
            prefix,
            inner,
            window,
            shared: Mutex::new(Shared {
                state: None,
                subscribers: Vec::new(),
            }),
            ready: watch::Sender::new(false),
        });
        tokio::spawn(reflect(Arc::downgrade(&cache)));
        cache
    }

    /// A list served from the cache when it is at least at `min` (the
    /// caller's `resourceVersion`); `None` when it is not there yet.
    pub(super) fn list(
        &self,
        prefix: &str,
        min: Revision,
        opts: &ListOptions,
    ) -> Option<ListResult> {
        let shared = self.shared.lock();
        let state = shared.state.as_ref().filter(|s| s.revision >= min)?;
        Some(state.list(prefix, opts))
    }

    /// Waits until the cache has listed; its revision then (`None` if it is
    /// gone meanwhile).
    pub(super) async fn ready(&self) -> Option<Revision> {
        let mut ready = self.ready.subscribe();
        loop {
            ready.wait_for(|r| *r).await.ok()?;
            if let Some(state) = self.shared.lock().state.as_ref() {
                return Some(state.revision);
            }
            ready.changed().await.ok()?;
        }
    }

    /// Every event under `prefix` after `after`: from the cache once it is
    /// ready, or from storage when the cache's window no longer reaches back
    /// to `after` (or the cache is not ready in time).
    pub(super) fn watch(self: Arc<Self>, prefix: String, after: Revision) -> WatchStream {
        futures::stream::once(async move {
            let mut ready = self.ready.subscribe();
            let waited = tokio::time::timeout(READY_WAIT, ready.wait_for(|r| *r)).await;
            if matches!(waited, Ok(Ok(_)))
                && let Some(stream) = self.subscribe(&prefix, after)
            {
                return stream;
            }
            match self.inner.watch(&prefix, after) {
                Ok(s) => s,
                Err(e) => futures::stream::iter([Err(e)]).boxed(),
            }
        })
        .flatten()
        .boxed()
    }

    fn subscribe(&self, prefix: &str, after: Revision) -> Option<WatchStream> {
        let mut shared = self.shared.lock();
        let backlog = shared.state.as_ref()?.events_after(prefix, after)?;
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER);
        shared.subscribers.push(Subscriber {
            prefix: prefix.to_string(),
            after,
            tx,
        });
        Some(
            futures::stream::iter(backlog.into_iter().map(Ok))
                .chain(ReceiverStream::new(rx))
                .boxed(),
        )
    }

    /// Applies one event and hands it to every subscriber that wants it.
    fn apply(&self, ev: Event) {
        let mut shared = self.shared.lock();
        let Shared { state, subscribers } = &mut *shared;
        let Some(state) = state.as_mut() else {
            return;
        };
        if !state.apply(&ev) {
            return;
        }
        let rev = ev.kv.mod_revision;
        subscribers.retain(|s| {
            if rev <= s.after || !ev.kv.key.starts_with(&s.prefix) {
                return !s.tx.is_closed();
            }
            match s.tx.try_send(Ok(ev.clone())) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(prefix = %s.prefix, revision = rev, "closing a watch that fell {SUBSCRIBER_BUFFER} events behind");
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    /// Replaces the state with a fresh list; subscribers of the old state may
    /// have missed events, so each gets `Compacted` and is dropped.
    fn relisted(&self, items: Vec<crate::storage::KeyValue>, revision: Revision) {
        let mut shared = self.shared.lock();
        for s in shared.subscribers.drain(..) {
            // A full channel cannot take the error; dropping it ends the stream.
            let _ = s.tx.try_send(Err(StorageError::Compacted {
                requested: s.after,
                compacted: revision,
            }));
        }
        shared.state = Some(State::listed(items, revision, self.window));
        drop(shared);
        self.ready.send_replace(true);
    }

    fn unready(&self) {
        self.shared.lock().state = None;
        self.ready.send_replace(false);
    }
}

/// Lists and watches the prefix for as long as the cache exists.
async fn reflect(cache: Weak<ResourceCache>) {
    let mut backoff = RETRY_MIN;
    loop {
        let Some(c) = cache.upgrade() else { return };
        let started = async {
            let page = c.inner.list(&c.prefix, ListOptions::default()).await?;
            let stream = c.inner.watch(&c.prefix, page.revision)?;
            Ok::<_, StorageError>((page, stream))
        }
        .await;
        let mut stream = match started {
            Ok((page, stream)) => {
                c.relisted(page.items, page.revision);
                backoff = RETRY_MIN;
                stream
            }
            Err(e) => {
                tracing::warn!(prefix = %c.prefix, error = %e, "watch cache cannot list; retrying");
                drop(c);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RETRY_MAX);
                continue;
            }
        };
        drop(c);
        loop {
            let item = stream.next().await;
            let Some(c) = cache.upgrade() else { return };
            match item {
                Some(Ok(ev)) => c.apply(ev),
                Some(Err(e)) => {
                    tracing::warn!(prefix = %c.prefix, error = %e, "watch cache lost its storage watch; re-listing");
                    c.unready();
                    break;
                }
                None => {
                    tracing::info!(prefix = %c.prefix, "storage watch ended; re-listing");
                    c.unready();
                    break;
                }
            }
        }
    }
}
