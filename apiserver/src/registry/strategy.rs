//! Per-resource behaviour plugged into the generic store (upstream's `RESTCreateStrategy`,
//! `RESTUpdateStrategy`, `RESTDeleteStrategy`). Every method has the generic default;
//! a built-in kind overrides only what differs. Strategies are zero-sized.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::api_error::{ApiResult, FieldError};
use crate::registry::store::{Store, UpdateTarget};
use crate::registry::{config_objects, defaults, pod_admission, service_ips, volumes};

pub trait Strategy: Send + Sync + 'static {
    /// Sets defaults and system-owned fields of a new object (status is already cleared
    /// when the resource has a status subresource and [`Strategy::keeps_status_on_create`] is false).
    fn prepare_for_create(&self, _obj: &mut Value) {}

    /// Sets defaults on an updated object (old status is already carried over).
    fn prepare_for_update(&self, obj: &mut Value, _old: &Value) {
        self.apply_defaults(obj);
    }

    /// Defaults shared by create and update.
    fn apply_defaults(&self, _obj: &mut Value) {}

    /// Kind-specific validation of a new object.
    fn validate(&self, _obj: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    /// Kind-specific checks of an update against the stored object (immutable
    /// fields), after [`Strategy::validate`] of the new object.
    fn validate_update(&self, _obj: &Value, _old: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    /// The update checks for a write through `target` (the main resource or
    /// a subresource); most kinds check every write the same way.
    fn validate_update_of(
        &self,
        _target: UpdateTarget,
        obj: &Value,
        old: &Value,
    ) -> Vec<FieldError> {
        self.validate_update(obj, old)
    }

    /// Whether `metadata.generation` is kept (1 on create, bumped on spec changes).
    fn tracks_generation(&self) -> bool {
        false
    }

    /// Whether a create keeps a client-supplied status.
    fn keeps_status_on_create(&self) -> bool {
        false
    }

    /// Whether PUT on a missing object creates it.
    fn allow_create_on_update(&self) -> bool {
        false
    }

    /// Grace period for a delete; `Some(n > 0)` marks the object instead of removing it.
    fn graceful_delete_seconds(&self, _obj: &Value, _requested: Option<i64>) -> Option<i64> {
        None
    }

    /// Whether kind-specific finalizers (a namespace's `spec.finalizers`) still hold the object.
    fn has_pending_finalizers(&self, _obj: &Value) -> bool {
        false
    }

    /// Built-in admission of a new object that reads other objects (may change
    /// it, or refuse it); runs on dry runs too, and writes nothing.
    fn admit<'a>(
        &'a self,
        _store: &'a Store,
        _obj: &'a mut Value,
        _warnings: &'a super::Warnings,
    ) -> BoxFuture<'a, ApiResult<()>> {
        futures::future::ready(Ok(())).boxed()
    }

    /// Allocates what a new object needs from other objects (a Service's cluster IP),
    /// after validation and before the object is stored.
    fn before_create<'a>(
        &'a self,
        _store: &'a Store,
        _obj: &'a mut Value,
    ) -> BoxFuture<'a, ApiResult<()>> {
        futures::future::ready(Ok(())).boxed()
    }

    /// Releases what [`Strategy::before_create`] allocated, once the object is gone
    /// (or its create failed).
    fn after_delete<'a>(&'a self, _store: &'a Store, _obj: &'a Value) -> BoxFuture<'a, ()> {
        futures::future::ready(()).boxed()
    }

    /// Called when a delete is requested, before finalizers are considered
    /// (namespaces enter `Terminating` here).
    fn prepare_for_delete(&self, _obj: &mut Value) {}

    // --- Hooks for resources without a typed codec (custom resources). ---

    /// Prunes and defaults a decoded request object; returns it with the
    /// paths of the fields it dropped, or `None` to keep the object as sent.
    fn normalize(&self, _obj: &Value) -> Option<(Value, Vec<String>)> {
        None
    }

    /// This version's form of a stored object (conversion, defaulting on read).
    fn read_stored(&self, obj: Value) -> Value {
        obj
    }

    /// Whether [`Strategy::read_stored`] returns stored objects unchanged, so
    /// that lists may be written from the stored bytes. A strategy that
    /// overrides `read_stored` must answer false.
    fn serves_stored_as_is(&self) -> bool {
        true
    }

    /// The stored form of this version's object.
    fn write_stored(&self, obj: Value) -> Value {
        obj
    }

    /// Table columns and the cells of one row, when the resource prints its
    /// own (a CRD's `additionalPrinterColumns`).
    fn table(&self) -> Option<&dyn TablePrinter> {
        None
    }

    /// Where the `scale` subresource reads and writes.
    fn scale_paths(&self) -> ScalePaths {
        ScalePaths::default()
    }

    /// The field-selector labels a custom resource declares (a CRD version's
    /// `selectableFields`, without the leading dot); `None` for built-in
    /// kinds, whose labels `crate::selectors` knows.
    fn selectable_fields(&self) -> Option<&[String]> {
        None
    }

    /// The OpenAPI definitions a custom resource publishes; `None` for
    /// built-in kinds, whose documents are vendored.
    fn openapi(&self) -> Option<&crate::openapi::CustomSchemas> {
        None
    }
}

