//! Conversions between versions of one resource, for the resources served in
//! a version other than the one they are stored in.
//!
//! `events.k8s.io/v1` Events are core `v1` Events under other field names
//! (upstream keeps both in one store).
//!
//! `autoscaling/v1` HorizontalPodAutoscalers are stored as `autoscaling/v2`.
//! v1 carries only a CPU utilization target; as upstream does, what v1 cannot
//! express (other metrics, behavior, conditions, other current metrics) rides
//! along in `autoscaling.alpha.kubernetes.io/*` annotations, here in the v2
//! JSON form, so that an object read and written back through v1 keeps it.

use serde_json::{Value, json};

use super::Conversion;

/// `autoscaling/v1` HorizontalPodAutoscaler stored as `autoscaling/v2`.
pub const HPA_V1: Conversion = Conversion {
    to_storage: hpa_v1_to_v2,
    from_storage: hpa_v2_to_v1,
};

/// `events.k8s.io/v1` Event stored as a core `v1` Event.
pub const EVENTS_V1: Conversion = Conversion {
    to_storage: events_v1_to_core,
    from_storage: core_event_to_events_v1,
};

/// (core v1 field, events.k8s.io/v1 field) where the names differ.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

fn rename_fields(mut obj: Value, api_version: &str, from_core: bool) -> Value {
    if let Some(map) = obj.as_object_mut() {
        for (core, events) in EVENT_FIELDS {
            let (from, to) = if from_core {
                (core, events)
            } else {
                (events, core)
            };
            if let Some(v) = map.remove(*from) {
                map.insert((*to).to_string(), v);
            }
        }
        map.insert("apiVersion".into(), Value::from(api_version));
    }
    obj
}

fn events_v1_to_core(obj: Value) -> Value {
    rename_fields(obj, "v1", false)
}

fn core_event_to_events_v1(obj: Value) -> Value {
    rename_fields(obj, "events.k8s.io/v1", true)
}

const METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";
const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
const CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";

/// Whether `m` is the CPU utilization metric v1 has a field for (in a spec
/// with `target`, in a status with `current`).
fn is_cpu_utilization(m: &Value, part: &str) -> bool {
    m["type"] == "Resource"
        && m["resource"]["name"] == "cpu"
        && (part == "current" || m["resource"]["target"]["type"] == "Utilization")
        && m["resource"][part]["averageUtilization"].is_i64()
}

/// Puts `value` (when non-empty) under `key` as JSON text.
fn stash(obj: &mut Value, key: &str, value: Option<Value>) {
    let keep = value.filter(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()));
    let Some(v) = keep else {
        return;
    };
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    if !obj["metadata"]["annotations"].is_object() {
        obj["metadata"]["annotations"] = json!({});
    }
    if let Some(map) = obj["metadata"]["annotations"].as_object_mut() {
        map.insert(key.into(), Value::from(v.to_string()));
    }
}

/// Takes `key` out of the annotations, parsed; drops an emptied map.
fn unstash(obj: &mut Value, key: &str) -> Option<Value> {
    let map = obj
        .get_mut("metadata")?
        .get_mut("annotations")?
        .as_object_mut()?;
    let text = map.remove(key)?;
    if map.is_empty()
        && let Some(meta) = obj["metadata"].as_object_mut()
    {
        meta.remove("annotations");
    }
    serde_json::from_str(text.as_str()?).ok()
}

