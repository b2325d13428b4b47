//! Sends one request to a backend (a kubelet, a pod, a node) and relays the
//! answer. A protocol upgrade (SPDY or WebSocket, for exec, attach and
//! port-forward) is followed by splicing the client's connection to the
//! backend's, as upstream's upgrade-aware proxy does: the proxy reads
//! neither protocol, so both work end to end.

use std::time::Duration;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Headers that describe one hop rather than the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("dial tcp {0}: {1}")]
    Dial(String, std::io::Error),
    #[error("dial tcp {0}: i/o timeout")]
    DialTimeout(String),
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("building the proxied request: {0}")]
    Request(#[from] axum::http::Error),
}

/// Where a request goes: `host:port` and the path with its query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub authority: String,
    pub path_and_query: String,
}

impl Target {
    pub fn new(authority: String, path: &str, query: Option<&str>) -> Self {
        let path_and_query = match query {
            Some(q) if !q.is_empty() => format!("{path}?{q}"),
            _ => path.to_string(),
        };
        Target {
            authority,
            path_and_query,
        }
    }
}

/// A plain request: the backend's response, its body still streaming.
pub async fn request(
    target: &Target,
    method: Method,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response<Incoming>, ForwardError> {
    let mut sender = connect(&target.authority).await?;
    let req = build(target, method, end_to_end(headers), body)?;
    Ok(sender.send_request(req).await?)
}

/// The client's request, forwarded. If the client asked for an upgrade and
/// the backend switches protocols, the 101 goes back to the client and the
/// two connections are spliced until either side closes.
pub async fn upgrade_aware(
    target: &Target,
    mut parts: Parts,
    body: Body,
) -> Result<Response<Body>, ForwardError> {
    let upgrade = parts.headers.get(header::UPGRADE).cloned();
    let mut headers = end_to_end(&parts.headers);
    if let Some(protocol) = &upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(header::UPGRADE, protocol.clone());
    }
    let mut sender = connect(&target.authority).await?;
    let req = build(target, parts.method.clone(), headers, body)?;
    let mut resp = sender.send_request(req).await?;
    if upgrade.is_some() && resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let backend = hyper::upgrade::on(&mut resp);
        let client = parts.extensions.remove::<OnUpgrade>();
        tokio::spawn(splice(client, backend));
        let mut out = Response::new(Body::empty());
        *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *out.headers_mut() = resp.headers().clone();
        return Ok(out);
    }
    let (mut head, incoming) = resp.into_parts();
    head.headers = end_to_end(&head.headers);
    Ok(Response::from_parts(head, Body::new(incoming)))
}

async fn connect(
    authority: &str,
) -> Result<hyper::client::conn::http1::SendRequest<Body>, ForwardError> {
    let stream = tokio::time::timeout(DIAL_TIMEOUT, tokio::net::TcpStream::connect(authority))
        .await
        .map_err(|_| ForwardError::DialTimeout(authority.to_string()))?
        .map_err(|e| ForwardError::Dial(authority.to_string(), e))?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "proxied connection ended");
        }
    });
    Ok(sender)
}

fn build(
    target: &Target,
    method: Method,
    mut headers: HeaderMap,
    body: Body,
) -> Result<Request<Body>, ForwardError> {
    let mut req = Request::builder()
        .method(method)
        .uri(&target.path_and_query)
        .body(body)?;
    // The client's credentials were for the API server; the backend gets
    // none of them (upstream drops them once a request is authenticated).
    headers.remove(header::AUTHORIZATION);
    if let Ok(host) = HeaderValue::from_str(&target.authority) {
        headers.insert(header::HOST, host);
    }
    *req.headers_mut() = headers;
    Ok(req)
}

/// The headers without those that only concern one hop, including any the
/// `Connection` header names.
fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    let mut out = headers.clone();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        out.remove(name);
    }
    out
}

async fn splice(client: Option<OnUpgrade>, backend: OnUpgrade) {
    let Some(client) = client else {
        tracing::warn!("the client connection cannot be upgraded");
        return;
    };
    let (client, backend) = match tokio::try_join!(client, backend) {
        Ok(both) => both,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade failed");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut backend = TokioIo::new(backend);
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut backend).await {
        tracing::debug!(error = %e, "spliced stream ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_hop_by_hop_headers_and_those_connection_names() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("close, x-hop"));
        h.insert("x-hop", HeaderValue::from_static("1"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("x-stream-protocol-version", HeaderValue::from_static("v4"));
        let out = end_to_end(&h);
        assert_eq!(out.len(), 1);
        assert!(out.contains_key("x-stream-protocol-version"));
    }
}
