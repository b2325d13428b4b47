//! Patch metadata for strategic merge patch: which lists merge (and by which
//! key), which maps are replaced wholesale, which carry `retainKeys`.
//!
//! Upstream reads this from the `patchStrategy` / `patchMergeKey` struct tags
//! of the versioned Go type (`k8s.io/api`, `k8s.io/apimachinery` metav1,
//! kube-aggregator, apiextensions). Here a small type graph stands in for the
//! Go types: each modelled type lists only the fields that carry a strategy or
//! lead to one, every other field is "no strategy" (atomic list / recursively
//! merged map), so a PodSpec gets the same treatment wherever it is embedded
//! (`spec`, `spec.template.spec`, `spec.jobTemplate.spec.template.spec`).
//!
//! Tags verified against k8s.io/api v0.34.0. Notable facts: tolerations,
//! taints, `resizePolicy`, `resources.claims`, Endpoints `subsets` and
//! container statuses are atomic; `volumes`, `resourceClaims` and
//! `resourceClaimStatuses` are `merge,retainKeys`; Deployment `strategy` is
//! `retainKeys`; PodDisruptionBudget `selector` is `replace`; Node
//! `podCIDRs` and `metadata.finalizers` merge as sets.

use std::borrow::Cow;

use super::go_compat::go_quote;

/// The non-`retainKeys` part of a field's `patchStrategy` tag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PatchStrategy {
    /// No tag: lists are replaced wholesale, maps merge recursively.
    #[default]
    None,
    /// `merge`: lists merge (by `merge_key`, or as a set of primitives).
    Merge,
    /// `replace`: the field is replaced wholesale, maps included.
    Replace,
}

/// Upstream's `PatchMeta` for one field, plus the name its type reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatchMeta {
    pub strategy: PatchStrategy,
    /// The tag also lists `retainKeys`. Has no effect when applying a patch —
    /// the `$retainKeys` directive in the patch does — but is reported.
    pub retain_keys: bool,
    /// `patchMergeKey`; empty for none.
    pub merge_key: Cow<'static, str>,
    /// `Name()` of the schema reached (the Go kind of the field's element type
    /// for lists, e.g. `struct` or `string`); only appears in the error
    /// `cannot merge lists without merge key for <name>`.
    pub type_name: Cow<'static, str>,
}

impl Default for PatchMeta {
    fn default() -> Self {
        PatchMeta {
            strategy: PatchStrategy::None,
            retain_keys: false,
            merge_key: Cow::Borrowed(""),
            type_name: Cow::Borrowed("struct"),
        }
    }
}

/// Whether the value being merged at a field is an object or a list
/// (upstream's `LookupPatchMetadataForStruct` vs `…ForSlice`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    Map,
    List,
}

/// How a list field is patched, in short.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListStrategy {
    /// Replaced wholesale (no `merge` strategy).
    Replace,
    /// Merged by the given key (a list of objects).
    MergeByKey(Cow<'static, str>),
    /// Merged as a set of primitives (`$deleteFromPrimitiveList` applies).
    MergeSet,
}

/// Patch metadata lookup by field path.
///
/// `path` holds field names from the object root down to the field being
/// merged; list indices are not part of it (a list field's name stands for
/// its elements too), e.g. `["spec","template","spec","containers","ports"]`.
/// An `Err` is upstream's lookup error text (it becomes a 500).
pub trait PatchSchema {
    fn lookup(&self, path: &[&str], kind: FieldKind) -> Result<PatchMeta, String>;

    /// Convenience: the strategy of a list field.
    fn list_strategy(&self, path: &[&str]) -> ListStrategy {
        match self.lookup(path, FieldKind::List) {
            Ok(meta) if meta.strategy == PatchStrategy::Merge => {
                if meta.merge_key.is_empty() {
                    ListStrategy::MergeSet
                } else {
                    ListStrategy::MergeByKey(meta.merge_key)
                }
            }
            _ => ListStrategy::Replace,
        }
    }
}

/// A schema with no metadata at all: every list is replaced, every map merged.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoMetadata;

impl PatchSchema for NoMetadata {
    fn lookup(&self, _path: &[&str], _kind: FieldKind) -> Result<PatchMeta, String> {
        Ok(PatchMeta::default())
    }
}

