//! What the kubelet's end-to-end tests on a real containerd share: starting
//! containerd (`hack/containerd.sh start`) and importing the test images
//! (`hack/conformance images`) once per binary, an [`Env`] of one API
//! server and one kubelet whose sandboxes are removed on drop, and polling
//! with a deadline.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Node, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kubelet::cri::{Runtime, v1};

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

pub const SOCKET: &str = "/run/containerd/containerd.sock";
pub const BUSYBOX: &str = "registry.k8s.io/e2e-test-images/busybox:1.37.0-1";
const PAUSE: &str = "registry.k8s.io/pause:3.10.1";
/// Every test kubelet shares the one containerd, and so its CNI network.
pub const POD_CIDR: &str = "10.244.0.0/24";
pub const DEADLINE: Duration = Duration::from_secs(90);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

static SETUP: Mutex<bool> = Mutex::new(false);

/// Starts containerd and imports the images, once per test binary.
pub async fn ensure_containerd() -> TestResult<Runtime> {
    {
        let mut done = SETUP.lock().unwrap_or_else(|p| p.into_inner());
        if !*done {
            let status = Command::new("bash")
                .arg(repo_root().join("hack/containerd.sh"))
                .arg("start")
                .status()?;
            assert!(status.success(), "hack/containerd.sh start failed");
            *done = true;
        }
    }
    let runtime = Runtime::connect(Path::new(SOCKET)).await?;
    for image in [BUSYBOX, PAUSE] {
        let present = runtime
            .images
            .clone()
            .image_status(v1::ImageStatusRequest {
                image: Some(v1::ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                verbose: false,
            })
            .await?
            .into_inner()
            .image
            .is_some();
        if !present {
            let _guard = SETUP.lock().unwrap_or_else(|p| p.into_inner());
            let status = Command::new("bash")
                .arg(repo_root().join("hack/conformance"))
                .arg("images")
                .status()?;
            assert!(status.success(), "hack/conformance images failed");
        }
    }
    Ok(runtime)
}

/// One API server and one kubelet named `node`; dropping it stops the
/// kubelet and removes every sandbox it created.
pub struct Env {
    pub client: kube::Client,
    pub node: String,
    /// The kubelet's root directory.
    pub root: PathBuf,
    kubelet: tokio::task::JoinHandle<()>,
    accounts: tokio::task::JoinHandle<()>,
    _server: apiserver::testing::TestServer,
    _dir: tempfile::TempDir,
}

impl Env {
    pub async fn start(node: &str) -> TestResult<Self> {
        Self::start_with(node, |_| {}).await
    }

    /// As [`Env::start`], with the kubelet's config adjusted by `tweak`.
    pub async fn start_with(
        node: &str,
        tweak: impl FnOnce(&mut kubelet::Config),
    ) -> TestResult<Self> {
        ensure_containerd().await?;
        let dir = tempfile::tempdir()?;
        let server = apiserver::testing::spawn(dir.path()).await?;
        let client = admin_client(&server.kubeconfig).await?;
        // Pods get the `default` account's token volume (ServiceAccount
        // admission); its controller creates the account and the CA bundle.
        let accounts = tokio::spawn(controllers::serviceaccount::run(client.clone()));
        let root = dir.path().join("kubelet");
        let mut config = kubelet::Config::new(node, &root);
        config.runtime_endpoint = PathBuf::from(SOCKET);
        config.pod_cidr = Some(POD_CIDR.into());
        config.port = 0;
        config.lease_interval = Duration::from_secs(1);
        tweak(&mut config);
        std::fs::create_dir_all(&config.root_dir)?;
        let kc = client.clone();
        let kubelet = tokio::spawn(async move {
            if let Err(e) = kubelet::run(kc, config).await {
                panic!("kubelet failed: {e}");
            }
        });
        Ok(Self {
            client,
            node: node.into(),
            root,
            kubelet,
            accounts,
            _server: server,
            _dir: dir,
        })
    }

    /// The kubelet's HTTP port, once its Node reports it.
    pub async fn kubelet_port(&self) -> TestResult<i32> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        eventually("the kubelet's port", || async {
            nodes
                .get_opt(&self.node)
                .await
                .ok()
                .flatten()?
                .status?
                .daemon_endpoints?
                .kubelet_endpoint
                .map(|e| e.port)
                .filter(|p| *p > 0)
        })
        .await
    }

    /// A container's log through the kubelet's `/containerLogs`.
    pub async fn log(&self, pod: &str, container: &str) -> TestResult<String> {
        let port = self.kubelet_port().await?;
        http_get(port, &format!("/containerLogs/default/{pod}/{container}")).await
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    pub async fn create(&self, pod: Pod) -> TestResult<Pod> {
        Ok(self.pods().create(&PostParams::default(), &pod).await?)
    }

    /// Polls the pod until `check` holds; the error shows its last status.
    pub async fn wait_pod(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&Pod) -> bool,
    ) -> TestResult<Pod> {
        let api = self.pods();
        let last = Mutex::new(None);
        let found = eventually(what, || {
            let api = api.clone();
            let last = &last;
            let check = &check;
            async move {
                let pod = api.get_opt(name).await.ok().flatten()?;
                let ok = check(&pod);
                *last.lock().unwrap_or_else(|p| p.into_inner()) = Some(pod.status.clone());
                ok.then_some(pod)
            }
        })
        .await;
        found.map_err(|e| {
            format!(
                "{e}; last status: {:?}",
                last.lock().unwrap_or_else(|p| p.into_inner())
            )
            .into()
        })
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.kubelet.abort();
        self.accounts.abort();
        let node = self.node.clone();
        // A runtime of its own: Drop may run inside or outside the test's.
        let cleaned = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(remove_sandboxes(&node))
                .map_err(|e| e.to_string())
        })
        .join();
        if let Ok(Err(e)) = cleaned {
            eprintln!("cleaning up sandboxes of {}: {e}", self.node);
        }
    }
}

