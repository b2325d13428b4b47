//! The ClusterRole aggregation controller: a ClusterRole with an
//! `aggregationRule` holds the rules of every other ClusterRole its selectors
//! match (in name order, each rule once), as upstream's controller keeps
//! `admin`, `edit` and `view` filled from the `aggregate-to-*` roles.

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};

use crate::disruption::selector;

const MANAGER: &str = "clusterrole-aggregation-controller";

pub async fn run(client: kube::Client) {
    let api: Api<ClusterRole> = Api::all(client);
    let (reader, writer) = reflector::store();
    let events =
        reflector(writer, watcher(api.clone(), watcher::Config::default())).default_backoff();
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        match event {
            // The reflector's store is complete once the initial list is.
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "watching cluster roles");
                continue;
            }
        }
        let roles: BTreeMap<String, ClusterRole> = reader
            .state()
            .iter()
            .filter_map(|r| Some((r.metadata.name.clone()?, (**r).clone())))
            .collect();
        for (name, role) in &roles {
            let Some(wanted) = aggregated_rules(name, role, &roles) else {
                continue;
            };
            if role.rules.as_deref().unwrap_or(&[]) == wanted.as_slice() {
                continue;
            }
            let patch = serde_json::json!({"rules": wanted});
            if let Err(e) = api
                .patch(
                    name,
                    &PatchParams {
                        field_manager: Some(MANAGER.into()),
                        ..Default::default()
                    },
                    &Patch::Merge(&patch),
                )
                .await
            {
                tracing::warn!(role = %name, error = %e, "updating an aggregated cluster role");
            }
        }
    }
}

/// The rules `role` should hold, or `None` when it aggregates nothing.
fn aggregated_rules(
    name: &str,
    role: &ClusterRole,
    all: &BTreeMap<String, ClusterRole>,
) -> Option<Vec<PolicyRule>> {
    let selectors = role
        .aggregation_rule
        .as_ref()?
        .cluster_role_selectors
        .as_ref()?;
    let mut rules: Vec<PolicyRule> = Vec::new();
    for sel in selectors {
        for (other_name, other) in all {
            if other_name == name
                || !selector::matches(Some(sel), other.metadata.labels.as_ref()).unwrap_or(false)
            {
                continue;
            }
            for rule in other.rules.iter().flatten() {
                if !rules.contains(rule) {
                    rules.push(rule.clone());
                }
            }
        }
    }
    Some(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str, labels: &[(&str, &str)], verbs: &[&str]) -> ClusterRole {
        ClusterRole {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            rules: Some(vec![PolicyRule {
                verbs: verbs.iter().map(|v| v.to_string()).collect(),
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["pods".into()]),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn matching_roles_rules_are_gathered_once_in_name_order() {
        let mut view = role("view", &[], &[]);
        view.rules = None;
        view.aggregation_rule = Some(k8s_openapi::api::rbac::v1::AggregationRule {
            cluster_role_selectors: Some(vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                    match_labels: Some([("agg".to_string(), "view".to_string())].into()),
                    ..Default::default()
                },
            ]),
        });
        let all: BTreeMap<String, ClusterRole> = [
            view.clone(),
            role("b", &[("agg", "view")], &["list"]),
            role("a", &[("agg", "view")], &["get"]),
            role("c", &[("agg", "view")], &["get"]),
            role("other", &[], &["delete"]),
        ]
        .into_iter()
        .map(|r| (r.metadata.name.clone().unwrap_or_default(), r))
        .collect();
        let rules = aggregated_rules("view", &view, &all).expect("aggregates");
        let verbs: Vec<&str> = rules.iter().map(|r| r.verbs[0].as_str()).collect();
        assert_eq!(verbs, vec!["get", "list"], "c's rule equals a's");
        assert!(aggregated_rules("a", &all["a"], &all).is_none());
    }
}
