//! What one object uses of a namespace's quota (upstream's quota evaluators in
//! `pkg/quota/v1/evaluator/core` and the generic object-count evaluator), and
//! which quota resource names an object's kind is measured by.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::printers::quantity;
use crate::registry::meta;
use crate::resources::ResourceInfo;

/// Resource name → quantity (a `ResourceList`).
pub type Usage = BTreeMap<String, String>;

/// The pod compute resources a quota can name.
const POD_COMPUTE: &[&str] = &[
    "pods",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
];

/// Kinds that also have a legacy, unprefixed object-count name (`pods`, `secrets`...).
const LEGACY_COUNTS: &[&str] = &[
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
];

/// `count/<resource>[.<group>]`, the object-count name of a resource.
pub fn count_name(info: &ResourceInfo) -> String {
    if info.group.is_empty() {
        format!("count/{}", info.plural)
    } else {
        format!("count/{}.{}", info.plural, info.group)
    }
}

fn is_core(info: &ResourceInfo, plural: &str) -> bool {
    info.group.is_empty() && info.plural == plural
}

/// Whether a quota's resource `name` measures objects of `info`.
pub fn measures(info: &ResourceInfo, name: &str) -> bool {
    if name == count_name(info) {
        return true;
    }
    if info.group.is_empty() && LEGACY_COUNTS.contains(&info.plural.as_str()) && name == info.plural
    {
        return true;
    }
    if is_core(info, "pods") {
        return POD_COMPUTE.contains(&name)
            || name.starts_with("requests.")
            || name.starts_with("hugepages-");
    }
    if is_core(info, "services") {
        return matches!(name, "services.loadbalancers" | "services.nodeports");
    }
    if is_core(info, "persistentvolumeclaims") {
        return name == "requests.storage"
            || name.ends_with(".storageclass.storage.k8s.io/requests.storage")
            || name.ends_with(".storageclass.storage.k8s.io/persistentvolumeclaims");
    }
    false
}

/// What `obj` (of resource `info`) uses.
pub fn of_object(info: &ResourceInfo, obj: &Value) -> Usage {
    let mut usage = Usage::new();
    usage.insert(count_name(info), "1".into());
    if is_core(info, "pods") {
        pod(obj, &mut usage);
        return usage;
    }
    if info.group.is_empty() && LEGACY_COUNTS.contains(&info.plural.as_str()) {
        usage.insert(info.plural.clone(), "1".into());
    }
    if is_core(info, "services") {
        service(obj, &mut usage);
    }
    if is_core(info, "persistentvolumeclaims") {
        claim(obj, &mut usage);
    }
    usage
}

fn add_to(usage: &mut Usage, name: &str, q: &str) {
    let sum = match usage.get(name) {
        Some(have) => quantity::add(have, q).unwrap_or_else(|| have.clone()),
        None => quantity::add("0", q).unwrap_or_else(|| q.to_string()),
    };
    usage.insert(name.to_string(), sum);
}

/// A pod that has finished (or is past its grace period) uses no compute.
fn is_terminal(pod: &Value) -> bool {
    matches!(
        meta::str_at(pod, "/status/phase"),
        Some("Succeeded" | "Failed")
    )
}

/// Quantities of `section` (`requests` or `limits`) in one container.
fn container_list<'a>(c: &'a Value, section: &str) -> impl Iterator<Item = (&'a String, &'a str)> {
    c.pointer(&format!("/resources/{section}"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|q| (k, q)))
}

/// The pod's effective `section`: the larger of its containers' sum (with
/// sidecars) and each init container's own, plus the pod's overhead.
fn pod_list(spec: &Value, section: &str) -> Usage {
    let containers = |key: &str| {
        spec.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut total = Usage::new();
    for c in containers("containers") {
        for (k, q) in container_list(&c, section) {
            add_to(&mut total, k, q);
        }
    }
    let mut init_max = Usage::new();
    for c in containers("initContainers") {
        let sidecar = c.get("restartPolicy").and_then(Value::as_str) == Some("Always");
        for (k, q) in container_list(&c, section) {
            if sidecar {
                add_to(&mut total, k, q);
            } else if init_max
                .get(k)
                .is_none_or(|have| quantity::compare(q, have) == Some(std::cmp::Ordering::Greater))
            {
                init_max.insert(k.clone(), q.to_string());
            }
        }
    }
    for (k, q) in init_max {
        let bigger = total
            .get(&k)
            .is_none_or(|have| quantity::compare(&q, have) == Some(std::cmp::Ordering::Greater));
        if bigger {
            total.insert(k, q);
        }
    }
    if let Some(overhead) = spec.get("overhead").and_then(Value::as_object) {
        for (k, q) in overhead
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|q| (k, q)))
        {
            if total.contains_key(k) {
                add_to(&mut total, k, q);
            }
        }
    }
    total
}

