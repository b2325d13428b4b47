//! The disruption controller: keeps each PodDisruptionBudget's status
//! (expected and healthy pods, disruptions allowed, the `DisruptionAllowed`
//! condition, standing disruptions) in step with the pods it selects, which
//! is what the eviction API consults. Budgets resync whenever a pod in their
//! namespace that they select changes.

mod budget;
mod scale;
pub(crate) mod selector;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

pub use budget::BudgetError;
pub use selector::SelectorError;

const FIELD_MANAGER: &str = "disruption-controller";
/// Catches what pod events cannot tell (a pod relabelled out of a selector,
/// a controller rescaled without pod changes yet).
const RESYNC: Duration = Duration::from_secs(60);
const DEBOUNCE: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kube API: {0}")]
    Kube(#[from] kube::Error),
    #[error("found no controllers for pod {0:?}")]
    NoController(String),
    #[error("{0} does not implement the scale subresource")]
    NoScale(String),
    #[error(transparent)]
    Budget(#[from] BudgetError),
    #[error(transparent)]
    Selector(#[from] SelectorError),
    #[error("budget has no namespace or name")]
    Unnamed,
}

struct Ctx {
    client: kube::Client,
}

pub async fn run(client: kube::Client) {
    let budgets: Api<PodDisruptionBudget> = Api::all(client.clone());
    let controller = Controller::new(budgets, watcher::Config::default())
        .with_config(kube::runtime::controller::Config::default().debounce(DEBOUNCE));
    let store = controller.store();
    controller
        .watches(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default(),
            selecting(store),
        )
        .run(reconcile, error_policy, Arc::new(Ctx { client }))
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "disruption reconcile");
            }
        })
        .await;
}

/// Maps a pod to the budgets in its namespace that select it.
fn selecting(
    store: Store<PodDisruptionBudget>,
) -> impl Fn(Pod) -> Vec<ObjectRef<PodDisruptionBudget>> + Send + Sync + 'static {
    move |pod: Pod| {
        let ns = pod.metadata.namespace.as_deref();
        store
            .state()
            .iter()
            .filter(|b| b.metadata.namespace.as_deref() == ns)
            .filter(|b| {
                let sel = b.spec.as_ref().and_then(|s| s.selector.as_ref());
                selector::matches(sel, pod.metadata.labels.as_ref()).unwrap_or(false)
            })
            .map(|b| ObjectRef::from_obj(b.as_ref()))
            .collect()
    }
}

fn error_policy(_pdb: Arc<PodDisruptionBudget>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(error = %err, "disruption budget sync failed; retrying");
    Action::requeue(Duration::from_secs(2))
}

async fn reconcile(pdb: Arc<PodDisruptionBudget>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let (Some(ns), Some(name)) = (
        pdb.metadata.namespace.as_deref(),
        pdb.metadata.name.as_deref(),
    ) else {
        return Err(Error::Unnamed);
    };
    if pdb.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let api: Api<PodDisruptionBudget> = Api::namespaced(ctx.client.clone(), ns);
    let now = Timestamp::now();
    let outcome = sync(&ctx.client, ns, &pdb, now).await;
    let (status, recheck) = match outcome {
        Ok((status, recheck)) => (status, recheck),
        // Failures we can name make the budget fail safe (no disruptions)
        // and say why; API trouble is retried.
        Err(e @ (Error::NoController(_) | Error::NoScale(_) | Error::Budget(_))) => {
            tracing::info!(namespace = %ns, budget = %name, error = %e, "budget sync failed");
            (Some(budget::failed_status(&pdb, &e.to_string(), now)), None)
        }
        Err(e) => return Err(e),
    };
    if let Some(status) = status.filter(|s| pdb.status.as_ref() != Some(s)) {
        let mut updated = (*pdb).clone();
        updated.status = Some(status);
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        match api.replace_status(name, &params, &updated).await {
            Ok(_) => tracing::debug!(namespace = %ns, budget = %name, "budget status updated"),
            // A newer budget (e.g. the eviction API recorded a disruption)
            // arrives as an event and is synced then.
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut next = RESYNC;
    if let Some(at) = recheck {
        let wait = Duration::try_from(at.duration_since(now)).unwrap_or_default();
        next = next.min(wait + Duration::from_secs(1));
    }
    Ok(Action::requeue(next))
}

/// Computes the budget's status; `None` when the stored one is current.
async fn sync(
    client: &kube::Client,
    ns: &str,
    pdb: &PodDisruptionBudget,
    now: Timestamp,
) -> Result<
    (
        Option<k8s_openapi::api::policy::v1::PodDisruptionBudgetStatus>,
        Option<Timestamp>,
    ),
    Error,
> {
    let spec = pdb.spec.clone().unwrap_or_default();
    let all = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await?;
    let mut pods = Vec::new();
    for pod in &all.items {
        if selector::matches(spec.selector.as_ref(), pod.metadata.labels.as_ref())? {
            pods.push(pod);
        }
    }
    let scale = if budget::needs_scale(&spec) {
        let (scale, unmanaged) = scale::expected_scale(client, ns, &pods).await?;
        if !unmanaged.is_empty() {
            tracing::info!(
                namespace = %ns,
                budget = ?pdb.metadata.name,
                pods = ?unmanaged,
                "pods selected by the budget have no controller; they are not counted in expectedPods"
            );
        }
        scale
    } else {
        0
    };
    let pod_count = i32::try_from(pods.len()).unwrap_or(i32::MAX);
    let (expected_pods, desired_healthy) = budget::expected_and_desired(&spec, pod_count, scale)?;
    let (disrupted_pods, recheck) = budget::standing_disruptions(pdb, &pods, now);
    let computed = budget::Computed {
        current_healthy: budget::current_healthy(&pods, &disrupted_pods, now),
        desired_healthy,
        expected_pods,
        disrupted_pods,
    };
    Ok((budget::next_status(pdb, &computed, now), recheck))
}
