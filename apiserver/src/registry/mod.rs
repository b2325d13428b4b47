//! The registry layer: one generic [`store::Store`] for every resource, plus the
//! per-kind [`strategy`] objects and upstream's defaulting.

pub mod config_objects;
pub mod csr;
pub mod defaults;
pub mod eviction;
pub mod list;
pub mod meta;
pub mod namespaces;
pub mod pod_admission;
pub mod pod_binding;
pub mod pod_security;
pub mod quota;
pub mod rbac_escalation;
pub mod rbac_policy;
pub mod reviews;
pub mod service_account_token;
pub mod service_ips;
pub mod store;
pub mod strategy;
pub mod volumes;
pub mod watch;

pub use store::{Store, UpdateTarget};

/// Options shared by create, update and patch.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_manager: Option<String>,
    /// The client's User-Agent, whose product name is the manager of an update
    /// that names none (as upstream).
    pub user_agent: Option<String>,
    /// The write is a server-side apply that computed `managedFields` itself.
    pub apply: bool,
    /// RBAC escalation prevention for the writer of a role or binding.
    pub grant_check: Option<rbac_escalation::GrantCheck>,
    /// Warnings admission adds for the client (`Warning:` headers).
    pub warnings: Warnings,
}

/// Warnings collected while a write is admitted.
#[derive(Clone, Debug, Default)]
pub struct Warnings(std::sync::Arc<parking_lot::Mutex<Vec<String>>>);

impl Warnings {
    pub fn push(&self, warning: String) {
        self.0.lock().push(warning);
    }

    /// The warnings so far, leaving none.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock())
    }
}

impl WriteOptions {
    /// The field manager of an `Update`.
    pub fn manager(&self) -> String {
        if let Some(m) = self.field_manager.as_deref().filter(|m| !m.is_empty()) {
            return m.to_string();
        }
        let agent = self.user_agent.as_deref().unwrap_or("");
        let product = agent.split('/').next().unwrap_or("").trim();
        if product.is_empty() {
            "unknown".to_string()
        } else {
            product.chars().take(128).collect()
        }
    }
}

/// Options of a delete (query parameters and the `DeleteOptions` body, merged).
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub dry_run: bool,
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
}

/// What a delete did.
#[derive(Clone, Debug)]
pub enum DeleteOutcome {
    /// The object is gone; this is its last state.
    Deleted(serde_json::Value),
    /// Finalizers or a grace period hold it; this is its marked state.
    Pending(serde_json::Value),
}
