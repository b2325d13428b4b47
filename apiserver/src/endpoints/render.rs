//! Encoding responses: plain objects and lists, `Table`s for kubectl's
//! server-side printing, and `PartialObjectMetadata(List)`, each in the
//! negotiated encoding (JSON, YAML or Kubernetes protobuf); protobuf watch
//! frames; and error `Status` bodies re-encoded for the client's `Accept`.

use std::borrow::Cow;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::negotiate::{self, Choice, Encoding, Form, Output};
use super::stored_list;
use crate::api_error::ApiError;
use crate::printers;
use crate::protobuf;
use crate::registry::list::{ListOutput, ListRequest};
use crate::registry::meta::decode_stored;
use crate::registry::watch::WatchEvent;
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

/// `value` in `encoding`, with its content type.
fn encode(
    value: &Value,
    encoding: Encoding,
) -> Result<(Vec<u8>, &'static str), protobuf::ProtoError> {
    let bytes = match encoding {
        Encoding::Json => serde_json::to_vec(value).unwrap_or_default(),
        Encoding::Yaml => serde_yaml::to_string(value)
            .map(String::into_bytes)
            .unwrap_or_default(),
        Encoding::Protobuf => protobuf::encode(value)?,
    };
    Ok((bytes, encoding.content_type()))
}

/// `value` in `encoding`; a value protobuf cannot carry (a kind without a
/// message, or stored data that does not fit its message) goes out as
/// `fallback` (JSON if that is protobuf too): clients decode by the response's
/// Content-Type, so this stays readable where an error would not.
fn encode_or(value: &Value, encoding: Encoding, fallback: Encoding) -> (Vec<u8>, &'static str) {
    match encode(value, encoding) {
        Ok(encoded) => encoded,
        Err(e) => {
            tracing::debug!(error = %e, kind = ?value.get("kind"), "no protobuf form; answering in another encoding");
            let fallback = match fallback {
                Encoding::Protobuf => Encoding::Json,
                other => other,
            };
            encode(value, fallback).unwrap_or_default()
        }
    }
}

