//! Upstream's defaulting of built-in types (the `SetDefaults_*` functions of
//! `pkg/apis/*/v1`), applied on create and update so that a manifest round trip
//! gives upstream's object, plus the few kind checks the strategies need.

use serde_json::{Map, Value, json};

use crate::api_error::FieldError;

fn set_default(obj: &mut Map<String, Value>, key: &str, value: Value) {
    if is_unset(obj, key) {
        obj.insert(key.to_string(), value);
    }
}

/// Absent or `null`, as a Go nil pointer.
fn is_unset(obj: &Map<String, Value>, key: &str) -> bool {
    obj.get(key).is_none_or(Value::is_null)
}

fn object<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    let map = v.as_object_mut()?;
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), json!({}));
    }
    map.get_mut(key)?.as_object_mut()
}

fn default_container(c: &mut Value) {
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some(c) = c.as_object_mut() else { return };
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    let tag = image.rsplit('/').next().unwrap_or("");
    let pinned = image.contains('@') || tag.split_once(':').is_some_and(|(_, t)| t != "latest");
    set_default(
        c,
        "imagePullPolicy",
        json!(if pinned { "IfNotPresent" } else { "Always" }),
    );
    set_default(c, "resources", json!({}));
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(p, "protocol", json!("TCP"));
        }
    }
}

/// `SetDefaults_Pod`: what `pod_spec` sets plus what only a Pod (not a
/// template) gets.
pub fn pod(spec: &mut Value) {
    pod_spec(spec);
    if let Some(s) = spec.as_object_mut() {
        set_default(s, "enableServiceLinks", json!(true));
        for key in ["containers", "initContainers"] {
            if let Some(list) = s.get_mut(key).and_then(Value::as_array_mut) {
                list.iter_mut().for_each(requests_from_limits);
            }
        }
    }
}

/// A resource with a limit and no request is requested at its limit.
fn requests_from_limits(container: &mut Value) {
    let Some(resources) = container
        .get_mut("resources")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    let requests = resources.entry("requests").or_insert_with(|| json!({}));
    if let Some(requests) = requests.as_object_mut() {
        for (resource, value) in limits {
            requests.entry(resource).or_insert(value);
        }
    }
}

/// `SetDefaults_PodSpec` and its containers (pods and pod templates alike).
pub fn pod_spec(spec: &mut Value) {
    let Some(s) = spec.as_object_mut() else {
        return;
    };
    set_default(s, "restartPolicy", json!("Always"));
    set_default(s, "terminationGracePeriodSeconds", json!(30));
    set_default(s, "dnsPolicy", json!("ClusterFirst"));
    set_default(s, "securityContext", json!({}));
    set_default(s, "schedulerName", json!("default-scheduler"));
    service_account_alias(s);
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(list) = s.get_mut(key).and_then(Value::as_array_mut) {
            list.iter_mut().for_each(default_container);
        }
    }
}

/// `serviceAccount` is the deprecated alias of `serviceAccountName`
/// (upstream's v1 conversion): a spec naming only the alias gets the name,
/// and the alias always echoes the name (the name wins when both are given).
fn service_account_alias(spec: &mut Map<String, Value>) {
    let name = ["serviceAccountName", "serviceAccount"]
        .iter()
        .find_map(|key| {
            spec.get(*key)
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
        })
        .map(str::to_string);
    if let Some(name) = name {
        spec.insert("serviceAccountName".into(), json!(name));
        spec.insert("serviceAccount".into(), json!(name));
    }
}

