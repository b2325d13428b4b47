//! The one generic store: create, get, list, update, delete and watch for every
//! resource in the table, parameterised by each resource's strategy. It owns the
//! metadata rules (uid, names, resourceVersion, generation, finalizers, graceful
//! deletion) and builds storage keys; handlers never do.

use std::sync::Arc;

use serde_json::{Value, json};

use super::meta::{self, decode_stored, encode_for_storage};
use super::namespaces::{NamespaceCache, Phase, phase_of};
use super::{DeleteOptions, DeleteOutcome, WriteOptions};
use crate::api_error::{ApiError, ApiResult, FieldError};
use crate::managed;
use crate::resources::{ResourceInfo, ResourceTable};
use crate::storage::{SharedStorage, StorageError};
use crate::validation::names;

/// How an update was asked for: the whole object (PUT) or a subresource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateTarget {
    Main,
    Status,
    /// Kind-specific finalizers (namespaces' `finalize`).
    Finalize,
    /// A write the server computes itself for a subresource that changes spec
    /// and status together (`pods/binding`): the new object is taken whole, with
    /// no strategy hooks and no `managedFields` entry, as upstream's subresources
    /// that write through storage directly.
    Server,
    /// `pods/ephemeralcontainers`: only `spec.ephemeralContainers` is taken
    /// from the new object.
    EphemeralContainers,
}

#[derive(Clone)]
pub struct Store {
    pub(crate) storage: SharedStorage,
    pub(crate) table: ResourceTable,
    namespaces: NamespaceCache,
    pub(crate) quota_index: super::quota::index::QuotaIndex,
}

impl Store {
    pub fn new(storage: SharedStorage, table: ResourceTable) -> Store {
        Store {
            storage,
            table,
            namespaces: NamespaceCache::default(),
            quota_index: Default::default(),
        }
    }

    pub fn storage(&self) -> &SharedStorage {
        &self.storage
    }

    pub async fn get(&self, info: &ResourceInfo, ns: Option<&str>, name: &str) -> ApiResult<Value> {
        let key = info.key(ns, name);
        match self.storage.get(&key).await {
            Ok(Some(kv)) => decode_stored(info, &kv),
            Ok(None) => Err(ApiError::not_found(info, name)),
            Err(e) => Err(ApiError::from_storage(e, info, name)),
        }
    }

    async fn check_namespace(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
    ) -> ApiResult<()> {
        let Some(ns) = ns.filter(|_| info.namespaced) else {
            return Ok(());
        };
        let Some(ns_info) = self.table.get("", "v1", "namespaces") else {
            return Ok(());
        };
        let cached = self
            .namespaces
            .get(&self.storage, &ns_info.list_prefix(None), ns)
            .await;
        match cached {
            Some(Phase::Active) => return Ok(()),
            Some(Phase::Terminating) => {
                return Err(ApiError::namespace_terminating(info, name, ns));
            }
            None => {}
        }
        match self.storage.get(&ns_info.key(None, ns)).await {
            Ok(Some(kv)) => {
                let obj = decode_stored(info, &kv)?;
                if phase_of(&obj) == Phase::Terminating {
                    return Err(ApiError::namespace_terminating(info, name, ns));
                }
                Ok(())
            }
            Ok(None) => Err(ApiError::namespace_not_found(ns)),
            Err(e) => Err(ApiError::from_storage(e, &ns_info, ns)),
        }
    }

