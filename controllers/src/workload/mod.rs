//! Pieces shared by the workload controllers (ReplicaSet, ReplicationController,
//! Deployment, StatefulSet, DaemonSet): pod-template hashing, controller
//! revisions, controller references and adoption,
//! pod readiness and deletion ranking, and creation/deletion expectations.
//! Kept apart from any one controller because the Deployment controller reuses
//! the ReplicaSet controller's view of ownership and readiness.

pub(crate) mod api_errors;
pub(crate) mod backoff;
pub(crate) mod events;
pub(crate) mod expectations;
pub(crate) mod hash;
pub(crate) mod history;
pub(crate) mod intstr;
pub(crate) mod ownership;
pub(crate) mod pods;
pub(crate) mod runner;
pub(crate) mod time;
