//! The RBAC objects the authorizer reads, kept in memory: each of the four
//! kinds is listed once and then followed by a storage watch (through the
//! watch cache), re-listed if the watch is lost. Authorizing a request reads
//! this [`Policy`] and never the store.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use parking_lot::RwLock;
use serde::Deserialize;

use crate::auth::rbac::{Binding, Policy, Rule};
use crate::resources::ResourceTable;
use crate::storage::{EventKind, ListOptions, SharedStorage, StorageError};

const GROUP: &str = "rbac.authorization.k8s.io";

/// The four RBAC kinds, as their plural names.
#[derive(Clone, Copy, Debug)]
enum Kind {
    ClusterRoles,
    Roles,
    ClusterRoleBindings,
    RoleBindings,
}

impl Kind {
    const ALL: [Kind; 4] = [
        Kind::ClusterRoles,
        Kind::Roles,
        Kind::ClusterRoleBindings,
        Kind::RoleBindings,
    ];

    fn plural(self) -> &'static str {
        match self {
            Kind::ClusterRoles => "clusterroles",
            Kind::Roles => "roles",
            Kind::ClusterRoleBindings => "clusterrolebindings",
            Kind::RoleBindings => "rolebindings",
        }
    }
}

/// The shared, always-current policy.
#[derive(Default)]
pub struct PolicyIndex {
    policy: RwLock<Policy>,
}

impl std::fmt::Debug for PolicyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyIndex").finish_non_exhaustive()
    }
}

impl PolicyIndex {
    /// Reads the policy under a read lock.
    pub fn with<T>(&self, f: impl FnOnce(&Policy) -> T) -> T {
        f(&self.policy.read())
    }

    /// Lists the RBAC objects, then follows their changes in the background.
    pub async fn start(
        storage: SharedStorage,
        table: &ResourceTable,
    ) -> Result<Arc<PolicyIndex>, StorageError> {
        let index = Arc::new(PolicyIndex::default());
        for kind in Kind::ALL {
            let prefix = table
                .get(GROUP, "v1", kind.plural())
                .map(|info| format!("{}/", info.storage_prefix))
                .ok_or_else(|| {
                    StorageError::Unavailable(format!("{} are not served", kind.plural()))
                })?;
            let revision = index.relist(&storage, kind, &prefix).await?;
            tokio::spawn(follow(
                index.clone(),
                storage.clone(),
                kind,
                prefix,
                revision,
            ));
        }
        Ok(index)
    }

    /// Replaces everything of `kind` with the store's current objects.
    async fn relist(
        &self,
        storage: &SharedStorage,
        kind: Kind,
        prefix: &str,
    ) -> Result<i64, StorageError> {
        let list = storage.list(prefix, ListOptions::default()).await?;
        let mut policy = self.policy.write();
        match kind {
            Kind::ClusterRoles => policy.cluster_roles.clear(),
            Kind::Roles => policy.roles.clear(),
            Kind::ClusterRoleBindings => policy.cluster_role_bindings.clear(),
            Kind::RoleBindings => policy.role_bindings.clear(),
        }
        for kv in &list.items {
            if let Ok(obj) = serde_json::from_slice::<Stored>(&kv.value) {
                apply(&mut policy, kind, obj, true);
            }
        }
        Ok(list.revision)
    }
}

/// Follows `kind` from `revision`; a lost watch is followed by a relist.
async fn follow(
    index: Arc<PolicyIndex>,
    storage: SharedStorage,
    kind: Kind,
    prefix: String,
    mut revision: i64,
) {
    loop {
        match storage.watch(&prefix, revision) {
            Ok(mut events) => {
                while let Some(event) = events.next().await {
                    let Ok(event) = event else { break };
                    if let Ok(obj) = serde_json::from_slice::<Stored>(&event.kv.value) {
                        apply(
                            &mut index.policy.write(),
                            kind,
                            obj,
                            event.kind == EventKind::Put,
                        );
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, kind = kind.plural(), "watching RBAC objects"),
        }
        // The watch ended (compaction, a lost backend): start over from a list.
        loop {
            match index.relist(&storage, kind, &prefix).await {
                Ok(rev) => {
                    revision = rev;
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, kind = kind.plural(), "listing RBAC objects");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// What the authorizer reads of a stored role or binding, decoded straight
/// from its stored JSON.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    #[serde(default)]
    metadata: StoredMeta,
    #[serde(default)]
    rules: Vec<Rule>,
    #[serde(flatten)]
    binding: Binding,
}

#[derive(Default, Deserialize)]
struct StoredMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
}

/// Puts (`present`) or removes one object in `policy`.
fn apply(policy: &mut Policy, kind: Kind, obj: Stored, present: bool) {
    let StoredMeta {
        name,
        namespace: ns,
    } = obj.metadata;
    match (kind, present) {
        (Kind::ClusterRoles, true) => {
            policy.cluster_roles.insert(name, obj.rules);
        }
        (Kind::ClusterRoles, false) => {
            policy.cluster_roles.remove(&name);
        }
        (Kind::Roles, true) => {
            policy.roles.entry(ns).or_default().insert(name, obj.rules);
        }
        (Kind::Roles, false) => {
            if let Some(roles) = policy.roles.get_mut(&ns) {
                roles.remove(&name);
            }
        }
        (Kind::ClusterRoleBindings, true) => {
            policy.cluster_role_bindings.insert(name, obj.binding);
        }
        (Kind::ClusterRoleBindings, false) => {
            policy.cluster_role_bindings.remove(&name);
        }
        (Kind::RoleBindings, true) => {
            policy
                .role_bindings
                .entry(ns)
                .or_default()
                .insert(name, obj.binding);
        }
        (Kind::RoleBindings, false) => {
            if let Some(bindings) = policy.role_bindings.get_mut(&ns) {
                bindings.remove(&name);
            }
        }
    }
}