    /// Creates `obj` (already decoded, kind-checked and namespaced by the handler).
    pub async fn create(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        let strategy = info.strategy.clone();
        {
            let m = meta::meta_mut(&mut obj);
            if m.get("resourceVersion")
                .and_then(Value::as_str)
                .is_some_and(|rv| !rv.is_empty())
            {
                return Err(ApiError::bad_request(
                    "resourceVersion should not be set on objects to be created",
                ));
            }
            let has_name = m
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            let prefix = m
                .get("generateName")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty());
            if let Some(prefix) = prefix.filter(|_| !has_name) {
                let generated = meta::generate_name(prefix);
                m.insert("name".into(), json!(generated));
            }
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
            m.remove("selfLink");
            if strategy.tracks_generation() {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
        }
        if info.subresource("status").is_some()
            && !strategy.keeps_status_on_create()
            && let Some(o) = obj.as_object_mut()
        {
            o.remove("status");
        }
        strategy.prepare_for_create(&mut obj);
        // Upstream's types hold status as a struct, which Go's JSON always
        // writes: a new object comes back with `"status": {}` at least
        // (clients destructure it).
        if info.subresource("status").is_some()
            && let Some(o) = obj.as_object_mut()
        {
            let status = o.entry("status").or_insert_with(|| json!({}));
            if let Some(zero) = &info.initial_status {
                fill_absent(status, zero);
            }
        }
        let name = meta::name(&obj).to_string();
        self.validate(info, &obj, None)?;
        if let Some(check) = &opts.grant_check {
            check.check(&obj)?;
        }
        if !opts.apply {
            managed::track_update(
                info,
                managed::Scope::of(info, false),
                &opts.manager(),
                None,
                &mut obj,
            )?;
        }
        self.check_namespace(info, ns, &name).await?;
        strategy.admit(self, &mut obj, &opts.warnings).await?;
        super::quota::admit(self, info, &obj, opts.dry_run).await?;
        if opts.dry_run {
            return Ok(obj);
        }
        let key = info.key(ns, &name);
        strategy.before_create(self, &mut obj).await?;
        let stored = match encode_for_storage(info, &obj) {
            Ok(bytes) => self
                .storage
                .create(&key, bytes)
                .await
                .map_err(|e| ApiError::from_storage(e, info, &name)),
            Err(e) => Err(e),
        };
        match stored {
            Ok(rev) => {
                meta::set_resource_version(&mut obj, rev);
                Ok(obj)
            }
            Err(e) => {
                strategy.after_delete(self, &obj).await;
                Err(e)
            }
        }
    }

