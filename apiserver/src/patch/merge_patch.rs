//! `application/merge-patch+json`: JSON merge patch (RFC 7386) as
//! kube-apiserver applies it — `jsonpatch.MergePatch` from
//! `gopkg.in/evanphx/json-patch.v4` (v4.12.0). Its differences from the RFC
//! are kept:
//!
//! * a `null` or scalar patch is rejected (400 `Invalid JSON Patch`);
//! * an array patch replaces the whole document (nulls inside its objects
//!   pruned) — the caller then fails to decode it as an object;
//! * when a patch object lands where the target has no object (missing,
//!   `null`, scalar or array), its `null` members are pruned recursively, also
//!   inside arrays; a patch array replacing a target *object* keeps its nulls.
//!
//! [`merge`] is the plain RFC 7386 algorithm for internal use.

use serde_json::{Map, Value};

use super::go_compat::depth;
use super::{MAX_DEPTH, PatchError, too_deep};

/// `ErrBadJSONPatch`'s text.
const BAD_PATCH: &str = "Invalid JSON Patch";

/// Apply a merge patch (the decoded request body) to `doc` exactly as
/// upstream does, errors included.
pub fn apply(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    if depth(doc) > MAX_DEPTH || depth(patch) > MAX_DEPTH {
        return Err(too_deep());
    }
    match (doc, patch) {
        (_, Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_)) => {
            Err(PatchError::BadRequest(BAD_PATCH.to_string()))
        }
        // `Invalid JSON Document`, a plain error upstream.
        (Value::Null, _) => Err(PatchError::Internal("Invalid JSON Document".to_string())),
        (_, Value::Array(_)) => {
            let mut out = patch.clone();
            prune_nulls(&mut out);
            Ok(out)
        }
        (Value::Object(d), Value::Object(p)) => {
            let mut out = d.clone();
            merge_docs(&mut out, p);
            Ok(Value::Object(out))
        }
        // The document is not an object: the pruned patch becomes the result.
        (_, Value::Object(_)) => {
            let mut out = patch.clone();
            prune_nulls(&mut out);
            Ok(out)
        }
    }
}

/// `mergeDocs`.
fn merge_docs(doc: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        if v.is_null() {
            doc.shift_remove(k);
            continue;
        }
        match doc.get_mut(k) {
            Some(cur) if !cur.is_null() => merge_node(cur, v),
            _ => {
                let mut v = v.clone();
                prune_nulls(&mut v);
                doc.insert(k.clone(), v);
            }
        }
    }
}

/// `merge(cur, patch)` for a present, non-null target.
fn merge_node(cur: &mut Value, patch: &Value) {
    match (cur, patch) {
        (Value::Object(c), Value::Object(p)) => merge_docs(c, p),
        // Target is an object, patch is not: taken as is, nulls kept.
        (cur @ Value::Object(_), _) => *cur = patch.clone(),
        (cur, _) => {
            let mut v = patch.clone();
            prune_nulls(&mut v);
            *cur = v;
        }
    }
}

/// `pruneNulls`: drop null members of objects, recursively, also below array
/// elements; null array elements stay.
fn prune_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(prune_nulls);
        }
        Value::Array(l) => l.iter_mut().for_each(prune_nulls),
        _ => {}
    }
}

/// Plain RFC 7386 `MergePatch(target, patch)`: a non-object patch replaces the
/// target, `null` members delete. Not what the API server does on the wire
/// (see [`apply`]); for internal merges. Recursion is bounded by the patch
/// depth, which callers must limit.
pub fn merge(target: &Value, patch: &Value) -> Value {
    let Value::Object(p) = patch else {
        return patch.clone();
    };
    let mut out = match target {
        Value::Object(t) => t.clone(),
        _ => Map::new(),
    };
    for (k, v) in p {
        if v.is_null() {
            out.shift_remove(k);
        } else {
            let merged = merge(out.get(k).unwrap_or(&Value::Null), v);
            out.insert(k.clone(), merged);
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    type Case = (Value, Value, Result<Value, (u16, &'static str)>);

    #[test]
    fn upstream_table() {
        let cases: Vec<Case> = vec![
            (
                json!({"a": 1, "b": 2}),
                json!({"a": null, "c": 3}),
                Ok(json!({"b": 2, "c": 3})),
            ),
            (
                json!({"a": {"x": 1, "y": 2}}),
                json!({"a": {"x": null, "z": 3}}),
                Ok(json!({"a": {"y": 2, "z": 3}})),
            ),
            (
                json!({"a": [1, 2]}),
                json!({"a": [3]}),
                Ok(json!({"a": [3]})),
            ),
            (
                json!({"a": 1}),
                json!({"a": {"b": null, "c": 1}}),
                Ok(json!({"a": {"c": 1}})),
            ),
            (
                json!({"a": null}),
                json!({"a": {"b": null}}),
                Ok(json!({"a": {}})),
            ),
            (
                json!({}),
                json!({"a": {"b": null, "c": {"d": null}}}),
                Ok(json!({"a": {"c": {}}})),
            ),
            // Arrays are pruned inside when the target is absent or not an object…
            (
                json!({}),
                json!({"a": [{"b": null}, null]}),
                Ok(json!({"a": [{}, null]})),
            ),
            (
                json!({"a": [1]}),
                json!({"a": [{"b": null}]}),
                Ok(json!({"a": [{}]})),
            ),
            // …but not when they replace an object.
            (
                json!({"a": {"x": 1}}),
                json!({"a": [{"b": null}]}),
                Ok(json!({"a": [{"b": null}]})),
            ),
            (
                json!({"a": {"x": 1}}),
                json!({"a": "s"}),
                Ok(json!({"a": "s"})),
            ),
            (json!({"a": 1}), json!({}), Ok(json!({"a": 1}))),
            (json!({"a": 1}), json!([{"b": null}]), Ok(json!([{}]))),
            (
                json!({"a": 1}),
                json!(null),
                Err((400, "Invalid JSON Patch")),
            ),
            (
                json!({"a": 1}),
                json!("x"),
                Err((400, "Invalid JSON Patch")),
            ),
            (json!({"a": 1}), json!(3), Err((400, "Invalid JSON Patch"))),
        ];
        for (doc, patch, want) in cases {
            let got = apply(&doc, &patch).map_err(|e| (e.code(), e.to_string()));
            let want = want.map_err(|(c, m)| (c, m.to_string()));
            assert_eq!(got, want, "{doc} + {patch}");
        }
    }

    #[test]
    fn preserves_key_order() {
        let got = apply(
            &json!({"a": 1, "b": 2, "c": 3}),
            &json!({"b": null, "d": 4, "a": 0}),
        )
        .unwrap();
        let keys: Vec<&String> = got.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["a", "c", "d"]);
    }

    #[test]
    fn rfc7386_examples() {
        let cases: Vec<(Value, Value, Value)> = vec![
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (target, patch, want) in cases {
            assert_eq!(merge(&target, &patch), want, "{target} + {patch}");
        }
    }
}
