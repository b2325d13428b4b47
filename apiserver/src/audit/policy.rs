//! The audit policy (`audit.k8s.io/v1` `Policy`, `--audit-policy-file`):
//! the first rule that matches a request gives its level and the stages not
//! to record; a request no rule matches is not audited.

use serde::Deserialize;

use crate::auth::UserInfo;
use crate::auth::rbac::Action;

/// How much of a request is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum Level {
    None,
    Metadata,
    Request,
    RequestResponse,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "None",
            Level::Metadata => "Metadata",
            Level::Request => "Request",
            Level::RequestResponse => "RequestResponse",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct GroupResources {
    #[serde(default)]
    group: String,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default, rename = "resourceNames")]
    resource_names: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    level: Level,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    user_groups: Vec<String>,
    #[serde(default)]
    verbs: Vec<String>,
    #[serde(default)]
    resources: Vec<GroupResources>,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default, rename = "nonResourceURLs")]
    non_resource_urls: Vec<String>,
    #[serde(default)]
    omit_stages: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    kind: String,
    #[serde(default)]
    rules: Vec<Rule>,
    #[serde(default)]
    omit_stages: Vec<String>,
}

/// What the policy says about one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub level: Level,
    pub omit_stages: Vec<String>,
}

impl Policy {
    pub fn parse(text: &str) -> Result<Policy, String> {
        let policy: Policy =
            serde_yaml::from_str(text).map_err(|e| format!("not an audit Policy: {e}"))?;
        if policy.kind != "Policy" {
            return Err(format!("kind is {:?}, not Policy", policy.kind));
        }
        Ok(policy)
    }

    /// The level and omitted stages for `user` doing `action`.
    pub fn decide(&self, user: &UserInfo, action: &Action) -> Decision {
        for rule in &self.rules {
            if rule.matches(user, action) {
                let mut omit = self.omit_stages.clone();
                omit.extend(rule.omit_stages.iter().flatten().cloned());
                return Decision {
                    level: rule.level,
                    omit_stages: omit,
                };
            }
        }
        Decision {
            level: Level::None,
            omit_stages: Vec::new(),
        }
    }
}

impl Rule {
    fn matches(&self, user: &UserInfo, action: &Action) -> bool {
        if !self.users.is_empty() && !self.users.contains(&user.name) {
            return false;
        }
        if !self.user_groups.is_empty() && !self.user_groups.iter().any(|g| user.in_group(g)) {
            return false;
        }
        if !self.verbs.is_empty() && !self.verbs.iter().any(|v| v == action.verb()) {
            return false;
        }
        match action {
            Action::NonResource { path, .. } => {
                // A rule about resources or namespaces is not about paths.
                if !self.resources.is_empty() || !self.namespaces.is_empty() {
                    return false;
                }
                self.non_resource_urls.is_empty()
                    || self.non_resource_urls.iter().any(|u| {
                        u == path || u.strip_suffix('*').is_some_and(|p| path.starts_with(p))
                    })
            }
            Action::Resource {
                group,
                resource,
                subresource,
                namespace,
                name,
                ..
            } => {
                if !self.non_resource_urls.is_empty() {
                    return false;
                }
                if !self.namespaces.is_empty() && !self.namespaces.contains(namespace) {
                    return false;
                }
                if self.resources.is_empty() {
                    return true;
                }
                let full = if subresource.is_empty() {
                    resource.clone()
                } else {
                    format!("{resource}/{subresource}")
                };
                self.resources.iter().any(|gr| {
                    gr.group == *group
                        && (gr.resources.is_empty()
                            || gr.resources.iter().any(|r| {
                                *r == full
                                    || r == "*"
                                    || (r.strip_prefix("*/").is_some_and(|s| s == subresource))
                                    || (r.strip_suffix("/*").is_some_and(|s| s == resource))
                            }))
                        && (gr.resource_names.is_empty() || gr.resource_names.contains(name))
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(verb: &str, resource: &str, ns: &str) -> Action {
        Action::Resource {
            verb: verb.into(),
            group: String::new(),
            resource: resource.into(),
            subresource: String::new(),
            namespace: ns.into(),
            name: String::new(),
        }
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let policy = Policy::parse(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: None\n  users: [system:kube-proxy]\n- level: RequestResponse\n  resources:\n  - group: \"\"\n    resources: [configmaps]\n- level: Metadata\n  namespaces: [dev]\n- level: Request\n  nonResourceURLs: [/api*]\n",
        )
        .expect("policy");
        let jane = UserInfo {
            name: "jane".into(),
            ..UserInfo::default()
        };
        assert_eq!(
            policy
                .decide(&jane, &action("get", "configmaps", "x"))
                .level,
            Level::RequestResponse
        );
        assert_eq!(
            policy.decide(&jane, &action("get", "pods", "dev")),
            Decision {
                level: Level::Metadata,
                omit_stages: vec!["RequestReceived".into()]
            }
        );
        assert_eq!(
            policy.decide(&jane, &action("get", "pods", "prod")).level,
            Level::None
        );
        let path = Action::NonResource {
            verb: "get".into(),
            path: "/apis".into(),
        };
        assert_eq!(policy.decide(&jane, &path).level, Level::Request);
        let proxy = UserInfo {
            name: "system:kube-proxy".into(),
            ..UserInfo::default()
        };
        assert_eq!(
            policy
                .decide(&proxy, &action("get", "configmaps", "x"))
                .level,
            Level::None
        );
    }
}
