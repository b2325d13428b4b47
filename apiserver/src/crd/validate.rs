//! Validation of a custom resource against its compiled [`Schema`], with the
//! field paths and texts upstream's OpenAPI validator reports (`spec.size:
//! Invalid value: "string": spec.size in body must be of type integer:
//! "string"`).

use serde_json::Value;

use super::schema::{ListType, Schema, Type};
use crate::api_error::{FieldError, FieldErrorKind};
use crate::validation::names;

/// Validates a whole custom resource (`metadata` is validated by the store).
pub fn validate(schema: &Schema, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Value::Object(map) = obj {
        for (key, child) in map {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            match schema.properties.get(key) {
                Some(s) => node(s, child, key, &mut errs),
                None => {
                    if let Some(s) = &schema.additional {
                        node(s, child, key, &mut errs);
                    }
                }
            }
        }
        required(schema, map, "", &mut errs);
    }
    errs
}

/// The JSON type name of a value, as the validator reports it.
fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if is_integer(n) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integer(n: &serde_json::Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
}

/// A value as Go's `%v`/`%#v` renders it in a field error.
pub(super) fn render(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn invalid(path: &str, value: String, detail: String) -> FieldError {
    FieldError::new(FieldErrorKind::Invalid, path, Some(value), detail)
}

fn node(s: &Schema, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if v.is_null() {
        if !s.nullable
            && let Some(ty) = s.ty.filter(|t| *t != Type::Any)
        {
            errs.push(invalid(
                path,
                "\"null\"".into(),
                format!("{path} in body must be of type {}: \"null\"", ty.name()),
            ));
        }
        return;
    }
    if s.int_or_string {
        if !matches!(v, Value::String(_)) && !matches!(v, Value::Number(n) if is_integer(n)) {
            let actual = type_of(v);
            errs.push(invalid(
                path,
                format!("{actual:?}"),
                format!("{path} in body must be of type integer,string: {actual:?}"),
            ));
            return;
        }
    } else if let Some(ty) = s.ty.filter(|t| *t != Type::Any) {
        let actual = type_of(v);
        let ok = match ty {
            Type::Number => matches!(v, Value::Number(_)),
            Type::Integer => actual == "integer",
            other => actual == other.name(),
        };
        if !ok {
            errs.push(invalid(
                path,
                format!("{actual:?}"),
                format!("{path} in body must be of type {}: {actual:?}", ty.name()),
            ));
            return;
        }
    }
    if let Some(allowed) = &s.enumeration
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().map(render).collect();
        errs.push(FieldError::new(
            FieldErrorKind::NotSupported,
            path,
            Some(render(v)),
            format!("supported values: {}", list.join(", ")),
        ));
    }
    match v {
        Value::String(text) => string(s, text, path, errs),
        Value::Number(n) => number(s, n, path, errs),
        Value::Array(items) => array(s, items, path, errs),
        Value::Object(map) => object(s, map, path, errs),
        _ => {}
    }
}

fn string(s: &Schema, text: &str, path: &str, errs: &mut Vec<FieldError>) {
    let len = text.chars().count() as u64;
    if let Some(max) = s.max_length
        && len > max
    {
        errs.push(FieldError::new(
            FieldErrorKind::TooLong,
            path,
            None,
            format!("may not be more than {max} bytes"),
        ));
    }
    if let Some(min) = s.min_length
        && len < min
    {
        errs.push(invalid(
            path,
            format!("{text:?}"),
            format!("{path} in body should be at least {min} chars long"),
        ));
    }
    if let Some((src, re)) = &s.pattern
        && !re.is_match(text)
    {
        errs.push(invalid(
            path,
            format!("{text:?}"),
            format!("{path} in body should match '{src}'"),
        ));
    }
    if let Some(format) = &s.format
        && !format_ok(format, text)
    {
        errs.push(invalid(
            path,
            format!("{text:?}"),
            format!("{path} in body must be of type {format}: {text:?}"),
        ));
    }
}

