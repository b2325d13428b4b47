//! Relays a client's upgrade request (SPDY/3.1 or WebSocket) to the
//! runtime's stream server and splices the two connections, so exec,
//! attach and port-forward work in whatever protocol the client and the
//! runtime agree on; the kubelet never parses either.
//!
//! ```text
//! client ──GET /exec/..──▶ kubelet ──GET <runtime URL>──▶ containerd
//!        ◀── 101 + headers ──       ◀── 101 + headers ──
//!        ◀═══════ bytes copied both ways until either side closes ═══════▶
//! ```
//! A non-101 answer from the runtime is relayed as it is.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;

use super::{Error, Result};

/// Proxies `req` to the runtime's streaming `url`. The client's query is
/// appended when the URL has none (WebSocket port-forward reads `ports`).
pub(super) async fn proxy(mut req: Request, url: &str) -> Result<Response> {
    let target: Uri = url
        .parse()
        .map_err(|e| Error::Internal(format!("runtime streaming URL \"{url}\": {e}")))?;
    let authority = target
        .authority()
        .ok_or_else(|| Error::Internal(format!("runtime streaming URL \"{url}\" has no host")))?
        .clone();
    let path = match (target.query(), req.uri().query()) {
        (None, Some(q)) => format!("{}?{q}", target.path()),
        _ => target
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.to_string()),
    };
    let port = authority.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((authority.host(), port))
        .await
        .map_err(|e| Error::Internal(format!("connecting to the runtime's stream server: {e}")))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(stream))
        .await
        .map_err(|e| Error::Internal(format!("runtime stream server: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "runtime stream connection ended");
        }
    });

    let mut out = axum::http::Request::builder()
        .method(req.method().clone())
        .uri(path)
        .body(Body::empty())
        .map_err(|e| Error::Internal(e.to_string()))?;
    for (name, value) in req.headers() {
        if name == header::HOST
            || name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
        {
            continue;
        }
        out.headers_mut().append(name.clone(), value.clone());
    }
    let host =
        HeaderValue::from_str(authority.as_str()).map_err(|e| Error::Internal(e.to_string()))?;
    out.headers_mut().insert(header::HOST, host);

    let client_upgrade = hyper::upgrade::on(&mut req);
    let mut answer = sender
        .send_request(out)
        .await
        .map_err(|e| Error::Internal(format!("runtime stream server: {e}")))?;
    if answer.status() != StatusCode::SWITCHING_PROTOCOLS {
        let (parts, body) = answer.into_parts();
        return Ok(Response::from_parts(parts, Body::new(body)));
    }
    let runtime_upgrade = hyper::upgrade::on(&mut answer);
    tokio::spawn(async move {
        let (client, runtime) = match tokio::try_join!(client_upgrade, runtime_upgrade) {
            Ok(both) => both,
            Err(e) => {
                tracing::warn!(error = %e, "stream upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut runtime = TokioIo::new(runtime);
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut runtime).await {
            tracing::debug!(error = %e, "stream ended");
        }
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    *response.headers_mut() = answer.headers().clone();
    Ok(response)
}
