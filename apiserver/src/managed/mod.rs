//! Field management: `metadata.managedFields` for every write, and server-side
//! apply (merge of an applied configuration, conflicts between managers, removal
//! of fields a manager stopped applying).
//!
//! Ownership is tracked per manager and operation as a [`FieldSet`]. An `Update`
//! (create, PUT, non-apply PATCH) takes the fields it changed from every other
//! manager. An `Apply` owns exactly the fields of its configuration; it conflicts
//! with other owners of a field it would change, unless forced, and fields it
//! owned before but no longer applies are removed if nobody else owns them.
//!
//! List semantics come from the strategic-merge metadata of built-in kinds
//! (`crate::patch::merge_keys`): lists merged by key are associative, merged
//! primitive lists are sets, all other lists are atomic. Custom resources (no
//! metadata) have atomic lists.

pub mod fieldset;

use serde_json::{Map, Value, json};

use crate::api_error::{ApiError, ApiResult};
use crate::patch::merge_keys::{self, ListStrategy, PatchSchema};
use crate::resources::ResourceInfo;
use fieldset::{FieldSet, Path, PathElement, canonical, display_path};

/// One `managedFields` entry, decoded.
#[derive(Clone, Debug)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: String,
    pub fields: FieldSet,
}

impl Entry {
    fn to_json(&self) -> Value {
        let mut v = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": self.fields.to_fields_v1(),
        });
        if !self.subresource.is_empty() {
            v["subresource"] = json!(self.subresource);
        }
        v
    }

    fn same_owner(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }

    /// How conflicts name this manager (upstream's format).
    fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {} at {}", self.api_version, self.time));
        }
        s
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg.into())
}

/// Decodes `metadata.managedFields`; malformed entries are a 400, as upstream.
pub fn decode_entries(obj: &Value) -> ApiResult<Vec<Entry>> {
    let Some(list) = obj.pointer("/metadata/managedFields") else {
        return Ok(Vec::new());
    };
    let Some(list) = list.as_array() else {
        return Err(bad("metadata.managedFields must be a list"));
    };
    list.iter()
        .map(|e| {
            let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let fields_type = s("fieldsType");
            if fields_type != "FieldsV1" {
                return Err(bad(format!("invalid managedFields entry: fieldsType {fields_type:?} is not supported, expected \"FieldsV1\"")));
            }
            let fields = FieldSet::from_fields_v1(e.get("fieldsV1").unwrap_or(&json!({})))
                .map_err(|err| bad(format!("invalid managedFields entry: {err}")))?;
            Ok(Entry {
                manager: s("manager"),
                operation: s("operation"),
                api_version: s("apiVersion"),
                time: s("time"),
                subresource: s("subresource"),
                fields,
            })
        })
        .collect()
}

fn store_entries(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(Entry::to_json)
        .collect();
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if list.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(list));
    }
}

/// The list semantics of one resource.
pub struct Schema {
    builtin: Option<merge_keys::BuiltinSchema>,
}

impl Schema {
    pub fn for_resource(info: &ResourceInfo) -> Schema {
        Schema {
            builtin: merge_keys::builtin_schema(&info.group, &info.kind),
        }
    }

    fn list(&self, names: &[&str]) -> ListStrategy {
        match &self.builtin {
            Some(s) => s.list_strategy(names),
            None => ListStrategy::Replace,
        }
    }
}

/// Fields no manager owns: identity and system metadata.
fn ignored(path: &[&str]) -> bool {
    matches!(
        path,
        ["apiVersion"]
            | ["kind"]
            | [
                "metadata",
                "name"
                    | "namespace"
                    | "uid"
                    | "resourceVersion"
                    | "generation"
                    | "creationTimestamp"
                    | "deletionTimestamp"
                    | "deletionGracePeriodSeconds"
                    | "managedFields"
                    | "selfLink"
            ]
    )
}