fn respond(
    status: StatusCode,
    bytes: Vec<u8>,
    ctype: &'static str,
    warnings: &[String],
) -> Response {
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

/// Any value (a `Status`, a `Scale`, a discovery document) in the negotiated
/// encoding; its form is the caller's.
pub fn body(status: StatusCode, output: Output, value: &Value, warnings: &[String]) -> Response {
    let fallback = output
        .without_protobuf
        .map_or(Encoding::Json, |c| c.encoding);
    let (bytes, ctype) = encode_or(value, output.encoding, fallback);
    respond(status, bytes, ctype, warnings)
}

/// Whether the resource's objects have a protobuf form (built-in kinds do,
/// custom resources do not).
fn has_protobuf(info: &ResourceInfo) -> bool {
    protobuf::supports(&info.api_version(), &info.kind)
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
    let choice = output.for_resource(|| has_protobuf(info))?;
    let value = match choice.form {
        Form::Table => Cow::Owned(table(
            info,
            std::slice::from_ref(obj),
            include,
            json!({}),
            true,
        )),
        Form::PartialObjectMetadata => Cow::Owned(partial_metadata(obj)),
        Form::PartialObjectMetadataList => {
            return Err(ApiError::not_acceptable(negotiate::SERVED_TYPES));
        }
        Form::Object | Form::Discovery => Cow::Borrowed(obj),
    };
    let (bytes, ctype) = encode_or(&value, choice.encoding, Encoding::Json);
    Ok(respond(status, bytes, ctype, warnings))
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

/// Whether a list for `output` may be written from the stored items as
/// they are ([`stored_list`]): plain JSON of a resource served in its stored
/// form, with no selector.
pub fn lists_stored(info: &ResourceInfo, output: &Output, req: &ListRequest) -> bool {
    output.form == Form::Object
        && output.encoding == Encoding::Json
        && info.conversion.is_none()
        && info.strategy.serves_stored_as_is()
        && req.label_selector.is_none()
        && req.field_selector.is_none()
}

/// A list in the requested form.
pub fn list(
    info: &ResourceInfo,
    output: Output,
    include: IncludeObject,
    mut out: ListOutput,
) -> Result<Response, ApiError> {
    let choice = output.for_resource(|| has_protobuf(info))?;
    let meta = list_metadata(&out);
    if !out.stored.is_empty() {
        if let Some(bytes) =
            stored_list::write(&info.list_kind, &info.api_version(), &meta, &out.stored)
        {
            return Ok(respond(
                StatusCode::OK,
                bytes,
                Encoding::Json.content_type(),
                &[],
            ));
        }
        for kv in std::mem::take(&mut out.stored) {
            out.items.push(decode_stored(info, &kv)?);
        }
    }
    let value = match choice.form {
        Form::Table => table(info, &out.items, include, meta, true),
        Form::PartialObjectMetadataList | Form::PartialObjectMetadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": meta,
            "items": out.items.iter().map(partial_metadata).collect::<Vec<_>>(),
        }),
        Form::Object | Form::Discovery => {
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
    let (bytes, ctype) = encode_or(&value, choice.encoding, Encoding::Json);
    Ok(respond(StatusCode::OK, bytes, ctype, &[]))
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
    let own = info.strategy.table();
    let columns: Vec<Value> = if let (true, Some(p)) = (with_columns, own) {
        p.columns()
    } else if with_columns {
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
            let cells = match own {
                Some(p) => p.cells(o),
                None => printers::cells(&info.group, &info.plural, o, now),
            };
            let mut row = json!({ "cells": cells });
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

// --- watch ------------------------------------------------------------------

/// The form of a protobuf watch of `info`, or `None` when its events go out
/// as JSON lines. A Table is never protobuf; a custom resource's plain
/// objects fall back to what the header accepts without protobuf.
pub fn protobuf_watch_form(info: &ResourceInfo, output: Output) -> Option<Form> {
    match output.for_resource(|| has_protobuf(info)) {
        Ok(Choice {
            form,
            encoding: Encoding::Protobuf,
        }) => Some(form),
        _ => None,
    }
}

/// Content-Type of a watch response (upstream: JSON streams are plain
/// `application/json`; other encodings add `;stream=watch`).
pub fn watch_content_type(info: &ResourceInfo, output: Output) -> &'static str {
    if protobuf_watch_form(info, output).is_some() {
        protobuf::WATCH_CONTENT_TYPE
    } else {
        "application/json"
    }
}

/// One watch event as a length-delimited protobuf frame, its object in
/// `form`. `None` if the object cannot be encoded: upstream ends the watch
/// there, and so does the caller.
pub fn protobuf_watch_frame(info: &ResourceInfo, form: Form, ev: &WatchEvent) -> Option<Bytes> {
    let metadata_only = matches!(
        form,
        Form::PartialObjectMetadata | Form::PartialObjectMetadataList
    );
    let object = match ev {
        WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => {
            if metadata_only {
                Cow::Owned(partial_metadata(o))
            } else {
                Cow::Borrowed(o)
            }
        }
        WatchEvent::Bookmark(rv, initial_end) => {
            let mut meta = json!({"resourceVersion": rv.to_string()});
            if *initial_end {
                meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            }
            Cow::Owned(if metadata_only {
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta})
            } else {
                json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": meta})
            })
        }
        WatchEvent::Error(status) => Cow::Borrowed(status),
    };
    match protobuf::watch_frame(ev.type_name(), &object) {
        Ok(frame) => Some(Bytes::from(frame)),
        Err(e) => {
            tracing::warn!(error = %e, resource = %info.qualified(), "unable to encode watch event as protobuf; ending the watch");
            None
        }
    }
}

// --- errors -----------------------------------------------------------------

/// The `Status` of an error response, left on it by `ApiError`'s
/// `IntoResponse` so [`negotiate_errors`] can encode it for the client.
#[derive(Clone, Debug)]
pub struct ErrorStatus(pub Value);

/// Middleware: error responses answer in the encoding `Accept` selects, as
/// upstream's `ErrorNegotiated` does (no transformations considered; nothing
/// acceptable means indented JSON).
pub async fn negotiate_errors(req: Request, next: Next) -> Response {
    let accept = req.headers().get(header::ACCEPT).cloned();
    let head = req.method() == Method::HEAD;
    let resp = next.run(req).await;
    if head {
        return resp;
    }
    let accept = accept.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("");
    error_response(accept, resp)
}

/// Re-encodes an error response carrying an [`ErrorStatus`] for `accept`.
pub fn error_response(accept: &str, mut resp: Response) -> Response {
    let Some(ErrorStatus(status)) = resp.extensions_mut().remove::<ErrorStatus>() else {
        return resp;
    };
    let (bytes, ctype) = match negotiate::error_encoding(accept) {
        // Already written so.
        Some(Encoding::Json) => return resp,
        Some(encoding) => match encode(&status, encoding) {
            Ok(encoded) => encoded,
            Err(_) => return resp,
        },
        None => (
            serde_json::to_vec_pretty(&status).unwrap_or_default(),
            "application/json",
        ),
    };
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    resp.headers_mut().remove(header::CONTENT_LENGTH);
    *resp.body_mut() = Body::from(bytes);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::ResourceTable;
    use axum::http::HeaderMap;
    use futures::StreamExt;
    use std::sync::Arc;

    const PB: &str = "application/vnd.kubernetes.protobuf";

    fn output(accept: &str) -> Output {
        let mut h = HeaderMap::new();
        h.insert("accept", HeaderValue::from_str(accept).unwrap());
        negotiate::output(&h).unwrap()
    }

    fn pods() -> Arc<ResourceInfo> {
        ResourceTable::with_builtins()
            .get("", "v1", "pods")
            .unwrap()
    }

    fn pod(name: &str) -> Value {
        json!({
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "namespace": "default",
                "uid": "6f1c1a0e-0000-4000-8000-000000000001",
                "resourceVersion": "12",
                "creationTimestamp": "2026-01-02T03:04:05Z",
                "labels": {"app": "web"},
            },
            "spec": {
                "containers": [{
                    "name": "c",
                    "image": "nginx:1.27",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}},
                }],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
            },
            "status": {"phase": "Pending"},
        })
    }

    async fn bytes_of(resp: Response) -> Vec<u8> {
        axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec()
    }

    fn content_type(resp: &Response) -> String {
        resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string()
    }

    /// Renders with `accept` as protobuf, decodes, and compares with the JSON
    /// rendering of the same call.
    async fn same_as_json(render: impl Fn(Output) -> Response) -> Value {
        let pb = render(output(&format!("{PB}, */*")));
        assert_eq!(content_type(&pb), PB);
        let body = bytes_of(pb).await;
        assert!(body.starts_with(protobuf::MAGIC));
        let decoded = protobuf::decode(&body).unwrap();
        let json: Value = serde_json::from_slice(&bytes_of(render(Output::Json)).await).unwrap();
        assert_eq!(decoded, json);
        decoded
    }

    #[tokio::test]
    async fn objects_and_lists_roundtrip_through_protobuf() {
        let info = pods();
        let p = pod("p1");
        let got = same_as_json(|out| {
            object(&info, out, IncludeObject::Metadata, StatusCode::OK, &p, &[]).unwrap()
        })
        .await;
        assert_eq!(
            got["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            "500m"
        );

        let list_of = |out| {
            let items = vec![pod("p1"), pod("p2")];
            let listed = ListOutput {
                items,
                stored: Vec::new(),
                revision: 40,
                continue_token: Some("c0".into()),
                remaining: Some(3),
            };
            list(&info, out, IncludeObject::Metadata, listed).unwrap()
        };
        let got = same_as_json(list_of).await;
        assert_eq!(got["kind"], "PodList");
        assert_eq!(got["metadata"]["resourceVersion"], "40");
        assert_eq!(got["items"][1]["metadata"]["name"], "p2");

        // Metadata-only forms are protobuf too (meta.k8s.io/v1 messages).
        let accept = format!("{PB};as=PartialObjectMetadata;g=meta.k8s.io;v=v1");
        let resp = object(
            &info,
            output(&accept),
            IncludeObject::Metadata,
            StatusCode::OK,
            &p,
            &[],
        )
        .unwrap();
        let got = protobuf::decode(&bytes_of(resp).await).unwrap();
        assert_eq!(got["kind"], "PartialObjectMetadata");
        assert_eq!(got["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(got["metadata"], p["metadata"]);
        let accept = format!("{PB};as=PartialObjectMetadataList;g=meta.k8s.io;v=v1");
        let listed = ListOutput {
            items: vec![p.clone()],
            stored: Vec::new(),
            revision: 7,
            continue_token: None,
            remaining: None,
        };
        let resp = list(&info, output(&accept), IncludeObject::Metadata, listed).unwrap();
        let got = protobuf::decode(&bytes_of(resp).await).unwrap();
        assert_eq!(got["kind"], "PartialObjectMetadataList");
        assert_eq!(got["items"][0]["metadata"]["uid"], p["metadata"]["uid"]);

        // JSON and YAML are untouched.
        let resp = object(
            &info,
            Output::Json,
            IncludeObject::Metadata,
            StatusCode::OK,
            &p,
            &[],
        )
        .unwrap();
        assert_eq!(content_type(&resp), "application/json");
        assert_eq!(bytes_of(resp).await, serde_json::to_vec(&p).unwrap());
    }

    #[tokio::test]
    async fn custom_resources_fall_back_or_refuse() {
        let mut widgets = (*pods()).clone();
        widgets.group = "example.com".into();
        widgets.kind = "Widget".into();
        widgets.list_kind = "WidgetList".into();
        widgets.plural = "widgets".into();
        let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}});
        let resp = object(
            &widgets,
            output(&format!("{PB}, application/json")),
            IncludeObject::Metadata,
            StatusCode::OK,
            &w,
            &[],
        )
        .unwrap();
        assert_eq!(content_type(&resp), "application/json");
        assert_eq!(bytes_of(resp).await, serde_json::to_vec(&w).unwrap());
        let err = object(
            &widgets,
            output(PB),
            IncludeObject::Metadata,
            StatusCode::OK,
            &w,
            &[],
        )
        .unwrap_err();
        assert_eq!(err.code, 406);
        // Metadata has a protobuf form whatever the resource.
        let accept = format!("{PB};as=PartialObjectMetadata;g=meta.k8s.io;v=v1");
        let resp = object(
            &widgets,
            output(&accept),
            IncludeObject::Metadata,
            StatusCode::OK,
            &w,
            &[],
        )
        .unwrap();
        assert_eq!(content_type(&resp), PB);
    }

    #[tokio::test]
    async fn errors_and_statuses_follow_accept() {
        let info = pods();
        let status = ApiError::not_found(&info, "nope").status();
        let resp = error_response(
            &format!("{PB}, */*"),
            ApiError::not_found(&info, "nope").into_response(),
        );
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(content_type(&resp), PB);
        assert_eq!(protobuf::decode(&bytes_of(resp).await).unwrap(), status);

        let resp = error_response(
            "application/json",
            ApiError::not_found(&info, "nope").into_response(),
        );
        assert_eq!(content_type(&resp), "application/json");
        assert_eq!(bytes_of(resp).await, serde_json::to_vec(&status).unwrap());

        let resp = error_response(
            "application/yaml",
            ApiError::not_found(&info, "nope").into_response(),
        );
        assert_eq!(content_type(&resp), "application/yaml");
        let yaml = String::from_utf8(bytes_of(resp).await).unwrap();
        assert!(yaml.contains("reason: NotFound"), "{yaml}");

        // Nothing acceptable for an error: indented JSON, as upstream.
        let table_only = "application/json;as=Table;v=v1;g=meta.k8s.io";
        let resp = error_response(
            table_only,
            ApiError::not_found(&info, "nope").into_response(),
        );
        assert_eq!(content_type(&resp), "application/json");
        assert_eq!(
            bytes_of(resp).await,
            serde_json::to_vec_pretty(&status).unwrap()
        );

        // A failed negotiation is never negotiated again.
        let refused = ApiError::not_acceptable(negotiate::SERVED_TYPES);
        let resp = error_response(PB, refused.clone().into_response());
        assert_eq!(resp.status(), StatusCode::NOT_ACCEPTABLE);
        assert_eq!(content_type(&resp), "application/json");
        assert_eq!(
            bytes_of(resp).await,
            serde_json::to_vec_pretty(&refused.status()).unwrap()
        );

        // The Status of a delete.
        let deleted = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": {"name": "p1", "kind": "pods", "uid": "u"}});
        let resp = body(StatusCode::OK, output(PB), &deleted, &[]);
        assert_eq!(content_type(&resp), PB);
        assert_eq!(protobuf::decode(&bytes_of(resp).await).unwrap(), deleted);
    }

    #[test]
    fn tables_are_never_protobuf() {
        // metav1.Table has no protobuf message (`+protobuf=false`), which is
        // why upstream only offers it in JSON and YAML.
        assert!(!protobuf::supports("meta.k8s.io/v1", "Table"));
        assert!(protobuf::supports(
            "meta.k8s.io/v1",
            "PartialObjectMetadataList"
        ));
        let accept = format!(
            "{PB};as=Table;g=meta.k8s.io;v=v1, application/json;as=Table;g=meta.k8s.io;v=v1"
        );
        assert_eq!(output(&accept), Output::Table);
        let accept = "application/yaml;as=Table;g=meta.k8s.io;v=v1";
        let info = pods();
        let resp = object(
            &info,
            output(accept),
            IncludeObject::None,
            StatusCode::OK,
            &pod("p1"),
            &[],
        )
        .unwrap();
        assert_eq!(content_type(&resp), "application/yaml");
    }

    /// Splits a protobuf watch stream into its length-delimited messages.
    fn split_frames(mut stream: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        while stream.len() >= 4 {
            let len = u32::from_be_bytes(stream[..4].try_into().unwrap()) as usize;
            out.push(&stream[4..4 + len]);
            stream = &stream[4 + len..];
        }
        assert!(stream.is_empty(), "trailing bytes");
        out
    }

    #[tokio::test]
    async fn watch_streams_length_delimited_protobuf_events() {
        let info = pods();
        let out = output(&format!("{PB}, application/json"));
        assert_eq!(
            watch_content_type(&info, out),
            "application/vnd.kubernetes.protobuf;stream=watch"
        );
        assert_eq!(watch_content_type(&info, Output::Json), "application/json");
        let error = ApiError::gone("too old resource version: 1 (5)").status();
        let events = futures::stream::iter(vec![
            WatchEvent::Added(pod("p1")),
            WatchEvent::Deleted(pod("p1")),
            WatchEvent::Bookmark(15, true),
            WatchEvent::Error(error.clone()),
        ])
        .boxed();
        let frames: Vec<Bytes> = super::super::handlers::watch_frames(
            info.clone(),
            out,
            IncludeObject::Metadata,
            true,
            events,
        )
        .take(4)
        .collect()
        .await;
        let stream: Vec<u8> = frames.concat();
        let messages = split_frames(&stream);
        assert_eq!(messages.len(), 4);
        let decoded: Vec<(String, Value)> = messages
            .iter()
            .map(|m| protobuf::decode_watch_event(m).unwrap())
            .collect();
        assert_eq!(decoded[0], ("ADDED".to_string(), pod("p1")));
        assert_eq!(decoded[1].0, "DELETED");
        assert_eq!(decoded[2].0, "BOOKMARK");
        assert_eq!(decoded[2].1["kind"], "Pod");
        assert_eq!(decoded[2].1["metadata"]["resourceVersion"], "15");
        assert_eq!(
            decoded[2].1["metadata"]["annotations"]["k8s.io/initial-events-end"],
            "true"
        );
        assert_eq!(decoded[3], ("ERROR".to_string(), error));
        // The embedded object is a whole protobuf body (magic and envelope).
        let raw = &messages[0];
        let magic_at = raw.windows(4).position(|w| w == protobuf::MAGIC);
        assert!(magic_at.is_some());

        // Metadata-only watches (the metadata informers) are protobuf too.
        let out = output(&format!("{PB};as=PartialObjectMetadata;g=meta.k8s.io;v=v1"));
        let events = futures::stream::iter(vec![WatchEvent::Modified(pod("p2"))]).boxed();
        let frames: Vec<Bytes> =
            super::super::handlers::watch_frames(info, out, IncludeObject::Metadata, false, events)
                .take(1)
                .collect()
                .await;
        let stream = frames.concat();
        let (kind, obj) = protobuf::decode_watch_event(split_frames(&stream)[0]).unwrap();
        assert_eq!(kind, "MODIFIED");
        assert_eq!(obj["kind"], "PartialObjectMetadata");
        assert_eq!(obj["metadata"]["name"], "p2");
    }
}

