//! Events the workload controllers record about what they did (pods created
//! and deleted, ReplicaSets scaled), as upstream's controllers do, so that
//! `kubectl describe` shows them. Publishing happens in the background: an
//! event that cannot be written is logged and never fails a sync.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// Records events as one controller (e.g. `replicaset-controller`).
#[derive(Clone)]
pub(crate) struct Events {
    recorder: Recorder,
}

impl Events {
    pub(crate) fn new(client: kube::Client, controller: &str) -> Self {
        let reporter = Reporter {
            controller: controller.to_string(),
            instance: None,
        };
        Self {
            recorder: Recorder::new(client, reporter),
        }
    }

    fn publish(
        &self,
        regarding: ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let recorder = self.recorder.clone();
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note),
            action: action.to_string(),
            secondary: None,
        };
        tokio::spawn(async move {
            if let Err(e) = recorder.publish(&event, &regarding).await {
                tracing::debug!(error = %e, reason = %event.reason, "recording an event failed");
            }
        });
    }

    pub(crate) fn normal(
        &self,
        regarding: ObjectReference,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.publish(regarding, EventType::Normal, reason, action, note);
    }

    pub(crate) fn warning(
        &self,
        regarding: ObjectReference,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.publish(regarding, EventType::Warning, reason, action, note);
    }
}
