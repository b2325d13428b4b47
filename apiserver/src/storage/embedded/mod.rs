//! The embedded, durable default backend.
//!
//! All keys live in memory as a small MVCC index (a few versions per key, pruned by
//! compaction), so lists at a past revision — needed for consistent pagination —
//! and watches from a past revision are served from memory. Durability comes from a
//! write-ahead log: a write is applied to the index and queued to the log under one
//! lock (so log order is revision order), then a single flusher thread writes every
//! queued record, fsyncs once for the whole group and only then acknowledges them.
//!
//! Readers see only *durable* revisions: a value is visible to get/list/watch once
//! its record is fsync'd, so nothing a client observed can vanish in a crash.
//!
//! ```text
//!  writer ──lock──▶ check CAS, assign rev, add version + event, queue record ──▶ await ack
//!  flusher thread:  drain queue ─▶ write ─▶ fdatasync ─▶ durable := last rev ─▶ ack all
//!  watchers:        wake on durable change ─▶ copy events (cursor, durable] from history
//! ```
//!
//! When the log outgrows a threshold the flusher writes a snapshot of the index at
//! the durable revision and truncates the log. Recovery loads the snapshot and
//! replays the log records above its revision (which also refills watch history).

mod wal;

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use parking_lot::RwLock;
use tokio::sync::{oneshot, watch};

use super::{
    Event, EventKind, KeyValue, ListOptions, ListResult, Result, Revision, Storage, StorageError,
    WatchStream,
};
use wal::{Record, Snapshot};

const LOG_FILE: &str = "wal.log";
const SNAPSHOT_FILE: &str = "snapshot.db";
/// Snapshot and truncate the log once it grows past this size.
const LOG_SNAPSHOT_THRESHOLD: u64 = 64 << 20;
/// At most this many events are kept for watches; older ones are compacted.
const MAX_HISTORY: usize = 250_000;

#[derive(Clone, Debug)]
struct Version {
    mod_revision: Revision,
    create_revision: Revision,
    /// `None` marks a delete.
    value: Option<Bytes>,
}

struct State {
    keys: BTreeMap<String, Vec<Version>>,
    /// Last assigned revision (possibly not yet durable).
    revision: Revision,
    /// Events at or below this revision are gone.
    compacted: Revision,
    /// Events with revisions `compacted + 1 ..= revision`, one per revision.
    history: VecDeque<Arc<Event>>,
}

impl State {
    fn latest(&self, key: &str) -> Option<&Version> {
        self.keys.get(key).and_then(|v| v.last())
    }

    fn visible(versions: &[Version], at: Revision) -> Option<&Version> {
        versions.iter().rev().find(|v| v.mod_revision <= at)
    }

    fn apply(&mut self, rec: &Record) {
        let prev_value = self.latest(&rec.key).and_then(|v| v.value.clone());
        let version = Version {
            mod_revision: rec.revision,
            create_revision: rec.create_revision,
            value: rec.value.clone(),
        };
        self.keys.entry(rec.key.clone()).or_default().push(version);
        self.revision = rec.revision;
        let (kind, value) = match &rec.value {
            Some(v) => (EventKind::Put, v.clone()),
            None => (EventKind::Delete, prev_value.clone().unwrap_or_default()),
        };
        self.history.push_back(Arc::new(Event {
            kind,
            kv: KeyValue {
                key: rec.key.clone(),
                value,
                create_revision: rec.create_revision,
                mod_revision: rec.revision,
            },
            prev_value,
        }));
        if self.history.len() > MAX_HISTORY {
            self.history.pop_front();
            self.compacted += 1;
        }
    }

    /// Drops versions no read can need any more (see module docs).
    fn prune(&mut self, upto: Revision) {
        if upto > self.compacted {
            let drop = ((upto - self.compacted) as usize).min(self.history.len());
            self.history.drain(..drop);
            self.compacted = upto;
        }
        let compacted = self.compacted;
        self.keys.retain(|_, versions| {
            let keep_from = versions
                .iter()
                .rposition(|v| v.mod_revision <= compacted)
                .unwrap_or(0);
            versions.drain(..keep_from);
            !(versions.len() == 1
                && versions[0].value.is_none()
                && versions[0].mod_revision <= compacted)
        });
    }

