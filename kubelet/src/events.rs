//! Events the kubelet records about pods and their containers (probe
//! failures, kills, hook failures, deadlines), as upstream's kubelet does so
//! that `kubectl describe pod` shows them. Publishing happens in the
//! background: an event that cannot be written is logged, never an error.

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// Records events as the kubelet of one node.
#[derive(Clone)]
pub(crate) struct Events {
    recorder: Recorder,
}

impl Events {
    pub(crate) fn new(client: kube::Client, node: &str) -> Self {
        let reporter = Reporter {
            controller: "kubelet".into(),
            instance: Some(node.into()),
        };
        Self {
            recorder: Recorder::new(client, reporter),
        }
    }

    pub(crate) fn normal(&self, regarding: ObjectReference, reason: &str, note: String) {
        self.publish(regarding, EventType::Normal, reason, note);
    }

    pub(crate) fn warning(&self, regarding: ObjectReference, reason: &str, note: String) {
        self.publish(regarding, EventType::Warning, reason, note);
    }

    fn publish(&self, regarding: ObjectReference, type_: EventType, reason: &str, note: String) {
        let recorder = self.recorder.clone();
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: reason.into(),
            secondary: None,
        };
        tokio::spawn(async move {
            if let Err(e) = recorder.publish(&event, &regarding).await {
                tracing::debug!(error = %e, reason = %event.reason, "recording an event failed");
            }
        });
    }
}

/// A reference to the pod.
pub(crate) fn pod_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// A reference to one container of the pod, with upstream's field path
/// (`spec.containers{name}`, `spec.initContainers{name}` or
/// `spec.ephemeralContainers{name}`).
pub(crate) fn container_ref(pod: &Pod, container: &str) -> ObjectReference {
    let spec = pod.spec.as_ref();
    let init = spec
        .and_then(|s| s.init_containers.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.name == container));
    let ephemeral = spec
        .and_then(|s| s.ephemeral_containers.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.name == container));
    let list = if init {
        "initContainers"
    } else if ephemeral {
        "ephemeralContainers"
    } else {
        "containers"
    };
    ObjectReference {
        field_path: Some(format!("spec.{list}{{{container}}}")),
        ..pod_ref(pod)
    }
}
