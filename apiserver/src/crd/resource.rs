//! The served form of one CRD version: its [`ResourceInfo`] for the table and
//! the strategy that prunes, defaults, validates, converts and prints its
//! objects with the version's schema, compiled once when the CRD is
//! (re)registered, together with the OpenAPI definitions it publishes and
//! its `selectableFields`.

use std::sync::Arc;

use serde_json::{Value, json};

use super::jsonpath;
use super::prune;
use super::schema::Schema;
use super::validate;
use crate::api_error::FieldError;
use crate::openapi::{CustomInput, CustomSchemas};
use crate::registry::strategy::{ScalePaths, Strategy, TablePrinter};
use crate::resources::{ResourceInfo, STANDARD_VERBS, Subresource};

/// Builds the table entry of `version` (an item of `spec.versions`) of `crd`.
pub fn resource_info(crd: &Value, version: &Value) -> Option<ResourceInfo> {
    let spec = crd.get("spec")?;
    let group = spec.get("group")?.as_str()?.to_string();
    // Served names are the accepted ones (status), as upstream.
    let names = crd
        .pointer("/status/acceptedNames")
        .filter(|n| {
            n.get("plural")
                .and_then(Value::as_str)
                .is_some_and(|p| !p.is_empty())
        })
        .or_else(|| spec.get("names"))?;
    let s = |k: &str| {
        names
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let list = |k: &str| -> Vec<String> {
        names
            .get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let plural = s("plural");
    let kind = s("kind");
    let name = version.get("name")?.as_str()?.to_string();
    let storage_version = spec
        .get("versions")
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        })
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str)
        .unwrap_or(&name)
        .to_string();
    let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
    let schema = version
        .pointer("/schema/openAPIV3Schema")
        .map(Schema::compile);
    let mut subresources = Vec::new();
    let status = version.pointer("/subresources/status").is_some();
    if status {
        subresources.push(Subresource {
            name: "status",
            kind: kind.clone(),
            group: String::new(),
            version: String::new(),
            verbs: vec!["get", "patch", "update"],
            connect: None,
        });
    }
    let scale = version.pointer("/subresources/scale").map(|sc| {
        let path = |k: &str| sc.get(k).and_then(Value::as_str).map(json_pointer);
        ScalePaths {
            spec_replicas: path("specReplicasPath").unwrap_or_else(|| "/spec/replicas".into()),
            status_replicas: path("statusReplicasPath")
                .unwrap_or_else(|| "/status/replicas".into()),
            label_selector: path("labelSelectorPath"),
        }
    });
    if scale.is_some() {
        subresources.push(Subresource {
            name: "scale",
            kind: "Scale".into(),
            group: "autoscaling".into(),
            version: "v1".into(),
            verbs: vec!["get", "patch", "update"],
            connect: None,
        });
    }
    let selectable_fields: Vec<String> = version
        .get("selectableFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| f.get("jsonPath").and_then(Value::as_str))
        .map(|p| p.trim_start_matches('.').to_string())
        .collect();
    let list_kind = {
        let lk = s("listKind");
        if lk.is_empty() {
            format!("{kind}List")
        } else {
            lk
        }
    };
    let sub_names: Vec<&str> = subresources.iter().map(|s| s.name).collect();
    let openapi = CustomSchemas::build(&CustomInput {
        group: &group,
        version: &name,
        kind: &kind,
        list_kind: &list_kind,
        plural: &plural,
        namespaced,
        schema: version.pointer("/schema/openAPIV3Schema"),
        selectable_fields: &selectable_fields,
        subresources: &sub_names,
    });
    let columns = version
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let strategy = CustomResource {
        api_version: format!("{group}/{name}"),
        storage_api_version: format!("{group}/{storage_version}"),
        schema: schema.map(Arc::new),
        printer: Printer::new(&columns),
        scale: scale.unwrap_or_default(),
        selectable_fields,
        openapi,
    };
    Some(ResourceInfo {
        storage_prefix: format!("/registry/{group}/{plural}"),
        group,
        version: name,
        list_kind,
        singular: {
            let sg = s("singular");
            if sg.is_empty() {
                kind.to_lowercase()
            } else {
                sg
            }
        },
        kind,
        plural,
        short_names: list("shortNames"),
        categories: list("categories"),
        namespaced,
        verbs: STANDARD_VERBS.to_vec(),
        subresources,
        create: Default::default(),
        initial_status: None,
        codec: None,
        conversion: None,
        strategy: Arc::new(strategy),
    })
}

/// `.spec.replicas` → `/spec/replicas`.
fn json_pointer(path: &str) -> String {
    path.trim_start_matches('.')
        .split('.')
        .fold(String::new(), |acc, seg| format!("{acc}/{seg}"))
}

/// The strategy of one served version of a custom resource.
pub struct CustomResource {
    api_version: String,
    storage_api_version: String,
    schema: Option<Arc<Schema>>,
    printer: Printer,
    scale: ScalePaths,
    /// `selectableFields` paths without the leading dot.
    selectable_fields: Vec<String>,
    openapi: CustomSchemas,
}

