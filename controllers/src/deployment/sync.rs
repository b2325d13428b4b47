//! One sync of a Deployment, in upstream's order: claim ReplicaSets, then
//! either only the status (being deleted), a pure scale (paused, or only
//! `spec.replicas` changed), or a rollout step of the strategy, ending with
//! the status. Each step writes through the API and continues from what the
//! server returned.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, DeleteParams, PostParams};
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;

use super::{rolling, scale, status, strategy, util};
use crate::workload::backoff::Backoff;
use crate::workload::events::Events;
use crate::workload::ownership::{self, Owner};
use crate::workload::time;
use crate::workload::{api_errors, hash};

const CACHE_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("kube API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the ReplicaSet or pod cache is not ready")]
    CacheNotReady,
    #[error(transparent)]
    Claim(#[from] ownership::ClaimError),
    #[error("hashing the pod template: {0}")]
    Hash(#[from] serde_json::Error),
    #[error(
        "ReplicaSet {0} exists with another template (hash collision); retrying with a new collision count"
    )]
    Collision(String),
}

pub(crate) struct Ctx {
    pub(crate) client: kube::Client,
    pub(crate) replica_sets: Store<ReplicaSet>,
    pub(crate) pods: Store<Pod>,
    pub(crate) events: Events,
    pub(crate) backoff: Backoff,
}

/// The new ReplicaSet (if any) and the others.
#[derive(Debug, Default)]
struct Family {
    new: Option<ReplicaSet>,
    old: Vec<ReplicaSet>,
}

impl Family {
    fn all(&self) -> Vec<&ReplicaSet> {
        self.old.iter().chain(self.new.iter()).collect()
    }

    fn old_refs(&self) -> Vec<&ReplicaSet> {
        self.old.iter().collect()
    }

    fn get(&self, name: &str) -> Option<ReplicaSet> {
        self.all()
            .into_iter()
            .find(|rs| util::name(rs) == name)
            .cloned()
    }

    fn replace(&mut self, rs: ReplicaSet) {
        if self
            .new
            .as_ref()
            .is_some_and(|n| n.metadata.uid == rs.metadata.uid)
        {
            self.new = Some(rs);
        } else if let Some(slot) = self
            .old
            .iter_mut()
            .find(|o| o.metadata.uid == rs.metadata.uid)
        {
            *slot = rs;
        }
    }
}

fn replace_in(list: &mut [ReplicaSet], rs: &ReplicaSet) {
    if let Some(slot) = list.iter_mut().find(|o| o.metadata.uid == rs.metadata.uid) {
        *slot = rs.clone();
    }
}

pub(crate) async fn reconcile(d: Arc<Deployment>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ready = async {
        ctx.replica_sets.wait_until_ready().await?;
        ctx.pods.wait_until_ready().await
    };
    match tokio::time::timeout(CACHE_WAIT, ready).await {
        Ok(Ok(())) => {}
        _ => return Err(Error::CacheNotReady),
    }
    let (Some(name), Some(ns)) = (d.metadata.name.clone(), d.metadata.namespace.clone()) else {
        return Ok(Action::await_change());
    };
    let mut sync = Sync {
        api: Api::namespaced(ctx.client.clone(), &ns),
        rs_api: Api::namespaced(ctx.client.clone(), &ns),
        ctx: &ctx,
        d: (*d).clone(),
        name,
        ns,
    };
    sync.run().await
}

struct Sync<'a> {
    ctx: &'a Ctx,
    api: Api<Deployment>,
    rs_api: Api<ReplicaSet>,
    d: Deployment,
    name: String,
    ns: String,
}

