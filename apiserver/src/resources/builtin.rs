//! The built-in resources: the facts `k8s-openapi` knows (group, version, kind,
//! plural, scope, list kind) read from its `Resource` constants, plus the facts
//! it does not know (short names, categories, subresources, storage keys) from
//! the small table below.

use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    Connect, Conversion, CreateAction, ResourceInfo, STANDARD_VERBS, Subresource, TypedCodec,
    conversions,
};
use crate::registry::strategy;

/// Groups in upstream's discovery order.
const GROUP_ORDER: &[&str] = &[
    "",
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "resource.k8s.io",
];

/// Facts `k8s-openapi` does not carry, keyed by (group, plural).
struct Extra {
    group: &'static str,
    plural: &'static str,
    short_names: &'static [&'static str],
    all_category: bool,
    subresources: &'static [&'static str],
    /// Storage key segment when it differs from the plural (as upstream's etcd layout).
    storage: Option<&'static str>,
}

const fn x(
    group: &'static str,
    plural: &'static str,
    short_names: &'static [&'static str],
    all_category: bool,
    subresources: &'static [&'static str],
) -> Extra {
    Extra {
        group,
        plural,
        short_names,
        all_category,
        subresources,
        storage: None,
    }
}

const EXTRAS: &[Extra] = &[
    x("", "componentstatuses", &["cs"], false, &[]),
    x("", "configmaps", &["cm"], false, &[]),
    x("", "endpoints", &["ep"], false, &[]),
    x("", "events", &["ev"], false, &[]),
    x("", "limitranges", &["limits"], false, &[]),
    x("", "namespaces", &["ns"], false, &["finalize", "status"]),
    Extra {
        storage: Some("minions"),
        ..x("", "nodes", &["no"], false, &["proxy", "status"])
    },
    x("", "persistentvolumeclaims", &["pvc"], false, &["status"]),
    x("", "persistentvolumes", &["pv"], false, &["status"]),
    x(
        "",
        "pods",
        &["po"],
        true,
        &[
            "attach",
            "binding",
            "ephemeralcontainers",
            "eviction",
            "exec",
            "log",
            "portforward",
            "proxy",
            "resize",
            "status",
        ],
    ),
    x("", "podtemplates", &[], false, &[]),
    x(
        "",
        "replicationcontrollers",
        &["rc"],
        true,
        &["scale", "status"],
    ),
    x("", "resourcequotas", &["quota"], false, &["status"]),
    x("", "serviceaccounts", &["sa"], false, &["token"]),
    Extra {
        storage: Some("services/specs"),
        ..x("", "services", &["svc"], true, &["proxy", "status"])
    },
    Extra {
        storage: Some("apiregistration.k8s.io/apiservices"),
        ..x(
            "apiregistration.k8s.io",
            "apiservices",
            &[],
            false,
            &["status"],
        )
    },
    x("apps", "daemonsets", &["ds"], true, &["status"]),
    x(
        "apps",
        "deployments",
        &["deploy"],
        true,
        &["scale", "status"],
    ),
    x("apps", "replicasets", &["rs"], true, &["scale", "status"]),
    x("apps", "statefulsets", &["sts"], true, &["scale", "status"]),
    x("events.k8s.io", "events", &["ev"], false, &[]),
    x(
        "autoscaling",
        "horizontalpodautoscalers",
        &["hpa"],
        true,
        &["status"],
    ),
    x("batch", "cronjobs", &["cj"], true, &["status"]),
    x("batch", "jobs", &[], true, &["status"]),
    x(
        "certificates.k8s.io",
        "certificatesigningrequests",
        &["csr"],
        false,
        &["approval", "status"],
    ),
    Extra {
        storage: Some("ingress"),
        ..x(
            "networking.k8s.io",
            "ingresses",
            &["ing"],
            false,
            &["status"],
        )
    },
    x(
        "networking.k8s.io",
        "networkpolicies",
        &["netpol"],
        false,
        &[],
    ),
    x("networking.k8s.io", "ipaddresses", &["ip"], false, &[]),
    x("networking.k8s.io", "servicecidrs", &[], false, &["status"]),
    x(
        "policy",
        "poddisruptionbudgets",
        &["pdb"],
        false,
        &["status"],
    ),
    x("storage.k8s.io", "storageclasses", &["sc"], false, &[]),
    x(
        "storage.k8s.io",
        "volumeattachments",
        &[],
        false,
        &["status"],
    ),
    x(
        "storage.k8s.io",
        "volumeattributesclasses",
        &["vac"],
        false,
        &[],
    ),
    x(
        "admissionregistration.k8s.io",
        "validatingadmissionpolicies",
        &[],
        false,
        &["status"],
    ),
    Extra {
        storage: Some("apiextensions.k8s.io/customresourcedefinitions"),
        ..x(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            &["crd", "crds"],
            false,
            &["status"],
        )
    },
    x("scheduling.k8s.io", "priorityclasses", &["pc"], false, &[]),
    x(
        "flowcontrol.apiserver.k8s.io",
        "flowschemas",
        &[],
        false,
        &["status"],
    ),
    x(
        "flowcontrol.apiserver.k8s.io",
        "prioritylevelconfigurations",
        &[],
        false,
        &["status"],
    ),
    x("resource.k8s.io", "resourceclaims", &[], false, &["status"]),
];