fn hpa_v2_to_v1(mut v2: Value) -> Value {
    let spec = v2.get("spec").cloned().unwrap_or_else(|| json!({}));
    let status = v2.get("status").cloned();
    let metrics = spec["metrics"].as_array().cloned().unwrap_or_default();
    let (cpu, other): (Vec<Value>, Vec<Value>) = metrics
        .into_iter()
        .partition(|m| is_cpu_utilization(m, "target"));
    let mut spec1 =
        json!({"scaleTargetRef": spec["scaleTargetRef"], "maxReplicas": spec["maxReplicas"]});
    if !spec["minReplicas"].is_null() {
        spec1["minReplicas"] = spec["minReplicas"].clone();
    }
    if let Some(m) = cpu.first() {
        spec1["targetCPUUtilizationPercentage"] =
            m["resource"]["target"]["averageUtilization"].clone();
    }
    stash(&mut v2, METRICS, Some(Value::Array(other)));
    stash(&mut v2, BEHAVIOR, spec.get("behavior").cloned());
    let status = status.unwrap_or_else(|| json!({}));
    let current = status["currentMetrics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let (cpu_now, other_now): (Vec<Value>, Vec<Value>) = current
        .into_iter()
        .partition(|m| is_cpu_utilization(m, "current"));
    let mut status1 = json!({
        "currentReplicas": status["currentReplicas"].as_i64().unwrap_or(0),
        "desiredReplicas": status["desiredReplicas"].as_i64().unwrap_or(0),
    });
    for field in ["observedGeneration", "lastScaleTime"] {
        if !status[field].is_null() {
            status1[field] = status[field].clone();
        }
    }
    if let Some(m) = cpu_now.first() {
        status1["currentCPUUtilizationPercentage"] =
            m["resource"]["current"]["averageUtilization"].clone();
    }
    stash(&mut v2, CONDITIONS, status.get("conditions").cloned());
    stash(&mut v2, CURRENT_METRICS, Some(Value::Array(other_now)));
    v2["apiVersion"] = json!("autoscaling/v1");
    v2["spec"] = spec1;
    v2["status"] = status1;
    v2
}

fn hpa_v1_to_v2(mut v1: Value) -> Value {
    let spec = v1.get("spec").cloned().unwrap_or_else(|| json!({}));
    let status = v1.get("status").cloned();
    let mut metrics = unstash(&mut v1, METRICS)
        .and_then(|m| m.as_array().cloned())
        .unwrap_or_default();
    if let Some(cpu) = spec["targetCPUUtilizationPercentage"].as_i64() {
        metrics.push(json!({"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": cpu}}}));
    }
    let mut spec2 =
        json!({"scaleTargetRef": spec["scaleTargetRef"], "maxReplicas": spec["maxReplicas"]});
    if !spec["minReplicas"].is_null() {
        spec2["minReplicas"] = spec["minReplicas"].clone();
    }
    if !metrics.is_empty() {
        spec2["metrics"] = Value::Array(metrics);
    }
    if let Some(behavior) = unstash(&mut v1, BEHAVIOR) {
        spec2["behavior"] = behavior;
    }
    let conditions = unstash(&mut v1, CONDITIONS);
    let mut current = unstash(&mut v1, CURRENT_METRICS)
        .and_then(|m| m.as_array().cloned())
        .unwrap_or_default();
    v1["apiVersion"] = json!("autoscaling/v2");
    v1["spec"] = spec2;
    match status {
        Some(status) if status.is_object() => {
            let mut status2 =
                json!({"desiredReplicas": status["desiredReplicas"].as_i64().unwrap_or(0)});
            for field in ["observedGeneration", "lastScaleTime", "currentReplicas"] {
                if !status[field].is_null() {
                    status2[field] = status[field].clone();
                }
            }
            if let Some(cpu) = status["currentCPUUtilizationPercentage"].as_i64() {
                current.push(json!({"type": "Resource", "resource": {"name": "cpu",
                    "current": {"averageUtilization": cpu}}}));
            }
            if !current.is_empty() {
                status2["currentMetrics"] = Value::Array(current);
            }
            if let Some(c) = conditions {
                status2["conditions"] = c;
            }
            v1["status"] = status2;
        }
        _ => {
            if let Some(o) = v1.as_object_mut() {
                o.remove("status");
            }
        }
    }
    v1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpa_round_trips_through_v1() {
        let v2 = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h", "namespace": "d"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 5,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}},
            "status": {"currentReplicas": 2, "desiredReplicas": 3,
                "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 40}}}]}});
        let v1 = hpa_v2_to_v1(v2.clone());
        assert_eq!(v1["apiVersion"], "autoscaling/v1");
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 70);
        assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 40);
        assert!(v1["metadata"]["annotations"][METRICS].is_string());
        let back = hpa_v1_to_v2(v1);
        assert_eq!(back["spec"]["behavior"], v2["spec"]["behavior"]);
        assert_eq!(back["spec"]["metrics"], v2["spec"]["metrics"]);
        assert_eq!(back["status"], v2["status"]);
        assert!(back["metadata"].get("annotations").is_none());
    }

    #[test]
    fn events_v1_are_core_events_renamed() {
        let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e"}, "regarding": {"kind": "Pod", "name": "p"},
            "note": "hello", "reportingController": "c", "reason": "R"});
        let core = events_v1_to_core(ev.clone());
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "hello");
        assert_eq!(core["reportingComponent"], "c");
        assert_eq!(core["reason"], "R");
        assert_eq!(core_event_to_events_v1(core), ev);
    }

    #[test]
    fn a_new_v1_hpa_has_v1_status_defaults() {
        let v2 = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3}});
        let v1 = hpa_v2_to_v1(v2);
        assert_eq!(
            v1["status"],
            json!({"currentReplicas": 0, "desiredReplicas": 0})
        );
        assert!(v1["metadata"].get("annotations").is_none());
    }
}