/// The modelled Go types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    /// Any type whose fields carry no strategy: every field is open too.
    Open,
    /// A Go struct without JSON-visible fields (`runtime.RawExtension`):
    /// looking up anything inside fails.
    Closed(&'static str),
    /// A Go `map[string]T` whose values are composite: merging inside fails.
    GoMap,
    // metav1
    ObjectMeta,
    /// Any object whose `status` only has merge-by-type `conditions`.
    ConditionsStatus,
    // core/v1
    Pod,
    PodSpec,
    PodStatus,
    PodTemplate,
    PodTemplateSpec,
    Container,
    ContainerStatus,
    Volume,
    EphemeralVolumeSource,
    PvcTemplate,
    ReplicationController,
    ReplicationControllerSpec,
    Service,
    ServiceSpec,
    ServiceAccount,
    Node,
    NodeSpec,
    NodeStatus,
    ComponentStatus,
    /// Namespace, PersistentVolumeClaim and the many `{spec, status.conditions}` kinds.
    SpecAndConditions,
    // apps/v1, batch/v1
    Deployment,
    DeploymentSpec,
    /// StatefulSet, DaemonSet, ReplicaSet, Job: `spec.template`, `status.conditions`.
    Workload,
    WorkloadSpec,
    ControllerRevision,
    CronJob,
    CronJobSpec,
    JobTemplateSpec,
    // policy/v1
    PodDisruptionBudget,
    PodDisruptionBudgetSpec,
    // admissionregistration
    WebhookConfiguration,
    Webhook,
    AdmissionPolicy,
    AdmissionPolicySpec,
    // storage, resource, certificates
    CsiNode,
    CsiNodeSpec,
    ResourceClaim,
    ResourceClaimStatus,
    ResourceClaimTemplate,
    ResourceClaimTemplateSpec,
    CertificateSigningRequest,
    CertificateSigningRequestSpec,
    /// Objects with nothing but metadata worth modelling.
    MetaOnly,
}

struct Field {
    name: &'static str,
    ty: Ty,
    strategy: PatchStrategy,
    retain_keys: bool,
    merge_key: &'static str,
    /// Go kind name of the element (lists) or of the field (maps).
    type_name: &'static str,
}

const fn obj(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        strategy: PatchStrategy::None,
        retain_keys: false,
        merge_key: "",
        type_name: "struct",
    }
}

/// `patchStrategy:"merge" patchMergeKey:"<key>"` on a list of structs.
const fn merge_by(name: &'static str, ty: Ty, key: &'static str) -> Field {
    Field {
        name,
        ty,
        strategy: PatchStrategy::Merge,
        retain_keys: false,
        merge_key: key,
        type_name: "struct",
    }
}

/// `patchStrategy:"merge,retainKeys" patchMergeKey:"<key>"`.
const fn merge_retain_by(name: &'static str, ty: Ty, key: &'static str) -> Field {
    Field {
        name,
        ty,
        strategy: PatchStrategy::Merge,
        retain_keys: true,
        merge_key: key,
        type_name: "struct",
    }
}

/// `patchStrategy:"merge"` on a list of strings.
const fn merge_set(name: &'static str) -> Field {
    Field {
        name,
        ty: Ty::Open,
        strategy: PatchStrategy::Merge,
        retain_keys: false,
        merge_key: "",
        type_name: "string",
    }
}

/// `patchStrategy:"retainKeys"` on a struct.
const fn retain(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        strategy: PatchStrategy::None,
        retain_keys: true,
        merge_key: "",
        type_name: "struct",
    }
}

/// `patchStrategy:"replace"` on a pointer to struct.
const fn replace(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        strategy: PatchStrategy::Replace,
        retain_keys: false,
        merge_key: "",
        type_name: "ptr",
    }
}

/// A list of structs without a strategy, modelled because its elements are.
const fn atomic(name: &'static str, ty: Ty) -> Field {
    obj(name, ty)
}

const META: Field = obj("metadata", Ty::ObjectMeta);
const CONDITIONS: Field = merge_by("conditions", Ty::Open, "type");
const CONDITIONS_STATUS: Field = obj("status", Ty::ConditionsStatus);

