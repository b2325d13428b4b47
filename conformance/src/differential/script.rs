//! The request script: a YAML file of hand-written steps plus a compact table
//! of kinds, each expanded into create/get/list/update/delete steps.
//!
//! Steps run in file order: `setup` first, then the generated CRUD steps, then
//! `steps`. Strings of the form `{{name}}` in paths, headers and bodies are
//! replaced by values captured (per server) from earlier responses.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Error, Result};

/// The script file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptFile {
    /// The namespace the generated CRUD steps use.
    namespace: String,
    #[serde(default)]
    setup: Vec<Step>,
    #[serde(default)]
    kinds: Vec<Kind>,
    #[serde(default)]
    steps: Vec<Step>,
}

/// One request and what to keep of its response.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Step {
    pub id: String,
    #[serde(default = "get")]
    pub method: String,
    pub path: String,
    /// `Accept`; `application/json` when absent.
    #[serde(default)]
    pub accept: Option<String>,
    /// `Content-Type`; `application/json` when a body is given without one.
    #[serde(default)]
    pub content_type: Option<String>,
    /// A body written as YAML and sent as JSON.
    #[serde(default)]
    pub body: Option<Value>,
    /// A body sent byte for byte (malformed input, YAML).
    #[serde(default)]
    pub raw_body: Option<String>,
    /// Read a watch stream: this many events, for at most this long.
    #[serde(default)]
    pub watch: Option<WatchSpec>,
    /// Compare only these JSON pointers of the body (large documents).
    #[serde(default)]
    pub select: Vec<String>,
    /// Compare the status code and Content-Type only.
    #[serde(default)]
    pub ignore_body: bool,
    /// Values to remember from the (raw) response body: name -> JSON pointer.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
}

fn get() -> String {
    "GET".into()
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WatchSpec {
    pub events: usize,
    pub timeout_seconds: u64,
}

/// A kind the API server stores without controllers, and a minimal valid
/// object of it (without apiVersion, kind and metadata).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kind {
    /// `v1` or `group/version`.
    gv: String,
    kind: String,
    resource: String,
    #[serde(default)]
    namespaced: bool,
    /// The object's other top-level fields (spec, data, rules...).
    #[serde(default)]
    fields: serde_json::Map<String, Value>,
}

impl Kind {
    fn collection(&self, namespace: &str) -> String {
        let root = if self.gv.contains('/') {
            format!("/apis/{}", self.gv)
        } else {
            format!("/api/{}", self.gv)
        };
        if self.namespaced {
            format!("{root}/namespaces/{namespace}/{}", self.resource)
        } else {
            format!("{root}/{}", self.resource)
        }
    }

    fn object(&self, name: &str, labels: Value, resource_version: Option<String>) -> Value {
        let mut metadata = json!({"name": name, "labels": labels});
        if let Some(rv) = resource_version {
            metadata["resourceVersion"] = Value::String(rv);
        }
        let mut obj = json!({"apiVersion": self.gv, "kind": self.kind, "metadata": metadata});
        if let Value::Object(map) = &mut obj {
            map.extend(self.fields.clone());
        }
        obj
    }

    /// create, get, list (by label), update (with the created resourceVersion),
    /// delete, then get again (404, or the object with a deletionTimestamp).
    fn steps(&self, namespace: &str) -> Vec<Step> {
        let base = self.collection(namespace);
        // `resource.group` as kubectl spells it: core and events.k8s.io Events
        // share one store, so names and ids carry the group.
        let (qualified, name) = match self.gv.split_once('/') {
            Some((group, _)) => (
                format!("{}.{group}", self.resource),
                format!(
                    "diff-{}-{}",
                    self.kind.to_lowercase(),
                    group.split('.').next().unwrap_or(group)
                ),
            ),
            None => (
                self.resource.clone(),
                format!("diff-{}", self.kind.to_lowercase()),
            ),
        };
        let item = format!("{base}/{name}");
        let id = |verb: &str| format!("crud/{qualified}/{verb}");
        let rv_var = format!("crud.{qualified}.rv");
        let step = |verb: &str, method: &str, path: &str, body: Option<Value>| Step {
            id: id(verb),
            method: method.into(),
            path: path.into(),
            accept: None,
            content_type: None,
            body,
            raw_body: None,
            watch: None,
            select: Vec::new(),
            ignore_body: false,
            capture: BTreeMap::new(),
        };
        let mut create = step(
            "create",
            "POST",
            &base,
            Some(self.object(&name, json!({"diff": "crud"}), None)),
        );
        create
            .capture
            .insert(rv_var.clone(), "/metadata/resourceVersion".into());
        let update_body = self.object(
            &name,
            json!({"diff": "crud", "updated": "yes"}),
            Some(format!("{{{{{rv_var}}}}}")),
        );
        vec![
            create,
            step("get", "GET", &item, None),
            step(
                "list",
                "GET",
                &format!("{base}?labelSelector=diff%3Dcrud"),
                None,
            ),
            step("update", "PUT", &item, Some(update_body)),
            step("delete", "DELETE", &item, None),
            step("get-deleted", "GET", &item, None),
        ]
    }
}

/// The expanded script: every step in the order it runs.
#[derive(Debug)]
pub struct Script {
    pub steps: Vec<Step>,
    /// How many kinds the CRUD table covers.
    pub kinds: usize,
}

impl Script {
    pub fn load(path: &Path) -> Result<Script> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file: ScriptFile = serde_yaml::from_str(&text).map_err(|source| Error::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        let mut steps = file.setup;
        for kind in &file.kinds {
            steps.extend(kind.steps(&file.namespace));
        }
        steps.extend(file.steps);
        let mut seen = std::collections::HashSet::new();
        for step in &steps {
            if !seen.insert(step.id.as_str()) {
                return Err(Error::DuplicateStep(step.id.clone()));
            }
        }
        Ok(Script {
            steps,
            kinds: file.kinds.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_expands_into_crud_steps_with_a_captured_resource_version() {
        let kind = Kind {
            gv: "apps/v1".into(),
            kind: "Deployment".into(),
            resource: "deployments".into(),
            namespaced: true,
            fields: serde_json::Map::new(),
        };
        let steps = kind.steps("ns");
        let ids: Vec<_> = steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids[0], "crud/deployments.apps/create");
        assert_eq!(steps[0].path, "/apis/apps/v1/namespaces/ns/deployments");
        assert_eq!(steps[3].method, "PUT");
        assert_eq!(
            steps[3]
                .body
                .as_ref()
                .map(|b| b["metadata"]["resourceVersion"].clone()),
            Some(json!("{{crud.deployments.apps.rv}}"))
        );
    }
}
