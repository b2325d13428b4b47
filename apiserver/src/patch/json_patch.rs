//! `application/json-patch+json`: RFC 6902 as kube-apiserver applies it, i.e.
//! `gopkg.in/evanphx/json-patch.v4` (v4.12.0) behind
//! `jsonPatcher.applyJSPatch`. That library deviates from the RFC and the
//! deviations are kept, because clients observe them:
//!
//! * the first path segment is ignored (`a/b` acts as `/b`) and the empty path
//!   only works for `replace` and `test`;
//! * `replace` of a missing object member adds it; `replace` of the root with a
//!   scalar or `null` is a no-op;
//! * `copy` from a missing object member copies `null`;
//! * negative array indices count from the end (`-1` on `add` appends);
//! * `test` against a missing member or `null` passes when `value` is `null`;
//! * an operation without `value` adds/replaces `null`.
//!
//! Errors: a body that is not an array of objects is 400 with Go's decode
//! error, more than 10000 operations is 413, and every failure while applying
//! is 422 with a generic message (the library's message is kept in
//! [`PatchError::Unprocessable`]'s `detail`).

use serde_json::{Map, Value};

use super::go_compat::{GoPanic, depth, go_atoi, go_json_len, json_kind_name};
use super::{MAX_DEPTH, PatchError, too_deep};

/// `maxJSONPatchOperations` in `handlers/patch.go`.
pub const MAX_OPERATIONS: usize = 10000;

/// `jsonpatch.AccumulatedCopySizeLimit` as kube-apiserver arms it
/// (`JSONPatchMaxCopyBytes`, 3 MiB): the most `copy` operations may add.
pub const MAX_COPY_BYTES: usize = 3 * 1024 * 1024;

/// Upper bound on nodes visited while re-measuring depth after moves; past it
/// the conservative estimate decides, so hostile patches stay linear.
const DEPTH_WORK_BUDGET: usize = 4_000_000;

/// Apply a JSON patch document (the decoded request body) to `doc`.
pub fn apply(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops = decode(patch)?;
    if depth(patch) > MAX_DEPTH + 2 {
        // Operation values sit two levels below the patch root.
        return Err(too_deep());
    }
    let doc_depth = depth(doc);
    if doc_depth > MAX_DEPTH {
        return Err(too_deep());
    }
    if !doc.is_object() && !doc.is_array() {
        return Err(PatchError::unprocessable(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.partialDoc",
            json_kind_name(doc)
        )));
    }
    let mut state = State {
        doc: doc.clone(),
        depth_bound: doc_depth,
        copied: 0,
        budget: DEPTH_WORK_BUDGET,
    };
    for op in ops {
        let Some(op) = op else {
            return Err(PatchError::unprocessable("Unexpected kind: unknown"));
        };
        state.apply_op(op).map_err(|e| match e {
            OpError::Failed(msg) => PatchError::unprocessable(msg),
            OpError::Panic(p) => PatchError::from(p),
            OpError::TooDeep => too_deep(),
        })?;
    }
    Ok(state.doc)
}

/// `jsonpatch.DecodePatch`: the body must be an array (or `null`) of objects
/// (or `null`s); then the operation count is checked.
fn decode(patch: &Value) -> Result<Vec<Option<&Map<String, Value>>>, PatchError> {
    let ops = match patch {
        Value::Null => return Ok(Vec::new()),
        Value::Array(ops) => ops,
        other => {
            return Err(PatchError::BadRequest(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
                json_kind_name(other)
            )));
        }
    };
    let mut out = Vec::with_capacity(ops.len().min(MAX_OPERATIONS + 1));
    for op in ops {
        match op {
            Value::Object(m) => out.push(Some(m)),
            Value::Null => out.push(None),
            other => {
                return Err(PatchError::BadRequest(format!(
                    "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                    json_kind_name(other)
                )));
            }
        }
    }
    if out.len() > MAX_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            max: MAX_OPERATIONS,
            got: out.len(),
        });
    }
    Ok(out)
}

enum OpError {
    Failed(String),
    Panic(GoPanic),
    TooDeep,
}

