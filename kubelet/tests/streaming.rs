//! The kubelet's streaming API against real containerd: container logs with
//! upstream's options, exec over WebSocket relayed to containerd's stream
//! server, and the node's `/logs/` directory.

mod support;

use std::net::Ipv4Addr;
use std::time::Duration;

use futures::StreamExt;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn running(pod: &k8s_openapi::api::core::v1::Pod) -> bool {
    main_status(pod)
        .and_then(|s| s.state.as_ref()?.running.as_ref())
        .is_some()
}

/// Polls a log path until it answers `code`, returning the body.
async fn log_eventually(port: i32, path: &str, code: u16) -> TestResult<String> {
    eventually(&format!("GET {path} answering {code}"), || async {
        match http_get_status(port, path).await {
            Ok((c, body)) if c == code => Some(body),
            _ => None,
        }
    })
    .await
}

#[tokio::test]
async fn container_logs_options() -> TestResult {
    let env = Env::start("streaming-logs").await?;
    let port = env.kubelet_port().await?;
    env.create(busybox_pod(
        "lines",
        &env.node,
        "Never",
        "echo one; echo two; echo three",
    ))
    .await?;
    env.create(busybox_pod(
        "again",
        &env.node,
        "Always",
        "echo run; exit 1",
    ))
    .await?;
    env.wait_pod("lines", "lines to succeed", |p| phase(p) == "Succeeded")
        .await?;
    let base = "/containerLogs/default/lines/main";

    assert_eq!(
        http_get_status(port, base).await?,
        (200, "one\ntwo\nthree\n".into())
    );
    let tail = http_get_status(port, &format!("{base}?tailLines=2")).await?;
    assert_eq!(tail, (200, "two\nthree\n".into()));
    let limited = http_get_status(port, &format!("{base}?limitBytes=6")).await?;
    assert_eq!(limited, (200, "one\ntw".into()));
    let future = http_get_status(port, &format!("{base}?sinceTime=2999-01-01T00:00:00Z")).await?;
    assert_eq!(future, (200, String::new()));
    let recent = http_get_status(port, &format!("{base}?sinceSeconds=3600")).await?;
    assert_eq!(recent, (200, "one\ntwo\nthree\n".into()));

    let (code, stamped) = http_get_status(port, &format!("{base}?timestamps=true")).await?;
    assert_eq!(code, 200);
    let lines: Vec<&str> = stamped.lines().collect();
    assert_eq!(lines.len(), 3, "{stamped}");
    for (line, word) in lines.iter().zip(["one", "two", "three"]) {
        let (time, rest) = line.split_once(' ').ok_or("no timestamp")?;
        assert_eq!(rest, word);
        // RFC 3339 with nine fractional digits.
        let frac = time.split_once('.').ok_or("no fraction")?.1;
        assert_eq!(frac.trim_end_matches('Z').len(), 9, "{time}");
        assert!(time.starts_with("20") && time.ends_with('Z'), "{time}");
    }

    let (code, body) = http_get_status(port, &format!("{base}?previous=true")).await?;
    assert_eq!(code, 400);
    assert_eq!(
        body,
        "previous terminated container \"main\" in pod \"lines\" not found"
    );
    // `previous=false` is the current container.
    assert_eq!(
        http_get_status(port, &format!("{base}?previous=false"))
            .await?
            .0,
        200
    );

    let (code, body) = http_get_status(port, "/containerLogs/default/nope/main").await?;
    assert_eq!(code, 404, "{body}");

    // A restarted container: `previous` is the first run's output.
    env.wait_pod("again", "a restart", |p| {
        main_status(p).is_some_and(|s| s.restart_count >= 1)
    })
    .await?;
    let previous =
        log_eventually(port, "/containerLogs/default/again/main?previous=1", 200).await?;
    assert_eq!(previous, "run\n");
    Ok(())
}

#[tokio::test]
async fn waiting_container_logs() -> TestResult {
    let env = Env::start("streaming-waiting").await?;
    let port = env.kubelet_port().await?;
    let mut pod = busybox_pod("unpullable", &env.node, "Never", "true");
    if let Some(spec) = pod.spec.as_mut() {
        spec.containers[0].image = Some("registry.invalid/ironkube/none:1".into());
    }
    env.create(pod).await?;
    let body = log_eventually(port, "/containerLogs/default/unpullable/main", 400).await?;
    assert!(
        body.starts_with("container \"main\" in pod \"unpullable\" is waiting to start"),
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn follow_streams_new_lines() -> TestResult {
    let env = Env::start("streaming-follow").await?;
    let port = env.kubelet_port().await?;
    env.create(busybox_pod(
        "ticker",
        &env.node,
        "Never",
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done",
    ))
    .await?;
    env.wait_pod("ticker", "ticker running", running).await?;
    let mut stream =
        tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, u16::try_from(port)?)).await?;
    stream
        .write_all(
            b"GET /containerLogs/default/ticker/main?follow=true HTTP/1.1\r\nHost: localhost\r\n\r\n",
        )
        .await?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err::<(), Box<dyn std::error::Error>>("response ended".into());
            }
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen);
            // The first line came, then a later one on the same response.
            if text.contains("tick 0\n") && text.contains("tick 5\n") {
                return Ok(());
            }
        }
    };
    tokio::time::timeout(DEADLINE, read).await??;
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{text}"
    );
    Ok(())
}

/// What one exec over the v4 channel protocol produced.
#[derive(Debug, Default)]
struct ExecResult {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: Option<serde_json::Value>,
}