/// Which part of an object a write manages: the main resource or its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Everything except status (for resources with a status subresource).
    MainWithoutStatus,
    Main,
    Status,
}

impl Scope {
    /// The part of `info`'s objects that a write to the main resource (or `/status`) manages.
    pub fn of(info: &ResourceInfo, status: bool) -> Scope {
        match (status, info.subresource("status").is_some()) {
            (true, _) => Scope::Status,
            (false, true) => Scope::MainWithoutStatus,
            (false, false) => Scope::Main,
        }
    }
}

fn in_scope(scope: Scope, names: &[&str]) -> bool {
    match (scope, names.first()) {
        (Scope::MainWithoutStatus, Some(&"status")) => false,
        (Scope::Status, Some(f)) => *f == "status",
        _ => true,
    }
}

/// The set of fields `value` sets.
pub fn fieldset_of(value: &Value, schema: &Schema, scope: Scope) -> FieldSet {
    let mut set = FieldSet::default();
    let mut names = Vec::new();
    let mut path = Vec::new();
    collect(value, schema, scope, &mut names, &mut path, &mut set, 0);
    set
}

fn element_key(elem: &Value, key: &str) -> Option<String> {
    let k = elem.get(key)?;
    Some(canonical(&json!({ key: k })))
}

fn collect<'a>(
    v: &'a Value,
    schema: &Schema,
    scope: Scope,
    names: &mut Vec<&'a str>,
    path: &mut Path,
    set: &mut FieldSet,
    depth: usize,
) {
    if depth > 64 {
        set.insert(path);
        return;
    }
    let Value::Object(map) = v else {
        set.insert(path);
        return;
    };
    if map.is_empty() && !path.is_empty() {
        set.insert(path);
        return;
    }
    for (k, child) in map {
        names.push(k.as_str());
        if !ignored(names) && in_scope(scope, names) {
            path.push(PathElement::Field(k.clone()));
            match child {
                Value::Array(items) => collect_list(items, schema, scope, names, path, set, depth),
                Value::Object(_) => collect(child, schema, scope, names, path, set, depth + 1),
                _ => set.insert(path),
            }
            path.pop();
        }
        names.pop();
    }
}

fn collect_list<'a>(
    items: &'a [Value],
    schema: &Schema,
    scope: Scope,
    names: &mut Vec<&'a str>,
    path: &mut Path,
    set: &mut FieldSet,
    depth: usize,
) {
    match schema.list(names) {
        ListStrategy::MergeByKey(key) if items.iter().all(|e| element_key(e, &key).is_some()) => {
            for e in items {
                let Some(k) = element_key(e, &key) else {
                    continue;
                };
                path.push(PathElement::Key(k));
                set.insert(path);
                collect(e, schema, scope, names, path, set, depth + 1);
                path.pop();
            }
        }
        ListStrategy::MergeSet if items.iter().all(|e| !e.is_object() && !e.is_array()) => {
            for e in items {
                path.push(PathElement::Value(canonical(e)));
                set.insert(path);
                path.pop();
            }
        }
        _ => set.insert(path),
    }
}

/// The value at `path`, if present.
/// Whether list element `e` (at index `i`) is the one `pe` names.
fn element_matches(e: &Value, i: usize, pe: &PathElement) -> bool {
    match pe {
        PathElement::Key(k) => serde_json::from_str::<Map<String, Value>>(k)
            .is_ok_and(|key| key.iter().all(|(kk, kv)| e.get(kk) == Some(kv))),
        PathElement::Value(val) => canonical(e) == *val,
        PathElement::Index(idx) => *idx == i,
        PathElement::Field(_) => false,
    }
}

pub fn value_at<'a>(v: &'a Value, path: &[PathElement]) -> Option<&'a Value> {
    let mut cur = v;
    for pe in path {
        cur = match pe {
            PathElement::Field(f) => cur.get(f)?,
            _ => {
                cur.as_array()?
                    .iter()
                    .enumerate()
                    .find(|(i, e)| element_matches(e, *i, pe))?
                    .1
            }
        };
    }
    Some(cur)
}

