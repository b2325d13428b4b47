//! Shared harness for end-to-end tests: a real `ironkube` process on a free
//! loopback port with its own data dir, and helpers to drive it with stock
//! kubectl and the `kube` crate. Nothing here sleeps to synchronise: waits poll
//! with a deadline.
#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const KUBECTL_132: &str = "/usr/bin/kubectl";

/// kubectl 1.34 as installed by `hack/install-kubectl.sh`.
pub fn kubectl_134() -> PathBuf {
    let dir = std::env::var("IRONKUBE_TOOLS_DIR").unwrap_or_else(|_| "/opt/ironkube-tools".into());
    PathBuf::from(dir).join("bin/kubectl-1.34")
}

pub struct Server {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub kubeconfig: PathBuf,
    pub extra: Vec<String>,
    pub env: Vec<(String, String)>,
    /// `server` (with controllers) or `apiserver` (the API server alone).
    pub command: &'static str,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Polls `f` until it returns `Some` or the deadline passes.
pub fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a server with extra `ironkube server` flags.
    pub fn start_with(extra: &[&str]) -> Server {
        Server::launch(tempfile::tempdir().expect("tempdir"), extra, &[])
    }

    /// Starts a server with extra flags and environment variables.
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::launch(tempfile::tempdir().expect("tempdir"), extra, env)
    }

    /// Starts `ironkube apiserver`: the API server alone, no controllers writing.
    pub fn start_apiserver(extra: &[&str]) -> Server {
        let mut s = Server::prepare(tempfile::tempdir().expect("tempdir"), extra, &[]);
        s.command = "apiserver";
        s.spawn();
        s
    }

    /// Starts a server on an existing data dir (e.g. one restored from a snapshot).
    pub fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Server {
        Server::launch(dir, extra, &[])
    }

    fn launch(dir: tempfile::TempDir, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut s = Server::prepare(dir, extra, env);
        s.spawn();
        s
    }

    fn prepare(dir: tempfile::TempDir, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server {
            child: None,
            port: free_port(),
            kubeconfig: dir.path().join("admin.kubeconfig"),
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            command: "server",
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts the process on the same data dir and port and waits until it serves.
    pub fn spawn(&mut self) {
        let _ = std::fs::remove_file(&self.kubeconfig);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_ironkube"))
            .args([self.command, "--data-dir"])
            .arg(self.dir.path())
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ironkube");
        self.child = Some(child);
        let url = format!("127.0.0.1:{}", self.port);
        poll("server to serve /readyz", Duration::from_secs(30), || {
            let ready = self.kubeconfig.exists()
                && trust_kubeconfig(&url, &self.kubeconfig)
                && raw_get(&url, "/readyz").is_some_and(|b| b.contains("ok"));
            ready.then_some(())
        });
    }

    /// `kill -9`, no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `127.0.0.1:PORT`, for the raw request helpers.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sends `body` as JSON with a raw HTTP/1.1 request.
    /// Sends `body` as JSON; `Value::Null` sends no body at all (a GET or
    /// DELETE). A body the server never reads would still be unread when it
    /// closes the connection, and the kernel would then reset it, cutting off
    /// a large response the test had not read yet.
    pub fn send_json(&self, method: &str, path: &str, body: &serde_json::Value) -> RawResponse {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        raw_request(&self.addr(), method, path, "application/json", &bytes)
    }

    /// A kubeconfig (written into `dir`) that trusts this server's CA and
    /// authenticates with the bearer `token` alone.
    pub fn token_kubeconfig(&self, dir: &Path, token: &str) -> PathBuf {
        let admin = std::fs::read_to_string(&self.kubeconfig).expect("admin kubeconfig");
        let ca = admin
            .lines()
            .find_map(|l| l.trim().strip_prefix("certificate-authority-data: "))
            .expect("CA data")
            .to_string();
        let tail: String = token.chars().rev().take(12).collect();
        let path = dir.join(format!("token-{}-{tail}.kubeconfig", token.len()));
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n",
                self.base_url()
            ),
        )
        .expect("write kubeconfig");
        path
    }

    pub fn base_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn kubectl(&self, kubectl: &Path) -> Kubectl {
        Kubectl {
            bin: kubectl.to_path_buf(),
            kubeconfig: self.kubeconfig.clone(),
        }
    }

    pub async fn client(&self) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("kubeconfig");
        let cfg =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .expect("config");
        kube::Client::try_from(cfg).expect("client")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- server log ---\n{}", self.log());
        }
        self.kill9();
    }
}