    fn snapshot_at(&self, revision: Revision) -> Snapshot {
        let entries = self
            .keys
            .iter()
            .filter_map(|(k, versions)| {
                let v = State::visible(versions, revision)?;
                let value = v.value.clone()?;
                Some((k.clone(), v.create_revision, v.mod_revision, value))
            })
            .collect();
        Snapshot { revision, entries }
    }
}

struct Pending {
    record: Record,
    done: oneshot::Sender<Result<()>>,
}

struct Inner {
    state: RwLock<State>,
    durable: watch::Sender<Revision>,
    log: mpsc::Sender<Pending>,
}

/// The embedded store; cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `dir`, recovering its contents.
    pub fn open(dir: &Path) -> Result<EmbeddedStore> {
        std::fs::create_dir_all(dir)?;
        let snapshot = Snapshot::read(&dir.join(SNAPSHOT_FILE))?.unwrap_or_default();
        let mut state = State {
            keys: BTreeMap::new(),
            revision: snapshot.revision,
            compacted: snapshot.revision,
            history: VecDeque::new(),
        };
        for (key, create_revision, mod_revision, value) in snapshot.entries {
            let version = Version {
                mod_revision,
                create_revision,
                value: Some(value),
            };
            state.keys.insert(key, vec![version]);
        }
        let log_path = dir.join(LOG_FILE);
        let mut replayed = 0usize;
        for rec in wal::replay_log(&log_path)? {
            if rec.revision <= state.revision {
                continue;
            }
            if rec.revision != state.revision + 1 {
                return Err(StorageError::Corrupt(format!(
                    "write-ahead log jumps from revision {} to {}",
                    state.revision, rec.revision
                )));
            }
            state.apply(&rec);
            replayed += 1;
        }
        tracing::info!(dir = %dir.display(), revision = state.revision, keys = state.keys.len(), replayed, "embedded store opened");
        let log_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let log_len = log_file.metadata()?.len();
        let (durable, _) = watch::channel(state.revision);
        let (tx, rx) = mpsc::channel();
        let inner = Arc::new(Inner {
            state: RwLock::new(state),
            durable,
            log: tx,
        });
        let flusher = Flusher {
            inner: Arc::downgrade(&inner),
            dir: dir.to_path_buf(),
            log: log_file,
            log_len,
        };
        std::thread::Builder::new()
            .name("store-flusher".into())
            .spawn(move || flusher.run(rx))?;
        Ok(EmbeddedStore { inner })
    }

    fn durable(&self) -> Revision {
        *self.inner.durable.borrow()
    }

    /// Applies a write decided under the lock and waits until it is durable.
    async fn commit(&self, rx: oneshot::Receiver<Result<()>>) -> Result<()> {
        rx.await
            .map_err(|_| StorageError::Unavailable("store flusher stopped".into()))?
    }

    /// Assigns the next revision to `key`'s new value, under the caller's lock.
    fn stage(
        &self,
        state: &mut State,
        key: &str,
        value: Option<Bytes>,
        create_revision: Option<Revision>,
    ) -> Result<(Revision, oneshot::Receiver<Result<()>>)> {
        let revision = state.revision + 1;
        let record = Record {
            revision,
            create_revision: create_revision.unwrap_or(revision),
            key: key.to_string(),
            value,
        };
        let (done, rx) = oneshot::channel();
        state.apply(&record);
        self.inner
            .log
            .send(Pending { record, done })
            .map_err(|_| StorageError::Unavailable("store flusher stopped".into()))?;
        Ok((revision, rx))
    }

    /// Writes a consistent snapshot of the durable state to `path` (used for backups).
    pub fn save_snapshot(&self, path: &Path) -> Result<Revision> {
        let revision = self.durable();
        let snapshot = self.inner.state.read().snapshot_at(revision);
        snapshot.write(path)?;
        Ok(revision)
    }
}

