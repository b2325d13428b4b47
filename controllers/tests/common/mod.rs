//! The harness shared by the controller tests: a real in-process API server
//! on a loopback port, a `kube` client to it, and, when a test needs pods to
//! run, the scheduler and ironkube's kwok-style FAKE nodes (which report the
//! pods bound to them Running and Ready, Job pods Succeeded, as kwok does).
//! Tests never write a status that a controller or a node would write: to
//! make a pod fail, stay unready or finish later, they give it the fake
//! node's `fake.ironkube.dev/*` annotations (see `kubelet::fake`), on the
//! template or, to steer a running pod, on the pod itself with [`annotate`].
// Each test binary uses its own part of the harness, and `pub` here means
// "for the test files", which the crate-level lint cannot see.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};

/// The fake node's pod annotations (documented in `kubelet::fake`).
#[allow(unused_imports)] // each test binary names those it uses
pub use kubelet::fake::{EXIT_CODE, PHASE_AFTER, READY, RUN_FOR};

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// How long `eventually` waits before failing the test.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The namespace every API server starts with.
pub const NS: &str = "default";

/// A running API server and a client to it; dropping it stops the server
/// (the components spawned for it end with the test's runtime).
pub struct Cluster {
    pub client: kube::Client,
    _server: apiserver::testing::TestServer,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// An API server with nothing else running.
    pub async fn start() -> TestResult<Cluster> {
        let dir = tempfile::tempdir()?;
        let server = apiserver::testing::spawn(dir.path()).await?;
        let kc = kube::config::Kubeconfig::read_from(&server.kubeconfig)?;
        let config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?;
        let client = kube::Client::try_from(config)?;
        Ok(Cluster {
            client,
            _server: server,
            _dir: dir,
        })
    }

    /// An API server, the default scheduler and `nodes` fake nodes named
    /// `node-0`, `node-1`, ...; returns once every node is registered Ready.
    pub async fn with_fake_nodes(nodes: usize) -> TestResult<Cluster> {
        Self::with_fake_node_config(kubelet::fake::FakeNodeConfig::numbered("node", nodes)).await
    }

    /// Like [`Cluster::with_fake_nodes`], with the nodes configured by the test.
    pub async fn with_fake_node_config(
        config: kubelet::fake::FakeNodeConfig,
    ) -> TestResult<Cluster> {
        let cluster = Self::start().await?;
        let want = config.names.len();
        tokio::spawn(scheduler::run(
            cluster.client.clone(),
            scheduler::Config::default(),
        ));
        tokio::spawn(kubelet::fake::run(cluster.client.clone(), config));
        let nodes: Api<Node> = Api::all(cluster.client.clone());
        eventually("fake nodes Ready", || async {
            let list = nodes.list(&Default::default()).await.ok()?;
            let ready = list.items.iter().filter(|n| is_ready(n)).count();
            (ready == want).then_some(())
        })
        .await;
        Ok(cluster)
    }

    /// Starts a controller (e.g. `controllers::job::run`) against this server.
    pub fn run<F, Fut>(&self, controller: F)
    where
        F: FnOnce(kube::Client) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(controller(self.client.clone()));
    }

    /// A namespaced API of kind `K` in [`NS`].
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), NS)
    }
}

fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// `pairs` as the JSON of an `annotations` map, e.g. for a pod template's
/// metadata: `json!({"metadata": {"annotations": annotations_json(&[(READY, "false")])}})`.
pub fn annotations_json(pairs: &[(&str, &str)]) -> serde_json::Value {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// A workload object of `kind` (`apps/v1`) named `name`: pods labelled
/// `app: <name>`, selected by that label, with one `nginx:1` container; then
/// each of `extra_spec`'s fields set in the spec, in order.
pub fn workload<K: k8s_openapi::serde::de::DeserializeOwned>(
    kind: &str,
    name: &str,
    extra_spec: &[serde_json::Value],
) -> K {
    let mut v = serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}
            }
        }
    });
    for extra in extra_spec {
        if let (Some(spec), serde_json::Value::Object(extra)) = (v["spec"].as_object_mut(), extra) {
            spec.extend(extra.clone());
        }
    }
    serde_json::from_value(v).expect("a valid workload object")
}

/// Sets `annotations` on the object `name` (a merge patch of its metadata).
/// On a pod of a fake node this is how a test steers it, as one pokes kwok:
/// e.g. `[(PHASE_AFTER, "Failed"), (EXIT_CODE, "42")]` makes it fail now.
pub async fn annotate<K>(api: &Api<K>, name: &str, annotations: &[(&str, &str)]) -> TestResult
where
    K: kube::Resource + Clone + k8s_openapi::serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({ "metadata": { "annotations": annotations_json(annotations) } });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Polls `check` until it returns `Some`, failing the test after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(what, DEADLINE, check).await
}

/// Polls `check` until it returns `Some`, failing the test after `deadline`.
pub async fn eventually_within<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `check` for the whole of `window`, failing the test on the first
/// `Err` (its message says what broke): for what must keep holding, such as
/// a rollout that must stay within its surge.
pub async fn holds_for<F, Fut>(what: &str, window: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let until = tokio::time::Instant::now() + window;
    while tokio::time::Instant::now() < until {
        if let Err(broken) = check().await {
            panic!("{what}: {broken}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
