//! The ReplicaSet and ReplicationController controllers: keep `spec.replicas`
//! active pods matching the selector, owned through a controller reference,
//! adopting matching orphans and releasing pods that stopped matching, and
//! report the counts in `status`. One generic implementation serves both kinds
//! (the ReplicationController is the older, map-selector form of the same thing).

mod controller;
mod kind;
mod status;
mod sync;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::ReplicationController;

/// Runs the ReplicaSet and the ReplicationController controllers.
pub async fn run(client: kube::Client) {
    tokio::join!(
        controller::run::<ReplicaSet>(client.clone()),
        controller::run::<ReplicationController>(client),
    );
}