impl Storage for EmbeddedStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KeyValue>>> {
        let durable = self.durable();
        let state = self.inner.state.read();
        let found = state.keys.get(key).and_then(|versions| {
            let v = State::visible(versions, durable)?;
            Some(KeyValue {
                key: key.to_string(),
                value: v.value.clone()?,
                create_revision: v.create_revision,
                mod_revision: v.mod_revision,
            })
        });
        drop(state);
        futures::future::ready(Ok(found)).boxed()
    }

    fn list<'a>(&'a self, prefix: &'a str, opts: ListOptions) -> BoxFuture<'a, Result<ListResult>> {
        let result = (|| {
            let durable = self.durable();
            let state = self.inner.state.read();
            let at = match opts.revision {
                Some(r) if r > 0 => r,
                _ => durable,
            };
            if at < state.compacted {
                return Err(StorageError::Compacted {
                    requested: at,
                    compacted: state.compacted,
                });
            }
            if at > durable {
                return Err(StorageError::FutureRevision {
                    requested: at,
                    current: durable,
                });
            }
            let start = match &opts.start_after {
                Some(k) if k.as_str() >= prefix => Bound::Excluded(k.clone()),
                _ => Bound::Included(prefix.to_string()),
            };
            let limit = opts.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
            let mut items = Vec::new();
            let mut remaining = 0usize;
            for (key, versions) in state.keys.range((start, Bound::Unbounded)) {
                if !key.starts_with(prefix) {
                    break;
                }
                let Some(v) = State::visible(versions, at) else {
                    continue;
                };
                let Some(value) = &v.value else { continue };
                if items.len() < limit {
                    items.push(KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        create_revision: v.create_revision,
                        mod_revision: v.mod_revision,
                    });
                } else {
                    remaining += 1;
                }
            }
            Ok(ListResult {
                items,
                revision: at,
                remaining,
            })
        })();
        futures::future::ready(result).boxed()
    }

    fn create<'a>(&'a self, key: &'a str, value: Bytes) -> BoxFuture<'a, Result<Revision>> {
        async move {
            let (revision, rx) = {
                let mut state = self.inner.state.write();
                if state.latest(key).is_some_and(|v| v.value.is_some()) {
                    return Err(StorageError::AlreadyExists(key.to_string()));
                }
                self.stage(&mut state, key, Some(value), None)?
            };
            self.commit(rx).await?;
            Ok(revision)
        }
        .boxed()
    }

    fn update<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        expected: Revision,
    ) -> BoxFuture<'a, Result<Revision>> {
        async move {
            let (revision, rx) = {
                let mut state = self.inner.state.write();
                let create_revision = match state.latest(key) {
                    Some(v) if v.value.is_some() => {
                        if v.mod_revision != expected {
                            return Err(StorageError::Conflict {
                                key: key.to_string(),
                                expected,
                                actual: v.mod_revision,
                            });
                        }
                        v.create_revision
                    }
                    _ => return Err(StorageError::NotFound(key.to_string())),
                };
                self.stage(&mut state, key, Some(value), Some(create_revision))?
            };
            self.commit(rx).await?;
            Ok(revision)
        }
        .boxed()
    }

    fn delete<'a>(
        &'a self,
        key: &'a str,
        expected: Option<Revision>,
    ) -> BoxFuture<'a, Result<KeyValue>> {
        async move {
            let (kv, rx) = {
                let mut state = self.inner.state.write();
                let (value, create_revision) = match state.latest(key) {
                    Some(Version {
                        value: Some(value),
                        mod_revision,
                        create_revision,
                    }) => {
                        if let Some(expected) = expected.filter(|e| e != mod_revision) {
                            return Err(StorageError::Conflict {
                                key: key.to_string(),
                                expected,
                                actual: *mod_revision,
                            });
                        }
                        (value.clone(), *create_revision)
                    }
                    _ => return Err(StorageError::NotFound(key.to_string())),
                };
                let (revision, rx) = self.stage(&mut state, key, None, Some(create_revision))?;
                let kv = KeyValue {
                    key: key.to_string(),
                    value,
                    create_revision,
                    mod_revision: revision,
                };
                (kv, rx)
            };
            self.commit(rx).await?;
            Ok(kv)
        }
        .boxed()
    }

    fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let compacted = self.inner.state.read().compacted;
        if after < compacted {
            return Err(StorageError::Compacted {
                requested: after,
                compacted,
            });
        }
        let cursor = WatchCursor {
            inner: Arc::downgrade(&self.inner),
            durable: self.inner.durable.subscribe(),
            prefix: prefix.to_string(),
            after,
            ready: VecDeque::new(),
            failed: false,
        };
        Ok(futures::stream::unfold(cursor, |mut c| async move {
            let item = c.next().await?;
            Some((item, c))
        })
        .boxed())
    }

    fn current_revision(&self) -> BoxFuture<'_, Result<Revision>> {
        futures::future::ready(Ok(self.durable())).boxed()
    }

    fn compacted_revision(&self) -> Revision {
        self.inner.state.read().compacted
    }

    fn compact(&self, revision: Revision) -> BoxFuture<'_, Result<()>> {
        let durable = self.durable();
        self.inner.state.write().prune(revision.min(durable));
        futures::future::ready(Ok(())).boxed()
    }
}