/// The real handlers and store behind the router, as clients reach them.
#[cfg(test)]
mod served {
    use super::*;
    use crate::endpoints::{App, router};
    use crate::registry::Store;
    use crate::resources::ResourceTable;
    use crate::storage::embedded::EmbeddedStore;
    use http_body_util::BodyExt;
    use std::sync::Arc;
    use std::time::Duration;
    use tower::ServiceExt;

    const PB: &str = "application/vnd.kubernetes.protobuf";

    struct Served {
        app: Arc<App>,
        _dir: tempfile::TempDir,
    }

    impl Served {
        async fn start() -> Served {
            let dir = tempfile::tempdir().unwrap();
            let storage = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
            let table = ResourceTable::with_builtins();
            let store = Store::new(storage, table.clone());
            crate::server::bootstrap(&store, &table, "127.0.0.1:6443".parse().unwrap())
                .await
                .unwrap();
            Served {
                app: Arc::new(App::for_tests(store, table)),
                _dir: dir,
            }
        }

        async fn send(
            &self,
            method: &str,
            path: &str,
            accept: &str,
            body: Option<&Value>,
        ) -> Response {
            let mut req = axum::http::Request::builder().method(method).uri(path);
            if !accept.is_empty() {
                req = req.header("accept", accept);
            }
            let body = match body {
                Some(v) => {
                    req = req.header("content-type", "application/json");
                    Body::from(serde_json::to_vec(v).unwrap())
                }
                None => Body::empty(),
            };
            router(self.app.clone())
                .layer(axum::middleware::from_fn(negotiate_errors))
                .oneshot(req.body(body).unwrap())
                .await
                .unwrap()
        }

