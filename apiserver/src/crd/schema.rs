//! A CRD version's `openAPIV3Schema`, compiled once into a [`Schema`] tree
//! (patterns compiled, numbers parsed, properties indexed) that pruning,
//! defaulting and validation walk without re-reading the JSON Schema. Also
//! upstream's structural-schema rules, checked when a CRD is written.
//!
//! Not compiled yet (a later slice): `allOf`/`anyOf`/`oneOf`/`not` value
//! validations and CEL `x-kubernetes-validations`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::api_error::FieldError;

/// The JSON type a schema node requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    /// No `type` (allowed under `x-kubernetes-int-or-string` or
    /// `x-kubernetes-preserve-unknown-fields`).
    Any,
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
}

impl Type {
    fn parse(s: &str) -> Option<Type> {
        Some(match s {
            "" => Type::Any,
            "object" => Type::Object,
            "array" => Type::Array,
            "string" => Type::String,
            "integer" => Type::Integer,
            "number" => Type::Number,
            "boolean" => Type::Boolean,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Type::Any => "",
            Type::Object => "object",
            Type::Array => "array",
            Type::String => "string",
            Type::Integer => "integer",
            Type::Number => "number",
            Type::Boolean => "boolean",
        }
    }
}

/// How an array is merged and what uniqueness it promises.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ListType {
    #[default]
    Atomic,
    Set,
    Map(Vec<String>),
}

/// One compiled schema node.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    pub ty: Option<Type>,
    pub format: Option<String>,
    pub description: Option<String>,
    pub nullable: bool,
    pub properties: BTreeMap<String, Schema>,
    pub additional: Option<Box<Schema>>,
    pub items: Option<Box<Schema>>,
    pub required: Vec<String>,
    pub enumeration: Option<Vec<Value>>,
    pub pattern: Option<(String, regex::Regex)>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub exclusive_minimum: bool,
    pub exclusive_maximum: bool,
    pub multiple_of: Option<f64>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
    pub unique_items: bool,
    pub min_properties: Option<u64>,
    pub max_properties: Option<u64>,
    pub default: Option<Value>,
    pub preserve_unknown: bool,
    pub int_or_string: bool,
    pub embedded: bool,
    pub list_type: ListType,
}

impl Schema {
    /// Compiles a schema. Anything malformed has been refused by
    /// [`structural_errors`] when the CRD was written; here it is skipped.
    pub fn compile(v: &Value) -> Schema {
        let str_of = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let num = |k: &str| v.get(k).and_then(Value::as_f64);
        let uint = |k: &str| v.get(k).and_then(Value::as_u64);
        let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
        let properties = v
            .get("properties")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, s)| (k.clone(), Schema::compile(s)))
                    .collect()
            })
            .unwrap_or_default();
        let additional = v
            .get("additionalProperties")
            .filter(|a| a.is_object())
            .map(|a| Box::new(Schema::compile(a)));
        let items = v
            .get("items")
            .filter(|i| i.is_object())
            .map(|i| Box::new(Schema::compile(i)));
        let list_type = match v.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => ListType::Set,
            Some("map") => ListType::Map(
                v.get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            _ => ListType::Atomic,
        };
        Schema {
            ty: str_of("type").and_then(|t| Type::parse(&t)),
            format: str_of("format").filter(|f| !f.is_empty()),
            description: str_of("description"),
            nullable: flag("nullable"),
            properties,
            additional,
            items,
            required: v
                .get("required")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            enumeration: v.get("enum").and_then(Value::as_array).cloned(),
            pattern: str_of("pattern").and_then(|p| regex::Regex::new(&p).ok().map(|r| (p, r))),
            minimum: num("minimum"),
            maximum: num("maximum"),
            exclusive_minimum: flag("exclusiveMinimum"),
            exclusive_maximum: flag("exclusiveMaximum"),
            multiple_of: num("multipleOf"),
            min_length: uint("minLength"),
            max_length: uint("maxLength"),
            min_items: uint("minItems"),
            max_items: uint("maxItems"),
            unique_items: flag("uniqueItems"),
            min_properties: uint("minProperties"),
            max_properties: uint("maxProperties"),
            default: v.get("default").cloned(),
            preserve_unknown: flag("x-kubernetes-preserve-unknown-fields"),
            int_or_string: flag("x-kubernetes-int-or-string"),
            embedded: flag("x-kubernetes-embedded-resource"),
            list_type,
        }
    }

    /// Whether unknown fields of an object at this node are kept.
    pub fn keeps_unknown(&self) -> bool {
        self.preserve_unknown
    }
}

/// Upstream's structural-schema rules (`apiextensions-apiserver`
/// `structuralschema` and `ValidateCustomResourceDefinitionOpenAPISchema`),
/// the subset this slice checks, with upstream's field paths and texts.
/// `path` is e.g. `spec.versions[0].schema.openAPIV3Schema`.
pub fn structural_errors(root: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match root.get("type").and_then(Value::as_str) {
        Some("object") => {}
        Some(other) => errs.push(FieldError::invalid(
            format!("{path}.type"),
            other,
            "must be object at the root",
        )),
        None => errs.push(FieldError::required(
            format!("{path}.type"),
            "must not be empty at the root",
        )),
    }
    if let Some(meta) = root.pointer("/properties/metadata") {
        let only_names = meta.as_object().is_some_and(|m| {
            m.keys().all(|k| k == "type" || k == "properties")
                && m.get("properties")
                    .and_then(Value::as_object)
                    .is_none_or(|p| p.keys().all(|k| k == "name" || k == "generateName"))
        });
        if !only_names {
            errs.push(FieldError::forbidden(
                format!("{path}.properties[metadata]"),
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            ));
        }
    }
    walk(root, path, true, &mut errs);
    errs
}

