//! RBAC escalation prevention, as upstream's RBAC storage does it: a user may
//! write a Role or ClusterRole only with rules they already hold (or the
//! `escalate` verb on it), and a binding only to a role whose rules they
//! already hold (or the `bind` verb on it). The check runs on the object as it
//! is about to be stored, after create, update, patch or apply built it.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::rbac_policy::PolicyIndex;
use crate::api_error::{ApiError, ApiResult};
use crate::auth::UserInfo;
use crate::auth::rbac::{Action, Policy, Rule};

const GROUP: &str = "rbac.authorization.k8s.io";

/// A check the store runs on an object before writing it.
#[derive(Clone)]
pub struct GrantCheck(Arc<CheckFn>);

type CheckFn = dyn Fn(&Value) -> ApiResult<()> + Send + Sync;

impl std::fmt::Debug for GrantCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrantCheck")
    }
}

impl GrantCheck {
    pub fn check(&self, obj: &Value) -> ApiResult<()> {
        (self.0)(obj)
    }
}

/// The check for `user` writing a `plural` of rbac.authorization.k8s.io, or
/// `None` when there is nothing to check (another resource, or a member of
/// `system:masters`, who holds every right).
pub fn guard(
    policy: &Arc<PolicyIndex>,
    user: &UserInfo,
    group: &str,
    plural: &str,
) -> Option<GrantCheck> {
    if group != GROUP || user.in_group(crate::auth::MASTERS) {
        return None;
    }
    let kind = match plural {
        "roles" | "clusterroles" | "rolebindings" | "clusterrolebindings" => plural.to_string(),
        _ => return None,
    };
    let policy = policy.clone();
    let user = user.clone();
    Some(GrantCheck(Arc::new(move |obj: &Value| {
        policy.with(|p| check(p, &user, &kind, obj))
    })))
}

fn text<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn check(policy: &Policy, user: &UserInfo, plural: &str, obj: &Value) -> ApiResult<()> {
    let ns = text(obj, "/metadata/namespace");
    let name = text(obj, "/metadata/name");
    let may = |verb: &str, resource: &str, name: &str| {
        policy.allows(
            user,
            &Action::Resource {
                verb: verb.into(),
                group: GROUP.into(),
                resource: resource.into(),
                subresource: String::new(),
                namespace: ns.into(),
                name: name.into(),
            },
        )
    };
    let granted: Vec<Rule> = match plural {
        "roles" | "clusterroles" => {
            if may("escalate", plural, name) {
                return Ok(());
            }
            rules_of(obj)
        }
        _ => {
            let role_kind = text(obj, "/roleRef/kind");
            let role_name = text(obj, "/roleRef/name");
            let role_plural = if role_kind == "Role" {
                "roles"
            } else {
                "clusterroles"
            };
            if may("bind", role_plural, role_name) {
                return Ok(());
            }
            let rules = if role_kind == "Role" {
                policy.roles.get(ns).and_then(|r| r.get(role_name))
            } else {
                policy.cluster_roles.get(role_name)
            };
            match rules {
                Some(rules) => rules.clone(),
                None => {
                    return Err(ApiError::new(
                        404,
                        "NotFound",
                        format!("{role_plural}.{GROUP} {role_name:?} not found"),
                    )
                    .with_details(
                        serde_json::json!({"name": role_name, "group": GROUP, "kind": role_plural}),
                    ));
                }
            }
        }
    };
    let held = policy.rules_for(user, ns);
    let missing = missing_rights(&granted, &held, ns);
    if missing.is_empty() {
        return Ok(());
    }
    let groups: Vec<String> = user.groups.iter().map(|g| format!("{g:?}")).collect();
    Err(ApiError::new(
        403,
        "Forbidden",
        format!(
            "{plural}.{GROUP} {name:?} is forbidden: user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
            user.name,
            groups.join(" "),
            missing.join("\n")
        ),
    )
    .with_details(serde_json::json!({"name": name, "group": GROUP, "kind": plural})))
}

fn rules_of(obj: &Value) -> Vec<Rule> {
    obj.get("rules")
        .and_then(|r| Vec::<Rule>::deserialize(r).ok())
        .unwrap_or_default()
}

/// The rights of `granted` that no rule of `held` covers, each rendered as
/// upstream's compact string, verbs of one resource gathered.
fn missing_rights(granted: &[Rule], held: &[&Rule], ns: &str) -> Vec<String> {
    let covered = |action: &Action| held.iter().any(|r| r.allows(action));
    let quote = |v: &[String]| {
        v.iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut missing: Vec<(String, Vec<String>)> = Vec::new();
    let mut note = |key: String, verb: &str| match missing.iter_mut().find(|(k, _)| *k == key) {
        Some((_, verbs)) => verbs.push(verb.to_string()),
        None => missing.push((key, vec![verb.to_string()])),
    };
    for rule in granted {
        for verb in &rule.verbs {
            for url in &rule.non_resource_urls {
                let action = Action::NonResource {
                    verb: verb.clone(),
                    path: url.clone(),
                };
                if !covered(&action) {
                    note(format!("NonResourceURLs:[{url:?}]"), verb);
                }
            }
            for group in &rule.api_groups {
                for resource in &rule.resources {
                    let (res, sub) = resource.split_once('/').unwrap_or((resource, ""));
                    let names: Vec<&str> = if rule.resource_names.is_empty() {
                        vec![""]
                    } else {
                        rule.resource_names.iter().map(String::as_str).collect()
                    };
                    for name in names {
                        let action = Action::Resource {
                            verb: verb.clone(),
                            group: group.clone(),
                            resource: res.to_string(),
                            subresource: sub.to_string(),
                            namespace: ns.to_string(),
                            name: name.to_string(),
                        };
                        if covered(&action) {
                            continue;
                        }
                        let mut key = format!("APIGroups:[{group:?}], Resources:[{resource:?}]");
                        if !name.is_empty() {
                            key.push_str(&format!(
                                ", ResourceNames:[{}]",
                                quote(&[name.to_string()])
                            ));
                        }
                        note(key, verb);
                    }
                }
            }
        }
    }
    missing
        .into_iter()
        .map(|(key, verbs)| format!("{{{key}, Verbs:[{}]}}", quote(&verbs)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: Value) -> Rule {
        serde_json::from_value(json).expect("rule")
    }

    #[test]
    fn only_rights_not_held_are_reported() {
        let held = [rule(
            serde_json::json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}),
        )];
        let held: Vec<&Rule> = held.iter().collect();
        let granted = [rule(serde_json::json!({
            "verbs": ["get", "delete"], "apiGroups": [""], "resources": ["pods", "nodes"]
        }))];
        assert_eq!(
            missing_rights(&granted, &held, "dev"),
            vec![
                r#"{APIGroups:[""], Resources:["nodes"], Verbs:["get" "delete"]}"#,
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#,
            ]
        );
        let within = [rule(
            serde_json::json!({"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}),
        )];
        assert!(missing_rights(&within, &held, "dev").is_empty());
    }
}
