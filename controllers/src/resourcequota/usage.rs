//! Quota evaluators: which quota resource names each kind of object answers
//! for, and what one object uses of them. Pods charge counts and compute
//! (requests/limits, init-container maxima, sidecars, overhead), services
//! charge counts, load balancers and node ports, claims charge counts and
//! storage (also per storage class); everything else is an object count.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, PersistentVolumeClaim, Pod, ResourceRequirements, Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::quantity::Qty;

pub(crate) type Usage = BTreeMap<String, Qty>;

const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

/// The evaluator answering for a quota resource name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Evaluator {
    Pods,
    Services,
    Claims,
    /// Plain object count of `resource` in API group `group` ("" = core).
    Count {
        group: String,
        resource: String,
    },
}

/// Which evaluator tracks `name`, or `None` for a name nothing tracks.
pub(crate) fn evaluator_for(name: &str) -> Option<Evaluator> {
    let count = |group: &str, resource: &str| {
        Some(Evaluator::Count {
            group: group.into(),
            resource: resource.into(),
        })
    };
    match name {
        "pods"
        | "count/pods"
        | "cpu"
        | "memory"
        | "ephemeral-storage"
        | "requests.cpu"
        | "requests.memory"
        | "requests.ephemeral-storage"
        | "limits.cpu"
        | "limits.memory"
        | "limits.ephemeral-storage" => return Some(Evaluator::Pods),
        "services" | "count/services" | "services.loadbalancers" | "services.nodeports" => {
            return Some(Evaluator::Services);
        }
        "persistentvolumeclaims" | "count/persistentvolumeclaims" | "requests.storage" => {
            return Some(Evaluator::Claims);
        }
        "configmaps" => return count("", "configmaps"),
        "secrets" => return count("", "secrets"),
        "replicationcontrollers" => return count("", "replicationcontrollers"),
        "resourcequotas" => return count("", "resourcequotas"),
        _ => {}
    }
    if name.starts_with("hugepages-") || name.starts_with("requests.hugepages-") {
        return Some(Evaluator::Pods);
    }
    if let Some((_, rest)) = name.split_once(STORAGE_CLASS_SUFFIX)
        && (rest == "requests.storage" || rest == "persistentvolumeclaims")
    {
        return Some(Evaluator::Claims);
    }
    if let Some(inner) = name.strip_prefix("requests.")
        && is_extended(inner)
    {
        return Some(Evaluator::Pods);
    }
    if let Some(target) = name.strip_prefix("count/") {
        let (resource, group) = target.split_once('.').unwrap_or((target, ""));
        if !resource.is_empty() {
            return count(group, resource);
        }
    }
    None
}

/// Extended resources: domain-qualified names outside `kubernetes.io`.
fn is_extended(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/") && !name.starts_with("requests.")
}

/// Whether a pod still charges compute quota: not terminal, and not stuck
/// terminating beyond its grace period. Returns also when that changes.
pub(crate) fn pod_charges(pod: &Pod, now: Timestamp) -> (bool, Option<Timestamp>) {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return (false, None);
    }
    if let (Some(deleted), Some(grace)) = (
        pod.metadata.deletion_timestamp.as_ref(),
        pod.metadata.deletion_grace_period_seconds,
    ) {
        let expires = deleted.0.checked_add(SignedDuration::from_secs(grace)).ok();
        return match expires {
            Some(at) if now > at => (false, None),
            Some(at) => (true, Some(at)),
            None => (true, None),
        };
    }
    (true, None)
}

/// What one pod uses; compute only while it charges, `count/pods` always.
pub(crate) fn pod_usage(pod: &Pod, now: Timestamp) -> Usage {
    let mut used = Usage::new();
    used.insert("count/pods".into(), Qty::count(1));
    if !pod_charges(pod, now).0 {
        return used;
    }
    used.insert("pods".into(), Qty::count(1));
    let requests = pod_resources(pod, Kind::Requests);
    let limits = pod_resources(pod, Kind::Limits);
    for name in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(name) {
            used.insert(name.into(), *q);
            used.insert(format!("requests.{name}"), *q);
        }
        if let Some(q) = limits.get(name) {
            used.insert(format!("limits.{name}"), *q);
        }
    }
    for (name, q) in &requests {
        if name.starts_with("hugepages-") {
            used.insert(name.clone(), *q);
            used.insert(format!("requests.{name}"), *q);
        } else if is_extended(name) {
            used.insert(format!("requests.{name}"), *q);
        }
    }
    used
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Requests,
    Limits,
}

