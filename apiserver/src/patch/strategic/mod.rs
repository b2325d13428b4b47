//! `application/strategic-merge-patch+json`, as kube-apiserver applies it:
//! `strategicpatch.StrategicMergeMapPatch` with `MergeParallelList` and
//! `IgnoreUnmatchedNulls` set, over the map of the versioned object.
//!
//! Wire format handled (all of upstream's directives):
//!
//! * `null` deletes a member; maps merge recursively;
//! * lists whose field is `patchStrategy: merge` merge by `patchMergeKey`
//!   (objects) or as a set (primitives), other lists are replaced;
//! * `"$patch": "replace" | "delete"` inside a map; `"$patch": "delete" |
//!   "replace"` as a list element (`"merge"` is an error upstream, in both);
//! * `"$retainKeys": [...]` in a map;
//! * `"$deleteFromPrimitiveList/<field>": [...]`;
//! * `"$setElementOrder/<field>": [...]`, with upstream's ordering algorithm
//!   (patch order, then live order, merged), including the way Go's slice
//!   aliasing feeds list deletions into the live order it sorts by.
//!
//! The result is upstream's intermediate map: like upstream, members added
//! from the patch keep nested `null`s and any `$…` keys that were not
//! consumed; upstream then drops them by decoding into the typed object. Go
//! iterates patch maps in random order; this walks them in document order.

use serde_json::{Map, Value};

use super::go_compat::{
    GoKind, GoPanic, check_hashable, depth, fmt_s, fmt_v_list, fmt_v_map, go_eq, go_eq_opt,
    go_kind, json_kind_name, reflect_type_s, slice_stable,
};
use super::merge_keys::{FieldKind, PatchMeta, PatchSchema, PatchStrategy};
use super::{MAX_DEPTH, PatchError, too_deep};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

// The `mergepatch` sentinel errors the handler maps to 400 or 422.
const ERR_NO_LIST_OF_LISTS: &str = "lists of lists are not supported";
const ERR_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
const ERR_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const ERR_SET_ELEMENT_ORDER: &str = "invalid patch format of setElementOrder list";

type R<T> = Result<T, PatchError>;

/// Apply a strategic merge patch (the decoded request body) to `doc`, the
/// current object, using `schema` for list strategies and merge keys.
pub fn apply(doc: &Value, patch: &Value, schema: &dyn PatchSchema) -> Result<Value, PatchError> {
    let patch_map = match patch {
        // Decoding `null` into the patch map leaves it nil: nothing to do.
        Value::Null => return Ok(doc.clone()),
        Value::Object(p) => p,
        other => {
            return Err(PatchError::BadRequest(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind_name(other)
            )));
        }
    };
    let Value::Object(original) = doc else {
        return Err(PatchError::Internal(format!(
            "expected a map[string]interface {{}}, but received a {}",
            reflect_type_s(Some(doc))
        )));
    };
    if depth(doc) > MAX_DEPTH || depth(patch) > MAX_DEPTH {
        return Err(too_deep());
    }
    let mut path = Vec::new();
    let merged = merge_map(original.clone(), patch_map.clone(), schema, &mut path)?;
    Ok(Value::Object(merged))
}

fn internal(msg: impl Into<String>) -> PatchError {
    PatchError::Internal(msg.into())
}

/// `mergepatch.ErrBadArgType` with a `map[string]interface{}` expected.
fn bad_arg_map(actual: Option<&Value>) -> PatchError {
    internal(format!(
        "expected a map[string]interface {{}}, but received a {}",
        reflect_type_s(actual)
    ))
}

/// `mergepatch.ErrBadArgType` with a `[]interface{}` expected.
fn bad_arg_slice(actual: Option<&Value>) -> PatchError {
    internal(format!(
        "expected a []interface {{}}, but received a {}",
        reflect_type_s(actual)
    ))
}

/// `mergepatch.ErrNoMergeKey`.
fn no_merge_key(m: &Map<String, Value>, key: &str) -> PatchError {
    internal(format!(
        "map: {} does not contain declared merge key: {key}",
        fmt_v_map(m)
    ))
}

/// `mergepatch.ErrBadPatchType`.
fn bad_patch_type(t: &Value, m: &Map<String, Value>) -> PatchError {
    internal(format!(
        "unknown patch type: {} in map: {}",
        fmt_s(t),
        fmt_v_map(m)
    ))
}

fn lookup(schema: &dyn PatchSchema, path: &[String], key: &str, kind: FieldKind) -> R<PatchMeta> {
    let mut full: Vec<&str> = path.iter().map(String::as_str).collect();
    full.push(key);
    schema.lookup(&full, kind).map_err(PatchError::Internal)
}

/// `extractKey`: the field named after `<prefix>/`.
fn extract_key(s: &str, prefix: &str) -> R<String> {
    match s.split_once('/') {
        Some((head, rest)) if head == prefix => Ok(rest.to_string()),
        _ => Err(PatchError::BadRequest(
            if prefix == DELETE_FROM_PRIMITIVE_LIST {
                ERR_PRIMITIVE_LIST
            } else {
                ERR_SET_ELEMENT_ORDER
            }
            .to_string(),
        )),
    }
}

fn is_string(v: &Value, s: &str) -> bool {
    matches!(v, Value::String(x) if x == s)
}

