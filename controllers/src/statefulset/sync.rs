//! One sync of a StatefulSet:
//!
//! 1. revisions: the update revision is the one whose data is the current
//!    template (re-numbered if an older one, created otherwise); the current
//!    revision is the one `status.currentRevision` names;
//! 2. claim the pods named `<set>-<ordinal>` (adopt, release);
//! 3. once earlier creates/deletes are observed, walk the ordinals: create a
//!    missing pod (its claims first) from the current revision below the
//!    partition and from the update revision otherwise, replace failed pods,
//!    delete pods past the replica count from the highest ordinal down —
//!    with `OrderedReady` one step at a time, each pod Running and Ready
//!    before the next; with `Parallel` all at once;
//! 4. rolling update: delete pods of an old revision from the highest
//!    ordinal down to the partition, at most `maxUnavailable` unavailable;
//! 5. write the status and trim the revision history.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::Selector;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::identity::{self, ordinal_of};
use super::status::{self, healthy, terminating};
use crate::workload::events::Events;
use crate::workload::expectations::{Expectations, Seen};
use crate::workload::ownership::{self, Owner};
use crate::workload::{api_errors, history, intstr, time};

pub(crate) const API_VERSION: &str = "apps/v1";
pub(crate) const KIND: &str = "StatefulSet";

const CACHE_WAIT: Duration = Duration::from_secs(30);
const PENDING_RECHECK: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("kube API: {0}")]
    Kube(#[from] kube::Error),
    #[error("controller revisions: {0}")]
    History(#[from] history::Error),
    #[error("the pod cache is not ready")]
    CacheNotReady,
    #[error(transparent)]
    Claim(#[from] ownership::ClaimError),
    #[error("{0}")]
    Manage(String),
}

pub(crate) struct Ctx {
    pub(crate) client: kube::Client,
    pub(crate) pods: Store<Pod>,
    pub(crate) expectations: Arc<Expectations>,
    pub(crate) events: Events,
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn rolling_update(spec: &StatefulSetSpec) -> bool {
    spec.update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t != "OnDelete")
}

fn partition(spec: &StatefulSetSpec) -> i32 {
    spec.update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0)
        .max(0)
}

pub(crate) async fn reconcile(set: Arc<StatefulSet>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let Some(owner) = Owner::from_meta(API_VERSION, KIND, &set.metadata) else {
        return Ok(Action::await_change());
    };
    let Some(spec) = set.spec.as_ref() else {
        return Ok(Action::await_change());
    };
    let key = format!("{}/{}", owner.namespace, owner.name);
    let selector: Selector = match spec.selector.clone().try_into() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(statefulset = %key, error = %e, "invalid selector");
            return Ok(Action::await_change());
        }
    };
    match tokio::time::timeout(CACHE_WAIT, ctx.pods.wait_until_ready()).await {
        Ok(Ok(())) => {}
        _ => return Err(Error::CacheNotReady),
    }

    let rev_api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let revisions = history::list_owned(&rev_api, &owner, &selector).await?;
    let mut collision_count = set
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0);
    let (current, update, revisions) = revisions_for(
        &rev_api,
        &owner,
        &set,
        spec,
        revisions,
        &mut collision_count,
    )
    .await?;
    let current_name = current.metadata.name.clone().unwrap_or_default();
    let update_name = update.metadata.name.clone().unwrap_or_default();
    let current_template = history::template_of(&current).unwrap_or_else(|| spec.template.clone());

    let satisfied = ctx.expectations.satisfied(&key, |name| {
        Seen::in_cache(&ctx.pods, &owner.namespace, name)
    });
    let pods = claim_pods(&ctx, &owner, &selector).await?;

    let manage = if satisfied && !owner.deleting {
        let revs = Revisions {
            current: (&current_name, &current_template),
            update: (&update_name, &spec.template),
        };
        manage(&ctx, &set, spec, &owner, &key, &pods, revs).await
    } else {
        Ok(())
    };

    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let new_status = status::calculate(
        &status::Inputs {
            generation: set.metadata.generation,
            pods: &pods,
            current_revision: &current_name,
            update_revision: &update_name,
            collision_count,
            min_ready_seconds: min_ready,
            rolling_update: rolling_update(spec),
            previous: set.status.as_ref(),
        },
        time::now(),
    );
    if set.status.as_ref() != Some(&new_status) {
        let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &owner.namespace);
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

    let mut live: HashSet<String> = pods
        .iter()
        .filter_map(|p| identity::revision_of(p).map(str::to_string))
        .collect();
    live.insert(current_name);
    live.insert(update_name);
    let limit = spec.revision_history_limit.unwrap_or(10);
    history::truncate(&rev_api, &revisions, &live, limit).await?;

    manage.map_err(Error::Manage)?;
    let ready = new_status.ready_replicas.unwrap_or(0);
    if min_ready > 0 && ready > new_status.available_replicas.unwrap_or(0) {
        let secs = u64::try_from(min_ready).unwrap_or(0) + 1;
        return Ok(Action::requeue(Duration::from_secs(secs)));
    }
    if !satisfied {
        return Ok(Action::requeue(PENDING_RECHECK));
    }
    Ok(Action::await_change())
}

