//! The Job's optional policies, as pure functions: `podFailurePolicy` (what
//! a failed pod means: fail the Job at once, not count it, or count it) and
//! `successPolicy` (Indexed Jobs that succeed before every index has).

use std::collections::BTreeSet;

use k8s_openapi::api::batch::v1::{
    PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement, SuccessPolicy,
};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use super::indexes;

pub(crate) const REASON_POD_FAILURE_POLICY: &str = "PodFailurePolicy";
pub(crate) const REASON_SUCCESS_POLICY: &str = "SuccessPolicy";

/// What a failed pod amounts to under the pod failure policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Counted towards `backoffLimit` (no rule matched, or `Count`/`FailIndex`).
    Count,
    /// Not counted (`Ignore`).
    Ignore,
    /// The Job fails at once, with this message (`FailJob`).
    FailJob(String),
}

fn exit_code_matches(code: i32, req: &PodFailurePolicyOnExitCodesRequirement) -> bool {
    match req.operator.as_str() {
        "In" => req.values.contains(&code),
        "NotIn" => !req.values.contains(&code),
        _ => false,
    }
}

/// The first terminated container (regular ones first, then init ones)
/// whose non-zero exit code satisfies the requirement.
fn matching_container<'a>(
    pod: &'a Pod,
    req: &PodFailurePolicyOnExitCodesRequirement,
) -> Option<(&'a ContainerStatus, i32)> {
    let status = pod.status.as_ref()?;
    let regular = status.container_statuses.iter().flatten();
    let init = status.init_container_statuses.iter().flatten();
    regular.chain(init).find_map(|c| {
        let code = c.state.as_ref()?.terminated.as_ref()?.exit_code;
        let name_ok = req.container_name.as_ref().is_none_or(|n| *n == c.name);
        (name_ok && code != 0 && exit_code_matches(code, req)).then_some((c, code))
    })
}

/// Applies the policy's rules, in order, to a failed pod.
pub(crate) fn judge(policy: Option<&PodFailurePolicy>, pod: &Pod) -> Verdict {
    let Some(policy) = policy else {
        return Verdict::Count;
    };
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    for (index, rule) in policy.rules.iter().enumerate() {
        let message = if let Some(req) = &rule.on_exit_codes {
            matching_container(pod, req).map(|(c, code)| {
                format!(
                    "Container {} for pod {ns}/{name} failed with exit code {code} matching {} rule at index {index}",
                    c.name, rule.action
                )
            })
        } else if let Some(patterns) = &rule.on_pod_conditions {
            let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
            conditions.into_iter().flatten().find_map(|c| {
                patterns
                    .iter()
                    .any(|p| p.type_ == c.type_ && p.status == c.status)
                    .then(|| {
                        format!(
                            "Pod {ns}/{name} has condition {} matching {} rule at index {index}",
                            c.type_, rule.action
                        )
                    })
            })
        } else {
            None
        };
        let Some(message) = message else {
            continue;
        };
        match rule.action.as_str() {
            "Ignore" => return Verdict::Ignore,
            "FailJob" => return Verdict::FailJob(message),
            "Count" | "FailIndex" => return Verdict::Count,
            // An unknown action matches nothing; later rules may.
            _ => {}
        }
    }
    Verdict::Count
}

/// Whether the succeeded indexes meet a success policy rule; the message
/// names the first rule met.
pub(crate) fn success(
    policy: Option<&SuccessPolicy>,
    completions: i32,
    succeeded: &BTreeSet<i32>,
) -> Option<String> {
    let policy = policy?;
    if succeeded.is_empty() {
        return None;
    }
    for (index, rule) in policy.rules.iter().enumerate() {
        let met = match (&rule.succeeded_indexes, rule.succeeded_count) {
            (Some(text), count) => {
                let required = indexes::parse(text, completions);
                if required.is_empty() {
                    continue;
                }
                let done = required.intersection(succeeded).count();
                done == required.len()
                    || count
                        .is_some_and(|c| i64::try_from(done).unwrap_or(i64::MAX) >= i64::from(c))
            }
            (None, Some(count)) => {
                i64::try_from(succeeded.len()).unwrap_or(i64::MAX) >= i64::from(count)
            }
            (None, None) => false,
        };
        if met {
            return Some(format!("Matched rules at index {index}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{
        PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule, SuccessPolicyRule,
    };
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, PodCondition, PodStatus,
    };

    fn failed_pod(exit: i32, condition: Option<&str>) -> Pod {
        let mut pod = Pod {
            status: Some(PodStatus {
                phase: Some("Failed".into()),
                container_statuses: Some(vec![ContainerStatus {
                    name: "main".into(),
                    state: Some(ContainerState {
                        terminated: Some(ContainerStateTerminated {
                            exit_code: exit,
                            ..ContainerStateTerminated::default()
                        }),
                        ..ContainerState::default()
                    }),
                    ..ContainerStatus::default()
                }]),
                conditions: condition.map(|t| {
                    vec![PodCondition {
                        type_: t.into(),
                        status: "True".into(),
                        ..PodCondition::default()
                    }]
                }),
                ..PodStatus::default()
            }),
            ..Pod::default()
        };
        pod.metadata.namespace = Some("ns".into());
        pod.metadata.name = Some("p".into());
        pod
    }

    fn policy() -> PodFailurePolicy {
        PodFailurePolicy {
            rules: vec![
                PodFailurePolicyRule {
                    action: "Ignore".into(),
                    on_exit_codes: None,
                    on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                        type_: "DisruptionTarget".into(),
                        status: "True".into(),
                    }]),
                },
                PodFailurePolicyRule {
                    action: "FailJob".into(),
                    on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                        container_name: None,
                        operator: "In".into(),
                        values: vec![42],
                    }),
                    on_pod_conditions: None,
                },
            ],
        }
    }

    #[test]
    fn pod_failure_policy_verdicts() {
        let p = policy();
        assert_eq!(judge(None, &failed_pod(42, None)), Verdict::Count);
        assert_eq!(judge(Some(&p), &failed_pod(1, None)), Verdict::Count);
        assert_eq!(
            judge(Some(&p), &failed_pod(1, Some("DisruptionTarget"))),
            Verdict::Ignore
        );
        assert_eq!(
            judge(Some(&p), &failed_pod(42, None)),
            Verdict::FailJob("Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1".into())
        );
    }

    #[test]
    fn success_policy_rules() {
        let rule = |ix: Option<&str>, count: Option<i32>| SuccessPolicyRule {
            succeeded_indexes: ix.map(str::to_string),
            succeeded_count: count,
        };
        let policy = |rules| SuccessPolicy { rules };
        let done: BTreeSet<i32> = [0, 2, 3].into();
        assert_eq!(success(None, 5, &done), None);
        assert_eq!(
            success(Some(&policy(vec![rule(Some("0,2-3"), None)])), 5, &done),
            Some("Matched rules at index 0".into())
        );
        assert_eq!(
            success(Some(&policy(vec![rule(Some("0-4"), None)])), 5, &done),
            None
        );
        assert_eq!(
            success(
                Some(&policy(vec![
                    rule(Some("0-4"), None),
                    rule(Some("1-4"), Some(2))
                ])),
                5,
                &done
            ),
            Some("Matched rules at index 1".into())
        );
        assert_eq!(
            success(Some(&policy(vec![rule(None, Some(3))])), 5, &done),
            Some("Matched rules at index 0".into())
        );
        assert_eq!(
            success(Some(&policy(vec![rule(None, Some(4))])), 5, &done),
            None
        );
    }
}
