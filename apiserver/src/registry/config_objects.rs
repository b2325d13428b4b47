//! Secrets and ConfigMaps: key validation, `immutable`, and a Secret's
//! write-only `stringData`, with upstream's messages.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use crate::api_error::FieldError;
use crate::registry::strategy::Strategy;
use crate::validation::names::is_config_map_key;

/// The largest total size of a Secret's or ConfigMap's data (1 MiB).
const MAX_DATA_BYTES: usize = 1024 * 1024;

const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";

pub struct Secrets;
impl Strategy for Secrets {
    fn prepare_for_create(&self, obj: &mut Value) {
        self.apply_defaults(obj);
    }
    fn apply_defaults(&self, obj: &mut Value) {
        merge_string_data(obj);
        if obj
            .get("type")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            obj["type"] = Value::from("Opaque");
        }
    }
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let total = check_entries(obj, "data", Encoding::Base64, &mut errs);
        if total > MAX_DATA_BYTES {
            errs.push(too_long("data", MAX_DATA_BYTES));
        }
        errs
    }
    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        // Objects stored before defaulting have no type: that was Opaque.
        let type_of = |o: &Value| {
            let t = o.get("type").and_then(Value::as_str).unwrap_or("");
            if t.is_empty() { "Opaque" } else { t }.to_string()
        };
        if type_of(obj) != type_of(old) {
            errs.push(FieldError::invalid(
                "type",
                &type_of(obj),
                "field is immutable",
            ));
        }
        check_immutable(obj, old, &["data"], &mut errs);
        errs
    }
}

pub struct ConfigMaps;
impl Strategy for ConfigMaps {
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let total = check_entries(obj, "data", Encoding::Text, &mut errs)
            + check_entries(obj, "binaryData", Encoding::Base64, &mut errs);
        if let Some(data) = obj.get("data").and_then(Value::as_object) {
            for (key, _) in entries(obj, "binaryData").filter(|(k, _)| data.contains_key(*k)) {
                errs.push(FieldError::invalid(
                    format!("data[{key}]"),
                    key,
                    "duplicate of key present in binaryData",
                ));
            }
        }
        if total > MAX_DATA_BYTES {
            errs.push(too_long("", MAX_DATA_BYTES));
        }
        errs
    }
    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        check_immutable(obj, old, &["data", "binaryData"], &mut errs);
        errs
    }
}

fn entries<'a>(obj: &'a Value, field: &str) -> impl Iterator<Item = (&'a String, &'a Value)> {
    obj.get(field)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
}

/// How a data map's values are written.
#[derive(Clone, Copy)]
enum Encoding {
    Text,
    Base64,
}

/// Checks the keys of `obj[field]` and returns the size of its values in
/// bytes (base64 values sized without decoding them: the typed decode has
/// already checked that they are base64).
fn check_entries(
    obj: &Value,
    field: &str,
    encoding: Encoding,
    errs: &mut Vec<FieldError>,
) -> usize {
    let mut total = 0;
    for (key, value) in entries(obj, field) {
        for msg in is_config_map_key(key) {
            errs.push(FieldError::invalid(format!("{field}[{key}]"), key, msg));
        }
        let text = value.as_str().unwrap_or_default();
        total += match encoding {
            Encoding::Text => text.len(),
            Encoding::Base64 => {
                let padding = text.bytes().rev().take_while(|b| *b == b'=').count();
                (text.len() / 4 * 3).saturating_sub(padding)
            }
        };
    }
    total
}

fn too_long(field: &str, max: usize) -> FieldError {
    FieldError::new(
        crate::api_error::FieldErrorKind::TooLong,
        field,
        None,
        format!("may not be more than {max} bytes"),
    )
}

/// Once `immutable` is true it stays true and the data fields stay as they are.
fn check_immutable(obj: &Value, old: &Value, fields: &[&str], errs: &mut Vec<FieldError>) {
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return;
    }
    if obj.get("immutable").and_then(Value::as_bool) != Some(true) {
        errs.push(FieldError::forbidden("immutable", IMMUTABLE_SET));
    }
    let empty = Value::Object(Map::new());
    for field in fields {
        let new = obj.get(*field).filter(|v| !v.is_null()).unwrap_or(&empty);
        let before = old.get(*field).filter(|v| !v.is_null()).unwrap_or(&empty);
        if new != before {
            errs.push(FieldError::forbidden(*field, IMMUTABLE_SET));
        }
    }
}

/// `stringData` is write-only: its entries are base64-encoded into `data`
/// (winning over `data`'s) and the field is dropped.
fn merge_string_data(obj: &mut Value) {
    let Some(Value::Object(string_data)) = obj.as_object_mut().and_then(|o| o.remove("stringData"))
    else {
        return;
    };
    if !obj.get("data").is_some_and(Value::is_object) {
        obj["data"] = Value::Object(Map::new());
    }
    if let Some(data) = obj.get_mut("data").and_then(Value::as_object_mut) {
        for (key, value) in string_data {
            let text = value.as_str().unwrap_or_default();
            data.insert(key, Value::from(BASE64.encode(text)));
        }
    }
}