/// Resources whose create is not a store, with their verbs: reviews are
/// answered, `bindings` binds a pod.
const CREATE_ACTIONS: &[(&str, &str, CreateAction)] = &[
    ("", "bindings", CreateAction::BindPod),
    (
        "authentication.k8s.io",
        "tokenreviews",
        CreateAction::Review,
    ),
    (
        "authentication.k8s.io",
        "selfsubjectreviews",
        CreateAction::Review,
    ),
    (
        "authorization.k8s.io",
        "localsubjectaccessreviews",
        CreateAction::Review,
    ),
    (
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        CreateAction::Review,
    ),
    (
        "authorization.k8s.io",
        "selfsubjectrulesreviews",
        CreateAction::Review,
    ),
    (
        "authorization.k8s.io",
        "subjectaccessreviews",
        CreateAction::Review,
    ),
];

/// The status fields upstream's types always write, at their zero values
/// (non-`omitempty` fields and value structs): a new object starts from these.
fn initial_status(group: &str, plural: &str) -> Option<serde_json::Value> {
    use serde_json::json;
    let status = match (group, plural) {
        ("apps", "replicasets") => json!({"replicas": 0}),
        ("apps", "statefulsets") => json!({"replicas": 0, "availableReplicas": 0}),
        ("apps", "daemonsets") => json!({
            "currentNumberScheduled": 0, "numberMisscheduled": 0,
            "desiredNumberScheduled": 0, "numberReady": 0,
        }),
        ("policy", "poddisruptionbudgets") => json!({
            "disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0,
        }),
        ("autoscaling", "horizontalpodautoscalers") => json!({"desiredReplicas": 0}),
        ("networking.k8s.io", "ingresses") => json!({"loadBalancer": {}}),
        ("storage.k8s.io", "volumeattachments") => json!({"attached": false}),
        ("", "nodes") => json!({
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {
                "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "",
                "osImage": "", "containerRuntimeVersion": "", "kubeletVersion": "",
                "kubeProxyVersion": "", "operatingSystem": "", "architecture": "",
            },
        }),
        _ => return None,
    };
    Some(status)
}

/// Resources that are only read, or not deleted as a collection.
const VERB_OVERRIDES: &[(&str, &str, &[&str])] = &[
    ("", "componentstatuses", &["get", "list"]),
    // Namespaces are only deleted one by one (their contents go first).
    (
        "",
        "namespaces",
        &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
    ),
];

/// (kind, group, version, verbs) of each subresource name.
fn subresource_facts(
    name: &str,
    kind: &str,
) -> (String, &'static str, &'static str, Vec<&'static str>) {
    let rw = vec!["get", "patch", "update"];
    match name {
        "status" | "ephemeralcontainers" | "resize" | "approval" => (kind.to_string(), "", "", rw),
        "scale" => ("Scale".into(), "autoscaling", "v1", rw),
        "binding" => ("Binding".into(), "", "v1", vec!["create"]),
        "eviction" => ("Eviction".into(), "policy", "v1", vec!["create"]),
        "token" => (
            "TokenRequest".into(),
            "authentication.k8s.io",
            "v1",
            vec!["create"],
        ),
        "log" => ("Pod".into(), "", "", vec!["get"]),
        "exec" => ("PodExecOptions".into(), "", "", vec!["create", "get"]),
        "attach" => ("PodAttachOptions".into(), "", "", vec!["create", "get"]),
        "portforward" => (
            "PodPortForwardOptions".into(),
            "",
            "",
            vec!["create", "get"],
        ),
        "proxy" => (
            format!("{kind}ProxyOptions"),
            "",
            "",
            vec!["create", "delete", "get", "patch", "update"],
        ),
        "finalize" => (kind.to_string(), "", "", vec!["update"]),
        _ => (kind.to_string(), "", "", rw),
    }
}

