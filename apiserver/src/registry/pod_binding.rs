//! `pods/binding` and the legacy `bindings` collection: how a scheduler assigns
//! a pod to a node. A binding sets `spec.nodeName` once (a bound pod is never
//! re-bound), copies the binding's annotations onto the pod and marks the pod's
//! `PodScheduled` condition True, in one compare-and-swap write of the pod, as
//! upstream's `BindingREST` does. The binding itself is never stored.

use serde_json::{Map, Value, json};

use super::WriteOptions;
use super::meta;
use super::store::{Store, UpdateTarget};
use crate::api_error::{ApiError, ApiResult, FieldError, FieldErrorKind};
use crate::resources::ResourceInfo;

/// The parts of a `Binding` the server acts on.
#[derive(Debug, PartialEq)]
pub struct Binding {
    pub pod: String,
    /// Preconditions on the pod (upstream keeps the binding's uid and
    /// resourceVersion for exactly this).
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub node: String,
    pub annotations: Map<String, Value>,
}

impl Binding {
    /// Reads a decoded `Binding`, checked as upstream's `ValidatePodBinding`.
    /// Upstream returns those field errors unwrapped, so the client sees a 500
    /// with reason `Unknown` and the aggregated message; so does this.
    pub fn from_object(obj: &Value) -> ApiResult<Binding> {
        let kind = meta::str_at(obj, "/target/kind").unwrap_or("");
        let node = meta::str_at(obj, "/target/name").unwrap_or("");
        let mut errors = Vec::new();
        if !kind.is_empty() && kind != "Node" {
            errors.push(FieldError::new(
                FieldErrorKind::NotSupported,
                "target.kind",
                Some(format!("{kind:?}")),
                r#"supported values: "Node", "<empty>""#,
            ));
        }
        if node.is_empty() {
            errors.push(FieldError::required("target.name", ""));
        }
        if !errors.is_empty() {
            return Err(ApiError::new(500, "Unknown", aggregate_message(&errors)));
        }
        let non_empty = |p: &str| {
            meta::str_at(obj, p)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Ok(Binding {
            pod: meta::name(obj).to_string(),
            uid: non_empty("/metadata/uid"),
            resource_version: non_empty("/metadata/resourceVersion"),
            node: node.to_string(),
            annotations: obj
                .pointer("/metadata/annotations")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        })
    }
}

/// Go's `utilerrors.Aggregate` message: one error alone, several in brackets.
fn aggregate_message(errors: &[FieldError]) -> String {
    let parts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    match parts.as_slice() {
        [one] => one.clone(),
        _ => format!("[{}]", parts.join(", ")),
    }
}

/// A binding refused because of the pod's state (409 on `pods/binding`).
fn refused(pod: &str, why: &str) -> ApiError {
    ApiError::new(
        409,
        "Conflict",
        format!("Operation cannot be fulfilled on pods/binding {pod:?}: {why}"),
    )
    .with_details(json!({"name": pod, "kind": "pods/binding"}))
}

/// A failed uid or resourceVersion precondition (409 on `pods`).
fn precondition_failed(
    pods: &ResourceInfo,
    pod: &str,
    what: &str,
    want: &str,
    have: &str,
) -> ApiError {
    ApiError::conflict(
        pods,
        pod,
        &format!(
            "Precondition failed: {what} in precondition: {want}, {what} in object meta: {have}"
        ),
    )
}

/// Binds the pod named by `binding` to its node; `url_name` is the pod named
/// by the request path (they must agree).
pub async fn bind(
    store: &Store,
    pods: &ResourceInfo,
    ns: Option<&str>,
    url_name: &str,
    binding: &Binding,
    opts: &WriteOptions,
) -> ApiResult<()> {
    if binding.pod != url_name {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Binding object",
        ));
    }
    let name = binding.pod.as_str();
    store
        .update(pods, ns, name, UpdateTarget::Server, opts, |current| {
            let Some(current) = current else {
                return Err(ApiError::not_found(pods, name));
            };
            let uid = meta::str_at(current, "/metadata/uid").unwrap_or("");
            if let Some(want) = binding.uid.as_deref().filter(|w| *w != uid) {
                return Err(precondition_failed(pods, name, "UID", want, uid));
            }
            let rv = meta::resource_version(current);
            if let Some(want) = binding.resource_version.as_deref().filter(|w| *w != rv) {
                return Err(precondition_failed(pods, name, "ResourceVersion", want, rv));
            }
            assign(current.clone(), &binding.node, &binding.annotations)
                .map_err(|why| refused(name, &why))
        })
        .await?;
    Ok(())
}

