//! Encoding responses: plain objects and lists in JSON or YAML, `Table`s for
//! kubectl's server-side printing, and `PartialObjectMetadata(List)`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::negotiate::Output;
use crate::api_error::ApiError;
use crate::printers;
use crate::registry::list::ListOutput;
use crate::resources::ResourceInfo;

/// `includeObject` of a Table request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    #[default]
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(v: Option<&str>) -> IncludeObject {
        match v {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

pub fn body(status: StatusCode, output: Output, value: &Value, warnings: &[String]) -> Response {
    let (bytes, ctype) = match output {
        Output::Yaml => (
            serde_yaml::to_string(value)
                .map(String::into_bytes)
                .unwrap_or_default(),
            "application/yaml",
        ),
        _ => (
            serde_json::to_vec(value).unwrap_or_default(),
            "application/json",
        ),
    };
    let mut resp = (status, bytes).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    for w in warnings {
        let text = format!("299 - {}", serde_json::to_string(w).unwrap_or_default());
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append("warning", v);
        }
    }
    resp
}

fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// One object in the requested form.
pub fn object(
    info: &ResourceInfo,
    output: Output,
    include: IncludeObject,
    status: StatusCode,
    obj: &Value,
    warnings: &[String],
) -> Result<Response, ApiError> {
    let value = match output {
        Output::Table => table(info, std::slice::from_ref(obj), include, json!({}), true),
        Output::PartialObjectMetadata => partial_metadata(obj),
        Output::PartialObjectMetadataList => {
            return Err(ApiError::not_acceptable(super::negotiate::SERVED_TYPES));
        }
        _ => obj.clone(),
    };
    Ok(body(status, output, &value, warnings))
}

pub fn list_metadata(out: &ListOutput) -> Value {
    let mut meta = json!({ "resourceVersion": out.revision.to_string() });
    if let Some(c) = &out.continue_token {
        meta["continue"] = json!(c);
    }
    if let Some(n) = out.remaining {
        meta["remainingItemCount"] = json!(n);
    }
    meta
}

/// A list in the requested form.
pub fn list(
    info: &ResourceInfo,
    output: Output,
    include: IncludeObject,
    out: ListOutput,
) -> Result<Response, ApiError> {
    let meta = list_metadata(&out);
    let value = match output {
        Output::Table => table(info, &out.items, include, meta, true),
        Output::PartialObjectMetadataList | Output::PartialObjectMetadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": meta,
            "items": out.items.iter().map(partial_metadata).collect::<Vec<_>>(),
        }),
        _ => {
            let items: Vec<Value> = out
                .items
                .into_iter()
                .map(|mut o| {
                    // Items of a typed list carry no type meta, as upstream's.
                    if let Some(m) = o.as_object_mut() {
                        m.remove("apiVersion");
                        m.remove("kind");
                    }
                    o
                })
                .collect();
            json!({ "kind": info.list_kind, "apiVersion": info.api_version(), "metadata": meta, "items": items })
        }
    };
    Ok(body(StatusCode::OK, output, &value, &[]))
}

/// A `meta.k8s.io/v1` Table of `objects`.
pub fn table(
    info: &ResourceInfo,
    objects: &[Value],
    include: IncludeObject,
    metadata: Value,
    with_columns: bool,
) -> Value {
    let now = chrono::Utc::now();
    let columns: Vec<Value> = if with_columns {
        printers::columns(&info.group, &info.plural)
            .iter()
            .map(|c| {
                json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority})
            })
            .collect()
    } else {
        Vec::new()
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({ "cells": printers::cells(&info.group, &info.plural, o, now) });
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => row["object"] = partial_metadata(o),
                IncludeObject::Object => row["object"] = o.clone(),
            }
            row
        })
        .collect();
    json!({ "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": columns, "rows": rows })
}
