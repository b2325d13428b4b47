//! Pruning and defaulting of custom resources against a compiled [`Schema`],
//! as upstream's decoder does for every request body (and defaulting also on
//! every read from storage).
//!
//! Pruning drops fields the schema does not specify (unless
//! `x-kubernetes-preserve-unknown-fields`), keeps `apiVersion`, `kind` and
//! known `metadata` fields at the root and in embedded resources, and reports
//! each dropped path in the form `fieldValidation` uses (`spec.foo`,
//! `spec.items[0].bar`). Defaulting fills absent fields, and `null` fields that
//! are not `nullable`, from `default`.

use serde_json::{Map, Value};

use super::schema::Schema;

/// The fields of `ObjectMeta`; anything else under `metadata` is unknown.
const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Prunes `obj` (a whole custom resource) in place; returns the dropped paths.
pub fn prune(schema: &Schema, obj: &mut Value) -> Vec<String> {
    let mut dropped = Vec::new();
    prune_at(schema, obj, "", true, &mut dropped);
    dropped
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn prune_at(schema: &Schema, v: &mut Value, path: &str, resource: bool, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            let mut remove = Vec::new();
            for (key, child) in map.iter_mut() {
                let p = join(path, key);
                if resource && (key == "apiVersion" || key == "kind") {
                    continue;
                }
                if resource && key == "metadata" {
                    prune_metadata(child, &p, out);
                    continue;
                }
                if let Some(s) = schema.properties.get(key) {
                    prune_at(s, child, &p, s.embedded, out);
                } else if let Some(s) = &schema.additional {
                    prune_at(s, child, &p, s.embedded, out);
                } else if !schema.keeps_unknown() {
                    remove.push(key.clone());
                    out.push(p);
                }
            }
            for k in remove {
                map.remove(&k);
            }
        }
        Value::Array(items) => {
            if let Some(s) = &schema.items {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_at(s, item, &format!("{path}[{i}]"), s.embedded, out);
                }
            }
        }
        _ => {}
    }
}

/// Keeps only `ObjectMeta` fields (upstream coerces metadata into the type).
fn prune_metadata(meta: &mut Value, path: &str, out: &mut Vec<String>) {
    let Value::Object(m) = meta else { return };
    let unknown: Vec<String> = m
        .keys()
        .filter(|k| !OBJECT_META_FIELDS.contains(&k.as_str()))
        .cloned()
        .collect();
    for k in unknown {
        out.push(join(path, &k));
        m.remove(&k);
    }
}

/// Applies defaults in place (after pruning).
pub fn default(schema: &Schema, v: &mut Value) {
    match v {
        Value::Object(map) => {
            default_properties(schema, map);
            for (key, child) in map.iter_mut() {
                if let Some(s) = schema.properties.get(key) {
                    default(s, child);
                } else if let Some(s) = &schema.additional {
                    default(s, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = &schema.items {
                for item in items.iter_mut() {
                    default(s, item);
                }
            }
        }
        _ => {}
    }
}

fn default_properties(schema: &Schema, map: &mut Map<String, Value>) {
    for (key, prop) in &schema.properties {
        match map.get(key) {
            None => {
                if let Some(d) = &prop.default {
                    map.insert(key.clone(), d.clone());
                }
            }
            // A `null` the schema does not allow is dropped, or defaulted.
            Some(Value::Null) if !prop.nullable => match &prop.default {
                Some(d) => {
                    map.insert(key.clone(), d.clone());
                }
                None => {
                    map.remove(key);
                }
            },
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::compile(&json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {
                    "size": {"type": "integer", "default": 3},
                    "opts": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "list": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string", "default": "x"}}}},
                    "tpl": {"type": "object", "x-kubernetes-embedded-resource": true, "properties": {"spec": {"type": "object"}}},
                }},
            },
        }))
    }

    #[test]
    fn prunes_unknown_fields_and_reports_their_paths() {
        let mut obj = json!({
            "apiVersion": "x/v1", "kind": "X",
            "metadata": {"name": "a", "bogus": 1},
            "spec": {"size": 1, "extra": true, "opts": {"anything": 1}, "list": [{"a": "b", "c": 1}],
                     "tpl": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "zz": 1}},
            "other": 1,
        });
        let dropped = prune(&schema(), &mut obj);
        assert_eq!(
            dropped,
            [
                "metadata.bogus",
                "spec.extra",
                "spec.list[0].c",
                "spec.tpl.zz",
                "other"
            ]
        );
        assert_eq!(obj["spec"]["opts"]["anything"], 1);
        assert_eq!(obj["spec"]["tpl"]["kind"], "Pod");
    }

    #[test]
    fn defaults_absent_and_null_fields() {
        let mut obj = json!({"spec": {"size": null, "list": [{}]}});
        default(&schema(), &mut obj);
        assert_eq!(obj["spec"]["size"], 3);
        assert_eq!(obj["spec"]["list"][0]["a"], "x");
    }
}