/// The pod as bound to `node`, or why it cannot be.
fn assign(mut pod: Value, node: &str, annotations: &Map<String, Value>) -> Result<Value, String> {
    let name = meta::name(&pod).to_string();
    if meta::is_deleting(&pod) {
        return Err(format!(
            "pod {name} is being deleted, cannot be assigned to a host"
        ));
    }
    if let Some(bound) = meta::str_at(&pod, "/spec/nodeName").filter(|n| !n.is_empty()) {
        return Err(format!("pod {name} is already assigned to node {bound:?}"));
    }
    if pod
        .pointer("/spec/schedulingGates")
        .and_then(Value::as_array)
        .is_some_and(|g| !g.is_empty())
    {
        return Err(format!("pod {name} has non-empty .spec.schedulingGates"));
    }
    pod["spec"]["nodeName"] = json!(node);
    if !annotations.is_empty() {
        let m = meta::meta_mut(&mut pod);
        let target = m.entry("annotations").or_insert_with(|| json!({}));
        if let Some(target) = target.as_object_mut() {
            target.extend(annotations.clone());
        }
    }
    set_scheduled(&mut pod);
    Ok(pod)
}

/// Replaces the `PodScheduled` condition with a True one, keeping its
/// transition time when it was True already (upstream's `UpdatePodCondition`).
fn set_scheduled(pod: &mut Value) {
    if !pod.get("status").is_some_and(Value::is_object) {
        pod["status"] = json!({});
    }
    let conditions = pod["status"]
        .as_object_mut()
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    let Some(Value::Array(conditions)) = conditions else {
        return;
    };
    let existing = conditions
        .iter()
        .position(|c| c.get("type").and_then(Value::as_str) == Some("PodScheduled"));
    let transition = existing
        .map(|i| &conditions[i])
        .filter(|c| c.get("status").and_then(Value::as_str) == Some("True"))
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(meta::now_rfc3339()));
    let condition = json!({
        "type": "PodScheduled",
        "status": "True",
        "lastProbeTime": null,
        "lastTransitionTime": transition,
    });
    match existing {
        Some(i) => conditions[i] = condition,
        None => conditions.push(condition),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": []}, "status": {"phase": "Pending"}})
    }

    #[test]
    fn binding_sets_node_annotations_and_condition() {
        let mut ann = Map::new();
        ann.insert("a".into(), json!("b"));
        let bound = assign(pod(), "n1", &ann).expect("binds");
        assert_eq!(bound["spec"]["nodeName"], "n1");
        assert_eq!(bound["metadata"]["annotations"]["a"], "b");
        let cond = &bound["status"]["conditions"][0];
        assert_eq!(cond["type"], "PodScheduled");
        assert_eq!(cond["status"], "True");
        assert!(cond["lastTransitionTime"].is_string());
        assert!(cond.get("lastProbeTime").is_some_and(Value::is_null));
    }

    #[test]
    fn an_unschedulable_condition_is_replaced_whole() {
        let mut p = pod();
        p["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes", "lastTransitionTime": "2020-01-01T00:00:00Z"}]);
        let bound = assign(p, "n1", &Map::new()).expect("binds");
        let conds = bound["status"]["conditions"].as_array().expect("array");
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0]["status"], "True");
        assert!(conds[0].get("reason").is_none());
        assert_ne!(conds[0]["lastTransitionTime"], "2020-01-01T00:00:00Z");
    }

    #[test]
    fn refusals_use_upstreams_words() {
        let mut bound = pod();
        bound["spec"]["nodeName"] = json!("n0");
        assert_eq!(
            assign(bound, "n1", &Map::new()).unwrap_err(),
            r#"pod p is already assigned to node "n0""#
        );
        let mut gated = pod();
        gated["spec"]["schedulingGates"] = json!([{"name": "g"}]);
        assert_eq!(
            assign(gated, "n1", &Map::new()).unwrap_err(),
            "pod p has non-empty .spec.schedulingGates"
        );
        let mut deleting = pod();
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(
            assign(deleting, "n1", &Map::new()).unwrap_err(),
            "pod p is being deleted, cannot be assigned to a host"
        );
    }

    #[test]
    fn binding_validation_aggregates_as_upstream() {
        let err =
            Binding::from_object(&json!({"metadata": {"name": "p"}, "target": {"kind": "Pod"}}))
                .unwrap_err();
        assert_eq!(err.code, 500);
        assert_eq!(
            err.message,
            r#"[target.kind: Unsupported value: "Pod": supported values: "Node", "<empty>", target.name: Required value]"#
        );
        let ok = Binding::from_object(
            &json!({"metadata": {"name": "p", "uid": "u"}, "target": {"name": "n"}}),
        )
        .expect("valid");
        assert_eq!(ok.node, "n");
        assert_eq!(ok.uid.as_deref(), Some("u"));
        assert_eq!(ok.resource_version, None);
    }
}