impl Strategy for CustomResource {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        match &self.schema {
            Some(s) => validate::validate(s, obj),
            None => Vec::new(),
        }
    }

    fn normalize(&self, obj: &Value) -> Option<(Value, Vec<String>)> {
        let schema = self.schema.as_ref()?;
        let mut out = obj.clone();
        let pruned = prune::prune(schema, &mut out);
        prune::default(schema, &mut out);
        Some((out, pruned))
    }

    fn serves_stored_as_is(&self) -> bool {
        false
    }

    fn read_stored(&self, mut obj: Value) -> Value {
        // Conversion `None`: only the apiVersion changes between versions.
        obj["apiVersion"] = json!(self.api_version);
        if let Some(s) = &self.schema {
            prune::default(s, &mut obj);
        }
        obj
    }

    fn write_stored(&self, mut obj: Value) -> Value {
        obj["apiVersion"] = json!(self.storage_api_version);
        obj
    }

    fn table(&self) -> Option<&dyn TablePrinter> {
        Some(&self.printer)
    }

    fn scale_paths(&self) -> ScalePaths {
        self.scale.clone()
    }

    fn selectable_fields(&self) -> Option<&[String]> {
        Some(&self.selectable_fields)
    }

    fn openapi(&self) -> Option<&CustomSchemas> {
        Some(&self.openapi)
    }
}

/// One `additionalPrinterColumns` entry.
struct Column {
    definition: Value,
    ty: String,
    path: jsonpath::Path,
}

/// A Table printer from `additionalPrinterColumns` (with the `Name` column
/// first, and `Age` when the version defines none, as upstream).
struct Printer {
    columns: Vec<Column>,
}

impl Printer {
    fn new(defs: &[Value]) -> Printer {
        let mut defs = defs.to_vec();
        if defs.is_empty() {
            defs.push(
                json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}),
            );
        }
        let created_doc = crate::printers::columns("", "")
            .get(1)
            .map(|c| c.description)
            .unwrap_or("");
        let columns = defs
            .iter()
            .filter_map(|d| {
                let path = jsonpath::Path::parse(d.get("jsonPath")?.as_str()?)?;
                let ty = d
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("string")
                    .to_string();
                let name = d.get("name").and_then(Value::as_str).unwrap_or("");
                let description = match d.get("description").and_then(Value::as_str) {
                    Some(desc) => desc.to_string(),
                    None if d.get("jsonPath").and_then(Value::as_str)
                        == Some(".metadata.creationTimestamp") =>
                    {
                        created_doc.to_string()
                    }
                    None => {
                        "Custom resource definition column (in JSONPath format): ".to_string()
                            + d.get("jsonPath").and_then(Value::as_str).unwrap_or("")
                    }
                };
                Some(Column {
                    definition: json!({
                        "name": name,
                        "type": ty,
                        "format": d.get("format").and_then(Value::as_str).unwrap_or(""),
                        "description": description,
                        "priority": d.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    }),
                    ty,
                    path,
                })
            })
            .collect();
        Printer { columns }
    }
}

impl TablePrinter for Printer {
    fn columns(&self) -> Vec<Value> {
        let name = crate::printers::columns("", "").first().map(|c| {
            json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority})
        });
        name.into_iter()
            .chain(self.columns.iter().map(|c| c.definition.clone()))
            .collect()
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let name = obj
            .pointer("/metadata/name")
            .cloned()
            .unwrap_or(Value::Null);
        std::iter::once(name)
            .chain(self.columns.iter().map(|c| {
                let found = c.path.find(obj);
                let Some(v) = found.first() else {
                    return Value::Null;
                };
                match (c.ty.as_str(), v) {
                    ("integer", Value::Number(n)) => n
                        .as_i64()
                        .map(Value::from)
                        .unwrap_or_else(|| json!(n.as_f64().map(|f| f as i64))),
                    // Dates print as ages, as upstream's table convertor does.
                    ("date", Value::String(t)) => chrono::DateTime::parse_from_rfc3339(t)
                        .map(|t| {
                            json!(crate::printers::human_duration(
                                chrono::Utc::now() - t.with_timezone(&chrono::Utc)
                            ))
                        })
                        .unwrap_or_else(|_| (*v).clone()),
                    ("string", Value::String(_)) | ("date", _) | ("boolean", _) | ("number", _) => {
                        (*v).clone()
                    }
                    ("string", other) => json!(other.to_string()),
                    (_, other) => (*other).clone(),
                }
            }))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList", "shortNames": ["wd"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {"size": {"type": "integer", "default": 1}, "replicas": {"type": "integer"}}},
                        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}}},
                    "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                    "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]}]},
        })
    }

    #[test]
    fn builds_the_table_entry_and_prints_columns() {
        let crd = crd();
        let info = resource_info(&crd, &crd["spec"]["versions"][0]).expect("info");
        assert_eq!(info.storage_prefix, "/registry/example.com/widgets");
        assert_eq!(info.short_names, ["wd"]);
        assert!(info.subresource("status").is_some());
        assert_eq!(
            info.subresource("scale").map(|s| s.kind.as_str()),
            Some("Scale")
        );
        let (obj, pruned) = info
            .strategy
            .normalize(&json!({"metadata": {"name": "w"}, "spec": {"x": 1}}))
            .expect("schema");
        assert_eq!(pruned, ["spec.x"]);
        assert_eq!(obj["spec"]["size"], 1);
        let printer = info.strategy.table().expect("printer");
        let names: Vec<String> = printer
            .columns()
            .iter()
            .map(|c| c["name"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(names, ["Name", "Size"]);
        assert_eq!(printer.cells(&obj), [json!("w"), json!(1)]);
        assert_eq!(info.strategy.scale_paths().spec_replicas, "/spec/replicas");
    }
}
