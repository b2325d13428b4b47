//! The disruption budget arithmetic, free of I/O: how many pods a budget
//! expects and wants healthy, how many are healthy, which recorded
//! disruptions still stand, and the status (with its `DisruptionAllowed`
//! condition) that results.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{
    PodDisruptionBudget, PodDisruptionBudgetSpec, PodDisruptionBudgetStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

pub(crate) const CONDITION: &str = "DisruptionAllowed";
pub(crate) const SUFFICIENT: &str = "SufficientPods";
pub(crate) const INSUFFICIENT: &str = "InsufficientPods";
pub(crate) const SYNC_FAILED: &str = "SyncFailed";
/// How long a pod the eviction API admitted may take to go before the
/// budget stops discounting it (upstream's `DeletionTimeout`).
pub(crate) const DELETION_TIMEOUT: SignedDuration = SignedDuration::from_secs(120);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BudgetError {
    #[error("invalid value for IntOrString: invalid type: string is not a percentage")]
    NotPercent,
    #[error("invalid value {0:?} for IntOrString")]
    BadPercent(String),
}

/// Whether the budget is relative to the pods' controllers' scale (so the
/// controllers must be looked up): any maxUnavailable, or a percentage
/// minAvailable.
pub(crate) fn needs_scale(spec: &PodDisruptionBudgetSpec) -> bool {
    spec.max_unavailable.is_some() || matches!(spec.min_available, Some(IntOrString::String(_)))
}

/// An int, or a percentage of `total` rounded up.
pub(crate) fn scaled(value: &IntOrString, total: i32) -> Result<i32, BudgetError> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let pct = s.strip_suffix('%').ok_or(BudgetError::NotPercent)?;
            let pct: i64 = pct
                .parse()
                .map_err(|_| BudgetError::BadPercent(s.clone()))?;
            let scaled = (pct * i64::from(total) + 99).div_euclid(100);
            i32::try_from(scaled).map_err(|_| BudgetError::BadPercent(s.clone()))
        }
    }
}

/// `(expectedPods, desiredHealthy)` given the number of selected pods and,
/// when [`needs_scale`], the summed scale of their controllers.
pub(crate) fn expected_and_desired(
    spec: &PodDisruptionBudgetSpec,
    pod_count: i32,
    scale: i32,
) -> Result<(i32, i32), BudgetError> {
    if let Some(max_unavailable) = &spec.max_unavailable {
        let unavailable = scaled(max_unavailable, scale)?;
        return Ok((scale, (scale - unavailable).max(0)));
    }
    match &spec.min_available {
        Some(IntOrString::Int(n)) => Ok((pod_count, *n)),
        Some(pct @ IntOrString::String(_)) => Ok((scale, scaled(pct, scale)?)),
        None => Ok((0, 0)),
    }
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The recorded disruptions that still stand: pods still selected, not yet
/// being deleted, recorded less than [`DELETION_TIMEOUT`] ago. Also returns
/// when the earliest of them lapses.
pub(crate) fn standing_disruptions(
    pdb: &PodDisruptionBudget,
    pods: &[&Pod],
    now: Timestamp,
) -> (BTreeMap<String, Time>, Option<Timestamp>) {
    let mut standing = BTreeMap::new();
    let mut recheck: Option<Timestamp> = None;
    let Some(recorded) = pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref()) else {
        return (standing, recheck);
    };
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(name) = pod.metadata.name.as_deref() else {
            continue;
        };
        let Some(at) = recorded.get(name) else {
            continue;
        };
        let lapses = at.0.checked_add(DELETION_TIMEOUT).unwrap_or(at.0);
        if lapses < now {
            tracing::info!(pod = %name, "pod admitted for eviction was not deleted in time");
            continue;
        }
        recheck = Some(recheck.map_or(lapses, |r| r.min(lapses)));
        standing.insert(name.to_string(), at.clone());
    }
    (standing, recheck)
}

/// Ready pods not being deleted and not about to be (a standing disruption).
pub(crate) fn current_healthy(
    pods: &[&Pod],
    disrupted: &BTreeMap<String, Time>,
    now: Timestamp,
) -> i32 {
    let healthy = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let name = p.metadata.name.as_deref().unwrap_or("");
            !disrupted
                .get(name)
                .is_some_and(|at| at.0.checked_add(DELETION_TIMEOUT).is_ok_and(|t| t > now))
        })
        .filter(|p| is_ready(p))
        .count();
    i32::try_from(healthy).unwrap_or(i32::MAX)
}