/// One watcher's position in the shared event history.
struct WatchCursor {
    inner: std::sync::Weak<Inner>,
    durable: watch::Receiver<Revision>,
    prefix: String,
    /// Every matching event up to this revision has been queued or delivered.
    after: Revision,
    ready: VecDeque<Arc<Event>>,
    failed: bool,
}

impl WatchCursor {
    async fn next(&mut self) -> Option<Result<Event>> {
        loop {
            if let Some(ev) = self.ready.pop_front() {
                return Some(Ok((*ev).clone()));
            }
            if self.failed {
                return None;
            }
            let durable = *self.durable.borrow_and_update();
            if durable > self.after {
                let inner = self.inner.upgrade()?;
                let state = inner.state.read();
                if self.after < state.compacted {
                    self.failed = true;
                    return Some(Err(StorageError::Compacted {
                        requested: self.after,
                        compacted: state.compacted,
                    }));
                }
                let start = (self.after - state.compacted) as usize;
                let end = ((durable - state.compacted) as usize).min(state.history.len());
                for ev in state.history.range(start..end) {
                    if ev.kv.key.starts_with(&self.prefix) {
                        self.ready.push_back(ev.clone());
                    }
                }
                self.after = durable;
                continue;
            }
            self.durable.changed().await.ok()?;
        }
    }
}

/// Owns the log file; the only thread that writes it.
struct Flusher {
    inner: std::sync::Weak<Inner>,
    dir: PathBuf,
    log: File,
    log_len: u64,
}

impl Flusher {
    fn run(mut self, rx: mpsc::Receiver<Pending>) {
        let mut buf = Vec::with_capacity(1 << 20);
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            buf.clear();
            for p in &batch {
                p.record.encode_into(&mut buf);
            }
            let written = self.log.write_all(&buf).and_then(|()| self.log.sync_data());
            let Some(inner) = self.inner.upgrade() else {
                return;
            };
            match written {
                Ok(()) => {
                    self.log_len += buf.len() as u64;
                    let last = batch.last().map_or(0, |p| p.record.revision);
                    inner.durable.send_replace(last);
                    for p in batch {
                        let _ = p.done.send(Ok(()));
                    }
                    if self.log_len > LOG_SNAPSHOT_THRESHOLD
                        && let Err(e) = self.snapshot(&inner, last)
                    {
                        tracing::error!(error = %e, "failed to snapshot the embedded store");
                    }
                }
                Err(e) => {
                    // The log is in an unknown state: refuse this and every later write.
                    tracing::error!(error = %e, "write-ahead log write failed; store is now read-only");
                    for p in batch {
                        let _ = p.done.send(Err(StorageError::Unavailable(format!(
                            "write-ahead log: {e}"
                        ))));
                    }
                    drop(inner);
                    while let Ok(p) = rx.recv() {
                        let _ = p.done.send(Err(StorageError::Unavailable(
                            "write-ahead log failed earlier".into(),
                        )));
                    }
                    return;
                }
            }
        }
    }

    fn snapshot(&mut self, inner: &Inner, revision: Revision) -> Result<()> {
        let snapshot = inner.state.read().snapshot_at(revision);
        snapshot.write(&self.dir.join(SNAPSHOT_FILE))?;
        // Every record in the log is at or below `revision` now, so the log can go.
        self.log.set_len(0)?;
        self.log.sync_all()?;
        self.log_len = 0;
        tracing::info!(
            revision,
            keys = snapshot.entries.len(),
            "embedded store snapshot written, log truncated"
        );
        Ok(())
    }
}

/// One live key in a snapshot: (key, create revision, mod revision, value).
pub type SnapshotEntry = (String, Revision, Revision, Bytes);

