//! Decoding a request body into a resource's object: kind checks, typed
//! normalisation through `k8s-openapi`, and upstream's field validation
//! (`fieldValidation=Strict|Warn|Ignore`) for unknown and duplicate fields.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::api_error::{ApiError, ApiResult, FieldError, FieldErrorKind};
use crate::resources::ResourceInfo;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Strict,
    #[default]
    Warn,
    Ignore,
}

impl FieldValidation {
    /// The `fieldValidation` query parameter; an unsupported value is a field
    /// error of the request's options (`CreateOptions.fieldValidation`...).
    pub fn parse(v: Option<&str>) -> Result<FieldValidation, FieldError> {
        match v.unwrap_or("") {
            "" | "Warn" => Ok(FieldValidation::Warn),
            "Strict" => Ok(FieldValidation::Strict),
            "Ignore" => Ok(FieldValidation::Ignore),
            other => Err(FieldError::new(
                FieldErrorKind::NotSupported,
                "fieldValidation",
                Some(format!("{other:?}")),
                r#"supported values: "", "Ignore", "Strict", "Warn""#,
            )),
        }
    }
}

/// A decoded object plus the warnings to send back.
pub struct Decoded {
    pub object: Value,
    pub warnings: Vec<String>,
}

/// Decodes `raw` (already parsed JSON/YAML; `bytes` is the original JSON text, if
/// JSON, for duplicate detection) as an object of `info`.
pub fn decode_object(
    info: &ResourceInfo,
    raw: Value,
    json_bytes: Option<&[u8]>,
    validation: FieldValidation,
) -> ApiResult<Decoded> {
    let cannot = |why: String| {
        ApiError::bad_request(format!(
            "{} in version {:?} cannot be handled as a {}: {why}",
            info.kind, info.version, info.kind
        ))
    };
    let Value::Object(mut map) = raw else {
        return Err(cannot("the object provided is not a JSON object".into()));
    };
    let expected = info.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v != expected => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected})"
            )));
        }
        _ => {}
    }
    match map.get("kind").and_then(Value::as_str) {
        Some(k) if k != info.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                info.kind
            )));
        }
        _ => {}
    }
    map.insert("apiVersion".into(), Value::String(expected));
    map.insert("kind".into(), Value::String(info.kind.clone()));
    if !map.get("metadata").is_none_or(Value::is_object) {
        return Err(cannot(
            "json: cannot unmarshal into Go struct field .metadata of type v1.ObjectMeta".into(),
        ));
    }
    let input = Value::Object(map);
    // Upstream's decoder reports strict errors in document order.
    let keys = match (validation, json_bytes) {
        (FieldValidation::Ignore, _) | (_, None) => Vec::new(),
        (_, Some(bytes)) => keys_in_order(bytes),
    };
    let mut problems: Vec<(usize, String)> = keys
        .iter()
        .enumerate()
        .filter(|(_, (_, duplicate))| *duplicate)
        .map(|(i, (p, _))| (i, format!("duplicate field {p:?}")))
        .collect();
    let object = match info.codec {
        Some(codec) => {
            let normalised = match (codec.round_trip)(input.clone()) {
                Ok(normalised) => normalised,
                // Go leaves a field that is `null` at its zero value; retry the
                // way Go would read it before giving up.
                Err(e) => go_null_round_trip(codec.round_trip, &input)
                    .ok_or_else(|| cannot(e.to_string()))?,
            };
            if validation != FieldValidation::Ignore {
                let mut unknown = Vec::new();
                unknown_fields(&input, &normalised, String::new(), &mut unknown);
                problems.extend(unknown.into_iter().map(|p| {
                    let at = keys.iter().position(|(k, _)| *k == p).unwrap_or(usize::MAX);
                    (at, format!("unknown field {p:?}"))
                }));
            }
            normalised
        }
        // Custom resources: pruned and defaulted by their schema; what was
        // pruned is reported as unknown, as for typed objects.
        None => match info.strategy.normalize(&input) {
            Some((normalised, pruned)) => {
                if validation != FieldValidation::Ignore {
                    problems.extend(pruned.into_iter().map(|p| {
                        let at = keys.iter().position(|(k, _)| *k == p).unwrap_or(usize::MAX);
                        (at, format!("unknown field {p:?}"))
                    }));
                }
                normalised
            }
            None => input,
        },
    };
    problems.sort_by_key(|(at, _)| *at);
    let problems: Vec<String> = problems.into_iter().map(|(_, p)| p).collect();
    match validation {
        FieldValidation::Strict if !problems.is_empty() => Err(cannot(format!(
            "strict decoding error: {}",
            problems.join(", ")
        ))),
        FieldValidation::Warn => Ok(Decoded {
            object,
            warnings: problems,
        }),
        _ => Ok(Decoded {
            object,
            warnings: Vec::new(),
        }),
    }
}

