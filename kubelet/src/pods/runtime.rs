//! A pod's side of the CRI: the sandbox and container configs built from the
//! pod spec, and reading back what the runtime holds for a pod.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};

use super::status::{Observed, Sandbox};
use crate::config::Config;
use crate::cri::{self, Runtime, v1};
use crate::security_context::{self, ImageUser};
use crate::volumes::ContainerInputs;
use crate::{container_resources, env, etc_files};

pub(crate) const POD_NAME: &str = "io.kubernetes.pod.name";
pub(crate) const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub(crate) const POD_UID: &str = "io.kubernetes.pod.uid";
pub(crate) const CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Marks the sandboxes of one node, so kubelets sharing a runtime (tests,
/// several nodes on one machine) never touch each other's pods.
pub(crate) const NODE: &str = "ironkube.dev/node";

fn meta(pod: &Pod) -> (&str, &str, &str) {
    (
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or(""),
        pod.metadata.uid.as_deref().unwrap_or(""),
    )
}

fn pod_labels(pod: &Pod) -> HashMap<String, String> {
    let (ns, name, uid) = meta(pod);
    HashMap::from([
        (POD_NAME.to_string(), name.to_string()),
        (POD_NAMESPACE.to_string(), ns.to_string()),
        (POD_UID.to_string(), uid.to_string()),
    ])
}

/// Where the pod's container logs go: `<root>/logs/<ns>_<name>_<uid>`, the
/// layout of upstream's `/var/log/pods`.
pub(crate) fn log_dir(root_dir: &Path, pod: &Pod) -> PathBuf {
    let (ns, name, uid) = meta(pod);
    root_dir.join("logs").join(format!("{ns}_{name}_{uid}"))
}

pub(crate) fn sandbox_config(
    pod: &Pod,
    node: &str,
    config: &Config,
    attempt: u32,
) -> v1::PodSandboxConfig {
    let (ns, name, uid) = meta(pod);
    let spec = pod.spec.clone().unwrap_or_default();
    let port_mappings = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| v1::PortMapping {
            protocol: match p.protocol.as_deref() {
                Some("UDP") => v1::Protocol::Udp as i32,
                Some("SCTP") => v1::Protocol::Sctp as i32,
                _ => v1::Protocol::Tcp as i32,
            },
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect();
    let mut labels = pod_labels(pod);
    labels.insert(NODE.into(), node.into());
    v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name: name.into(),
            uid: uid.into(),
            namespace: ns.into(),
            attempt,
        }),
        hostname: etc_files::sandbox_hostname(pod, &config.cluster_domain),
        dns_config: Some(etc_files::dns_config(pod, config)),
        log_directory: log_dir(&config.root_dir, pod)
            .to_string_lossy()
            .into_owned(),
        port_mappings,
        labels,
        annotations: pod
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        linux: Some(sandbox_linux(pod)),
        ..Default::default()
    }
}

/// The sandbox's Linux config: its cgroup, security context, sysctls and
/// the pod's resources.
fn sandbox_linux(pod: &Pod) -> v1::LinuxPodSandboxConfig {
    let (resources, overhead) = container_resources::sandbox(pod);
    v1::LinuxPodSandboxConfig {
        cgroup_parent: cgroup_parent(pod),
        security_context: Some(security_context::sandbox(pod)),
        sysctls: security_context::sysctls(pod),
        overhead: Some(overhead),
        resources: Some(resources),
    }
}

/// The pod's cgroup (cgroupfs layout, as upstream's kubelet names it):
/// `/kubepods/pod<uid>` for Guaranteed pods, `/kubepods/<qos>/pod<uid>`
/// otherwise. runc creates it; the kubelet sets no pod-level limits on it.
pub(crate) fn cgroup_parent(pod: &Pod) -> String {
    let (_, _, uid) = meta(pod);
    let qos = pod
        .status
        .as_ref()
        .and_then(|s| s.qos_class.clone())
        .unwrap_or_else(|| {
            let spec = pod.spec.clone().unwrap_or_default();
            super::status::qos_class(
                &spec.containers,
                spec.init_containers.as_deref().unwrap_or(&[]),
            )
            .into()
        });
    match qos.as_str() {
        "Guaranteed" => format!("/kubepods/pod{uid}"),
        "Burstable" => format!("/kubepods/burstable/pod{uid}"),
        _ => format!("/kubepods/besteffort/pod{uid}"),
    }
}