/// The computed part of a budget's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Computed {
    pub(crate) current_healthy: i32,
    pub(crate) desired_healthy: i32,
    pub(crate) expected_pods: i32,
    pub(crate) disrupted_pods: BTreeMap<String, Time>,
}

impl Computed {
    /// Disruptions allowed; none while no pods are expected, so a budget
    /// whose pods appear before it is synced errs on the safe side.
    pub(crate) fn allowed(&self) -> i32 {
        if self.expected_pods <= 0 {
            return 0;
        }
        (self.current_healthy - self.desired_healthy).max(0)
    }
}

/// The status to write, or `None` if the current one already says it.
pub(crate) fn next_status(
    pdb: &PodDisruptionBudget,
    computed: &Computed,
    now: Timestamp,
) -> Option<PodDisruptionBudgetStatus> {
    let generation = pdb.metadata.generation;
    let old = pdb.status.clone().unwrap_or_default();
    let allowed = computed.allowed();
    let (status, reason) = if allowed > 0 {
        ("True", SUFFICIENT)
    } else {
        ("False", INSUFFICIENT)
    };
    let old_disrupted = old.disrupted_pods.clone().unwrap_or_default();
    let condition_ok = old
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == CONDITION)
        .is_some_and(|c| c.status == status && c.reason == reason);
    if pdb.status.is_some()
        && old.current_healthy == computed.current_healthy
        && old.desired_healthy == computed.desired_healthy
        && old.expected_pods == computed.expected_pods
        && old.disruptions_allowed == allowed
        && old_disrupted == computed.disrupted_pods
        && old.observed_generation == generation
        && condition_ok
    {
        return None;
    }
    let mut conditions = old.conditions.clone().unwrap_or_default();
    set_condition(&mut conditions, status, reason, "", generation, now);
    Some(PodDisruptionBudgetStatus {
        current_healthy: computed.current_healthy,
        desired_healthy: computed.desired_healthy,
        expected_pods: computed.expected_pods,
        disruptions_allowed: allowed,
        disrupted_pods: Some(computed.disrupted_pods.clone()),
        observed_generation: generation,
        conditions: Some(conditions),
    })
}

/// The status after a failed sync: no disruptions allowed, the reason said.
pub(crate) fn failed_status(
    pdb: &PodDisruptionBudget,
    message: &str,
    now: Timestamp,
) -> PodDisruptionBudgetStatus {
    let mut status = pdb.status.clone().unwrap_or_default();
    status.disruptions_allowed = 0;
    let mut conditions = status.conditions.take().unwrap_or_default();
    set_condition(
        &mut conditions,
        "False",
        SYNC_FAILED,
        message,
        status.observed_generation,
        now,
    );
    status.conditions = Some(conditions);
    status
}