/// Go's zero time; `metav1.Time` prints it as `null`.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The round trip of `input` read as Go reads it: a `null` leaves a field at
/// its zero value, which for a time (a key ending in `Time` or `Timestamp`,
/// by Kubernetes' naming rule) is the zero time, printed back as `null`, and
/// for anything else is what an absent field gets.
fn go_null_round_trip(
    round_trip: fn(Value) -> Result<Value, serde_json::Error>,
    input: &Value,
) -> Option<Value> {
    fn zero_nulls(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.retain(|k, v| !v.is_null() || k.ends_with("Time") || k.ends_with("Timestamp"));
                for (_, v) in map.iter_mut() {
                    if v.is_null() {
                        *v = Value::from(GO_ZERO_TIME);
                    } else {
                        zero_nulls(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(zero_nulls),
            _ => {}
        }
    }
    fn null_zero_times(v: &mut Value) {
        match v {
            Value::String(s) if s == GO_ZERO_TIME => *v = Value::Null,
            Value::Object(map) => map.values_mut().for_each(null_zero_times),
            Value::Array(items) => items.iter_mut().for_each(null_zero_times),
            _ => {}
        }
    }
    let mut fixed = input.clone();
    zero_nulls(&mut fixed);
    let mut out = round_trip(fixed).ok()?;
    null_zero_times(&mut out);
    Some(out)
}

/// Paths present in `input` that the typed round trip dropped.
fn unknown_fields(input: &Value, output: &Value, path: String, out: &mut Vec<String>) {
    match (input, output) {
        (Value::Object(i), Value::Object(o)) => {
            for (k, v) in i {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match o.get(k) {
                    None if !v.is_null() => out.push(p),
                    Some(ov) => unknown_fields(v, ov, p, out),
                    None => {}
                }
            }
        }
        (Value::Array(i), Value::Array(o)) => {
            for (n, (iv, ov)) in i.iter().zip(o).enumerate() {
                unknown_fields(iv, ov, format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

/// The path of every key of a JSON document in document order, each marked
/// when it repeats a key of the same object (a duplicate).
fn keys_in_order(bytes: &[u8]) -> Vec<(String, bool)> {
    struct Walk<'a> {
        path: String,
        found: &'a mut Vec<(String, bool)>,
    }
    impl<'de> de::DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                let p = if self.path.is_empty() {
                    key.clone()
                } else {
                    format!("{}.{key}", self.path)
                };
                let duplicate = !seen.insert(key);
                self.found.push((p.clone(), duplicate));
                map.next_value_seed(Walk {
                    path: p,
                    found: self.found,
                })?;
            }
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut n = 0;
            while seq
                .next_element_seed(Walk {
                    path: format!("{}[{n}]", self.path),
                    found: self.found,
                })?
                .is_some()
            {
                n += 1;
            }
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    }
    let mut found = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let _ = de::DeserializeSeed::deserialize(
        Walk {
            path: String::new(),
            found: &mut found,
        },
        &mut de,
    );
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::ResourceTable;
    use serde_json::json;

    #[test]
    fn null_fields_read_as_go_zero_values() {
        let t = ResourceTable::with_builtins();
        let svc = t.get("", "v1", "services").unwrap();
        // What a Go client sends for a condition whose time it left unset.
        let body = br#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"status":{"conditions":[{"type":"StatusUpdate","status":"True","reason":"E2E","message":"m","lastTransitionTime":null}]}}"#;
        let raw: Value = serde_json::from_slice(body).unwrap();
        let decoded = decode_object(&svc, raw, Some(body), FieldValidation::Strict).unwrap();
        assert_eq!(
            decoded.object["status"]["conditions"][0],
            json!({"type":"StatusUpdate","status":"True","reason":"E2E","message":"m","lastTransitionTime":null})
        );
    }

    #[test]
    fn strict_errors_come_in_document_order() {
        let t = ResourceTable::with_builtins();
        let cm = t.get("", "v1", "configmaps").unwrap();
        let body = br#"{"apiVersion":"v1","kind":"ConfigMap","bogus":1,"metadata":{"name":"a","name":"b"}}"#;
        let raw: Value = serde_json::from_slice(body).unwrap();
        let err = decode_object(&cm, raw, Some(body), FieldValidation::Strict)
            .err()
            .unwrap();
        assert!(
            err.message.ends_with(
                r#"strict decoding error: unknown field "bogus", duplicate field "metadata.name""#
            ),
            "{}",
            err.message
        );
    }

    #[test]
    fn strict_reports_unknown_and_duplicate_fields_like_upstream() {
        let t = ResourceTable::with_builtins();
        let cm = t.get("", "v1", "configmaps").unwrap();
        let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","name":"b"},"data":{"k":"v"},"bogus":1}"#;
        let raw: Value = serde_json::from_slice(body).unwrap();
        let err = decode_object(&cm, raw.clone(), Some(body), FieldValidation::Strict)
            .err()
            .unwrap();
        assert_eq!(err.code, 400);
        assert_eq!(
            err.message,
            r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "metadata.name", unknown field "bogus""#
        );
        let warned = decode_object(&cm, raw.clone(), Some(body), FieldValidation::Warn).unwrap();
        assert_eq!(warned.warnings.len(), 2);
        assert!(warned.object.get("bogus").is_none());
        assert!(
            decode_object(&cm, raw, Some(body), FieldValidation::Ignore)
                .unwrap()
                .warnings
                .is_empty()
        );
    }

    #[test]
    fn nested_unknown_field_paths_and_wrong_kinds() {
        let t = ResourceTable::with_builtins();
        let pods = t.get("", "v1", "pods").unwrap();
        let raw = json!({"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i","foo":1}]}});
        let err = decode_object(&pods, raw, None, FieldValidation::Strict)
            .err()
            .unwrap();
        assert!(
            err.message
                .ends_with(r#"unknown field "spec.containers[0].foo""#),
            "{}",
            err.message
        );
        let wrong = json!({"apiVersion":"apps/v1","kind":"Pod","metadata":{"name":"p"}});
        assert_eq!(
            decode_object(&pods, wrong, None, FieldValidation::Strict)
                .err()
                .unwrap()
                .code,
            400
        );
        let typed = json!({"metadata":{"name":"p"},"spec":{"containers":"nope"}});
        assert_eq!(
            decode_object(&pods, typed, None, FieldValidation::Ignore)
                .err()
                .unwrap()
                .code,
            400
        );
        assert_eq!(
            decode_object(&pods, json!([1]), None, FieldValidation::Ignore)
                .err()
                .unwrap()
                .code,
            400
        );
    }
}
