//! One sync of a ReplicaSet or ReplicationController: claim pods (adopt and
//! release), create or delete pods to reach `spec.replicas` once earlier
//! creates/deletes have been observed, and write the status.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use kube::core::Selector;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;

use super::kind::{ReplicaKind, ReplicaSpec, ReplicaStatus};
use super::status;
use crate::workload::events::Events;
use crate::workload::expectations::{Expectations, Seen};
use crate::workload::ownership::{self, Owner};
use crate::workload::{api_errors, pods, time};

/// At most this many pods are created or deleted in one sync, as upstream.
const BURST_REPLICAS: usize = 500;

/// How long a sync waits for the pod cache's first listing.
const CACHE_WAIT: Duration = Duration::from_secs(30);

/// Recheck interval while creates/deletes are still unobserved (a lost watch
/// event is otherwise only noticed when the expectations expire).
const PENDING_RECHECK: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("kube API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the pod cache is not ready")]
    CacheNotReady,
    #[error(transparent)]
    Claim(#[from] ownership::ClaimError),
    #[error("{0}")]
    Manage(String),
}

pub(crate) struct Ctx<K: ReplicaKind> {
    pub(crate) client: kube::Client,
    pub(crate) pods: Store<Pod>,
    pub(crate) owners: Store<K>,
    pub(crate) expectations: Arc<Expectations>,
    pub(crate) events: Events,
}

pub(crate) async fn reconcile<K: ReplicaKind>(
    obj: Arc<K>,
    ctx: Arc<Ctx<K>>,
) -> Result<Action, Error> {
    let Some(owner) = Owner::from_meta(K::API_VERSION, K::KIND, obj.meta()) else {
        return Ok(Action::await_change());
    };
    let key = format!("{}/{}", owner.namespace, owner.name);
    let spec = obj.spec_view();
    let selector: Selector = match spec.selector.clone().try_into() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(kind = K::KIND, object = %key, error = %e, "invalid selector");
            return Ok(Action::await_change());
        }
    };
    match tokio::time::timeout(CACHE_WAIT, ctx.pods.wait_until_ready()).await {
        Ok(Ok(())) => {}
        _ => return Err(Error::CacheNotReady),
    }

    let needs_sync = ctx.expectations.satisfied(&key, |name| {
        Seen::in_cache(&ctx.pods, &owner.namespace, name)
    });
    let candidates: Vec<Pod> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| {
            p.metadata.namespace.as_deref() == Some(owner.namespace.as_str()) && pods::is_active(p)
        })
        .map(|p| (*p).clone())
        .collect();
    let owned = claim_pods(&ctx, &owner, &selector, candidates).await?;

    let manage = if needs_sync && !owner.deleting {
        manage_replicas(&ctx, &obj, &key, &owner, &spec, &owned).await
    } else {
        Ok(())
    };
    let manage_message = manage.as_ref().err().map(String::as_str);
    let now = time::now();
    let current = obj.status_view();
    let new_status = status::calculate(
        &current,
        &spec,
        obj.meta().generation.unwrap_or(0),
        &owned,
        manage_message,
        now,
    );
    let written = write_status(&ctx, &obj, &owner, &current, &new_status).await?;
    if let Err(message) = manage {
        return Err(Error::Manage(message));
    }
    // Ready pods become available minReadySeconds after turning ready, with
    // no event to say so: look again by then (a second late, as upstream, so
    // the strict comparison has passed).
    if spec.min_ready_seconds > 0 && written.ready_replicas > written.available_replicas {
        let secs = u64::try_from(spec.min_ready_seconds).unwrap_or(0) + 1;
        return Ok(Action::requeue(Duration::from_secs(secs)));
    }
    if !needs_sync {
        return Ok(Action::requeue(PENDING_RECHECK));
    }
    Ok(Action::await_change())
}

async fn claim_pods<K: ReplicaKind>(
    ctx: &Ctx<K>,
    owner: &Owner,
    selector: &Selector,
    candidates: Vec<Pod>,
) -> Result<Vec<Pod>, Error> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let owners: Api<K> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    Ok(ownership::claim(&api, &owners, owner, selector, candidates).await?)
}

