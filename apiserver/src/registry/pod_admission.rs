//! Admission of new Pods that reads other objects, as upstream's built-in
//! plugins do: `RuntimeClass` (the class must exist; its overhead and
//! scheduling constraints are copied into the pod) and `LimitRanger` (a
//! namespace's `Container` LimitRanges default requests and limits and bound
//! them). Runs as the Pod strategy's `admit`, after validation, dry runs included.

use std::cmp::Ordering;

use serde_json::{Map, Value, json};

use crate::api_error::{ApiError, ApiResult};
use crate::printers::quantity;
use crate::registry::list::ListRequest;
use crate::registry::meta;
use crate::registry::store::Store;

/// Runs both plugins on `pod`.
pub async fn admit(store: &Store, pod: &mut Value) -> ApiResult<()> {
    priority(store, pod).await?;
    runtime_class(store, pod).await?;
    limit_ranger(store, pod).await
}

/// Priority admission: `spec.priority` and `spec.preemptionPolicy` come from
/// the pod's PriorityClass (or the global default class, or 0), and a pod may
/// not state values of its own that differ from them.
async fn priority(store: &Store, pod: &mut Value) -> ApiResult<()> {
    let Some(info) = store
        .table
        .get("scheduling.k8s.io", "v1", "priorityclasses")
    else {
        return Ok(());
    };
    let class_name = meta::str_at(pod, "/spec/priorityClassName")
        .unwrap_or("")
        .to_string();
    let class = if class_name.is_empty() {
        let all = store
            .list(&info, None, &crate::registry::list::ListRequest::default())
            .await?;
        all.items
            .into_iter()
            .filter(|c| c.get("globalDefault").and_then(Value::as_bool) == Some(true))
            // Upstream picks the lowest-valued global default if several exist.
            .min_by_key(|c| c.get("value").and_then(Value::as_i64).unwrap_or(0))
    } else {
        match store.get(&info, None, &class_name).await {
            Ok(class) => Some(class),
            Err(e) if e.code == 404 => {
                return Err(forbidden(
                    pod,
                    format!("no PriorityClass with name {class_name} was found"),
                ));
            }
            Err(e) => return Err(e),
        }
    };
    let value = class
        .as_ref()
        .and_then(|c| c.get("value").and_then(Value::as_i64))
        .unwrap_or(0);
    let policy = class
        .as_ref()
        .and_then(|c| meta::str_at(c, "/preemptionPolicy"))
        .unwrap_or("PreemptLowerPriority")
        .to_string();
    if let Some(given) = pod.pointer("/spec/priority").and_then(Value::as_i64)
        && given != value
    {
        return Err(forbidden(
            pod,
            format!(
                "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name"
            ),
        ));
    }
    if let Some(given) = meta::str_at(pod, "/spec/preemptionPolicy")
        && given != policy
    {
        return Err(forbidden(
            pod,
            format!(
                "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
            ),
        ));
    }
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        if let Some(name) = class
            .as_ref()
            .filter(|_| class_name.is_empty())
            .map(meta::name)
        {
            spec.insert("priorityClassName".into(), json!(name));
        }
        spec.insert("priority".into(), json!(value));
        spec.insert("preemptionPolicy".into(), json!(policy));
    }
    Ok(())
}

fn forbidden(pod: &Value, message: String) -> ApiError {
    let name = meta::name(pod);
    ApiError::new(
        403,
        "Forbidden",
        format!("pods {name:?} is forbidden: {message}"),
    )
    .with_details(json!({"name": name, "kind": "pods"}))
}