fn walk(v: &Value, path: &str, root: bool, errs: &mut Vec<FieldError>) {
    let Some(m) = v.as_object() else {
        errs.push(FieldError::invalid(
            path,
            &v.to_string(),
            "must be an object",
        ));
        return;
    };
    let ty = m.get("type").and_then(Value::as_str).unwrap_or("");
    if Type::parse(ty).is_none() {
        errs.push(FieldError::new(
            crate::api_error::FieldErrorKind::NotSupported,
            format!("{path}.type"),
            Some(format!("{ty:?}")),
            r#"supported values: "array", "boolean", "integer", "number", "object", "string""#,
        ));
    }
    let flag = |k: &str| m.get(k).and_then(Value::as_bool).unwrap_or(false);
    let int_or_string = flag("x-kubernetes-int-or-string");
    let preserve = flag("x-kubernetes-preserve-unknown-fields");
    if ty.is_empty() && !root && !int_or_string && !preserve {
        errs.push(FieldError::required(
            format!("{path}.type"),
            "must not be empty for specified object fields",
        ));
    }
    if int_or_string && !ty.is_empty() {
        errs.push(FieldError::invalid(
            format!("{path}.type"),
            ty,
            "must be empty if x-kubernetes-int-or-string is true",
        ));
    }
    if flag("x-kubernetes-embedded-resource") && ty != "object" {
        errs.push(FieldError::required(
            format!("{path}.type"),
            "must be object if x-kubernetes-embedded-resource is true",
        ));
    }
    if m.contains_key("additionalProperties") && m.contains_key("properties") {
        errs.push(FieldError::forbidden(
            format!("{path}.additionalProperties"),
            "additionalProperties and properties are mutual exclusive",
        ));
    }
    if m.get("additionalProperties") == Some(&Value::Bool(false)) {
        errs.push(FieldError::forbidden(
            format!("{path}.additionalProperties"),
            "must not be false",
        ));
    }
    if m.contains_key("$ref") {
        errs.push(FieldError::forbidden(
            format!("{path}.$ref"),
            "$ref is not supported",
        ));
    }
    if ty == "array" && !m.get("items").is_some_and(Value::is_object) {
        errs.push(FieldError::required(
            format!("{path}.items"),
            "must be specified",
        ));
    }
    if let Some(p) = m.get("pattern").and_then(Value::as_str)
        && regex::Regex::new(p).is_err()
    {
        errs.push(FieldError::invalid(
            format!("{path}.pattern"),
            p,
            "must be a valid regular expression",
        ));
    }
    if let Some(lt) = m.get("x-kubernetes-list-type").and_then(Value::as_str) {
        if ty != "array" {
            errs.push(FieldError::invalid(
                format!("{path}.x-kubernetes-list-type"),
                lt,
                "must only be used if type is array",
            ));
        }
        if lt == "map" && m.get("x-kubernetes-list-map-keys").is_none() {
            errs.push(FieldError::required(
                format!("{path}.x-kubernetes-list-map-keys"),
                "must not be empty if x-kubernetes-list-type is map",
            ));
        }
    }
    if let Some(props) = m.get("properties").and_then(Value::as_object) {
        for (k, s) in props {
            walk(s, &format!("{path}.properties[{k}]"), false, errs);
        }
    }
    if let Some(a) = m.get("additionalProperties").filter(|a| a.is_object()) {
        walk(a, &format!("{path}.additionalProperties"), false, errs);
    }
    if let Some(i) = m.get("items") {
        match i {
            Value::Object(_) => walk(i, &format!("{path}.items"), false, errs),
            Value::Array(_) => errs.push(FieldError::forbidden(
                format!("{path}.items"),
                "items must be a schema object and not an array",
            )),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compiles_once_with_patterns_and_lists() {
        let s = Schema::compile(&json!({
            "type": "object",
            "properties": {"spec": {"type": "object", "properties": {
                "name": {"type": "string", "pattern": "^[a-z]+$"},
                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            }}},
        }));
        let spec = &s.properties["spec"];
        assert!(spec.properties["name"].pattern.is_some());
        assert_eq!(spec.properties["tags"].list_type, ListType::Set);
    }

    #[test]
    fn structural_rules_name_the_field() {
        let errs = structural_errors(
            &json!({"type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}}}),
            "spec.versions[0].schema.openAPIV3Schema",
        );
        assert_eq!(
            errs[0].to_string(),
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"
        );
        let errs = structural_errors(
            &json!({"type": "object", "properties": {"l": {"type": "array"}}}),
            "s",
        );
        assert_eq!(
            errs[0].to_string(),
            "s.properties[l].items: Required value: must be specified"
        );
    }
}
