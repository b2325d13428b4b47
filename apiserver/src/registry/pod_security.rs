//! PodSecurity admission (the Pod Security Standards): a namespace labelled
//! `pod-security.kubernetes.io/enforce: baseline|restricted` refuses new pods
//! that break that level, with upstream's message:
//! `pods "p" is forbidden: violates PodSecurity "restricted:latest": <reason>
//! (<detail>), ...`, the failed checks in upstream's order. Namespaces
//! without the label are `privileged` (upstream's default configuration).
//!
//! `pod-security.kubernetes.io/warn` adds upstream's `would violate ...`
//! warning instead. Not yet: the `audit` mode, exemptions, checks of pod
//! updates and of workload templates.

use serde_json::Value;

use crate::api_error::{ApiError, ApiResult};
use crate::registry::meta::{self, strings};
use crate::registry::store::Store;

const ENFORCE: &str = "pod-security.kubernetes.io/enforce";
const ENFORCE_VERSION: &str = "pod-security.kubernetes.io/enforce-version";
const WARN: &str = "pod-security.kubernetes.io/warn";
const WARN_VERSION: &str = "pod-security.kubernetes.io/warn-version";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    fn parse(s: &str) -> Option<Level> {
        match s {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// Refuses `pod` if its namespace enforces a level the pod breaks, and warns
/// when it breaks the namespace's `warn` level.
pub async fn admit(store: &Store, pod: &Value, warnings: &super::Warnings) -> ApiResult<()> {
    let Some(ns) = meta::str_at(pod, "/metadata/namespace").filter(|n| !n.is_empty()) else {
        return Ok(());
    };
    let Some(info) = store.table.get("", "v1", "namespaces") else {
        return Ok(());
    };
    let namespace = match store.get(&info, None, ns).await {
        Ok(n) => n,
        Err(e) if e.code == 404 => return Ok(()),
        Err(e) => return Err(e),
    };
    let label = |key: &str| {
        namespace
            .pointer("/metadata/labels")
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
    };
    // "restricted:latest": reason (detail), ... — or None when the pod complies.
    let verdict = |level_key: &str, version_key: &str| -> Option<String> {
        let level = label(level_key).and_then(Level::parse)?;
        let version = label(version_key).unwrap_or("latest");
        let failures = check(level, pod);
        if failures.is_empty() {
            return None;
        }
        let reasons: Vec<String> = failures
            .iter()
            .map(|(reason, detail)| format!("{reason} ({detail})"))
            .collect();
        Some(format!(
            "PodSecurity \"{}:{version}\": {}",
            level.name(),
            reasons.join(", ")
        ))
    };
    if let Some(violation) = verdict(ENFORCE, ENFORCE_VERSION) {
        let name = meta::name(pod);
        return Err(ApiError::new(
            403,
            "Forbidden",
            format!("pods {name:?} is forbidden: violates {violation}"),
        )
        .with_details(serde_json::json!({"name": name, "kind": "pods"})));
    }
    if let Some(violation) = verdict(WARN, WARN_VERSION) {
        warnings.push(format!("would violate {violation}"));
    }
    Ok(())
}

/// A container and its security context.
struct Container<'a> {
    name: &'a str,
    sc: &'a Value,
    spec: &'a Value,
}

fn containers(pod: &Value) -> Vec<Container<'_>> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|field| {
            pod.pointer(&format!("/spec/{field}"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .map(|c| Container {
            name: c.get("name").and_then(Value::as_str).unwrap_or(""),
            sc: c.get("securityContext").unwrap_or(&Value::Null),
            spec: c,
        })
        .collect()
}

/// `container "a"` or `containers "a", "b"`.
fn named(noun: &str, names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    let noun = if names.len() == 1 {
        noun.to_string()
    } else {
        format!("{noun}s")
    };
    format!("{noun} {}", quoted.join(", "))
}

fn quoted(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The capabilities a baseline pod may add (Docker's defaults).
const DEFAULT_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Sysctls a baseline pod may set.
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

/// Volume types a restricted pod may use.
const RESTRICTED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// The failed checks of `pod` at `level`, as (reason, detail), in the order
/// upstream reports them.
pub fn check(level: Level, pod: &Value) -> Vec<(&'static str, String)> {
    if level == Level::Privileged {
        return Vec::new();
    }
    let restricted = level == Level::Restricted;
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    let pod_sc = spec.get("securityContext").unwrap_or(&Value::Null);
    let all = containers(pod);
    // (check ID, reason, detail)
    let mut out: Vec<(&'static str, &'static str, String)> = Vec::new();
    let names_where = |f: &dyn Fn(&Container<'_>) -> bool| -> Vec<&str> {
        all.iter().filter(|c| f(c)).map(|c| c.name).collect()
    };

    // allowPrivilegeEscalation (restricted)
    if restricted {
        let bad =
            names_where(&|c| c.sc.get("allowPrivilegeEscalation") != Some(&Value::Bool(false)));
        if !bad.is_empty() {
            out.push((
                "allowPrivilegeEscalation",
                "allowPrivilegeEscalation != false",
                format!(
                    "{} must set securityContext.allowPrivilegeEscalation=false",
                    named("container", &bad)
                ),
            ));
        }
    }
    // capabilities: baseline, or restricted (which overrides it)
    {
        let mut details = Vec::new();
        if restricted {
            let no_drop = names_where(&|c| {
                !strings(c.sc.pointer("/capabilities/drop"))
                    .iter()
                    .any(|d| d == "ALL")
            });
            if !no_drop.is_empty() {
                details.push(format!(
                    "{} must set securityContext.capabilities.drop=[\"ALL\"]",
                    named("container", &no_drop)
                ));
            }
        }
        for c in &all {
            let added: Vec<String> = strings(c.sc.pointer("/capabilities/add"))
                .into_iter()
                .filter(|cap| {
                    if restricted {
                        cap != "NET_BIND_SERVICE"
                    } else {
                        !DEFAULT_CAPABILITIES.contains(&cap.as_str())
                    }
                })
                .collect();
            if !added.is_empty() {
                details.push(format!(
                    "{} must not include {} in securityContext.capabilities.add",
                    named("container", &[c.name]),
                    quoted(&added)
                ));
            }
        }
        if !details.is_empty() {
            let (id, reason) = if restricted {
                ("capabilities_restricted", "unrestricted capabilities")
            } else {
                ("capabilities_baseline", "non-default capabilities")
            };
            out.push((id, reason, details.join("; ")));
        }
    }
    // hostNamespaces
    let host: Vec<&str> = [
        ("hostNetwork", "hostNetwork=true"),
        ("hostPID", "hostPID=true"),
        ("hostIPC", "hostIPC=true"),
    ]
    .into_iter()
    .filter(|(field, _)| spec.get(*field) == Some(&Value::Bool(true)))
    .map(|(_, text)| text)
    .collect();
    if !host.is_empty() {
        out.push(("hostNamespaces", "host namespaces", host.join(", ")));
    }
    let volumes: Vec<&Value> = spec
        .get("volumes")
        .and_then(Value::as_array)
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    let volume_name = |v: &Value| {
        v.get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    // hostPathVolumes (baseline; restricted's volume check overrides it)
    if !restricted {
        let host_paths: Vec<String> = volumes
            .iter()
            .filter(|v| v.get("hostPath").is_some())
            .map(|v| volume_name(v))
            .collect();
        if !host_paths.is_empty() {
            let names: Vec<&str> = host_paths.iter().map(String::as_str).collect();
            out.push((
                "hostPathVolumes",
                "hostPath volumes",
                named("volume", &names),
            ));
        }
    }
    // hostPorts
    {
        let mut names = Vec::new();
        let mut ports = Vec::new();
        for c in &all {
            let mut any = false;
            for p in c
                .spec
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(port) = p
                    .get("hostPort")
                    .and_then(Value::as_i64)
                    .filter(|p| *p != 0)
                {
                    ports.push(port.to_string());
                    any = true;
                }
            }
            if any {
                names.push(c.name);
            }
        }
        if !names.is_empty() {
            let verb = if names.len() == 1 { "uses" } else { "use" };
            let noun = if ports.len() == 1 {
                "hostPort"
            } else {
                "hostPorts"
            };
            out.push((
                "hostPorts",
                "hostPort",
                format!(
                    "{} {verb} {noun} {}",
                    named("container", &names),
                    ports.join(", ")
                ),
            ));
        }
    }
    // hostProcess
    let host_process = pod_sc.pointer("/windowsOptions/hostProcess") == Some(&Value::Bool(true))
        || all
            .iter()
            .any(|c| c.sc.pointer("/windowsOptions/hostProcess") == Some(&Value::Bool(true)));
    if host_process {
        out.push((
            "hostProcess",
            "hostProcess",
            "pod or containers must not set securityContext.windowsOptions.hostProcess=true".into(),
        ));
    }
    // privileged
    let privileged = names_where(&|c| c.sc.get("privileged") == Some(&Value::Bool(true)));
    if !privileged.is_empty() {
        out.push((
            "privileged",
            "privileged",
            format!(
                "{} must not set securityContext.privileged=true",
                named("container", &privileged)
            ),
        ));
    }
    // procMount
    let unmasked = names_where(&|c| {
        c.sc.get("procMount")
            .and_then(Value::as_str)
            .is_some_and(|m| m != "Default")
    });
    if !unmasked.is_empty() {
        out.push((
            "procMount",
            "procMount",
            format!(
                "{} must not set securityContext.procMount to \"Unmasked\"",
                named("container", &unmasked)
            ),
        ));
    }
    // restrictedVolumes
    if restricted {
        let mut names = Vec::new();
        let mut kinds: Vec<String> = Vec::new();
        for v in &volumes {
            let Some(obj) = v.as_object() else { continue };
            let kind = obj
                .keys()
                .find(|k| k.as_str() != "name")
                .cloned()
                .unwrap_or_default();
            if !RESTRICTED_VOLUMES.contains(&kind.as_str()) {
                names.push(volume_name(v));
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
        }
        if !names.is_empty() {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let (verb, noun) = if names.len() == 1 {
                ("uses", "type")
            } else {
                ("use", "types")
            };
            out.push((
                "restrictedVolumes",
                "restricted volume types",
                format!(
                    "{} {verb} restricted volume {noun} {}",
                    named("volume", &refs),
                    quoted(&kinds)
                ),
            ));
        }
    }
    // runAsNonRoot (restricted)
    if restricted {
        let pod_value = pod_sc.get("runAsNonRoot").and_then(Value::as_bool);
        let mut details = Vec::new();
        if pod_value == Some(false) {
            details.push("pod must not set securityContext.runAsNonRoot=false".to_string());
        }
        let explicit_false =
            names_where(&|c| c.sc.get("runAsNonRoot") == Some(&Value::Bool(false)));
        if !explicit_false.is_empty() {
            details.push(format!(
                "{} must not set securityContext.runAsNonRoot=false",
                named("container", &explicit_false)
            ));
        }
        if pod_value.is_none() {
            let unset =
                names_where(&|c| c.sc.get("runAsNonRoot").and_then(Value::as_bool).is_none());
            if !unset.is_empty() {
                details.push(format!(
                    "pod or {} must set securityContext.runAsNonRoot=true",
                    named("container", &unset)
                ));
            }
        }
        if !details.is_empty() {
            out.push(("runAsNonRoot", "runAsNonRoot != true", details.join("; ")));
        }
        // runAsUser
        let mut root = Vec::new();
        if pod_sc.get("runAsUser").and_then(Value::as_i64) == Some(0) {
            root.push("pod must not set runAsUser=0".to_string());
        }
        let zero = names_where(&|c| c.sc.get("runAsUser").and_then(Value::as_i64) == Some(0));
        if !zero.is_empty() {
            root.push(format!(
                "{} must not set runAsUser=0",
                named("container", &zero)
            ));
        }
        if !root.is_empty() {
            out.push(("runAsUser", "runAsUser=0", root.join("; ")));
        }
    }
    // seccompProfile: baseline forbids Unconfined; restricted needs RuntimeDefault or Localhost.
    {
        let kind = |sc: &Value| {
            sc.pointer("/seccompProfile/type")
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let pod_kind = kind(pod_sc);
        let mut details = Vec::new();
        if pod_kind.as_deref() == Some("Unconfined") {
            details.push(
                "pod must not set securityContext.seccompProfile.type to \"Unconfined\""
                    .to_string(),
            );
        }
        let unconfined = names_where(&|c| kind(c.sc).as_deref() == Some("Unconfined"));
        if !unconfined.is_empty() {
            details.push(format!(
                "{} must not set securityContext.seccompProfile.type to \"Unconfined\"",
                named("container", &unconfined)
            ));
        }
        if restricted && pod_kind.is_none() {
            let unset = names_where(&|c| kind(c.sc).is_none());
            if !unset.is_empty() {
                details.push(format!(
                    "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                    named("container", &unset)
                ));
            }
        }
        if !details.is_empty() {
            let id = if restricted {
                "seccompProfile_restricted"
            } else {
                "seccompProfile_baseline"
            };
            out.push((id, "seccompProfile", details.join("; ")));
        }
    }
    // sysctls
    let forbidden: Vec<String> = pod_sc
        .get("sysctls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .filter(|n| !SAFE_SYSCTLS.contains(n))
        .map(str::to_string)
        .collect();
    if !forbidden.is_empty() {
        out.push(("sysctls", "forbidden sysctls", forbidden.join(", ")));
    }
    // Upstream reports the baseline checks first, then the restricted ones,
    // each group in the order of its check IDs.
    out.sort_by_key(|(id, _, _)| CHECK_ORDER.iter().position(|c| c == id));
    out.into_iter()
        .map(|(_, reason, detail)| (reason, detail))
        .collect()
}

/// Check IDs in the order upstream reports their failures.
const CHECK_ORDER: &[&str] = &[
    "appArmorProfile",
    "capabilities_baseline",
    "hostNamespaces",
    "hostPathVolumes",
    "hostPorts",
    "hostProcess",
    "privileged",
    "procMount",
    "seLinuxOptions",
    "seccompProfile_baseline",
    "sysctls",
    "allowPrivilegeEscalation",
    "capabilities_restricted",
    "restrictedVolumes",
    "runAsNonRoot",
    "runAsUser",
    "seccompProfile_restricted",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(level: Level, pod: &Value) -> String {
        check(level, pod)
            .iter()
            .map(|(r, d)| format!("{r} ({d})"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    #[test]
    fn a_plain_pod_breaks_restricted_as_upstream_words_it() {
        let pod = json!({"spec": {"containers": [{"name": "nginx", "image": "nginx"}]}});
        assert_eq!(render(Level::Baseline, &pod), "");
        assert_eq!(
            render(Level::Restricted, &pod),
            r#"allowPrivilegeEscalation != false (container "nginx" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "nginx" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "nginx" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "nginx" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
        );
    }

    #[test]
    fn a_compliant_pod_passes_restricted() {
        let pod = json!({"spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "c", "securityContext": {
                "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
            }}],
            "volumes": [{"name": "data", "emptyDir": {}}]
        }});
        assert_eq!(render(Level::Restricted, &pod), "");
    }

    #[test]
    fn baseline_refuses_privilege_and_host_access() {
        let pod = json!({"spec": {
            "hostNetwork": true,
            "containers": [
                {"name": "a", "securityContext": {"privileged": true, "capabilities": {"add": ["NET_ADMIN"]}},
                 "ports": [{"containerPort": 80, "hostPort": 80}]},
                {"name": "b", "securityContext": {"privileged": true}}
            ],
            "volumes": [{"name": "host", "hostPath": {"path": "/"}}]
        }});
        assert_eq!(
            render(Level::Baseline, &pod),
            r#"non-default capabilities (container "a" must not include "NET_ADMIN" in securityContext.capabilities.add), host namespaces (hostNetwork=true), hostPath volumes (volume "host"), hostPort (container "a" uses hostPort 80), privileged (containers "a", "b" must not set securityContext.privileged=true)"#
        );
    }
}
