//! Watches over WebSocket, as web UIs use them: each event is one frame,
//! base64-encoded under the `base64.binary.k8s.io` subprotocol, binary under
//! `binary.k8s.io`, and plain text without a subprotocol. A bearer token may be
//! offered as the `base64url.bearer.authorization.k8s.io.<token>` subprotocol;
//! it is accepted here and left to the authentication filter to come.
//! Protobuf watches send each `WatchEvent` message as one binary frame,
//! without the HTTP stream's length prefix (upstream's websocket framer
//! writes messages whole, as binary unless the encoding is text).

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures::{SinkExt, StreamExt};

use super::App;
use super::handlers::{Query, watch_frames};
use super::negotiate;
use super::render::IncludeObject;
use super::request_info::RequestInfo;
use crate::api_error::ApiError;
use crate::registry::list::ListRequest;
use crate::registry::watch::WatchRequest;
use crate::resources::ResourceInfo;
use crate::selectors::{FieldSelector, LabelSelector};

pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

#[derive(Clone, Copy)]
enum Framing {
    Plain,
    Binary,
    Base64,
}

fn offered(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

pub async fn watch(
    app: Arc<App>,
    info: RequestInfo,
    resource: Arc<ResourceInfo>,
    query: Query,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let (chosen, framing) = choose_framing(&headers);
    let parse = || -> Result<ListRequest, ApiError> {
        let q = |k: &str| query.get(k).map(String::as_str).filter(|s| !s.is_empty());
        Ok(ListRequest {
            label_selector: q("labelSelector")
                .map(LabelSelector::parse)
                .transpose()
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
            field_selector: q("fieldSelector")
                .map(FieldSelector::parse)
                .transpose()
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
            resource_version: q("resourceVersion").map(str::to_string),
            resource_version_match: q("resourceVersionMatch").map(str::to_string),
            ..Default::default()
        })
    };
    let mut list = match parse() {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    if let Some(name) = info.name.as_deref() {
        match super::handlers::named_watch_selector(list.field_selector.take(), name) {
            Ok(sel) => list.field_selector = Some(sel),
            Err(e) => return e.into_response(),
        }
    }
    let timeout = super::handlers::watch_timeout(query.get("timeoutSeconds").map(String::as_str));
    let allow_bookmarks = super::query::flag(query.get("allowWatchBookmarks").map(String::as_str));
    let send_initial_events =
        super::query::optional_flag(query.get("sendInitialEvents").map(String::as_str));
    let output = negotiate::output(&headers).unwrap_or(negotiate::Output::Json);
    let events = match app
        .store
        .watch(
            &resource,
            info.namespace.as_deref(),
            WatchRequest {
                list,
                send_initial_events,
                allow_bookmarks,
            },
        )
        .await
    {
        Ok(ev) => ev,
        Err(e) => return e.into_response(),
    };
    let protobuf = super::render::protobuf_watch_form(&resource, output).is_some();
    // The watch ends at its timeout, as an HTTP watch does.
    let frames = watch_frames(
        resource,
        output,
        IncludeObject::parse(query.get("includeObject").map(String::as_str)),
        allow_bookmarks,
        events,
    )
    .take_until(tokio::time::sleep(timeout))
    .boxed();
    let ws = match chosen {
        Some(p) => ws.protocols([p]),
        None => ws,
    };
    let framing = match framing {
        Framing::Plain if protobuf => Framing::Binary,
        other => other,
    };
    ws.on_upgrade(move |socket| pump(socket, frames, framing, protobuf))
}

/// The subprotocol to answer with, and how frames are sent under it.
fn choose_framing(headers: &HeaderMap) -> (Option<String>, Framing) {
    let chosen = offered(headers)
        .into_iter()
        .find(|p| p == "base64.binary.k8s.io" || p == "binary.k8s.io");
    let framing = match chosen.as_deref() {
        Some("base64.binary.k8s.io") => Framing::Base64,
        Some("binary.k8s.io") => Framing::Binary,
        _ => Framing::Plain,
    };
    (chosen, framing)
}

/// A byte stream (a container's log) over WebSocket, one frame per chunk:
/// binary, or base64 text under `base64.binary.k8s.io` (upstream's reader
/// protocols, where no subprotocol means binary).
pub fn stream_bytes(
    ws: WebSocketUpgrade,
    headers: &HeaderMap,
    chunks: futures::stream::BoxStream<'static, bytes::Bytes>,
) -> Response {
    let (chosen, framing) = choose_framing(headers);
    let ws = match chosen {
        Some(p) => ws.protocols([p]),
        None => ws,
    };
    let framing = match framing {
        Framing::Plain => Framing::Binary,
        other => other,
    };
    ws.on_upgrade(move |socket| pump(socket, chunks, framing, false))
}

async fn pump(
    socket: WebSocket,
    mut frames: futures::stream::BoxStream<'static, bytes::Bytes>,
    framing: Framing,
    protobuf: bool,
) {
    let (mut tx, mut rx) = socket.split();
    loop {
        tokio::select! {
            frame = frames.next() => {
                let Some(mut frame) = frame else { break };
                if protobuf {
                    frame = unframe(frame);
                }
                let msg = match framing {
                    Framing::Base64 => Message::Text(base64::engine::general_purpose::STANDARD.encode(&frame).into()),
                    Framing::Binary => Message::Binary(frame),
                    Framing::Plain => Message::Text(String::from_utf8_lossy(&frame).into_owned().into()),
                };
                if tx.send(msg).await.is_err() {
                    break;
                }
            }
            incoming = rx.next() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                _ => {}
            }
        }
    }
    let _ = tx.close().await;
}

/// A length-delimited protobuf watch frame without its 4-byte length prefix
/// (a websocket message delimits itself).
fn unframe(frame: bytes::Bytes) -> bytes::Bytes {
    if frame.len() >= 4 {
        frame.slice(4..)
    } else {
        frame
    }
}