async fn remove_sandboxes(node: &str) -> TestResult {
    let runtime = Runtime::connect(Path::new(SOCKET)).await?;
    let mut client = runtime.runtime.clone();
    let sandboxes = client
        .list_pod_sandbox(v1::ListPodSandboxRequest {
            filter: Some(v1::PodSandboxFilter {
                label_selector: HashMap::from([(
                    "ironkube.dev/node".to_string(),
                    node.to_string(),
                )]),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .items;
    for s in sandboxes {
        client
            .stop_pod_sandbox(v1::StopPodSandboxRequest {
                pod_sandbox_id: s.id.clone(),
            })
            .await?;
        client
            .remove_pod_sandbox(v1::RemovePodSandboxRequest {
                pod_sandbox_id: s.id,
            })
            .await?;
    }
    Ok(())
}

/// Polls `check` every 200 ms until it yields a value or [`DEADLINE`] passes.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> TestResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if start.elapsed() > DEADLINE {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A pod of one busybox container `main` running `sh -c script`.
pub fn busybox_pod(name: &str, node: &str, policy: &str, script: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some(node.into()),
            restart_policy: Some(policy.into()),
            termination_grace_period_seconds: Some(5),
            containers: vec![Container {
                name: "main".into(),
                image: Some(BUSYBOX.into()),
                image_pull_policy: Some("IfNotPresent".into()),
                command: Some(vec!["sh".into(), "-c".into(), script.into()]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

pub fn main_status(pod: &Pod) -> Option<&ContainerStatus> {
    pod.status.as_ref()?.container_statuses.as_ref()?.first()
}

pub fn condition(pod: &Pod, ty: &str) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == ty)
        .map(|c| c.status.clone())
}

/// A minimal HTTP/1.0 GET against the kubelet on loopback.
pub async fn http_get(port: i32, path: &str) -> TestResult<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let port = u16::try_from(port)?;
    let mut stream = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await?;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or("no HTTP body")?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(format!("GET {path}: {head}").into());
    }
    Ok(body.to_string())
}

impl Env {
    /// The admin kubeconfig, for clients such as kubectl.
    pub fn kubeconfig(&self) -> &Path {
        &self._server.kubeconfig
    }
}

/// As [`http_get`], returning the status code and body of any answer.
pub async fn http_get_status(port: i32, path: &str) -> TestResult<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let port = u16::try_from(port)?;
    let mut stream = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").ok_or("no HTTP body")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("GET {path}: bad status line {head}"))?;
    Ok((code, body.to_string()))
}

/// Stock kubectl against a test API server: the 1.32 and 1.34 binaries,
/// run with a kubeconfig for [`Env::api_url`] in namespace `default`.
pub mod kubectl {
    use std::path::{Path, PathBuf};
    use std::process::Stdio;

    use super::{DEADLINE, TestResult};

    pub const KUBECTL_132: &str = "/usr/bin/kubectl";

    pub fn kubectl_134() -> PathBuf {
        let dir =
            std::env::var("IRONKUBE_TOOLS_DIR").unwrap_or_else(|_| "/opt/ironkube-tools".into());
        PathBuf::from(dir).join("bin/kubectl-1.34")
    }

    /// What one kubectl run printed.
    pub struct Output {
        pub status: i32,
        pub stdout: String,
        pub stderr: String,
    }

    pub struct Kubectl {
        pub bin: PathBuf,
        pub kubeconfig: PathBuf,
    }

    impl Kubectl {
        /// Both kubectls, with the test server's admin kubeconfig.
        pub fn both(kubeconfig: &Path) -> TestResult<Vec<Self>> {
            let kubeconfig = kubeconfig.to_path_buf();
            Ok([PathBuf::from(KUBECTL_132), kubectl_134()]
                .into_iter()
                .map(|bin| Self {
                    bin,
                    kubeconfig: kubeconfig.clone(),
                })
                .collect())
        }

        pub async fn run(&self, args: &[&str]) -> TestResult<Output> {
            let child = tokio::process::Command::new(&self.bin)
                .env("KUBECONFIG", &self.kubeconfig)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()?;
            let out = tokio::time::timeout(DEADLINE, child.wait_with_output()).await??;
            Ok(Output {
                status: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }

        /// Runs kubectl and requires success; the error shows its stderr.
        pub async fn ok(&self, args: &[&str]) -> TestResult<String> {
            let r = self.run(args).await?;
            if r.status != 0 {
                return Err(format!(
                    "{} {args:?} exited {}: {}",
                    self.bin.display(),
                    r.status,
                    r.stderr
                )
                .into());
            }
            Ok(r.stdout)
        }
    }
}

/// A client of the test API server as its admin.
pub async fn admin_client(kubeconfig: &Path) -> TestResult<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await?;
    Ok(kube::Client::try_from(config)?)
}
