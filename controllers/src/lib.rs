//! The controller manager: control loops that are API clients only (the `kube`
//! crate), never reaching into the API server's storage. Each controller is a
//! `kube::runtime` controller with a `reconcile` and an error policy.

pub mod certificates;
pub mod clusterrole_aggregation;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod endpointslicemirroring;
pub mod garbagecollector;
pub mod job;
pub mod leader;
pub mod namespace;
pub mod nodelifecycle;
pub mod podgc;
pub mod replicaset;
pub mod resourcequota;
pub mod serviceaccount;
pub mod statefulset;
mod workload;

use std::time::Duration;

/// The Lease (in `kube-system`) that elects the active controller manager.
pub const LEASE_NAME: &str = "ironkube-controller-manager";

/// Runs every controller until one fails irrecoverably.
pub async fn run(client: kube::Client) {
    tokio::select! {
        () = namespace::run(client.clone()) => tracing::error!("namespace controller stopped"),
        () = serviceaccount::run(client.clone()) => tracing::error!("service account controller stopped"),
        () = deployment::run(client.clone()) => tracing::error!("deployment controller stopped"),
        () = replicaset::run(client.clone()) => tracing::error!("replicaset controller stopped"),
        () = garbagecollector::run(client.clone()) => tracing::error!("garbage collector stopped"),
        () = job::run(client.clone()) => tracing::error!("job controller stopped"),
        () = cronjob::run(client.clone()) => tracing::error!("cronjob controller stopped"),
        () = nodelifecycle::run(client.clone()) => tracing::error!("node lifecycle controller stopped"),
        () = podgc::run(client.clone()) => tracing::error!("pod garbage collector stopped"),
        () = disruption::run(client.clone()) => tracing::error!("disruption controller stopped"),
        () = resourcequota::run(client.clone()) => tracing::error!("resource quota controller stopped"),
        () = statefulset::run(client.clone()) => tracing::error!("statefulset controller stopped"),
        () = daemonset::run(client.clone()) => tracing::error!("daemonset controller stopped"),
        () = certificates::run(client.clone()) => tracing::error!("certificate signing controller stopped"),
        () = clusterrole_aggregation::run(client.clone()) => tracing::error!("cluster role aggregation controller stopped"),
        () = endpoints::run(client.clone()) => tracing::error!("endpoints controller stopped"),
        () = endpointslice::run(client.clone()) => tracing::error!("endpointslice controller stopped"),
        () = endpointslicemirroring::run(client.clone()) => tracing::error!("endpointslice mirroring controller stopped"),
    }
}

/// Runs the controllers only while this process holds the controller-manager
/// Lease, so that several control-plane processes on one store act as one.
pub async fn run_elected(client: kube::Client, identity: String, timing: leader::Timing) {
    let elector = leader::Elector::new(client.clone(), "kube-system", LEASE_NAME, identity, timing);
    leader::run_while_leader(elector, || run(client.clone())).await;
}

/// Requeue delay while a namespace still has content.
pub const CONTENT_REQUEUE: Duration = Duration::from_secs(1);