fn number(s: &Schema, n: &serde_json::Number, path: &str, errs: &mut Vec<FieldError>) {
    let Some(x) = n.as_f64() else { return };
    let shown = n.to_string();
    if let Some(min) = s.minimum {
        let bad = if s.exclusive_minimum {
            x <= min
        } else {
            x < min
        };
        if bad {
            let op = if s.exclusive_minimum {
                "greater than"
            } else {
                "greater than or equal to"
            };
            errs.push(invalid(
                path,
                shown.clone(),
                format!("{path} in body should be {op} {}", go_number(min)),
            ));
        }
    }
    if let Some(max) = s.maximum {
        let bad = if s.exclusive_maximum {
            x >= max
        } else {
            x > max
        };
        if bad {
            let op = if s.exclusive_maximum {
                "less than"
            } else {
                "less than or equal to"
            };
            errs.push(invalid(
                path,
                shown.clone(),
                format!("{path} in body should be {op} {}", go_number(max)),
            ));
        }
    }
    if let Some(m) = s.multiple_of.filter(|m| *m != 0.0)
        && (x / m).fract() != 0.0
    {
        errs.push(invalid(
            path,
            shown,
            format!("{path} in body should be a multiple of {}", go_number(m)),
        ));
    }
}

/// A float64 as Go's `%v` prints it (`1`, not `1.0`).
fn go_number(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

fn array(s: &Schema, items: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    let n = items.len() as u64;
    if let Some(max) = s.max_items
        && n > max
    {
        errs.push(FieldError::new(
            FieldErrorKind::TooMany,
            path,
            Some(n.to_string()),
            format!("must have at most {max} items"),
        ));
    }
    if let Some(min) = s.min_items
        && n < min
    {
        errs.push(invalid(
            path,
            n.to_string(),
            format!("{path} in body should have at least {min} items"),
        ));
    }
    let unique = s.unique_items || s.list_type == ListType::Set;
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if unique && items[..i].contains(item) {
            errs.push(FieldError::new(
                FieldErrorKind::Duplicate,
                &p,
                Some(render(item)),
                "",
            ));
        }
        if let ListType::Map(keys) = &s.list_type {
            let key_of = |v: &Value| -> Vec<Value> {
                keys.iter()
                    .map(|k| v.get(k).cloned().unwrap_or(Value::Null))
                    .collect()
            };
            let mine = key_of(item);
            if items[..i].iter().any(|o| key_of(o) == mine) {
                let shown: Vec<String> = keys
                    .iter()
                    .zip(&mine)
                    .map(|(k, v)| format!("{k:?}:{}", render(v)))
                    .collect();
                errs.push(FieldError::new(
                    FieldErrorKind::Duplicate,
                    &p,
                    Some(format!("map[string]interface {{}}{{{}}}", shown.join(", "))),
                    "",
                ));
            }
        }
        if let Some(is) = &s.items {
            node(is, item, &p, errs);
        }
    }
}

fn object(
    s: &Schema,
    map: &serde_json::Map<String, Value>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let n = map.len() as u64;
    if let Some(max) = s.max_properties
        && n > max
    {
        errs.push(FieldError::new(
            FieldErrorKind::TooMany,
            path,
            Some(n.to_string()),
            format!("must have at most {max} items"),
        ));
    }
    if let Some(min) = s.min_properties
        && n < min
    {
        errs.push(invalid(
            path,
            n.to_string(),
            format!("{path} in body should have at least {min} properties"),
        ));
    }
    if s.embedded {
        embedded(map, path, errs);
    }
    for (key, child) in map {
        if s.embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if let Some(ps) = s.properties.get(key) {
            node(ps, child, &join(path, key), errs);
        } else if let Some(a) = &s.additional {
            node(a, child, &join(path, key), errs);
        }
    }
    required(s, map, path, errs);
}

fn required(
    s: &Schema,
    map: &serde_json::Map<String, Value>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    for r in &s.required {
        if !map.contains_key(r) {
            errs.push(FieldError::required(join(path, r), ""));
        }
    }
}

