//! The four probe handlers (exec, httpGet, tcpSocket, grpc), shared with the
//! lifecycle hooks. Each returns an [`Outcome`]: upstream's
//! success/failure, or `Unknown` when the probe itself could not run (the
//! runtime refused the exec, the port does not resolve), which leaves the
//! last result standing.

use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{
    Container, GRPCAction, HTTPGetAction, HTTPHeader, Probe, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::config::KUBELET_VERSION;
use crate::cri::{Runtime, v1};

/// The result of running a probe or hook handler once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    /// Failed, with upstream's message (the command's output, the status
    /// code, the dial error).
    Failure(String),
    /// The probe could not be run; its result is thrown away.
    Unknown(String),
}

/// What a probe or hook of one container instance runs against.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) runtime: Runtime,
    pub(crate) container_id: String,
    /// The pod's IP: the default host of httpGet, tcpSocket and grpc.
    pub(crate) pod_ip: String,
    pub(crate) container: Container,
}

/// Runs whichever handler the probe sets, bounded by `timeout`.
pub(crate) async fn run(probe: &Probe, target: &Target, timeout: Duration) -> Outcome {
    if let Some(e) = &probe.exec {
        let cmd = e.command.as_deref().unwrap_or(&[]);
        exec(&target.runtime, &target.container_id, cmd, Some(timeout)).await
    } else if let Some(h) = &probe.http_get {
        http_get(h, &target.pod_ip, &target.container, timeout).await
    } else if let Some(t) = &probe.tcp_socket {
        tcp(t, &target.pod_ip, &target.container, timeout).await
    } else if let Some(g) = &probe.grpc {
        grpc(g, &target.pod_ip, timeout).await
    } else {
        Outcome::Unknown("probe has no handler".into())
    }
}

/// Runs `cmd` in the container through CRI ExecSync: exit 0 is success,
/// anything else a failure whose message is the command's output.
pub(crate) async fn exec(
    rt: &Runtime,
    container_id: &str,
    cmd: &[String],
    timeout: Option<Duration>,
) -> Outcome {
    let timed_out = || Outcome::Failure(format!("command {cmd:?} timed out"));
    let request = v1::ExecSyncRequest {
        container_id: container_id.into(),
        cmd: cmd.to_vec(),
        timeout: timeout.map_or(0, |t| i64::try_from(t.as_secs().max(1)).unwrap_or(i64::MAX)),
    };
    let mut client = rt.runtime.clone();
    let call = client.exec_sync(request);
    let answer = match timeout {
        // The runtime enforces the timeout; this bound only guards against
        // a runtime that does not answer at all.
        Some(t) => match tokio::time::timeout(t + Duration::from_secs(5), call).await {
            Ok(a) => a,
            Err(_) => return timed_out(),
        },
        None => call.await,
    };
    match answer {
        Ok(r) => {
            let r = r.into_inner();
            if r.exit_code == 0 {
                Outcome::Success
            } else {
                let mut out = String::from_utf8_lossy(&r.stdout).into_owned();
                out.push_str(&String::from_utf8_lossy(&r.stderr));
                Outcome::Failure(out)
            }
        }
        Err(s)
            if s.code() == tonic::Code::DeadlineExceeded
                || s.message().contains("timeout")
                || s.message().contains("deadline exceeded") =>
        {
            timed_out()
        }
        Err(s) => Outcome::Unknown(format!("exec in container: {}", s.message())),
    }
}

/// A container port by number or by the name of one of its ports.
pub(crate) fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    let number = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => match s.parse::<i32>() {
            Ok(n) => n,
            Err(_) => container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(s.as_str()))
                .map(|p| p.container_port)
                .ok_or_else(|| format!("couldn't find port: {s} in {}", container.name))?,
        },
    };
    u16::try_from(number)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("invalid port number: {number}"))
}

