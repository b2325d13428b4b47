//! Pod and container `securityContext` as the CRI gets it, with upstream's
//! kubelet semantics:
//!
//! - the container's context overrides the pod's field by field
//!   (`runAsUser`, `runAsGroup`, `runAsNonRoot`, `seLinuxOptions`,
//!   `seccompProfile`, `appArmorProfile`); capabilities, privileged,
//!   `readOnlyRootFilesystem`, `allowPrivilegeEscalation` and `procMount`
//!   exist on the container only;
//! - without a `runAsUser` the image's user is sent (numeric uid, else its
//!   name; an image naming no user runs as root);
//! - `runAsNonRoot` refuses uid 0 and names it cannot resolve: the container
//!   then waits in `CreateContainerConfigError`;
//! - the pod's `fsGroup` and `supplementalGroups` are supplemental groups of
//!   every container (and of the sandbox);
//! - seccomp: the container's profile, else the pod's, else `Unconfined`
//!   (the kubelet's `seccompDefault` is off); the sandbox always runs
//!   `RuntimeDefault`; a `Localhost` profile is a file under
//!   `<root-dir>/seccomp`;
//! - sysctls belong to the sandbox; the sandbox is privileged when any
//!   container is (containerd refuses a privileged container otherwise).

use std::collections::HashMap;
use std::path::Path;

use k8s_openapi::api::core::v1::{
    AppArmorProfile, Container, Pod, PodSecurityContext, SELinuxOptions, SeccompProfile,
    SecurityContext,
};

use crate::cri::{self, Runtime, v1};

/// The paths containerd's and upstream's defaults hide from a container
/// (`procMount: Default`).
const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
/// The paths made read-only in a container (`procMount: Default`).
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Why a container's security context cannot be built. The text is the
/// container's `CreateContainerConfigError` message (upstream's wording).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("container's runAsUser breaks non-root policy (pod: {pod:?}, container: {container})")]
    RunAsUserRoot { pod: String, container: String },
    #[error(
        "container has runAsNonRoot and image will run as root (pod: {pod:?}, container: {container})"
    )]
    ImageRoot { pod: String, container: String },
    #[error(
        "container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is non-root (pod: {pod:?}, container: {container})"
    )]
    ImageUserName {
        user: String,
        pod: String,
        container: String,
    },
    #[error(
        "container has runAsNonRoot and image has an invalid user id ({uid}). (Must be 1-(2147483647)) (pod: {pod:?}, container: {container})"
    )]
    ImageUid {
        uid: i64,
        pod: String,
        container: String,
    },
    #[error("localhostProfile must be set if seccompProfile type is Localhost.")]
    SeccompLocalhost,
    #[error("localhostProfile must be set if appArmorProfile type is Localhost.")]
    AppArmorLocalhost,
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// The user an image runs as, as the runtime reports it. No uid and no name:
/// root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ImageUser {
    pub(crate) uid: Option<i64>,
    pub(crate) name: String,
}

impl ImageUser {
    pub(crate) fn root() -> Self {
        Self {
            uid: Some(0),
            name: String::new(),
        }
    }

    fn from_image(image: Option<&v1::Image>) -> Self {
        match image {
            Some(i) if i.uid.is_some() => Self {
                uid: i.uid.as_ref().map(|u| u.value),
                name: String::new(),
            },
            Some(i) if !i.username.is_empty() => Self {
                uid: None,
                name: i.username.clone(),
            },
            _ => Self::root(),
        }
    }
}

