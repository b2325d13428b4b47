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

/// `validatePatchWithSetOrderList`.
fn validate_patch_with_set_order_list(
    patch_list: &[Value],
    order: &[Value],
    merge_key: &str,
) -> R<()> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<Value> = if merge_key.is_empty() {
        patch_list.to_vec()
    } else {
        extract_to_delete_items(patch_list.to_vec())?.0
    };
    let (mut pi, mut oi) = (0, 0);
    while pi < non_delete.len() && oi < order.len() {
        if non_delete[pi]
            .as_object()
            .is_some_and(|m| m.contains_key(DIRECTIVE))
        {
            pi += 1;
            continue;
        }
        if merge_key_value_equal(&non_delete[pi], &order[oi], merge_key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < non_delete.len() && oi >= order.len() {
        return Err(internal(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}\n",
            fmt_v_list(patch_list),
            fmt_v_list(order)
        )));
    }
    Ok(())
}

/// `mergeKeyValueEqual`.
fn merge_key_value_equal(left: &Value, right: &Value, merge_key: &str) -> R<bool> {
    if merge_key.is_empty() {
        return Ok(go_eq(left, right)?);
    }
    let Value::Object(l) = left else {
        return Err(bad_arg_map(Some(left)));
    };
    let Value::Object(r) = right else {
        return Err(bad_arg_map(Some(right)));
    };
    let Some(lv) = l.get(merge_key) else {
        return Err(no_merge_key(l, merge_key));
    };
    let Some(rv) = r.get(merge_key) else {
        return Err(no_merge_key(r, merge_key));
    };
    Ok(go_eq(lv, rv)?)
}

/// `mergeSliceHandler`. Also returns, when `mergeSlice` ran, the view Go's
/// caller keeps of the original list (see [`Backing`]).
fn merge_slice_handler(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: &dyn PatchSchema,
    meta: &PatchMeta,
    is_delete_list: bool,
    path: &mut Vec<String>,
) -> R<(Vec<Value>, Option<Vec<Value>>)> {
    if meta.strategy == PatchStrategy::Merge || is_delete_list {
        let (merged, view) = merge_slice(original, patch, schema, meta, is_delete_list, path)?;
        Ok((merged, Some(view)))
    } else {
        Ok((patch, None))
    }
}

/// The backing array of the original list as Go shares it between
/// `mergeSlice` and its caller: deletions shift elements left in place and
/// appends fill the freed tail until the slice is reallocated.
struct Backing {
    data: Vec<Value>,
    len: usize,
    detached: bool,
}

impl Backing {
    fn new(original: &[Value]) -> Self {
        Backing {
            data: original.to_vec(),
            len: original.len(),
            detached: false,
        }
    }

    fn delete(&mut self, i: usize) {
        if self.detached || i >= self.len {
            return;
        }
        for j in i..self.len - 1 {
            self.data[j] = self.data[j + 1].clone();
        }
        self.len -= 1;
    }

    fn append(&mut self, v: &Value) {
        if self.detached {
            return;
        }
        if self.len < self.data.len() {
            self.data[self.len] = v.clone();
            self.len += 1;
        } else {
            self.detached = true;
        }
    }
}

/// `mergeSlice`: returns the merged list and the caller's view of the
/// original backing array afterwards.
fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: &dyn PatchSchema,
    meta: &PatchMeta,
    is_delete_list: bool,
    path: &mut Vec<String>,
) -> R<(Vec<Value>, Vec<Value>)> {
    let mut backing = Backing::new(&original);
    if original.is_empty() && patch.is_empty() {
        return Ok((original, backing.data));
    }
    let kind = slice_element_type(&[&original, &patch])?;
    let merge_key = meta.merge_key.as_ref();

    let (merged, server_order, patch) = if kind != GoKind::Map {
        if is_delete_list {
            return Ok((delete_from_slice(original, &patch), backing.data));
        }
        let mut both = original.clone();
        both.extend(patch.iter().cloned());
        (deduplicate_scalars(both)?, original, patch)
    } else {
        if merge_key.is_empty() {
            return Err(internal(format!(
                "cannot merge lists without merge key for {}",
                meta.type_name
            )));
        }
        let (original, patch) =
            merge_slice_with_special_elements(original, patch, merge_key, &mut backing)?;
        let server_order = original.clone();
        let merged = merge_slice_without_special_elements(
            original,
            &patch,
            merge_key,
            schema,
            path,
            &mut backing,
        )?;
        (merged, server_order, patch)
    };

    let (patch_items, server_only) = if merge_key.is_empty() {
        partition_primitives(merged, &patch)?
    } else {
        partition_maps(merged, &patch, merge_key)?
    };
    let out = normalize_element_order(
        patch_items,
        server_only,
        &patch,
        &server_order,
        merge_key,
        kind,
    )?;
    Ok((out, backing.data))
}

