//! The field labels each built-in kind (and custom resources) supports, and
//! how a label reads its value off an object.

use super::*;

/// How a kind's conversion function words a rejection.
#[derive(Clone, Copy)]
pub(super) enum RejectStyle {
    /// `field label not supported: <label>`
    NotSupported,
    /// `field label "<label>" not supported for Job`
    Job,
    /// `field label not supported for resource.k8s.io/<version>, Kind=ResourceSlice: <label>`
    ResourceSlice,
}

/// (accepted label, internal field it maps to)
pub(super) type LabelMap = &'static [(&'static str, &'static str)];

pub(super) const POD_FIELDS: LabelMap = &[
    ("metadata.name", "metadata.name"),
    ("metadata.namespace", "metadata.namespace"),
    ("spec.nodeName", "spec.nodeName"),
    ("spec.restartPolicy", "spec.restartPolicy"),
    ("spec.schedulerName", "spec.schedulerName"),
    ("spec.serviceAccountName", "spec.serviceAccountName"),
    ("spec.hostNetwork", "spec.hostNetwork"),
    ("status.phase", "status.phase"),
    ("status.podIP", "status.podIP"),
    ("status.podIPs", "status.podIPs"),
    ("status.nominatedNodeName", "status.nominatedNodeName"),
    // Backwards compatibility with old v1 clients.
    ("spec.host", "spec.nodeName"),
];
pub(super) const NODE_FIELDS: LabelMap = &[
    ("metadata.name", "metadata.name"),
    ("spec.unschedulable", "spec.unschedulable"),
];
pub(super) const RC_FIELDS: LabelMap = &[
    ("metadata.name", "metadata.name"),
    ("metadata.namespace", "metadata.namespace"),
    ("status.replicas", "status.replicas"),
];
pub(super) const CORE_EVENT_FIELDS: LabelMap = &[
    ("involvedObject.kind", "involvedObject.kind"),
    ("involvedObject.namespace", "involvedObject.namespace"),
    ("involvedObject.name", "involvedObject.name"),
    ("involvedObject.uid", "involvedObject.uid"),
    ("involvedObject.apiVersion", "involvedObject.apiVersion"),
    (
        "involvedObject.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("involvedObject.fieldPath", "involvedObject.fieldPath"),
    ("reason", "reason"),
    ("reportingComponent", "reportingComponent"),
    ("source", "source"),
    ("type", "type"),
    ("metadata.namespace", "metadata.namespace"),
    ("metadata.name", "metadata.name"),
];
pub(super) const EVENTS_V1_FIELDS: LabelMap = &[
    ("reason", "reason"),
    ("regarding.kind", "involvedObject.kind"),
    ("regarding.namespace", "involvedObject.namespace"),
    ("regarding.name", "involvedObject.name"),
    ("regarding.uid", "involvedObject.uid"),
    ("regarding.apiVersion", "involvedObject.apiVersion"),
    (
        "regarding.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("regarding.fieldPath", "involvedObject.fieldPath"),
    ("reportingController", "reportingComponent"),
    ("type", "type"),
    ("metadata.namespace", "metadata.namespace"),
    ("metadata.name", "metadata.name"),
];
pub(super) const NAMESPACE_FIELDS: LabelMap = &[
    ("status.phase", "status.phase"),
    ("metadata.name", "metadata.name"),
];
pub(super) const SECRET_FIELDS: LabelMap = &[
    ("type", "type"),
    ("metadata.namespace", "metadata.namespace"),
    ("metadata.name", "metadata.name"),
];
pub(super) const SERVICE_FIELDS: LabelMap = &[
    ("metadata.namespace", "metadata.namespace"),
    ("metadata.name", "metadata.name"),
    ("spec.clusterIP", "spec.clusterIP"),
    ("spec.type", "spec.type"),
];
pub(super) const JOB_FIELDS: LabelMap = &[
    ("metadata.name", "metadata.name"),
    ("metadata.namespace", "metadata.namespace"),
    ("status.successful", "status.successful"),
];
pub(super) const SIGNER_FIELDS: LabelMap = &[
    ("metadata.name", "metadata.name"),
    ("spec.signerName", "spec.signerName"),
];
pub(super) const PCR_FIELDS: LabelMap = &[
    ("metadata.name", "metadata.name"),
    ("spec.signerName", "spec.signerName"),
    ("spec.podName", "spec.podName"),
    ("spec.nodeName", "spec.nodeName"),
];
pub(super) const RESOURCE_SLICE_FIELDS: LabelMap = &[
    ("metadata.name", "metadata.name"),
    ("spec.nodeName", "spec.nodeName"),
    ("spec.driver", "spec.driver"),
];

/// The kinds that register a field-label conversion function in v1.34.
/// Everything else uses `runtime.DefaultMetaV1FieldSelectorConversion`.
/// (Notably apps/v1 ReplicaSet registers none, so only metadata.* work there.)
pub(super) fn kind_fields(group: &str, resource: &str) -> Option<(LabelMap, RejectStyle)> {
    use RejectStyle::*;
    Some(match (group, resource) {
        ("", "pods") => (POD_FIELDS, NotSupported),
        ("", "nodes") => (NODE_FIELDS, NotSupported),
        ("", "replicationcontrollers") => (RC_FIELDS, NotSupported),
        ("", "events") => (CORE_EVENT_FIELDS, NotSupported),
        ("", "namespaces") => (NAMESPACE_FIELDS, NotSupported),
        ("", "secrets") => (SECRET_FIELDS, NotSupported),
        ("", "services") => (SERVICE_FIELDS, NotSupported),
        ("events.k8s.io", "events") => (EVENTS_V1_FIELDS, NotSupported),
        ("batch", "jobs") => (JOB_FIELDS, Job),
        ("certificates.k8s.io", "certificatesigningrequests" | "clustertrustbundles") => {
            (SIGNER_FIELDS, NotSupported)
        }
        ("certificates.k8s.io", "podcertificaterequests") => (PCR_FIELDS, NotSupported),
        ("resource.k8s.io", "resourceslices") => (RESOURCE_SLICE_FIELDS, ResourceSlice),
        _ => return None,
    })
}

/// Upstream field-label conversion for a built-in resource: returns the
/// internal field name the label maps to (e.g. `spec.host` → `spec.nodeName`,
/// events.k8s.io `regarding.kind` → `involvedObject.kind`), or the exact
/// upstream rejection. `version` is only used in the ResourceSlice message.
pub fn convert_field_label(
    group: &str,
    version: &str,
    resource: &str,
    field: &str,
) -> Result<&'static str, SelectorError> {
    let unsupported = |message: String| SelectorError::UnsupportedField {
        field: field.to_string(),
        message,
    };
    match kind_fields(group, resource) {
        None => match field {
            "metadata.name" => Ok("metadata.name"),
            "metadata.namespace" => Ok("metadata.namespace"),
            _ => Err(unsupported(format!(
                "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                go_quote(field)
            ))),
        },
        Some((map, style)) => match map.iter().find(|(label, _)| *label == field) {
            Some((_, internal)) => Ok(internal),
            None => Err(unsupported(match style {
                RejectStyle::NotSupported => format!("field label not supported: {field}"),
                RejectStyle::Job => {
                    format!("field label {} not supported for Job", go_quote(field))
                }
                RejectStyle::ResourceSlice => format!(
                    "field label not supported for resource.k8s.io/{version}, Kind=ResourceSlice: {field}"
                ),
            })),
        },
    }
}

/// The value of field label `field` of a built-in object, as upstream's
/// selectable-field set renders it (bools `true`/`false`, integers in decimal,
/// missing strings ""). `Ok(None)` means the label is accepted but upstream
/// exposes no value for it (e.g. pods `status.podIPs`), which matches as "".
/// Unsupported labels give the exact upstream error. The version used for
/// the ResourceSlice message is taken from the object's `apiVersion`.
pub fn field_value(
    group: &str,
    resource: &str,
    obj: &Value,
    field: &str,
) -> Result<Option<String>, SelectorError> {
    let version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .map(|av| av.rsplit('/').next().unwrap_or(av))
        .filter(|v| !v.is_empty())
        .unwrap_or("v1");
    let internal = convert_field_label(group, version, resource, field)?;
    Ok(internal_field_value(group, resource, obj, internal))
}

pub(super) fn internal_field_value(
    group: &str,
    resource: &str,
    obj: &Value,
    internal: &str,
) -> Option<String> {
    match internal {
        "metadata.name" => return Some(str_at(obj, &["metadata", "name"])),
        "metadata.namespace" => return Some(str_at(obj, &["metadata", "namespace"])),
        _ => {}
    }
    let v = match (group, resource) {
        ("", "pods") => match internal {
            "spec.nodeName" => str_at(obj, &["spec", "nodeName"]),
            "spec.restartPolicy" => str_at(obj, &["spec", "restartPolicy"]),
            "spec.schedulerName" => str_at(obj, &["spec", "schedulerName"]),
            "spec.serviceAccountName" => {
                // The deprecated `serviceAccount` alias applies when the new field is empty.
                let sa = str_at(obj, &["spec", "serviceAccountName"]);
                if sa.is_empty() {
                    str_at(obj, &["spec", "serviceAccount"])
                } else {
                    sa
                }
            }
            "spec.hostNetwork" => bool_at(obj, &["spec", "hostNetwork"]),
            "status.phase" => str_at(obj, &["status", "phase"]),
            "status.podIP" => {
                // v1 status.podIP is authoritative; else the first podIPs entry.
                let ip = str_at(obj, &["status", "podIP"]);
                if ip.is_empty() {
                    path(obj, &["status", "podIPs"])
                        .and_then(Value::as_array)
                        .and_then(|a| a.first())
                        .map(|first| str_at(first, &["ip"]))
                        .unwrap_or_default()
                } else {
                    ip
                }
            }
            "status.nominatedNodeName" => str_at(obj, &["status", "nominatedNodeName"]),
            // Accepted by the conversion but absent from the selectable set.
            _ => return None,
        },
        ("", "nodes") => match internal {
            "spec.unschedulable" => bool_at(obj, &["spec", "unschedulable"]),
            _ => return None,
        },
        ("", "replicationcontrollers") => match internal {
            "status.replicas" => int_at(obj, &["status", "replicas"]),
            _ => return None,
        },
        ("", "events") | ("events.k8s.io", "events") => event_field(obj, internal)?,
        ("", "namespaces") => match internal {
            "status.phase" => str_at(obj, &["status", "phase"]),
            _ => return None,
        },
        ("", "secrets") => match internal {
            "type" => str_at(obj, &["type"]),
            _ => return None,
        },
        ("", "services") => match internal {
            "spec.clusterIP" => str_at(obj, &["spec", "clusterIP"]),
            "spec.type" => str_at(obj, &["spec", "type"]),
            _ => return None,
        },
        ("batch", "jobs") => match internal {
            "status.successful" => int_at(obj, &["status", "succeeded"]),
            _ => return None,
        },
        ("certificates.k8s.io", _) => match internal {
            "spec.signerName" => str_at(obj, &["spec", "signerName"]),
            "spec.podName" => str_at(obj, &["spec", "podName"]),
            "spec.nodeName" => str_at(obj, &["spec", "nodeName"]),
            _ => return None,
        },
        ("resource.k8s.io", "resourceslices") => match internal {
            "spec.nodeName" => str_at(obj, &["spec", "nodeName"]),
            "spec.driver" => str_at(obj, &["spec", "driver"]),
            _ => return None,
        },
        _ => return None,
    };
    Some(v)
}

/// Event selectable fields; accepts both the core/v1 shape (`involvedObject`,
/// `reportingComponent`, `source.component`) and the events.k8s.io/v1 shape
/// (`regarding`, `reportingController`, `deprecatedSource.component`).
pub(super) fn event_field(obj: &Value, internal: &str) -> Option<String> {
    let first_non_empty = |paths: &[&[&str]]| {
        paths
            .iter()
            .map(|p| str_at(obj, p))
            .find(|s| !s.is_empty())
            .unwrap_or_default()
    };
    if let Some(sub) = internal.strip_prefix("involvedObject.") {
        return Some(first_non_empty(&[
            &["involvedObject", sub],
            &["regarding", sub],
        ]));
    }
    Some(match internal {
        "reason" => str_at(obj, &["reason"]),
        "type" => str_at(obj, &["type"]),
        "reportingComponent" => {
            first_non_empty(&[&["reportingComponent"], &["reportingController"]])
        }
        "source" => first_non_empty(&[
            &["source", "component"],
            &["deprecatedSource", "component"],
            &["reportingComponent"],
            &["reportingController"],
        ]),
        _ => return None,
    })
}

/// Field-label conversion for custom resources (apiextensions `crConverter`):
/// `metadata.name`, `metadata.namespace` (namespaced only) and the CRD
/// version's `selectableFields` (JSON paths without the leading dot).
pub fn convert_custom_resource_field_label(
    cluster_scoped: bool,
    selectable_fields: &[&str],
    field: &str,
) -> Result<(), SelectorError> {
    if field == "metadata.name"
        || (!cluster_scoped && field == "metadata.namespace")
        || selectable_fields.contains(&field)
    {
        return Ok(());
    }
    Err(SelectorError::UnsupportedField {
        field: field.to_string(),
        message: format!("field label not supported: {field}"),
    })
}

/// Value of a custom resource selectable field (`fmt.Sprint` of the value at
/// the dotted path; missing or null → "").
pub fn custom_resource_field_value(obj: &Value, field: &str) -> String {
    let segs: Vec<&str> = field.split('.').collect();
    match path(obj, &segs) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

pub(super) fn path<'a>(obj: &'a Value, segs: &[&str]) -> Option<&'a Value> {
    segs.iter().try_fold(obj, |v, s| v.get(*s))
}

pub(super) fn str_at(obj: &Value, segs: &[&str]) -> String {
    path(obj, segs)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

pub(super) fn bool_at(obj: &Value, segs: &[&str]) -> String {
    path(obj, segs)
        .and_then(Value::as_bool)
        .unwrap_or(false)
        .to_string()
}

pub(super) fn int_at(obj: &Value, segs: &[&str]) -> String {
    match path(obj, segs) {
        Some(Value::Number(n)) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => format!("{}", f.trunc() as i64),
            _ => "0".to_string(),
        },
        _ => "0".to_string(),
    }
}

// ===========================================================================
// Go formatting helpers
// ===========================================================================

/// Go `encoding/json` rendering of a `[]string` (nil/empty renders `null`,
/// matching the `append([]string(nil), ...)` upstream passes as the bad value).
pub(super) fn go_json_strings(values: &[String]) -> String {
    if values.is_empty() {
        return "null".to_string();
    }
    let mut out = String::from("[");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in v.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{08}' => out.push_str("\\b"),
                '\u{0C}' => out.push_str("\\f"),
                '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                }
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push(']');
    out
}