fn fields(ty: Ty) -> &'static [Field] {
    use Ty::*;
    match ty {
        Open | Closed(_) | GoMap => &[],
        ObjectMeta => {
            const F: &[Field] = &[
                merge_by("ownerReferences", Open, "uid"),
                merge_set("finalizers"),
            ];
            F
        }
        ConditionsStatus => {
            const F: &[Field] = &[CONDITIONS];
            F
        }
        MetaOnly => {
            const F: &[Field] = &[META];
            F
        }
        SpecAndConditions => {
            const F: &[Field] = &[META, CONDITIONS_STATUS];
            F
        }
        Pod => {
            const F: &[Field] = &[META, obj("spec", PodSpec), obj("status", PodStatus)];
            F
        }
        PodSpec => {
            const F: &[Field] = &[
                merge_retain_by("volumes", Volume, "name"),
                merge_by("initContainers", Container, "name"),
                merge_by("containers", Container, "name"),
                merge_by("ephemeralContainers", Container, "name"),
                merge_by("imagePullSecrets", Open, "name"),
                merge_by("hostAliases", Open, "ip"),
                merge_by("topologySpreadConstraints", Open, "topologyKey"),
                merge_by("schedulingGates", Open, "name"),
                merge_retain_by("resourceClaims", Open, "name"),
            ];
            F
        }
        Container => {
            // Container and EphemeralContainer(Common) carry the same tags.
            const F: &[Field] = &[
                merge_by("ports", Open, "containerPort"),
                merge_by("env", Open, "name"),
                merge_by("volumeMounts", Open, "mountPath"),
                merge_by("volumeDevices", Open, "devicePath"),
            ];
            F
        }
        Volume => {
            const F: &[Field] = &[obj("ephemeral", EphemeralVolumeSource)];
            F
        }
        EphemeralVolumeSource => {
            const F: &[Field] = &[obj("volumeClaimTemplate", PvcTemplate)];
            F
        }
        PvcTemplate | JobTemplateSpec | PodTemplateSpec | ResourceClaimTemplateSpec => {
            const PVC: &[Field] = &[META];
            const JOB: &[Field] = &[META, obj("spec", WorkloadSpec)];
            const POD: &[Field] = &[META, obj("spec", PodSpec)];
            match ty {
                JobTemplateSpec => JOB,
                PodTemplateSpec => POD,
                _ => PVC,
            }
        }
        PodStatus => {
            const F: &[Field] = &[
                CONDITIONS,
                merge_by("hostIPs", Open, "ip"),
                merge_by("podIPs", Open, "ip"),
                merge_retain_by("resourceClaimStatuses", Open, "name"),
                atomic("initContainerStatuses", ContainerStatus),
                atomic("containerStatuses", ContainerStatus),
                atomic("ephemeralContainerStatuses", ContainerStatus),
            ];
            F
        }
        ContainerStatus => {
            const F: &[Field] = &[
                merge_by("volumeMounts", Open, "mountPath"),
                merge_by("allocatedResourcesStatus", Open, "name"),
            ];
            F
        }
        PodTemplate => {
            const F: &[Field] = &[META, obj("template", PodTemplateSpec)];
            F
        }
        ReplicationController => {
            const F: &[Field] = &[
                META,
                obj("spec", ReplicationControllerSpec),
                CONDITIONS_STATUS,
            ];
            F
        }
        ReplicationControllerSpec | WorkloadSpec => {
            const F: &[Field] = &[obj("template", PodTemplateSpec)];
            F
        }
        Service => {
            const F: &[Field] = &[META, obj("spec", ServiceSpec), CONDITIONS_STATUS];
            F
        }
        ServiceSpec => {
            const F: &[Field] = &[merge_by("ports", Open, "port")];
            F
        }
        ServiceAccount => {
            const F: &[Field] = &[META, merge_by("secrets", Open, "name")];
            F
        }
        Node => {
            const F: &[Field] = &[META, obj("spec", NodeSpec), obj("status", NodeStatus)];
            F
        }
        NodeSpec => {
            const F: &[Field] = &[merge_set("podCIDRs")];
            F
        }
        NodeStatus => {
            const F: &[Field] = &[CONDITIONS, merge_by("addresses", Open, "type")];
            F
        }
        ComponentStatus => {
            const F: &[Field] = &[META, CONDITIONS];
            F
        }
        Deployment => {
            const F: &[Field] = &[META, obj("spec", DeploymentSpec), CONDITIONS_STATUS];
            F
        }
        DeploymentSpec => {
            const F: &[Field] = &[obj("template", PodTemplateSpec), retain("strategy", Open)];
            F
        }
        Workload => {
            const F: &[Field] = &[META, obj("spec", WorkloadSpec), CONDITIONS_STATUS];
            F
        }
        ControllerRevision => {
            const F: &[Field] = &[META, obj("data", Closed("RawExtension"))];
            F
        }
        CronJob => {
            const F: &[Field] = &[META, obj("spec", CronJobSpec)];
            F
        }
        CronJobSpec => {
            const F: &[Field] = &[obj("jobTemplate", JobTemplateSpec)];
            F
        }
        PodDisruptionBudget => {
            const F: &[Field] = &[
                META,
                obj("spec", PodDisruptionBudgetSpec),
                CONDITIONS_STATUS,
            ];
            F
        }
        PodDisruptionBudgetSpec => {
            const F: &[Field] = &[replace("selector", Open)];
            F
        }
        WebhookConfiguration => {
            const F: &[Field] = &[META, merge_by("webhooks", Webhook, "name")];
            F
        }
        Webhook => {
            const F: &[Field] = &[merge_by("matchConditions", Open, "name")];
            F
        }
        AdmissionPolicy => {
            const F: &[Field] = &[META, obj("spec", AdmissionPolicySpec)];
            F
        }
        AdmissionPolicySpec => {
            // ValidatingAdmissionPolicySpec; MutatingAdmissionPolicySpec has
            // the same matchConditions tag and an untagged `variables`.
            const F: &[Field] = &[
                merge_by("matchConditions", Open, "name"),
                merge_by("variables", Open, "name"),
            ];
            F
        }
        CsiNode => {
            const F: &[Field] = &[META, obj("spec", CsiNodeSpec)];
            F
        }
        CsiNodeSpec => {
            const F: &[Field] = &[merge_by("drivers", Open, "name")];
            F
        }
        ResourceClaim => {
            const F: &[Field] = &[META, obj("status", ResourceClaimStatus)];
            F
        }
        ResourceClaimStatus => {
            const F: &[Field] = &[merge_by("reservedFor", Open, "uid")];
            F
        }
        ResourceClaimTemplate => {
            const F: &[Field] = &[META, obj("spec", ResourceClaimTemplateSpec)];
            F
        }
        CertificateSigningRequest => {
            const F: &[Field] = &[META, obj("spec", CertificateSigningRequestSpec)];
            F
        }
        CertificateSigningRequestSpec => {
            const F: &[Field] = &[obj("extra", GoMap)];
            F
        }
    }
}