/// `host:port` with IPv6 literals bracketed.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `host:port` of an httpGet or tcpSocket action: its host (default the
/// pod IP) and its port resolved against the container's.
fn address(
    host: Option<&str>,
    port: &IntOrString,
    pod_ip: &str,
    container: &Container,
) -> Result<String, String> {
    let host = host.filter(|h| !h.is_empty()).unwrap_or(pod_ip);
    Ok(host_port(host, resolve_port(port, container)?))
}

/// An HTTP GET: a status code from 200 to 399 is success. `host` defaults
/// to the pod IP; HTTPS is not verified (as upstream) but not yet served
/// here: it fails with a message saying so.
pub(crate) async fn http_get(
    action: &HTTPGetAction,
    pod_ip: &str,
    container: &Container,
    timeout: Duration,
) -> Outcome {
    let address = match address(action.host.as_deref(), &action.port, pod_ip, container) {
        Ok(a) => a,
        Err(e) => return Outcome::Unknown(e),
    };
    let scheme = action.scheme.as_deref().unwrap_or("HTTP").to_lowercase();
    let mut path = action.path.clone().unwrap_or_default();
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let url = format!("{scheme}://{address}{path}");
    if scheme != "http" {
        return Outcome::Failure(format!("Get \"{url}\": scheme {scheme} is not supported"));
    }
    let headers = action.http_headers.as_deref().unwrap_or(&[]);
    match tokio::time::timeout(timeout, get(&address, &path, headers)).await {
        Err(_) => Outcome::Failure(format!(
            "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
        Ok(Err(e)) => Outcome::Failure(format!("Get \"{url}\": {e}")),
        Ok(Ok(code)) if (200..400).contains(&code) => Outcome::Success,
        Ok(Ok(code)) => Outcome::Failure(format!("HTTP probe failed with statuscode: {code}")),
    }
}

/// One HTTP/1.1 GET on a fresh connection; the status code.
async fn get(address: &str, path: &str, headers: &[HTTPHeader]) -> Result<u16, String> {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| format!("dial tcp {address}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(conn);
    let mut request = hyper::Request::get(path)
        .header(hyper::header::HOST, address)
        .header(
            hyper::header::USER_AGENT,
            format!("kube-probe/{}", minor_version()),
        )
        .header(hyper::header::ACCEPT, "*/*");
    if let Some(h) = request.headers_mut() {
        for header in headers {
            let (Ok(name), Ok(value)) = (
                hyper::header::HeaderName::from_bytes(header.name.as_bytes()),
                hyper::header::HeaderValue::from_str(&header.value),
            ) else {
                continue;
            };
            // A header given in the probe replaces the default one.
            h.insert(name, value);
        }
    }
    let request = request.body(String::new()).map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string());
    conn.abort();
    Ok(response?.status().as_u16())
}

/// `1.34` of `v1.34.12`: the version in upstream's probe User-Agent.
fn minor_version() -> &'static str {
    let v = KUBELET_VERSION.trim_start_matches('v');
    match v.match_indices('.').nth(1) {
        Some((i, _)) => &v[..i],
        None => v,
    }
}

/// A TCP connection that opens within the timeout is success.
pub(crate) async fn tcp(
    action: &TCPSocketAction,
    pod_ip: &str,
    container: &Container,
    timeout: Duration,
) -> Outcome {
    let address = match address(action.host.as_deref(), &action.port, pod_ip, container) {
        Ok(a) => a,
        Err(e) => return Outcome::Unknown(e),
    };
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&address)).await {
        Ok(Ok(_)) => Outcome::Success,
        Ok(Err(e)) => Outcome::Failure(format!("dial tcp {address}: {e}")),
        Err(_) => Outcome::Failure(format!("dial tcp {address}: i/o timeout")),
    }
}

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

const SERVING: i32 = 1;

