//! One sync of a DaemonSet: find or create the ControllerRevision of the
//! current template (its hash labels the pods), claim pods, then — once
//! earlier creates/deletes are observed — apply `plan::manage` and, when that
//! changed nothing and the strategy is `RollingUpdate`, `plan::rolling`;
//! finally write the status and trim the revision history.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetSpec};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::Selector;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::placement;
use super::plan::{self, Bounds, Changes, NodeState};
use crate::workload::events::Events;
use crate::workload::expectations::{Expectations, Seen};
use crate::workload::history::{self, REVISION_HASH_LABEL};
use crate::workload::ownership::{self, Owner};
use crate::workload::{api_errors, intstr, pods, time};

pub(crate) const API_VERSION: &str = "apps/v1";
pub(crate) const KIND: &str = "DaemonSet";
/// The pod label holding the DaemonSet's generation at creation.
pub(crate) const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

const CACHE_WAIT: Duration = Duration::from_secs(30);
const PENDING_RECHECK: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("kube API: {0}")]
    Kube(#[from] kube::Error),
    #[error("controller revisions: {0}")]
    History(#[from] history::Error),
    #[error("the pod or node cache is not ready")]
    CacheNotReady,
    #[error(transparent)]
    Claim(#[from] ownership::ClaimError),
    #[error("{0}")]
    Manage(String),
}

pub(crate) struct Ctx {
    pub(crate) client: kube::Client,
    pub(crate) pods: Store<Pod>,
    pub(crate) nodes: Store<Node>,
    pub(crate) expectations: Arc<Expectations>,
    pub(crate) events: Events,
}

fn bounds(spec: &DaemonSetSpec, desired: i32) -> Result<Option<Bounds>, Error> {
    let strategy = spec.update_strategy.as_ref();
    if strategy.and_then(|s| s.type_.as_deref()) == Some("OnDelete") {
        return Ok(None);
    }
    let rolling = strategy.and_then(|s| s.rolling_update.as_ref());
    let resolve = |v: Option<&IntOrString>, default: i32| match v {
        None => Ok(default),
        Some(v) => intstr::scaled(v, desired, true).map_err(|e| Error::Manage(e.to_string())),
    };
    let max_surge = resolve(rolling.and_then(|r| r.max_surge.as_ref()), 0)?;
    let mut max_unavailable = resolve(rolling.and_then(|r| r.max_unavailable.as_ref()), 1)?;
    if max_surge == 0 && max_unavailable == 0 {
        max_unavailable = 1;
    }
    Ok(Some(Bounds {
        max_surge,
        max_unavailable,
        min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
    }))
}

pub(crate) async fn reconcile(ds: Arc<DaemonSet>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let Some(owner) = Owner::from_meta(API_VERSION, KIND, &ds.metadata) else {
        return Ok(Action::await_change());
    };
    let Some(spec) = ds.spec.as_ref() else {
        return Ok(Action::await_change());
    };
    let key = format!("{}/{}", owner.namespace, owner.name);
    let selector: Selector = match spec.selector.clone().try_into() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(daemonset = %key, error = %e, "invalid selector");
            return Ok(Action::await_change());
        }
    };
    let caches = async {
        ctx.pods.wait_until_ready().await?;
        ctx.nodes.wait_until_ready().await
    };
    match tokio::time::timeout(CACHE_WAIT, caches).await {
        Ok(Ok(())) => {}
        _ => return Err(Error::CacheNotReady),
    }

    // The revision of the current template.
    let rev_api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let mut revisions = history::list_owned(&rev_api, &owner, &selector).await?;
    let mut collision_count = ds
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0);
    let data = history::template_patch(&spec.template).map_err(history::Error::from)?;
    let next = history::next_number(&revisions);
    let latest = revisions.last().and_then(|r| r.metadata.name.clone());
    let current = match history::find_equal(&revisions, &data) {
        Some(eq) if eq.metadata.name == latest => eq.clone(),
        Some(eq) => history::renumber(&rev_api, eq, next).await?,
        None => {
            let labels = spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            let created = history::create(
                &rev_api,
                &owner,
                &labels,
                &[REVISION_HASH_LABEL],
                &data,
                next,
                &mut collision_count,
            )
            .await?;
            revisions.push(created.clone());
            created
        }
    };
    let hash = history::hash_label(&current);

    let satisfied = ctx.expectations.satisfied(&key, |name| {
        Seen::in_cache(&ctx.pods, &owner.namespace, name)
    });
    let owned = claim_pods(&ctx, &owner, &selector).await?;
    let grouped = plan::by_node(&owned);
    let template_spec = spec.template.spec.clone().unwrap_or_default();
    let mut nodes: Vec<NodeState<'_>> = ctx
        .nodes
        .state()
        .iter()
        .filter_map(|n| {
            let name = n.metadata.name.clone()?;
            Some(NodeState {
                placement: placement::placement(&template_spec, n),
                pods: grouped.get(&name).cloned().unwrap_or_default(),
                name,
            })
        })
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let desired =
        i32::try_from(nodes.iter().filter(|n| n.placement.should_run).count()).unwrap_or(i32::MAX);
    let now = time::now();

    let mut outcome = Ok(());
    if satisfied && !owner.deleting {
        let bounds = bounds(spec, desired)?;
        let surge = bounds.is_some_and(|b| b.max_surge > 0);
        let mut changes = plan::manage(&nodes, &hash, surge);
        if changes.is_empty()
            && let Some(b) = bounds
        {
            changes = plan::rolling(&nodes, &hash, b, now);
        }
        outcome = apply(&ctx, &ds, &owner, &key, &hash, &changes).await;
    }

    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let new_status = plan::status(
        &nodes,
        &hash,
        min_ready,
        ds.metadata.generation,
        collision_count,
        ds.status.as_ref(),
        now,
    );
    if ds.status.as_ref() != Some(&new_status) {
        let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), &owner.namespace);
        let patch = json!({"status": new_status});
        match api
            .patch_status(&owner.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Action::await_change()),
            Err(e) => return Err(e.into()),
        }
    }

    // Revisions some pod still carries are kept.
    let live_hashes: HashSet<String> = owned
        .iter()
        .filter_map(|p| {
            p.metadata
                .labels
                .as_ref()?
                .get(REVISION_HASH_LABEL)
                .cloned()
        })
        .collect();
    let live: HashSet<String> = revisions
        .iter()
        .filter(|r| {
            live_hashes.contains(&history::hash_label(r))
                || r.metadata.name == current.metadata.name
        })
        .filter_map(|r| r.metadata.name.clone())
        .collect();
    let limit = spec.revision_history_limit.unwrap_or(10);
    history::truncate(&rev_api, &revisions, &live, limit).await?;

    outcome.map_err(Error::Manage)?;
    if min_ready > 0 && new_status.number_ready > new_status.number_available.unwrap_or(0) {
        let secs = u64::try_from(min_ready).unwrap_or(0) + 1;
        return Ok(Action::requeue(Duration::from_secs(secs)));
    }
    if !satisfied {
        return Ok(Action::requeue(PENDING_RECHECK));
    }
    Ok(Action::await_change())
}