/// Resolve one field of `ty` the way `forkedjson.LookupPatchMetadataForStruct`
/// does for the modelled Go types.
fn field_of(ty: Ty, name: &str) -> Result<(PatchMeta, Ty), String> {
    match ty {
        Ty::Closed(go_name) => Err(format!(
            "unable to find api field in struct {go_name} for the json field {}",
            go_quote(name)
        )),
        Ty::GoMap => Err(
            "merging an object in json but data type is not struct, instead is: map".to_string(),
        ),
        _ => Ok(fields(ty).iter().find(|f| f.name == name).map_or(
            (PatchMeta::default(), Ty::Open),
            |f| {
                (
                    PatchMeta {
                        strategy: f.strategy,
                        retain_keys: f.retain_keys,
                        merge_key: Cow::Borrowed(f.merge_key),
                        type_name: Cow::Borrowed(f.type_name),
                    },
                    f.ty,
                )
            },
        )),
    }
}

/// The patch metadata of one built-in kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuiltinSchema {
    root: Ty,
}

impl BuiltinSchema {
    /// The metadata of field `name` of this type, and the schema of the
    /// field's value when anything below it carries metadata. For the OpenAPI
    /// generator, which walks the type graph alongside the schemas.
    pub fn field(&self, name: &str) -> (PatchMeta, Option<BuiltinSchema>) {
        match field_of(self.root, name) {
            Ok((meta, Ty::Open)) => (meta, None),
            Ok((meta, ty)) => (meta, Some(BuiltinSchema { root: ty })),
            Err(_) => (PatchMeta::default(), None),
        }
    }
}

impl PatchSchema for BuiltinSchema {
    fn lookup(&self, path: &[&str], _kind: FieldKind) -> Result<PatchMeta, String> {
        let mut ty = self.root;
        let mut meta = PatchMeta::default();
        for seg in path {
            let (m, next) = field_of(ty, seg)?;
            meta = m;
            ty = next;
        }
        Ok(meta)
    }
}