/// Sets the `DisruptionAllowed` condition, moving its transition time only
/// when its status changes (as `meta.SetStatusCondition`).
fn set_condition(
    conditions: &mut Vec<Condition>,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    let fresh = Condition {
        type_: CONDITION.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: Time(now),
    };
    match conditions.iter_mut().find(|c| c.type_ == CONDITION) {
        Some(c) => {
            let transition = if c.status == status {
                c.last_transition_time.clone()
            } else {
                Time(now)
            };
            *c = Condition {
                last_transition_time: transition,
                ..fresh
            };
        }
        None => conditions.push(fresh),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn spec(min: Option<IntOrString>, max: Option<IntOrString>) -> PodDisruptionBudgetSpec {
        PodDisruptionBudgetSpec {
            min_available: min,
            max_unavailable: max,
            ..Default::default()
        }
    }

    fn pct(s: &str) -> Option<IntOrString> {
        Some(IntOrString::String(s.into()))
    }

    #[test]
    fn expected_and_desired_follow_upstream() {
        let int = |n| Some(IntOrString::Int(n));
        // (spec, selected pods, controllers' scale) -> (expected, desired)
        let cases = [
            (spec(int(2), None), 3, 10, Ok((3, 2))),
            (spec(pct("50%"), None), 3, 5, Ok((5, 3))),
            (spec(pct("34%"), None), 3, 3, Ok((3, 2))),
            (spec(None, int(1)), 3, 4, Ok((4, 3))),
            (spec(None, pct("25%")), 3, 5, Ok((5, 3))),
            (spec(None, int(9)), 3, 4, Ok((4, 0))),
            (spec(None, None), 3, 0, Ok((0, 0))),
            (spec(pct("50"), None), 1, 1, Err(BudgetError::NotPercent)),
        ];
        for (s, pods, scale, want) in cases {
            assert_eq!(expected_and_desired(&s, pods, scale), want, "{s:?}");
        }
        assert!(needs_scale(&spec(None, int(1))));
        assert!(needs_scale(&spec(pct("10%"), None)));
        assert!(!needs_scale(&spec(int(1), None)));
    }

    fn pod(name: &str, ready: bool, deleting: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                deletion_timestamp: deleting.then(|| Time(Timestamp::now())),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn healthy_pods_and_disruptions() {
        let now = Timestamp::now();
        let long_ago = Time(
            now.checked_sub(SignedDuration::from_secs(300))
                .unwrap_or(now),
        );
        let pods = [
            pod("a", true, false),
            pod("b", true, false),
            pod("c", false, false),
            pod("d", true, true),
            pod("e", true, false),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let pdb = PodDisruptionBudget {
            status: Some(PodDisruptionBudgetStatus {
                disrupted_pods: Some(
                    [
                        ("b".to_string(), Time(now)),
                        ("e".to_string(), long_ago),
                        ("d".to_string(), Time(now)),
                        ("gone".to_string(), Time(now)),
                    ]
                    .into_iter()
                    .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (standing, recheck) = standing_disruptions(&pdb, &refs, now);
        assert_eq!(standing.keys().collect::<Vec<_>>(), ["b"]);
        assert!(recheck.is_some_and(|t| t > now));
        // a and e count; b is about to go, c is not ready, d is being deleted.
        assert_eq!(current_healthy(&refs, &standing, now), 2);
    }

    #[test]
    fn status_and_condition() {
        let now = Timestamp::now();
        let mut pdb = PodDisruptionBudget {
            metadata: ObjectMeta {
                generation: Some(2),
                ..Default::default()
            },
            ..Default::default()
        };
        let computed = Computed {
            current_healthy: 0,
            desired_healthy: 2,
            expected_pods: 3,
            disrupted_pods: BTreeMap::new(),
        };
        let status = next_status(&pdb, &computed, now).expect("first status");
        assert_eq!(status.disruptions_allowed, 0);
        assert_eq!(status.observed_generation, Some(2));
        let cond = &status.conditions.clone().unwrap_or_default()[0];
        assert_eq!(
            (cond.status.as_str(), cond.reason.as_str()),
            ("False", INSUFFICIENT)
        );
        pdb.status = Some(status);
        assert_eq!(next_status(&pdb, &computed, now), None, "unchanged");

        let healthy = Computed {
            current_healthy: 3,
            ..computed.clone()
        };
        let status = next_status(&pdb, &healthy, now).expect("changed");
        assert_eq!(status.disruptions_allowed, 1);
        let cond = &status.conditions.clone().unwrap_or_default()[0];
        assert_eq!(
            (cond.status.as_str(), cond.reason.as_str()),
            ("True", SUFFICIENT)
        );

        let no_pods = Computed {
            current_healthy: 3,
            desired_healthy: 0,
            expected_pods: 0,
            disrupted_pods: BTreeMap::new(),
        };
        assert_eq!(no_pods.allowed(), 0, "nothing expected, nothing allowed");

        pdb.status = Some(status);
        let failed = failed_status(&pdb, "found no controllers for pod \"x\"", now);
        assert_eq!(failed.disruptions_allowed, 0);
        let cond = &failed.conditions.clone().unwrap_or_default()[0];
        assert_eq!(
            (cond.status.as_str(), cond.reason.as_str()),
            ("False", SYNC_FAILED)
        );
        assert_eq!(cond.message, "found no controllers for pod \"x\"");
    }
}