fn template_spec(obj: &mut Value, template_path: &[&str]) {
    let mut cur = obj;
    for key in template_path {
        match cur.get_mut(*key) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(spec) = cur.get_mut("spec") {
        pod_spec(spec);
    }
}

/// Defaults of workload kinds, chosen by the object's kind.
pub fn workload(obj: &mut Value) {
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some(spec) = object(obj, "spec") else {
        return;
    };
    match kind.as_str() {
        "Deployment" => {
            set_default(spec, "replicas", json!(1));
            set_default(
                spec,
                "strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
            );
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "progressDeadlineSeconds", json!(600));
        }
        "ReplicaSet" => set_default(spec, "replicas", json!(1)),
        "ReplicationController" => {
            set_default(spec, "replicas", json!(1));
            let labels = spec
                .get("template")
                .and_then(|t| t.pointer("/metadata/labels"))
                .cloned();
            if let Some(labels) = labels {
                set_default(spec, "selector", labels);
            }
        }
        "StatefulSet" => {
            set_default(spec, "replicas", json!(1));
            set_default(spec, "podManagementPolicy", json!("OrderedReady"));
            set_default(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
        }
        "DaemonSet" => {
            set_default(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            );
            set_default(spec, "revisionHistoryLimit", json!(10));
        }
        "Job" => {
            // Upstream: completions is defaulted only when parallelism is
            // unset too (a work queue sets parallelism alone).
            if is_unset(spec, "completions") && is_unset(spec, "parallelism") {
                set_default(spec, "completions", json!(1));
            }
            set_default(spec, "parallelism", json!(1));
            let backoff_limit = if is_unset(spec, "backoffLimitPerIndex") {
                json!(6)
            } else {
                json!(i32::MAX)
            };
            set_default(spec, "backoffLimit", backoff_limit);
            set_default(spec, "completionMode", json!("NonIndexed"));
            set_default(spec, "suspend", json!(false));
            let replacement = if is_unset(spec, "podFailurePolicy") {
                "TerminatingOrFailed"
            } else {
                "Failed"
            };
            set_default(spec, "podReplacementPolicy", json!(replacement));
        }
        "CronJob" => {
            set_default(spec, "concurrencyPolicy", json!("Allow"));
            set_default(spec, "suspend", json!(false));
            set_default(spec, "successfulJobsHistoryLimit", json!(3));
            set_default(spec, "failedJobsHistoryLimit", json!(1));
        }
        _ => {}
    }
    if kind == "CronJob" {
        template_spec(obj, &["spec", "jobTemplate", "spec", "template"]);
    } else {
        template_spec(obj, &["spec", "template"]);
    }
}

/// Jobs get a selector and template labels tied to their uid (upstream's job strategy).
pub fn job_selector(obj: &mut Value) {
    if obj.get("kind").and_then(Value::as_str) != Some("Job")
        || obj.pointer("/spec/selector").is_some()
    {
        return;
    }
    let uid = obj
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    obj["spec"]["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    if let Some(template) = obj
        .pointer_mut("/spec/template")
        .and_then(Value::as_object_mut)
    {
        let meta = template.entry("metadata").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if let Some(labels) = labels.as_object_mut() {
                labels.insert("batch.kubernetes.io/controller-uid".into(), json!(uid));
                labels.insert("batch.kubernetes.io/job-name".into(), json!(name));
                labels.insert("controller-uid".into(), json!(uid));
                labels.insert("job-name".into(), json!(name));
            }
        }
    }
}

/// `SetDefaults_Service`, without IP allocation.
pub fn service(obj: &mut Value) {
    let Some(spec) = object(obj, "spec") else {
        return;
    };
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if ty != "ExternalName" {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(p, "protocol", json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                set_default(p, "targetPort", port);
            }
        }
    }
}