impl From<String> for OpError {
    fn from(s: String) -> Self {
        OpError::Failed(s)
    }
}

impl From<GoPanic> for OpError {
    fn from(p: GoPanic) -> Self {
        OpError::Panic(p)
    }
}

type OpResult<T> = Result<T, OpError>;

/// One operation object, read the way `jsonpatch.Operation`'s accessors do.
struct Op<'a>(&'a Map<String, Value>);

impl<'a> Op<'a> {
    fn kind(&self) -> &'a str {
        match self.0.get("op") {
            Some(Value::String(s)) => s,
            _ => "unknown",
        }
    }

    fn string_field(&self, name: &str, missing: &str) -> Result<&'a str, String> {
        match self.0.get(name) {
            None | Some(Value::Null) => Err(format!("{missing}: missing value")),
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(format!(
                "json: cannot unmarshal {} into Go value of type string",
                json_kind_name(other)
            )),
        }
    }

    fn path(&self) -> Result<&'a str, String> {
        self.string_field("path", "operation missing path field")
    }

    fn from(&self) -> Result<&'a str, String> {
        self.string_field("from", "operation, missing from field")
    }

    /// The `value` member: `None` when absent (a nil node upstream),
    /// `Some(Null)` for an explicit `null`.
    fn value(&self) -> Option<&'a Value> {
        self.0.get("value")
    }
}

struct State {
    doc: Value,
    /// Upper bound on the document's depth, kept ≤ [`MAX_DEPTH`].
    depth_bound: usize,
    copied: usize,
    budget: usize,
}

/// RFC 6901 unescaping as `strings.NewReplacer("~1", "/", "~0", "~")` does it.
fn decode_key(k: &str) -> String {
    if !k.contains('~') {
        return k.to_string();
    }
    let mut out = String::with_capacity(k.len());
    let mut rest = k;
    while let Some(i) = rest.find('~') {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        if let Some(after) = tail.strip_prefix('1') {
            out.push('/');
            rest = after;
        } else if let Some(after) = tail.strip_prefix('0') {
            out.push('~');
            rest = after;
        } else {
            out.push('~');
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// Index for `partialArray.get`/`set`: negative counts from the end.
fn read_index(key: &str, len: usize) -> Result<usize, String> {
    let idx = go_atoi(key)?;
    let len = len as i64;
    let mut i = idx;
    if i < 0 {
        if i < -len {
            return Err(invalid_index(idx));
        }
        i += len;
    }
    if i >= len {
        return Err(invalid_index(i));
    }
    Ok(i as usize)
}

fn invalid_index(idx: i64) -> String {
    format!("Unable to access invalid index: {idx}: invalid index referenced")
}

/// `findObject`: the container holding the last segment, and that segment
/// unescaped. `None` is upstream's nil container ("doc is missing path").
/// Also returns the container's depth (root = 1).
fn find_object<'a>(doc: &'a mut Value, path: &str) -> Option<(&'a mut Value, String, usize)> {
    let split: Vec<&str> = path.split('/').collect();
    if split.len() < 2 {
        return None;
    }
    let key = decode_key(split[split.len() - 1]);
    let mut cur = doc;
    let mut level = 1;
    for part in &split[1..split.len() - 1] {
        let part = decode_key(part);
        let next = match cur {
            Value::Object(m) => m.get_mut(&part)?,
            Value::Array(a) => {
                let i = read_index(&part, a.len()).ok()?;
                &mut a[i]
            }
            _ => return None,
        };
        if !next.is_object() && !next.is_array() {
            return None;
        }
        cur = next;
        level += 1;
    }
    Some((cur, key, level))
}

/// `container.get`: objects never fail (absent reads as nil); arrays check the
/// index. `Ok(None)` is upstream's nil node, which `null` also is.
fn con_get<'a>(con: &'a Value, key: &str) -> Result<Option<&'a Value>, String> {
    match con {
        Value::Object(m) => Ok(m.get(key).filter(|v| !v.is_null())),
        Value::Array(a) => {
            let i = read_index(key, a.len())?;
            Ok(Some(&a[i]).filter(|v| !v.is_null()))
        }
        _ => Ok(None),
    }
}

