//! The scheduler's writes to the API server: binding a pod to its node,
//! recording Events, setting the pod's `PodScheduled` condition, and
//! evicting preemption victims. Everything here runs off the scheduling
//! loop (spawned tasks), so network latency never stalls scheduling.

use k8s_openapi::api::core::v1::{Binding, Event, EventSource, ObjectReference, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::{Value, json};
use thiserror::Error;

/// A failed write.
#[derive(Debug, Error)]
pub enum ApiError {
    #[error("API request failed: {0}")]
    Kube(#[from] kube::Error),
}

impl ApiError {
    /// The object (pod) no longer exists.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::Kube(kube::Error::Api(s)) if s.code == 404)
    }
}

/// Who the scheduler says it is in Events.
#[derive(Debug, Clone)]
pub struct Reporter {
    pub component: String,
    pub instance: String,
}

fn pods(client: &kube::Client, pod: &Pod) -> Api<Pod> {
    Api::namespaced(
        client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
    )
}

/// POSTs `pods/binding`, assigning `pod` to `node`.
pub async fn bind(client: &kube::Client, pod: &Pod, node: &str) -> Result<(), ApiError> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.to_string()),
            ..Default::default()
        },
    };
    // The answer is a Status object; its content does not matter.
    let _: serde_json::Value = pods(client, pod)
        .create_subresource("binding", name, &PostParams::default(), &binding)
        .await?;
    Ok(())
}

fn involved(pod: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// Creates a core/v1 Event about `pod` (best effort: failures are logged).
pub async fn record_event(
    client: &kube::Client,
    reporter: &Reporter,
    pod: &Pod,
    type_: &str,
    reason: &str,
    action: &str,
    message: &str,
) {
    let now = Timestamp::now();
    let namespace = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let event = Event {
        metadata: ObjectMeta {
            // Upstream's naming: the object's name and a hex nanosecond stamp.
            name: Some(format!(
                "{}.{:x}",
                pod.metadata.name.as_deref().unwrap_or_default(),
                now.as_nanosecond()
            )),
            namespace: Some(namespace.clone()),
            ..Default::default()
        },
        involved_object: involved(pod),
        reason: Some(reason.into()),
        message: Some(message.into()),
        type_: Some(type_.into()),
        action: Some(action.into()),
        count: Some(1),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        reporting_component: Some(reporter.component.clone()),
        reporting_instance: Some(reporter.instance.clone()),
        source: Some(EventSource {
            component: Some(reporter.component.clone()),
            host: None,
        }),
        related: None,
        series: None,
    };
    let events: Api<Event> = Api::namespaced(client.clone(), &namespace);
    if let Err(e) = events.create(&PostParams::default(), &event).await {
        tracing::warn!(error = %e, reason, "recording event failed");
    }
}

/// The pod's current PodScheduled condition.
fn current_condition(pod: &Pod) -> Option<&PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled")
}

/// What to do with the pod's `status.nominatedNodeName`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nomination<'a> {
    Keep,
    Set(&'a str),
    Clear,
}

/// Sets `PodScheduled=False` with `reason`/`message` (and the nominated node
/// when preempting) through `pods/status`, skipping the call when nothing
/// would change, as upstream does.
pub async fn set_unschedulable(
    client: &kube::Client,
    pod: &Pod,
    reason: &str,
    message: &str,
    nomination: Nomination<'_>,
) -> Result<(), ApiError> {
    let current = current_condition(pod);
    let current_nominated = pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty());
    let unchanged_condition = current.is_some_and(|c| {
        c.status == "False"
            && c.reason.as_deref() == Some(reason)
            && c.message.as_deref() == Some(message)
    });
    let nominated_change = match nomination {
        Nomination::Keep => false,
        Nomination::Set(n) => current_nominated != Some(n),
        Nomination::Clear => current_nominated.is_some(),
    };
    if unchanged_condition && !nominated_change {
        return Ok(());
    }
    // The transition time only moves when the status flips.
    let transition = match current {
        Some(PodCondition {
            status,
            last_transition_time: Some(t),
            ..
        }) if status == "False" => t.0,
        _ => Timestamp::now(),
    };
    let mut status = json!({
        "conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": reason,
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": Time(transition),
        }]
    });
    match nomination {
        Nomination::Keep => {}
        Nomination::Set(n) => status["nominatedNodeName"] = json!(n),
        // null removes the field in a strategic merge patch.
        Nomination::Clear if current_nominated.is_some() => {
            status["nominatedNodeName"] = Value::Null
        }
        Nomination::Clear => {}
    }
    let patch = json!({"status": status});
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    pods(client, pod)
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await?;
    Ok(())
}

/// Evicts a preemption victim: marks it with a `DisruptionTarget`
/// condition, deletes it, and records a `Preempted` event on it.
pub async fn preempt_victim(
    client: &kube::Client,
    reporter: &Reporter,
    victim_key: &str,
    preemptor: &Pod,
    node: &str,
) -> Result<(), ApiError> {
    let (ns, name) = victim_key
        .split_once('/')
        .unwrap_or(("default", victim_key));
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let victim = match api.get(name).await {
        Ok(v) => v,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let condition = json!({"status": {"conditions": [{
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "PreemptionByScheduler",
        "message": format!("{}: preempting to accommodate a higher priority pod", reporter.component),
        "lastTransitionTime": Time(Timestamp::now()),
    }]}});
    match api
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(condition))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let dp = DeleteParams {
        preconditions: victim.metadata.uid.clone().map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    record_event(
        client,
        reporter,
        &victim,
        "Normal",
        "Preempted",
        "Preempting",
        &format!(
            "Preempted by pod {} on node {node}",
            preemptor.metadata.uid.as_deref().unwrap_or_default()
        ),
    )
    .await;
    Ok(())
}
