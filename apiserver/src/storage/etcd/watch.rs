//! Watches on etcd that survive broken streams and etcd restarts.
//!
//! A watch is an etcd watch on the key range from `after`, with `prev_kv`. The
//! stream remembers the newest revision it has *received* (every event of a revision
//! comes in one etcd response, as fragmentation is off). When the gRPC stream errors
//! or ends — etcd restarted, the connection dropped, a leader change cancelled it —
//! it opens a new etcd watch from that revision, retrying with exponential
//! backoff for as long as the consumer keeps polling. Events already received are
//! still delivered first, and events at or below the received revision are dropped,
//! so the consumer sees every event once, in revision order.
//!
//! If etcd answers that the start revision has been compacted, the stream yields a
//! final `Err(StorageError::Compacted)` and ends.
//!
//! The etcd watch is opened lazily, on the first poll.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use etcd_client::{EventType, WatchClient, WatchOptions, WatchResponse};
use futures::StreamExt;

use super::keys::KeyMap;
use super::{Shared, unavailable};
use crate::storage::{Event, EventKind, KeyValue, Result, Revision, StorageError, WatchStream};

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What to watch.
pub(super) struct WatchSpec {
    pub(super) client: WatchClient,
    pub(super) keys: KeyMap,
    pub(super) shared: Arc<Shared>,
    /// Whether the watched prefix was re-rooted under the configured etcd prefix.
    pub(super) rerooted: bool,
    /// The etcd range `[key, range_end)`.
    pub(super) key: Vec<u8>,
    pub(super) range_end: Vec<u8>,
    /// Deliver events with revisions above this one.
    pub(super) after: Revision,
}

pub(super) fn stream(spec: WatchSpec) -> WatchStream {
    let state = Resumable {
        spec,
        ready: VecDeque::new(),
        etcd: None,
        backoff: BACKOFF_MIN,
        done: false,
    };
    futures::stream::unfold(state, |mut s| async move {
        let item = s.next().await?;
        Some((item, s))
    })
    .boxed()
}

struct Resumable {
    /// `spec.after` advances to the newest revision received.
    spec: WatchSpec,
    /// Received, not yet delivered.
    ready: VecDeque<Event>,
    etcd: Option<etcd_client::WatchStream>,
    backoff: Duration,
    done: bool,
}

impl Resumable {
    async fn next(&mut self) -> Option<Result<Event>> {
        loop {
            if let Some(ev) = self.ready.pop_front() {
                return Some(Ok(ev));
            }
            if self.done {
                return None;
            }
            if self.etcd.is_none() {
                match self.open().await {
                    Ok(etcd) => {
                        tracing::debug!(after = self.spec.after, "etcd watch open");
                        self.etcd = Some(etcd);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, after = self.spec.after, "cannot (re)open etcd watch; retrying");
                        self.pause().await;
                        continue;
                    }
                }
            }
            let Some(etcd) = self.etcd.as_mut() else {
                continue;
            };
            match etcd.message().await {
                Ok(Some(resp)) => {
                    if let Err(e) = self.absorb(resp) {
                        self.done = true;
                        self.etcd = None;
                        return Some(Err(e));
                    }
                }
                Ok(None) => {
                    tracing::info!(
                        after = self.spec.after,
                        "etcd closed the watch stream; resuming"
                    );
                    self.etcd = None;
                    self.pause().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, after = self.spec.after, "etcd watch stream broke; resuming");
                    self.etcd = None;
                    self.pause().await;
                }
            }
        }
    }

    async fn open(&mut self) -> Result<etcd_client::WatchStream> {
        // From `after`, not `after + 1`: etcd then refuses exactly when `after` is
        // below its compaction revision, as the trait requires (from `after + 1` it
        // would serve `after == compacted - 1`, with the first event's prev_kv gone).
        // Events at `after` itself are dropped in `absorb`. (0 would mean "now".)
        let options = WatchOptions::new()
            .with_range(self.spec.range_end.clone())
            .with_start_revision(self.spec.after.max(1))
            .with_prev_key();
        self.spec
            .client
            .watch(self.spec.key.clone(), Some(options))
            .await
            .map_err(|e| unavailable("opening etcd watch", &e))
    }

    async fn pause(&mut self) {
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    /// Queues the events of one etcd response. An error ends the stream.
    fn absorb(&mut self, resp: WatchResponse) -> Result<()> {
        if resp.compact_revision() > 0 {
            let compacted = self.spec.shared.saw_compaction(resp.compact_revision());
            return Err(StorageError::Compacted {
                requested: self.spec.after,
                compacted,
            });
        }
        if resp.canceled() {
            // Not a compaction (e.g. etcd lost its leader): watch again.
            tracing::info!(
                reason = resp.cancel_reason(),
                after = self.spec.after,
                "etcd cancelled the watch; resuming"
            );
            self.etcd = None;
            return Ok(());
        }
        // A response from a working watch: the next failure starts backing off anew.
        self.backoff = BACKOFF_MIN;
        let floor = self.spec.after;
        for ev in resp.events() {
            let Some(kv) = ev.kv() else { continue };
            let revision = kv.mod_revision();
            if revision <= floor {
                continue;
            }
            let key = self.spec.keys.to_logical(self.spec.rerooted, kv.key())?;
            let prev = ev.prev_kv();
            let prev_value = prev.map(|p| Bytes::copy_from_slice(p.value()));
            let event = match ev.event_type() {
                EventType::Put => Event {
                    kind: EventKind::Put,
                    kv: KeyValue {
                        key,
                        value: Bytes::copy_from_slice(kv.value()),
                        create_revision: kv.create_revision(),
                        mod_revision: revision,
                    },
                    prev_value,
                },
                // etcd's delete event carries only the key and the delete's revision;
                // the value and create revision are the previous version's.
                EventType::Delete => Event {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        key,
                        value: prev_value.clone().unwrap_or_default(),
                        create_revision: prev.map_or(0, |p| p.create_revision()),
                        mod_revision: revision,
                    },
                    prev_value,
                },
            };
            self.spec.after = self.spec.after.max(revision);
            self.ready.push_back(event);
        }
        Ok(())
    }
}
