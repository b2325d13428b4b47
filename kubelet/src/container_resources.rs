//! Container `resources` as the CRI gets them, with upstream's kubelet
//! arithmetic:
//!
//! - `cpu_shares` from the CPU request (the limit when only that is set):
//!   1024 per CPU, at least 2;
//! - `cpu_quota`/`cpu_period` from the CPU limit: a 100 ms period, the
//!   limit's share of it, at least 1 ms; no limit: quota 0 (unlimited);
//! - `memory_limit_in_bytes` from the memory limit (0: none);
//! - `oom_score_adj` from the pod's QoS class: Guaranteed −997, BestEffort
//!   1000, Burstable `1000 − 1000·request/capacity` kept within [3, 999];
//! - on cgroup v2, `memory.oom.group = 1` so an OOM kills the container
//!   whole.
//!
//! The sandbox gets the pod's totals (`resources`) and its `overhead`; the
//! runtime may use them to size a VM, containerd's runc shim ignores them.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::cri::v1;
use crate::env::Amount;

const MIN_SHARES: i64 = 2;
const MAX_SHARES: i64 = 262_144;
const SHARES_PER_CPU: i64 = 1024;
/// 100 ms, in µs.
const QUOTA_PERIOD: i64 = 100_000;
const MIN_QUOTA: i64 = 1000;
const GUARANTEED_OOM_SCORE_ADJ: i64 = -997;
const BEST_EFFORT_OOM_SCORE_ADJ: i64 = 1000;
/// Pods of this priority class are the last the OOM killer picks.
const NODE_CRITICAL: &str = "system-node-critical";
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

type Resources = BTreeMap<String, Quantity>;

/// Upstream's `milliCPUToShares`.
fn milli_cpu_to_shares(milli: i64) -> i64 {
    if milli == 0 {
        return MIN_SHARES;
    }
    (milli.saturating_mul(SHARES_PER_CPU) / 1000).clamp(MIN_SHARES, MAX_SHARES)
}

/// Upstream's `milliCPUToQuota`: 0 (no quota) without a limit.
fn milli_cpu_to_quota(milli: i64, period: i64) -> i64 {
    if milli == 0 {
        return 0;
    }
    (milli.saturating_mul(period) / 1000).max(MIN_QUOTA)
}

fn amount(r: &Resources, name: &str, f: fn(&Amount) -> i128) -> Option<i64> {
    let a = Amount::parse(&r.get(name)?.0)?;
    Some(i64::try_from(f(&a).max(0)).unwrap_or(i64::MAX))
}

fn milli(r: &Resources, name: &str) -> i64 {
    amount(r, name, Amount::milli).unwrap_or(0)
}

fn value(r: &Resources, name: &str) -> i64 {
    amount(r, name, Amount::value).unwrap_or(0)
}

/// Whether `/sys/fs/cgroup` is the unified (v2) hierarchy.
fn cgroup_v2() -> bool {
    static V2: OnceLock<bool> = OnceLock::new();
    *V2.get_or_init(|| {
        rustix::fs::statfs("/sys/fs/cgroup")
            // `f_type`'s width differs between targets.
            .map(|s| {
                #[allow(clippy::useless_conversion)]
                let f_type = i64::from(s.f_type);
                f_type == CGROUP2_SUPER_MAGIC
            })
            .unwrap_or(false)
    })
}

/// The machine's memory, read once (the node's `memory` capacity).
pub(crate) fn memory_capacity() -> i64 {
    static CAPACITY: OnceLock<i64> = OnceLock::new();
    *CAPACITY.get_or_init(|| {
        let m = crate::machine::Machine::read(std::path::Path::new("/"));
        i64::try_from(m.memory_bytes).unwrap_or(i64::MAX)
    })
}

/// Upstream's `calculateLinuxResources`: shares, quota and memory limit
/// from a CPU request, CPU limit (milli) and memory limit (bytes).
fn linux_resources(
    cpu_request: i64,
    cpu_limit: i64,
    memory_limit: i64,
) -> v1::LinuxContainerResources {
    let shares_from = if cpu_request == 0 && cpu_limit != 0 {
        cpu_limit
    } else {
        cpu_request
    };
    let unified = if cgroup_v2() {
        [("memory.oom.group".to_string(), "1".to_string())].into()
    } else {
        Default::default()
    };
    v1::LinuxContainerResources {
        cpu_shares: milli_cpu_to_shares(shares_from),
        cpu_quota: milli_cpu_to_quota(cpu_limit, QUOTA_PERIOD),
        cpu_period: QUOTA_PERIOD,
        memory_limit_in_bytes: memory_limit,
        unified,
        ..Default::default()
    }
}