/// `mergeSliceWithSpecialElements`: apply `$patch: delete` elements and note
/// `$patch: replace`.
fn merge_slice_with_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
    backing: &mut Backing,
) -> R<(Vec<Value>, Vec<Value>)> {
    let mut plain = Vec::new();
    let mut replace = false;
    for v in patch {
        let Some(directive) = v.get(DIRECTIVE) else {
            plain.push(v);
            continue;
        };
        let Value::Object(m) = &v else { continue };
        if is_string(directive, "delete") {
            let Some(value) = m.get(merge_key) else {
                return Err(no_merge_key(m, merge_key));
            };
            while let Some(i) = find_map_in_slice(&original, merge_key, value)? {
                original.remove(i);
                backing.delete(i);
            }
        } else if is_string(directive, "replace") {
            replace = true;
        } else if is_string(directive, "merge") {
            return Err(internal(
                "merging lists cannot yet be specified in the patch",
            ));
        } else {
            return Err(bad_patch_type(directive, m));
        }
    }
    if replace {
        backing.detached = true;
        return Ok((plain, Vec::new()));
    }
    Ok((original, plain))
}

/// `mergeSliceWithoutSpecialElements`: merge each patch element into the
/// element with the same merge key, or append it.
fn merge_slice_without_special_elements(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    schema: &dyn PatchSchema,
    path: &mut Vec<String>,
    backing: &mut Backing,
) -> R<Vec<Value>> {
    for v in patch {
        let Value::Object(pm) = v else {
            return Err(bad_arg_map(Some(v)));
        };
        let Some(value) = pm.get(merge_key) else {
            return Err(no_merge_key(pm, merge_key));
        };
        match find_map_in_slice(&original, merge_key, value)? {
            Some(i) => {
                let cur = match std::mem::take(&mut original[i]) {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                original[i] = Value::Object(merge_map(cur, pm.clone(), schema, path)?);
            }
            None => {
                backing.append(v);
                original.push(v.clone());
            }
        }
    }
    Ok(original)
}

/// `findMapInSliceBasedOnKeyValue`.
fn find_map_in_slice(list: &[Value], key: &str, value: &Value) -> R<Option<usize>> {
    for (i, v) in list.iter().enumerate() {
        let Value::Object(m) = v else {
            return Err(internal(format!("value for key {i} is not a map")));
        };
        if let Some(x) = m.get(key)
            && go_eq(x, value)?
        {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// `deleteFromSlice` (`$deleteFromPrimitiveList`).
fn delete_from_slice(current: Vec<Value>, to_delete: &[Value]) -> Vec<Value> {
    current
        .into_iter()
        .filter(|v| !to_delete.iter().any(|d| go_eq(d, v).unwrap_or(false)))
        .collect()
}

/// `deduplicateScalars`, including its reordering.
fn deduplicate_scalars(mut s: Vec<Value>) -> R<Vec<Value>> {
    let mut length = s.len().saturating_sub(1);
    let mut i = 0;
    while i < length {
        let mut j = i + 1;
        while j <= length {
            if go_eq(&s[i], &s[j])? {
                s[j] = s[length].clone();
                s.truncate(length);
                length -= 1;
                continue;
            }
            j += 1;
        }
        i += 1;
    }
    Ok(s)
}

/// `sliceElementType`: the common Go kind of the elements of all lists.
fn slice_element_type(lists: &[&[Value]]) -> R<GoKind> {
    let mut prev: Option<GoKind> = None;
    for list in lists {
        for v in *list {
            let cur = go_kind(v);
            match prev {
                None => {
                    if cur == GoKind::Nil {
                        // `reflect.TypeOf(nil).Kind()`.
                        return Err(GoPanic::nil_deref().into());
                    }
                    if cur == GoKind::Slice {
                        return Err(PatchError::unprocessable(ERR_NO_LIST_OF_LISTS));
                    }
                    prev = Some(cur);
                }
                Some(p) if p != cur => {
                    let rendered: Vec<String> = lists.iter().map(|l| fmt_v_list(l)).collect();
                    return Err(internal(format!(
                        "list element types are not identical: [{}]",
                        rendered.join(" ")
                    )));
                }
                Some(_) => {}
            }
        }
    }
    prev.ok_or_else(|| internal("no elements in any of the given slices"))
}

/// `partitionPrimitivesByPresentInList`, hashing like a Go map would.
fn partition_primitives(list: Vec<Value>, by: &[Value]) -> R<(Vec<Value>, Vec<Value>)> {
    for v in by {
        check_hashable(v)?;
    }
    let (mut present, mut absent) = (Vec::new(), Vec::new());
    for v in list {
        check_hashable(&v)?;
        if by.iter().any(|b| go_eq(b, &v).unwrap_or(false)) {
            present.push(v);
        } else {
            absent.push(v);
        }
    }
    Ok((present, absent))
}

/// `partitionMapsByPresentInList`.
fn partition_maps(list: Vec<Value>, by: &[Value], merge_key: &str) -> R<(Vec<Value>, Vec<Value>)> {
    let (mut present, mut absent) = (Vec::new(), Vec::new());
    for v in list {
        let Value::Object(m) = &v else {
            return Err(bad_arg_map(Some(&v)));
        };
        let Some(value) = m.get(merge_key) else {
            return Err(no_merge_key(m, merge_key));
        };
        if find_map_in_slice(by, merge_key, value)?.is_some() {
            present.push(v);
        } else {
            absent.push(v);
        }
    }
    Ok((present, absent))
}

/// `index`: position of `item` in `list` (by merge key for maps), -1 if absent.
fn index(list: &[Value], item: &Value, merge_key: &str, kind: GoKind) -> Result<isize, GoPanic> {
    fn get<'a>(v: &'a Value, merge_key: &str, kind: GoKind) -> Option<&'a Value> {
        if kind == GoKind::Map {
            v.as_object().and_then(|m| m.get(merge_key))
        } else {
            Some(v)
        }
    }
    let want = get(item, merge_key, kind);
    for (i, v) in list.iter().enumerate() {
        if go_eq_opt(want, get(v, merge_key, kind))? {
            return Ok(i as isize);
        }
    }
    Ok(-1)
}

/// `normalizeElementOrder`: patch items in patch order, live-only items in
/// live order, then interleaved by live order.
fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: GoKind,
) -> R<Vec<Value>> {
    let patch_items = normalize_slice_order(patch_items, patch_order, merge_key, kind)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, kind)?;
    Ok(merge_sorted_slice(
        server_only,
        patch_items,
        server_order,
        merge_key,
        kind,
    )?)
}