/// `mergeMap`.
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    schema: &dyn PatchSchema,
    path: &mut Vec<String>,
) -> R<Map<String, Value>> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        if is_string(directive, "replace") {
            patch.shift_remove(DIRECTIVE);
            return Ok(patch);
        }
        if is_string(directive, "delete") {
            return Ok(Map::new());
        }
        return Err(bad_patch_type(directive, &patch));
    }

    apply_retain_keys(&mut original, &mut patch)?;
    merge_patch_into_original(&mut original, &mut patch, schema, path)?;

    for (key, patch_v) in patch {
        let mut k = key;
        let mut is_delete_list = false;
        if k.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            let field = extract_key(&k, DELETE_FROM_PRIMITIVE_LIST)?;
            is_delete_list = true;
            if !field.is_empty() {
                k = field;
            }
        }

        if patch_v.is_null() {
            original.shift_remove(&k);
            continue;
        }

        let same_type = match original.get(&k) {
            None => false,
            Some(cur) => go_kind(cur) == go_kind(&patch_v),
        };
        if !same_type {
            if !is_delete_list {
                let mut v = patch_v;
                discard_null_values(&mut v);
                match remove_directives(v) {
                    Some(v) => {
                        original.insert(k, v);
                    }
                    None => {
                        original.shift_remove(&k);
                    }
                }
            }
            continue;
        }

        let Some(slot) = original.get_mut(&k) else {
            continue;
        };
        let current = std::mem::take(slot);
        let merged = match (current, patch_v) {
            (Value::Object(cur), Value::Object(p)) => {
                let meta = lookup(schema, path, &k, FieldKind::Map)?;
                if meta.strategy == PatchStrategy::Replace {
                    Value::Object(p)
                } else {
                    path.push(k.clone());
                    let r = merge_map(cur, p, schema, path);
                    path.pop();
                    Value::Object(r?)
                }
            }
            (Value::Array(cur), Value::Array(p)) => {
                let meta = lookup(schema, path, &k, FieldKind::List)?;
                path.push(k.clone());
                let r = merge_slice_handler(cur, p, schema, &meta, is_delete_list, path);
                path.pop();
                Value::Array(r?.0)
            }
            // Scalars of the same type: the patch value wins.
            (_, v) => v,
        };
        // The key exists: `insert` replaces the value in place.
        original.insert(k, merged);
    }
    Ok(original)
}

/// `applyRetainKeysDirective` (server side).
fn apply_retain_keys(original: &mut Map<String, Value>, patch: &mut Map<String, Value>) -> R<()> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(list) = retain else {
        return Err(PatchError::BadRequest(ERR_RETAIN_KEYS.to_string()));
    };
    for v in &list {
        check_hashable(v)?;
    }
    let retained = |k: &str| list.iter().any(|v| is_string(v, k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !retained(k) {
            return Err(PatchError::BadRequest(ERR_RETAIN_KEYS.to_string()));
        }
    }
    original.retain(|k, _| retained(k));
    Ok(())
}

/// `mergePatchIntoOriginal`: lists with a `$setElementOrder` directive.
fn merge_patch_into_original(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    schema: &dyn PatchSchema,
    path: &mut Vec<String>,
) -> R<()> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for key in keys {
        let Some(order) = patch.shift_remove(&key) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(bad_arg_slice(Some(&order)));
        };
        let field = extract_key(&key, SET_ELEMENT_ORDER)?;

        let original_list = match original.get(&field) {
            None => None,
            Some(Value::Array(l)) => Some(l.clone()),
            Some(other) => return Err(bad_arg_slice(Some(other))),
        };
        let patch_list = match patch.get(&field) {
            None => None,
            Some(Value::Array(l)) => Some(l.clone()),
            Some(other) => return Err(bad_arg_slice(Some(other))),
        };
        let meta = lookup(schema, path, &field, FieldKind::List)?;
        let merge_key = meta.merge_key.to_string();
        validate_patch_with_set_order_list(
            patch_list.as_deref().unwrap_or(&[]),
            &order,
            &merge_key,
        )?;

        let (merged, live_order) = match (original_list, patch_list.clone()) {
            (Some(orig), None) => (orig.clone(), orig),
            (None, Some(p)) => {
                let merged = match remove_directives(Value::Array(p)) {
                    Some(Value::Array(l)) => l,
                    _ => continue,
                };
                (merged, Vec::new())
            }
            (Some(orig), Some(p)) => {
                path.push(field.clone());
                let r = merge_slice_handler(orig.clone(), p, schema, &meta, false, path);
                path.pop();
                let (merged, view) = r?;
                // What Go's `originalFieldValue` shows after the merge wrote
                // through the shared backing array.
                (merged, view.unwrap_or(orig))
            }
            (None, None) => continue,
        };

        let (patch_items, server_only) = if merge_key.is_empty() {
            partition_primitives(merged, &order)?
        } else {
            partition_maps(merged, &order, &merge_key)?
        };
        let kind = slice_element_type(&[&live_order, patch_list.as_deref().unwrap_or(&[])])?;
        let both = normalize_element_order(
            patch_items,
            server_only,
            &order,
            &live_order,
            &merge_key,
            kind,
        )?;
        original.insert(field.clone(), Value::Array(both));
        patch.shift_remove(&field);
    }
    Ok(())
}

mod lists;
#[cfg(test)]
mod tests;

use lists::*;
