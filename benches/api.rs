//! API server benchmark against a real `ironkube server` (release build) on
//! loopback: creates/s and gets/s of small ConfigMaps with 32 concurrent clients
//! (p50/p99 of each), list of 10,000 ConfigMaps (p99), watch fan-out to 100
//! watchers (events/s delivered), and server RSS with 10,000 ConfigMaps stored.
//!
//! Run with `hack/bench` (or `cargo bench --bench api`). Sizes can be scaled down
//! with IRONKUBE_BENCH_SCALE (e.g. 0.1) for a quick look.
//!
//! `cargo bench --bench api -- --etcd` runs the same load against a server on a
//! real etcd (Debian's, on loopback) and, in the same run, measures etcd's raw put
//! rate from the same number of concurrent clients, printing the ratio.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

const CLIENTS: usize = 32;
const WATCHERS: usize = 100;

fn scale(n: usize) -> usize {
    let f: f64 = std::env::var("IRONKUBE_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    ((n as f64) * f).max(1.0) as usize
}

struct ServerProcess {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct EtcdProcess {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

fn start_etcd() -> EtcdProcess {
    let dir = tempfile::tempdir().expect("tempdir");
    let (port, peer) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{port}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let child = Command::new("/usr/bin/etcd")
        .args(["--name", "bench", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
        ])
        .args([
            "--listen-peer-urls",
            &peer_url,
            "--initial-advertise-peer-urls",
            &peer_url,
        ])
        .args(["--initial-cluster", &format!("bench={peer_url}")])
        .args(
            std::env::var("IRONKUBE_BENCH_ETCD_ARGS")
                .unwrap_or_default()
                .split_whitespace(),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start etcd (hack/install-deps.sh installs it)");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "etcd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    EtcdProcess {
        child,
        url,
        _dir: dir,
    }
}

/// etcd's own write rate: CLIENTS concurrent clients writing small values, either
/// as plain puts or as create-if-absent transactions (what any Kubernetes create is).
async fn raw_etcd_writes(url: &str, total: usize, conditional: bool) -> (f64, Vec<Duration>) {
    use etcd_client::{Compare, CompareOp, Txn, TxnOp};
    let client = etcd_client::Client::connect([url], None)
        .await
        .expect("etcd client");
    let value =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"key":"value"}}"#;
    let prefix = if conditional { "/raw-txn" } else { "/raw-put" };
    load(total, move |i| {
        let mut kv = client.kv_client();
        async move {
            let key = format!("{prefix}/configmaps/default/cm-{i:06}");
            if conditional {
                let txn = Txn::new()
                    .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(key, value, None)]);
                kv.txn(txn).await.expect("txn");
            } else {
                kv.put(key, value, None).await.expect("put");
            }
        }
    })
    .await
}

fn start_server(extra: &[&str]) -> ServerProcess {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let bin = std::env::var("IRONKUBE_BIN").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/ironkube").to_string()
    });
    let child = Command::new(bin)
        .args(["server", "--data-dir"])
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .env("IRONKUBE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start ironkube (build it with `cargo build --release` first)");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.path().join("admin.kubeconfig").exists() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    ServerProcess {
        child,
        port,
        _dir: dir,
    }
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

async fn request(
    client: &HttpClient,
    method: &str,
    url: &str,
    body: Option<String>,
) -> (u16, Bytes) {
    let mut b = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("accept", "application/json");
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    let req = b
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("request");
    let resp = client.request(req).await.expect("response");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, bytes)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `total` requests spread over CLIENTS tasks; returns (ops/s, sorted latencies).
async fn load<F, Fut>(total: usize, op: F) -> (f64, Vec<Duration>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let op = op.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t = Instant::now();
                op(i).await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    all.sort();
    (rate, all)
}

/// CPU seconds used so far by the API server and by etcd (0 without etcd).
fn cpu_of(server: &ServerProcess, etcd: Option<&EtcdProcess>) -> (f64, f64) {
    (
        cpu_seconds(server.child.id()),
        etcd.map(|e| cpu_seconds(e.child.id())).unwrap_or(0.0),
    )
}