/// The TLS client configuration of each server this test process started,
/// by `127.0.0.1:PORT`: trusting its cluster CA, as its admin.
static ADMIN_TLS: std::sync::Mutex<Vec<(String, KnownServer)>> = std::sync::Mutex::new(Vec::new());

/// How to reach one server: its CA, and its admin's TLS configuration (built
/// once, reused by every raw request).
#[derive(Clone)]
struct KnownServer {
    roots: std::sync::Arc<rustls::RootCertStore>,
    admin: std::sync::Arc<rustls::ClientConfig>,
}

/// Who a raw request's TLS connection presents itself as.
pub enum As {
    /// The admin client certificate of the server's kubeconfig.
    Admin,
    /// No client certificate.
    Nobody,
    /// This certificate and key (PEM).
    Cert { cert_pem: String, key_pem: String },
}

fn client_config(
    roots: std::sync::Arc<rustls::RootCertStore>,
    cert: Option<(&[u8], &[u8])>,
) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots);
    let config = match cert {
        Some((cert, key)) => {
            let chain: Vec<_> = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<_, _>>()
                .expect("client certificate");
            let key = PrivateKeyDer::from_pem_slice(key).expect("client key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client certificate")
        }
        None => builder.with_no_client_auth(),
    };
    std::sync::Arc::new(config)
}

/// The base64 value of `key:` in our own kubeconfig's layout.
fn kubeconfig_field(text: &str, key: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let value = text
        .lines()
        .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix(": "))?;
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()
}

/// Remembers how to reach `addr` as the admin of `kubeconfig`; false while
/// the file is not complete yet.
pub fn trust_kubeconfig(addr: &str, kubeconfig: &Path) -> bool {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let Ok(text) = std::fs::read_to_string(kubeconfig) else {
        return false;
    };
    let (Some(ca), Some(cert), Some(key)) = (
        kubeconfig_field(&text, "certificate-authority-data"),
        kubeconfig_field(&text, "client-certificate-data"),
        kubeconfig_field(&text, "client-key-data"),
    ) else {
        return false;
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&ca) {
        roots.add(c.expect("CA certificate")).expect("add CA");
    }
    let roots = std::sync::Arc::new(roots);
    let known = KnownServer {
        admin: client_config(roots.clone(), Some((&cert, &key))),
        roots,
    };
    let mut all = ADMIN_TLS.lock().expect("lock");
    all.retain(|(a, _)| a != addr);
    all.push((addr.to_string(), known));
    true
}

fn tls_config(addr: &str, who: &As) -> std::io::Result<std::sync::Arc<rustls::ClientConfig>> {
    let known = ADMIN_TLS
        .lock()
        .expect("lock")
        .iter()
        .find(|(a, _)| a == addr)
        .map(|(_, k)| k.clone())
        .ok_or_else(|| std::io::Error::other(format!("no kubeconfig known for {addr}")))?;
    Ok(match who {
        As::Admin => known.admin,
        As::Nobody => client_config(known.roots, None),
        As::Cert { cert_pem, key_pem } => {
            client_config(known.roots, Some((cert_pem.as_bytes(), key_pem.as_bytes())))
        }
    })
}

/// A TLS connection to the server at `addr` (one this process started), as its admin.
pub fn tls_connect(
    addr: &str,
) -> std::io::Result<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>> {
    tls_connect_as(addr, &As::Admin)
}

/// A TLS connection to the server at `addr`, presenting `who`.
pub fn tls_connect_as(
    addr: &str,
    who: &As,
) -> std::io::Result<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>> {
    let config = tls_config(addr, who)?;
    let tcp = std::net::TcpStream::connect(addr)?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1")
        .map_err(std::io::Error::other)?
        .to_owned();
    let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    Ok(rustls::StreamOwned::new(conn, tcp))
}

/// [`tls_connect`] for async clients (WebSocket).
pub async fn tls_connect_async(
    addr: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    tls_connect_async_as(addr, &As::Admin).await
}