/// The DaemonSet's pods (terminating ones included), adopting and releasing.
async fn claim_pods(ctx: &Ctx, owner: &Owner, selector: &Selector) -> Result<Vec<Pod>, Error> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let sets: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let candidates = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(owner.namespace.as_str()))
        .map(|p| (*p).clone());
    Ok(ownership::claim(&api, &sets, owner, selector, candidates).await?)
}

/// The daemon pod for `node`.
fn new_pod(ds: &DaemonSet, owner: &Owner, hash: &str, node: &str) -> Pod {
    let template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let mut pod =
        pods::pod_from_template(&template, &owner.namespace, &owner.name, owner.reference());
    let labels = pod.metadata.labels.get_or_insert_with(Default::default);
    labels.insert(REVISION_HASH_LABEL.to_string(), hash.to_string());
    if let Some(generation) = ds.metadata.generation {
        labels.insert(
            TEMPLATE_GENERATION_LABEL.to_string(),
            generation.to_string(),
        );
    }
    let spec = pod.spec.get_or_insert_with(Default::default);
    placement::add_daemon_tolerations(spec);
    placement::pin_to_node(spec, node);
    pod
}

/// Creates and deletes what `changes` says; the first failure's message.
async fn apply(
    ctx: &Ctx,
    ds: &DaemonSet,
    owner: &Owner,
    key: &str,
    hash: &str,
    changes: &Changes,
) -> Result<(), String> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let regarding = ds.object_ref(&());
    let mut failure = None;
    for node in &changes.create_on {
        let pod = new_pod(ds, owner, hash, node);
        match api.create(&PostParams::default(), &pod).await {
            Ok(created) => {
                let name = created.name_any();
                ctx.expectations.expect_create(key, &name);
                ctx.events.normal(
                    regarding.clone(),
                    "SuccessfulCreate",
                    "Create",
                    format!("Created pod: {name}"),
                );
            }
            Err(e) if api_errors::namespace_terminating(&e) => {}
            Err(e) => {
                let message = api_errors::message(&e);
                tracing::warn!(daemonset = %key, node = %node, error = %message, "creating daemon pod failed");
                ctx.events.warning(
                    regarding.clone(),
                    "FailedCreate",
                    "Create",
                    format!("Error creating: {message}"),
                );
                failure.get_or_insert(message);
            }
        }
    }
    for name in &changes.delete {
        ctx.expectations.expect_delete(key, name);
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => ctx.events.normal(
                regarding.clone(),
                "SuccessfulDelete",
                "Delete",
                format!("Deleted pod: {name}"),
            ),
            Err(e) => {
                ctx.expectations.observe(key, name, true);
                if api_errors::code(&e) == Some(404) {
                    continue;
                }
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
    failure.map_or(Ok(()), Err)
}
