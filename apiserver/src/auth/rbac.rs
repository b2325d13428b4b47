//! Role-based access control: the decision of upstream's RBAC authorizer
//! over a snapshot of Roles, ClusterRoles and their bindings.
//!
//! A request is allowed when some binding whose subjects include the user
//! references a role with a rule covering the request. ClusterRoleBindings
//! apply everywhere; a RoleBinding applies in its namespace only, whether it
//! references a Role of that namespace or a ClusterRole. Nothing is ever
//! denied explicitly: no matching rule means no opinion, which the chain
//! turns into 403.

use std::collections::HashMap;

use serde::Deserialize;

use super::UserInfo;

/// What a request asks to do (upstream's `authorizer.Attributes`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Resource {
        verb: String,
        group: String,
        /// `pods`, or `pods` with subresource `log`.
        resource: String,
        subresource: String,
        namespace: String,
        name: String,
    },
    NonResource {
        verb: String,
        path: String,
    },
}

impl Action {
    pub fn verb(&self) -> &str {
        match self {
            Action::Resource { verb, .. } | Action::NonResource { verb, .. } => verb,
        }
    }

    pub fn namespace(&self) -> &str {
        match self {
            Action::Resource { namespace, .. } => namespace,
            Action::NonResource { .. } => "",
        }
    }

    /// Upstream's wording of a refusal of this action to `user`.
    pub fn forbidden_message(&self, user: &str) -> String {
        match self {
            Action::NonResource { verb, path } => {
                format!("User {user:?} cannot {verb} path {path:?}")
            }
            Action::Resource {
                verb,
                group,
                resource,
                subresource,
                namespace,
                ..
            } => {
                let resource = if subresource.is_empty() {
                    resource.clone()
                } else {
                    format!("{resource}/{subresource}")
                };
                if namespace.is_empty() {
                    format!(
                        "User {user:?} cannot {verb} resource {resource:?} in API group {group:?} at the cluster scope"
                    )
                } else {
                    format!(
                        "User {user:?} cannot {verb} resource {resource:?} in API group {group:?} in the namespace {namespace:?}"
                    )
                }
            }
        }
    }
}

/// One `PolicyRule`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    #[serde(
        default,
        rename = "nonResourceURLs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
}

fn has(list: &[String], want: &str) -> bool {
    list.iter().any(|v| v == "*" || v == want)
}

impl Rule {
    /// Whether this rule covers `action`.
    pub fn allows(&self, action: &Action) -> bool {
        match action {
            Action::NonResource { verb, path } => {
                has(&self.verbs, verb)
                    && self.non_resource_urls.iter().any(|u| {
                        u == "*"
                            || u == path
                            || u.strip_suffix('*').is_some_and(|p| path.starts_with(p))
                    })
            }
            Action::Resource {
                verb,
                group,
                resource,
                subresource,
                name,
                ..
            } => {
                has(&self.verbs, verb)
                    && has(&self.api_groups, group)
                    && self.covers_resource(resource, subresource)
                    && (self.resource_names.is_empty()
                        || (!name.is_empty() && self.resource_names.iter().any(|n| n == name)))
            }
        }
    }

    /// `pods` names pods, `pods/log` their logs, `*/scale` every scale
    /// subresource and `*` everything; upstream's RBAC knows no `pods/*`.
    fn covers_resource(&self, resource: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            r == "*"
                || match r.split_once('/') {
                    None => subresource.is_empty() && r == resource,
                    Some((res, sub)) => {
                        !subresource.is_empty()
                            && sub == subresource
                            && (res == resource || res == "*")
                    }
                }
        })
    }
}

/// A role's reference from a binding.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RoleRef {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
}

/// A binding's subject.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Subject {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
}

