//! Watches over WebSocket, as web UIs use them: each event is one frame,
//! base64-encoded under the `base64.binary.k8s.io` subprotocol, binary under
//! `binary.k8s.io`, and plain text without a subprotocol. A bearer token may be
//! offered as the `base64url.bearer.authorization.k8s.io.<token>` subprotocol;
//! it is accepted here and left to the authentication filter to come.

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
    let protocols = offered(&headers);
    let chosen = protocols
        .iter()
        .find(|p| *p == "base64.binary.k8s.io" || *p == "binary.k8s.io")
        .cloned();
    let framing = match chosen.as_deref() {
        Some("base64.binary.k8s.io") => Framing::Base64,
        Some("binary.k8s.io") => Framing::Binary,
        _ => Framing::Plain,
    };
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
    let list = match parse() {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    let allow_bookmarks = query.get("allowWatchBookmarks").map(String::as_str) == Some("true");
    let send_initial_events = query.get("sendInitialEvents").map(|v| v == "true");
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
    let frames = watch_frames(
        resource,
        output,
        IncludeObject::parse(query.get("includeObject").map(String::as_str)),
        allow_bookmarks,
        events,
    );
    let ws = match chosen {
        Some(p) => ws.protocols([p]),
        None => ws,
    };
    ws.on_upgrade(move |socket| pump(socket, frames, framing))
}

async fn pump(
    socket: WebSocket,
    mut frames: futures::stream::BoxStream<'static, bytes::Bytes>,
    framing: Framing,
) {
    let (mut tx, mut rx) = socket.split();
    loop {
        tokio::select! {
            frame = frames.next() => {
                let Some(frame) = frame else { break };
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