/// [`tls_connect_async`] presenting `who`.
pub async fn tls_connect_async_as(
    addr: &str,
    who: &As,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let config = tls_config(addr, who)?;
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1")
        .map_err(std::io::Error::other)?
        .to_owned();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// Reads until the server closes (a close without TLS close_notify still
/// keeps what was read).
fn read_all(s: &mut impl std::io::Read) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// A plain-HTTP/1.1 GET (etcd's client port in these tests has no TLS).
pub fn plain_get(addr: &str, path: &str) -> Option<String> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let out = read_all(&mut s);
    (!out.is_empty()).then(|| String::from_utf8_lossy(&out).into_owned())
}

/// A raw HTTP/1.1 GET over TLS (no client library), for readiness.
pub fn raw_get(addr: &str, path: &str) -> Option<String> {
    use std::io::Write;
    let mut s = tls_connect(addr).ok()?;
    s.sock.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let out = read_all(&mut s);
    (!out.is_empty()).then(|| String::from_utf8_lossy(&out).into_owned())
}

pub struct Kubectl {
    pub bin: PathBuf,
    pub kubeconfig: PathBuf,
}

pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            status: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Kubectl {
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("KUBECONFIG", &self.kubeconfig)
            .env_remove("KUBECTL_EXTERNAL_DIFF")
            .args(args);
        c
    }

    /// Runs kubectl; the result whatever the exit code.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run kubectl"))
    }

    /// Runs kubectl with `stdin` as standard input.
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kubectl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        Run::from(child.wait_with_output().expect("kubectl output"))
    }

    /// Runs kubectl and returns stdout, failing the test on a non-zero exit.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.status, 0,
            "kubectl {args:?} failed: {}{}",
            r.stdout, r.stderr
        );
        r.stdout
    }

    pub fn ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        let r = self.run_stdin(args, stdin);
        assert_eq!(
            r.status, 0,
            "kubectl {args:?} failed: {}{}",
            r.stdout, r.stderr
        );
        r.stdout
    }
}

/// Splits kubectl table output into cells (columns are separated by two or more
/// spaces) and replaces ages such as "0s" or "3m4s" with "<age>", so tables can be
/// compared exactly whatever the timing.
pub fn table(s: &str) -> Vec<Vec<String>> {
    let is_age = |t: &str| {
        !t.is_empty()
            && t.chars().next().is_some_and(|c| c.is_ascii_digit())
            && t.chars().all(|c| c.is_ascii_digit() || "smhdy".contains(c))
            && t.chars().any(|c| "smhdy".contains(c))
    };
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(|c| {
                    if is_age(c) {
                        "<age>".to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        })
        .collect()
}

/// `table` of an expected table written with single `|` separators.
pub fn expect_table(rows: &[&str]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| r.split('|').map(|c| c.trim().to_string()).collect())
        .collect()
}

/// A response read by [`raw_request`].
pub struct RawResponse {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl RawResponse {
    /// Reads a whole HTTP/1.1 response (the server closes the connection).
    pub fn read(s: &mut impl std::io::Read) -> RawResponse {
        let out = read_all(s);
        let text = String::from_utf8_lossy(&out).into_owned();
        let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = headers
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        RawResponse {
            status,
            headers: headers.to_string(),
            body: body.to_string(),
        }
    }