    /// Name rules and the kind's checks; with `old`, also the checks of an update.
    fn validate(
        &self,
        info: &ResourceInfo,
        obj: &Value,
        old: Option<(UpdateTarget, &Value)>,
    ) -> ApiResult<()> {
        let name = meta::name(obj);
        let mut errs = Vec::new();
        let rule = names::name_rule_for(&info.group, &info.plural);
        if name.is_empty() {
            let field = "metadata.name";
            errs.push(FieldError::required(
                field,
                "name or generateName is required",
            ));
        } else {
            for msg in names::validate_name(rule, name) {
                errs.push(FieldError::invalid("metadata.name", name, msg));
            }
        }
        errs.extend(validate_labels_and_annotations(obj));
        errs.extend(info.strategy.validate(obj));
        if let Some((target, old)) = old {
            errs.extend(info.strategy.validate_update_of(target, obj, old));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(info, name, &errs))
        }
    }

    /// Guaranteed update: reads the current object, lets `apply` compute the new one,
    /// and writes it with compare-and-swap, retrying from a fresh read on conflicts
    /// that `apply` did not pin (a body with a resourceVersion pins it).
    ///
    /// `apply` receives `None` when the object does not exist; returning an object
    /// then creates it (create-on-update and server-side apply).
    pub async fn update<F>(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        target: UpdateTarget,
        opts: &WriteOptions,
        mut apply: F,
    ) -> ApiResult<(Value, bool)>
    where
        F: FnMut(Option<&Value>) -> ApiResult<Value>,
    {
        let key = info.key(ns, name);
        let strategy = info.strategy.clone();
        for attempt in 0..64u32 {
            let current = self
                .storage
                .get(&key)
                .await
                .map_err(|e| ApiError::from_storage(e, info, name))?;
            let Some(current) = current else {
                let obj = apply(None)?;
                return self.create(info, ns, obj, opts).await.map(|o| (o, true));
            };
            let old = decode_stored(info, &current)?;
            let mut new = apply(Some(&old))?;
            if meta::name(&new) != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    meta::name(&new)
                )));
            }
            let requested_rv = meta::resource_version(&new).to_string();
            if !requested_rv.is_empty() && requested_rv != current.mod_revision.to_string() {
                return Err(ApiError::stale(info, name));
            }
            self.merge_system_fields(info, target, &mut new, &old);
            match target {
                UpdateTarget::Main | UpdateTarget::EphemeralContainers => {
                    strategy.prepare_for_update(&mut new, &old)
                }
                UpdateTarget::Status | UpdateTarget::Finalize | UpdateTarget::Server => {}
            }
            if strategy.tracks_generation()
                && matches!(
                    target,
                    UpdateTarget::Main | UpdateTarget::EphemeralContainers
                )
                && meta::spec_part(&new) != meta::spec_part(&old)
            {
                let generation = old
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                meta::meta_mut(&mut new).insert("generation".into(), json!(generation + 1));
            }
            // A server-side write (a pod's binding) is not a client's update:
            // the update rules (immutable fields) do not apply to it.
            let checked_against = (target != UpdateTarget::Server).then_some((target, &old));
            self.validate(info, &new, checked_against)?;
            if let Some(check) = &opts.grant_check {
                check.check(&new)?;
            }
            if new.pointer("/metadata/managedFields").is_none()
                && let Some(mf) = old.pointer("/metadata/managedFields")
            {
                meta::meta_mut(&mut new).insert("managedFields".into(), mf.clone());
            }
            if !opts.apply && target != UpdateTarget::Server {
                let scope = managed::Scope::of(info, target == UpdateTarget::Status);
                managed::track_update(info, scope, &opts.manager(), Some(&old), &mut new)?;
            }
            meta::set_resource_version(&mut new, current.mod_revision);
            if new == old && !self.storage.is_stale(&current) {
                return Ok((old, false));
            }
            // A deleting object whose last finalizer is gone is removed by this write.
            let finished = meta::is_deleting(&new)
                && meta::finalizers(&new).is_empty()
                && !strategy.has_pending_finalizers(&new)
                && new
                    .pointer("/metadata/deletionGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    .is_none_or(|g| g <= 0);
            if opts.dry_run {
                return Ok((new, false));
            }
            let result = if finished {
                self.storage
                    .delete(&key, Some(current.mod_revision))
                    .await
                    .map(|kv| kv.mod_revision)
            } else {
                self.storage
                    .update(&key, encode_for_storage(info, &new)?, current.mod_revision)
                    .await
            };
            match result {
                Ok(rev) => {
                    meta::set_resource_version(&mut new, rev);
                    if finished {
                        strategy.after_delete(self, &new).await;
                    }
                    return Ok((new, false));
                }
                Err(StorageError::Conflict { .. }) if requested_rv.is_empty() => {
                    back_off_after_conflict(attempt).await;
                    continue;
                }
                Err(e) => return Err(ApiError::from_storage(e, info, name)),
            }
        }
        Err(ApiError::stale(info, name))
    }

    /// Keeps what an update of `target` must not change.
    fn merge_system_fields(
        &self,
        info: &ResourceInfo,
        target: UpdateTarget,
        new: &mut Value,
        old: &Value,
    ) {
        let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
        let m = meta::meta_mut(new);
        for key in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "namespace",
        ] {
            match old_meta.get(key) {
                Some(v) => m.insert(key.to_string(), v.clone()),
                None => m.remove(key),
            };
        }
        m.remove("selfLink");
        let has_status = info.subresource("status").is_some();
        match target {
            UpdateTarget::Main if has_status => copy_field(new, old, "status"),
            UpdateTarget::Main | UpdateTarget::Server => {}
            UpdateTarget::Status => {
                // A status write keeps the rest of the object as it was: everything
                // outside metadata and status comes from the old object. Metadata
                // changes (labels, annotations) go through, as with most upstream
                // status strategies; system metadata was restored above.
                let spec_keys: Vec<String> = old
                    .as_object()
                    .into_iter()
                    .chain(new.as_object())
                    .flat_map(|o| o.keys().cloned())
                    .filter(|k| {
                        !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")
                    })
                    .collect();
                for key in spec_keys {
                    copy_field(new, old, &key);
                }
            }
            UpdateTarget::EphemeralContainers => {
                let ephemeral = new.pointer("/spec/ephemeralContainers").cloned();
                let rv = meta::resource_version(new).to_string();
                *new = old.clone();
                match ephemeral {
                    Some(list) => new["spec"]["ephemeralContainers"] = list,
                    None => {
                        if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                            spec.remove("ephemeralContainers");
                        }
                    }
                }
                meta::meta_mut(new).insert("resourceVersion".into(), json!(rv));
            }
            UpdateTarget::Finalize => {
                let finalizers = new.pointer("/spec/finalizers").cloned();
                let rv = meta::resource_version(new).to_string();
                *new = old.clone();
                new["spec"]["finalizers"] = finalizers.unwrap_or_else(|| json!([]));
                meta::meta_mut(new).insert("resourceVersion".into(), json!(rv));
            }
        }
    }

    /// Deletes, or marks for deletion while finalizers or a grace period hold the object.
    pub async fn delete(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<DeleteOutcome> {
        let key = info.key(ns, name);
        let strategy = info.strategy.clone();
        for attempt in 0..64u32 {
            let Some(current) = self
                .storage
                .get(&key)
                .await
                .map_err(|e| ApiError::from_storage(e, info, name))?
            else {
                return Err(ApiError::not_found(info, name));
            };
            let old = decode_stored(info, &current)?;
            check_preconditions(info, name, &old, opts)?;
            let mut obj = old.clone();
            strategy.prepare_for_delete(&mut obj);
            let mut finalizers = meta::finalizers(&obj);
            match opts.propagation_policy.as_deref() {
                Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => {
                    finalizers.push("foregroundDeletion".into())
                }
                Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => {
                    finalizers.push("orphan".into())
                }
                _ => {}
            }
            if !finalizers.is_empty() {
                meta::meta_mut(&mut obj).insert("finalizers".into(), json!(finalizers));
            }
            let grace = strategy.graceful_delete_seconds(&obj, opts.grace_period_seconds);
            let held = !finalizers.is_empty() || strategy.has_pending_finalizers(&obj);
            if held || grace.is_some() {
                let m = meta::meta_mut(&mut obj);
                let already = m.get("deletionTimestamp").is_some_and(|v| !v.is_null());
                if !already {
                    let at = chrono::Utc::now() + chrono::Duration::seconds(grace.unwrap_or(0));
                    m.insert(
                        "deletionTimestamp".into(),
                        json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    );
                    m.insert(
                        "deletionGracePeriodSeconds".into(),
                        json!(grace.unwrap_or(0)),
                    );
                } else if let Some(requested) = opts.grace_period_seconds.or(grace) {
                    // A shorter grace period may be asked for later (0 included,
                    // as a kubelet does once containers stopped); never a longer
                    // one. The deletion time moves by the difference.
                    let requested = requested.max(0);
                    let cur = m
                        .get("deletionGracePeriodSeconds")
                        .and_then(Value::as_i64)
                        .unwrap_or(requested);
                    if requested < cur {
                        let at = m
                            .get("deletionTimestamp")
                            .and_then(Value::as_str)
                            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                            .map(|t| t.with_timezone(&chrono::Utc))
                            .unwrap_or_else(chrono::Utc::now)
                            - chrono::Duration::seconds(cur - requested);
                        m.insert(
                            "deletionTimestamp".into(),
                            json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                        );
                        m.insert("deletionGracePeriodSeconds".into(), json!(requested));
                    }
                }
                if obj == old {
                    return Ok(DeleteOutcome::Pending(old));
                }
                if opts.dry_run {
                    return Ok(DeleteOutcome::Pending(obj));
                }
                match self
                    .storage
                    .update(&key, encode_for_storage(info, &obj)?, current.mod_revision)
                    .await
                {
                    Ok(rev) => {
                        meta::set_resource_version(&mut obj, rev);
                        return Ok(DeleteOutcome::Pending(obj));
                    }
                    Err(StorageError::Conflict { .. }) => {
                        back_off_after_conflict(attempt).await;
                        continue;
                    }
                    Err(e) => return Err(ApiError::from_storage(e, info, name)),
                }
            }
            if opts.dry_run {
                return Ok(DeleteOutcome::Deleted(old));
            }
            match self.storage.delete(&key, Some(current.mod_revision)).await {
                Ok(kv) => {
                    let mut gone = old;
                    meta::set_resource_version(&mut gone, kv.mod_revision);
                    strategy.after_delete(self, &gone).await;
                    return Ok(DeleteOutcome::Deleted(gone));
                }
                Err(StorageError::Conflict { .. }) => {
                    back_off_after_conflict(attempt).await;
                    continue;
                }
                Err(e) => return Err(ApiError::from_storage(e, info, name)),
            }
        }
        Err(ApiError::stale(info, name))
    }
}