/// Creates or deletes pods toward `spec.replicas`; the error is the message for
/// the `ReplicaFailure` condition.
async fn manage_replicas<K: ReplicaKind>(
    ctx: &Ctx<K>,
    obj: &K,
    key: &str,
    owner: &Owner,
    spec: &ReplicaSpec,
    owned: &[Pod],
) -> Result<(), String> {
    let want = usize::try_from(spec.replicas).unwrap_or(0);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let regarding = obj.object_ref(&());
    if owned.len() < want {
        let Some(template) = spec.template.as_ref() else {
            return Err(format!("{} {key} has no pod template", K::KIND));
        };
        let missing = (want - owned.len()).min(BURST_REPLICAS);
        let pod =
            pods::pod_from_template(template, &owner.namespace, &owner.name, owner.reference());
        tracing::debug!(kind = K::KIND, object = %key, missing, "creating pods");
        let events = (&ctx.events, &regarding);
        create_slow_start(&api, &ctx.expectations, events, key, &pod, missing).await
    } else if owned.len() > want {
        let excess = (owned.len() - want).min(BURST_REPLICAS);
        let related = related_pods(ctx, obj, owned);
        let victims = pods::pods_to_delete(owned, &related, excess, time::now());
        tracing::debug!(kind = K::KIND, object = %key, excess, "deleting pods");
        let names: Vec<String> = victims
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        for name in &names {
            ctx.expectations.expect_delete(key, name);
        }
        let results = join_all(names.iter().map(|name| {
            let api = api.clone();
            async move { (name, api.delete(name, &DeleteParams::default()).await) }
        }))
        .await;
        let mut failure = None;
        for (name, result) in results {
            match result {
                Ok(_) => ctx.events.normal(
                    regarding.clone(),
                    "SuccessfulDelete",
                    "Delete",
                    format!("Deleted pod: {name}"),
                ),
                Err(e) => {
                    // This deletion will never be observed.
                    ctx.expectations.observe(key, name, true);
                    let gone = matches!(&e, kube::Error::Api(s) if s.code == 404);
                    if !gone {
                        tracing::warn!(kind = K::KIND, object = %key, pod = %name, error = %e, "deleting pod failed");
                        let message = api_errors::message(&e);
                        ctx.events.warning(
                            regarding.clone(),
                            "FailedDelete",
                            "Delete",
                            format!("Error deleting: {message}"),
                        );
                        failure.get_or_insert(message);
                    }
                }
            }
        }
        failure.map_or(Ok(()), Err)
    } else {
        Ok(())
    }
}

/// Creates `count` copies of `pod` in batches of 1, 2, 4, ... stopping at the
/// first batch with a failure, so a quota refusal costs one request, not many.
async fn create_slow_start(
    api: &Api<Pod>,
    expectations: &Expectations,
    (events, regarding): (&Events, &ObjectReference),
    key: &str,
    pod: &Pod,
    count: usize,
) -> Result<(), String> {
    let mut remaining = count;
    let mut batch = 1usize;
    while remaining > 0 {
        let size = batch.min(remaining);
        let params = PostParams::default();
        let results = join_all((0..size).map(|_| api.create(&params, pod))).await;
        let mut failure = None;
        for result in results {
            match result {
                Ok(created) => {
                    if let Some(name) = created.metadata.name.as_deref() {
                        expectations.expect_create(key, name);
                        events.normal(
                            regarding.clone(),
                            "SuccessfulCreate",
                            "Create",
                            format!("Created pod: {name}"),
                        );
                    }
                }
                Err(e) if api_errors::namespace_terminating(&e) => {}
                Err(e) => {
                    tracing::warn!(object = %key, error = %e, "creating pod failed");
                    let message = api_errors::message(&e);
                    events.warning(
                        regarding.clone(),
                        "FailedCreate",
                        "Create",
                        format!("Error creating: {message}"),
                    );
                    failure.get_or_insert(message);
                }
            }
        }
        if let Some(message) = failure {
            return Err(message);
        }
        remaining -= size;
        batch = (batch * 2).min(remaining.max(1));
    }
    Ok(())
}

/// Active pods of this controller's siblings (same owning controller, e.g. the
/// other ReplicaSets of a Deployment), used to prefer deleting pods doubled up
/// on a node.
fn related_pods<K: ReplicaKind>(ctx: &Ctx<K>, obj: &K, owned: &[Pod]) -> Vec<Pod> {
    let Some(parent) = ownership::controller_of(obj.meta()).map(|r| r.uid.clone()) else {
        return owned.to_vec();
    };
    let ns = obj.meta().namespace.clone();
    let siblings: Vec<String> = ctx
        .owners
        .state()
        .iter()
        .filter(|o| o.meta().namespace == ns)
        .filter(|o| ownership::controller_of(o.meta()).is_some_and(|r| r.uid == parent))
        .filter_map(|o| o.meta().uid.clone())
        .collect();
    ctx.pods
        .state()
        .iter()
        .filter(|p| p.metadata.namespace == ns && pods::is_active(p))
        .filter(|p| {
            ownership::controller_of(&p.metadata).is_some_and(|r| siblings.contains(&r.uid))
        })
        .map(|p| (**p).clone())
        .collect()
}

/// Writes `new` through the status subresource unless nothing changed;
/// retries once on a conflict with a fresh copy. Returns the status in effect.
async fn write_status<K: ReplicaKind>(
    ctx: &Ctx<K>,
    obj: &K,
    owner: &Owner,
    current: &ReplicaStatus,
    new: &ReplicaStatus,
) -> Result<ReplicaStatus, Error> {
    if current == new {
        return Ok(new.clone());
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let mut updated = obj.clone();
    updated.set_status(new);
    match api
        .replace_status(&owner.name, &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(new.clone()),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let Some(mut fresh) = api.get_opt(&owner.name).await? else {
                return Ok(new.clone());
            };
            fresh.set_status(new);
            api.replace_status(&owner.name, &PostParams::default(), &fresh)
                .await?;
            Ok(new.clone())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(new.clone()),
        Err(e) => Err(e.into()),
    }
}