fn pod(obj: &Value, usage: &mut Usage) {
    if is_terminal(obj) {
        return;
    }
    usage.insert("pods".into(), "1".into());
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let requests = pod_list(spec, "requests");
    let limits = pod_list(spec, "limits");
    for (name, q) in &requests {
        match name.as_str() {
            "cpu" | "memory" | "ephemeral-storage" => {
                usage.insert(name.clone(), q.clone());
                usage.insert(format!("requests.{name}"), q.clone());
            }
            n if n.starts_with("hugepages-") => {
                usage.insert(name.clone(), q.clone());
                usage.insert(format!("requests.{name}"), q.clone());
            }
            // Extended resources (domain-qualified names) are quota'd as requests only.
            n if n.contains('/') => {
                usage.insert(format!("requests.{name}"), q.clone());
            }
            _ => {}
        }
    }
    for (name, q) in &limits {
        if matches!(name.as_str(), "cpu" | "memory" | "ephemeral-storage") {
            usage.insert(format!("limits.{name}"), q.clone());
        }
    }
}

fn service(obj: &Value, usage: &mut Usage) {
    let kind = meta::str_at(obj, "/spec/type").unwrap_or("ClusterIP");
    let ports = obj
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    match kind {
        "LoadBalancer" => {
            usage.insert("services.loadbalancers".into(), "1".into());
            usage.insert("services.nodeports".into(), ports.to_string());
        }
        "NodePort" => {
            usage.insert("services.nodeports".into(), ports.to_string());
        }
        _ => {}
    }
}

fn claim(obj: &Value, usage: &mut Usage) {
    let class = meta::str_at(obj, "/spec/storageClassName").unwrap_or("");
    if !class.is_empty() {
        usage.insert(
            format!("{class}.storageclass.storage.k8s.io/persistentvolumeclaims"),
            "1".into(),
        );
    }
    if let Some(q) = meta::str_at(obj, "/spec/resources/requests/storage") {
        usage.insert("requests.storage".into(), q.to_string());
        if !class.is_empty() {
            usage.insert(
                format!("{class}.storageclass.storage.k8s.io/requests.storage"),
                q.to_string(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::resources::ResourceTable;

    fn info(group: &str, version: &str, plural: &str) -> std::sync::Arc<ResourceInfo> {
        ResourceTable::with_builtins()
            .get(group, version, plural)
            .expect("served")
    }

    #[test]
    fn pods_use_their_requests_limits_and_counts() {
        let pods = info("", "v1", "pods");
        let p = json!({"spec": {
            "containers": [
                {"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m"}}},
                {"resources": {"requests": {"cpu": "300m", "example.com/gpu": "1"}}},
            ],
            "initContainers": [{"resources": {"requests": {"cpu": "1"}}}],
        }});
        let u = of_object(&pods, &p);
        assert_eq!(u["count/pods"], "1");
        assert_eq!(u["pods"], "1");
        // The init container's 1 CPU outweighs the containers' 400m.
        assert_eq!(u["requests.cpu"], "1");
        assert_eq!(u["cpu"], "1");
        assert_eq!(u["requests.memory"], "64Mi");
        assert_eq!(u["limits.cpu"], "200m");
        assert_eq!(u["requests.example.com/gpu"], "1");
        assert!(!u.contains_key("example.com/gpu"));
    }

    #[test]
    fn finished_pods_count_only_as_objects() {
        let pods = info("", "v1", "pods");
        let u = of_object(
            &pods,
            &json!({"spec": {"containers": []}, "status": {"phase": "Succeeded"}}),
        );
        assert_eq!(u.keys().collect::<Vec<_>>(), ["count/pods"]);
    }

    #[test]
    fn object_counts_and_names_measured() {
        let cms = info("", "v1", "configmaps");
        let u = of_object(&cms, &json!({}));
        assert_eq!(u["configmaps"], "1");
        assert_eq!(u["count/configmaps"], "1");
        let deploys = info("apps", "v1", "deployments");
        assert_eq!(
            of_object(&deploys, &json!({}))["count/deployments.apps"],
            "1"
        );
        assert!(measures(&deploys, "count/deployments.apps"));
        assert!(!measures(&deploys, "pods"));
        assert!(measures(&info("", "v1", "pods"), "requests.cpu"));
        let svcs = info("", "v1", "services");
        let u = of_object(
            &svcs,
            &json!({"spec": {"type": "NodePort", "ports": [{}, {}]}}),
        );
        assert_eq!(u["services.nodeports"], "2");
        let pvcs = info("", "v1", "persistentvolumeclaims");
        let u = of_object(
            &pvcs,
            &json!({"spec": {"storageClassName": "gold", "resources": {"requests": {"storage": "1Gi"}}}}),
        );
        assert_eq!(u["requests.storage"], "1Gi");
        assert_eq!(
            u["gold.storageclass.storage.k8s.io/requests.storage"],
            "1Gi"
        );
    }
}