impl Subject {
    /// Whether `user` is this subject (`binding_ns`: a RoleBinding's
    /// namespace, which a ServiceAccount subject without one defaults to).
    pub fn matches(&self, user: &UserInfo, binding_ns: &str) -> bool {
        match self.kind.as_str() {
            "User" => user.name == self.name,
            "Group" => user.in_group(&self.name),
            "ServiceAccount" => {
                let ns = if self.namespace.is_empty() {
                    binding_ns
                } else {
                    &self.namespace
                };
                !ns.is_empty()
                    && user
                        .name
                        .strip_prefix("system:serviceaccount:")
                        .and_then(|rest| rest.split_once(':'))
                        .is_some_and(|(n, name)| n == ns && name == self.name)
            }
            _ => false,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    #[serde(default)]
    pub role_ref: RoleRef,
    #[serde(default)]
    pub subjects: Vec<Subject>,
}

/// The RBAC objects the authorizer decides with.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub cluster_roles: HashMap<String, Vec<Rule>>,
    /// By namespace, then name.
    pub roles: HashMap<String, HashMap<String, Vec<Rule>>>,
    pub cluster_role_bindings: HashMap<String, Binding>,
    /// By namespace, then name.
    pub role_bindings: HashMap<String, HashMap<String, Binding>>,
}

impl Policy {
    /// The rules `user` holds in `namespace` ("" for cluster-wide rules only),
    /// each with the binding that grants it.
    pub fn rules_for<'a>(&'a self, user: &UserInfo, namespace: &str) -> Vec<&'a Rule> {
        self.bound_rules(user, namespace).collect()
    }

    /// The rules of [`Policy::rules_for`], found as they are read (an
    /// authorization stops at the first rule that allows).
    fn bound_rules<'p: 'q, 'q>(
        &'p self,
        user: &'q UserInfo,
        namespace: &'q str,
    ) -> impl Iterator<Item = &'p Rule> + 'q {
        let cluster = self
            .cluster_role_bindings
            .values()
            .filter(move |b| {
                b.role_ref.kind == "ClusterRole" && b.subjects.iter().any(|s| s.matches(user, ""))
            })
            .filter_map(move |b| self.cluster_roles.get(&b.role_ref.name));
        let local = self
            .role_bindings
            .get(namespace)
            .filter(|_| !namespace.is_empty())
            .into_iter()
            .flat_map(|bindings| bindings.values())
            .filter(move |b| b.subjects.iter().any(|s| s.matches(user, namespace)))
            .filter_map(move |b| match b.role_ref.kind.as_str() {
                "ClusterRole" => self.cluster_roles.get(&b.role_ref.name),
                "Role" => self
                    .roles
                    .get(namespace)
                    .and_then(|r| r.get(&b.role_ref.name)),
                _ => None,
            });
        cluster.chain(local).flatten()
    }

    /// Whether some rule `user` holds covers `action`.
    pub fn allows(&self, user: &UserInfo, action: &Action) -> bool {
        self.bound_rules(user, action.namespace())
            .any(|r| r.allows(action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..UserInfo::default()
        }
    }

    fn resource(verb: &str, resource: &str, sub: &str, ns: &str, name: &str) -> Action {
        Action::Resource {
            verb: verb.into(),
            group: String::new(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
        }
    }

    fn rule(json: serde_json::Value) -> Rule {
        serde_json::from_value(json).expect("rule")
    }

    #[test]
    fn rules_match_verbs_resources_subresources_and_names() {
        let r = rule(
            serde_json::json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "pods/log"]}),
        );
        assert!(r.allows(&resource("get", "pods", "", "d", "p")));
        assert!(r.allows(&resource("get", "pods", "log", "d", "p")));
        assert!(!r.allows(&resource("get", "pods", "exec", "d", "p")));
        assert!(!r.allows(&resource("delete", "pods", "", "d", "p")));
        let named = rule(
            serde_json::json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]}),
        );
        assert!(named.allows(&resource("get", "configmaps", "", "d", "a")));
        assert!(!named.allows(&resource("get", "configmaps", "", "d", "b")));
        assert!(!named.allows(&resource("list", "configmaps", "", "d", "")));
        let sub =
            rule(serde_json::json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*/scale"]}));
        assert!(sub.allows(&resource("update", "deployments", "scale", "d", "x")));
        assert!(!sub.allows(&resource("update", "deployments", "", "d", "x")));
        let not_wildcard =
            rule(serde_json::json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/*"]}));
        assert!(
            !not_wildcard.allows(&resource("get", "pods", "log", "d", "p")),
            "upstream's RBAC has no resource/* wildcard"
        );
        let urls =
            rule(serde_json::json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/api/*"]}));
        let path = |p: &str| Action::NonResource {
            verb: "get".into(),
            path: p.into(),
        };
        assert!(urls.allows(&path("/healthz")));
        assert!(urls.allows(&path("/api/v1")));
        assert!(!urls.allows(&path("/apis")));
    }

    #[test]
    fn role_bindings_apply_in_their_namespace_only() {
        let mut policy = Policy::default();
        policy.cluster_roles.insert(
            "view".into(),
            vec![rule(
                serde_json::json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}),
            )],
        );
        let binding: Binding = serde_json::from_value(serde_json::json!({
            "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "name": "bot"}],
        }))
        .expect("binding");
        policy
            .role_bindings
            .entry("dev".into())
            .or_default()
            .insert("b".into(), binding);
        let jane = user("jane", &["system:authenticated"]);
        assert!(policy.allows(&jane, &resource("list", "pods", "", "dev", "")));
        assert!(!policy.allows(&jane, &resource("list", "pods", "", "prod", "")));
        assert!(!policy.allows(&jane, &resource("list", "pods", "", "", "")));
        assert!(!policy.allows(&jane, &resource("create", "pods", "", "dev", "")));
        let bot = user("system:serviceaccount:dev:bot", &[]);
        assert!(policy.allows(&bot, &resource("get", "pods", "", "dev", "p")));
        let other = user("system:serviceaccount:prod:bot", &[]);
        assert!(!policy.allows(&other, &resource("get", "pods", "", "dev", "p")));
    }

    #[test]
    fn refusals_are_worded_as_upstream() {
        assert_eq!(
            resource("create", "pods", "", "ns", "").forbidden_message("u"),
            r#"User "u" cannot create resource "pods" in API group "" in the namespace "ns""#
        );
        assert_eq!(
            resource("get", "nodes", "proxy", "", "n").forbidden_message("u"),
            r#"User "u" cannot get resource "nodes/proxy" in API group "" at the cluster scope"#
        );
        assert_eq!(
            Action::NonResource {
                verb: "get".into(),
                path: "/api".into()
            }
            .forbidden_message("system:anonymous"),
            r#"User "system:anonymous" cannot get path "/api""#
        );
    }
}
