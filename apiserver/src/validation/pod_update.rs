//! What an update may change in a pod's spec (upstream's `ValidatePodUpdate`):
//! container images, `activeDeadlineSeconds` (set, or lowered),
//! tolerations (added to; existing ones only in `tolerationSeconds`),
//! `terminationGracePeriodSeconds` (to 1 from a negative value), and removing
//! scheduling gates. Everything else — resources included, which change
//! through the `resize` subresource — is fixed once the pod exists.

use serde_json::{Map, Value};

use crate::api_error::{FieldError, FieldErrorKind};

/// The fixed-fields message upstream gives, before the difference it found.
const ONLY_MUTABLE: &str = "pod updates may not change fields other than \
`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,\
`spec.tolerations` (only additions to existing tolerations),\
`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

const MAX_DEADLINE: i64 = i32::MAX as i64;

pub fn validate(new: &Value, old: &Value) -> Vec<FieldError> {
    let empty = Value::Object(Map::new());
    let new_spec = new.get("spec").unwrap_or(&empty);
    let old_spec = old.get("spec").unwrap_or(&empty);
    let mut errors = active_deadline(new_spec, old_spec);
    errors.extend(only_added_tolerations(new_spec, old_spec));
    // The old spec with what may change taken from the new one must equal
    // the new spec.
    let mut allowed = old_spec.clone();
    for key in ["containers", "initContainers"] {
        copy_images(&mut allowed, new_spec, key);
    }
    for key in ["activeDeadlineSeconds", "tolerations", "schedulingGates"] {
        copy_key(&mut allowed, new_spec, key);
    }
    let old_grace = old_spec
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64);
    let new_grace = new_spec
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64);
    if old_grace.is_some_and(|g| g < 0) && new_grace == Some(1) {
        copy_key(&mut allowed, new_spec, "terminationGracePeriodSeconds");
    }
    if allowed != *new_spec {
        errors.push(FieldError::new(
            FieldErrorKind::Forbidden,
            "spec",
            None,
            format!("{ONLY_MUTABLE}\n{}", difference(&allowed, new_spec)),
        ));
    }
    errors
}

/// Fields a container may have that an ephemeral container may not.
const NOT_FOR_EPHEMERAL: &[&str] = &[
    "ports",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "resources",
    "resizePolicy",
    "restartPolicy",
];

