//! Ephemeral containers (`spec.ephemeralContainers`), added to a running pod
//! through `pods/ephemeralcontainers`, typically by `kubectl debug`.
//!
//! They share the regular containers' machinery (pull, env, mounts,
//! security context, logs) with these differences, as upstream's kubelet:
//! - one is started only into the pod's existing, ready sandbox, never in
//!   the sync that (re)creates it, and whether or not the init containers
//!   are done;
//! - it runs at most once: once the runtime holds an instance of it, it is
//!   never started again, whatever the pod's restart policy or its exit;
//! - with `targetContainerName` it joins that container's PID namespace
//!   (CRI `NamespaceMode::Target`) unless the pod's PID namespace is
//!   shared or the host's anyway;
//! - its status (`status.ephemeralContainerStatuses`) is never `ready` and
//!   counts toward neither the pod's phase nor its readiness;
//! - it stops with the pod.

use k8s_openapi::api::core::v1::{Container, EphemeralContainer, Pod};

use super::status::Observed;

/// An ephemeral container as the regular container it is run as, and the
/// container whose PID namespace it targets.
#[derive(Debug, Clone)]
pub(crate) struct Ephemeral {
    pub(crate) container: Container,
    pub(crate) target: Option<String>,
}

/// Every ephemeral container of the pod, in spec order.
pub(crate) fn all(pod: &Pod) -> Vec<Ephemeral> {
    pod.spec
        .as_ref()
        .and_then(|s| s.ephemeral_containers.as_deref())
        .unwrap_or(&[])
        .iter()
        .map(convert)
        .collect()
}

/// The ephemeral containers to start now: those the runtime holds no
/// instance of. Only asked once the sandbox is ready.
pub(crate) fn to_start(pod: &Pod, observed: &Observed) -> Vec<Ephemeral> {
    all(pod)
        .into_iter()
        .filter(|e| observed.latest(&e.container.name).is_none())
        .collect()
}

/// The regular container an ephemeral one is run as. The destructuring is
/// exhaustive so that a field added to the API fails the build here.
fn convert(ec: &EphemeralContainer) -> Ephemeral {
    let EphemeralContainer {
        args,
        command,
        env,
        env_from,
        image,
        image_pull_policy,
        lifecycle,
        liveness_probe,
        name,
        ports,
        readiness_probe,
        resize_policy,
        resources,
        restart_policy,
        restart_policy_rules,
        security_context,
        startup_probe,
        stdin,
        stdin_once,
        target_container_name,
        termination_message_path,
        termination_message_policy,
        tty,
        volume_devices,
        volume_mounts,
        working_dir,
    } = ec.clone();
    Ephemeral {
        container: Container {
            args,
            command,
            env,
            env_from,
            image,
            image_pull_policy,
            lifecycle,
            liveness_probe,
            name,
            ports,
            readiness_probe,
            resize_policy,
            resources,
            restart_policy,
            restart_policy_rules,
            security_context,
            startup_probe,
            stdin,
            stdin_once,
            termination_message_path,
            termination_message_policy,
            tty,
            volume_devices,
            volume_mounts,
            working_dir,
        },
        target: target_container_name.filter(|t| !t.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri::v1;
    use k8s_openapi::api::core::v1::PodSpec;

    fn pod(ephemeral: &[(&str, Option<&str>)]) -> Pod {
        Pod {
            spec: Some(PodSpec {
                ephemeral_containers: Some(
                    ephemeral
                        .iter()
                        .map(|(n, t)| EphemeralContainer {
                            name: (*n).into(),
                            image: Some("busybox".into()),
                            command: Some(vec!["sh".into()]),
                            tty: Some(true),
                            target_container_name: t.map(Into::into),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn converts_every_field_and_the_target() {
        let p = pod(&[("d1", Some("main")), ("d2", Some(""))]);
        let all = all(&p);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].container.name, "d1");
        assert_eq!(all[0].container.image.as_deref(), Some("busybox"));
        assert_eq!(all[0].container.command, Some(vec!["sh".to_string()]));
        assert_eq!(all[0].container.tty, Some(true));
        assert_eq!(all[0].target.as_deref(), Some("main"));
        assert_eq!(all[1].target, None, "an empty target is none");
    }

    #[test]
    fn started_at_most_once() {
        let p = pod(&[("d1", None), ("d2", None)]);
        let mut observed = Observed::default();
        assert_eq!(to_start(&p, &observed).len(), 2);
        // An exited instance counts: ephemeral containers never restart.
        observed.containers.insert(
            "d1".into(),
            vec![v1::ContainerStatus {
                state: v1::ContainerState::ContainerExited as i32,
                exit_code: 1,
                ..Default::default()
            }],
        );
        let left: Vec<String> = to_start(&p, &observed)
            .into_iter()
            .map(|e| e.container.name)
            .collect();
        assert_eq!(left, ["d2"]);
        assert!(to_start(&Pod::default(), &observed).is_empty());
    }
}