/// `(current, update, all revisions)`: see the module comment.
async fn revisions_for(
    api: &Api<ControllerRevision>,
    owner: &Owner,
    set: &StatefulSet,
    spec: &StatefulSetSpec,
    mut revisions: Vec<ControllerRevision>,
    collision_count: &mut i32,
) -> Result<
    (
        ControllerRevision,
        ControllerRevision,
        Vec<ControllerRevision>,
    ),
    Error,
> {
    let data = history::template_patch(&spec.template).map_err(history::Error::from)?;
    let next = history::next_number(&revisions);
    let latest = revisions.last().and_then(|r| r.metadata.name.clone());
    let update = match history::find_equal(&revisions, &data) {
        Some(eq) if eq.metadata.name == latest => eq.clone(),
        Some(eq) => {
            let bumped = history::renumber(api, eq, next).await?;
            revisions.retain(|r| r.metadata.name != bumped.metadata.name);
            revisions.push(bumped.clone());
            bumped
        }
        None => {
            let labels = spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            let created =
                history::create(api, owner, &labels, &[], &data, next, collision_count).await?;
            if !revisions
                .iter()
                .any(|r| r.metadata.name == created.metadata.name)
            {
                revisions.push(created.clone());
            }
            created
        }
    };
    let current = set
        .status
        .as_ref()
        .and_then(|s| s.current_revision.as_deref())
        .and_then(|name| {
            revisions
                .iter()
                .find(|r| r.metadata.name.as_deref() == Some(name))
        })
        .cloned()
        .unwrap_or_else(|| update.clone());
    Ok((current, update, revisions))
}

/// The set's pods (terminating ones included), adopting and releasing.
async fn claim_pods(ctx: &Ctx, owner: &Owner, selector: &Selector) -> Result<Vec<Pod>, Error> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let sets: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let candidates = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| {
            p.metadata.namespace.as_deref() == Some(owner.namespace.as_str())
                && p.metadata
                    .name
                    .as_deref()
                    .and_then(|n| ordinal_of(&owner.name, n))
                    .is_some()
        })
        .map(|p| (*p).clone());
    Ok(ownership::claim(&api, &sets, owner, selector, candidates).await?)
}

/// The two revisions pods are made from: `(name, template)`.
#[derive(Clone, Copy)]
struct Revisions<'a> {
    current: (&'a str, &'a PodTemplateSpec),
    update: (&'a str, &'a PodTemplateSpec),
}

/// Writes for one sync, sharing the API handles and event target.
struct Writer<'a> {
    ctx: &'a Ctx,
    set: &'a StatefulSet,
    key: &'a str,
    owner: &'a Owner,
    pods: Api<Pod>,
    claims: Api<PersistentVolumeClaim>,
    regarding: ObjectReference,
}