fn parse_list(list: Option<&BTreeMap<String, Quantity>>) -> BTreeMap<String, Qty> {
    list.into_iter()
        .flatten()
        .filter_map(|(k, v)| Qty::parse(&v.0).ok().map(|q| (k.clone(), q)))
        .collect()
}

/// A container's requests (missing ones defaulted from limits, as API
/// defaulting does) or limits.
fn container_list(resources: Option<&ResourceRequirements>, kind: Kind) -> BTreeMap<String, Qty> {
    let limits = parse_list(resources.and_then(|r| r.limits.as_ref()));
    if kind == Kind::Limits {
        return limits;
    }
    let mut requests = parse_list(resources.and_then(|r| r.requests.as_ref()));
    for (k, v) in limits {
        requests.entry(k).or_insert(v);
    }
    requests
}

fn add_into(acc: &mut BTreeMap<String, Qty>, other: &BTreeMap<String, Qty>) {
    for (k, v) in other {
        let sum = acc.get(k).copied().unwrap_or(Qty::ZERO).add(*v);
        acc.insert(k.clone(), sum);
    }
}

fn max_into(acc: &mut BTreeMap<String, Qty>, other: &BTreeMap<String, Qty>) {
    for (k, v) in other {
        let max = acc.get(k).map_or(*v, |a| a.larger(*v));
        acc.insert(k.clone(), max);
    }
}

/// The pod's effective requests or limits: app containers plus sidecars
/// summed, against the largest one-shot init container (with the sidecars
/// started before it), plus pod-level values and overhead.
fn pod_resources(pod: &Pod, kind: Kind) -> BTreeMap<String, Qty> {
    let Some(spec) = pod.spec.as_ref() else {
        return BTreeMap::new();
    };
    let of = |c: &Container| container_list(c.resources.as_ref(), kind);
    let mut total = BTreeMap::new();
    for c in &spec.containers {
        add_into(&mut total, &of(c));
    }
    let mut sidecars = BTreeMap::new();
    let mut init_peak = BTreeMap::new();
    for c in spec.init_containers.iter().flatten() {
        let own = of(c);
        if c.restart_policy.as_deref() == Some("Always") {
            add_into(&mut total, &own);
            add_into(&mut sidecars, &own);
        } else {
            let mut with_sidecars = sidecars.clone();
            add_into(&mut with_sidecars, &own);
            max_into(&mut init_peak, &with_sidecars);
        }
    }
    max_into(&mut total, &init_peak);
    // Pod-level resources, where given, override the aggregate for cpu/memory.
    let pod_level = container_list(spec.resources.as_ref(), kind);
    for name in ["cpu", "memory"] {
        if let Some(q) = pod_level.get(name) {
            total.insert(name.into(), *q);
        }
    }
    let overhead = parse_list(spec.overhead.as_ref());
    for (k, v) in overhead {
        // Limits only gain overhead where a limit is set.
        if kind == Kind::Requests || total.contains_key(&k) {
            let sum = total.get(&k).copied().unwrap_or(Qty::ZERO).add(v);
            total.insert(k, sum);
        }
    }
    total
}

pub(crate) fn service_usage(service: &Service) -> Usage {
    let mut used = Usage::new();
    used.insert("services".into(), Qty::count(1));
    used.insert("count/services".into(), Qty::count(1));
    let Some(spec) = service.spec.as_ref() else {
        return used;
    };
    let ports = spec.ports.as_ref().map_or(0, Vec::len);
    let ports = i64::try_from(ports).unwrap_or(i64::MAX);
    match spec.type_.as_deref() {
        Some("NodePort") => {
            used.insert("services.nodeports".into(), Qty::count(ports));
        }
        Some("LoadBalancer") => {
            // Without node port allocation only explicitly set ones count.
            let node_ports = if spec.allocate_load_balancer_node_ports == Some(false) {
                let explicit = spec
                    .ports
                    .iter()
                    .flatten()
                    .filter(|p| p.node_port.is_some_and(|n| n != 0))
                    .count();
                i64::try_from(explicit).unwrap_or(i64::MAX)
            } else {
                ports
            };
            used.insert("services.nodeports".into(), Qty::count(node_ports));
            used.insert("services.loadbalancers".into(), Qty::count(1));
        }
        _ => {}
    }
    used
}

