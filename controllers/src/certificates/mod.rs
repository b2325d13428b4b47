//! The CSR signing controller (upstream's `csrsigning`): issues client
//! certificates from the cluster CA for approved CertificateSigningRequests
//! of the `kubernetes.io/kube-apiserver-client` and
//! `kubernetes.io/kube-apiserver-client-kubelet` signers, honouring
//! `spec.expirationSeconds`.
//!
//! A request is signed once: when it is Approved, not Failed and has no
//! certificate yet. One its signer's rules refuse gets a `Failed` condition
//! (reason `SignerValidationFailure`) instead. Requests for other signers,
//! `kubernetes.io/legacy-unknown` included (which the v1 API refuses
//! anyway), are left to their own signers.
//!
//! The CA comes from the API server through the API: the Secret
//! `kube-system/ironkube-cluster-signing-ca` (`tls.crt`, `tls.key`), which
//! the server writes at start.

pub mod signer;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;

pub use signer::SignError;

/// The Secret (in `kube-system`) that holds the cluster CA.
pub const SIGNING_CA_SECRET: &str = "ironkube-cluster-signing-ca";
/// How long to wait before retrying a request that could not be signed.
const RETRY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kube API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("the signing CA Secret kube-system/{SIGNING_CA_SECRET} lacks {0}")]
    MissingCa(&'static str),
    #[error("request has no name")]
    Unnamed,
}

struct Ctx {
    client: kube::Client,
    /// The CA as last read, with the Secret's resourceVersion.
    ca: tokio::sync::Mutex<Option<(String, Arc<signer::Ca>)>>,
}

impl Ctx {
    /// The CA, re-read when its Secret changed.
    async fn ca(&self) -> Result<Arc<signer::Ca>, Error> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), "kube-system");
        let secret = secrets.get(SIGNING_CA_SECRET).await?;
        let rv = secret.metadata.resource_version.clone().unwrap_or_default();
        let mut cached = self.ca.lock().await;
        if let Some((seen, ca)) = cached.as_ref()
            && *seen == rv
        {
            return Ok(ca.clone());
        }
        let data = secret.data.unwrap_or_default();
        let text = |k: &'static str| {
            data.get(k)
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                .ok_or(Error::MissingCa(k))
        };
        let ca = Arc::new(signer::Ca::from_pem(&text("tls.crt")?, &text("tls.key")?)?);
        *cached = Some((rv, ca.clone()));
        Ok(ca)
    }
}

pub async fn run(client: kube::Client) {
    let csrs: Api<CertificateSigningRequest> = Api::all(client.clone());
    let ctx = Arc::new(Ctx {
        client,
        ca: tokio::sync::Mutex::new(None),
    });
    Controller::new(csrs, watcher::Config::default())
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "csr signing reconcile");
            }
        })
        .await;
}

fn has_true(csr: &CertificateSigningRequest, type_: &str) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

#[tracing::instrument(skip_all, fields(csr = csr.metadata.name.as_deref().unwrap_or("")))]
async fn reconcile(csr: Arc<CertificateSigningRequest>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let approved = has_true(&csr, "Approved") && !has_true(&csr, "Denied");
    let issued = csr
        .status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty());
    if !approved || has_true(&csr, "Failed") || issued || !signer::is_ours(&csr.spec.signer_name) {
        return Ok(Action::await_change());
    }
    let name = csr.metadata.name.clone().ok_or(Error::Unnamed)?;
    let api: Api<CertificateSigningRequest> = Api::all(ctx.client.clone());
    let usages = csr.spec.usages.clone().unwrap_or_default();
    let request = signer::parse(&csr.spec.request.0)?;
    let mut next = (*csr).clone();
    let status = next.status.get_or_insert_with(Default::default);
    match signer::check(&csr.spec.signer_name, &request, &usages) {
        Err(message) => {
            tracing::info!(%message, "refusing to sign");
            status.conditions.get_or_insert_with(Vec::new).push(
                CertificateSigningRequestCondition {
                    type_: "Failed".into(),
                    status: "True".into(),
                    reason: Some("SignerValidationFailure".into()),
                    message: Some(message),
                    ..Default::default()
                },
            );
        }
        Ok(()) => {
            let ca = ctx.ca().await?;
            let requested = csr
                .spec
                .expiration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map(Duration::from_secs);
            let pem = ca.sign(&csr.spec.request.0, &usages, requested)?;
            status.certificate = Some(ByteString(pem.into_bytes()));
            tracing::info!("issued certificate");
        }
    }
    match api
        .replace_status(&name, &PostParams::default(), &next)
        .await
    {
        Ok(_) => Ok(Action::await_change()),
        // A newer version of the request is on its way to us.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

fn error_policy(_csr: Arc<CertificateSigningRequest>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(error = %err, "could not sign certificate signing request");
    Action::requeue(RETRY)
}
