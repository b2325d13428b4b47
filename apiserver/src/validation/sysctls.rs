//! A pod's `securityContext.sysctls` (upstream's `validateSysctls`): names
//! are dotted or slashed kernel parameter paths, at most 253 characters, and
//! appear once. Whether the node allows a sysctl is the kubelet's concern.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::api_error::{FieldError, FieldErrorKind};

const MAX_LENGTH: usize = 253;
const PATTERN: &str = r"^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$";

static NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(PATTERN).unwrap_or_else(|e| panic!("sysctl pattern: {e}")));

/// Errors of the sysctls in `spec`, reported under `{path}.securityContext.sysctls`.
pub fn validate(spec: &Value, path: &str) -> Vec<FieldError> {
    let Some(list) = spec
        .pointer("/securityContext/sysctls")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    let mut seen = HashSet::new();
    let mut errors = Vec::new();
    for (i, s) in list.iter().enumerate() {
        let field = format!("{path}.securityContext.sysctls[{i}].name");
        let name = s.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            errors.push(FieldError::required(field, ""));
        } else if name.len() > MAX_LENGTH || !NAME.is_match(name) {
            errors.push(FieldError::invalid(
                field,
                name,
                format!("must have at most {MAX_LENGTH} characters and match regex {PATTERN}"),
            ));
        } else if !seen.insert(name) {
            errors.push(FieldError::new(
                FieldErrorKind::Duplicate,
                field,
                Some(format!("{name:?}")),
                "",
            ));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn invalid_and_duplicate_names_are_reported() {
        let spec = json!({"securityContext": {"sysctls": [
            {"name": "foo-", "value": "bar"},
            {"name": "kernel.shmmax", "value": "1"},
            {"name": "safe-and-unsafe", "value": "1"},
            {"name": "bar..", "value": "42"},
            {"name": "net/ipv4/ip_forward", "value": "1"},
            {"name": "kernel.shmmax", "value": "2"}
        ]}});
        let errors = validate(&spec, "spec");
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 3, "{shown:?}");
        assert!(
            shown[0].contains(r#"Invalid value: "foo-""#),
            "{}",
            shown[0]
        );
        assert!(
            shown[1].contains(r#"Invalid value: "bar..""#),
            "{}",
            shown[1]
        );
        assert_eq!(errors[2].field, "spec.securityContext.sysctls[5].name");
    }
}