/// The connect subresources: those the API server forwards.
fn connect_of(kind: &str, subresource: &str) -> Option<Connect> {
    Some(match (kind, subresource) {
        ("Pod", "log") => Connect::PodLog,
        ("Pod", "exec") => Connect::PodExec,
        ("Pod", "attach") => Connect::PodAttach,
        ("Pod", "portforward") => Connect::PodPortForward,
        ("Pod", "proxy") => Connect::PodProxy,
        ("Node", "proxy") => Connect::NodeProxy,
        ("Service", "proxy") => Connect::ServiceProxy,
        _ => return None,
    })
}

trait Scope {
    const NAMESPACED: bool;
}
impl Scope for NamespaceResourceScope {
    const NAMESPACED: bool = true;
}
impl Scope for ClusterResourceScope {
    const NAMESPACED: bool = false;
}

fn round_trip<T: DeserializeOwned + Serialize>(
    v: serde_json::Value,
) -> Result<serde_json::Value, serde_json::Error> {
    let typed: T = serde_json::from_value(v)?;
    serde_json::to_value(typed)
}

fn schema_ref<T: schemars::JsonSchema>(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    g.subschema_for::<T>()
}

struct Typed {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    list_kind: Option<&'static str>,
    namespaced: bool,
    codec: TypedCodec,
}

macro_rules! typed {
    (listable: $($ty:ty),* $(,)?) => {
        vec![$(Typed {
            group: <$ty as Resource>::GROUP,
            version: <$ty as Resource>::VERSION,
            kind: <$ty as Resource>::KIND,
            plural: <$ty as Resource>::URL_PATH_SEGMENT,
            list_kind: Some(<$ty as k8s_openapi::ListableResource>::LIST_KIND),
            namespaced: <<$ty as Resource>::Scope as Scope>::NAMESPACED,
            codec: TypedCodec { round_trip: round_trip::<$ty>, schema: schema_ref::<$ty> },
        }),*]
    };
    (create_only: $($ty:ty),* $(,)?) => {
        vec![$(Typed {
            group: <$ty as Resource>::GROUP,
            version: <$ty as Resource>::VERSION,
            kind: <$ty as Resource>::KIND,
            plural: <$ty as Resource>::URL_PATH_SEGMENT,
            list_kind: None,
            namespaced: <<$ty as Resource>::Scope as Scope>::NAMESPACED,
            codec: TypedCodec { round_trip: round_trip::<$ty>, schema: schema_ref::<$ty> },
        }),*]
    };
}

fn typed_resources() -> Vec<Typed> {
    use k8s_openapi::api::*;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration;
    let mut all = typed!(listable:
        core::v1::ComponentStatus, core::v1::ConfigMap, core::v1::Endpoints, core::v1::Event,
        core::v1::LimitRange, core::v1::Namespace, core::v1::Node, core::v1::PersistentVolumeClaim,
        core::v1::PersistentVolume, core::v1::Pod, core::v1::PodTemplate,
        core::v1::ReplicationController, core::v1::ResourceQuota, core::v1::Secret,
        core::v1::ServiceAccount, core::v1::Service,
        apiregistration::APIService,
        apps::v1::ControllerRevision, apps::v1::DaemonSet, apps::v1::Deployment,
        apps::v1::ReplicaSet, apps::v1::StatefulSet,
        events::v1::Event,
        autoscaling::v2::HorizontalPodAutoscaler, autoscaling::v1::HorizontalPodAutoscaler,
        batch::v1::CronJob, batch::v1::Job,
        certificates::v1::CertificateSigningRequest,
        networking::v1::IngressClass, networking::v1::Ingress, networking::v1::IPAddress,
        networking::v1::NetworkPolicy, networking::v1::ServiceCIDR,
        policy::v1::PodDisruptionBudget,
        rbac::v1::ClusterRoleBinding, rbac::v1::ClusterRole, rbac::v1::RoleBinding, rbac::v1::Role,
        storage::v1::CSIDriver, storage::v1::CSINode, storage::v1::CSIStorageCapacity,
        storage::v1::StorageClass, storage::v1::VolumeAttachment, storage::v1::VolumeAttributesClass,
        admissionregistration::v1::MutatingWebhookConfiguration,
        admissionregistration::v1::ValidatingAdmissionPolicy,
        admissionregistration::v1::ValidatingAdmissionPolicyBinding,
        admissionregistration::v1::ValidatingWebhookConfiguration,
        apiextensions::CustomResourceDefinition,
        scheduling::v1::PriorityClass,
        coordination::v1::Lease,
        node::v1::RuntimeClass,
        discovery::v1::EndpointSlice,
        flowcontrol::v1::FlowSchema, flowcontrol::v1::PriorityLevelConfiguration,
        resource::v1::DeviceClass, resource::v1::ResourceClaim, resource::v1::ResourceClaimTemplate,
        resource::v1::ResourceSlice,
    );
    all.extend(typed!(create_only:
        core::v1::Binding,
        authentication::v1::TokenReview, authentication::v1::SelfSubjectReview,
        authorization::v1::LocalSubjectAccessReview, authorization::v1::SelfSubjectAccessReview,
        authorization::v1::SelfSubjectRulesReview, authorization::v1::SubjectAccessReview,
    ));
    all
}