/// `x-kubernetes-embedded-resource`: an object with `apiVersion`, `kind`
/// and valid metadata.
fn embedded(map: &serde_json::Map<String, Value>, path: &str, errs: &mut Vec<FieldError>) {
    for key in ["apiVersion", "kind"] {
        if map
            .get(key)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            errs.push(FieldError::required(join(path, key), "must not be empty"));
        }
    }
    if let Some(name) = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        for msg in names::is_dns1123_subdomain(name) {
            errs.push(FieldError::invalid(join(path, "metadata.name"), name, msg));
        }
    }
}

/// The formats upstream's CRD validator knows; unknown formats pass.
fn format_ok(format: &str, s: &str) -> bool {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    match format {
        "date-time" | "datetime" => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        "date" => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
        "ipv4" => s.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<Ipv6Addr>().is_ok(),
        "cidr" => s
            .split_once('/')
            .is_some_and(|(ip, bits)| ip.parse::<IpAddr>().is_ok() && bits.parse::<u8>().is_ok()),
        "uuid" | "uuid3" | "uuid4" | "uuid5" => uuid::Uuid::parse_str(s).is_ok(),
        "email" => s
            .split_once('@')
            .is_some_and(|(u, d)| !u.is_empty() && d.contains('.') && !d.starts_with('.')),
        "hostname" => names::is_dns1123_subdomain(s).is_empty(),
        "byte" => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(s).is_ok()
        }
        "mac" => {
            let parts: Vec<&str> = s.split([':', '-']).collect();
            parts.len() == 6
                && parts
                    .iter()
                    .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
        }
        "hexcolor" => {
            s.len() == 7 && s.starts_with('#') && s[1..].chars().all(|c| c.is_ascii_hexdigit())
        }
        "duration" => go_duration(s),
        "uri" => s.contains(':'),
        _ => true,
    }
}

/// Whether `s` parses as a Go `time.Duration` (`1h30m`, `-1.5s`, `0`).
fn go_duration(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    if s.is_empty() {
        return false;
    }
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .find(|u| rest.starts_with(**u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errs(schema: Value, obj: Value) -> Vec<String> {
        validate(&Schema::compile(&schema), &obj)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn reports_upstream_texts() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
        "required": ["size"],
        "properties": {
            "size": {"type": "integer", "minimum": 1, "maximum": 10},
            "color": {"type": "string", "enum": ["red", "blue"]},
            "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
            "tags": {"type": "array", "maxItems": 1, "items": {"type": "string"}},
            "port": {"x-kubernetes-int-or-string": true},
            "when": {"type": "string", "format": "date-time"},
        }}}});
        assert_eq!(
            errs(schema.clone(), json!({"spec": {"size": "x"}})),
            [
                r#"spec.size: Invalid value: "string": spec.size in body must be of type integer: "string""#
            ]
        );
        assert_eq!(
            errs(
                schema.clone(),
                json!({"spec": {"size": 0, "color": "green", "name": "ABCDEF", "tags": ["a", "b"], "port": true, "when": "x"}})
            ),
            [
                "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1",
                r#"spec.color: Unsupported value: "green": supported values: "red", "blue""#,
                "spec.name: Too long: may not be more than 5 bytes",
                r#"spec.name: Invalid value: "ABCDEF": spec.name in body should match '^[a-z]+$'"#,
                "spec.tags: Too many: 2: must have at most 1 items",
                r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#,
                r#"spec.when: Invalid value: "x": spec.when in body must be of type date-time: "x""#,
            ]
        );
        assert_eq!(
            errs(schema, json!({"spec": {}})),
            ["spec.size: Required value"]
        );
    }

    #[test]
    fn nested_list_errors_carry_the_index() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "integer"}}}}}}}});
        assert_eq!(
            errs(
                schema,
                json!({"spec": {"items": [{"name": "a", "n": 1}, {"name": "a", "n": "z"}]}})
            ),
            [
                r#"spec.items[1]: Duplicate value: map[string]interface {}{"name":"a"}"#,
                r#"spec.items[1].n: Invalid value: "string": spec.items[1].n in body must be of type integer: "string""#
            ]
        );
    }

    #[test]
    fn durations_parse_as_go() {
        assert!(go_duration("1h30m"));
        assert!(go_duration("-1.5s"));
        assert!(!go_duration("1x"));
    }
}
