//! Which namespaces hold ResourceQuotas, fed by a storage watch, so that a
//! create in a namespace without quotas (nearly all of them) costs no read. As
//! with upstream's informer-fed quota admission, a quota created a moment ago
//! may be missed by a create racing it; such a quota has no `status.hard` yet
//! and would constrain nothing anyway. When the watch ends the index stops
//! answering and every create reads the quotas again.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use parking_lot::RwLock;
use tokio::sync::OnceCell;

use crate::storage::{EventKind, ListOptions, SharedStorage};

/// Quota keys per namespace.
type KeysByNamespace = HashMap<String, Vec<String>>;

#[derive(Clone, Default)]
pub struct QuotaIndex {
    /// `None` while the index is not live.
    by_namespace: Arc<RwLock<Option<KeysByNamespace>>>,
    started: Arc<OnceCell<()>>,
}

/// The namespace segment of `<prefix>/<namespace>/<name>`.
fn namespace_of<'a>(prefix: &str, key: &'a str) -> &'a str {
    key.strip_prefix(prefix)
        .map(|rest| rest.trim_start_matches('/'))
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("")
}

impl QuotaIndex {
    /// `Some(false)` when `ns` surely has no quota; `None` when unknown.
    pub async fn has_quotas(
        &self,
        storage: &SharedStorage,
        prefix: &str,
        ns: &str,
    ) -> Option<bool> {
        self.started
            .get_or_init(|| self.start(storage.clone(), prefix.to_string()))
            .await;
        self.by_namespace
            .read()
            .as_ref()
            .map(|m| m.get(ns).is_some_and(|keys| !keys.is_empty()))
    }

    async fn start(&self, storage: SharedStorage, prefix: String) {
        let Ok(page) = storage.list(&prefix, ListOptions::default()).await else {
            return;
        };
        let mut map = KeysByNamespace::new();
        for kv in &page.items {
            map.entry(namespace_of(&prefix, &kv.key).to_string())
                .or_default()
                .push(kv.key.clone());
        }
        let Ok(mut events) = storage.watch(&prefix, page.revision) else {
            return;
        };
        *self.by_namespace.write() = Some(map);
        let index = self.by_namespace.clone();
        tokio::spawn(async move {
            while let Some(Ok(ev)) = events.next().await {
                let ns = namespace_of(&prefix, &ev.kv.key).to_string();
                let mut guard = index.write();
                let Some(map) = guard.as_mut() else { break };
                let keys = map.entry(ns).or_default();
                match ev.kind {
                    EventKind::Put if !keys.contains(&ev.kv.key) => keys.push(ev.kv.key.clone()),
                    EventKind::Put => {}
                    EventKind::Delete => keys.retain(|k| *k != ev.kv.key),
                }
            }
            *index.write() = None;
            tracing::warn!("resource quota index watch ended; quotas are read on every create");
        });
    }
}
