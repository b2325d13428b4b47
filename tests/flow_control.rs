//! Overload is answered with 429, never queued without bound: with
//! `--max-requests-inflight=1`, many simultaneous lists by an ordinary user get
//! upstream's `TooManyRequests` Status with `Retry-After: 1` for all but the
//! requests that found a free slot, while `system:masters` is never limited.

mod common;

use std::io::Write;
use std::sync::{Arc, Barrier};

use serde_json::json;

use common::{As, RawResponse, Server, kubectl_134, tls_connect_as};

const TOKEN: &str = "reader-token-0123456789";
const CLIENTS: usize = 32;

/// Sends one GET of `path` from each of `CLIENTS` connections at the same
/// moment; returns each (status, head, body).
fn simultaneous_gets(
    server: &Server,
    who: fn() -> As,
    token: Option<&str>,
    path: &str,
) -> Vec<(u16, String, String)> {
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let addr = server.addr();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let barrier = barrier.clone();
            let addr = addr.clone();
            let auth = auth.clone();
            let path = path.to_string();
            std::thread::spawn(move || {
                let mut s = tls_connect_as(&addr, &who()).expect("connect");
                let request = format!(
                    "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\n{auth}Connection: close\r\n\r\n"
                );
                // Finish the handshake before the start line, so the requests
                // themselves arrive together.
                s.conn.complete_io(&mut s.sock).expect("handshake");
                barrier.wait();
                s.write_all(request.as_bytes()).expect("write");
                let r = RawResponse::read(&mut s);
                (r.status, r.headers, r.body)
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect()
}

#[test]
fn requests_beyond_the_inflight_limit_get_429_and_masters_are_exempt() {
    let files = tempfile::tempdir().expect("tempdir");
    let tokens = files.path().join("tokens.csv");
    std::fs::write(&tokens, format!("{TOKEN},reader,uid-reader\n")).expect("tokens");
    let server = Server::start_apiserver(&[
        "--token-auth-file",
        tokens.to_str().expect("utf-8"),
        "--max-requests-inflight=1",
    ]);
    let admin = server.kubectl(&kubectl_134());
    admin.ok(&[
        "create",
        "clusterrole",
        "cm-reader",
        "--verb=list",
        "--resource=configmaps",
    ]);
    admin.ok(&[
        "create",
        "clusterrolebinding",
        "reader",
        "--clusterrole=cm-reader",
        "--user=reader",
    ]);
    // Enough data that each list takes a while.
    let big = "x".repeat(64 * 1024);
    for i in 0..40 {
        let r = server.send_json(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": format!("cm-{i}")}, "data": {"v": big}}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let path = "/api/v1/namespaces/default/configmaps";
    let answers = simultaneous_gets(&server, || As::Nobody, Some(TOKEN), path);
    let ok = answers.iter().filter(|(s, _, _)| *s == 200).count();
    let refused: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 429).collect();
    assert_eq!(
        ok + refused.len(),
        CLIENTS,
        "only 200s and 429s: {:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    assert!(ok >= 1, "the first request found a slot");
    assert!(
        !refused.is_empty(),
        "32 simultaneous lists with one slot: some are refused"
    );
    let (_, head, body) = refused[0];
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    let status: serde_json::Value = serde_json::from_str(body).expect("a Status");
    assert_eq!(
        status,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Too many requests, please try again later.",
            "reason": "TooManyRequests", "details": {"retryAfterSeconds": 1}, "code": 429,
        })
    );
    // The admin (system:masters) is never limited.
    let answers = simultaneous_gets(&server, || As::Admin, None, path);
    assert!(
        answers.iter().all(|(s, _, _)| *s == 200),
        "{:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
}
