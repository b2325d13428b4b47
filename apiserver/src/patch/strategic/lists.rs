//! Merging lists: by merge key or as sets, with the deletion, replacement
//! and `$setElementOrder` directives, and upstream's ordering of the result.

use super::*;

/// `validatePatchWithSetOrderList`.
pub(super) fn validate_patch_with_set_order_list(
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
pub(super) fn merge_key_value_equal(left: &Value, right: &Value, merge_key: &str) -> R<bool> {
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
pub(super) fn merge_slice_handler(
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
pub(super) struct Backing {
    pub(super) data: Vec<Value>,
    pub(super) len: usize,
    pub(super) detached: bool,
}

impl Backing {
    pub(super) fn new(original: &[Value]) -> Self {
        Backing {
            data: original.to_vec(),
            len: original.len(),
            detached: false,
        }
    }

    pub(super) fn delete(&mut self, i: usize) {
        if self.detached || i >= self.len {
            return;
        }
        for j in i..self.len - 1 {
            self.data[j] = self.data[j + 1].clone();
        }
        self.len -= 1;
    }

    pub(super) fn append(&mut self, v: &Value) {
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
pub(super) fn merge_slice(
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
pub(super) fn merge_slice_with_special_elements(
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
pub(super) fn merge_slice_without_special_elements(
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
pub(super) fn find_map_in_slice(list: &[Value], key: &str, value: &Value) -> R<Option<usize>> {
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
pub(super) fn delete_from_slice(current: Vec<Value>, to_delete: &[Value]) -> Vec<Value> {
    current
        .into_iter()
        .filter(|v| !to_delete.iter().any(|d| go_eq(d, v).unwrap_or(false)))
        .collect()
}

/// `deduplicateScalars`, including its reordering.
pub(super) fn deduplicate_scalars(mut s: Vec<Value>) -> R<Vec<Value>> {
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
pub(super) fn slice_element_type(lists: &[&[Value]]) -> R<GoKind> {
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
pub(super) fn partition_primitives(list: Vec<Value>, by: &[Value]) -> R<(Vec<Value>, Vec<Value>)> {
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
pub(super) fn partition_maps(
    list: Vec<Value>,
    by: &[Value],
    merge_key: &str,
) -> R<(Vec<Value>, Vec<Value>)> {
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
pub(super) fn index(
    list: &[Value],
    item: &Value,
    merge_key: &str,
    kind: GoKind,
) -> Result<isize, GoPanic> {
    pub(super) fn get<'a>(v: &'a Value, merge_key: &str, kind: GoKind) -> Option<&'a Value> {
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
pub(super) fn normalize_element_order(
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
pub(super) fn normalize_slice_order(
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
pub(super) fn validate_merge_key_in_lists(merge_key: &str, lists: &[&[Value]]) -> R<()> {
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
pub(super) fn extract_to_delete_items(list: Vec<Value>) -> R<(Vec<Value>, Vec<Value>)> {
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
pub(super) fn merge_sorted_slice(
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
pub(super) fn remove_directives(v: Value) -> Option<Value> {
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
pub(super) fn discard_null_values(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(discard_null_values);
        }
        Value::Array(l) => l.iter_mut().for_each(discard_null_values),
        _ => {}
    }
}