fn requests_limits(c: &Container) -> (Resources, Resources) {
    let r = c.resources.clone().unwrap_or_default();
    (r.requests.unwrap_or_default(), r.limits.unwrap_or_default())
}

/// The container's CRI resources. `memory_capacity` is the node's memory.
pub(crate) fn container(
    pod: &Pod,
    c: &Container,
    memory_capacity: i64,
) -> v1::LinuxContainerResources {
    let (requests, limits) = requests_limits(c);
    let mut r = linux_resources(
        milli(&requests, "cpu"),
        milli(&limits, "cpu"),
        value(&limits, "memory"),
    );
    r.oom_score_adj = oom_score_adj(pod, c, memory_capacity);
    r
}

fn qos(pod: &Pod) -> String {
    if let Some(q) = pod.status.as_ref().and_then(|s| s.qos_class.clone()) {
        return q;
    }
    let spec = pod.spec.clone().unwrap_or_default();
    crate::pods::status::qos_class(
        &spec.containers,
        spec.init_containers.as_deref().unwrap_or(&[]),
    )
    .into()
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// Upstream's `GetContainerOOMScoreAdjust`.
fn oom_score_adj(pod: &Pod, c: &Container, memory_capacity: i64) -> i64 {
    let spec = pod.spec.as_ref();
    if spec.and_then(|s| s.priority_class_name.as_deref()) == Some(NODE_CRITICAL) {
        return GUARANTEED_OOM_SCORE_ADJ;
    }
    match qos(pod).as_str() {
        "Guaranteed" => return GUARANTEED_OOM_SCORE_ADJ,
        "BestEffort" => return BEST_EFFORT_OOM_SCORE_ADJ,
        _ => {}
    }
    let mut request = value(&requests_limits(c).0, "memory");
    // A sidecar is protected like the least protected regular container.
    let is_init = spec
        .and_then(|s| s.init_containers.as_ref())
        .is_some_and(|inits| inits.iter().any(|i| i.name == c.name));
    if is_init && is_sidecar(c) {
        let min_regular = spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .map(|r| value(&requests_limits(r).0, "memory"))
            .min()
            .unwrap_or(0);
        if min_regular != 0 && min_regular > request {
            request = min_regular;
        }
    }
    let adj = if memory_capacity > 0 {
        let share = i128::from(request) * 1000 / i128::from(memory_capacity);
        1000 - i64::try_from(share).unwrap_or(i64::MAX).min(2000)
    } else {
        BEST_EFFORT_OOM_SCORE_ADJ
    };
    if adj < 1000 + GUARANTEED_OOM_SCORE_ADJ {
        1000 + GUARANTEED_OOM_SCORE_ADJ
    } else if adj == BEST_EFFORT_OOM_SCORE_ADJ {
        adj - 1
    } else {
        adj
    }
}

/// The pod's effective requests or limits of one resource, as upstream's
/// `PodRequests`/`PodLimits` without overhead: the regular containers and
/// sidecars together, or an init container (with the sidecars started
/// before it) when that is more.
fn pod_total(
    pod: &Pod,
    name: &str,
    pick: fn(&Container) -> Resources,
    f: fn(&Resources, &str) -> i64,
) -> i64 {
    let Some(spec) = pod.spec.as_ref() else {
        return 0;
    };
    let mut sidecars = 0i64;
    let mut init_max = 0i64;
    for c in spec.init_containers.iter().flatten() {
        let v = f(&pick(c), name);
        if is_sidecar(c) {
            sidecars = sidecars.saturating_add(v);
            init_max = init_max.max(sidecars);
        } else {
            init_max = init_max.max(sidecars.saturating_add(v));
        }
    }
    let regular = spec
        .containers
        .iter()
        .fold(0i64, |acc, c| acc.saturating_add(f(&pick(c), name)));
    regular.saturating_add(sidecars).max(init_max)
}

/// The sandbox's `resources` (the pod's totals) and `overhead`.
pub(crate) fn sandbox(pod: &Pod) -> (v1::LinuxContainerResources, v1::LinuxContainerResources) {
    let requests = |c: &Container| requests_limits(c).0;
    let limits = |c: &Container| requests_limits(c).1;
    let resources = linux_resources(
        pod_total(pod, "cpu", requests, milli),
        pod_total(pod, "cpu", limits, milli),
        pod_total(pod, "memory", limits, value),
    );
    let overhead = match pod.spec.as_ref().and_then(|s| s.overhead.as_ref()) {
        // Overhead is both request and limit.
        Some(o) => linux_resources(milli(o, "cpu"), milli(o, "cpu"), value(o, "memory")),
        None => v1::LinuxContainerResources::default(),
    };
    (resources, overhead)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};

    fn res(pairs: &[(&str, &str)]) -> Option<Resources> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                .collect(),
        )
    }

    fn container(name: &str, requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Container {
        Container {
            name: name.into(),
            resources: Some(ResourceRequirements {
                requests: res(requests),
                limits: res(limits),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod(containers: Vec<Container>, init: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers,
                init_containers: Some(init),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn cpu_arithmetic() {
        assert_eq!(milli_cpu_to_shares(0), 2);
        assert_eq!(milli_cpu_to_shares(1), 2);
        assert_eq!(milli_cpu_to_shares(100), 102);
        assert_eq!(milli_cpu_to_shares(1000), 1024);
        assert_eq!(milli_cpu_to_shares(1_000_000), MAX_SHARES);
        assert_eq!(milli_cpu_to_quota(0, QUOTA_PERIOD), 0);
        assert_eq!(milli_cpu_to_quota(5, QUOTA_PERIOD), 1000);
        assert_eq!(milli_cpu_to_quota(250, QUOTA_PERIOD), 25_000);
        assert_eq!(milli_cpu_to_quota(2000, QUOTA_PERIOD), 200_000);
    }

    #[test]
    fn container_resources_and_oom_scores() {
        let gib = 1i64 << 30;
        let c = container("a", &[], &[("cpu", "500m"), ("memory", "64Mi")]);
        let p = pod(vec![c.clone()], vec![]);
        let r = super::container(&p, &c, 4 * gib);
        // Request defaults to the limit: Guaranteed.
        assert_eq!(r.cpu_shares, 512);
        assert_eq!(r.cpu_quota, 50_000);
        assert_eq!(r.cpu_period, 100_000);
        assert_eq!(r.memory_limit_in_bytes, 64 << 20);
        assert_eq!(r.oom_score_adj, -997);

        let c = container("a", &[], &[]);
        let p = pod(vec![c.clone()], vec![]);
        let r = super::container(&p, &c, 4 * gib);
        assert_eq!(
            (r.cpu_shares, r.cpu_quota, r.memory_limit_in_bytes),
            (2, 0, 0)
        );
        assert_eq!(r.oom_score_adj, 1000);

        let c = container("a", &[("memory", "1Gi")], &[]);
        let p = pod(vec![c.clone()], vec![]);
        assert_eq!(super::container(&p, &c, 4 * gib).oom_score_adj, 750);
        let c = container("a", &[("memory", "4Gi")], &[]);
        let p = pod(vec![c.clone()], vec![]);
        assert_eq!(super::container(&p, &c, 4 * gib).oom_score_adj, 3);
        let c = container("a", &[("cpu", "100m")], &[]);
        let p = pod(vec![c.clone()], vec![]);
        assert_eq!(super::container(&p, &c, 4 * gib).oom_score_adj, 999);

        // A sidecar gets the smallest regular request when that is larger.
        let mut side = container("side", &[("memory", "1Mi")], &[]);
        side.restart_policy = Some("Always".into());
        let main = container("main", &[("memory", "2Gi")], &[]);
        let p = pod(vec![main], vec![side.clone()]);
        assert_eq!(super::container(&p, &side, 4 * gib).oom_score_adj, 500);
    }

    #[test]
    fn sandbox_totals() {
        let mut side = container("side", &[("cpu", "100m")], &[("memory", "10Mi")]);
        side.restart_policy = Some("Always".into());
        let init = container("init", &[("cpu", "2")], &[("memory", "1Mi")]);
        let a = container("a", &[("cpu", "200m")], &[("memory", "20Mi")]);
        let b = container("b", &[("cpu", "300m")], &[("memory", "30Mi")]);
        let p = pod(vec![a, b], vec![side, init]);
        let (r, overhead) = sandbox(&p);
        // max(0.2+0.3+0.1, 0.1+2) CPUs.
        assert_eq!(r.cpu_shares, milli_cpu_to_shares(2100));
        assert_eq!(r.memory_limit_in_bytes, 60 << 20);
        assert_eq!(overhead, v1::LinuxContainerResources::default());
    }
}