/// Resources served in a version other than their storage version.
const CONVERSIONS: &[(&str, &str, &str, Conversion)] = &[
    (
        "autoscaling",
        "v1",
        "horizontalpodautoscalers",
        conversions::HPA_V1,
    ),
    ("events.k8s.io", "v1", "events", conversions::EVENTS_V1),
];

/// Every built-in resource, in discovery order.
pub fn builtin_resources() -> Vec<ResourceInfo> {
    let mut infos: Vec<ResourceInfo> = typed_resources()
        .into_iter()
        .map(|t| {
            let extra = EXTRAS
                .iter()
                .find(|e| e.group == t.group && e.plural == t.plural);
            let create = CREATE_ACTIONS
                .iter()
                .find(|(g, p, _)| *g == t.group && *p == t.plural)
                .map_or(CreateAction::Store, |(_, _, c)| *c);
            let verbs = match VERB_OVERRIDES
                .iter()
                .find(|(g, p, _)| *g == t.group && *p == t.plural)
            {
                Some((_, _, v)) => v.to_vec(),
                None if create != CreateAction::Store => vec!["create"],
                None => STANDARD_VERBS.to_vec(),
            };
            let subresources = extra
                .map(|e| e.subresources)
                .unwrap_or_default()
                .iter()
                .map(|name| {
                    let (kind, group, version, verbs) = subresource_facts(name, t.kind);
                    Subresource {
                        name,
                        kind,
                        group: group.to_string(),
                        version: version.to_string(),
                        verbs,
                        connect: connect_of(t.kind, name),
                    }
                })
                .collect();
            let storage = extra.and_then(|e| e.storage).unwrap_or(t.plural);
            ResourceInfo {
                group: t.group.to_string(),
                version: t.version.to_string(),
                kind: t.kind.to_string(),
                list_kind: t
                    .list_kind
                    .map_or_else(|| format!("{}List", t.kind), str::to_string),
                plural: t.plural.to_string(),
                singular: t.kind.to_ascii_lowercase(),
                short_names: extra
                    .map_or(&[][..], |e| e.short_names)
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                categories: if extra.is_some_and(|e| e.all_category) {
                    vec!["all".into()]
                } else {
                    vec![]
                },
                namespaced: t.namespaced,
                verbs,
                subresources,
                create,
                initial_status: initial_status(t.group, t.plural),
                storage_prefix: format!("/registry/{storage}"),
                codec: Some(t.codec),
                conversion: CONVERSIONS
                    .iter()
                    .find(|(g, v, p, _)| *g == t.group && *v == t.version && *p == t.plural)
                    .map(|(_, _, _, c)| *c),
                strategy: match (t.group, t.plural) {
                    ("certificates.k8s.io", "certificatesigningrequests") => {
                        std::sync::Arc::new(crate::registry::csr::Strategy)
                    }
                    _ => strategy::for_builtin(t.group, t.plural),
                },
            }
        })
        .collect();
    let order = |g: &str| {
        GROUP_ORDER
            .iter()
            .position(|o| *o == g)
            .unwrap_or(GROUP_ORDER.len())
    };
    infos.sort_by(|a, b| (order(&a.group), &a.plural).cmp(&(order(&b.group), &b.plural)));
    infos
}