    /// The value of a response header (first occurrence, case-insensitive name).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request over a fresh socket, with no client library in between:
/// what goes on the wire is exactly what the test wrote.
pub fn raw_request(
    addr: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> RawResponse {
    raw_request_with(
        addr,
        method,
        path,
        &[
            ("Content-Type", content_type),
            ("Accept", "application/json"),
        ],
        body,
    )
}

/// [`raw_request`] with explicit headers.
pub fn raw_request_with(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    raw_request_as(addr, &As::Admin, method, path, headers, body)
}

/// [`raw_request_with`] over a connection presenting `who`.
pub fn raw_request_as(
    addr: &str,
    who: &As,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    use std::io::Write;
    let mut s = tls_connect_as(addr, who).expect("connect");
    s.sock
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write head");
    // The server may answer (e.g. 413) before reading the whole body.
    let _ = s.write_all(body);
    let _ = s.flush();
    RawResponse::read(&mut s)
}

/// Newline-delimited JSON frames of a streaming response (a watch).
pub struct JsonLines {
    body: kube::client::Body,
    buf: Vec<u8>,
    pub status: u16,
}

/// Opens a GET whose response streams (e.g. `?watch=true`), through the `kube` client.
pub async fn stream_get(client: &kube::Client, path: &str, accept: &str) -> JsonLines {
    let req = http::Request::get(path)
        .header("accept", accept)
        .body(kube::client::Body::empty())
        .expect("request");
    let resp = client.send(req).await.expect("send");
    JsonLines {
        status: resp.status().as_u16(),
        body: resp.into_body(),
        buf: Vec::new(),
    }
}

impl JsonLines {
    /// The next frame, or `None` when the stream ended; panics after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<serde_json::Value> {
        use http_body_util::BodyExt;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Some(serde_json::from_slice(&line).expect("frame is JSON"));
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .expect("frame before the deadline");
            match frame {
                Some(Ok(f)) => {
                    if let Some(d) = f.data_ref() {
                        self.buf.extend_from_slice(d);
                    }
                }
                _ => return None,
            }
        }
    }
}

/// A real etcd (Debian's `etcd`) on free loopback ports with its own data dir.
pub struct Etcd {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    peer_port: u16,
}

impl Etcd {
    /// An etcd whose data dir is restored (`etcdctl snapshot restore`) from `snapshot`.
    pub fn from_snapshot(snapshot: &Path) -> Etcd {
        let mut e = Etcd {
            child: None,
            dir: tempfile::tempdir().expect("tempdir"),
            port: free_port(),
            peer_port: free_port(),
        };
        let peer = format!("http://127.0.0.1:{}", e.peer_port);
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["snapshot", "restore"])
            .arg(snapshot)
            .arg("--data-dir")
            .arg(e.dir.path().join("data"))
            .args([
                "--name",
                "test",
                "--initial-cluster",
                &format!("test={peer}"),
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .output()
            .expect("run etcdctl");
        assert!(
            out.status.success(),
            "etcdctl snapshot restore: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        e.spawn();
        e
    }

    pub fn start() -> Etcd {
        let mut e = Etcd {
            child: None,
            dir: tempfile::tempdir().expect("tempdir"),
            port: free_port(),
            peer_port: free_port(),
        };
        e.spawn();
        e
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The current revision, as `etcdctl endpoint status` reports it.
    pub fn revision(&self) -> u64 {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args([
                "--endpoints",
                &self.url(),
                "endpoint",
                "status",
                "-w",
                "json",
            ])
            .output()
            .expect("run etcdctl");
        assert!(
            out.status.success(),
            "etcdctl endpoint status: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        v[0]["Status"]["header"]["revision"]
            .as_u64()
            .expect("revision")
    }

    /// Starts etcd on the same data dir and ports, waiting until it answers.
    pub fn spawn(&mut self) {
        let bin = std::env::var("IRONKUBE_ETCD").unwrap_or_else(|_| "/usr/bin/etcd".into());
        assert!(
            Path::new(&bin).exists(),
            "etcd missing at {bin}: run hack/install-deps.sh"
        );
        let child = Command::new(&bin)
            .args(["--name", "test", "--data-dir"])
            .arg(self.dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &self.url(),
                "--advertise-client-urls",
                &self.url(),
            ])
            .args([
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{}", self.peer_port),
            ])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{}", self.peer_port),
            ])
            .args([
                "--initial-cluster",
                &format!("test=http://127.0.0.1:{}", self.peer_port),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn etcd");
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        poll("etcd to answer /health", Duration::from_secs(30), || {
            plain_get(&addr, "/health")
                .is_some_and(|b| {
                    b.contains("\"health\":\"true\"") || b.contains("\"health\": \"true\"")
                })
                .then_some(())
        });
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs the `ironkube` binary with `args`; returns stdout, failing on a non-zero exit.
pub fn ironkube(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ironkube"))
        .args(args)
        .output()
        .expect("run ironkube");
    assert!(
        out.status.success(),
        "ironkube {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls an async `f` until it returns `Some`, failing the test after `timeout`.
pub async fn poll_async<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The resourceVersion of a fresh list: where a watch starts to see every later change.
pub async fn list_rv<K>(api: &kube::Api<K>) -> String
where
    K: Clone + for<'de> k8s_openapi::serde::Deserialize<'de> + std::fmt::Debug,
{
    api.list(&kube::api::ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("list resourceVersion")
}
