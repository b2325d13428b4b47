//! The node agent. [`run`] registers a Node, renews its Lease and runs the
//! pods bound to it on a container runtime through the CRI v1 ([`cri`]).
//! [`fake`] is a kwok-style fake node for scheduler and controller tests and
//! benchmarks: it runs nothing.
//!
//! The kubelet talks only to the API server (with `kube`) and to the runtime
//! (gRPC over its unix socket). What runs is learnt from the runtime on every
//! sync, so a restarted kubelet adopts its pods' containers.

mod admission;
pub mod config;
mod container_resources;
pub mod cri;
mod env;
mod etc_files;
mod events;
pub mod fake;
pub mod killall;
mod lifecycle;
pub mod machine;
pub mod node;
mod node_heartbeat;
mod pods;
mod probes;
mod security_context;
pub mod server;
mod volumes;

use std::sync::Arc;
use std::time::Duration;

pub use config::Config;

/// The field manager of every write the kubelet makes.
pub(crate) const FIELD_MANAGER: &str = "kubelet";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kube API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Cri(#[from] cri::Error),
    #[error("I/O: {0}")]
    Io(#[source] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

const RETRY: Duration = Duration::from_secs(2);

/// Runs the kubelet until its HTTP server fails to bind or the process ends:
/// connects to the runtime, hands it the pod CIDR, serves HTTP, registers
/// the node (retrying until the API server accepts), then renews the Lease,
/// reports node status and syncs pods.
pub async fn run(client: kube::Client, config: Config) -> Result<()> {
    let runtime = cri::Runtime::connect(&config.runtime_endpoint).await?;
    if let Some(cidr) = &config.pod_cidr {
        runtime
            .runtime
            .clone()
            .update_runtime_config(cri::v1::UpdateRuntimeConfigRequest {
                runtime_config: Some(cri::v1::RuntimeConfig {
                    network_config: Some(cri::v1::NetworkConfig {
                        pod_cidr: cidr.clone(),
                    }),
                }),
            })
            .await
            .map_err(cri::call("UpdateRuntimeConfig"))?;
    }
    let listener = tokio::net::TcpListener::bind((config.node_ip, config.port))
        .await
        .map_err(Error::Io)?;
    let port = listener.local_addr().map_err(Error::Io)?.port();
    let server = tokio::spawn(server::serve(listener, runtime.clone()));
    let node = loop {
        match node::register(&client, &config, &runtime, port).await {
            Ok(node) => break node,
            Err(e) => {
                tracing::warn!(node = %config.node_name, error = %e, "registering the node failed; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    };
    let ctx = Arc::new(pods::Ctx {
        client: client.clone(),
        runtime: runtime.clone(),
        node: node.clone(),
        config: config.clone(),
    });
    let leases = async {
        let mut tick = tokio::time::interval(config.lease_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = node::renew_lease(&client, &node).await {
                tracing::warn!(node = %node.name, error = %e, "lease renewal failed");
            }
        }
    };
    let status = async {
        let mut tick = tokio::time::interval(config.status_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = node::report_status(&client, &config, &runtime, &node, port).await {
                tracing::warn!(node = %node.name, error = %e, "node status update failed");
            }
        }
    };
    tokio::select! {
        _ = leases => {}
        _ = status => {}
        _ = pods::run(ctx) => {}
        served = server => {
            if let Ok(Err(e)) = served {
                return Err(Error::Io(e));
            }
        }
    }
    Ok(())
}