/// Waits before a read-modify-write retries after losing a race. The
/// embedded store shows a write to readers only once it is durable, so an
/// immediate re-read can still see the revision that just lost: without a
/// pause, the retries could all be spent before the group commit lands.
async fn back_off_after_conflict(attempt: u32) {
    let millis = 1u64 << attempt.min(6);
    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
}

/// Adds the fields of `defaults` that `target` lacks, recursively.
fn fill_absent(target: &mut Value, defaults: &Value) {
    let (Some(t), Some(d)) = (target.as_object_mut(), defaults.as_object()) else {
        return;
    };
    for (k, v) in d {
        match t.get_mut(k) {
            Some(existing) => fill_absent(existing, v),
            None => {
                t.insert(k.clone(), v.clone());
            }
        }
    }
}

fn copy_field(new: &mut Value, old: &Value, field: &str) {
    match old.get(field) {
        Some(v) => new[field] = v.clone(),
        None => {
            if let Some(o) = new.as_object_mut() {
                o.remove(field);
            }
        }
    }
}

fn check_preconditions(
    info: &ResourceInfo,
    name: &str,
    obj: &Value,
    opts: &DeleteOptions,
) -> ApiResult<()> {
    if let Some(uid) = &opts.precondition_uid {
        let actual = meta::str_at(obj, "/metadata/uid").unwrap_or("");
        if uid != actual {
            return Err(ApiError::conflict(
                info,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
            ));
        }
    }
    if let Some(rv) = &opts.precondition_resource_version {
        let actual = meta::resource_version(obj);
        if rv != actual {
            return Err(ApiError::conflict(
                info,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                ),
            ));
        }
    }
    Ok(())
}

/// Shared handle used by handlers.
pub type SharedStore = Arc<Store>;

/// `ValidateLabels` and `ValidateAnnotations` of object metadata: label keys
/// and annotation keys (case-insensitively) are qualified names, label values
/// valid label values.
fn validate_labels_and_annotations(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let map = |key: &str| {
        obj.pointer(&format!("/metadata/{key}"))
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
    };
    for (k, v) in map("labels") {
        for msg in names::is_qualified_name(k) {
            errs.push(FieldError::invalid("metadata.labels", k, msg));
        }
        let v = v.as_str().unwrap_or("");
        for msg in names::is_valid_label_value(v) {
            errs.push(FieldError::invalid("metadata.labels", v, msg));
        }
    }
    for (k, _) in map("annotations") {
        for msg in names::is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid("metadata.annotations", k, msg));
        }
    }
    errs
}