/// The user of the image `image_ref` (an image ID or reference), from the
/// runtime's `ImageStatus`.
pub(crate) async fn image_user(rt: &Runtime, image_ref: &str) -> cri::Result<ImageUser> {
    let status = rt
        .images
        .clone()
        .image_status(v1::ImageStatusRequest {
            image: Some(v1::ImageSpec {
                image: image_ref.into(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .map_err(cri::call("ImageStatus"))?
        .into_inner();
    Ok(ImageUser::from_image(status.image.as_ref()))
}

/// The container's context merged over the pod's, as upstream's
/// `DetermineEffectiveSecurityContext`.
#[derive(Debug, Default)]
struct Effective {
    run_as_user: Option<i64>,
    run_as_group: Option<i64>,
    run_as_non_root: Option<bool>,
    se_linux: Option<SELinuxOptions>,
    seccomp: Option<SeccompProfile>,
    app_armor: Option<AppArmorProfile>,
    container: SecurityContext,
}

fn pod_security_context(pod: &Pod) -> Option<&PodSecurityContext> {
    pod.spec.as_ref()?.security_context.as_ref()
}

fn effective(pod: &Pod, c: &Container) -> Effective {
    let p = pod_security_context(pod).cloned().unwrap_or_default();
    let c = c.security_context.clone().unwrap_or_default();
    Effective {
        run_as_user: c.run_as_user.or(p.run_as_user),
        run_as_group: c.run_as_group.or(p.run_as_group),
        run_as_non_root: c.run_as_non_root.or(p.run_as_non_root),
        se_linux: c.se_linux_options.clone().or(p.se_linux_options),
        seccomp: c.seccomp_profile.clone().or(p.seccomp_profile),
        app_armor: c.app_armor_profile.clone().or(p.app_armor_profile),
        container: c,
    }
}

/// Upstream's `format.Pod`: `name_namespace(uid)`.
fn pod_ref(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or(""),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.uid.as_deref().unwrap_or("")
    )
}

/// Refuses a container with `runAsNonRoot` that would run as root, or as a
/// user the kubelet cannot check.
fn verify_run_as_non_root(
    pod: &Pod,
    c: &Container,
    sc: &Effective,
    image: &ImageUser,
) -> Result<()> {
    if sc.run_as_non_root != Some(true) {
        return Ok(());
    }
    let (pod, container) = (pod_ref(pod), c.name.clone());
    match (sc.run_as_user, image.uid) {
        (Some(0), _) => Err(Error::RunAsUserRoot { pod, container }),
        (Some(_), _) => Ok(()),
        (None, None) if !image.name.is_empty() => Err(Error::ImageUserName {
            user: image.name.clone(),
            pod,
            container,
        }),
        (None, Some(0)) => Err(Error::ImageRoot { pod, container }),
        (None, Some(uid)) if uid < 0 || uid > i64::from(i32::MAX) => Err(Error::ImageUid {
            uid,
            pod,
            container,
        }),
        (None, _) => Ok(()),
    }
}

/// The namespaces of the pod's sandbox and containers: the node's for
/// `hostNetwork`/`hostPID`/`hostIPC`, the sandbox's PID namespace with
/// `shareProcessNamespace`, else one per container.
pub(crate) fn namespace_options(pod: &Pod) -> v1::NamespaceOption {
    let spec = pod.spec.clone().unwrap_or_default();
    let mode = |host: Option<bool>| {
        if host.unwrap_or(false) {
            v1::NamespaceMode::Node as i32
        } else {
            v1::NamespaceMode::Pod as i32
        }
    };
    let pid = if spec.host_pid.unwrap_or(false) {
        v1::NamespaceMode::Node as i32
    } else if spec.share_process_namespace.unwrap_or(false) {
        v1::NamespaceMode::Pod as i32
    } else {
        v1::NamespaceMode::Container as i32
    };
    v1::NamespaceOption {
        network: mode(spec.host_network),
        pid,
        ipc: mode(spec.host_ipc),
        ..Default::default()
    }
}

/// `fsGroup` first, then `supplementalGroups`, as upstream orders them.
fn supplemental_groups(pod: &Pod) -> Vec<i64> {
    let Some(p) = pod_security_context(pod) else {
        return Vec::new();
    };
    p.fs_group
        .into_iter()
        .chain(p.supplemental_groups.iter().flatten().copied())
        .collect()
}

fn se_linux(o: &SELinuxOptions) -> v1::SeLinuxOption {
    v1::SeLinuxOption {
        user: o.user.clone().unwrap_or_default(),
        role: o.role.clone().unwrap_or_default(),
        r#type: o.type_.clone().unwrap_or_default(),
        level: o.level.clone().unwrap_or_default(),
    }
}

fn profile(ty: v1::security_profile::ProfileType, localhost_ref: String) -> v1::SecurityProfile {
    v1::SecurityProfile {
        profile_type: ty as i32,
        localhost_ref,
    }
}

/// The container's seccomp profile; `Localhost` profiles are files under
/// `seccomp_root`.
fn seccomp(p: Option<&SeccompProfile>, seccomp_root: &Path) -> Result<v1::SecurityProfile> {
    use v1::security_profile::ProfileType;
    match p.map(|p| (p.type_.as_str(), p.localhost_profile.as_deref())) {
        Some(("RuntimeDefault", _)) => Ok(profile(ProfileType::RuntimeDefault, String::new())),
        Some(("Localhost", Some(file))) if !file.is_empty() => Ok(profile(
            ProfileType::Localhost,
            seccomp_root.join(file).to_string_lossy().into_owned(),
        )),
        Some(("Localhost", _)) => Err(Error::SeccompLocalhost),
        _ => Ok(profile(ProfileType::Unconfined, String::new())),
    }
}

/// The container's AppArmor profile, only when one is asked for.
fn app_armor(p: Option<&AppArmorProfile>) -> Result<Option<v1::SecurityProfile>> {
    use v1::security_profile::ProfileType;
    let Some(p) = p else { return Ok(None) };
    Ok(Some(
        match (p.type_.as_str(), p.localhost_profile.as_deref()) {
            ("RuntimeDefault", _) => profile(ProfileType::RuntimeDefault, String::new()),
            ("Localhost", Some(name)) if !name.is_empty() => {
                profile(ProfileType::Localhost, name.to_string())
            }
            ("Localhost", _) => return Err(Error::AppArmorLocalhost),
            _ => profile(ProfileType::Unconfined, String::new()),
        },
    ))
}

/// The container's CRI security context, or why it may not run.
/// `seccomp_root` is `<root-dir>/seccomp`.
pub(crate) fn container(
    pod: &Pod,
    c: &Container,
    image: &ImageUser,
    seccomp_root: &Path,
) -> Result<v1::LinuxContainerSecurityContext> {
    let sc = effective(pod, c);
    verify_run_as_non_root(pod, c, &sc, image)?;
    let (run_as_user, run_as_username) = match sc.run_as_user {
        Some(uid) => (Some(uid), String::new()),
        None => (image.uid, image.name.clone()),
    };
    let unmasked = sc.container.proc_mount.as_deref() == Some("Unmasked");
    let paths = |defaults: &[&str]| -> Vec<String> {
        if unmasked {
            Vec::new()
        } else {
            defaults.iter().map(|p| p.to_string()).collect()
        }
    };
    let capabilities = sc
        .container
        .capabilities
        .as_ref()
        .map(|caps| v1::Capability {
            // Names as in the spec (`NET_ADMIN`): containerd adds `CAP_`.
            add_capabilities: caps.add.clone().unwrap_or_default(),
            drop_capabilities: caps.drop.clone().unwrap_or_default(),
            ..Default::default()
        });
    Ok(v1::LinuxContainerSecurityContext {
        capabilities,
        privileged: sc.container.privileged.unwrap_or(false),
        namespace_options: Some(namespace_options(pod)),
        selinux_options: sc.se_linux.as_ref().map(se_linux),
        run_as_user: run_as_user.map(|value| v1::Int64Value { value }),
        run_as_group: sc.run_as_group.map(|value| v1::Int64Value { value }),
        run_as_username,
        readonly_rootfs: sc.container.read_only_root_filesystem.unwrap_or(false),
        supplemental_groups: supplemental_groups(pod),
        // Only an explicit `allowPrivilegeEscalation: false` sets it.
        no_new_privs: sc.container.allow_privilege_escalation == Some(false),
        masked_paths: paths(MASKED_PATHS),
        readonly_paths: paths(READONLY_PATHS),
        seccomp: Some(seccomp(sc.seccomp.as_ref(), seccomp_root)?),
        apparmor: app_armor(sc.app_armor.as_ref())?,
        ..Default::default()
    })
}

/// Any of the pod's containers (init and ephemeral included) privileged.
fn has_privileged_container(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    let privileged =
        |sc: Option<&SecurityContext>| sc.and_then(|sc| sc.privileged).unwrap_or(false);
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .any(|c| privileged(c.security_context.as_ref()))
        || spec
            .ephemeral_containers
            .iter()
            .flatten()
            .any(|c| privileged(c.security_context.as_ref()))
}

/// The sandbox's CRI security context: the pod's user, group and groups,
/// `RuntimeDefault` seccomp, privileged when a container is.
pub(crate) fn sandbox(pod: &Pod) -> v1::LinuxSandboxSecurityContext {
    let p = pod_security_context(pod);
    v1::LinuxSandboxSecurityContext {
        namespace_options: Some(namespace_options(pod)),
        selinux_options: p.and_then(|p| p.se_linux_options.as_ref()).map(se_linux),
        run_as_user: p
            .and_then(|p| p.run_as_user)
            .map(|value| v1::Int64Value { value }),
        run_as_group: p
            .and_then(|p| p.run_as_group)
            .map(|value| v1::Int64Value { value }),
        supplemental_groups: supplemental_groups(pod),
        privileged: has_privileged_container(pod),
        seccomp: Some(profile(
            v1::security_profile::ProfileType::RuntimeDefault,
            String::new(),
        )),
        ..Default::default()
    }
}

/// The pod's sysctls, set in its sandbox.
pub(crate) fn sysctls(pod: &Pod) -> HashMap<String, String> {
    pod_security_context(pod)
        .and_then(|p| p.sysctls.as_ref())
        .into_iter()
        .flatten()
        .map(|s| (s.name.clone(), s.value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Capabilities, PodSpec, Sysctl};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(psc: PodSecurityContext, csc: Option<SecurityContext>) -> (Pod, Container) {
        let c = Container {
            name: "main".into(),
            security_context: csc,
            ..Default::default()
        };
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![c.clone()],
                security_context: Some(psc),
                ..Default::default()
            }),
            status: None,
        };
        (pod, c)
    }

    fn root() -> &'static Path {
        Path::new("/var/lib/kubelet/seccomp")
    }

    #[test]
    fn container_overrides_pod_and_groups_include_fs_group() {
        let (pod, c) = pod(
            PodSecurityContext {
                run_as_user: Some(1000),
                run_as_group: Some(3000),
                fs_group: Some(2000),
                supplemental_groups: Some(vec![4000, 5000]),
                ..Default::default()
            },
            Some(SecurityContext {
                run_as_user: Some(1001),
                ..Default::default()
            }),
        );
        let sc = container(&pod, &c, &ImageUser::root(), root()).unwrap();
        assert_eq!(sc.run_as_user, Some(v1::Int64Value { value: 1001 }));
        assert_eq!(sc.run_as_group, Some(v1::Int64Value { value: 3000 }));
        assert_eq!(sc.supplemental_groups, vec![2000, 4000, 5000]);
        assert!(!sc.no_new_privs);
        assert_eq!(sc.masked_paths.len(), MASKED_PATHS.len());
        assert_eq!(
            sc.seccomp.map(|s| s.profile_type),
            Some(v1::security_profile::ProfileType::Unconfined as i32)
        );
        let sb = sandbox(&pod);
        assert_eq!(sb.run_as_user, Some(v1::Int64Value { value: 1000 }));
        assert_eq!(sb.supplemental_groups, vec![2000, 4000, 5000]);
        assert!(!sb.privileged);
    }

    #[test]
    fn image_user_fills_in_when_unset() {
        let (pod, c) = pod(PodSecurityContext::default(), None);
        let named = ImageUser {
            uid: None,
            name: "nobody".into(),
        };
        let sc = container(&pod, &c, &named, root()).unwrap();
        assert_eq!(sc.run_as_user, None);
        assert_eq!(sc.run_as_username, "nobody");
        assert_eq!(ImageUser::from_image(None), ImageUser::root());
    }

    #[test]
    fn run_as_non_root() {
        let non_root = |user: Option<i64>| PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: user,
            ..Default::default()
        };
        let (p, c) = pod(non_root(Some(0)), None);
        let err = container(&p, &c, &ImageUser::root(), root()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("container's runAsUser breaks non-root policy (pod: \"p_ns(u1)\"")
        );
        let (p, c) = pod(non_root(None), None);
        let err = container(&p, &c, &ImageUser::root(), root()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("container has runAsNonRoot and image will run as root")
        );
        let named = ImageUser {
            uid: None,
            name: "app".into(),
        };
        assert!(matches!(
            container(&p, &c, &named, root()),
            Err(Error::ImageUserName { .. })
        ));
        let uid = ImageUser {
            uid: Some(10),
            name: String::new(),
        };
        assert!(container(&p, &c, &uid, root()).is_ok());
        let (p, c) = pod(non_root(Some(5)), None);
        assert!(container(&p, &c, &ImageUser::root(), root()).is_ok());
        // The container may lift the pod's requirement.
        let (p, c) = pod(
            non_root(Some(0)),
            Some(SecurityContext {
                run_as_non_root: Some(false),
                ..Default::default()
            }),
        );
        assert!(container(&p, &c, &ImageUser::root(), root()).is_ok());
    }

    #[test]
    fn container_only_fields() {
        let (mut p, c) = pod(
            PodSecurityContext {
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    localhost_profile: None,
                }),
                sysctls: Some(vec![Sysctl {
                    name: "kernel.shm_rmid_forced".into(),
                    value: "1".into(),
                }]),
                ..Default::default()
            },
            Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                privileged: Some(true),
                read_only_root_filesystem: Some(true),
                proc_mount: Some("Unmasked".into()),
                capabilities: Some(Capabilities {
                    add: Some(vec!["NET_ADMIN".into()]),
                    drop: Some(vec!["ALL".into()]),
                }),
                seccomp_profile: Some(SeccompProfile {
                    type_: "Localhost".into(),
                    localhost_profile: Some("audit.json".into()),
                }),
                ..Default::default()
            }),
        );
        let sc = container(&p, &c, &ImageUser::root(), root()).unwrap();
        assert!(sc.no_new_privs && sc.privileged && sc.readonly_rootfs);
        assert!(sc.masked_paths.is_empty() && sc.readonly_paths.is_empty());
        let caps = sc.capabilities.unwrap();
        assert_eq!(caps.add_capabilities, vec!["NET_ADMIN"]);
        assert_eq!(caps.drop_capabilities, vec!["ALL"]);
        let seccomp = sc.seccomp.unwrap();
        assert_eq!(
            seccomp.profile_type,
            v1::security_profile::ProfileType::Localhost as i32
        );
        assert_eq!(seccomp.localhost_ref, "/var/lib/kubelet/seccomp/audit.json");
        assert!(sandbox(&p).privileged);
        assert_eq!(
            sysctls(&p)
                .get("kernel.shm_rmid_forced")
                .map(String::as_str),
            Some("1")
        );
        // A Localhost profile without a file is a config error.
        if let Some(spec) = p.spec.as_mut() {
            spec.containers[0].security_context = None;
            if let Some(psc) = spec.security_context.as_mut() {
                psc.seccomp_profile = Some(SeccompProfile {
                    type_: "Localhost".into(),
                    localhost_profile: None,
                });
            }
        }
        let c = p.spec.as_ref().unwrap().containers[0].clone();
        assert!(matches!(
            container(&p, &c, &ImageUser::root(), root()),
            Err(Error::SeccompLocalhost)
        ));
    }
}
