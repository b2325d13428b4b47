//! The two kinds the replica controller manages, seen through one common form:
//! the spec fields it reads and the status it writes. A ReplicationController's
//! map selector becomes an equality-only label selector.

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{
    PodTemplateSpec, ReplicationController, ReplicationControllerCondition,
    ReplicationControllerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use k8s_openapi::serde::Serialize;

use crate::workload::runner::PodOwner;

/// The spec fields the controller acts on.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReplicaSpec {
    pub(crate) replicas: i32,
    pub(crate) min_ready_seconds: i32,
    pub(crate) selector: LabelSelector,
    pub(crate) template: Option<PodTemplateSpec>,
}

/// A status condition (only `ReplicaFailure` is ever written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplicaCondition {
    pub(crate) type_: String,
    pub(crate) status: String,
    pub(crate) reason: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) last_transition_time: Option<Time>,
}

/// The status the controller computes; absent counts read as zero.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ReplicaStatus {
    pub(crate) replicas: i32,
    pub(crate) fully_labeled_replicas: i32,
    pub(crate) ready_replicas: i32,
    pub(crate) available_replicas: i32,
    pub(crate) observed_generation: i64,
    pub(crate) conditions: Vec<ReplicaCondition>,
}

/// Zero is written as absent, as upstream's `omitempty` fields are.
fn nonzero<T: Default + PartialEq>(v: T) -> Option<T> {
    (v != T::default()).then_some(v)
}

/// A kind the replica controller manages.
pub(crate) trait ReplicaKind: PodOwner + Serialize {
    const API_VERSION: &'static str;
    /// The controller name events are reported under.
    const REPORTER: &'static str;
    fn spec_view(&self) -> ReplicaSpec;
    fn status_view(&self) -> ReplicaStatus;
    fn set_status(&mut self, status: &ReplicaStatus);
}

impl PodOwner for ReplicaSet {
    const KIND: &'static str = "ReplicaSet";

    fn pod_selector(&self) -> Option<LabelSelector> {
        self.spec.as_ref().map(|s| s.selector.clone())
    }
}

impl PodOwner for ReplicationController {
    const KIND: &'static str = "ReplicationController";

    fn pod_selector(&self) -> Option<LabelSelector> {
        self.spec.as_ref().map(|s| LabelSelector {
            match_labels: s.selector.clone(),
            match_expressions: None,
        })
    }
}

impl ReplicaKind for ReplicaSet {
    const API_VERSION: &'static str = "apps/v1";
    const REPORTER: &'static str = "replicaset-controller";

    fn spec_view(&self) -> ReplicaSpec {
        let Some(spec) = self.spec.as_ref() else {
            return ReplicaSpec::default();
        };
        ReplicaSpec {
            replicas: spec.replicas.unwrap_or(1),
            min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
            selector: self.pod_selector().unwrap_or_default(),
            template: spec.template.clone(),
        }
    }

    fn status_view(&self) -> ReplicaStatus {
        let Some(s) = self.status.as_ref() else {
            return ReplicaStatus::default();
        };
        ReplicaStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas.unwrap_or(0),
            ready_replicas: s.ready_replicas.unwrap_or(0),
            available_replicas: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
            conditions: s
                .conditions
                .iter()
                .flatten()
                .map(|c| ReplicaCondition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition_time: c.last_transition_time.clone(),
                })
                .collect(),
        }
    }

    fn set_status(&mut self, s: &ReplicaStatus) {
        let terminating = self.status.as_ref().and_then(|st| st.terminating_replicas);
        self.status = Some(ReplicaSetStatus {
            replicas: s.replicas,
            fully_labeled_replicas: nonzero(s.fully_labeled_replicas),
            ready_replicas: nonzero(s.ready_replicas),
            available_replicas: nonzero(s.available_replicas),
            observed_generation: nonzero(s.observed_generation),
            terminating_replicas: terminating,
            conditions: (!s.conditions.is_empty()).then(|| {
                s.conditions
                    .iter()
                    .map(|c| ReplicaSetCondition {
                        type_: c.type_.clone(),
                        status: c.status.clone(),
                        reason: c.reason.clone(),
                        message: c.message.clone(),
                        last_transition_time: c.last_transition_time.clone(),
                    })
                    .collect()
            }),
        });
    }
}

impl ReplicaKind for ReplicationController {
    const API_VERSION: &'static str = "v1";
    const REPORTER: &'static str = "replication-controller";

    fn spec_view(&self) -> ReplicaSpec {
        let Some(spec) = self.spec.as_ref() else {
            return ReplicaSpec::default();
        };
        ReplicaSpec {
            replicas: spec.replicas.unwrap_or(1),
            min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
            selector: self.pod_selector().unwrap_or_default(),
            template: spec.template.clone(),
        }
    }

    fn status_view(&self) -> ReplicaStatus {
        let Some(s) = self.status.as_ref() else {
            return ReplicaStatus::default();
        };
        ReplicaStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas.unwrap_or(0),
            ready_replicas: s.ready_replicas.unwrap_or(0),
            available_replicas: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
            conditions: s
                .conditions
                .iter()
                .flatten()
                .map(|c| ReplicaCondition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition_time: c.last_transition_time.clone(),
                })
                .collect(),
        }
    }

    fn set_status(&mut self, s: &ReplicaStatus) {
        self.status = Some(ReplicationControllerStatus {
            replicas: s.replicas,
            fully_labeled_replicas: nonzero(s.fully_labeled_replicas),
            ready_replicas: nonzero(s.ready_replicas),
            available_replicas: nonzero(s.available_replicas),
            observed_generation: nonzero(s.observed_generation),
            conditions: (!s.conditions.is_empty()).then(|| {
                s.conditions
                    .iter()
                    .map(|c| ReplicationControllerCondition {
                        type_: c.type_.clone(),
                        status: c.status.clone(),
                        reason: c.reason.clone(),
                        message: c.message.clone(),
                        last_transition_time: c.last_transition_time.clone(),
                    })
                    .collect()
            }),
        });
    }
}