/// `normalizeSliceOrder`: stable sort by position in `order` with upstream's
/// comparator ("less" whenever either side is absent from `order`).
fn normalize_slice_order(
    to_sort: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: GoKind,
) -> R<Vec<Value>> {
    let (to_sort, to_delete) = if kind == GoKind::Map {
        validate_merge_key_in_lists(merge_key, &[&to_sort, order])?;
        extract_to_delete_items(to_sort)?
    } else {
        (to_sort, Vec::new())
    };
    // Positions are a function of the element alone; computing them up front
    // and surfacing a panic only when the comparator first reads it keeps
    // Go's behaviour.
    let mut keyed: Vec<(Result<isize, GoPanic>, Value)> = to_sort
        .into_iter()
        .map(|v| (index(order, &v, merge_key, kind), v))
        .collect();
    slice_stable(
        &mut keyed,
        &mut |a: &(Result<isize, GoPanic>, Value), b: &(Result<isize, GoPanic>, Value)| {
            let ia = a.0.clone()?;
            if ia >= 0 {
                let ib = b.0.clone()?;
                if ib >= 0 {
                    return Ok::<bool, GoPanic>(ia < ib);
                }
            }
            Ok(true)
        },
    )
    .map_err(PatchError::from)?;
    let mut out: Vec<Value> = keyed.into_iter().map(|(_, v)| v).collect();
    out.extend(to_delete);
    Ok(out)
}