impl Writer<'_> {
    /// Creates the claims of `ordinal` that do not exist yet.
    async fn create_claims(&self, ordinal: i32, pod_name: &str) -> Result<(), String> {
        let delete_with_set = self
            .set
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref())
            .and_then(|p| p.when_deleted.as_deref())
            == Some("Delete");
        let owner = delete_with_set.then(|| self.owner.reference());
        for claim in identity::claims_for(self.set, ordinal, owner) {
            let name = claim.metadata.name.clone().unwrap_or_default();
            let exists = self
                .claims
                .get_opt(&name)
                .await
                .map_err(|e| api_errors::message(&e))?;
            if exists.is_some() {
                continue;
            }
            match self.claims.create(&PostParams::default(), &claim).await {
                Ok(_) => self.ctx.events.normal(
                    self.regarding.clone(),
                    "SuccessfulCreate",
                    "Create",
                    format!(
                        "create Claim {name} Pod {pod_name} in StatefulSet {} success",
                        self.owner.name
                    ),
                ),
                Err(e) if api_errors::code(&e) == Some(409) => {}
                Err(e) => {
                    let message = api_errors::message(&e);
                    self.ctx.events.warning(
                        self.regarding.clone(),
                        "FailedCreate",
                        "Create",
                        format!(
                            "create Claim {name} for Pod {pod_name} in StatefulSet {} failed error: {message}",
                            self.owner.name
                        ),
                    );
                    return Err(message);
                }
            }
        }
        Ok(())
    }

    async fn create_pod(
        &self,
        ordinal: i32,
        (revision, template): (&str, &PodTemplateSpec),
    ) -> Result<(), String> {
        let pod = identity::new_pod(
            self.set,
            template,
            ordinal,
            revision,
            self.owner.reference(),
        );
        let name = pod.metadata.name.clone().unwrap_or_default();
        self.create_claims(ordinal, &name).await?;
        self.ctx.expectations.expect_create(self.key, &name);
        match self.pods.create(&PostParams::default(), &pod).await {
            Ok(_) => {
                self.ctx.events.normal(
                    self.regarding.clone(),
                    "SuccessfulCreate",
                    "Create",
                    format!(
                        "create Pod {name} in StatefulSet {} successful",
                        self.owner.name
                    ),
                );
                Ok(())
            }
            Err(e) => {
                self.ctx.expectations.observe(self.key, &name, false);
                if api_errors::code(&e) == Some(409) || api_errors::namespace_terminating(&e) {
                    return Ok(());
                }
                let message = api_errors::message(&e);
                self.ctx.events.warning(
                    self.regarding.clone(),
                    "FailedCreate",
                    "Create",
                    format!(
                        "create Pod {name} in StatefulSet {} failed error: {message}",
                        self.owner.name
                    ),
                );
                Err(message)
            }
        }
    }

    async fn delete_pod(&self, pod: &Pod) -> Result<(), String> {
        let name = pod.name_any();
        self.ctx.expectations.expect_delete(self.key, &name);
        let params = DeleteParams {
            preconditions: pod
                .metadata
                .uid
                .clone()
                .map(|uid| kube::api::Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
            ..DeleteParams::default()
        };
        match self.pods.delete(&name, &params).await {
            Ok(_) => {
                self.ctx.events.normal(
                    self.regarding.clone(),
                    "SuccessfulDelete",
                    "Delete",
                    format!(
                        "delete Pod {name} in StatefulSet {} successful",
                        self.owner.name
                    ),
                );
                Ok(())
            }
            Err(e) => {
                self.ctx.expectations.observe(self.key, &name, true);
                if matches!(api_errors::code(&e), Some(404 | 409)) {
                    return Ok(());
                }
                let message = api_errors::message(&e);
                self.ctx.events.warning(
                    self.regarding.clone(),
                    "FailedDelete",
                    "Delete",
                    format!(
                        "delete Pod {name} in StatefulSet {} failed error: {message}",
                        self.owner.name
                    ),
                );
                Err(message)
            }
        }
    }

    /// Scale-down with `whenScaled: Delete`: the claims of a condemned pod
    /// become owned by that pod alone, so the garbage collector deletes them
    /// once the pod is gone.
    async fn hand_claims_to_pod(&self, pod: &Pod, ordinal: i32) -> Result<(), String> {
        let Some(uid) = pod.metadata.uid.clone() else {
            return Ok(());
        };
        let pod_ref =
            json!([{"apiVersion": "v1", "kind": "Pod", "name": pod.name_any(), "uid": uid}]);
        for claim in identity::claims_for(self.set, ordinal, None) {
            let name = claim.metadata.name.unwrap_or_default();
            let patch = json!({"metadata": {"ownerReferences": pod_ref}});
            match self
                .claims
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(e) if api_errors::code(&e) == Some(404) => {}
                Err(e) => return Err(api_errors::message(&e)),
            }
        }
        Ok(())
    }
}

