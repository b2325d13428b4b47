//! The strategy of `CustomResourceDefinition` objects themselves: v1
//! defaulting, `storedVersions`, the checks of
//! `ValidateCustomResourceDefinition` this slice covers (names, scope,
//! versions, structural schemas), and the cleanup finalizer a delete adds.

use serde_json::{Value, json};

use super::schema::structural_errors;
use super::{CLEANUP_FINALIZER, set_condition};
use crate::api_error::{FieldError, FieldErrorKind};
use crate::registry::meta;
use crate::registry::strategy::Strategy;
use crate::validation::names;

pub struct CrdStrategy;

fn storage_version(obj: &Value) -> Option<String> {
    obj.pointer("/spec/versions")?
        .as_array()?
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))?
        .get("name")?
        .as_str()
        .map(str::to_string)
}

impl Strategy for CrdStrategy {
    fn prepare_for_create(&self, obj: &mut Value) {
        self.apply_defaults(obj);
        let stored: Vec<String> = storage_version(obj).into_iter().collect();
        obj["status"] = json!({
            "acceptedNames": {"plural": "", "kind": ""},
            "storedVersions": stored,
        });
    }

    fn prepare_for_update(&self, obj: &mut Value, _old: &Value) {
        self.apply_defaults(obj);
        // A new storage version joins `storedVersions` (status was carried over).
        if let Some(v) = storage_version(obj) {
            let status = obj
                .as_object_mut()
                .map(|o| o.entry("status").or_insert_with(|| json!({})));
            if let Some(status) = status {
                let mut stored: Vec<Value> = status
                    .get("storedVersions")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if !stored.iter().any(|s| s == &json!(v)) {
                    stored.push(json!(v));
                    status["storedVersions"] = json!(stored);
                }
            }
        }
    }