/// Every live key of the store in `dir` at one revision, read without writing to
/// it, so it works on the data dir of a running server: the snapshot file plus
/// the log records after it. The server may replace both while we read (when it
/// snapshots and truncates its log); a gap between them is detected and the read
/// retried.
pub fn consistent_entries(dir: &Path) -> Result<(Revision, Vec<SnapshotEntry>)> {
    for _attempt in 0..20 {
        let snapshot = Snapshot::read(&dir.join(SNAPSHOT_FILE))?.unwrap_or_default();
        let records = wal::read_log(&dir.join(LOG_FILE), false)?;
        let mut state = State {
            keys: BTreeMap::new(),
            revision: snapshot.revision,
            compacted: snapshot.revision,
            history: VecDeque::new(),
        };
        for (key, create_revision, mod_revision, value) in snapshot.entries {
            state.keys.insert(
                key,
                vec![Version {
                    mod_revision,
                    create_revision,
                    value: Some(value),
                }],
            );
        }
        let mut gap = false;
        let base = state.revision;
        for rec in records.iter().filter(|r| r.revision > base) {
            if rec.revision != state.revision + 1 {
                gap = true;
                break;
            }
            state.apply(rec);
            state.history.clear();
        }
        if gap {
            continue;
        }
        let snap = state.snapshot_at(state.revision);
        return Ok((snap.revision, snap.entries));
    }
    Err(StorageError::Unavailable(format!(
        "{} kept changing under a consistent read",
        dir.display()
    )))
}

/// Saves a consistent snapshot of the store in `dir` (running or not) to `file`.
pub fn save_snapshot_of_dir(dir: &Path, file: &Path) -> Result<Revision> {
    let (revision, entries) = consistent_entries(dir)?;
    Snapshot { revision, entries }.write(file)?;
    Ok(revision)
}

/// Writes a snapshot file read from a running or stopped data dir (for `ironkube snapshot`).
pub fn restore_snapshot(snapshot_file: &Path, new_store_dir: &Path) -> Result<Revision> {
    let snapshot = Snapshot::read(snapshot_file)?
        .ok_or_else(|| StorageError::NotFound(snapshot_file.display().to_string()))?;
    std::fs::create_dir_all(new_store_dir)?;
    if new_store_dir.join(LOG_FILE).exists() || new_store_dir.join(SNAPSHOT_FILE).exists() {
        return Err(StorageError::AlreadyExists(
            new_store_dir.display().to_string(),
        ));
    }
    snapshot.write(&new_store_dir.join(SNAPSHOT_FILE))?;
    Ok(snapshot.revision)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::testing;

    #[tokio::test]
    async fn storage_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        testing::run_all(Arc::new(store)).await;
    }

    fn cached(
        store: EmbeddedStore,
        prefixes: Vec<String>,
        window: usize,
    ) -> Arc<crate::storage::cache::CachedStorage> {
        Arc::new(crate::storage::cache::CachedStorage::new(
            Arc::new(store),
            prefixes,
            window,
        ))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn storage_suite_behind_the_watch_cache() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        testing::run_all(cached(store, testing::suite_prefixes(), 100)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watch_cache_cases() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        testing::run_cache_cases(cached(store, testing::cache_prefixes(), 50), 50).await;
    }

    #[tokio::test]
    async fn recovers_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (rev_a, rev_b) = {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            let a = store
                .create("/r/a", Bytes::from_static(b"1"))
                .await
                .unwrap();
            let b = store
                .update("/r/a", Bytes::from_static(b"2"), a)
                .await
                .unwrap();
            store
                .create("/r/c", Bytes::from_static(b"3"))
                .await
                .unwrap();
            store.delete("/r/c", None).await.unwrap();
            (a, b)
        };
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let kv = store.get("/r/a").await.unwrap().unwrap();
        assert_eq!(
            (kv.create_revision, kv.mod_revision, kv.value.as_ref()),
            (rev_a, rev_b, &b"2"[..])
        );
        assert!(store.get("/r/c").await.unwrap().is_none());
        let next = store.create("/r/d", Bytes::new()).await.unwrap();
        assert_eq!(next, 5);
    }

    #[tokio::test]
    async fn snapshot_then_log_recovers() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            store
                .create("/r/a", Bytes::from_static(b"1"))
                .await
                .unwrap();
            let snap = dir.path().join(SNAPSHOT_FILE);
            store.save_snapshot(&snap).unwrap();
            store
                .create("/r/b", Bytes::from_static(b"2"))
                .await
                .unwrap();
        }
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let list = store.list("/r/", ListOptions::default()).await.unwrap();
        assert_eq!(list.items.len(), 2);
        assert_eq!(list.revision, 2);
    }
}