/// A write through `pods/ephemeralcontainers` (upstream's
/// `ValidatePodEphemeralContainersUpdate`): ephemeral containers are only
/// ever added, with names no other container has, and without what only a
/// long-running container may have (ports, probes, hooks, resources).
pub fn validate_ephemeral(new: &Value, old: &Value) -> Vec<FieldError> {
    let list = |pod: &Value, key: &str| -> Vec<Value> {
        pod.pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let name = |c: &Value| {
        c.get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let new_list = list(new, "ephemeralContainers");
    let old_list = list(old, "ephemeralContainers");
    let path = "spec.ephemeralContainers";
    let mut errors = Vec::new();
    for o in &old_list {
        let n = name(o);
        match new_list.iter().find(|c| name(c) == n) {
            None => errors.push(FieldError::forbidden(
                path,
                format!("existing ephemeral containers {n:?} may not be removed\n"),
            )),
            Some(c) if c != o => errors.push(FieldError::forbidden(
                path,
                format!(
                    "existing ephemeral containers {n:?} may not be changed\n{}",
                    difference(o, c)
                ),
            )),
            Some(_) => {}
        }
    }
    let mut taken: Vec<String> = ["containers", "initContainers"]
        .iter()
        .flat_map(|k| list(new, k))
        .map(|c| name(&c))
        .collect();
    for (i, c) in new_list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let n = name(c);
        if n.is_empty() {
            errors.push(FieldError::required(format!("{at}.name"), ""));
        } else if taken.contains(&n) {
            errors.push(FieldError::new(
                FieldErrorKind::Duplicate,
                format!("{at}.name"),
                Some(format!("{n:?}")),
                "",
            ));
        }
        taken.push(n);
        if c.get("image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            errors.push(FieldError::required(format!("{at}.image"), ""));
        }
        for field in NOT_FOR_EPHEMERAL {
            let set = c.get(*field).is_some_and(|v| match v {
                Value::Null => false,
                Value::Object(o) => !o.is_empty(),
                Value::Array(a) => !a.is_empty(),
                _ => true,
            });
            if set {
                errors.push(FieldError::forbidden(
                    format!("{at}.{field}"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
    }
    errors
}

fn copy_key(into: &mut Value, from: &Value, key: &str) {
    let Some(obj) = into.as_object_mut() else {
        return;
    };
    match from.get(key) {
        Some(v) => obj.insert(key.to_string(), v.clone()),
        None => obj.remove(key),
    };
}

/// Each container's image from the same position in `from`.
fn copy_images(into: &mut Value, from: &Value, key: &str) {
    let Some(targets) = into.get_mut(key).and_then(Value::as_array_mut) else {
        return;
    };
    let sources = from.get(key).and_then(Value::as_array);
    for (i, target) in targets.iter_mut().enumerate() {
        if let Some(source) = sources.and_then(|s| s.get(i)) {
            copy_key(target, source, "image");
        }
    }
}

fn active_deadline(new: &Value, old: &Value) -> Vec<FieldError> {
    let field = "spec.activeDeadlineSeconds";
    let old_value = old.get("activeDeadlineSeconds").and_then(Value::as_i64);
    match new.get("activeDeadlineSeconds").and_then(Value::as_i64) {
        Some(n) if !(0..=MAX_DEADLINE).contains(&n) => vec![invalid(
            field,
            n.to_string(),
            "must be between 0 and 2147483647, inclusive",
        )],
        Some(n) if old_value.is_some_and(|o| n > o) => vec![invalid(
            field,
            n.to_string(),
            "must be less than or equal to previous value",
        )],
        None if old_value.is_some() => vec![invalid(
            field,
            "null".into(),
            "must not update from a positive integer to nil value",
        )],
        _ => Vec::new(),
    }
}

fn invalid(field: &str, value: String, detail: &str) -> FieldError {
    FieldError::new(FieldErrorKind::Invalid, field, Some(value), detail)
}

/// Every old toleration is still there, changed at most in its seconds.
fn only_added_tolerations(new: &Value, old: &Value) -> Vec<FieldError> {
    let list = |spec: &Value| -> Vec<Value> {
        spec.get("tolerations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let without_seconds = |t: &Value| {
        let mut t = t.clone();
        if let Some(o) = t.as_object_mut() {
            o.remove("tolerationSeconds");
        }
        t
    };
    let new_list: Vec<Value> = list(new).iter().map(without_seconds).collect();
    let kept = list(old)
        .iter()
        .all(|o| new_list.contains(&without_seconds(o)));
    if kept {
        Vec::new()
    } else {
        vec![FieldError::forbidden(
            "spec.tolerations",
            "existing toleration can not be modified except its tolerationSeconds",
        )]
    }
}

/// The paths where two specs differ, as `path: old -> new` lines.
fn difference(old: &Value, new: &Value) -> String {
    let mut lines = Vec::new();
    diff_into(old, new, "spec", &mut lines);
    lines.join("\n")
}

fn diff_into(old: &Value, new: &Value, path: &str, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let null = Value::Null;
                diff_into(
                    a.get(k).unwrap_or(&null),
                    b.get(k).unwrap_or(&null),
                    &format!("{path}.{k}"),
                    out,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff_into(x, y, &format!("{path}[{i}]"), out);
            }
        }
        (a, b) if a != b => out.push(format!("  {path}: {a} -> {b}")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: Value) -> Value {
        json!({ "spec": spec })
    }

    fn base() -> Value {
        json!({
            "containers": [{"name": "c", "image": "a:1", "resources": {"requests": {"cpu": "100m"}}}],
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "activeDeadlineSeconds": 60
        })
    }

    #[test]
    fn images_deadlines_and_added_tolerations_may_change() {
        let mut spec = base();
        spec["containers"][0]["image"] = json!("a:2");
        spec["activeDeadlineSeconds"] = json!(30);
        spec["tolerations"][0]["tolerationSeconds"] = json!(10);
        spec["tolerations"]
            .as_array_mut()
            .expect("tolerations")
            .push(json!({"key": "x", "operator": "Exists"}));
        assert!(validate(&pod(spec), &pod(base())).is_empty());
    }

    #[test]
    fn resources_may_not_change() {
        let mut spec = base();
        spec["containers"][0]["resources"]["requests"]["cpu"] = json!("200m");
        let errors = validate(&pod(spec), &pod(base()));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "spec");
        assert!(
            errors[0]
                .detail
                .starts_with("pod updates may not change fields")
        );
        assert!(
            errors[0]
                .detail
                .contains("spec.containers[0].resources.requests.cpu: \"100m\" -> \"200m\""),
            "{}",
            errors[0].detail
        );
    }

    #[test]
    fn ephemeral_containers_are_only_added() {
        let old = json!({"spec": {"containers": [{"name": "c", "image": "a"}],
            "ephemeralContainers": [{"name": "d1", "image": "b"}]}});
        let mut added = old.clone();
        added["spec"]["ephemeralContainers"]
            .as_array_mut()
            .expect("list")
            .push(json!({"name": "d2", "image": "b"}));
        assert!(validate_ephemeral(&added, &old).is_empty());

        let mut changed = added.clone();
        changed["spec"]["ephemeralContainers"][0]["image"] = json!("z");
        let errors = validate_ephemeral(&changed, &old);
        assert!(
            errors[0].detail.contains("\"d1\" may not be changed"),
            "{}",
            errors[0].detail
        );

        let removed = json!({"spec": {"containers": [{"name": "c", "image": "a"}]}});
        assert!(
            validate_ephemeral(&removed, &old)[0]
                .detail
                .contains("may not be removed")
        );

        let clash = json!({"spec": {"containers": [{"name": "c", "image": "a"}],
            "ephemeralContainers": [{"name": "c", "image": "b", "ports": [{"containerPort": 80}]}]}});
        let fields: Vec<String> = validate_ephemeral(&clash, &removed)
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "spec.ephemeralContainers[0].name",
                "spec.ephemeralContainers[0].ports"
            ]
        );
    }

    #[test]
    fn deadlines_only_go_down_and_tolerations_stay() {
        let mut spec = base();
        spec["activeDeadlineSeconds"] = json!(90);
        spec["tolerations"] = json!([]);
        let errors = validate(&pod(spec), &pod(base()));
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["spec.activeDeadlineSeconds", "spec.tolerations"]);
    }
}