/// A resource's own Table columns.
pub trait TablePrinter: Send + Sync {
    /// `meta.k8s.io/v1` `TableColumnDefinition`s.
    fn columns(&self) -> Vec<Value>;
    fn cells(&self, obj: &Value) -> Vec<Value>;
}

/// JSON pointers of the fields a `Scale` maps to.
#[derive(Clone, Debug)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    /// A label selector object (workloads) or string (custom resources).
    pub label_selector: Option<String>,
}

impl Default for ScalePaths {
    fn default() -> Self {
        ScalePaths {
            spec_replicas: "/spec/replicas".into(),
            status_replicas: "/status/replicas".into(),
            label_selector: Some("/spec/selector".into()),
        }
    }
}

/// Resources with no special behaviour.
pub struct Generic;
impl Strategy for Generic {}

/// Workload controllers: generation tracking, status owned by the controller.
pub struct Workload;
impl Strategy for Workload {
    fn prepare_for_create(&self, obj: &mut Value) {
        self.apply_defaults(obj);
        defaults::job_selector(obj);
    }
    fn apply_defaults(&self, obj: &mut Value) {
        defaults::workload(obj);
    }
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        crate::validation::workload(obj)
    }
    fn tracks_generation(&self) -> bool {
        true
    }
}

pub struct Pods;
impl Strategy for Pods {
    fn prepare_for_create(&self, obj: &mut Value) {
        self.apply_defaults(obj);
        let qos = defaults::qos_class(obj.pointer("/spec").unwrap_or(&Value::Null));
        obj["status"] = json!({ "phase": "Pending", "qosClass": qos });
    }
    fn prepare_for_update(&self, obj: &mut Value, _old: &Value) {
        self.apply_defaults(obj);
        // Upstream's DefaultTolerationSeconds admits updates as well as creates.
        pod_admission::default_toleration_seconds(obj);
    }
    fn apply_defaults(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec") {
            defaults::pod(spec);
        }
    }
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        defaults::validate_pod_spec(obj.get("spec").unwrap_or(&Value::Null), "spec")
    }
    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<FieldError> {
        crate::validation::pod_update::validate(obj, old)
    }
    fn validate_update_of(
        &self,
        target: UpdateTarget,
        obj: &Value,
        old: &Value,
    ) -> Vec<FieldError> {
        match target {
            UpdateTarget::EphemeralContainers => {
                crate::validation::pod_update::validate_ephemeral(obj, old)
            }
            _ => self.validate_update(obj, old),
        }
    }
    fn admit<'a>(
        &'a self,
        store: &'a Store,
        obj: &'a mut Value,
        warnings: &'a super::Warnings,
    ) -> BoxFuture<'a, ApiResult<()>> {
        pod_admission::admit(store, obj, warnings).boxed()
    }
    fn tracks_generation(&self) -> bool {
        true
    }
    fn graceful_delete_seconds(&self, obj: &Value, requested: Option<i64>) -> Option<i64> {
        // Pods that never reached a node, or already finished, go at once.
        let unscheduled = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty();
        let phase = obj
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        if unscheduled || phase == "Succeeded" || phase == "Failed" {
            return None;
        }
        let default = obj
            .pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(30);
        Some(requested.unwrap_or(default)).filter(|s| *s > 0)
    }
}

pub struct Namespaces;
impl Strategy for Namespaces {
    fn prepare_for_create(&self, obj: &mut Value) {
        obj["status"] = json!({ "phase": "Active" });
        if obj.pointer("/spec/finalizers").is_none() {
            obj["spec"] = json!({ "finalizers": ["kubernetes"] });
        }
        self.apply_defaults(obj);
    }
    fn apply_defaults(&self, obj: &mut Value) {
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if let Some(labels) = labels.as_object_mut() {
                labels.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
    }
    fn prepare_for_delete(&self, obj: &mut Value) {
        obj["status"] = json!({ "phase": "Terminating" });
    }
    fn has_pending_finalizers(&self, obj: &Value) -> bool {
        obj.pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty())
    }
}

