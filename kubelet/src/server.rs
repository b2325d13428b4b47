//! The kubelet's HTTP API (plain HTTP for now; the API server's proxying and
//! authentication come with the streaming work): `/healthz` and
//! `/containerLogs/{namespace}/{pod}/{container}`, which reads the
//! container's CRI log file.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::cri::{Runtime, v1};

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    runtime: Runtime,
) -> std::io::Result<()> {
    axum::serve(listener, router(runtime)).await
}

pub fn router(runtime: Runtime) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(container_logs),
        )
        .with_state(runtime)
}

async fn container_logs(
    State(runtime): State<Runtime>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
) -> Response {
    let filter = v1::ContainerFilter {
        label_selector: HashMap::from([
            ("io.kubernetes.pod.namespace".to_string(), namespace),
            ("io.kubernetes.pod.name".to_string(), pod),
            ("io.kubernetes.container.name".to_string(), container),
        ]),
        ..Default::default()
    };
    let mut client = runtime.runtime.clone();
    let listed = match client
        .list_containers(v1::ListContainersRequest {
            filter: Some(filter),
        })
        .await
    {
        Ok(r) => r.into_inner().containers,
        Err(s) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, s.message().to_string()).into_response();
        }
    };
    let Some(latest) = listed.into_iter().max_by_key(|c| c.created_at) else {
        return (StatusCode::NOT_FOUND, "container not found").into_response();
    };
    let status = match client
        .container_status(v1::ContainerStatusRequest {
            container_id: latest.id,
            verbose: false,
        })
        .await
    {
        Ok(r) => r.into_inner().status.unwrap_or_default(),
        Err(s) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, s.message().to_string()).into_response();
        }
    };
    match tokio::fs::read_to_string(&status.log_path).await {
        Ok(raw) => decode_cri_log(&raw).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, format!("reading log: {e}")).into_response(),
    }
}

/// The container's output from a CRI log file: each line is
/// `<RFC 3339 time> <stdout|stderr> <P|F> <content>`, where `P` marks a
/// partial line continued by the next entry and `F` a full one.
pub fn decode_cri_log(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for line in raw.lines() {
        let mut parts = line.splitn(4, ' ');
        let (Some(_time), Some(_stream), Some(tag), content) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        out.push_str(content.unwrap_or(""));
        if tag != "P" {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_full_and_partial_lines() {
        let raw = "2024-01-01T00:00:00.1Z stdout F hello\n\
                   2024-01-01T00:00:00.2Z stderr P par\n\
                   2024-01-01T00:00:00.3Z stderr F tial\n\
                   2024-01-01T00:00:00.4Z stdout F \n";
        assert_eq!(decode_cri_log(raw), "hello\npartial\n\n");
    }
}