/// Every kind kube-apiserver v1.34 serves itself, by API group, with the root
/// type of its patch metadata. Custom resources are absent: the apiextensions
/// server answers a strategic merge patch with 415.
const BUILTIN_KINDS: &[(&str, &[(&str, Ty)])] = {
    use Ty::*;
    &[
        (
            "",
            &[
                ("Pod", Pod),
                ("PodTemplate", PodTemplate),
                ("ReplicationController", ReplicationController),
                ("Service", Service),
                ("ServiceAccount", ServiceAccount),
                ("Node", Node),
                ("Namespace", SpecAndConditions),
                ("PersistentVolumeClaim", SpecAndConditions),
                ("ComponentStatus", ComponentStatus),
                ("PersistentVolume", MetaOnly),
                ("Endpoints", MetaOnly),
                ("ConfigMap", MetaOnly),
                ("Secret", MetaOnly),
                ("Event", MetaOnly),
                ("LimitRange", MetaOnly),
                ("ResourceQuota", MetaOnly),
                ("Binding", MetaOnly),
                ("RangeAllocation", MetaOnly),
            ],
        ),
        (
            "apps",
            &[
                ("Deployment", Deployment),
                ("StatefulSet", Workload),
                ("DaemonSet", Workload),
                ("ReplicaSet", Workload),
                ("ControllerRevision", ControllerRevision),
            ],
        ),
        ("batch", &[("Job", Workload), ("CronJob", CronJob)]),
        (
            "autoscaling",
            &[
                ("HorizontalPodAutoscaler", SpecAndConditions),
                ("Scale", MetaOnly),
            ],
        ),
        (
            "policy",
            &[
                ("PodDisruptionBudget", PodDisruptionBudget),
                ("Eviction", MetaOnly),
            ],
        ),
        (
            "networking.k8s.io",
            &[
                ("Ingress", MetaOnly),
                ("IngressClass", MetaOnly),
                ("NetworkPolicy", MetaOnly),
                ("IPAddress", MetaOnly),
                ("ServiceCIDR", SpecAndConditions),
            ],
        ),
        (
            "rbac.authorization.k8s.io",
            &[
                ("Role", MetaOnly),
                ("ClusterRole", MetaOnly),
                ("RoleBinding", MetaOnly),
                ("ClusterRoleBinding", MetaOnly),
            ],
        ),
        (
            "storage.k8s.io",
            &[
                ("StorageClass", MetaOnly),
                ("CSIDriver", MetaOnly),
                ("CSINode", CsiNode),
                ("CSIStorageCapacity", MetaOnly),
                ("VolumeAttachment", MetaOnly),
                ("VolumeAttributesClass", MetaOnly),
            ],
        ),
        (
            "admissionregistration.k8s.io",
            &[
                ("ValidatingWebhookConfiguration", WebhookConfiguration),
                ("MutatingWebhookConfiguration", WebhookConfiguration),
                ("ValidatingAdmissionPolicy", AdmissionPolicy),
                ("ValidatingAdmissionPolicyBinding", MetaOnly),
                ("MutatingAdmissionPolicy", AdmissionPolicy),
                ("MutatingAdmissionPolicyBinding", MetaOnly),
            ],
        ),
        (
            "apiextensions.k8s.io",
            &[("CustomResourceDefinition", MetaOnly)],
        ),
        (
            "apiregistration.k8s.io",
            &[("APIService", SpecAndConditions)],
        ),
        (
            "coordination.k8s.io",
            &[("Lease", MetaOnly), ("LeaseCandidate", MetaOnly)],
        ),
        ("discovery.k8s.io", &[("EndpointSlice", MetaOnly)]),
        ("events.k8s.io", &[("Event", MetaOnly)]),
        (
            "flowcontrol.apiserver.k8s.io",
            &[
                ("FlowSchema", SpecAndConditions),
                ("PriorityLevelConfiguration", SpecAndConditions),
            ],
        ),
        ("node.k8s.io", &[("RuntimeClass", MetaOnly)]),
        ("scheduling.k8s.io", &[("PriorityClass", MetaOnly)]),
        (
            "certificates.k8s.io",
            &[
                ("CertificateSigningRequest", CertificateSigningRequest),
                ("ClusterTrustBundle", MetaOnly),
                ("PodCertificateRequest", SpecAndConditions),
            ],
        ),
        (
            "resource.k8s.io",
            &[
                ("ResourceClaim", ResourceClaim),
                ("ResourceClaimTemplate", ResourceClaimTemplate),
                ("DeviceClass", MetaOnly),
                ("ResourceSlice", MetaOnly),
                ("DeviceTaintRule", MetaOnly),
            ],
        ),
        (
            "storagemigration.k8s.io",
            &[("StorageVersionMigration", SpecAndConditions)],
        ),
        ("internal.apiserver.k8s.io", &[("StorageVersion", MetaOnly)]),
    ]
};

