//! The storage interface: a revisioned key-value store shaped like etcd.
//!
//! Every write gets the next global revision; an object's `resourceVersion` is the
//! revision of its last write (etcd's mod revision). Backends must offer:
//! create-if-absent, compare-and-swap update and delete, lists at a revision,
//! and watches that deliver every event after a revision, in order, exactly once.
//! Old revisions can be compacted away; reads and watches below the compacted
//! revision fail with [`StorageError::Compacted`].
//!
//! Nothing in this module knows about Kubernetes objects: values are opaque bytes.
//! Storage errors become API `Status` errors in one place, `crate::api_error`.

pub mod cache;
pub mod embedded;
pub mod encryption;
pub mod etcd;
pub mod testing;

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

/// A global, monotonically increasing write counter.
pub type Revision = i64;

/// A key's current value and the revisions that describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    pub create_revision: Revision,
    pub mod_revision: Revision,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change to one key. For `Delete`, `kv.value` is the last value the key held
/// and `kv.mod_revision` is the revision of the delete itself.
#[derive(Clone, Debug)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    /// The value before this change (absent for a create).
    pub prev_value: Option<Bytes>,
}

/// Items of a list, read at one revision.
#[derive(Clone, Debug, Default)]
pub struct ListResult {
    pub items: Vec<KeyValue>,
    /// The revision the list was read at.
    pub revision: Revision,
    /// Keys after the last returned item that exist at `revision` (0 if none).
    pub remaining: usize,
}

/// Options for [`Storage::list`].
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Read at this revision instead of the newest.
    pub revision: Option<Revision>,
    /// Only keys strictly greater than this one.
    pub start_after: Option<String>,
    /// At most this many items (0 or `None`: all).
    pub limit: Option<usize>,
    /// With no `revision`: any state at or after this revision will do
    /// (`resourceVersion=0` or `resourceVersionMatch=NotOlderThan`), so a
    /// cache may answer. Backends read the newest state.
    pub min_revision: Option<Revision>,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("key {0} not found")]
    NotFound(String),
    #[error("key {0} already exists")]
    AlreadyExists(String),
    #[error("key {key} was modified: expected revision {expected}, found {actual}")]
    Conflict {
        key: String,
        expected: Revision,
        actual: Revision,
    },
    #[error("revision {requested} has been compacted (oldest available is {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    #[error("revision {requested} is newer than the current revision {current}")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt storage data: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// A stream of events with revisions strictly above the watch's start revision.
/// It ends with an error item if the watch falls behind compaction.
pub type WatchStream = BoxStream<'static, Result<Event>>;

/// The storage backends' common interface. Object-safe, so the API server holds
/// an `Arc<dyn Storage>` and does not know which backend it talks to.
pub trait Storage: Send + Sync + 'static {
    /// The newest value of `key`, if any.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KeyValue>>>;

    /// Keys beginning with `prefix`, in key order.
    fn list<'a>(&'a self, prefix: &'a str, opts: ListOptions) -> BoxFuture<'a, Result<ListResult>>;

    /// Creates `key`; fails with `AlreadyExists` if it exists. Returns the new revision.
    fn create<'a>(&'a self, key: &'a str, value: Bytes) -> BoxFuture<'a, Result<Revision>>;

    /// Replaces `key` if its mod revision is `expected`. Returns the new revision.
    fn update<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        expected: Revision,
    ) -> BoxFuture<'a, Result<Revision>>;

    /// Deletes `key` (if `expected` is set, only at that mod revision).
    /// Returns the deleted value, with `mod_revision` set to the delete's revision.
    fn delete<'a>(
        &'a self,
        key: &'a str,
        expected: Option<Revision>,
    ) -> BoxFuture<'a, Result<KeyValue>>;

    /// Events for keys under `prefix` with revision > `after`.
    fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// The newest revision that reads can observe.
    fn current_revision(&self) -> BoxFuture<'_, Result<Revision>>;

    /// The oldest revision still readable (everything at or below it is gone).
    fn compacted_revision(&self) -> Revision;

    /// Forget history at and below `revision`.
    fn compact(&self, revision: Revision) -> BoxFuture<'_, Result<()>>;

    /// Whether the value last read as `kv` should be written again even if
    /// the object did not change (it is encrypted with an old key, say).
    fn is_stale(&self, _kv: &KeyValue) -> bool {
        false
    }
}

pub type SharedStorage = Arc<dyn Storage>;
