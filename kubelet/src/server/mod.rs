//! The kubelet's HTTP API, which the API server proxies `pods/log`,
//! `pods/exec`, `pods/attach`, `pods/portforward` and `nodes/proxy` to
//! (plain HTTP for now): one submodule per job.
//!
//! - [`logs`]: `/containerLogs/{ns}/{pod}/{container}`, read from the CRI
//!   log file with upstream's options (follow, previous, tail, limits).
//! - [`streams`]: `/exec`, `/attach` and `/portForward`, which ask the
//!   runtime for a streaming URL and hand the connection to [`upgrade`].
//! - [`upgrade`]: relays an HTTP upgrade (SPDY or WebSocket) to the
//!   runtime's stream server byte for byte, so the kubelet never speaks
//!   either protocol itself.
//! - [`node_logs`]: `/logs/`, the host's `/var/log`.
//! - [`lookup`]: finds a pod's sandbox and containers by CRI labels.
//!
//! Errors are plain text with upstream's status codes ([`Error`]).

mod logs;
mod lookup;
mod node_logs;
mod streams;
mod upgrade;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::cri::Runtime;

pub use logs::decode_cri_log;

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    runtime: Runtime,
) -> std::io::Result<()> {
    // `axum::serve` serves connections with upgrades enabled, which the
    // streaming endpoints need.
    axum::serve(listener, router(runtime)).await
}

pub fn router(runtime: Runtime) -> Router {
    let stream = || get(streams::exec).post(streams::exec);
    let attach = || get(streams::attach).post(streams::attach);
    let forward = || get(streams::port_forward).post(streams::port_forward);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(logs::container_logs),
        )
        .route("/exec/{namespace}/{pod}/{container}", stream())
        .route("/exec/{namespace}/{pod}/{uid}/{container}", stream())
        .route("/attach/{namespace}/{pod}/{container}", attach())
        .route("/attach/{namespace}/{pod}/{uid}/{container}", attach())
        .route("/portForward/{namespace}/{pod}", forward())
        .route("/portForward/{namespace}/{pod}/{uid}", forward())
        .route("/logs", get(node_logs::root))
        .route("/logs/", get(node_logs::root))
        .route("/logs/{*path}", get(node_logs::path))
        .with_state(runtime)
}

/// A request the kubelet cannot serve; the body is the message as plain text.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Runtime(#[from] crate::cri::Error),
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = match &self {
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Internal(_) | Error::Runtime(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::warn!(error = %self, "kubelet server request failed");
        }
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.to_string(),
        )
            .into_response()
    }
}

/// Upstream's query booleans: present means true unless `0` or `false`
/// (any case); an empty value is true.
pub(crate) fn query_bool(value: &str) -> bool {
    !(value == "0" || value.eq_ignore_ascii_case("false"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_parse_like_upstream() {
        for v in ["", "1", "true", "TRUE", "yes"] {
            assert!(query_bool(v), "{v}");
        }
        for v in ["0", "false", "False"] {
            assert!(!query_bool(v), "{v}");
        }
    }
}
