//! A watch-fed cache of namespace lifecycle states, for the check every
//! namespaced create makes (as upstream's NamespaceLifecycle admission uses an
//! informer). A namespace absent from the cache is looked up in storage, so a
//! namespace created a moment ago is never refused; a cached Active namespace
//! saves the read. Deletions reach the cache through the watch.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use parking_lot::RwLock;
use tokio::sync::OnceCell;

use super::meta::{self, decode_at};
use crate::storage::{EventKind, ListOptions, SharedStorage};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Active,
    Terminating,
}

pub fn phase_of(obj: &serde_json::Value) -> Phase {
    if meta::is_deleting(obj) || meta::str_at(obj, "/status/phase") == Some("Terminating") {
        Phase::Terminating
    } else {
        Phase::Active
    }
}

#[derive(Clone, Default)]
pub struct NamespaceCache {
    states: Arc<RwLock<HashMap<String, Phase>>>,
    started: Arc<OnceCell<()>>,
}

impl NamespaceCache {
    /// The cached phase of `name`, starting the cache's watch on first use.
    pub async fn get(&self, storage: &SharedStorage, prefix: &str, name: &str) -> Option<Phase> {
        self.started
            .get_or_init(|| self.start(storage.clone(), prefix.to_string()))
            .await;
        self.states.read().get(name).copied()
    }

    async fn start(&self, storage: SharedStorage, prefix: String) {
        let Ok(page) = storage.list(&prefix, ListOptions::default()).await else {
            return;
        };
        {
            let mut states = self.states.write();
            for kv in &page.items {
                if let Ok(obj) = decode_at(&kv.value, kv.mod_revision, &kv.key) {
                    states.insert(meta::name(&obj).to_string(), phase_of(&obj));
                }
            }
        }
        let states = self.states.clone();
        let Ok(mut events) = storage.watch(&prefix, page.revision) else {
            states.write().clear();
            return;
        };
        tokio::spawn(async move {
            while let Some(ev) = events.next().await {
                let Ok(ev) = ev else { break };
                let Ok(obj) = decode_at(&ev.kv.value, ev.kv.mod_revision, &ev.kv.key) else {
                    continue;
                };
                let name = meta::name(&obj).to_string();
                match ev.kind {
                    EventKind::Put => states.write().insert(name, phase_of(&obj)),
                    EventKind::Delete => states.write().remove(&name),
                };
            }
            // The watch ended (compaction, shutdown): stop trusting the cache.
            states.write().clear();
            tracing::debug!("namespace cache watch ended");
        });
    }
}