pub(crate) fn claim_usage(pvc: &PersistentVolumeClaim) -> Usage {
    let mut used = Usage::new();
    used.insert("persistentvolumeclaims".into(), Qty::count(1));
    used.insert("count/persistentvolumeclaims".into(), Qty::count(1));
    let class = pvc
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .or_else(|| {
            pvc.metadata
                .annotations
                .as_ref()?
                .get("volume.beta.kubernetes.io/storage-class")
                .cloned()
        })
        .filter(|c| !c.is_empty());
    if let Some(class) = &class {
        used.insert(
            format!("{class}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"),
            Qty::count(1),
        );
    }
    let requested = pvc
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| Qty::parse(&q.0).ok());
    // An expansion in progress charges the larger of request and allocation.
    let allocated = pvc
        .status
        .as_ref()
        .and_then(|s| s.allocated_resources.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| Qty::parse(&q.0).ok());
    let storage = match (requested, allocated) {
        (Some(r), Some(a)) => Some(r.larger(a)),
        (r, a) => r.or(a),
    };
    if let Some(storage) = storage {
        used.insert("requests.storage".into(), storage);
        if let Some(class) = &class {
            used.insert(
                format!("{class}{STORAGE_CLASS_SUFFIX}requests.storage"),
                storage,
            );
        }
    }
    used
}