/// The gRPC health-checking protocol (`grpc.health.v1.Health/Check`) on the
/// pod IP, without TLS: SERVING is success.
pub(crate) async fn grpc(action: &GRPCAction, pod_ip: &str, timeout: Duration) -> Outcome {
    let Ok(port) = u16::try_from(action.port) else {
        return Outcome::Unknown(format!("invalid port number: {}", action.port));
    };
    let address = host_port(pod_ip, port);
    let service = action.service.clone().unwrap_or_default();
    let check = async {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| e.to_string())?
            .connect_timeout(timeout);
        let channel = endpoint.connect().await.map_err(|e| {
            format!("timeout: failed to connect service \"{address}\" within {timeout:?}: {e}")
        })?;
        let mut client = tonic::client::Grpc::new(channel);
        client.ready().await.map_err(|e| e.to_string())?;
        let path =
            tonic::codegen::http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Check");
        let response: tonic::Response<HealthCheckResponse> = client
            .unary(
                tonic::Request::new(HealthCheckRequest { service }),
                path,
                tonic_prost::ProstCodec::default(),
            )
            .await
            .map_err(|s| format!("rpc error: code = {:?} desc = {}", s.code(), s.message()))?;
        Ok::<i32, String>(response.into_inner().status)
    };
    match tokio::time::timeout(timeout, check).await {
        Err(_) => Outcome::Failure(format!(
            "timeout: health rpc did not complete within {timeout:?}"
        )),
        Ok(Err(e)) => Outcome::Failure(e),
        Ok(Ok(SERVING)) => Outcome::Success,
        Ok(Ok(status)) => Outcome::Failure(format!(
            "service unhealthy (responded with \"{}\")",
            match status {
                0 => "UNKNOWN",
                2 => "NOT_SERVING",
                3 => "SERVICE_UNKNOWN",
                _ => "UNRECOGNIZED",
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ContainerPort;

    fn container() -> Container {
        Container {
            name: "web".into(),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn ports_by_number_or_name() {
        let c = container();
        assert_eq!(resolve_port(&IntOrString::Int(80), &c), Ok(80));
        assert_eq!(resolve_port(&IntOrString::String("81".into()), &c), Ok(81));
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &c),
            Ok(8080)
        );
        assert!(resolve_port(&IntOrString::String("nope".into()), &c).is_err());
        assert!(resolve_port(&IntOrString::Int(0), &c).is_err());
    }

    #[test]
    fn user_agent_version() {
        assert_eq!(minor_version(), "1.34");
        assert_eq!(host_port("fd00::1", 80), "[fd00::1]:80");
    }

    #[tokio::test]
    async fn http_and_tcp_against_a_local_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let app = axum::Router::new()
            .route("/ok", axum::routing::get(|| async { "ok" }))
            .route(
                "/host",
                axum::routing::get(|h: axum::http::HeaderMap| async move {
                    let host = h.get("host").and_then(|v| v.to_str().ok()).unwrap_or("");
                    if host == "example.com" {
                        axum::http::StatusCode::OK
                    } else {
                        axum::http::StatusCode::BAD_REQUEST
                    }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let c = container();
        let action = |path: &str, headers: Vec<HTTPHeader>| HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(i32::from(port)),
            http_headers: Some(headers),
            ..Default::default()
        };
        let t = Duration::from_secs(2);
        assert_eq!(
            http_get(&action("/ok", vec![]), "127.0.0.1", &c, t).await,
            Outcome::Success
        );
        assert_eq!(
            http_get(&action("/missing", vec![]), "127.0.0.1", &c, t).await,
            Outcome::Failure("HTTP probe failed with statuscode: 404".into())
        );
        let host = HTTPHeader {
            name: "Host".into(),
            value: "example.com".into(),
        };
        assert_eq!(
            http_get(&action("/host", vec![host]), "127.0.0.1", &c, t).await,
            Outcome::Success
        );
        let tcp_action = TCPSocketAction {
            port: IntOrString::Int(i32::from(port)),
            host: None,
        };
        assert_eq!(tcp(&tcp_action, "127.0.0.1", &c, t).await, Outcome::Success);
    }
}