    fn apply_defaults(&self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
            let kind = names
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if !kind.is_empty() {
                if names
                    .get("singular")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    names.insert("singular".into(), json!(kind.to_lowercase()));
                }
                if names
                    .get("listKind")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    names.insert("listKind".into(), json!(format!("{kind}List")));
                }
            }
        }
        let conversion = spec.entry("conversion").or_insert_with(|| json!({}));
        if conversion.get("strategy").is_none() {
            conversion["strategy"] = json!("None");
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate_crd(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_delete(&self, obj: &mut Value) {
        if meta::is_deleting(obj) {
            return;
        }
        let mut finalizers = meta::finalizers(obj);
        if !finalizers.iter().any(|f| f == CLEANUP_FINALIZER) {
            finalizers.push(CLEANUP_FINALIZER.into());
            meta::meta_mut(obj).insert("finalizers".into(), json!(finalizers));
        }
        set_condition(
            obj,
            "Terminating",
            "True",
            "InstanceDeletionPending",
            "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
        );
    }
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

/// The checks of upstream's `ValidateCustomResourceDefinition` this slice
/// implements, in upstream's order and words.
pub(super) fn validate_crd(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let group = str_at(obj, "/spec/group");
    let plural = str_at(obj, "/spec/names/plural");
    let name = meta::name(obj);
    if !name.is_empty() && name != format!("{plural}.{group}") {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if group.is_empty() {
        errs.push(FieldError::required("spec.group", ""));
    } else {
        for msg in names::is_dns1123_subdomain(group) {
            errs.push(FieldError::invalid("spec.group", group, msg));
        }
        if group.split('.').count() < 2 {
            errs.push(FieldError::invalid(
                "spec.group",
                group,
                "should be a domain with at least one dot",
            ));
        }
    }
    match str_at(obj, "/spec/scope") {
        "Namespaced" | "Cluster" => {}
        "" => errs.push(FieldError::required("spec.scope", "")),
        other => errs.push(FieldError::new(
            FieldErrorKind::NotSupported,
            "spec.scope",
            Some(format!("{other:?}")),
            r#"supported values: "Cluster", "Namespaced""#,
        )),
    }
    validate_names(obj, &mut errs);
    let versions = obj
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        errs.push(FieldError::invalid(
            "spec.versions",
            "",
            "must have exactly one version marked as storage version",
        ));
    }
    let storage = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if !versions.is_empty() && storage != 1 {
        errs.push(FieldError::new(
            FieldErrorKind::Invalid,
            "spec.versions",
            Some("[]apiextensions.CustomResourceDefinitionVersion{...}".into()),
            "must have exactly one version marked as storage version",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, v) in versions.iter().enumerate() {
        let vname = str_at(v, "/name");
        let path = format!("spec.versions[{i}]");
        if !seen.insert(vname.to_string()) {
            errs.push(FieldError::new(
                FieldErrorKind::Duplicate,
                format!("{path}.name"),
                Some(format!("{vname:?}")),
                "",
            ));
        }
        for msg in names::is_dns1035_label(vname) {
            errs.push(FieldError::invalid(format!("{path}.name"), vname, msg));
        }
        match v.pointer("/schema/openAPIV3Schema") {
            None => errs.push(FieldError::required(
                format!("{path}.schema.openAPIV3Schema"),
                "schemas are required",
            )),
            Some(schema) => errs.extend(structural_errors(
                schema,
                &format!("{path}.schema.openAPIV3Schema"),
            )),
        }
        if let Some(sc) = v.pointer("/subresources/scale") {
            for key in ["specReplicasPath", "statusReplicasPath"] {
                let p = sc.get(key).and_then(Value::as_str).unwrap_or("");
                if p.is_empty() {
                    errs.push(FieldError::required(
                        format!("{path}.subresources.scale.{key}"),
                        "",
                    ));
                } else if !p.starts_with('.') {
                    errs.push(FieldError::invalid(
                        format!("{path}.subresources.scale.{key}"),
                        p,
                        "should be a json path under either .spec or .status",
                    ));
                }
            }
        }
        if let Some(cols) = v.get("additionalPrinterColumns").and_then(Value::as_array) {
            for (j, c) in cols.iter().enumerate() {
                let cpath = format!("{path}.additionalPrinterColumns[{j}]");
                let ty = str_at(c, "/type");
                if !matches!(ty, "integer" | "number" | "string" | "boolean" | "date") {
                    errs.push(FieldError::new(
                        FieldErrorKind::NotSupported,
                        format!("{cpath}.type"),
                        Some(format!("{ty:?}")),
                        r#"supported values: "integer", "number", "string", "boolean", "date""#,
                    ));
                }
                if str_at(c, "/jsonPath").is_empty() {
                    errs.push(FieldError::required(format!("{cpath}.jsonPath"), ""));
                }
            }
        }
    }
    errs
}

fn validate_names(obj: &Value, errs: &mut Vec<FieldError>) {
    let check_label = |field: &str, value: &str, errs: &mut Vec<FieldError>| {
        for msg in names::is_dns1123_label(value) {
            errs.push(FieldError::invalid(field, value, msg));
        }
    };
    let plural = str_at(obj, "/spec/names/plural");
    if plural.is_empty() {
        errs.push(FieldError::required("spec.names.plural", ""));
    } else {
        check_label("spec.names.plural", plural, errs);
    }
    let singular = str_at(obj, "/spec/names/singular");
    if !singular.is_empty() {
        check_label("spec.names.singular", singular, errs);
    }
    let kind = str_at(obj, "/spec/names/kind");
    if kind.is_empty() {
        errs.push(FieldError::required("spec.names.kind", ""));
    } else if !names::is_dns1035_label(&kind.to_lowercase()).is_empty() {
        errs.push(FieldError::invalid(
            "spec.names.kind",
            kind,
            "may have mixed case, but should otherwise match: [a-z]([-a-z0-9]*[a-z0-9])?",
        ));
    }
    let list_kind = str_at(obj, "/spec/names/listKind");
    if !list_kind.is_empty() && list_kind == kind {
        errs.push(FieldError::invalid(
            "spec.names.listKind",
            list_kind,
            "kind and listKind may not be the same",
        ));
    }
    if let Some(shorts) = obj
        .pointer("/spec/names/shortNames")
        .and_then(Value::as_array)
    {
        for (i, s) in shorts.iter().enumerate() {
            let s = s.as_str().unwrap_or("");
            check_label(&format!("spec.names.shortNames[{i}]"), s, errs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({"metadata": {"name": "foos.example.com"}, "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "foos", "kind": "Foo"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object"}}}]}})
    }

    #[test]
    fn defaults_names_and_stored_versions() {
        let mut c = crd();
        CrdStrategy.prepare_for_create(&mut c);
        assert_eq!(c["spec"]["names"]["singular"], "foo");
        assert_eq!(c["spec"]["names"]["listKind"], "FooList");
        assert_eq!(c["spec"]["conversion"]["strategy"], "None");
        assert_eq!(c["status"]["storedVersions"], json!(["v1"]));
        assert!(validate_crd(&c).is_empty(), "{:?}", validate_crd(&c));
    }

    #[test]
    fn refuses_bad_names_and_non_structural_schemas() {
        let mut c = crd();
        c["metadata"]["name"] = json!("bars.example.com");
        c["spec"]["versions"][0]["schema"]["openAPIV3Schema"] =
            json!({"type": "object", "properties": {"spec": {"properties": {}}}});
        let errs: Vec<String> = validate_crd(&c).iter().map(ToString::to_string).collect();
        assert_eq!(
            errs,
            [
                r#"metadata.name: Invalid value: "bars.example.com": must be spec.names.plural+"."+spec.group"#,
                "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields",
            ]
        );
    }

    #[test]
    fn a_delete_adds_the_cleanup_finalizer_once() {
        let mut c = crd();
        CrdStrategy.prepare_for_delete(&mut c);
        assert_eq!(meta::finalizers(&c), [CLEANUP_FINALIZER]);
        assert_eq!(c["status"]["conditions"][0]["type"], "Terminating");
    }
}