/// The container's CRI config. `image_user` is whom the image runs as;
/// an error (a security context the kubelet refuses) is the container's
/// `CreateContainerConfigError` message.
pub(crate) fn container_config(
    pod: &Pod,
    c: &Container,
    image_ref: &str,
    image_user: &ImageUser,
    root_dir: &Path,
    attempt: u32,
    inputs: ContainerInputs,
) -> Result<v1::ContainerConfig, security_context::Error> {
    let linux = v1::LinuxContainerConfig {
        resources: Some(container_resources::container(
            pod,
            c,
            container_resources::memory_capacity(),
        )),
        security_context: Some(security_context::container(
            pod,
            c,
            image_user,
            &root_dir.join("seccomp"),
        )?),
    };
    // Command and args expand with the final environment, as upstream's.
    let vars: HashMap<&str, &str> = inputs
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let expand_all = |v: &Option<Vec<String>>| -> Vec<String> {
        v.iter()
            .flatten()
            .map(|s| env::expand(s, |k| vars.get(k).map(|v| v.to_string())))
            .collect()
    };
    let envs = inputs
        .env
        .iter()
        .map(|(k, v)| v1::KeyValue {
            key: k.clone(),
            value: v.clone().into_bytes(),
        })
        .collect();
    let mut labels = pod_labels(pod);
    labels.insert(CONTAINER_NAME.into(), c.name.clone());
    let annotations = HashMap::from([
        (
            "io.kubernetes.container.restartCount".to_string(),
            attempt.to_string(),
        ),
        (
            "io.kubernetes.container.terminationMessagePath".to_string(),
            c.termination_message_path
                .clone()
                .unwrap_or_else(|| "/dev/termination-log".into()),
        ),
    ]);
    Ok(v1::ContainerConfig {
        metadata: Some(v1::ContainerMetadata {
            name: c.name.clone(),
            attempt,
        }),
        image: Some(v1::ImageSpec {
            image: image_ref.into(),
            user_specified_image: c.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command: expand_all(&c.command),
        args: expand_all(&c.args),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        envs,
        mounts: inputs.mounts,
        labels,
        annotations,
        log_path: format!("{}/{attempt}.log", c.name),
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        linux: Some(linux),
        ..Default::default()
    })
}

/// Puts an ephemeral container into the PID namespace of the container
/// `target_id` (`targetContainerName`), as upstream does when the container
/// would otherwise get a PID namespace of its own; a pod sharing its
/// process namespace, or the host's, keeps that.
pub(crate) fn target_pid_namespace(config: &mut v1::ContainerConfig, target_id: &str) {
    let Some(ns) = config
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .and_then(|s| s.namespace_options.as_mut())
    else {
        return;
    };
    if ns.pid == v1::NamespaceMode::Container as i32 {
        ns.pid = v1::NamespaceMode::Target as i32;
        ns.target_id = target_id.into();
    }
}

/// The pod's sandboxes, newest first.
pub(crate) async fn sandboxes(rt: &Runtime, uid: &str) -> cri::Result<Vec<v1::PodSandbox>> {
    let mut items = rt
        .runtime
        .clone()
        .list_pod_sandbox(v1::ListPodSandboxRequest {
            filter: Some(v1::PodSandboxFilter {
                label_selector: HashMap::from([(POD_UID.to_string(), uid.to_string())]),
                ..Default::default()
            }),
        })
        .await
        .map_err(cri::call("ListPodSandbox"))?
        .into_inner()
        .items;
    items.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    Ok(items)
}

/// Every sandbox this node's kubelet created.
pub(crate) async fn node_sandboxes(rt: &Runtime, node: &str) -> cri::Result<Vec<v1::PodSandbox>> {
    Ok(rt
        .runtime
        .clone()
        .list_pod_sandbox(v1::ListPodSandboxRequest {
            filter: Some(v1::PodSandboxFilter {
                label_selector: HashMap::from([(NODE.to_string(), node.to_string())]),
                ..Default::default()
            }),
        })
        .await
        .map_err(cri::call("ListPodSandbox"))?
        .into_inner()
        .items)
}

/// The pod's containers (all sandboxes), with their full status.
pub(crate) async fn containers(rt: &Runtime, uid: &str) -> cri::Result<Vec<v1::ContainerStatus>> {
    let list = rt
        .runtime
        .clone()
        .list_containers(v1::ListContainersRequest {
            filter: Some(v1::ContainerFilter {
                label_selector: HashMap::from([(POD_UID.to_string(), uid.to_string())]),
                ..Default::default()
            }),
        })
        .await
        .map_err(cri::call("ListContainers"))?
        .into_inner()
        .containers;
    let mut out = Vec::with_capacity(list.len());
    for c in list {
        match rt
            .runtime
            .clone()
            .container_status(v1::ContainerStatusRequest {
                container_id: c.id.clone(),
                verbose: false,
            })
            .await
        {
            Ok(r) => out.extend(r.into_inner().status),
            // Removed between the list and the status call.
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => return Err(cri::call("ContainerStatus")(s)),
        }
    }
    Ok(out)
}

/// What the runtime holds for the pod: its ready sandbox (with IPs) and its
/// containers by name, newest attempt first.
pub(crate) async fn observe(rt: &Runtime, uid: &str) -> cri::Result<Observed> {
    let ready = sandboxes(rt, uid)
        .await?
        .into_iter()
        .find(|s| s.state == v1::PodSandboxState::SandboxReady as i32);
    let sandbox = match ready {
        None => None,
        Some(s) => {
            let status = rt
                .runtime
                .clone()
                .pod_sandbox_status(v1::PodSandboxStatusRequest {
                    pod_sandbox_id: s.id.clone(),
                    verbose: false,
                })
                .await
                .map_err(cri::call("PodSandboxStatus"))?
                .into_inner()
                .status;
            let ips = status
                .and_then(|st| st.network)
                .map(|n| {
                    std::iter::once(n.ip)
                        .chain(n.additional_ips.into_iter().map(|p| p.ip))
                        .filter(|ip| !ip.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            Some(Sandbox { id: s.id, ips })
        }
    };
    let mut by_name: HashMap<String, Vec<v1::ContainerStatus>> = HashMap::new();
    for c in containers(rt, uid).await? {
        let name = c
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        by_name.entry(name).or_default().push(c);
    }
    for history in by_name.values_mut() {
        history.sort_by(|a, b| {
            let attempt =
                |c: &v1::ContainerStatus| c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0);
            attempt(b)
                .cmp(&attempt(a))
                .then(b.created_at.cmp(&a.created_at))
        });
    }
    Ok(Observed {
        sandbox,
        containers: by_name,
    })
}

/// Stops and removes every sandbox of the pod (and so its containers),
/// giving running containers `grace_seconds` to exit after SIGTERM.
pub(crate) async fn kill_pod(rt: &Runtime, uid: &str, grace_seconds: i64) -> cri::Result<()> {
    stop_containers(rt, uid, grace_seconds).await?;
    for s in sandboxes(rt, uid).await? {
        remove_sandbox(rt, &s.id).await?;
    }
    Ok(())
}

pub(crate) async fn stop_containers(
    rt: &Runtime,
    uid: &str,
    grace_seconds: i64,
) -> cri::Result<()> {
    let running: Vec<String> = containers(rt, uid)
        .await?
        .into_iter()
        .filter(|c| c.state == v1::ContainerState::ContainerRunning as i32)
        .map(|c| c.id)
        .collect();
    let stops = running.into_iter().map(|id| {
        let mut client = rt.runtime.clone();
        async move {
            client
                .stop_container(v1::StopContainerRequest {
                    container_id: id,
                    timeout: grace_seconds,
                })
                .await
                .map_err(cri::call("StopContainer"))
        }
    });
    for r in futures::future::join_all(stops).await {
        r?;
    }
    Ok(())
}

pub(crate) async fn stop_sandboxes(rt: &Runtime, uid: &str) -> cri::Result<()> {
    for s in sandboxes(rt, uid).await? {
        rt.runtime
            .clone()
            .stop_pod_sandbox(v1::StopPodSandboxRequest {
                pod_sandbox_id: s.id,
            })
            .await
            .map_err(cri::call("StopPodSandbox"))?;
    }
    Ok(())
}

pub(crate) async fn remove_sandbox(rt: &Runtime, id: &str) -> cri::Result<()> {
    let mut client = rt.runtime.clone();
    client
        .stop_pod_sandbox(v1::StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        })
        .await
        .map_err(cri::call("StopPodSandbox"))?;
    client
        .remove_pod_sandbox(v1::RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        })
        .await
        .map_err(cri::call("RemovePodSandbox"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pid: v1::NamespaceMode) -> v1::ContainerConfig {
        v1::ContainerConfig {
            linux: Some(v1::LinuxContainerConfig {
                security_context: Some(v1::LinuxContainerSecurityContext {
                    namespace_options: Some(v1::NamespaceOption {
                        pid: pid as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pid_of(c: &v1::ContainerConfig) -> (i32, String) {
        let ns = c
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.clone())
            .unwrap_or_default();
        (ns.pid, ns.target_id)
    }

    #[test]
    fn ephemeral_targets_a_container_pid_namespace() {
        let mut own = config(v1::NamespaceMode::Container);
        target_pid_namespace(&mut own, "abc");
        assert_eq!(
            pid_of(&own),
            (v1::NamespaceMode::Target as i32, "abc".into())
        );
        for kept in [v1::NamespaceMode::Pod, v1::NamespaceMode::Node] {
            let mut c = config(kept);
            target_pid_namespace(&mut c, "abc");
            assert_eq!(pid_of(&c), (kept as i32, String::new()));
        }
    }
}
