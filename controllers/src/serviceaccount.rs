//! The service account controller: every active namespace has a `default`
//! ServiceAccount and the `kube-root-ca.crt` ConfigMap (both recreated if
//! deleted), as upstream's service account and root-CA publisher controllers
//! guarantee. The bundle is the cluster CA, read from the Secret the API
//! server publishes it in for the signing controller.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

const DEFAULT: &str = "default";
const ROOT_CA: &str = "kube-root-ca.crt";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kube API: {0}")]
    Kube(#[from] kube::Error),
}

struct Ctx {
    client: kube::Client,
}

pub async fn run(client: kube::Client) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let accounts: Api<ServiceAccount> = Api::all(client.clone());
    let bundles: Api<ConfigMap> = Api::all(client.clone());
    let ctx = Arc::new(Ctx { client });
    Controller::new(namespaces, watcher::Config::default())
        .watches(
            bundles,
            watcher::Config::default().fields("metadata.name=kube-root-ca.crt"),
            |cm| {
                cm.metadata
                    .namespace
                    .map(|ns| ObjectRef::<Namespace>::new(&ns))
            },
        )
        .watches(
            accounts,
            watcher::Config::default().fields("metadata.name=default"),
            |sa| {
                sa.metadata
                    .namespace
                    .map(|ns| ObjectRef::<Namespace>::new(&ns))
            },
        )
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "service account reconcile");
            }
        })
        .await;
}

fn error_policy(_ns: Arc<Namespace>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(error = %err, "service account controller error; retrying");
    Action::requeue(Duration::from_secs(2))
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let Some(name) = ns.metadata.name.as_deref() else {
        return Ok(Action::await_change());
    };
    let terminating = ns.metadata.deletion_timestamp.is_some()
        || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    if terminating {
        return Ok(Action::await_change());
    }
    let accounts: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), name);
    if accounts.get_opt(DEFAULT).await?.is_none() {
        let sa = ServiceAccount {
            metadata: kube::api::ObjectMeta {
                name: Some(DEFAULT.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        ensure_created(
            accounts
                .create(&params("service-account-controller"), &sa)
                .await,
        )?;
    }
    let ca = cluster_ca(&ctx.client).await?;
    let bundles: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), name);
    let current = bundles.get_opt(ROOT_CA).await?;
    if let Some(current) = &current {
        let published = current.data.as_ref().and_then(|d| d.get("ca.crt"));
        if published != Some(&ca) {
            let patch = serde_json::json!({"data": {"ca.crt": ca}});
            ensure_created(
                bundles
                    .patch(
                        ROOT_CA,
                        &kube::api::PatchParams {
                            field_manager: Some("root-ca-cert-publisher".into()),
                            ..Default::default()
                        },
                        &kube::api::Patch::Merge(&patch),
                    )
                    .await,
            )?;
        }
    }
    if current.is_none() {
        let annotations = [(
            "kubernetes.io/description".to_string(),
            "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.".to_string(),
        )];
        let cm = ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(ROOT_CA.into()),
                annotations: Some(annotations.into_iter().collect()),
                ..Default::default()
            },
            data: Some([("ca.crt".to_string(), ca)].into_iter().collect()),
            ..Default::default()
        };
        ensure_created(bundles.create(&params("root-ca-cert-publisher"), &cm).await)?;
    }
    Ok(Action::await_change())
}

/// The cluster CA (PEM), as the API server publishes it for the signer; empty
/// when it is not published.
async fn cluster_ca(client: &kube::Client) -> Result<String, Error> {
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), "kube-system");
    let secret = secrets
        .get_opt(crate::certificates::SIGNING_CA_SECRET)
        .await?;
    Ok(secret
        .and_then(|s| s.data)
        .and_then(|d| d.get("tls.crt").cloned())
        .and_then(|b| String::from_utf8(b.0).ok())
        .unwrap_or_default())
}

fn params(manager: &str) -> PostParams {
    PostParams {
        field_manager: Some(manager.into()),
        ..Default::default()
    }
}

/// A create that lost a race (409) or met a terminating or vanished namespace is fine.
fn ensure_created<T>(result: Result<T, kube::Error>) -> Result<(), Error> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 || e.code == 403 || e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
