//! API server benchmark on loopback: creates/s and gets/s of small ConfigMaps
//! with 32 concurrent clients (p50/p99 of each), list of 10,000 ConfigMaps
//! (p99), watch fan-out to 100 watchers (events/s delivered), and the API
//! server's RSS with 10,000 ConfigMaps stored.
//!
//! Run with `hack/bench` (or `cargo bench --bench api`). Sizes can be scaled down
//! with IRONKUBE_BENCH_SCALE (e.g. 0.1) for a quick look, and
//! IRONKUBE_BENCH_COMMAND=apiserver measures the API server without the
//! controllers of `ironkube server` (whose watches cost a little per write). Modes:
//!
//! - no flag: a release `ironkube server` on the embedded store;
//! - `--etcd`: the same on a real etcd (Debian's, on loopback), followed by etcd's
//!   raw put and create-if-absent txn rates from the same number of clients, with
//!   the ratios and the CPU each process spent per operation;
//! - `--side-by-side`: the same load, in one run, against upstream's reference
//!   `kube-apiserver` on etcd (built by `hack/conformance build`), then ironkube
//!   on the embedded store and on etcd, printing ironkube / reference ratios.
//!   The reference serves only TLS with a bearer token (that is how it runs);
//!   ironkube is spoken to in plain HTTP. Both are HTTP/1.1 with one pooled
//!   connection per client.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use conformance::reference::{self, Etcd, ReferenceApiServer};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

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
    dir: tempfile::TempDir,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(extra: &[&str]) -> ServerProcess {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = reference::free_port();
    let bin = std::env::var("IRONKUBE_BIN").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/ironkube").to_string()
    });
    // The same bearer-token authentication as the reference server's.
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(
        &tokens,
        format!("{},admin,admin,\"system:masters\"\n", reference::TOKEN),
    )
    .expect("write tokens.csv");
    let child = Command::new(bin)
        .arg(std::env::var("IRONKUBE_BENCH_COMMAND").unwrap_or_else(|_| "server".into()))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--token-auth-file")
        .arg(&tokens)
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
    ServerProcess { child, port, dir }
}

/// An API server under load: where it listens, how to authenticate, and its
/// process (for RSS and CPU).
struct Target {
    base: String,
    token: Option<String>,
    pid: u32,
    client: HttpClient,
}

impl Target {
    fn new(base: String, token: Option<String>, pid: u32, ca_pem: Option<&[u8]>) -> Target {
        Target {
            base,
            token,
            pid,
            client: http_client(ca_pem),
        }
    }

    fn configmaps(&self) -> String {
        format!("{}/api/v1/namespaces/default/configmaps", self.base)
    }

    fn request(&self, method: &str, url: &str) -> hyper::http::request::Builder {
        let b = hyper::Request::builder().method(method).uri(url);
        match &self.token {
            Some(t) => b.header("authorization", format!("Bearer {t}")),
            None => b,
        }
    }

    async fn send(&self, method: &str, url: &str, body: Option<(&str, String)>) -> (u16, Bytes) {
        let mut b = self
            .request(method, url)
            .header("accept", "application/json");
        let payload = match body {
            Some((content_type, body)) => {
                b = b.header("content-type", content_type);
                Bytes::from(body)
            }
            None => Bytes::new(),
        };
        let req = b.body(Full::new(payload)).expect("request");
        let resp = self.client.request(req).await.expect("response");
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (status, bytes)
    }
}