fn print_cpu(what: &str, ops: usize, before: (f64, f64), after: (f64, f64)) {
    let per_op = |b: f64, a: f64| (a - b) * 1e6 / ops as f64;
    println!(
        "  cpu per op during {what}: API server {:.0} us, etcd {:.0} us",
        per_op(before.0, after.0),
        per_op(before.1, after.1)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let on_etcd = std::env::args().any(|a| a == "--etcd");
    let etcd = on_etcd.then(start_etcd);
    let extra: Vec<&str> = match &etcd {
        Some(e) => vec!["--etcd-servers", e.url.as_str()],
        None => vec![],
    };
    println!("backend: {}", if on_etcd { "etcd" } else { "embedded" });
    let server = start_server(&extra);
    let base = format!("http://127.0.0.1:{}", server.port);
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(CLIENTS + WATCHERS)
        .build_http();
    let cm_url = format!("{base}/api/v1/namespaces/default/configmaps");

    // Creates: 10,000 small ConfigMaps (these also make the list and RSS data set).
    let creates = scale(10_000);
    let (c, u) = (client.clone(), cm_url.clone());
    let cpu_before = cpu_of(&server, etcd.as_ref());
    let (create_rate, create_lat) = load(creates, move |i| {
        let (c, u) = (c.clone(), u.clone());
        async move {
            let body = format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm-{i:06}"}},"data":{{"key":"value-{i}"}}}}"#);
            let (status, _) = request(&c, "POST", &u, Some(body)).await;
            assert_eq!(status, 201);
        }
    })
    .await;
    println!(
        "creates/s: {create_rate:.0}  p50 {:.2} ms  p99 {:.2} ms  ({creates} creates, {CLIENTS} clients)",
        ms(percentile(&create_lat, 0.5)),
        ms(percentile(&create_lat, 0.99))
    );
    print_cpu(
        "creates",
        creates,
        cpu_before,
        cpu_of(&server, etcd.as_ref()),
    );
    if let Some(e) = &etcd {
        for (what, conditional) in [("puts", false), ("create-if-absent txns", true)] {
            let cpu_before = cpu_of(&server, etcd.as_ref());
            let (raw_rate, raw_lat) = raw_etcd_writes(&e.url, creates, conditional).await;
            print_cpu(what, creates, cpu_before, cpu_of(&server, etcd.as_ref()));
            println!(
                "raw etcd {what}/s: {raw_rate:.0}  p50 {:.2} ms  p99 {:.2} ms  ({creates} writes, {CLIENTS} clients); API server creates reach {:.0}% of it",
                ms(percentile(&raw_lat, 0.5)),
                ms(percentile(&raw_lat, 0.99)),
                100.0 * create_rate / raw_rate
            );
        }
    }

    let gets = scale(100_000);
    let (c, u) = (client.clone(), cm_url.clone());
    let (get_rate, get_lat) = load(gets, move |i| {
        let (c, u) = (c.clone(), u.clone());
        async move {
            let (status, _) = request(&c, "GET", &format!("{u}/cm-{:06}", i % creates), None).await;
            assert_eq!(status, 200);
        }
    })
    .await;
    println!(
        "gets/s: {get_rate:.0}  p50 {:.2} ms  p99 {:.2} ms  ({gets} gets, {CLIENTS} clients)",
        ms(percentile(&get_lat, 0.5)),
        ms(percentile(&get_lat, 0.99))
    );

    let mut list_lat = Vec::new();
    for _ in 0..scale(30) {
        let t = Instant::now();
        let (status, body) = request(&client, "GET", &cm_url, None).await;
        list_lat.push(t.elapsed());
        assert_eq!(status, 200);
        assert!(body.len() > creates * 50);
    }
    list_lat.sort();
    println!(
        "list of {creates} ConfigMaps: p50 {:.1} ms  p99 {:.1} ms  ({} lists)",
        ms(percentile(&list_lat, 0.5)),
        ms(percentile(&list_lat, 0.99)),
        list_lat.len()
    );
    println!(
        "server RSS with {creates} ConfigMaps: {:.1} MiB",
        rss_mib(server.child.id())
    );

    // Watch fan-out: 100 watchers, then updates; events delivered per second in total.
    let rv = {
        let (_, body) = request(&client, "GET", &format!("{cm_url}?limit=1"), None).await;
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        v["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("0")
            .to_string()
    };
    let updates = scale(2_000);
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let url = format!("{cm_url}?watch=true&resourceVersion={rv}");
        let c = client.clone();
        let delivered = delivered.clone();
        watchers.push(tokio::spawn(async move {
            let req = hyper::Request::get(url)
                .body(Full::new(Bytes::new()))
                .expect("req");
            let mut body = c.request(req).await.expect("watch").into_body();
            let mut seen = 0usize;
            let mut partial = Vec::new();
            while seen < updates {
                let Some(frame) = body.frame().await else {
                    break;
                };
                let Ok(frame) = frame else { break };
                if let Some(data) = frame.data_ref() {
                    partial.extend_from_slice(data);
                    let lines = partial.iter().filter(|b| **b == b'\n').count();
                    seen += lines;
                    delivered.fetch_add(lines, Ordering::Relaxed);
                    if let Some(pos) = partial.iter().rposition(|b| *b == b'\n') {
                        partial.drain(..=pos);
                    }
                }
            }
        }));
    }
    let start = Instant::now();
    let (c, u) = (client.clone(), cm_url.clone());
    load(updates, move |i| {
        let (c, u) = (c.clone(), u.clone());
        async move {
            let patch = format!(r#"{{"data":{{"key":"updated-{i}"}}}}"#);
            let req = hyper::Request::patch(format!("{u}/cm-{:06}", i % creates))
                .header("content-type", "application/merge-patch+json")
                .body(Full::new(Bytes::from(patch)))
                .expect("req");
            let resp = c.request(req).await.expect("patch");
            assert_eq!(resp.status().as_u16(), 200);
            let _ = resp.into_body().collect().await;
        }
    })
    .await;
    for w in watchers {
        let _ = tokio::time::timeout(Duration::from_secs(120), w).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let total = delivered.load(Ordering::Relaxed);
    println!(
        "watch fan-out: {:.0} events/s delivered to {WATCHERS} watchers ({total} events, {updates} updates, {elapsed:.2} s)",
        total as f64 / elapsed
    );
}