/// Removes the member paths of `set` from `v`.
fn remove_paths(v: &mut Value, set: &FieldSet) {
    for (pe, child) in &set.children {
        match pe {
            PathElement::Field(f) => {
                let Some(map) = v.as_object_mut() else {
                    continue;
                };
                if child.member {
                    map.remove(f);
                } else if let Some(next) = map.get_mut(f) {
                    remove_paths(next, child);
                }
            }
            PathElement::Key(_) | PathElement::Value(_) | PathElement::Index(_) => {
                let Some(items) = v.as_array_mut() else {
                    continue;
                };
                if child.member {
                    let mut i = 0;
                    items.retain(|e| {
                        i += 1;
                        !element_matches(e, i - 1, pe)
                    });
                } else if let Some((_, next)) = items
                    .iter_mut()
                    .enumerate()
                    .find(|(i, e)| element_matches(e, *i, pe))
                {
                    remove_paths(next, child);
                }
            }
        }
    }
}

/// Merges an applied configuration into the live object.
fn merge<'a>(live: &Value, config: &'a Value, schema: &Schema, names: &mut Vec<&'a str>) -> Value {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) => {
            let mut out = l.clone();
            for (k, cv) in c {
                names.push(k.as_str());
                let merged = match l.get(k) {
                    Some(lv) => merge(lv, cv, schema, names),
                    None => cv.clone(),
                };
                out.insert(k.clone(), merged);
                names.pop();
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) => match schema.list(names) {
            ListStrategy::MergeByKey(key) => {
                let mut out = l.clone();
                for ce in c {
                    let Some(ck) = element_key(ce, &key) else {
                        return config.clone();
                    };
                    match out
                        .iter()
                        .position(|le| element_key(le, &key).as_deref() == Some(ck.as_str()))
                    {
                        Some(i) => out[i] = merge(&out[i], ce, schema, names),
                        None => out.push(ce.clone()),
                    }
                }
                Value::Array(out)
            }
            ListStrategy::MergeSet => {
                let mut out = l.clone();
                for ce in c {
                    if !out.contains(ce) {
                        out.push(ce.clone());
                    }
                }
                Value::Array(out)
            }
            ListStrategy::Replace => config.clone(),
        },
        _ => config.clone(),
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn subresource_name(scope: Scope) -> &'static str {
    if scope == Scope::Status { "status" } else { "" }
}

/// Records an `Update` by `manager` that turned `old` (absent on create) into `new`.
/// Managed fields the client sent itself (changed from `old`'s) are kept as sent.
pub fn track_update(
    info: &ResourceInfo,
    scope: Scope,
    manager: &str,
    old: Option<&Value>,
    new: &mut Value,
) -> ApiResult<()> {
    let sent = new.pointer("/metadata/managedFields").cloned();
    let before = old.and_then(|o| o.pointer("/metadata/managedFields").cloned());
    if sent.is_some() && sent != before {
        decode_entries(new)?;
        return Ok(());
    }
    let schema = Schema::for_resource(info);
    let mut entries = match old {
        Some(o) => decode_entries(o)?,
        None => Vec::new(),
    };
    let empty = json!({});
    let old_v = old.unwrap_or(&empty);
    let new_set = fieldset_of(new, &schema, scope);
    let old_set = fieldset_of(old_v, &schema, scope);
    let mut changed = FieldSet::default();
    for p in new_set.members() {
        if value_at(old_v, &p) != value_at(new, &p) || !old_set.contains(&p) {
            changed.insert(&p);
        }
    }
    let removed = old_set.difference(&new_set);
    let taken = changed.union(&removed);
    for e in &mut entries {
        e.fields = e.fields.difference(&taken);
    }
    if !changed.is_empty() {
        let sub = subresource_name(scope);
        match entries
            .iter_mut()
            .find(|e| e.same_owner(manager, "Update", sub))
        {
            Some(e) => {
                e.fields = e.fields.union(&changed);
                e.time = now();
                e.api_version = info.api_version();
            }
            None => entries.push(Entry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version: info.api_version(),
                time: now(),
                subresource: sub.to_string(),
                fields: changed,
            }),
        }
    }
    store_entries(new, &entries);
    Ok(())
}