async fn runtime_class(store: &Store, pod: &mut Value) -> ApiResult<()> {
    let Some(class_name) = pod
        .pointer("/spec/runtimeClassName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
    else {
        return Ok(());
    };
    let Some(info) = store.table.get("node.k8s.io", "v1", "runtimeclasses") else {
        return Ok(());
    };
    let class = match store.get(&info, None, &class_name).await {
        Ok(class) => class,
        Err(e) if e.code == 404 => {
            return Err(forbidden(
                pod,
                format!("pod rejected: RuntimeClass {class_name:?} not found"),
            ));
        }
        Err(e) => return Err(e),
    };
    if let Some(fixed) = class.pointer("/overhead/podFixed") {
        match pod.pointer("/spec/overhead") {
            Some(existing) if existing != fixed => {
                return Err(forbidden(
                    pod,
                    "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"
                        .into(),
                ));
            }
            _ => pod["spec"]["overhead"] = fixed.clone(),
        }
    }
    if let Some(selector) = class
        .pointer("/scheduling/nodeSelector")
        .and_then(Value::as_object)
    {
        let spec = &mut pod["spec"];
        if !spec.get("nodeSelector").is_some_and(Value::is_object) {
            spec["nodeSelector"] = json!({});
        }
        if let Some(own) = spec["nodeSelector"].as_object_mut() {
            for (k, v) in selector {
                if own.get(k).is_some_and(|o| o != v) {
                    return Err(forbidden(
                        pod,
                        "pod rejected: conflict between pod node selector and RuntimeClass node selector".into(),
                    ));
                }
                own.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(tolerations) = class
        .pointer("/scheduling/tolerations")
        .and_then(Value::as_array)
    {
        let spec = &mut pod["spec"];
        if !spec.get("tolerations").is_some_and(Value::is_array) {
            spec["tolerations"] = json!([]);
        }
        if let Some(own) = spec["tolerations"].as_array_mut() {
            for t in tolerations {
                if !own.contains(t) {
                    own.push(t.clone());
                }
            }
        }
    }
    Ok(())
}

async fn limit_ranger(store: &Store, pod: &mut Value) -> ApiResult<()> {
    let Some(info) = store.table.get("", "v1", "limitranges") else {
        return Ok(());
    };
    let ns = meta::namespace(pod).to_string();
    let ranges = store
        .list(&info, Some(&ns), &ListRequest::default())
        .await?
        .items;
    let limits: Vec<&Map<String, Value>> = ranges
        .iter()
        .filter_map(|r| r.pointer("/spec/limits").and_then(Value::as_array))
        .flatten()
        .filter(|l| l.get("type").and_then(Value::as_str) == Some("Container"))
        .filter_map(Value::as_object)
        .collect();
    if limits.is_empty() {
        return Ok(());
    }
    let mut problems = Vec::new();
    for list in ["initContainers", "containers"] {
        let Some(containers) = pod
            .pointer_mut(&format!("/spec/{list}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for c in containers {
            for limit in &limits {
                apply_defaults(c, limit);
            }
            for limit in &limits {
                check_bounds(c, limit, &mut problems);
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(forbidden(pod, format!("[{}]", problems.join(", "))))
    }
}

/// Missing limits take the range's `default`, missing requests its
/// `defaultRequest` (a request the pod's own defaulting took from its limit
/// stays).
fn apply_defaults(container: &mut Value, limit: &Map<String, Value>) {
    for (section, from) in [("limits", "default"), ("requests", "defaultRequest")] {
        let Some(defaults) = limit.get(from).and_then(Value::as_object) else {
            continue;
        };
        if !container.get("resources").is_some_and(Value::is_object) {
            container["resources"] = json!({});
        }
        let resources = &mut container["resources"];
        if !resources.get(section).is_some_and(Value::is_object) {
            resources[section] = json!({});
        }
        if let Some(own) = resources[section].as_object_mut() {
            for (resource, value) in defaults {
                own.entry(resource.clone()).or_insert_with(|| value.clone());
            }
        }
    }
}

fn quantity_at<'a>(container: &'a Value, section: &str, resource: &str) -> Option<&'a str> {
    container
        .pointer(&format!("/resources/{section}/{resource}"))
        .and_then(Value::as_str)
}

/// Upstream's min, max and maxLimitRequestRatio checks for one container.
fn check_bounds(container: &Value, limit: &Map<String, Value>, problems: &mut Vec<String>) {
    let bounds = |key: &str| {
        limit
            .get(key)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(r, v)| Some((r.clone(), v.as_str()?.to_string())))
            .collect::<Vec<_>>()
    };
    for (resource, min) in bounds("min") {
        let request = quantity_at(container, "requests", &resource);
        let lim = quantity_at(container, "limits", &resource);
        match request {
            None => problems.push(format!(
                "minimum {resource} usage per Container is {min}.  No request is specified"
            )),
            Some(r) if quantity::compare(r, &min) == Some(Ordering::Less) => problems.push(
                format!("minimum {resource} usage per Container is {min}, but request is {r}"),
            ),
            _ => {}
        }
        if let Some(l) = lim
            && quantity::compare(l, &min) == Some(Ordering::Less)
        {
            problems.push(format!(
                "minimum {resource} usage per Container is {min}, but limit is {l}"
            ));
        }
    }
    for (resource, max) in bounds("max") {
        let request = quantity_at(container, "requests", &resource);
        match quantity_at(container, "limits", &resource) {
            None => problems.push(format!(
                "maximum {resource} usage per Container is {max}.  No limit is specified"
            )),
            Some(l) if quantity::compare(l, &max) == Some(Ordering::Greater) => problems.push(
                format!("maximum {resource} usage per Container is {max}, but limit is {l}"),
            ),
            _ => {}
        }
        if let Some(r) = request
            && quantity::compare(r, &max) == Some(Ordering::Greater)
        {
            problems.push(format!(
                "maximum {resource} usage per Container is {max}, but request is {r}"
            ));
        }
    }
    for (resource, ratio) in bounds("maxLimitRequestRatio") {
        let (Some(l), Some(r)) = (
            quantity_at(container, "limits", &resource),
            quantity_at(container, "requests", &resource),
        ) else {
            continue;
        };
        let (Some(actual), Some(allowed)) = (quantity::ratio(l, r), quantity::ratio(&ratio, "1"))
        else {
            continue;
        };
        if actual > allowed {
            problems.push(format!(
                "{resource} max limit to request ratio per Container is {ratio}, but provided ratio is {actual:.6}"
            ));
        }
    }
}