/// The pod's QoS class from its containers' requests and limits.
pub fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let req = c.pointer("/resources/requests").and_then(Value::as_object);
        let lim = c.pointer("/resources/limits").and_then(Value::as_object);
        let relevant = |m: Option<&Map<String, Value>>, k: &str| m.and_then(|m| m.get(k)).cloned();
        for res in ["cpu", "memory"] {
            let (r, l) = (relevant(req, res), relevant(lim, res));
            if r.is_some() || l.is_some() {
                any = true;
            }
            match (r, l) {
                (_, None) => guaranteed = false,
                (Some(r), Some(l)) if r != l => guaranteed = false,
                _ => {}
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

/// The minimal pod-spec checks: containers present, each named and with an image.
pub fn validate_pod_spec(spec: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match spec.get("containers").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => {
            for (i, c) in list.iter().enumerate() {
                for field in ["name", "image"] {
                    if c.get(field)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .is_empty()
                    {
                        errs.push(FieldError::required(
                            format!("{path}.containers[{i}].{field}"),
                            "",
                        ));
                    }
                }
            }
        }
        _ => errs.push(FieldError::required(format!("{path}.containers"), "")),
    }
    errs.extend(crate::validation::sysctls::validate(spec, path));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_defaults_and_qos() {
        let mut spec = json!({"containers": [{"name": "a", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]});
        pod_spec(&mut spec);
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["containers"][0]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(spec["containers"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(qos_class(&spec), "BestEffort");
        assert_eq!(
            spec.get("enableServiceLinks"),
            None,
            "templates get no service links default"
        );
        pod(&mut spec);
        assert_eq!(spec["enableServiceLinks"], true);
        let g = json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
        assert_eq!(qos_class(&g), "Guaranteed");
        let b = json!({"containers": [{"resources": {"requests": {"cpu": "1"}}}]});
        assert_eq!(qos_class(&b), "Burstable");
    }

    #[test]
    fn latest_or_untagged_images_are_always_pulled() {
        for (image, policy) in [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("reg:5000/nginx", "Always"),
            ("reg:5000/nginx:1", "IfNotPresent"),
        ] {
            let mut c = json!({"image": image});
            default_container(&mut c);
            assert_eq!(c["imagePullPolicy"], policy, "{image}");
        }
    }

    #[test]
    fn service_account_alias_follows_the_name() {
        let alias = |spec: Value| {
            let mut spec = spec;
            pod_spec(&mut spec);
            (
                spec.get("serviceAccountName").cloned(),
                spec.get("serviceAccount").cloned(),
            )
        };
        let both = |n: &str| (Some(json!(n)), Some(json!(n)));
        assert_eq!(alias(json!({"serviceAccount": "old"})), both("old"));
        assert_eq!(alias(json!({"serviceAccountName": "new"})), both("new"));
        assert_eq!(
            alias(json!({"serviceAccountName": "new", "serviceAccount": "old"})),
            both("new")
        );
        assert_eq!(
            alias(json!({"serviceAccountName": "", "serviceAccount": "old"})),
            both("old")
        );
        assert_eq!(alias(json!({})), (None, None));
    }

    fn job_spec(spec: Value) -> Value {
        let mut job = json!({"kind": "Job", "spec": spec});
        workload(&mut job);
        job["spec"].clone()
    }

    #[test]
    fn job_defaults_follow_upstream() {
        let plain = job_spec(json!({}));
        assert_eq!(
            (plain["completions"].clone(), plain["parallelism"].clone()),
            (json!(1), json!(1))
        );
        assert_eq!(plain["backoffLimit"], 6);
        assert_eq!(plain["podReplacementPolicy"], "TerminatingOrFailed");

        let work_queue = job_spec(json!({"parallelism": 3}));
        assert_eq!(
            work_queue.get("completions"),
            None,
            "a work queue has no completions"
        );
        assert_eq!(work_queue["parallelism"], 3);

        let fixed = job_spec(json!({"completions": 5}));
        assert_eq!(
            (fixed["completions"].clone(), fixed["parallelism"].clone()),
            (json!(5), json!(1))
        );

        let per_index = job_spec(
            json!({"backoffLimitPerIndex": 1, "completionMode": "Indexed", "completions": 2}),
        );
        assert_eq!(per_index["backoffLimit"], i32::MAX);

        let policy = job_spec(json!({"podFailurePolicy": {"rules": []}}));
        assert_eq!(policy["podReplacementPolicy"], "Failed");
    }
}