        async fn json(
            &self,
            method: &str,
            path: &str,
            body: Option<&Value>,
        ) -> (StatusCode, Value) {
            let resp = self.send(method, path, "application/json", body).await;
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
                .await
                .unwrap();
            (status, serde_json::from_slice(&bytes).unwrap())
        }

        /// GETs `path` as protobuf, checks the Content-Type, and decodes.
        async fn protobuf(&self, method: &str, path: &str, accept: &str) -> (StatusCode, Value) {
            let resp = self.send(method, path, accept, None).await;
            let status = resp.status();
            assert_eq!(resp.headers()[header::CONTENT_TYPE], PB, "{method} {path}");
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
                .await
                .unwrap();
            (status, protobuf::decode(&bytes).unwrap())
        }
    }

    /// `value` with integral floats written as integers. The JSON form
    /// writes a CRD schema's `minimum: 1` as `1.0` (Go writes `1`); the
    /// protobuf double is the same number, which is what is compared here.
    fn whole_numbers(value: Value) -> Value {
        match value {
            Value::Number(n) if n.is_f64() => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => json!(f as i64),
                _ => Value::Number(n),
            },
            Value::Array(items) => Value::Array(items.into_iter().map(whole_numbers).collect()),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (k, whole_numbers(v)))
                    .collect(),
            ),
            other => other,
        }
    }

    #[tokio::test]
    async fn builtin_kinds_read_back_in_protobuf_as_in_json() {
        let s = Served::start().await;
        let objects = [
            (
                "/api/v1/namespaces/default/configmaps",
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "labels": {"a": "b"}}, "data": {"k": "v"}, "binaryData": {"b": "AAE="}}),
            ),
            (
                "/api/v1/namespaces/default/pods",
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": "100m"}}}]}}),
            ),
            (
                "/apis/apps/v1/namespaces/default/deployments",
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}}, "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}}, "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
            ),
            (
                "/api/v1/namespaces",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns1"}}),
            ),
            (
                "/api/v1/namespaces/default/secrets",
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"}, "type": "Opaque", "stringData": {"password": "hunter2"}}),
            ),
            (
                "/api/v1/namespaces/default/services",
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}, "spec": {"selector": {"app": "d"}, "ports": [{"port": 80, "targetPort": "http"}]}}),
            ),
            (
                "/api/v1/nodes",
                json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}}),
            ),
            (
                "/apis/rbac.authorization.k8s.io/v1/clusterroles",
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "reader"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}),
            ),
            (
                "/apis/batch/v1/namespaces/default/jobs",
                json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}}}),
            ),
            (
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "gadgets.pb.example.com"}, "spec": {"group": "pb.example.com", "scope": "Namespaced", "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"}, "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"size": {"type": "integer", "minimum": 1}}}}}}}]}}),
            ),
        ];
        for (collection, obj) in &objects {
            let (code, created) = s.json("POST", collection, Some(obj)).await;
            assert_eq!(code, StatusCode::CREATED, "{created}");
            let path = format!(
                "{collection}/{}",
                created["metadata"]["name"].as_str().unwrap()
            );
            let (_, json) = s.json("GET", &path, None).await;
            let (code, decoded) = s.protobuf("GET", &path, PB).await;
            assert_eq!(code, StatusCode::OK);
            assert_eq!(
                whole_numbers(decoded.clone()),
                whole_numbers(json.clone()),
                "{path}"
            );
            // client-go's own Accept header.
            let (_, decoded) = s.protobuf("GET", &path, &format!("{PB}, */*")).await;
            assert_eq!(
                whole_numbers(decoded.clone()),
                whole_numbers(json.clone()),
                "{path}"
            );
            let (_, json_list) = s.json("GET", collection, None).await;
            let (_, decoded_list) = s.protobuf("GET", collection, PB).await;
            assert_eq!(
                whole_numbers(decoded_list),
                whole_numbers(json_list),
                "{collection}"
            );
        }

        // Errors are Status messages.
        let (code, status) = s
            .protobuf("GET", "/api/v1/namespaces/default/configmaps/missing", PB)
            .await;
        assert_eq!(code, StatusCode::NOT_FOUND);
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(status["code"], 404);
        // And so is what a delete answers with.
        let (code, status) = s
            .protobuf("DELETE", "/api/v1/namespaces/default/configmaps/cm", PB)
            .await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["status"], "Success");
        assert_eq!(status["details"]["name"], "cm");
    }

    #[tokio::test]
    async fn custom_resources_never_answer_in_protobuf() {
        let s = Served::start().await;
        let widgets = ResourceInfo {
            group: "example.com".into(),
            version: "v1".into(),
            kind: "Widget".into(),
            list_kind: "WidgetList".into(),
            plural: "widgets".into(),
            singular: "widget".into(),
            short_names: vec![],
            categories: vec![],
            namespaced: true,
            verbs: crate::resources::STANDARD_VERBS.to_vec(),
            subresources: vec![],
            create: Default::default(),
            initial_status: None,
            storage_prefix: "/registry/example.com/widgets".into(),
            codec: None,
            conversion: None,
            strategy: Arc::new(crate::registry::strategy::Generic),
        };
        s.app.table.add(widgets);
        let path = "/apis/example.com/v1/namespaces/default/widgets";
        let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}});
        let (code, _) = s.json("POST", path, Some(&w)).await;
        assert_eq!(code, StatusCode::CREATED);
        let resp = s
            .send(
                "GET",
                &format!("{path}/w"),
                &format!("{PB}, application/json"),
                None,
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        let resp = s.send("GET", &format!("{path}/w"), PB, None).await;
        assert_eq!(resp.status(), StatusCode::NOT_ACCEPTABLE);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        let accept = format!("{PB};as=PartialObjectMetadataList;g=meta.k8s.io;v=v1");
        let (code, pom) = s.protobuf("GET", path, &accept).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(pom["kind"], "PartialObjectMetadataList");
        assert_eq!(pom["items"][0]["metadata"]["name"], "w");
    }

    /// Reads a streamed body until `want` length-delimited messages arrived.
    async fn read_frames(body: Body, want: usize) -> Vec<(String, Value)> {
        let mut body = body;
        let mut buf: Vec<u8> = Vec::new();
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while events.len() < want {
            let frame = tokio::time::timeout_at(deadline, body.frame())
                .await
                .expect("watch events in time")
                .expect("stream open")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
            }
            while buf.len() >= 4 {
                let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
                if buf.len() < 4 + len {
                    break;
                }
                events.push(protobuf::decode_watch_event(&buf[4..4 + len]).unwrap());
                buf.drain(..4 + len);
            }
        }
        events
    }

    #[tokio::test]
    async fn watches_stream_protobuf_events() {
        let s = Served::start().await;
        let path = "/api/v1/namespaces/default/configmaps";
        let (_, list) = s.json("GET", path, None).await;
        let rv = list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        let resp = s
            .send(
                "GET",
                &format!("{path}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true"),
                &format!("{PB}, */*"),
                None,
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w1"}, "data": {"a": "1"}});
        let (_, created) = s.json("POST", path, Some(&cm)).await;
        let (_, _) = s.json("DELETE", &format!("{path}/w1"), None).await;
        let events = read_frames(resp.into_body(), 2).await;
        assert_eq!(events[0].0, "ADDED");
        assert_eq!(events[0].1, created);
        assert_eq!(events[1].0, "DELETED");
        assert_eq!(events[1].1["metadata"]["name"], "w1");
    }
}