impl Sync<'_> {
    fn now(&self) -> Timestamp {
        time::now()
    }

    fn paused(&self) -> bool {
        self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
    }

    async fn run(&mut self) -> Result<Action, Error> {
        let Some(spec) = self.d.spec.clone() else {
            return Ok(Action::await_change());
        };
        let selects_everything = spec
            .selector
            .match_labels
            .as_ref()
            .is_none_or(|m| m.is_empty())
            && spec
                .selector
                .match_expressions
                .as_ref()
                .is_none_or(|e| e.is_empty());
        if selects_everything {
            tracing::warn!(deployment = %self.name, namespace = %self.ns, "selecting all pods is not allowed; not syncing");
            self.ctx.events.warning(
                self.d.object_ref(&()),
                "SelectingAll",
                "Sync",
                "This deployment is selecting all pods. A non-empty selector is required.".into(),
            );
            let observed = self
                .d
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            let generation = self.d.metadata.generation.unwrap_or(0);
            if observed < generation {
                self.d.status.get_or_insert_default().observed_generation = Some(generation);
                self.update_status().await?;
            }
            return Ok(Action::await_change());
        }
        let selector: Selector = match spec.selector.clone().try_into() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(deployment = %self.name, error = %e, "invalid selector");
                return Ok(Action::await_change());
            }
        };
        let Some(owner) = Owner::from_meta("apps/v1", "Deployment", &self.d.metadata) else {
            return Ok(Action::await_change());
        };
        let mut rss = self.claim_replica_sets(&owner, &selector).await?;

        if self.d.metadata.deletion_timestamp.is_some() {
            let fam = self.family(&mut rss, &owner, false).await?;
            return self.sync_status(&fam).await;
        }
        self.check_paused_conditions().await?;
        if self.paused() || self.is_scaling_event(&mut rss, &owner).await? {
            return self.scale_only(&mut rss, &owner).await;
        }
        if strategy::is_rolling(&self.d) {
            self.rollout_rolling(&mut rss, &owner).await
        } else {
            self.rollout_recreate(&mut rss, &owner, &selector).await
        }
    }

    async fn update_status(&mut self) -> Result<(), Error> {
        let updated = self
            .api
            .replace_status(&self.name, &PostParams::default(), &self.d)
            .await?;
        self.d = updated;
        Ok(())
    }

    /// ReplicaSets in the namespace the Deployment owns or adopts.
    async fn claim_replica_sets(
        &self,
        owner: &Owner,
        selector: &Selector,
    ) -> Result<Vec<ReplicaSet>, Error> {
        let candidates: Vec<ReplicaSet> = self
            .ctx
            .replica_sets
            .state()
            .iter()
            .filter(|rs| rs.metadata.namespace.as_deref() == Some(self.ns.as_str()))
            .map(|rs| (**rs).clone())
            .collect();
        Ok(ownership::claim(&self.rs_api, &self.api, owner, selector, candidates).await?)
    }

    /// Sets the Deployment's revision annotation (written with the status, as
    /// upstream does); whether it changed.
    fn set_revision(&mut self, revision: &str) -> bool {
        let annotations = self.d.metadata.annotations.get_or_insert_default();
        if annotations.get(util::REVISION).map(String::as_str) == Some(revision) {
            return false;
        }
        annotations.insert(util::REVISION.to_string(), revision.to_string());
        true
    }

    fn set_progressing(&mut self, status: &str, reason: &str, message: String) {
        let now = self.now();
        let st = self.d.status.get_or_insert_default();
        status::set_condition(
            st,
            status::new_condition(status::PROGRESSING, status, reason, message, now),
        );
    }

    /// Splits the ReplicaSets into new and old, syncing the new one's
    /// annotations and the Deployment's revision, and creating the new one
    /// if `create` and it does not exist.
    async fn family(
        &mut self,
        rss: &mut [ReplicaSet],
        owner: &Owner,
        create: bool,
    ) -> Result<Family, Error> {
        let old: Vec<ReplicaSet> = util::find_old(&self.d, rss).into_iter().cloned().collect();
        let new = self.new_replica_set(rss, &old, owner, create).await?;
        if let Some(n) = &new {
            replace_in(rss, n);
        }
        Ok(Family { new, old })
    }

    async fn new_replica_set(
        &mut self,
        rss: &[ReplicaSet],
        old: &[ReplicaSet],
        owner: &Owner,
        create: bool,
    ) -> Result<Option<ReplicaSet>, Error> {
        let old_refs: Vec<&ReplicaSet> = old.iter().collect();
        let new_revision = (util::max_revision(&old_refs) + 1).to_string();
        let min_ready = self
            .d
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0);

        if let Some(existing) = util::find_new(&self.d, rss) {
            let mut copy = existing.clone();
            let annotations_changed =
                util::set_new_rs_annotations(&self.d, &mut copy, &new_revision, true);
            let spec = copy.spec.get_or_insert_default();
            if annotations_changed || spec.min_ready_seconds.unwrap_or(0) != min_ready {
                spec.min_ready_seconds = Some(min_ready);
                let updated = self
                    .rs_api
                    .replace(util::name(existing), &PostParams::default(), &copy)
                    .await?;
                return Ok(Some(updated));
            }
            let revision = copy
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(util::REVISION))
                .cloned()
                .unwrap_or_default();
            let mut needs_update = self.set_revision(&revision);
            let has_progressing = self
                .d
                .status
                .as_ref()
                .and_then(|s| status::get_condition(s, status::PROGRESSING))
                .is_some();
            if status::has_progress_deadline(&self.d) && !has_progressing {
                let message = format!("Found new replica set \"{}\"", util::name(&copy));
                self.set_progressing("True", status::FOUND_NEW_RS, message);
                needs_update = true;
            }
            if needs_update {
                self.update_status().await?;
            }
            return Ok(Some(copy));
        }
        if !create {
            return Ok(None);
        }

        let Some(spec) = self.d.spec.clone() else {
            return Ok(None);
        };
        let collision_count = self.d.status.as_ref().and_then(|s| s.collision_count);
        let pod_hash = hash::hash_value(&util::hashable_template(&spec.template), collision_count);
        let mut template = spec.template.clone();
        template
            .metadata
            .get_or_insert_default()
            .labels
            .get_or_insert_default()
            .insert(util::HASH_LABEL.to_string(), pod_hash.clone());
        let mut selector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_default()
            .insert(util::HASH_LABEL.to_string(), pod_hash.clone());
        let rs_name = format!("{}-{}", self.name, pod_hash);
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(rs_name.clone()),
                namespace: Some(self.ns.clone()),
                owner_references: Some(vec![owner.reference()]),
                labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: Some(min_ready),
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let mut all: Vec<&ReplicaSet> = old.iter().collect();
        all.push(&rs);
        let replicas = rolling::new_rs_new_replicas(&self.d, &all, 0);
        if let Some(s) = rs.spec.as_mut() {
            s.replicas = Some(replicas);
        }
        util::set_new_rs_annotations(&self.d, &mut rs, &new_revision, false);

        let (created, already_existed) = match self.rs_api.create(&PostParams::default(), &rs).await
        {
            Ok(created) => {
                tracing::info!(deployment = %self.name, replicaset = %rs_name, replicas, "created new ReplicaSet");
                (created, false)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // Ours already (a slow cache), or a hash collision.
                let existing = self.rs_api.get_opt(&rs_name).await?;
                let ours = existing.filter(|e| {
                    ownership::controller_of(&e.metadata).is_some_and(|r| r.uid == owner.uid)
                        && e.spec
                            .as_ref()
                            .and_then(|s| s.template.as_ref())
                            .is_some_and(|t| util::templates_equal_ignoring_hash(&spec.template, t))
                });
                match ours {
                    Some(e) => (e, true),
                    None => {
                        let st = self.d.status.get_or_insert_default();
                        st.collision_count = Some(st.collision_count.unwrap_or(0) + 1);
                        self.update_status().await?;
                        return Err(Error::Collision(rs_name));
                    }
                }
            }
            Err(e) => {
                let terminating = matches!(&e, kube::Error::Api(s) if s.details.as_ref().is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating")));
                if terminating {
                    return Err(e.into());
                }
                let message = format!(
                    "Failed to create new replica set \"{rs_name}\": {}",
                    api_errors::message(&e)
                );
                if status::has_progress_deadline(&self.d) {
                    self.set_progressing("False", status::FAILED_RS_CREATE, message.clone());
                    if let Err(se) = self.update_status().await {
                        tracing::warn!(deployment = %self.name, error = %se, "recording the create failure");
                    }
                }
                self.ctx
                    .events
                    .warning(self.d.object_ref(&()), "FailedCreate", "Create", message);
                return Err(e.into());
            }
        };
        if !already_existed && replicas > 0 {
            self.ctx.events.normal(
                self.d.object_ref(&()),
                "ScalingReplicaSet",
                "Scale",
                format!(
                    "Scaled up replica set {} from 0 to {replicas}",
                    util::name(&created)
                ),
            );
        }
        let mut needs_update = self.set_revision(&new_revision);
        if !already_existed && status::has_progress_deadline(&self.d) {
            let message = format!("Created new replica set \"{}\"", util::name(&created));
            self.set_progressing("True", status::NEW_RS_CREATED, message);
            needs_update = true;
        }
        if needs_update {
            self.update_status().await?;
        }
        Ok(Some(created))
    }

    /// Sets a ReplicaSet's size and replicas annotations; whether the size
    /// changed, and the ReplicaSet as now stored.
    async fn scale_rs(&self, rs: &ReplicaSet, size: i32) -> Result<(bool, ReplicaSet), Error> {
        let desired = strategy::replicas(&self.d);
        let max = desired + strategy::max_surge(&self.d);
        let old = util::spec_replicas(rs);
        let size_changed = old != size;
        if !size_changed && !util::replicas_annotations_need_update(rs, desired, max) {
            return Ok((false, rs.clone()));
        }
        let mut copy = rs.clone();
        copy.spec.get_or_insert_default().replicas = Some(size);
        util::set_replicas_annotations(&mut copy, desired, max);
        let updated = self
            .rs_api
            .replace(util::name(rs), &PostParams::default(), &copy)
            .await?;
        if size_changed {
            let direction = if size > old { "up" } else { "down" };
            tracing::info!(deployment = %self.name, replicaset = %util::name(rs), from = old, to = size, "scaled {direction} replica set");
            self.ctx.events.normal(
                self.d.object_ref(&()),
                "ScalingReplicaSet",
                "Scale",
                format!(
                    "Scaled {direction} replica set {} from {old} to {size}",
                    util::name(rs)
                ),
            );
        }
        Ok((size_changed, updated))
    }

    async fn scale_rs_if_needed(
        &self,
        rs: &ReplicaSet,
        size: i32,
    ) -> Result<(bool, ReplicaSet), Error> {
        if util::spec_replicas(rs) == size {
            return Ok((false, rs.clone()));
        }
        self.scale_rs(rs, size).await
    }

    /// Paused and resumed Deployments show it in `Progressing` (unless the
    /// rollout already timed out).
    async fn check_paused_conditions(&mut self) -> Result<(), Error> {
        if !status::has_progress_deadline(&self.d) {
            return Ok(());
        }
        let reason = self
            .d
            .status
            .as_ref()
            .and_then(|s| status::get_condition(s, status::PROGRESSING))
            .and_then(|c| c.reason.clone());
        if reason.as_deref() == Some(status::TIMED_OUT) {
            return Ok(());
        }
        let paused_recorded = reason.as_deref() == Some(status::PAUSED);
        if self.paused() && !paused_recorded {
            self.set_progressing("Unknown", status::PAUSED, "Deployment is paused".into());
        } else if !self.paused() && paused_recorded {
            self.set_progressing("Unknown", status::RESUMED, "Deployment is resumed".into());
        } else {
            return Ok(());
        }
        self.update_status().await
    }

    /// Whether only `spec.replicas` changed: an active ReplicaSet is annotated
    /// with a different desired count.
    async fn is_scaling_event(
        &mut self,
        rss: &mut [ReplicaSet],
        owner: &Owner,
    ) -> Result<bool, Error> {
        let fam = self.family(rss, owner, false).await?;
        let desired = strategy::replicas(&self.d);
        Ok(util::active(&fam.all())
            .iter()
            .any(|rs| util::desired_replicas_annotation(rs).is_some_and(|a| a != desired)))
    }

    /// Scaling without a rollout (also the whole sync of a paused Deployment).
    async fn scale_only(&mut self, rss: &mut [ReplicaSet], owner: &Owner) -> Result<Action, Error> {
        let mut fam = self.family(rss, owner, false).await?;
        self.scale(&mut fam).await?;
        if self.paused() {
            self.cleanup(&fam.old).await?;
        }
        self.sync_status(&fam).await
    }

    async fn scale(&self, fam: &mut Family) -> Result<(), Error> {
        let desired = strategy::replicas(&self.d);
        let old_refs = fam.old_refs();
        if let Some(rs) = scale::find_active_or_latest(fam.new.as_ref(), &old_refs).cloned() {
            if util::spec_replicas(&rs) != desired {
                let (_, updated) = self.scale_rs_if_needed(&rs, desired).await?;
                fam.replace(updated);
            }
            return Ok(());
        }
        if scale::is_saturated(&self.d, fam.new.as_ref()) {
            let olds: Vec<ReplicaSet> =
                util::active(&fam.old_refs()).into_iter().cloned().collect();
            for old in olds {
                let (_, updated) = self.scale_rs_if_needed(&old, 0).await?;
                fam.replace(updated);
            }
            return Ok(());
        }
        if strategy::is_rolling(&self.d) {
            let sizes = scale::proportional_sizes(&self.d, &util::active(&fam.all()));
            for (name, size) in sizes {
                if let Some(rs) = fam.get(&name) {
                    let (_, updated) = self.scale_rs(&rs, size).await?;
                    fam.replace(updated);
                }
            }
        }
        Ok(())
    }

    async fn rollout_rolling(
        &mut self,
        rss: &mut [ReplicaSet],
        owner: &Owner,
    ) -> Result<Action, Error> {
        let mut fam = self.family(rss, owner, true).await?;
        let Some(new) = fam.new.clone() else {
            return self.sync_rollout_status(&fam).await;
        };
        if let Some(target) = rolling::new_rs_target(&self.d, &fam.all(), &new) {
            let (scaled, updated) = self.scale_rs_if_needed(&new, target).await?;
            fam.replace(updated);
            if scaled {
                return self.sync_rollout_status(&fam).await;
            }
        }
        let new = fam.new.clone().unwrap_or(new);
        let old_refs = fam.old_refs();
        let targets = rolling::old_rs_targets(&self.d, &fam.all(), &util::active(&old_refs), &new);
        if !targets.is_empty() {
            for (name, size) in targets {
                if let Some(rs) = fam.get(&name) {
                    let (_, updated) = self.scale_rs_if_needed(&rs, size).await?;
                    fam.replace(updated);
                }
            }
            return self.sync_rollout_status(&fam).await;
        }
        if status::complete(&self.d, &self.d.status.clone().unwrap_or_default()) {
            self.cleanup(&fam.old).await?;
        }
        self.sync_rollout_status(&fam).await
    }

    async fn rollout_recreate(
        &mut self,
        rss: &mut [ReplicaSet],
        owner: &Owner,
        selector: &Selector,
    ) -> Result<Action, Error> {
        let mut fam = self.family(rss, owner, false).await?;
        let mut scaled_down = false;
        let olds: Vec<ReplicaSet> = util::active(&fam.old_refs()).into_iter().cloned().collect();
        for old in olds {
            let (scaled, updated) = self.scale_rs_if_needed(&old, 0).await?;
            scaled_down |= scaled;
            fam.replace(updated);
        }
        if scaled_down || self.old_pods_running(&fam, selector) {
            return self.sync_rollout_status(&fam).await;
        }
        if fam.new.is_none() {
            fam = self.family(rss, owner, true).await?;
        }
        if let Some(new) = fam.new.clone() {
            let (_, updated) = self
                .scale_rs_if_needed(&new, strategy::replicas(&self.d))
                .await?;
            fam.replace(updated);
        }
        if status::complete(&self.d, &self.d.status.clone().unwrap_or_default()) {
            self.cleanup(&fam.old).await?;
        }
        self.sync_rollout_status(&fam).await
    }

    /// Whether any pod of an old ReplicaSet still runs (or may run).
    fn old_pods_running(&self, fam: &Family, selector: &Selector) -> bool {
        if util::total_status(&fam.old_refs()) > 0 {
            return true;
        }
        let old_uids: Vec<String> = fam
            .old
            .iter()
            .filter_map(|rs| rs.metadata.uid.clone())
            .collect();
        let empty = Default::default();
        self.ctx.pods.state().iter().any(|p| {
            p.metadata.namespace.as_deref() == Some(self.ns.as_str())
                && selector.matches(p.metadata.labels.as_ref().unwrap_or(&empty))
                && ownership::controller_of(&p.metadata).is_some_and(|r| old_uids.contains(&r.uid))
                && !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
        })
    }

    /// Deletes the oldest fully scaled-down old ReplicaSets beyond
    /// `revisionHistoryLimit`.
    async fn cleanup(&self, old: &[ReplicaSet]) -> Result<(), Error> {
        let Some(limit) = self.d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
            return Ok(());
        };
        if limit == i32::MAX {
            return Ok(());
        }
        let mut cleanable: Vec<&ReplicaSet> = old
            .iter()
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let excess = i32::try_from(cleanable.len()).unwrap_or(i32::MAX) - limit;
        if excess <= 0 {
            return Ok(());
        }
        cleanable.sort_by(|a, b| util::by_revision(a, b));
        for rs in cleanable
            .into_iter()
            .take(usize::try_from(excess).unwrap_or(0))
        {
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if util::status_replicas(rs) != 0
                || util::spec_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
            {
                continue;
            }
            tracing::info!(deployment = %self.name, replicaset = %util::name(rs), "deleting old ReplicaSet beyond the revision history limit");
            match self
                .rs_api
                .delete(util::name(rs), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Writes the plain status (counts and `Available`) if it changed.
    async fn sync_status(&mut self, fam: &Family) -> Result<Action, Error> {
        let new_status = status::calculate(&fam.all(), fam.new.as_ref(), &self.d, self.now());
        self.write_if_changed(new_status).await?;
        Ok(Action::await_change())
    }

    /// Writes the status after a rollout step; a rollout that may pass its
    /// deadline is looked at again then.
    async fn sync_rollout_status(&mut self, fam: &Family) -> Result<Action, Error> {
        let now = self.now();
        let new_status = status::rollout(&fam.all(), fam.new.as_ref(), &self.d, now);
        if !self.write_if_changed(new_status.clone()).await?
            && let Some(after) = status::stuck_requeue(&self.d, &new_status, now)
        {
            return Ok(Action::requeue(after));
        }
        Ok(Action::await_change())
    }

    async fn write_if_changed(
        &mut self,
        new_status: k8s_openapi::api::apps::v1::DeploymentStatus,
    ) -> Result<bool, Error> {
        let current = status::normalized(self.d.status.clone().unwrap_or_default());
        if current == new_status {
            return Ok(false);
        }
        self.d.status = Some(new_status);
        self.update_status().await?;
        Ok(true)
    }
}