/// Adds `item` into `total`, but only for the tracked names.
pub(crate) fn add_tracked(total: &mut Usage, item: &Usage) {
    for (name, sum) in total.iter_mut() {
        if let Some(q) = item.get(name) {
            *sum = sum.add(*q);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        PersistentVolumeClaimSpec, PodSpec, PodStatus, ServicePort, ServiceSpec,
        VolumeResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn res(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Option<ResourceRequirements> {
        let list = |l: &[(&str, &str)]| {
            (!l.is_empty()).then(|| {
                l.iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                    .collect()
            })
        };
        Some(ResourceRequirements {
            requests: list(requests),
            limits: list(limits),
            ..Default::default()
        })
    }

    fn container(resources: Option<ResourceRequirements>, sidecar: bool) -> Container {
        Container {
            name: "c".into(),
            resources,
            restart_policy: sidecar.then(|| "Always".into()),
            ..Default::default()
        }
    }

    fn show(u: &Usage) -> BTreeMap<&str, String> {
        u.iter().map(|(k, v)| (k.as_str(), v.to_string())).collect()
    }

    #[test]
    fn classifies_names() {
        for (name, want) in [
            ("pods", Some(Evaluator::Pods)),
            ("requests.cpu", Some(Evaluator::Pods)),
            ("limits.memory", Some(Evaluator::Pods)),
            ("requests.nvidia.com/gpu", Some(Evaluator::Pods)),
            ("requests.hugepages-2Mi", Some(Evaluator::Pods)),
            ("services.nodeports", Some(Evaluator::Services)),
            (
                "gold.storageclass.storage.k8s.io/requests.storage",
                Some(Evaluator::Claims),
            ),
            ("requests.storage", Some(Evaluator::Claims)),
            (
                "configmaps",
                Some(Evaluator::Count {
                    group: "".into(),
                    resource: "configmaps".into(),
                }),
            ),
            (
                "count/deployments.apps",
                Some(Evaluator::Count {
                    group: "apps".into(),
                    resource: "deployments".into(),
                }),
            ),
            (
                "count/widgets.example.com",
                Some(Evaluator::Count {
                    group: "example.com".into(),
                    resource: "widgets".into(),
                }),
            ),
            ("requests.kubernetes.io/foo", None),
            ("bogus", None),
        ] {
            assert_eq!(evaluator_for(name), want, "{name}");
        }
    }

    #[test]
    fn pod_compute_usage() {
        let now = Timestamp::now();
        let pod = Pod {
            spec: Some(PodSpec {
                containers: vec![
                    container(
                        res(&[("cpu", "100m"), ("memory", "128Mi")], &[("cpu", "200m")]),
                        false,
                    ),
                    // Requests default from limits.
                    container(res(&[], &[("cpu", "300m"), ("memory", "1Gi")]), false),
                ],
                init_containers: Some(vec![
                    container(res(&[("cpu", "2")], &[]), false),
                    container(
                        res(&[("cpu", "50m"), ("example.com/dongle", "1")], &[]),
                        true,
                    ),
                ]),
                overhead: Some(
                    [("cpu".to_string(), Quantity("10m".into()))]
                        .into_iter()
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        };
        let used = pod_usage(&pod, now);
        let want: BTreeMap<&str, String> = [
            ("count/pods", "1"),
            ("pods", "1"),
            // max(100m+300m+50m sidecar, 2 init) + 10m overhead
            ("cpu", "2010m"),
            ("requests.cpu", "2010m"),
            ("memory", "1152Mi"),
            ("requests.memory", "1152Mi"),
            // 200m + 300m + 10m overhead (limit set, so overhead applies)
            ("limits.cpu", "510m"),
            ("limits.memory", "1Gi"),
            ("requests.example.com/dongle", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
        assert_eq!(show(&used), want);
    }

    #[test]
    fn finished_and_overdue_pods_only_count_as_objects() {
        let now = Timestamp::now();
        let mut done = Pod {
            status: Some(PodStatus {
                phase: Some("Succeeded".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            show(&pod_usage(&done, now))
                .keys()
                .copied()
                .collect::<Vec<_>>(),
            ["count/pods"]
        );
        done.status = None;
        let past = now
            .checked_sub(SignedDuration::from_secs(60))
            .unwrap_or(now);
        done.metadata.deletion_timestamp = Some(Time(past));
        done.metadata.deletion_grace_period_seconds = Some(30);
        assert_eq!(pod_charges(&done, now), (false, None));
        done.metadata.deletion_grace_period_seconds = Some(120);
        let (charges, until) = pod_charges(&done, now);
        assert!(charges && until.is_some());
    }

    #[test]
    fn service_usage_counts_node_ports() {
        let svc = |ty: &str, ports: usize, allocate: Option<bool>| Service {
            spec: Some(ServiceSpec {
                type_: Some(ty.into()),
                ports: Some(
                    (0..ports)
                        .map(|i| ServicePort {
                            port: 80 + i as i32,
                            node_port: (i == 0).then_some(30080),
                            ..Default::default()
                        })
                        .collect(),
                ),
                allocate_load_balancer_node_ports: allocate,
                ..Default::default()
            }),
            ..Default::default()
        };
        let nodeports = |s: &Service| {
            service_usage(s)
                .get("services.nodeports")
                .map(Qty::to_string)
        };
        assert_eq!(nodeports(&svc("ClusterIP", 2, None)), None);
        assert_eq!(nodeports(&svc("NodePort", 2, None)).as_deref(), Some("2"));
        assert_eq!(
            nodeports(&svc("LoadBalancer", 3, None)).as_deref(),
            Some("3")
        );
        assert_eq!(
            nodeports(&svc("LoadBalancer", 3, Some(false))).as_deref(),
            Some("1")
        );
        assert!(
            service_usage(&svc("LoadBalancer", 1, None)).contains_key("services.loadbalancers")
        );
    }

    #[test]
    fn claim_usage_per_class() {
        let pvc = PersistentVolumeClaim {
            spec: Some(PersistentVolumeClaimSpec {
                storage_class_name: Some("gold".into()),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(
                        [("storage".to_string(), Quantity("5Gi".into()))]
                            .into_iter()
                            .collect(),
                    ),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let usage = claim_usage(&pvc);
        let used = show(&usage);
        assert_eq!(
            used.get("requests.storage").map(String::as_str),
            Some("5Gi")
        );
        assert_eq!(
            used.get("gold.storageclass.storage.k8s.io/requests.storage")
                .map(String::as_str),
            Some("5Gi")
        );
        assert_eq!(
            used.get("gold.storageclass.storage.k8s.io/persistentvolumeclaims")
                .map(String::as_str),
            Some("1")
        );
    }

    #[test]
    fn add_tracked_only_adds_tracked_names() {
        let mut total: Usage = [("pods".to_string(), Qty::ZERO)].into_iter().collect();
        add_tracked(&mut total, &pod_usage(&Pod::default(), Timestamp::now()));
        add_tracked(&mut total, &pod_usage(&Pod::default(), Timestamp::now()));
        assert_eq!(
            show(&total),
            [("pods", "2".to_string())].into_iter().collect()
        );
    }
}
