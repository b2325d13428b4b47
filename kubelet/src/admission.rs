//! Pod admission on the node: what the kubelet checks before it runs a pod
//! it was given, as upstream's admit handlers do. A rejected pod never
//! starts: it fails with the handler's reason and the message
//! `Pod was rejected: <why>`.
//!
//! Today's handler is upstream's sysctl allowlist: a pod may set the safe
//! sysctls (namespaced and isolated per pod) and those the node allows with
//! `--allowed-unsafe-sysctls` (exact names, or prefixes ending in `*`), and
//! never a network sysctl with `hostNetwork` or an IPC one with `hostIPC`.

use k8s_openapi::api::core::v1::Pod;

/// Upstream's reason for a pod rejected over its sysctls.
pub(crate) const SYSCTL_FORBIDDEN: &str = "SysctlForbidden";

/// Sysctls that are namespaced and isolated per pod, allowed on every node
/// (upstream's safe set for the kernels this runs on).
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

/// Why a pod may not run here.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) reason: &'static str,
    pub(crate) message: String,
}

impl Rejection {
    /// The pod's status message, as upstream words it.
    pub(crate) fn status_message(&self) -> String {
        format!("Pod was rejected: {}", self.message)
    }
}

/// Checks `pod` against the node's admission rules.
pub(crate) fn admit(pod: &Pod, allowed_unsafe_sysctls: &[String]) -> Result<(), Rejection> {
    let Some(spec) = pod.spec.as_ref() else {
        return Ok(());
    };
    let sysctls = spec
        .security_context
        .as_ref()
        .and_then(|s| s.sysctls.as_deref())
        .unwrap_or_default();
    let host_network = spec.host_network.unwrap_or(false);
    let host_ipc = spec.host_ipc.unwrap_or(false);
    for s in sysctls {
        let name = normalize(&s.name);
        let forbid = |why: String| Rejection {
            reason: SYSCTL_FORBIDDEN,
            message: format!("forbidden sysctl: {why}"),
        };
        if !SAFE_SYSCTLS.contains(&name.as_str())
            && !allowed_unsafe_sysctls.iter().any(|p| matches(p, &name))
        {
            return Err(forbid(format!("\"{name}\" not allowlisted")));
        }
        match namespace_of(&name) {
            Some(Namespace::Net) if host_network => {
                return Err(forbid(format!(
                    "\"{name}\" not allowed with host net enabled"
                )));
            }
            Some(Namespace::Ipc) if host_ipc => {
                return Err(forbid(format!(
                    "\"{name}\" not allowed with host ipc enabled"
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A sysctl written with `/` separators in its dotted form: with a `/`
/// present, dots and slashes trade places (`net/ipv4/conf/eth0.1/x` names
/// the interface `eth0.1`).
fn normalize(name: &str) -> String {
    if !name.contains('/') {
        return name.to_string();
    }
    name.chars()
        .map(|c| match c {
            '/' => '.',
            '.' => '/',
            c => c,
        })
        .collect()
}

/// An allowed-unsafe pattern: an exact name, or a prefix ending in `*`.
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

enum Namespace {
    Net,
    Ipc,
}

/// The kernel namespace a sysctl belongs to, when it is a namespaced one.
fn namespace_of(name: &str) -> Option<Namespace> {
    const IPC: &[&str] = &[
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.shm_rmid_forced",
    ];
    if name.starts_with("net.") {
        Some(Namespace::Net)
    } else if IPC.contains(&name) || name.starts_with("fs.mqueue.") {
        Some(Namespace::Ipc)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSecurityContext, PodSpec, Sysctl};

    fn pod(sysctls: &[&str], host_network: bool, host_ipc: bool) -> Pod {
        Pod {
            spec: Some(PodSpec {
                host_network: Some(host_network),
                host_ipc: Some(host_ipc),
                security_context: Some(PodSecurityContext {
                    sysctls: Some(
                        sysctls
                            .iter()
                            .map(|n| Sysctl {
                                name: n.to_string(),
                                value: "1".into(),
                            })
                            .collect(),
                    ),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn message(p: &Pod, allowed: &[&str]) -> Option<String> {
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        admit(p, &allowed).err().map(|r| {
            assert_eq!(r.reason, SYSCTL_FORBIDDEN);
            r.status_message()
        })
    }

    #[test]
    fn safe_sysctls_pass_and_unsafe_ones_need_the_node_allowing_them() {
        assert_eq!(message(&Pod::default(), &[]), None);
        assert_eq!(
            message(
                &pod(
                    &["kernel.shm_rmid_forced", "kernel/shm_rmid_forced"],
                    false,
                    false
                ),
                &[]
            ),
            None
        );
        assert_eq!(
            message(&pod(&["kernel.msgmax"], false, false), &[]).as_deref(),
            Some("Pod was rejected: forbidden sysctl: \"kernel.msgmax\" not allowlisted")
        );
        assert_eq!(
            message(&pod(&["kernel.msgmax"], false, false), &["kernel.msg*"]),
            None
        );
        assert_eq!(
            message(&pod(&["kernel.msgmax"], false, false), &["kernel.msgmax"]),
            None
        );
        assert!(message(&pod(&["kernel.msgmax"], false, false), &["kernel.msgmnb"]).is_some());
    }

    #[test]
    fn host_namespaces_forbid_their_sysctls() {
        assert_eq!(
            message(&pod(&["net.ipv4.tcp_syncookies"], true, false), &[]).as_deref(),
            Some(
                "Pod was rejected: forbidden sysctl: \"net.ipv4.tcp_syncookies\" not allowed with host net enabled"
            )
        );
        assert_eq!(
            message(&pod(&["net.ipv4.tcp_syncookies"], false, true), &[]),
            None
        );
        assert!(
            message(&pod(&["kernel.shm_rmid_forced"], false, true), &[])
                .is_some_and(|m| m.ends_with("not allowed with host ipc enabled"))
        );
    }

    #[test]
    fn slashes_trade_places_with_dots() {
        assert_eq!(
            normalize("net/ipv4/conf/eth0.1/rp_filter"),
            "net.ipv4.conf.eth0/1.rp_filter"
        );
        assert_eq!(normalize("kernel.msgmax"), "kernel.msgmax");
    }
}