/// An HTTP/1.1 client for plain HTTP, and for HTTPS trusting `ca_pem` alone.
fn http_client(ca_pem: Option<&[u8]>) -> HttpClient {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in ca_pem
        .map(|pem| CertificateDer::pem_slice_iter(pem).collect::<Vec<_>>())
        .unwrap_or_default()
    {
        roots.add(cert.expect("CA certificate")).expect("add CA");
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(CLIENTS + WATCHERS)
        .build(connector)
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

/// What one run measured on one API server.
struct Figures {
    create_rate: f64,
    create_p99: Duration,
    /// CPU microseconds the API server spent per create.
    create_cpu_us: f64,
    get_rate: f64,
    get_p99: Duration,
    list_p99: Duration,
    watch_rate: f64,
    rss_mib: f64,
}

/// Runs the whole load against `t`, printing each figure as it is measured.
async fn measure(t: Arc<Target>) -> Figures {
    let cm_url = t.configmaps();

    // Creates: 10,000 small ConfigMaps (these also make the list and RSS data set).
    let creates = scale(10_000);
    let cpu_before = cpu_seconds(t.pid);
    let (tc, u) = (t.clone(), cm_url.clone());
    let (create_rate, create_lat) = load(creates, move |i| {
        let (tc, u) = (tc.clone(), u.clone());
        async move {
            let body = format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm-{i:06}"}},"data":{{"key":"value-{i}"}}}}"#);
            let (status, body) = tc.send("POST", &u, Some(("application/json", body))).await;
            assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        }
    })
    .await;
    let create_cpu_us = (cpu_seconds(t.pid) - cpu_before) * 1e6 / creates as f64;
    println!(
        "creates/s: {create_rate:.0}  p50 {:.2} ms  p99 {:.2} ms  ({creates} creates, {CLIENTS} clients; API server CPU {create_cpu_us:.0} us per create)",
        ms(percentile(&create_lat, 0.5)),
        ms(percentile(&create_lat, 0.99))
    );

    let gets = scale(100_000);
    let (tc, u) = (t.clone(), cm_url.clone());
    let (get_rate, get_lat) = load(gets, move |i| {
        let (tc, u) = (tc.clone(), u.clone());
        async move {
            let url = format!("{u}/cm-{:06}", i % creates);
            let (status, _) = tc.send("GET", &url, None).await;
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
        let start = Instant::now();
        let (status, body) = t.send("GET", &cm_url, None).await;
        list_lat.push(start.elapsed());
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
    let rss = rss_mib(t.pid);
    println!("server RSS with {creates} ConfigMaps: {rss:.1} MiB");

    let watch_rate = watch_fan_out(t.clone(), creates).await;
    Figures {
        create_rate,
        create_p99: percentile(&create_lat, 0.99),
        create_cpu_us,
        get_rate,
        get_p99: percentile(&get_lat, 0.99),
        list_p99: percentile(&list_lat, 0.99),
        watch_rate,
        rss_mib: rss,
    }
}

/// WATCHERS watches from one resourceVersion, then updates of the ConfigMaps;
/// returns the events delivered per second, all watchers together.
async fn watch_fan_out(t: Arc<Target>, creates: usize) -> f64 {
    let cm_url = t.configmaps();
    let rv = {
        let (_, body) = t.send("GET", &format!("{cm_url}?limit=1"), None).await;
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
        let tc = t.clone();
        let delivered = delivered.clone();
        watchers.push(tokio::spawn(async move {
            let req = tc
                .request("GET", &url)
                .body(Full::new(Bytes::new()))
                .expect("req");
            let mut body = tc.client.request(req).await.expect("watch").into_body();
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
    let (tc, u) = (t.clone(), cm_url.clone());
    load(updates, move |i| {
        let (tc, u) = (tc.clone(), u.clone());
        async move {
            let patch = format!(r#"{{"data":{{"key":"updated-{i}"}}}}"#);
            let url = format!("{u}/cm-{:06}", i % creates);
            let (status, _) = tc
                .send("PATCH", &url, Some(("application/merge-patch+json", patch)))
                .await;
            assert_eq!(status, 200);
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
    total as f64 / elapsed
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

fn ironkube_target(server: &ServerProcess) -> Arc<Target> {
    let ca = std::fs::read(server.dir.path().join("pki/ca.crt")).expect("cluster CA");
    Arc::new(Target::new(
        format!("https://127.0.0.1:{}", server.port),
        Some(reference::TOKEN.to_string()),
        server.child.id(),
        Some(&ca),
    ))
}

/// `--etcd`: ironkube on etcd, then etcd's raw write rates beside it.
async fn bench_on_etcd() {
    let dir = tempfile::tempdir().expect("tempdir");
    let etcd = Etcd::start(dir.path()).expect("start etcd (hack/install-deps.sh installs it)");
    let server = start_server(&["--etcd-servers", &etcd.url]);
    let figures = measure(ironkube_target(&server)).await;
    let creates = scale(10_000);
    for (what, conditional) in [("puts", false), ("create-if-absent txns", true)] {
        let cpu_before = cpu_seconds(etcd.pid());
        let (raw_rate, raw_lat) = raw_etcd_writes(&etcd.url, creates, conditional).await;
        let etcd_cpu_us = (cpu_seconds(etcd.pid()) - cpu_before) * 1e6 / creates as f64;
        println!(
            "raw etcd {what}/s: {raw_rate:.0}  p50 {:.2} ms  p99 {:.2} ms  ({creates} writes, {CLIENTS} clients; etcd CPU {etcd_cpu_us:.0} us per write); API server creates reach {:.0}% of it",
            ms(percentile(&raw_lat, 0.5)),
            ms(percentile(&raw_lat, 0.99)),
            100.0 * figures.create_rate / raw_rate
        );
    }
}

/// A row of the side-by-side table: its name and how to read it off the figures.
type Row = (&'static str, fn(&Figures) -> f64);

/// `--side-by-side`: the reference kube-apiserver, ironkube embedded and
/// ironkube on etcd, one after the other in one run; then the ratios.
async fn bench_side_by_side() {
    println!("== reference kube-apiserver (upstream v1.34, on etcd)");
    let reference = ReferenceApiServer::start().expect("start the reference kube-apiserver");
    let target = Arc::new(Target::new(
        reference.url.clone(),
        Some(reference::TOKEN.to_string()),
        reference.pid(),
        Some(&reference.ca_pem),
    ));
    let upstream = measure(target).await;
    drop(reference);

    println!("== ironkube, embedded store");
    let server = start_server(&[]);
    let embedded = measure(ironkube_target(&server)).await;
    drop(server);

    println!("== ironkube, on etcd");
    let dir = tempfile::tempdir().expect("tempdir");
    let etcd = Etcd::start(dir.path()).expect("start etcd");
    let server = start_server(&["--etcd-servers", &etcd.url]);
    let on_etcd = measure(ironkube_target(&server)).await;
    drop(server);

    println!();
    println!("ironkube / reference (higher is better for rates, lower for latency and RSS):");
    println!(
        "{:<24} {:>12} {:>12} {:>12} {:>9} {:>9}",
        "figure", "reference", "embedded", "etcd", "emb/ref", "etcd/ref"
    );
    let rows: [Row; 8] = [
        ("creates/s", |f| f.create_rate),
        ("create p99 ms", |f| ms(f.create_p99)),
        ("CPU us per create", |f| f.create_cpu_us),
        ("gets/s", |f| f.get_rate),
        ("get p99 ms", |f| ms(f.get_p99)),
        ("list p99 ms", |f| ms(f.list_p99)),
        ("watch events/s", |f| f.watch_rate),
        ("RSS MiB", |f| f.rss_mib),
    ];
    for (name, get) in rows {
        let (r, e, d) = (get(&upstream), get(&embedded), get(&on_etcd));
        println!(
            "{name:<24} {r:>12.1} {e:>12.1} {d:>12.1} {:>9.2} {:>9.2}",
            e / r,
            d / r
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--side-by-side") {
        bench_side_by_side().await;
    } else if args.iter().any(|a| a == "--etcd") {
        println!("backend: etcd");
        bench_on_etcd().await;
    } else {
        println!("backend: embedded");
        let server = start_server(&[]);
        measure(ironkube_target(&server)).await;
    }
}