async fn ws_exec(port: i32, pod: &str, command: &str) -> TestResult<ExecResult> {
    let mut url = format!("ws://127.0.0.1:{port}/exec/default/{pod}/main?");
    for arg in ["sh", "-c", command] {
        url.push_str("command=");
        url.push_str(&encode(arg));
        url.push('&');
    }
    url.push_str("stdout=1&stderr=1");
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "v4.channel.k8s.io".parse()?);
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await?;
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.as_bytes()),
        Some(&b"v4.channel.k8s.io"[..])
    );
    let mut result = ExecResult::default();
    let collect = async {
        while let Some(message) = ws.next().await {
            let data = match message {
                Ok(Message::Binary(data)) => data,
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => continue,
            };
            let Some((channel, payload)) = data.split_first() else {
                continue;
            };
            match channel {
                1 => result.stdout.extend_from_slice(payload),
                2 => result.stderr.extend_from_slice(payload),
                3 if !payload.is_empty() => {
                    result.status = Some(serde_json::from_slice(payload)?);
                }
                _ => {}
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    tokio::time::timeout(DEADLINE, collect).await??;
    Ok(result)
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn exec_over_websocket_and_node_logs() -> TestResult {
    let env = Env::start("streaming-exec").await?;
    let port = env.kubelet_port().await?;
    env.create(busybox_pod("shell", &env.node, "Never", "sleep 3600"))
        .await?;
    env.wait_pod("shell", "shell running", running).await?;

    let ok = ws_exec(port, "shell", "echo hi; echo err 1>&2").await?;
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "hi\n");
    assert_eq!(String::from_utf8_lossy(&ok.stderr), "err\n");
    let status = ok.status.ok_or("no status on the error channel")?;
    assert_eq!(status["status"], "Success", "{status}");

    let failed = ws_exec(port, "shell", "exit 3").await?;
    let status = failed.status.ok_or("no status on the error channel")?;
    assert_eq!(status["status"], "Failure", "{status}");
    assert_eq!(status["reason"], "NonZeroExitCode", "{status}");
    let causes = status["details"]["causes"].as_array().ok_or("no causes")?;
    assert!(
        causes
            .iter()
            .any(|c| c["reason"] == "ExitCode" && c["message"] == "3"),
        "{status}"
    );

    // kubectl's SPDY upgrade is relayed too: containerd agrees on the
    // stream protocol and switches (the SPDY frames are not spoken here).
    let mut spdy =
        tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, u16::try_from(port)?)).await?;
    spdy.write_all(
        b"POST /exec/default/shell/main?command=true&output=1 HTTP/1.1\r\n\
          Host: localhost\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\
          X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n",
    )
    .await?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(DEADLINE, async {
        while !head.ends_with(b"\r\n\r\n") && spdy.read(&mut byte).await? == 1 {
            head.push(byte[0]);
        }
        Ok::<_, std::io::Error>(())
    })
    .await??;
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("x-stream-protocol-version: v4.channel.k8s.io"),
        "{head}"
    );
    assert!(head.contains("upgrade: spdy/3.1"), "{head}");
    drop(spdy);

    // Errors before any upgrade are plain text.
    let (code, _) = http_get_status(port, "/exec/default/nope/main?command=true&stdout=1").await?;
    assert_eq!(code, 404);
    let (code, body) = http_get_status(port, "/exec/default/shell/main?stdout=1").await?;
    assert_eq!(code, 400, "{body}");

    // The node's /var/log.
    let (code, listing) = http_get_status(port, "/logs/").await?;
    assert_eq!(code, 200);
    assert!(listing.contains("<a href="), "{listing}");
    let (code, _) = http_get_status(port, "/logs/%2e%2e/etc/passwd").await?;
    assert_eq!(code, 400);
    Ok(())
}

/// One port-forward over the v4 channel protocol: the data channel's bytes
/// after its 2-byte port prefix, until `want` shows up or the socket ends.
async fn ws_port_forward(port: i32, pod: &str, target: u16, want: &str) -> TestResult<String> {
    let url = format!("ws://127.0.0.1:{port}/portForward/default/{pod}?ports={target}");
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "v4.channel.k8s.io".parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
    let mut data = Vec::new();
    let mut errors = Vec::new();
    let collect = async {
        while let Some(Ok(message)) = ws.next().await {
            let Message::Binary(frame) = message else {
                continue;
            };
            match frame.split_first() {
                Some((0, payload)) => data.extend_from_slice(payload),
                Some((1, payload)) => errors.extend_from_slice(payload),
                _ => {}
            }
            if data.len() > 2 && String::from_utf8_lossy(&data[2..]).contains(want) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), collect).await;
    if data.len() < 2 || data[..2] != target.to_le_bytes() {
        return Err(format!("no port prefix on the data channel: {data:?}").into());
    }
    if errors.len() > 2 {
        return Err(String::from_utf8_lossy(&errors[2..]).into_owned().into());
    }
    Ok(String::from_utf8_lossy(&data[2..]).into_owned())
}

#[tokio::test]
async fn port_forward_over_websocket() -> TestResult {
    let env = Env::start("streaming-forward").await?;
    let port = env.kubelet_port().await?;
    env.create(busybox_pod(
        "listener",
        &env.node,
        "Never",
        "while true; do echo pong | nc -l -p 8080; done",
    ))
    .await?;
    env.wait_pod("listener", "listener running", running)
        .await?;
    // The listener may not be up yet when the container is: retry.
    let got = eventually("pong through the port-forward", || async {
        ws_port_forward(port, "listener", 8080, "pong")
            .await
            .ok()
            .filter(|s| s.contains("pong"))
    })
    .await?;
    assert_eq!(got, "pong\n");
    Ok(())
}