/// Creates, replaces and deletes pods; the error is a message for the log.
async fn manage(
    ctx: &Ctx,
    set: &StatefulSet,
    spec: &StatefulSetSpec,
    owner: &Owner,
    key: &str,
    pods: &[Pod],
    revs: Revisions<'_>,
) -> Result<(), String> {
    let replicas = usize::try_from(spec.replicas.unwrap_or(1).max(0)).unwrap_or(0);
    let start = spec
        .ordinals
        .as_ref()
        .and_then(|o| o.start)
        .unwrap_or(0)
        .max(0);
    let monotonic = spec.pod_management_policy.as_deref() != Some("Parallel");
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let now = time::now();
    let w = Writer {
        ctx,
        set,
        key,
        owner,
        pods: Api::namespaced(ctx.client.clone(), &owner.namespace),
        claims: Api::namespaced(ctx.client.clone(), &owner.namespace),
        regarding: set.object_ref(&()),
    };

    let mut slots: Vec<Option<&Pod>> = vec![None; replicas];
    let mut condemned: Vec<(i32, &Pod)> = Vec::new();
    for pod in pods {
        let Some(ord) = ordinal_of(&owner.name, &pod.name_any()) else {
            continue;
        };
        match usize::try_from(ord - start).ok().filter(|i| *i < replicas) {
            Some(i) => slots[i] = Some(pod),
            None => condemned.push((ord, pod)),
        }
    }
    condemned.sort_by_key(|(ord, _)| std::cmp::Reverse(*ord));
    let rolling = rolling_update(spec);
    let partition = usize::try_from(partition(spec)).unwrap_or(0);

    let mut failure = None;
    for (i, slot) in slots.iter().enumerate() {
        let ordinal = start + i32::try_from(i).unwrap_or(i32::MAX);
        match slot {
            None => {
                let revision = if rolling && i < partition {
                    revs.current
                } else {
                    revs.update
                };
                if let Err(e) = w.create_pod(ordinal, revision).await {
                    failure.get_or_insert(e);
                }
                if monotonic {
                    return failure.map_or(Ok(()), Err);
                }
            }
            Some(pod) if matches!(phase(pod), "Failed" | "Succeeded") && !terminating(pod) => {
                tracing::info!(statefulset = %key, pod = %pod.name_any(), phase = phase(pod), "recreating a finished pod");
                if let Err(e) = w.delete_pod(pod).await {
                    failure.get_or_insert(e);
                }
                if monotonic {
                    return failure.map_or(Ok(()), Err);
                }
            }
            Some(pod) if monotonic && !healthy(pod, min_ready, now) => return Ok(()),
            Some(_) => {}
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }

    let unhealthy = |p: &Pod| !healthy(p, min_ready, now);
    for (idx, &(ordinal, pod)) in condemned.iter().enumerate() {
        if terminating(pod) {
            if monotonic {
                return Ok(());
            }
            continue;
        }
        if monotonic {
            // Halt while any other pod is unhealthy.
            let others_unhealthy = slots.iter().flatten().any(|p| unhealthy(p))
                || condemned[idx + 1..].iter().any(|(_, p)| unhealthy(p));
            if others_unhealthy {
                return Ok(());
            }
        }
        let when_scaled_delete = spec
            .persistent_volume_claim_retention_policy
            .as_ref()
            .and_then(|p| p.when_scaled.as_deref())
            == Some("Delete");
        if when_scaled_delete {
            w.hand_claims_to_pod(pod, ordinal).await?;
        }
        w.delete_pod(pod).await?;
        if monotonic {
            return Ok(());
        }
    }

    if !rolling || slots.iter().any(Option::is_none) {
        return Ok(());
    }
    let max_unavailable = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.max_unavailable.clone())
        .unwrap_or(IntOrString::Int(1));
    let replicas_i32 = i32::try_from(replicas).unwrap_or(i32::MAX);
    let max_unavailable = intstr::scaled(&max_unavailable, replicas_i32, false)
        .map_err(|e| e.to_string())?
        .max(1);
    let unavailable = slots.iter().flatten().filter(|p| unhealthy(p)).count();
    let budget = usize::try_from(max_unavailable)
        .unwrap_or(1)
        .saturating_sub(unavailable);
    let outdated = (partition.min(replicas)..replicas)
        .rev()
        .filter_map(|i| slots[i])
        .filter(|p| identity::revision_of(p) != Some(revs.update.0) && !terminating(p))
        .take(budget);
    for pod in outdated {
        tracing::info!(statefulset = %key, pod = %pod.name_any(), "terminating pod for update");
        w.delete_pod(pod).await?;
    }
    Ok(())
}