/// The strategic-merge metadata of a built-in kind, or `None` when the kind is
/// not served by kube-apiserver itself (custom resources: answer
/// [`PatchError::strategic_unsupported`](super::PatchError::strategic_unsupported)).
pub fn builtin_schema(group: &str, kind: &str) -> Option<BuiltinSchema> {
    BUILTIN_KINDS
        .iter()
        .find(|(g, _)| *g == group)
        .and_then(|(_, kinds)| kinds.iter().find(|(k, _)| *k == kind))
        .map(|&(_, root)| BuiltinSchema { root })
}

/// The schema of a kind that is not built in: only the `ObjectMeta` tags.
/// Upstream never merges such kinds strategically (it answers 415); this is
/// for internal merges of custom objects.
pub fn metadata_only_schema() -> BuiltinSchema {
    BuiltinSchema { root: Ty::MetaOnly }
}

/// Whether `application/strategic-merge-patch+json` is accepted for the kind.
pub fn supports_strategic(group: &str, kind: &str) -> bool {
    builtin_schema(group, kind).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(strategy: PatchStrategy, retain_keys: bool, key: &'static str) -> PatchMeta {
        PatchMeta {
            strategy,
            retain_keys,
            merge_key: Cow::Borrowed(key),
            ..PatchMeta::default()
        }
    }

    #[test]
    fn table() {
        use PatchStrategy::*;
        let merge = |k| meta(Merge, false, k);
        let cases: Vec<(&str, &str, &[&str], PatchMeta)> = vec![
            ("", "Pod", &["spec", "containers"], merge("name")),
            ("", "Pod", &["spec", "initContainers", "env"], merge("name")),
            (
                "",
                "Pod",
                &["spec", "ephemeralContainers", "volumeMounts"],
                merge("mountPath"),
            ),
            (
                "",
                "Pod",
                &["spec", "containers", "ports"],
                merge("containerPort"),
            ),
            (
                "",
                "Pod",
                &["spec", "containers", "volumeDevices"],
                merge("devicePath"),
            ),
            (
                "",
                "Pod",
                &["spec", "containers", "resizePolicy"],
                PatchMeta::default(),
            ),
            ("", "Pod", &["spec", "volumes"], meta(Merge, true, "name")),
            ("", "Pod", &["spec", "tolerations"], PatchMeta::default()),
            ("", "Pod", &["spec", "hostAliases"], merge("ip")),
            ("", "Pod", &["spec", "imagePullSecrets"], merge("name")),
            (
                "",
                "Pod",
                &["spec", "topologySpreadConstraints"],
                merge("topologyKey"),
            ),
            (
                "",
                "Pod",
                &[
                    "spec",
                    "volumes",
                    "ephemeral",
                    "volumeClaimTemplate",
                    "metadata",
                    "finalizers",
                ],
                merge(""),
            ),
            ("", "Pod", &["status", "conditions"], merge("type")),
            ("", "Pod", &["status", "podIPs"], merge("ip")),
            (
                "",
                "Pod",
                &["status", "containerStatuses"],
                PatchMeta::default(),
            ),
            ("", "Pod", &["metadata", "ownerReferences"], merge("uid")),
            ("", "Pod", &["metadata", "finalizers"], merge("")),
            ("", "Pod", &["metadata", "labels"], PatchMeta::default()),
            ("", "Service", &["spec", "ports"], merge("port")),
            ("", "Node", &["spec", "taints"], PatchMeta::default()),
            ("", "Node", &["spec", "podCIDRs"], merge("")),
            ("", "Node", &["status", "addresses"], merge("type")),
            ("", "ServiceAccount", &["secrets"], merge("name")),
            ("", "ComponentStatus", &["conditions"], merge("type")),
            (
                "",
                "PodTemplate",
                &["template", "spec", "containers"],
                merge("name"),
            ),
            (
                "",
                "ReplicationController",
                &["spec", "template", "spec", "containers"],
                merge("name"),
            ),
            (
                "apps",
                "Deployment",
                &["spec", "template", "spec", "containers", "env"],
                merge("name"),
            ),
            (
                "apps",
                "Deployment",
                &["spec", "strategy"],
                meta(None, true, ""),
            ),
            (
                "apps",
                "Deployment",
                &["status", "conditions"],
                merge("type"),
            ),
            (
                "apps",
                "StatefulSet",
                &["spec", "template", "metadata", "finalizers"],
                merge(""),
            ),
            (
                "apps",
                "DaemonSet",
                &["spec", "template", "spec", "volumes"],
                meta(Merge, true, "name"),
            ),
            (
                "batch",
                "Job",
                &["spec", "template", "spec", "containers"],
                merge("name"),
            ),
            (
                "batch",
                "CronJob",
                &[
                    "spec",
                    "jobTemplate",
                    "spec",
                    "template",
                    "spec",
                    "containers",
                    "ports",
                ],
                merge("containerPort"),
            ),
            (
                "policy",
                "PodDisruptionBudget",
                &["spec", "selector"],
                PatchMeta {
                    type_name: Cow::Borrowed("ptr"),
                    ..meta(Replace, false, "")
                },
            ),
            (
                "admissionregistration.k8s.io",
                "MutatingWebhookConfiguration",
                &["webhooks", "matchConditions"],
                merge("name"),
            ),
            (
                "storage.k8s.io",
                "CSINode",
                &["spec", "drivers"],
                merge("name"),
            ),
            (
                "resource.k8s.io",
                "ResourceClaim",
                &["status", "reservedFor"],
                merge("uid"),
            ),
            (
                "apiregistration.k8s.io",
                "APIService",
                &["status", "conditions"],
                merge("type"),
            ),
            ("", "ConfigMap", &["data"], PatchMeta::default()),
        ];
        for (group, kind, path, want) in cases {
            let schema = builtin_schema(group, kind).unwrap_or_else(|| panic!("{group}/{kind}"));
            let mut got = schema.lookup(path, FieldKind::List).unwrap();
            if want.type_name == "struct" {
                got.type_name = Cow::Borrowed("struct");
            }
            assert_eq!(got, want, "{group}/{kind} {path:?}");
        }
    }

    #[test]
    fn list_strategy_summary() {
        let pod = builtin_schema("", "Pod").unwrap();
        assert_eq!(
            pod.list_strategy(&["spec", "containers"]),
            ListStrategy::MergeByKey(Cow::Borrowed("name"))
        );
        assert_eq!(
            pod.list_strategy(&["metadata", "finalizers"]),
            ListStrategy::MergeSet
        );
        assert_eq!(
            pod.list_strategy(&["spec", "tolerations"]),
            ListStrategy::Replace
        );
        assert_eq!(
            NoMetadata.list_strategy(&["spec", "containers"]),
            ListStrategy::Replace
        );
    }

    #[test]
    fn lookup_errors() {
        let rev = builtin_schema("apps", "ControllerRevision").unwrap();
        assert_eq!(
            rev.lookup(&["data", "spec"], FieldKind::Map),
            Err(
                "unable to find api field in struct RawExtension for the json field \"spec\""
                    .to_string()
            )
        );
        let csr = builtin_schema("certificates.k8s.io", "CertificateSigningRequest").unwrap();
        assert_eq!(
            csr.lookup(&["spec", "extra", "k"], FieldKind::List),
            Err(
                "merging an object in json but data type is not struct, instead is: map"
                    .to_string()
            )
        );
    }

    #[test]
    fn builtin_kinds() {
        assert!(supports_strategic("apps", "Deployment"));
        assert!(supports_strategic("", "ConfigMap"));
        assert!(!supports_strategic("", "Deployment"));
        assert!(!supports_strategic("stable.example.com", "CronTab"));
        assert!(!supports_strategic("gateway.networking.k8s.io", "Gateway"));
        // Unknown kinds still merge metadata lists.
        let cr = metadata_only_schema();
        assert_eq!(
            cr.list_strategy(&["metadata", "finalizers"]),
            ListStrategy::MergeSet
        );
        assert_eq!(cr.list_strategy(&["spec", "items"]), ListStrategy::Replace);
    }
}
