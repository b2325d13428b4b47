//! The controller manager: control loops that are API clients only (the `kube`
//! crate), never reaching into the API server's storage. Each controller is a
//! `kube::runtime` controller with a `reconcile` and an error policy.

pub mod namespace;

use std::time::Duration;

/// Runs every controller until one fails irrecoverably.
pub async fn run(client: kube::Client) {
    tokio::select! {
        () = namespace::run(client.clone()) => tracing::error!("namespace controller stopped"),
    }
}

/// Requeue delay while a namespace still has content.
pub const CONTENT_REQUEUE: Duration = Duration::from_secs(1);