/// `validateMergeKeyInLists`.
fn validate_merge_key_in_lists(merge_key: &str, lists: &[&[Value]]) -> R<()> {
    for list in lists {
        for item in *list {
            let Value::Object(m) = item else {
                return Err(bad_arg_map(Some(item)));
            };
            if !m.contains_key(merge_key) {
                return Err(no_merge_key(m, merge_key));
            }
        }
    }
    Ok(())
}

/// `extractToDeleteItems`: split off the `$patch: delete` elements.
fn extract_to_delete_items(list: Vec<Value>) -> R<(Vec<Value>, Vec<Value>)> {
    let (mut keep, mut delete) = (Vec::new(), Vec::new());
    for v in list {
        let Value::Object(m) = &v else {
            return Err(bad_arg_map(Some(&v)));
        };
        if m.get(DIRECTIVE).is_some_and(|d| is_string(d, "delete")) {
            delete.push(v);
        } else {
            keep.push(v);
        }
    }
    Ok((keep, delete))
}

/// `mergeSortedSlice`: insert each live-only item before the first patch item
/// that comes after it in the live order.
fn merge_sorted_slice(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    kind: GoKind,
) -> Result<Vec<Value>, GoPanic> {
    let size = left.len() + right.len();
    let mut out = Vec::with_capacity(size);
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    for _ in 0..size {
        let take_left = match (left.peek(), right.peek()) {
            (Some(_), None) => true,
            (None, _) => false,
            (Some(l), Some(r)) => {
                let li = index(server_order, l, merge_key, kind)?;
                let ri = index(server_order, r, merge_key, kind)?;
                li >= 0 && ri >= 0 && li < ri
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    Ok(out)
}

/// `removeDirectives`: drop maps carrying `$patch` (and list elements that are
/// such maps). `None` means the value itself was a directive map.
fn remove_directives(v: Value) -> Option<Value> {
    match v {
        Value::Object(m) => {
            if m.contains_key(DIRECTIVE) {
                return None;
            }
            Some(Value::Object(
                m.into_iter()
                    .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                    .collect(),
            ))
        }
        Value::Array(l) => Some(Value::Array(
            l.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// `discardNullValuesFromPatch`.
fn discard_null_values(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(discard_null_values);
        }
        Value::Array(l) => l.iter_mut().for_each(discard_null_values),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::merge_keys::{NoMetadata, builtin_schema};
    use super::*;
    use serde_json::json;

    fn pod(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
    }

    fn names(v: &Value) -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    #[test]
    fn pod_table() {
        let schema = builtin_schema("", "Pod").unwrap();
        let base = pod(json!({
            "containers": [
                {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}], "ports": [{"containerPort": 80}]},
                {"name": "b", "image": "b:1"}
            ],
            "tolerations": [{"key": "k1"}],
            "volumes": [{"name": "v", "configMap": {"name": "cm"}}]
        }));
        let cases: Vec<(&str, Value, Value)> = vec![
            (
                "merge container by name",
                json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}}),
                json!([
                    {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}], "ports": [{"containerPort": 80}]},
                    {"name": "b", "image": "b:2"}
                ]),
            ),
            (
                "new container goes first",
                json!({"spec": {"containers": [{"name": "c", "image": "c"}]}}),
                json!([
                    {"name": "c", "image": "c"},
                    {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}], "ports": [{"containerPort": 80}]},
                    {"name": "b", "image": "b:1"}
                ]),
            ),
            (
                "delete element",
                json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}),
                json!([{"name": "b", "image": "b:1"}]),
            ),
            (
                "replace list",
                json!({"spec": {"containers": [{"name": "z"}, {"$patch": "replace"}]}}),
                json!([{"name": "z"}]),
            ),
            (
                "nested env merge and null delete",
                json!({"spec": {"containers": [{"name": "a", "image": null, "env": [{"name": "Y", "value": "2"}]}]}}),
                json!([
                    {"name": "a", "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}], "ports": [{"containerPort": 80}]},
                    {"name": "b", "image": "b:1"}
                ]),
            ),
            (
                "setElementOrder",
                json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}], "containers": [{"name": "a", "image": "a:2"}]}}),
                json!([
                    {"name": "b", "image": "b:1"},
                    {"name": "a", "image": "a:2", "env": [{"name": "X", "value": "1"}], "ports": [{"containerPort": 80}]}
                ]),
            ),
        ];
        for (name, patch, want) in cases {
            let got = apply(&base, &patch, &schema).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(got["spec"]["containers"], want, "{name}");
        }

        // Atomic list replaced, retainKeys clears other volume sources.
        let got = apply(
            &base,
            &json!({"spec": {
                "tolerations": [{"key": "k2"}],
                "volumes": [{"name": "v", "$retainKeys": ["name", "secret"], "secret": {"secretName": "s"}}]
            }}),
            &schema,
        )
        .unwrap();
        assert_eq!(got["spec"]["tolerations"], json!([{"key": "k2"}]));
        assert_eq!(
            got["spec"]["volumes"],
            json!([{"name": "v", "secret": {"secretName": "s"}}])
        );
    }

    #[test]
    fn aliasing_of_deletions_orders_like_go() {
        // Live [a x b]; the patch deletes b and adds d; x is server-only.
        // Go's deletion writes d into the live array seen by the ordering
        // step, which places x before d.
        let schema = builtin_schema("", "Pod").unwrap();
        let base = pod(json!({"containers": [{"name": "a"}, {"name": "x"}, {"name": "b"}]}));
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "d"}],
            "containers": [{"name": "b", "$patch": "delete"}, {"name": "d"}]
        }});
        let got = apply(&base, &patch, &schema).unwrap();
        assert_eq!(names(&got["spec"]["containers"]), ["a", "x", "d"]);
    }

    #[test]
    fn primitive_lists() {
        let schema = builtin_schema("", "Pod").unwrap();
        let base = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
        let cases: Vec<(Value, Value)> = vec![
            (
                json!({"metadata": {"finalizers": ["d"]}}),
                json!(["d", "a", "b", "c"]),
            ),
            (
                json!({"metadata": {"finalizers": ["b", "d"]}}),
                json!(["a", "b", "d", "c"]),
            ),
            (
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
                json!(["a", "c"]),
            ),
            (
                json!({"metadata": {"$setElementOrder/finalizers": ["c", "a", "b", "e"], "finalizers": ["e"]}}),
                json!(["c", "a", "b", "e"]),
            ),
            (json!({"metadata": {"finalizers": null}}), Value::Null),
        ];
        for (patch, want) in cases {
            let got = apply(&base, &patch, &schema).unwrap();
            assert_eq!(got["metadata"]["finalizers"], want, "{patch}");
        }
        // Without a merge strategy primitive lists are replaced.
        let got = apply(&json!({"a": [1, 2]}), &json!({"a": [3]}), &NoMetadata).unwrap();
        assert_eq!(got, json!({"a": [3]}));
    }

    #[test]
    fn map_directives() {
        let schema = builtin_schema("policy", "PodDisruptionBudget").unwrap();
        let base = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {
            "selector": {"matchLabels": {"x": "1"}}, "minAvailable": 1
        }});
        let cases: Vec<(&str, Value, Value)> = vec![
            (
                "replace map",
                json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
                json!({"metadata": {"labels": {"c": "3"}}, "spec": base["spec"]}),
            ),
            (
                "delete map keeps an empty object",
                json!({"metadata": {"labels": {"$patch": "delete"}}}),
                json!({"metadata": {"labels": {}}, "spec": base["spec"]}),
            ),
            (
                "replace strategy field",
                json!({"spec": {"selector": {"matchExpressions": []}}}),
                json!({"metadata": base["metadata"], "spec": {"selector": {"matchExpressions": []}, "minAvailable": 1}}),
            ),
            (
                "top level replace",
                json!({"$patch": "replace", "kind": "X"}),
                json!({"kind": "X"}),
            ),
            (
                "retainKeys clears",
                json!({"spec": {"$retainKeys": ["maxUnavailable"], "maxUnavailable": 2}}),
                json!({"metadata": base["metadata"], "spec": {"maxUnavailable": 2}}),
            ),
            (
                "directive map on a missing field adds nothing",
                json!({"spec": {"other": {"$patch": "delete"}, "new": {"k": null, "j": 1}}}),
                json!({"metadata": base["metadata"], "spec": {
                    "selector": {"matchLabels": {"x": "1"}}, "minAvailable": 1, "new": {"j": 1}
                }}),
            ),
            ("null patch is a no-op", json!(null), base.clone()),
        ];
        for (name, patch, want) in cases {
            let got = apply(&base, &patch, &schema).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn errors() {
        let schema = builtin_schema("", "Pod").unwrap();
        let base = pod(json!({"containers": [{"name": "a"}], "tolerations": [{"key": "k"}]}));
        let cases: Vec<(Value, u16, &str)> = vec![
            (
                json!([1]),
                400,
                "json: cannot unmarshal array into Go value of type map[string]interface {}",
            ),
            (
                json!({"spec": {"$retainKeys": "x"}}),
                400,
                "invalid patch format of retainKeys",
            ),
            (
                json!({"spec": {"$retainKeys": ["a"], "b": 1}}),
                400,
                "invalid patch format of retainKeys",
            ),
            (
                json!({"spec": {"$deleteFromPrimitiveListX": ["a"]}}),
                400,
                "invalid patch format of primitive list",
            ),
            (
                json!({"spec": {"$setElementOrderX": []}}),
                400,
                "invalid patch format of setElementOrder list",
            ),
            (
                json!({"spec": {"containers": [[1]]}}),
                500,
                "list element types are not identical: [[map[name:a]] [[1]]]",
            ),
            (
                json!({"spec": {"containers": [{"image": "x"}]}}),
                500,
                "map: map[image:x] does not contain declared merge key: name",
            ),
            (
                json!({"spec": {"containers": [{"name": "a", "$patch": "merge"}]}}),
                500,
                "merging lists cannot yet be specified in the patch",
            ),
            (
                json!({"spec": {"containers": [{"name": "a", "$patch": 1}]}}),
                500,
                "unknown patch type: %!s(int64=1) in map: map[$patch:1 name:a]",
            ),
            (
                json!({"spec": {"$patch": "merge"}}),
                500,
                "unknown patch type: merge in map: map[$patch:merge]",
            ),
            (
                json!({"spec": {"containers": ["a"]}}),
                500,
                "list element types are not identical: [[map[name:a]] [a]]",
            ),
            (
                json!({"spec": {"$deleteFromPrimitiveList/tolerations": [{"key": "k"}]}}),
                500,
                "cannot merge lists without merge key for struct",
            ),
            (
                json!({"spec": {"$setElementOrder/containers": [{"name": "a"}], "containers": [{"name": "b"}]}}),
                500,
                "The order in patch list:\n[map[name:b]]\n doesn't match $setElementOrder list:\n[map[name:a]]\n",
            ),
            (
                json!({"spec": {"$setElementOrder/containers": "a"}}),
                500,
                "expected a []interface {}, but received a string",
            ),
        ];
        for (patch, code, msg) in cases {
            let err = apply(&base, &patch, &schema).expect_err(&patch.to_string());
            assert_eq!(
                (err.code(), err.to_string().as_str()),
                (code, msg),
                "{patch}"
            );
        }
        // A list of lists (first element a list) is 422.
        let empty = pod(json!({"containers": []}));
        let err = apply(&empty, &json!({"spec": {"containers": [[1]]}}), &schema).unwrap_err();
        assert_eq!(
            (err.code(), err.detail().as_str()),
            (422, "lists of lists are not supported")
        );
        // Maps as merge-key values make Go compare maps: a runtime panic.
        let err = apply(
            &base,
            &json!({"spec": {"containers": [{"name": {"x": 1}}]}}),
            &schema,
        )
        .unwrap_err();
        assert!(matches!(err, PatchError::Panic { .. }), "{err:?}");
        // Lookups into types without JSON fields fail like upstream.
        let rev = builtin_schema("apps", "ControllerRevision").unwrap();
        let err = apply(
            &json!({"data": {"spec": {"a": 1}}}),
            &json!({"data": {"spec": {"a": 2}}}),
            &rev,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find api field in struct RawExtension for the json field \"spec\""
        );
        assert_eq!(err.code(), 500);
    }

    #[test]
    fn deployment_and_cronjob_templates() {
        let dep = builtin_schema("apps", "Deployment").unwrap();
        let base = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80, "name": "http"}]}]}}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 81}]}]}}}});
        let got = apply(&base, &patch, &dep).unwrap();
        assert_eq!(
            got["spec"]["template"]["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 81}, {"containerPort": 80, "name": "http"}])
        );
        let cj = builtin_schema("batch", "CronJob").unwrap();
        let base = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}}}});
        let patch = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "i"}]}}}}}});
        let got = apply(&base, &patch, &cj).unwrap();
        assert_eq!(
            got["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a", "image": "i"}])
        );
    }

    #[test]
    fn hostile_input_is_bounded() {
        let schema = builtin_schema("", "Pod").unwrap();
        let mut deep = json!({});
        for _ in 0..(MAX_DEPTH + 5) {
            deep = json!({"a": deep});
        }
        let err = apply(&json!({}), &deep, &schema).unwrap_err();
        assert_eq!(err.code(), 422);
        // Dismantle without recursion.
        let mut stack = vec![deep];
        while let Some(v) = stack.pop() {
            if let Value::Object(m) = v {
                stack.extend(m.into_iter().map(|(_, v)| v));
            }
        }
        // Many elements with duplicate keys stay fast and deterministic.
        let list: Vec<Value> = (0..2000)
            .map(|i| json!({"name": (i % 7).to_string()}))
            .collect();
        let base = pod(json!({"containers": list.clone()}));
        let got = apply(&base, &json!({"spec": {"containers": list}}), &schema).unwrap();
        assert_eq!(got["spec"]["containers"].as_array().unwrap().len(), 2000);
    }

    #[test]
    fn other_kinds() {
        let cases: Vec<(&str, &str, Value, Value, Value)> = vec![
            (
                "",
                "Service",
                json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443}]}}),
                json!({"spec": {"ports": [{"port": 443, "name": "https"}]}}),
                json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}}),
            ),
            (
                "",
                "ConfigMap",
                json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}, "data": {"k": "v"}}),
                json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}, "data": {"k": null, "j": "w"}}),
                json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}, {"uid": "1", "name": "a"}]}, "data": {"j": "w"}}),
            ),
            (
                "apps",
                "Deployment",
                json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "1"}}}]}}}}),
                json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "resources": {"$patch": "replace", "requests": {"cpu": "2"}}}]}}}}),
                json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}}}}),
            ),
            (
                "",
                "Node",
                json!({"spec": {"taints": [{"key": "a"}], "podCIDRs": ["10.0.0.0/24"]}}),
                json!({"spec": {"taints": [{"key": "b"}], "podCIDRs": ["fd00::/64"]}}),
                json!({"spec": {"taints": [{"key": "b"}], "podCIDRs": ["fd00::/64", "10.0.0.0/24"]}}),
            ),
        ];
        for (group, kind, doc, patch, want) in cases {
            let schema = builtin_schema(group, kind).unwrap();
            assert_eq!(apply(&doc, &patch, &schema).unwrap(), want, "{kind}");
        }
    }

    #[test]
    fn dedup_like_go() {
        let got =
            deduplicate_scalars(vec![json!("a"), json!("b"), json!("a"), json!("c")]).unwrap();
        assert_eq!(got, vec![json!("a"), json!("b"), json!("c")]);
        let got = deduplicate_scalars(vec![json!(1), json!(1), json!(2), json!(1)]).unwrap();
        assert_eq!(got, vec![json!(1), json!(2)]);
    }
}
