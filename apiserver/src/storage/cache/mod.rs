//! The watch cache: a [`Storage`] in front of either backend that serves
//! watches, and lists that accept any recent state, from memory, as
//! upstream's cacher does.
//!
//! Each resource prefix (a resource's `storage_prefix`) gets one
//! [`resource::ResourceCache`], started on the first watch or cacheable list
//! under it: one storage list and one storage watch, whatever the number of
//! client watches. Writes, gets, exact-revision and consistent lists go to
//! the backend; so do watches on prefixes that are no resource's, and
//! watches from a revision older than the cache's window.
//!
//! | request                                   | served by                   |
//! |-------------------------------------------|-----------------------------|
//! | watch from a revision in the window       | cache                       |
//! | watch from an older revision              | backend (or `Compacted`)    |
//! | list with `min_revision` the cache has    | cache                       |
//! | list at an exact revision, or the newest  | backend                     |
//!
//! Upstream's consistent lists from the cache wait for etcd's progress
//! notifications; the backends do not report progress yet, so consistent
//! lists still read the backend.

mod resource;
mod state;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use parking_lot::Mutex;

use self::resource::ResourceCache;
use super::{
    KeyValue, ListOptions, ListResult, Result, Revision, SharedStorage, Storage, StorageError,
    WatchStream,
};

/// Events each resource's cache keeps for watches that resume.
pub const DEFAULT_WINDOW: usize = 10_000;
pub use self::resource::SUBSCRIBER_BUFFER;

pub struct CachedStorage {
    inner: SharedStorage,
    /// Resource prefixes, without the trailing `/`.
    resources: BTreeSet<String>,
    window: usize,
    caches: Mutex<HashMap<String, Arc<ResourceCache>>>,
}

impl CachedStorage {
    /// A cache in front of `inner` for the given resource prefixes
    /// (`/registry/pods`, ...).
    pub fn new(
        inner: SharedStorage,
        resources: impl IntoIterator<Item = String>,
        window: usize,
    ) -> Self {
        Self {
            inner,
            resources: resources
                .into_iter()
                .map(|p| p.trim_end_matches('/').to_string())
                .collect(),
            window,
            caches: Mutex::new(HashMap::new()),
        }
    }

    /// The cache of the resource that `prefix` lists (all of it, or one
    /// namespace), started if need be.
    fn cache_for(&self, prefix: &str) -> Option<Arc<ResourceCache>> {
        let resource = self.resource_of(prefix)?;
        let mut caches = self.caches.lock();
        let cache = caches.entry(resource.to_string()).or_insert_with(|| {
            ResourceCache::start(format!("{resource}/"), self.inner.clone(), self.window)
        });
        Some(cache.clone())
    }

    /// Starts the cache of the resource that `prefix` lists and waits until
    /// it has listed; its revision then, or `None` for a prefix that is no
    /// resource's.
    pub async fn ready(&self, prefix: &str) -> Option<Revision> {
        self.cache_for(prefix)?.ready().await
    }

    fn resource_of(&self, prefix: &str) -> Option<&str> {
        let trimmed = prefix.strip_suffix('/')?;
        if let Some(r) = self.resources.get(trimmed) {
            return Some(r);
        }
        let (parent, namespace) = trimmed.rsplit_once('/')?;
        if namespace.is_empty() {
            return None;
        }
        self.resources.get(parent).map(String::as_str)
    }
}

impl Storage for CachedStorage {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KeyValue>>> {
        self.inner.get(key)
    }

    fn list<'a>(&'a self, prefix: &'a str, opts: ListOptions) -> BoxFuture<'a, Result<ListResult>> {
        async move {
            if let (None, Some(min)) = (opts.revision, opts.min_revision)
                && let Some(cache) = self.cache_for(prefix)
                && let Some(listed) = cache.list(prefix, min, &opts)
            {
                return Ok(listed);
            }
            self.inner.list(prefix, opts).await
        }
        .boxed()
    }

    fn create<'a>(&'a self, key: &'a str, value: Bytes) -> BoxFuture<'a, Result<Revision>> {
        self.inner.create(key, value)
    }

    fn is_stale(&self, kv: &KeyValue) -> bool {
        self.inner.is_stale(kv)
    }

    fn update<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        expected: Revision,
    ) -> BoxFuture<'a, Result<Revision>> {
        self.inner.update(key, value, expected)
    }

    fn delete<'a>(
        &'a self,
        key: &'a str,
        expected: Option<Revision>,
    ) -> BoxFuture<'a, Result<KeyValue>> {
        self.inner.delete(key, expected)
    }

    fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let compacted = self.inner.compacted_revision();
        if after < compacted {
            return Err(StorageError::Compacted {
                requested: after,
                compacted,
            });
        }
        match self.cache_for(prefix) {
            Some(cache) => Ok(cache.watch(prefix.to_string(), after)),
            None => self.inner.watch(prefix, after),
        }
    }

    fn current_revision(&self) -> BoxFuture<'_, Result<Revision>> {
        self.inner.current_revision()
    }

    fn compacted_revision(&self) -> Revision {
        self.inner.compacted_revision()
    }

    fn compact(&self, revision: Revision) -> BoxFuture<'_, Result<()>> {
        self.inner.compact(revision)
    }
}