/// Server-side apply of `config` by `manager` onto `live` (absent: create).
pub fn apply(
    info: &ResourceInfo,
    scope: Scope,
    manager: &str,
    force: bool,
    live: Option<&Value>,
    config: &Value,
) -> ApiResult<Value> {
    let schema = Schema::for_resource(info);
    let config_set = fieldset_of(config, &schema, scope);
    let sub = subresource_name(scope);
    let empty = json!({"metadata": {}});
    let live_v = live.unwrap_or(&empty);
    let mut entries = decode_entries(live_v)?;
    let mut conflicts: Vec<(String, Path)> = Vec::new();
    // Only leaves carry values to disagree on: a list element's own membership
    // (`.`) is the same element in both, whatever fields defaulting added to it.
    for p in config_set.leaves() {
        let differs = value_at(live_v, &p).is_some_and(|lv| Some(lv) != value_at(config, &p));
        if !differs {
            continue;
        }
        for e in &entries {
            if !e.same_owner(manager, "Apply", sub) && e.fields.contains(&p) {
                conflicts.push((e.describe(), p.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(&conflicts));
    }
    if force {
        let mut taken = FieldSet::default();
        for (_, p) in &conflicts {
            taken.insert(p);
        }
        for e in &mut entries {
            if !e.same_owner(manager, "Apply", sub) {
                e.fields = e.fields.difference(&taken);
            }
        }
    }
    let mut names = Vec::new();
    let mut merged = match live {
        Some(l) => merge(l, config, &schema, &mut names),
        None => config.clone(),
    };
    let previous = entries
        .iter()
        .find(|e| e.same_owner(manager, "Apply", sub))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let others = entries
        .iter()
        .filter(|e| !e.same_owner(manager, "Apply", sub))
        .fold(FieldSet::default(), |acc, e| acc.union(&e.fields));
    let dropped = previous.difference(&config_set).difference(&others);
    remove_paths(&mut merged, &dropped);
    match entries
        .iter_mut()
        .find(|e| e.same_owner(manager, "Apply", sub))
    {
        Some(e) => {
            e.fields = config_set;
            e.time = now();
            e.api_version = info.api_version();
        }
        None => entries.insert(
            0,
            Entry {
                manager: manager.to_string(),
                operation: "Apply".into(),
                api_version: info.api_version(),
                time: now(),
                subresource: sub.to_string(),
                fields: config_set,
            },
        ),
    }
    store_entries(&mut merged, &entries);
    Ok(merged)
}

fn conflict_error(conflicts: &[(String, Path)]) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(m, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {m}"), "field": display_path(p)}))
        .collect();
    let message = if conflicts.len() == 1 {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            conflicts[0].0,
            display_path(&conflicts[0].1)
        )
    } else {
        let mut managers: Vec<&String> = conflicts.iter().map(|(m, _)| m).collect();
        managers.sort();
        managers.dedup();
        let mut lines = Vec::new();
        for m in managers {
            lines.push(format!("conflicts with {m}:"));
            for (_, p) in conflicts.iter().filter(|(cm, _)| cm == m) {
                lines.push(format!("- {}", display_path(p)));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    ApiError::new(409, "Conflict", message).with_details(json!({"causes": causes}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::ResourceTable;

    fn deploy() -> std::sync::Arc<ResourceInfo> {
        ResourceTable::with_builtins()
            .get("apps", "v1", "deployments")
            .expect("deployments")
    }

    fn cfg(replicas: i64, labels: Value, env: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": labels},
               "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "c", "image": "i", "env": env}]}}}})
    }

    #[test]
    fn two_managers_share_an_object_and_dropped_fields_are_removed() {
        let info = deploy();
        let s = Scope::MainWithoutStatus;
        let a = apply(
            &info,
            s,
            "a",
            false,
            None,
            &cfg(
                1,
                json!({"x": "1", "y": "2"}),
                json!([{"name": "A", "value": "1"}]),
            ),
        )
        .unwrap();
        // Manager b applies an overlapping config with the same values: shared ownership.
        let b_cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": {"y": "2", "z": "3"}}});
        let ab = apply(&info, s, "b", false, Some(&a), &b_cfg).unwrap();
        assert_eq!(
            ab["metadata"]["labels"],
            json!({"x": "1", "y": "2", "z": "3"})
        );
        // a stops applying x and y: x goes (only a owned it), y stays (b owns it too).
        let a2 = apply(
            &info,
            s,
            "a",
            false,
            Some(&ab),
            &cfg(1, json!({}), json!([{"name": "A", "value": "1"}])),
        )
        .unwrap();
        assert_eq!(a2["metadata"]["labels"], json!({"y": "2", "z": "3"}));
        // a drops the env entry: the list element is removed.
        let a3 = apply(
            &info,
            s,
            "a",
            false,
            Some(&a2),
            &cfg(1, json!({}), json!([])),
        )
        .unwrap();
        assert_eq!(
            a3["spec"]["template"]["spec"]["containers"][0]["env"],
            json!([])
        );
        let mut managers: Vec<String> = decode_entries(&a3)
            .unwrap()
            .into_iter()
            .map(|e| e.manager)
            .collect();
        managers.sort();
        assert_eq!(managers, ["a", "b"]);
    }

    #[test]
    fn conflicts_name_the_other_manager_and_force_takes_ownership() {
        let info = deploy();
        let s = Scope::MainWithoutStatus;
        let mut obj = apply(&info, s, "a", false, None, &cfg(1, json!({}), json!([]))).unwrap();
        let old = obj.clone();
        obj["spec"]["replicas"] = json!(5);
        track_update(&info, s, "kubectl-scale", Some(&old), &mut obj).unwrap();
        let err = apply(
            &info,
            s,
            "a",
            false,
            Some(&obj),
            &cfg(2, json!({}), json!([])),
        )
        .unwrap_err();
        assert_eq!(err.code, 409);
        assert!(
            err.message.starts_with(
                "Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1 at "
            ),
            "{}",
            err.message
        );
        assert!(err.message.ends_with(": .spec.replicas"), "{}", err.message);
        let forced = apply(
            &info,
            s,
            "a",
            true,
            Some(&obj),
            &cfg(2, json!({}), json!([])),
        )
        .unwrap();
        assert_eq!(forced["spec"]["replicas"], 2);
        let entries = decode_entries(&forced).unwrap();
        assert!(
            entries.iter().all(|e| e.manager != "kubectl-scale"),
            "the scaler lost its only field"
        );
    }

    #[test]
    fn updates_take_changed_fields_and_bad_fields_v1_is_rejected() {
        let info = deploy();
        let s = Scope::MainWithoutStatus;
        let mut created = cfg(1, json!({"x": "1"}), json!([]));
        track_update(&info, s, "creator", None, &mut created).unwrap();
        let e = &decode_entries(&created).unwrap()[0];
        assert_eq!(
            (e.manager.as_str(), e.operation.as_str()),
            ("creator", "Update")
        );
        let fv1 = e.fields.to_fields_v1();
        assert!(
            fv1["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["f:image"]
                .is_object(),
            "{fv1}"
        );
        let mut bad = created.clone();
        bad["metadata"]["managedFields"] = json!([{"manager": "m", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"q:x": {}}}]);
        assert_eq!(
            track_update(&info, s, "m", Some(&created), &mut bad)
                .unwrap_err()
                .code,
            400
        );
    }
}
