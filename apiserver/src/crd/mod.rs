//! CustomResourceDefinitions: serving the resources CRDs define.
//!
//! A CRD is stored like any built-in object (with [`CrdStrategy`] for its
//! defaults, validation and cleanup finalizer). The [`controller`] watches
//! CRDs, accepts their names, sets `NamesAccepted` / `Established`, and adds
//! each served version to the [`ResourceTable`](crate::resources::ResourceTable)
//! as an ordinary resource whose strategy ([`resource::CustomResource`])
//! carries the version's schema, compiled once ([`schema::Schema`]). From
//! there the generic handlers and store serve custom resources as they serve
//! built-ins: discovery, CRUD, watch, patch (no strategic merge), apply,
//! dry run, `status` and `scale`.
//!
//! Request bodies are pruned and defaulted ([`prune`]) through the
//! strategy's `normalize` hook, validated ([`validate`]) by its `validate`
//! hook, and defaulted again on every read (`read_stored`).
//!
//! Each served version also publishes its schema in the OpenAPI documents
//! ([`crate::openapi::custom`], built with the table entry) and declares its
//! `selectableFields` for field selectors.
//!
//! Later slices: CEL `x-kubernetes-validations`, `allOf`/`anyOf`/`oneOf`/`not`,
//! conversion webhooks, and refusing creates while a CRD terminates.

pub mod controller;
mod definition;
pub mod jsonpath;
pub mod prune;
pub mod resource;
pub mod schema;
pub mod validate;

use serde_json::{Value, json};

use crate::resources::ResourceInfo;

pub use controller::start;
pub use definition::CrdStrategy;

/// The finalizer a CRD delete adds; released once its objects are gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Server-side apply of a custom resource: upstream converts the applied
/// configuration to the schema's type before merging it, and that
/// conversion refuses fields the schema does not declare. Returns the
/// message of that refusal, or `None` when every field is declared (or the
/// resource is not a custom resource).
pub fn undeclared_in_apply(info: &ResourceInfo, config: &Value) -> Option<String> {
    info.strategy.openapi()?;
    let (_, pruned) = info.strategy.normalize(config)?;
    if pruned.is_empty() {
        return None;
    }
    let errors: Vec<String> = pruned
        .iter()
        .map(|p| format!(".{p}: field not declared in schema"))
        .collect();
    let errors = match errors.as_slice() {
        [one] => one.clone(),
        many => format!("errors:\n  {}", many.join("\n  ")),
    };
    let ns = crate::registry::meta::namespace(config);
    let name = crate::registry::meta::name(config);
    Some(format!(
        "failed to create typed patch object ({ns}/{name}; {}, Kind={}): {errors}",
        info.api_version(),
        info.kind
    ))
}

/// Sets a `status.conditions` entry; its `lastTransitionTime` moves only
/// when its status does.
pub(crate) fn set_condition(obj: &mut Value, ty: &str, status: &str, reason: &str, message: &str) {
    if !obj.get("status").is_some_and(Value::is_object) {
        obj["status"] = json!({});
    }
    if !obj["status"]["conditions"].is_array() {
        obj["status"]["conditions"] = json!([]);
    }
    let Some(conditions) = obj["status"]["conditions"].as_array_mut() else {
        return;
    };
    let now = crate::registry::meta::now_rfc3339();
    match conditions.iter_mut().find(|c| c["type"] == ty) {
        Some(c) => {
            if c["status"] != status {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!(status);
            c["reason"] = json!(reason);
            c["message"] = json!(message);
        }
        None => conditions.push(json!({
            "type": ty,
            "status": status,
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        })),
    }
}
