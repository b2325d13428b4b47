//! The reference API server: upstream's `kube-apiserver` on its own etcd, both
//! on loopback with throwaway directories.
//!
//! It authenticates one static bearer token (in `system:masters`) and allows
//! every request (`--authorization-mode=AlwaysAllow`), serves TLS with a
//! certificate signed by a CA made for the run (openssl), and uses the same
//! service CIDR as ironkube (10.96.0.0/12) so that both hand out the same
//! `kubernetes` Service address. A kubeconfig for the `admin` context is written
//! beside it, usable by kubectl and the `kube` crate alike.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thiserror::Error;

/// The bearer token the reference API server accepts.
pub const TOKEN: &str = "ironkube-reference-admin-token";

/// How long the reference API server may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, Error)]
pub enum ReferenceError {
    #[error("kube-apiserver not found at {0} (build it with `hack/conformance build`)")]
    MissingBinary(PathBuf),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{0}` failed")]
    Command(String),
    #[error("{what} did not become ready within {timeout:?}; its log: {log}")]
    NotReady {
        what: &'static str,
        timeout: Duration,
        log: PathBuf,
    },
}

type Result<T> = std::result::Result<T, ReferenceError>;

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ReferenceError {
    let what = what.into();
    move |source| ReferenceError::Io { what, source }
}

/// Where `hack/conformance build` puts `kube-apiserver` (override with
/// `KUBE_APISERVER`).
pub fn kube_apiserver_binary() -> PathBuf {
    std::env::var_os("KUBE_APISERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("_build/kube-apiserver"))
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// A child process killed (and reaped) when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's etcd on two loopback ports with its own data dir.
pub struct Etcd {
    process: Process,
    pub url: String,
}

impl Etcd {
    /// Starts etcd under `dir` and waits until its client port accepts connections.
    pub fn start(dir: &Path) -> Result<Etcd> {
        let (port, peer) = (free_port(), free_port());
        let url = format!("http://127.0.0.1:{port}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = dir.join("etcd.log");
        let log_file = std::fs::File::create(&log).map_err(io("create etcd.log"))?;
        let child = Command::new("/usr/bin/etcd")
            .args(["--name", "reference", "--data-dir"])
            .arg(dir.join("etcd"))
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("reference={peer_url}")])
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(io("start /usr/bin/etcd (hack/install-etcd.sh installs it)"))?;
        let process = Process(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(ReferenceError::NotReady {
                    what: "etcd",
                    timeout: READY_TIMEOUT,
                    log,
                });
            }
            std::thread::park_timeout(Duration::from_millis(20));
        }
        Ok(Etcd { process, url })
    }

    pub fn pid(&self) -> u32 {
        self.process.0.id()
    }
}

/// The reference `kube-apiserver` with its etcd.
pub struct ReferenceApiServer {
    apiserver: Process,
    etcd: Etcd,
    pub url: String,
    pub kubeconfig: PathBuf,
    pub ca_pem: Vec<u8>,
    dir: tempfile::TempDir,
}

impl ReferenceApiServer {
    /// Starts etcd and `kube-apiserver`; returns once `/readyz` answers 200.
    pub fn start() -> Result<ReferenceApiServer> {
        let binary = kube_apiserver_binary();
        if !binary.is_file() {
            return Err(ReferenceError::MissingBinary(binary));
        }
        let dir = tempfile::tempdir().map_err(io("temp dir"))?;
        let d = dir.path();
        write_certificates(d)?;
        std::fs::write(
            d.join("tokens.csv"),
            format!("{TOKEN},reference-admin,reference-admin,\"system:masters\"\n"),
        )
        .map_err(io("write tokens.csv"))?;
        let etcd = Etcd::start(d)?;
        let port = free_port();
        let url = format!("https://127.0.0.1:{port}");
        let log = d.join("kube-apiserver.log");
        let log_file = std::fs::File::create(&log).map_err(io("create kube-apiserver.log"))?;
        let path = |name: &str| d.join(name).display().to_string();
        let child = Command::new(&binary)
            .arg(format!("--etcd-servers={}", etcd.url))
            .arg("--bind-address=127.0.0.1")
            .arg("--advertise-address=127.0.0.1")
            .arg(format!("--secure-port={port}"))
            .arg(format!("--cert-dir={}", path("certs")))
            .arg(format!("--tls-cert-file={}", path("server.crt")))
            .arg(format!("--tls-private-key-file={}", path("server.key")))
            .arg(format!("--client-ca-file={}", path("ca.crt")))
            .arg(format!("--token-auth-file={}", path("tokens.csv")))
            .arg("--authorization-mode=AlwaysAllow")
            .arg("--service-cluster-ip-range=10.96.0.0/12")
            .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            .arg(format!("--service-account-key-file={}", path("sa.key")))
            .arg(format!(
                "--service-account-signing-key-file={}",
                path("sa.key")
            ))
            .arg("--v=1")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(io(format!("start {}", binary.display())))?;
        let apiserver = Process(child);
        let ca_pem = std::fs::read(d.join("ca.crt")).map_err(io("read ca.crt"))?;
        let kubeconfig = d.join("admin.kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_yaml(&url, &ca_pem))
            .map_err(io("write kubeconfig"))?;
        let server = ReferenceApiServer {
            apiserver,
            etcd,
            url,
            kubeconfig,
            ca_pem,
            dir,
        };
        server.wait_ready(&log)?;
        Ok(server)
    }

    /// Polls `/readyz` with curl (installed by `hack/install-deps.sh`) until
    /// it answers 200.
    fn wait_ready(&self, log: &Path) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let ca = self.dir.path().join("ca.crt");
        loop {
            let ok = Command::new("curl")
                .args(["-sf", "-o", "/dev/null", "--cacert"])
                .arg(&ca)
                .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
                .arg(format!("{}/readyz", self.url))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(ReferenceError::NotReady {
                    what: "kube-apiserver",
                    timeout: READY_TIMEOUT,
                    log: log.to_path_buf(),
                });
            }
            std::thread::park_timeout(Duration::from_millis(200));
        }
    }

    pub fn pid(&self) -> u32 {
        self.apiserver.0.id()
    }

    pub fn etcd(&self) -> &Etcd {
        &self.etcd
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A CA, a serving certificate for 127.0.0.1/localhost signed by it, and the
/// service-account signing key, made with the openssl command line.
fn write_certificates(dir: &Path) -> Result<()> {
    let ext = dir.join("server.ext");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(io("write server.ext"))?;
    let steps: [&[&str]; 4] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=ironkube-reference-ca",
            "-days",
            "2",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=kube-apiserver",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
        &["genrsa", "-out", "sa.key", "2048"],
    ];
    for args in steps {
        let ok = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(io("run openssl"))?
            .success();
        if !ok {
            return Err(ReferenceError::Command(format!(
                "openssl {}",
                args.join(" ")
            )));
        }
    }
    Ok(())
}

fn kubeconfig_yaml(url: &str, ca_pem: &[u8]) -> String {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: reference\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\nusers:\n- name: admin\n  user:\n    token: {TOKEN}\ncontexts:\n- name: reference\n  context:\n    cluster: reference\n    user: admin\ncurrent-context: reference\n"
    )
}