/// `container.add`.
fn con_add(con: &mut Value, key: String, val: Value) -> Result<(), String> {
    match con {
        Value::Object(m) => {
            m.insert(key, val);
            Ok(())
        }
        Value::Array(a) => {
            if key == "-" {
                a.push(val);
                return Ok(());
            }
            let idx = go_atoi(&key)
                .map_err(|e| format!("value was not a proper array index: '{key}': {e}"))?;
            let size = a.len() as i64 + 1;
            if idx >= size {
                return Err(invalid_index(idx));
            }
            let mut i = idx;
            if i < 0 {
                if i < -size {
                    return Err(invalid_index(idx));
                }
                i += size;
            }
            a.insert(i as usize, val);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `container.remove`, returning what was removed.
fn con_remove(con: &mut Value, key: &str) -> Result<Value, String> {
    match con {
        Value::Object(m) => m
            .shift_remove(key)
            .ok_or_else(|| format!("Unable to remove nonexistent key: {key}: missing value")),
        Value::Array(a) => {
            let idx = go_atoi(key)?;
            let len = a.len() as i64;
            if idx >= len {
                return Err(invalid_index(idx));
            }
            let mut i = idx;
            if i < 0 {
                if i < -len {
                    return Err(invalid_index(idx));
                }
                i += len;
            }
            Ok(a.remove(i as usize))
        }
        _ => Ok(Value::Null),
    }
}

/// `lazyNode.equal` between a document node (never nil) and the operation's
/// value (`Null` standing for a `null` literal, whose node has no bytes).
/// Scalars compare by value (upstream compares the raw bytes, see the module
/// notes of the report); a `null` met inside an array panics upstream.
fn node_equal(n: &Value, o: &Value) -> Result<bool, GoPanic> {
    match n {
        Value::Object(nm) => {
            let Value::Object(om) = o else {
                return Ok(false);
            };
            if nm.len() != om.len() {
                return Ok(false);
            }
            for (k, v) in nm {
                let Some(ov) = om.get(k) else {
                    return Ok(false);
                };
                match (v.is_null(), ov.is_null()) {
                    (true, true) => continue,
                    (false, false) => {}
                    _ => return Ok(false),
                }
                if !node_equal(v, ov)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Value::Array(na) => {
            let Value::Array(oa) = o else {
                return Ok(false);
            };
            if na.len() != oa.len() {
                return Ok(false);
            }
            for (v, ov) in na.iter().zip(oa) {
                if v.is_null() || ov.is_null() {
                    return Err(GoPanic::nil_deref());
                }
                if !node_equal(v, ov)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        scalar => Ok(match (scalar, o) {
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            _ => false,
        }),
    }
}

/// Depth of `v`, or `None` once the shared work budget is spent.
fn measured_depth(v: &Value, budget: &mut usize) -> Option<usize> {
    let mut max = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(v, 0)];
    while let Some((v, d)) = stack.pop() {
        *budget = budget.checked_sub(1)?;
        match v {
            Value::Object(m) => {
                max = max.max(d + 1);
                stack.extend(m.values().map(|c| (c, d + 1)));
            }
            Value::Array(l) => {
                max = max.max(d + 1);
                stack.extend(l.iter().map(|c| (c, d + 1)));
            }
            _ => {}
        }
    }
    Some(max)
}

impl State {
    fn apply_op(&mut self, map: &Map<String, Value>) -> OpResult<()> {
        let op = Op(map);
        match op.kind() {
            "add" => self.add(&op),
            "remove" => self.remove(&op),
            "replace" => self.replace(&op),
            "move" => self.move_op(&op),
            "test" => self.test(&op),
            "copy" => self.copy(&op),
            other => Err(OpError::Failed(format!("Unexpected kind: {other}"))),
        }
    }

    /// Admit a value of depth `value_depth` placed in a container at
    /// `container_level`, keeping the document within [`MAX_DEPTH`].
    fn admit(&mut self, container_level: usize, value_depth: usize) -> OpResult<()> {
        let d = container_level + value_depth;
        if d > MAX_DEPTH {
            return Err(OpError::TooDeep);
        }
        self.depth_bound = self.depth_bound.max(d);
        Ok(())
    }

    fn add(&mut self, op: &Op<'_>) -> OpResult<()> {
        let path = op
            .path()
            .map_err(|_| "add operation failed to decode path: missing value".to_string())?;
        let Some((con, key, level)) = find_object(&mut self.doc, path) else {
            return Err(format!(
                "add operation does not apply: doc is missing path: \"{path}\": missing value"
            )
            .into());
        };
        let val = op.value().cloned().unwrap_or(Value::Null);
        let vd = depth(&val);
        con_add(con, key, val).map_err(|e| format!("error in add for path: '{path}': {e}"))?;
        self.admit(level, vd)
    }

    fn remove(&mut self, op: &Op<'_>) -> OpResult<()> {
        let path = op
            .path()
            .map_err(|_| "remove operation failed to decode path: missing value".to_string())?;
        let Some((con, key, _)) = find_object(&mut self.doc, path) else {
            return Err(format!(
                "remove operation does not apply: doc is missing path: \"{path}\": missing value"
            )
            .into());
        };
        con_remove(con, &key).map_err(|e| format!("error in remove for path: '{path}': {e}"))?;
        Ok(())
    }

    fn replace(&mut self, op: &Op<'_>) -> OpResult<()> {
        let path = op
            .path()
            .map_err(|e| format!("replace operation failed to decode path: {e}"))?;
        if path.is_empty() {
            return match op.value() {
                // The nil node's fields are read: a Go panic.
                None => Err(GoPanic::nil_deref().into()),
                Some(v @ (Value::Object(_) | Value::Array(_))) => {
                    let vd = depth(v);
                    self.doc = v.clone();
                    self.depth_bound = 0;
                    self.admit(0, vd)
                }
                // `errors.Wrapf(nil, …)` is nil: nothing happens.
                Some(_) => Ok(()),
            };
        }
        let Some((con, key, level)) = find_object(&mut self.doc, path) else {
            return Err(format!(
                "replace operation does not apply: doc is missing path: {path}: missing value"
            )
            .into());
        };
        if con_get(con, &key).is_err() {
            return Err(format!(
                "replace operation does not apply: doc is missing key: {path}: missing value"
            )
            .into());
        }
        let val = op.value().cloned().unwrap_or(Value::Null);
        let vd = depth(&val);
        match con {
            Value::Object(m) => {
                m.insert(key, val);
            }
            Value::Array(a) => {
                let i = read_index(&key, a.len())
                    .map_err(|e| format!("error in remove for path: '{path}': {e}"))?;
                a[i] = val;
            }
            _ => {}
        }
        self.admit(level, vd)
    }

    fn move_op(&mut self, op: &Op<'_>) -> OpResult<()> {
        let from = op
            .from()
            .map_err(|e| format!("move operation failed to decode from: {e}"))?;
        let Some((con, key, from_level)) = find_object(&mut self.doc, from) else {
            return Err(format!(
                "move operation does not apply: doc is missing from path: {from}: missing value"
            )
            .into());
        };
        // get then remove; for arrays both fail alike, for objects only remove can.
        con_get(con, &key).map_err(|e| format!("error in move for path: '{key}': {e}"))?;
        let val =
            con_remove(con, &key).map_err(|e| format!("error in move for path: '{key}': {e}"))?;
        let path = op
            .path()
            .map_err(|e| format!("move operation failed to decode path: {e}"))?;
        // Measure the moved value; once the work budget is spent fall back to
        // the bound it had where it sat.
        let val_depth = measured_depth(&val, &mut self.budget)
            .unwrap_or_else(|| self.depth_bound.saturating_sub(from_level));
        let Some((con, key, level)) = find_object(&mut self.doc, path) else {
            return Err(
                format!("move operation does not apply: doc is missing destination path: {path}: missing value")
                    .into(),
            );
        };
        con_add(con, key, val).map_err(|e| format!("error in move for path: '{path}': {e}"))?;
        self.admit(level, val_depth)
    }

    fn test(&mut self, op: &Op<'_>) -> OpResult<()> {
        let path = op
            .path()
            .map_err(|e| format!("test operation failed to decode path: {e}"))?;
        let failed = || OpError::Failed(format!("testing value {path} failed: test failed"));
        if path.is_empty() {
            let Some(want) = op.value() else {
                return Err(GoPanic::nil_deref().into());
            };
            return if node_equal(&self.doc, want)? {
                Ok(())
            } else {
                Err(failed())
            };
        }
        let Some((con, key, _)) = find_object(&mut self.doc, path) else {
            return Err(format!(
                "test operation does not apply: is missing path: {path}: missing value"
            )
            .into());
        };
        let val =
            con_get(con, &key).map_err(|e| format!("error in test for path: '{path}': {e}"))?;
        match (val, op.value()) {
            (None, None) => Err(GoPanic::nil_deref().into()),
            (None, Some(Value::Null)) => Ok(()),
            (None, Some(_)) | (Some(_), None) => Err(failed()),
            (Some(have), Some(want)) => {
                if node_equal(have, want)? {
                    Ok(())
                } else {
                    Err(failed())
                }
            }
        }
    }

    fn copy(&mut self, op: &Op<'_>) -> OpResult<()> {
        let from = op
            .from()
            .map_err(|e| format!("copy operation failed to decode from: {e}"))?;
        let Some((con, key, _)) = find_object(&mut self.doc, from) else {
            return Err(format!(
                "copy operation does not apply: doc is missing from path: {from}: missing value"
            )
            .into());
        };
        let val = con_get(con, &key)
            .map_err(|e| format!("error in copy for from: '{from}': {e}"))?
            .cloned();
        let path = op
            .path()
            .map_err(|_| "copy operation failed to decode path: missing value".to_string())?;
        let Some((con, key, level)) = find_object(&mut self.doc, path) else {
            return Err(
                format!("copy operation does not apply: doc is missing destination path: {path}: missing value")
                    .into(),
            );
        };
        let (val, size) = match val {
            Some(v) => {
                let size = go_json_len(&v);
                (v, size)
            }
            None => (Value::Null, 0),
        };
        self.copied += size;
        if self.copied > MAX_COPY_BYTES {
            return Err(format!(
                "Unable to complete the copy, the accumulated size increase of copy is {}, exceeding the limit {}",
                self.copied, MAX_COPY_BYTES
            )
            .into());
        }
        let vd = depth(&val);
        con_add(con, key, val).map_err(|e| format!("error while adding value during copy: {e}"))?;
        self.admit(level, vd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "metadata": {"name": "web", "labels": {"a": "1", "x/y": "s", "t~n": "t"}, "finalizers": ["f1", "f2"]},
            "spec": {"replicas": 2, "list": [1, 2, 3], "nil": null, "objs": [{"k": 1}]}
        })
    }

    enum Want {
        Doc(Value),
        /// 422 with this underlying json-patch error text.
        Fail(&'static str),
        Code(u16, &'static str),
        Panic,
    }

    #[test]
    fn table() {
        use Want::*;
        let cases: Vec<(&str, Value, Want)> = vec![
            (
                "add member",
                json!([{"op": "add", "path": "/metadata/labels/b", "value": "2"}]),
                Doc(json!({"a": "1", "x/y": "s", "t~n": "t", "b": "2"})),
            ),
            (
                "escaped keys",
                json!([
                    {"op": "replace", "path": "/metadata/labels/x~1y", "value": "S"},
                    {"op": "remove", "path": "/metadata/labels/t~0n"}
                ]),
                Doc(json!({"a": "1", "x/y": "S"})),
            ),
            (
                "append dash",
                json!([{"op": "add", "path": "/spec/list/-", "value": 4}]),
                Doc(json!([1, 2, 3, 4])),
            ),
            (
                "insert",
                json!([{"op": "add", "path": "/spec/list/0", "value": 0}]),
                Doc(json!([0, 1, 2, 3])),
            ),
            (
                "add at len",
                json!([{"op": "add", "path": "/spec/list/3", "value": 9}]),
                Doc(json!([1, 2, 3, 9])),
            ),
            (
                "negative add",
                json!([{"op": "add", "path": "/spec/list/-1", "value": 9}]),
                Doc(json!([1, 2, 3, 9])),
            ),
            (
                "negative remove",
                json!([{"op": "remove", "path": "/spec/list/-1"}]),
                Doc(json!([1, 2])),
            ),
            (
                "replace index",
                json!([{"op": "replace", "path": "/spec/list/1", "value": 7}]),
                Doc(json!([1, 7, 3])),
            ),
            (
                "add no value",
                json!([{"op": "add", "path": "/spec/list/-"}]),
                Doc(json!([1, 2, 3, null])),
            ),
            (
                "move",
                json!([{"op": "move", "from": "/spec/list/0", "path": "/spec/list/-"}]),
                Doc(json!([2, 3, 1])),
            ),
            (
                "copy",
                json!([{"op": "copy", "from": "/spec/list/2", "path": "/spec/list/0"}]),
                Doc(json!([3, 1, 2, 3])),
            ),
            (
                "test ok",
                json!([{"op": "test", "path": "/spec/list", "value": [1, 2, 3]}]),
                Doc(json!([1, 2, 3])),
            ),
            (
                "test null member",
                json!([{"op": "test", "path": "/spec/nil", "value": null}]),
                Doc(json!([1, 2, 3])),
            ),
            (
                "test absent member",
                json!([{"op": "test", "path": "/spec/zzz", "value": null}]),
                Doc(json!([1, 2, 3])),
            ),
            (
                "first segment ignored",
                json!([{"op": "replace", "path": "x/spec", "value": {"list": []}}]),
                Doc(json!([])),
            ),
            ("null patch", json!(null), Doc(json!([1, 2, 3]))),
            (
                "test failed",
                json!([{"op": "test", "path": "/metadata/name", "value": "db"}]),
                Fail("testing value /metadata/name failed: test failed"),
            ),
            (
                "test int vs float",
                json!([{"op": "test", "path": "/spec/replicas", "value": 2.0}]),
                Fail("testing value /spec/replicas failed: test failed"),
            ),
            (
                "test root",
                json!([{"op": "test", "path": "", "value": {}}]),
                Fail("testing value  failed: test failed"),
            ),
            (
                "add missing parent",
                json!([{"op": "add", "path": "/status/phase", "value": "x"}]),
                Fail(
                    "add operation does not apply: doc is missing path: \"/status/phase\": missing value",
                ),
            ),
            (
                "add root",
                json!([{"op": "add", "path": "", "value": {}}]),
                Fail("add operation does not apply: doc is missing path: \"\": missing value"),
            ),
            (
                "add through null",
                json!([{"op": "add", "path": "/spec/nil/x", "value": 1}]),
                Fail(
                    "add operation does not apply: doc is missing path: \"/spec/nil/x\": missing value",
                ),
            ),
            (
                "add bad index",
                json!([{"op": "add", "path": "/spec/list/x", "value": 1}]),
                Fail(
                    "error in add for path: '/spec/list/x': value was not a proper array index: 'x': strconv.Atoi: parsing \"x\": invalid syntax",
                ),
            ),
            (
                "add huge index",
                json!([{"op": "add", "path": "/spec/list/99999999999999999999", "value": 1}]),
                Fail(
                    "error in add for path: '/spec/list/99999999999999999999': value was not a proper array index: '99999999999999999999': strconv.Atoi: parsing \"99999999999999999999\": value out of range",
                ),
            ),
            (
                "add out of range",
                json!([{"op": "add", "path": "/spec/list/5", "value": 1}]),
                Fail(
                    "error in add for path: '/spec/list/5': Unable to access invalid index: 5: invalid index referenced",
                ),
            ),
            (
                "remove missing",
                json!([{"op": "remove", "path": "/metadata/labels/zz"}]),
                Fail(
                    "error in remove for path: '/metadata/labels/zz': Unable to remove nonexistent key: zz: missing value",
                ),
            ),
            (
                "remove bad index",
                json!([{"op": "remove", "path": "/spec/list/3"}]),
                Fail(
                    "error in remove for path: '/spec/list/3': Unable to access invalid index: 3: invalid index referenced",
                ),
            ),
            (
                "remove dash",
                json!([{"op": "remove", "path": "/spec/list/-"}]),
                Fail(
                    "error in remove for path: '/spec/list/-': strconv.Atoi: parsing \"-\": invalid syntax",
                ),
            ),
            (
                "remove no path",
                json!([{"op": "remove"}]),
                Fail("remove operation failed to decode path: missing value"),
            ),
            (
                "replace no path",
                json!([{"op": "replace", "value": 1}]),
                Fail(
                    "replace operation failed to decode path: operation missing path field: missing value",
                ),
            ),
            (
                "replace numeric path",
                json!([{"op": "replace", "path": 5, "value": 1}]),
                Fail(
                    "replace operation failed to decode path: json: cannot unmarshal number into Go value of type string",
                ),
            ),
            (
                "replace bad index",
                json!([{"op": "replace", "path": "/spec/list/9", "value": 1}]),
                Fail(
                    "replace operation does not apply: doc is missing key: /spec/list/9: missing value",
                ),
            ),
            (
                "replace missing parent",
                json!([{"op": "replace", "path": "/nope/x", "value": 1}]),
                Fail(
                    "replace operation does not apply: doc is missing path: /nope/x: missing value",
                ),
            ),
            (
                "move missing from",
                json!([{"op": "move", "from": "/metadata/zz", "path": "/spec/zz"}]),
                Fail(
                    "error in move for path: 'zz': Unable to remove nonexistent key: zz: missing value",
                ),
            ),
            (
                "move no from",
                json!([{"op": "move", "path": "/spec/zz"}]),
                Fail(
                    "move operation failed to decode from: operation, missing from field: missing value",
                ),
            ),
            (
                "move into own child",
                json!([{"op": "move", "from": "/spec", "path": "/spec/inner"}]),
                Fail(
                    "move operation does not apply: doc is missing destination path: /spec/inner: missing value",
                ),
            ),
            (
                "copy bad dest",
                json!([{"op": "copy", "from": "/spec/list", "path": "/x/y"}]),
                Fail(
                    "copy operation does not apply: doc is missing destination path: /x/y: missing value",
                ),
            ),
            (
                "copy bad dest index",
                json!([{"op": "copy", "from": "/spec/list", "path": "/spec/list/9"}]),
                Fail(
                    "error while adding value during copy: Unable to access invalid index: 9: invalid index referenced",
                ),
            ),
            (
                "test missing parent",
                json!([{"op": "test", "path": "/a/b", "value": 1}]),
                Fail("test operation does not apply: is missing path: /a/b: missing value"),
            ),
            (
                "unknown op",
                json!([{"op": "frob", "path": "/a"}]),
                Fail("Unexpected kind: frob"),
            ),
            (
                "op not string",
                json!([{"op": 1, "path": "/a"}]),
                Fail("Unexpected kind: unknown"),
            ),
            ("null op", json!([null]), Fail("Unexpected kind: unknown")),
            (
                "not an array",
                json!({"op": "add"}),
                Code(
                    400,
                    "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
                ),
            ),
            (
                "element not object",
                json!([1]),
                Code(
                    400,
                    "json: cannot unmarshal number into Go value of type jsonpatch.Operation",
                ),
            ),
            (
                "replace root without value",
                json!([{"op": "replace", "path": ""}]),
                Panic,
            ),
            (
                "test null without value",
                json!([{"op": "test", "path": "/spec/nil"}]),
                Panic,
            ),
            (
                "test array with nulls",
                json!([{"op": "test", "path": "/spec/list", "value": [1, null, 3]}]),
                Panic,
            ),
        ];
        for (name, patch, want) in cases {
            let got = apply(&doc(), &patch);
            match want {
                Doc(v) => {
                    let got = got.unwrap_or_else(|e| panic!("{name}: {e:?}"));
                    let at = if v.is_object() {
                        &got["metadata"]["labels"]
                    } else {
                        &got["spec"]["list"]
                    };
                    assert_eq!(at, &v, "{name}");
                }
                Fail(msg) => {
                    let err = got.expect_err(name);
                    assert_eq!(err.code(), 422, "{name}");
                    assert_eq!(err.detail(), msg, "{name}");
                    assert_eq!(
                        err.to_string(),
                        "the server rejected our request due to an error in our request"
                    );
                }
                Code(code, msg) => {
                    let err = got.expect_err(name);
                    assert_eq!(
                        (err.code(), err.to_string().as_str()),
                        (code, msg),
                        "{name}"
                    );
                }
                Panic => assert!(
                    matches!(got, Err(PatchError::Panic { .. })),
                    "{name}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn quirks_on_whole_document() {
        let cases: Vec<(Value, Value)> = vec![
            // replace of a missing member adds it
            (
                json!([{"op": "replace", "path": "/new", "value": 1}]),
                json!({"a": 1, "new": 1}),
            ),
            // replace root with a scalar or null is a no-op
            (
                json!([{"op": "replace", "path": "", "value": 5}]),
                json!({"a": 1}),
            ),
            (
                json!([{"op": "replace", "path": "", "value": null}]),
                json!({"a": 1}),
            ),
            // replace root with an object swaps the document
            (
                json!([{"op": "replace", "path": "", "value": {"b": 2}}]),
                json!({"b": 2}),
            ),
            // copy from a missing member copies null
            (
                json!([{"op": "copy", "from": "/zz", "path": "/c"}]),
                json!({"a": 1, "c": null}),
            ),
            // move of a null member
            (
                json!([{"op": "add", "path": "/n", "value": null}, {"op": "move", "from": "/n", "path": "/m"}]),
                json!({"a": 1, "m": null}),
            ),
        ];
        for (patch, want) in cases {
            assert_eq!(apply(&json!({"a": 1}), &patch).unwrap(), want, "{patch}");
        }
    }

    #[test]
    fn operation_limit() {
        let ops: Vec<Value> = (0..=MAX_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "/a", "value": 1}))
            .collect();
        let err = apply(&json!({"a": 1}), &Value::Array(ops.clone())).unwrap_err();
        assert_eq!(err.code(), 413);
        assert_eq!(
            err.to_string(),
            "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"
        );
        assert!(apply(&json!({"a": 1}), &Value::Array(ops[1..].to_vec())).is_ok());
    }

    #[test]
    fn copy_amplification_is_bounded() {
        let big = "x".repeat(100_000);
        let mut ops = vec![json!({"op": "add", "path": "/a", "value": [big]})];
        for _ in 0..100 {
            ops.push(json!({"op": "copy", "from": "/a", "path": "/a/-"}));
        }
        let err = apply(&json!({}), &Value::Array(ops)).unwrap_err();
        assert_eq!(err.code(), 422);
        assert!(
            err.detail().starts_with(
                "Unable to complete the copy, the accumulated size increase of copy is "
            )
        );
        assert!(err.detail().ends_with(", exceeding the limit 3145728"));
    }

    #[test]
    fn depth_is_bounded() {
        // Repeatedly copying a subtree into itself doubles the depth.
        let mut ops = vec![json!({"op": "add", "path": "/a", "value": {"b": {}}})];
        for _ in 0..200 {
            ops.push(json!({"op": "copy", "from": "/a", "path": "/a/b/c"}));
            ops.push(json!({"op": "move", "from": "/a/b/c", "path": "/a/b/d"}));
        }
        let err = apply(&json!({}), &Value::Array(ops)).unwrap_err();
        assert_eq!(err.code(), 422);
        // Moving a shallow value deeper stays allowed.
        let ops = json!([
            {"op": "add", "path": "/a", "value": {"b": {"c": {}}}},
            {"op": "add", "path": "/x", "value": 1},
            {"op": "move", "from": "/x", "path": "/a/b/c/x"}
        ]);
        assert_eq!(
            apply(&json!({}), &ops).unwrap(),
            json!({"a": {"b": {"c": {"x": 1}}}})
        );
    }

    #[test]
    fn pointer_unescaping() {
        for (raw, want) in [
            ("a~1b", "a/b"),
            ("a~0b", "a~b"),
            ("~01", "~1"),
            ("~", "~"),
            ("~2", "~2"),
            ("plain", "plain"),
        ] {
            assert_eq!(decode_key(raw), want);
        }
    }
}