/// Services: defaults now, cluster IP allocation in the service registry.
pub struct Services;
impl Strategy for Services {
    fn prepare_for_create(&self, obj: &mut Value) {
        self.apply_defaults(obj);
        obj["status"] = json!({ "loadBalancer": {} });
    }
    fn apply_defaults(&self, obj: &mut Value) {
        defaults::service(obj);
    }
    fn prepare_for_update(&self, obj: &mut Value, old: &Value) {
        // Allocated fields are kept when an update omits them (e.g. a re-applied manifest).
        for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            if obj.pointer(&format!("/spec/{field}")).is_none()
                && let Some(v) = old.pointer(&format!("/spec/{field}"))
                && let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut)
            {
                spec.insert(field.to_string(), v.clone());
            }
        }
        self.apply_defaults(obj);
    }
    fn before_create<'a>(
        &'a self,
        store: &'a Store,
        obj: &'a mut Value,
    ) -> BoxFuture<'a, ApiResult<()>> {
        service_ips::allocate(store, obj).boxed()
    }
    fn after_delete<'a>(&'a self, store: &'a Store, obj: &'a Value) -> BoxFuture<'a, ()> {
        service_ips::release(store, obj).boxed()
    }
}

/// Resources whose spec changes bump `metadata.generation` (starting at 1), as
/// their upstream strategies do, so controllers can report `observedGeneration`.
pub struct TracksGeneration;
impl Strategy for TracksGeneration {
    fn tracks_generation(&self) -> bool {
        true
    }
}

/// Objects that are commonly written with PUT-or-create.
pub struct CreateOnUpdate;
impl Strategy for CreateOnUpdate {
    fn allow_create_on_update(&self) -> bool {
        true
    }
}

/// Nodes and volumes: status written by their creator is kept.
pub struct KeepStatus;
impl Strategy for KeepStatus {
    fn keeps_status_on_create(&self) -> bool {
        true
    }
}

/// Whether DELETE answers with the deleted object rather than a success
/// `Status`: upstream decides this per store (`ReturnDeletedObject`), not per
/// strategy, and these are the built-in stores that set it.
pub fn returns_deleted_object(group: &str, plural: &str) -> bool {
    matches!(
        (group, plural),
        (
            "",
            "pods"
                | "namespaces"
                | "services"
                | "serviceaccounts"
                | "resourcequotas"
                | "persistentvolumes"
                | "persistentvolumeclaims"
                | "podtemplates"
        ) | (
            "storage.k8s.io",
            "csidrivers"
                | "csinodes"
                | "storageclasses"
                | "volumeattachments"
                | "volumeattributesclasses"
        ) | (
            "resource.k8s.io",
            "deviceclasses"
                | "resourceclaims"
                | "resourceclaimtemplates"
                | "resourceslices"
                | "devicetaintrules"
        )
    )
}

/// The strategy of a built-in resource.
pub fn for_builtin(group: &str, plural: &str) -> Arc<dyn Strategy> {
    match (group, plural) {
        ("", "pods") => Arc::new(Pods),
        ("", "namespaces") => Arc::new(Namespaces),
        ("", "services") => Arc::new(Services),
        ("", "nodes") => Arc::new(KeepStatus),
        ("", "secrets") => Arc::new(config_objects::Secrets),
        ("", "persistentvolumes") => Arc::new(volumes::PersistentVolumes),
        ("", "persistentvolumeclaims") => Arc::new(volumes::PersistentVolumeClaims),
        ("", "configmaps") => Arc::new(config_objects::ConfigMaps),
        ("", "endpoints" | "events" | "limitranges") | ("coordination.k8s.io", "leases") => {
            Arc::new(CreateOnUpdate)
        }
        ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets")
        | ("", "replicationcontrollers" | "podtemplates")
        | ("batch", "jobs" | "cronjobs") => Arc::new(Workload),
        ("policy", "poddisruptionbudgets")
        | ("networking.k8s.io", "ingresses" | "networkpolicies")
        | ("flowcontrol.apiserver.k8s.io", "flowschemas" | "prioritylevelconfigurations")
        | (
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations"
            | "validatingwebhookconfigurations"
            | "validatingadmissionpolicies"
            | "validatingadmissionpolicybindings",
        ) => Arc::new(TracksGeneration),
        ("apiextensions.k8s.io", "customresourcedefinitions") => Arc::new(crate::crd::CrdStrategy),
        _ => Arc::new(Generic),
    }
}
