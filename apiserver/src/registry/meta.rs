//! Helpers for the `metadata` of objects held as JSON.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::api_error::{ApiError, ApiResult};
use crate::resources::ResourceInfo;
use crate::storage::{KeyValue, Revision};

pub fn str_at<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    obj.pointer(pointer).and_then(Value::as_str)
}

pub fn name(obj: &Value) -> &str {
    str_at(obj, "/metadata/name").unwrap_or("")
}

pub fn namespace(obj: &Value) -> &str {
    str_at(obj, "/metadata/namespace").unwrap_or("")
}

pub fn resource_version(obj: &Value) -> &str {
    str_at(obj, "/metadata/resourceVersion").unwrap_or("")
}

/// The `metadata` map, created if missing.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable!("metadata was just made an object"),
    }
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    strings(obj.pointer("/metadata/finalizers"))
}

/// The strings of a JSON array (none if `v` is absent or not an array).
pub fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

pub fn set_resource_version(obj: &mut Value, rev: Revision) {
    meta_mut(obj).insert("resourceVersion".into(), json!(rev.to_string()));
}

/// Parses a stored value, setting `resourceVersion` from the store's revision.
/// A stored object in the form of `info`'s version.
pub fn decode_stored(info: &ResourceInfo, kv: &KeyValue) -> ApiResult<Value> {
    decode_at(&kv.value, kv.mod_revision, &kv.key).map(|obj| info.from_storage(obj))
}

pub fn decode_at(value: &Bytes, rev: Revision, key: &str) -> ApiResult<Value> {
    let mut obj: Value = serde_json::from_slice(value).map_err(|e| {
        ApiError::internal(format!("stored object at {key} is not valid JSON: {e}"))
    })?;
    set_resource_version(&mut obj, rev);
    Ok(obj)
}

/// Serialises an object for storage; `resourceVersion` is never stored.
pub fn encode_for_storage(info: &ResourceInfo, obj: &Value) -> ApiResult<Bytes> {
    let mut obj = info.to_storage(obj.clone());
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        m.remove("selfLink");
    }
    serde_json::to_vec(&obj)
        .map(Bytes::from)
        .map_err(ApiError::internal)
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Everything but metadata and status: what a generation bump watches.
pub fn spec_part(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    o
}

/// Upstream's generateName suffix: 5 characters from an alphabet without vowels.
pub fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    let suffix: String = bytes
        .iter()
        .take(5)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    let max_prefix = 63usize.saturating_sub(5);
    let prefix = if prefix.len() > max_prefix {
        &prefix[..max_prefix]
    } else {
        prefix
    };
    format!("{prefix}{suffix}")
}
