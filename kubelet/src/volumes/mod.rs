//! A pod's volumes, laid out as upstream's kubelet lays them out:
//! `<root>/pods/<uid>/volumes/<plugin>/<name>` with plugin directories
//! named `kubernetes.io~empty-dir`, `~configmap`, `~secret`,
//! `~downward-api` and `~projected`; hostPath volumes are the host's path
//! itself. The pod's managed `/etc/hosts` is `<root>/pods/<uid>/etc-hosts`
//! ([`crate::etc_files`]).
//!
//! ```text
//!   worker sync ─► PodVolumes::sync
//!     first time: every volume set up (emptyDir directory or tmpfs,
//!                 API-data volumes written, hostPath type checked);
//!                 containers wait (pod in ContainerCreating) until all are
//!     then, every `volume_resync_interval`: API-data volumes rewritten from
//!                 the API (a no-op when unchanged), tokens renewed at 80% of
//!                 their lifetime; failures are logged, the pod runs on
//!   container start ─► container_inputs: env, then mounts (subPath,
//!                 read-only API-data volumes, /etc/hosts)
//!   pod removed ─► remove_pod_dir: tmpfs mounts detached, directory removed
//! ```
//!
//! Secret, downwardAPI and projected volumes live on tmpfs (never on disk),
//! configMap volumes on disk, as upstream's wrappers put them. Every
//! API-data volume is written by [`atomic_writer`] and mounted read-only.
//! With a pod `fsGroup`, emptyDir and API-data volumes get that group
//! ([`ownership`]).

mod atomic_writer;
mod config_map;
mod downward_api;
mod empty_dir;
mod host_path;
mod ownership;
mod projected;
mod secret;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use k8s_openapi::api::core::v1::{Container, Pod, Volume};

use crate::config::Config;
use crate::cri::v1;
use crate::env;
use crate::node::Registered;

pub(crate) use atomic_writer::{File, Payload};

const EMPTY_DIR: &str = "kubernetes.io~empty-dir";
const CONFIG_MAP: &str = "kubernetes.io~configmap";
const SECRET: &str = "kubernetes.io~secret";
const DOWNWARD_API: &str = "kubernetes.io~downward-api";
const PROJECTED: &str = "kubernetes.io~projected";
/// Upstream's default `defaultMode` of API-data volumes.
const DEFAULT_MODE: i32 = 0o644;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Source(#[from] env::Error),
    #[error("configmap references non-existent config key: {0}")]
    ConfigMapKey(String),
    #[error("references non-existent secret key: {0}")]
    SecretKey(String),
    #[error(transparent)]
    Write(#[from] atomic_writer::Error),
    #[error("hostPath type check failed: {path} is not a {what}")]
    HostPathType { path: String, what: &'static str },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("volume {0:?} is of a type this kubelet does not support")]
    Unsupported(String),
    #[error("cannot find volume {volume:?} to mount into container {container:?}")]
    NoVolume { volume: String, container: String },
    #[error("missing value for {0}")]
    SubPathExpr(String),
    #[error("error SubPath `{0}` must not be an absolute path")]
    SubPathAbsolute(String),
    #[error("unable to provision SubPath `{0}`: must not contain '..'")]
    SubPathBacksteps(String),
    /// Deliberately vague, as upstream's: the details are the host's.
    #[error("failed to prepare subPath for volumeMount {mount:?} of container {container:?}")]
    SubPath { mount: String, container: String },
    #[error("invalid MountPropagation mode: {0:?}")]
    Propagation(String),
    #[error("failed to fetch token: {0}")]
    Token(#[source] kube::Error),
    #[error("writing /etc/hosts: {0}")]
    Hosts(#[source] std::io::Error),
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { op, path, source }
}

/// `<root>/pods/<uid>`.
pub(crate) fn pod_dir(root: &Path, uid: &str) -> PathBuf {
    root.join("pods").join(uid)
}

/// Where a volume of the pod lives on the host, and whether containers get
/// it read-only whatever their mount says. `None`: a kind not supported.
fn host_path(root: &Path, uid: &str, v: &Volume) -> Option<(PathBuf, bool)> {
    let under = |plugin: &str| {
        pod_dir(root, uid)
            .join("volumes")
            .join(plugin)
            .join(&v.name)
    };
    if v.empty_dir.is_some() {
        Some((under(EMPTY_DIR), false))
    } else if v.config_map.is_some() {
        Some((under(CONFIG_MAP), true))
    } else if v.secret.is_some() {
        Some((under(SECRET), true))
    } else if v.downward_api.is_some() {
        Some((under(DOWNWARD_API), true))
    } else if v.projected.is_some() {
        Some((under(PROJECTED), true))
    } else {
        v.host_path
            .as_ref()
            .map(|h| (PathBuf::from(&h.path), false))
    }
}

/// The volumes of one pod: set up before its containers start, kept in
/// sync with the API while it runs. Owned by the pod's worker.
pub(crate) struct PodVolumes {
    uid: String,
    /// Every volume was set up once.
    ready: bool,
    next_resync: Option<Instant>,
    tokens: projected::Tokens,
}

impl PodVolumes {
    pub(crate) fn new(uid: &str) -> Self {
        Self {
            uid: uid.into(),
            ready: false,
            next_resync: None,
            tokens: projected::Tokens::default(),
        }
    }

    /// Sets the volumes up the first time, and refreshes the API-data ones
    /// when the resync interval has passed. An error means the volumes are
    /// not ready (the containers must wait); a failed refresh of ready
    /// volumes is logged here and leaves the old contents.
    pub(crate) async fn sync(
        &mut self,
        client: &kube::Client,
        config: &Config,
        pod: &Pod,
    ) -> Result<()> {
        let now = Instant::now();
        if self.ready && self.next_resync.is_some_and(|t| now < t) {
            return Ok(());
        }
        let first = !self.ready;
        let result = self.set_up(client, config, pod, first).await;
        self.next_resync = Some(now + config.volume_resync_interval);
        match result {
            Ok(()) => {
                self.ready = true;
                Ok(())
            }
            Err(e) if self.ready => {
                tracing::warn!(uid = %self.uid, error = %e, "refreshing volumes failed");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn set_up(
        &mut self,
        client: &kube::Client,
        config: &Config,
        pod: &Pod,
        first: bool,
    ) -> Result<()> {
        let ns = env::namespace(pod);
        let mut objects = env::Objects::new(client, ns);
        let mut allocatable = None;
        let volumes = pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .unwrap_or_default();
        let memory = empty_dir::pod_memory_limit(pod);
        let fs_group = fs_group(pod);
        for v in &volumes {
            let Some((path, _)) = host_path(&config.root_dir, &self.uid, v) else {
                return Err(Error::Unsupported(v.name.clone()));
            };
            if let Some(ed) = &v.empty_dir {
                if first {
                    let tmpfs = ed.medium.as_deref() == Some("Memory");
                    let size = tmpfs
                        .then(|| empty_dir::memory_size(memory, ed.size_limit.as_ref()))
                        .flatten();
                    empty_dir::set_up(&path, tmpfs, size)?;
                    if let Some(gid) = fs_group {
                        ownership::set(&path, gid, false, ownership::ChangePolicy::Always)?;
                    }
                }
                continue;
            }
            if let Some(hp) = &v.host_path {
                if first {
                    host_path::check(&hp.path, hp.type_.as_deref().unwrap_or(""))?;
                }
                continue;
            }
            let (payload, tmpfs) = if let Some(src) = &v.config_map {
                let cm = objects.config_map(&src.name).await?;
                (config_map::payload(src, cm)?, false)
            } else if let Some(src) = &v.secret {
                let name = src.secret_name.clone().unwrap_or_default();
                let s = objects.secret(&name).await?;
                (secret::payload(src, &name, s)?, true)
            } else if let Some(src) = &v.downward_api {
                let payload = downward_api::payload(
                    pod,
                    src.items.as_deref().unwrap_or(&[]),
                    src.default_mode.unwrap_or(DEFAULT_MODE),
                    client,
                    &config.node_name,
                    &mut allocatable,
                )
                .await?;
                (payload, true)
            } else if let Some(src) = &v.projected {
                let payload = projected::payload(
                    pod,
                    &v.name,
                    src,
                    &mut objects,
                    &mut self.tokens,
                    client,
                    &config.node_name,
                    &mut allocatable,
                )
                .await?;
                (payload, true)
            } else {
                return Err(Error::Unsupported(v.name.clone()));
            };
            empty_dir::set_up(&path, tmpfs, tmpfs.then_some(memory).flatten())?;
            let written = atomic_writer::write(&path, &payload)?;
            if written && !first {
                tracing::info!(uid = %self.uid, volume = %v.name, "volume contents updated");
            }
            // Upstream changes ownership just before the new version goes
            // live; here it follows right after, on the whole volume.
            if let Some(gid) = fs_group.filter(|_| written || first) {
                ownership::set(&path, gid, true, ownership::ChangePolicy::Always)?;
            }
        }
        Ok(())
    }
}

/// The pod's `fsGroup`, given to its emptyDir and API-data volumes.
fn fs_group(pod: &Pod) -> Option<u32> {
    let gid = pod.spec.as_ref()?.security_context.as_ref()?.fs_group?;
    u32::try_from(gid).ok()
}

/// Permission bits from an API mode (`defaultMode`, `mode`).
fn mode_bits(mode: i32) -> u32 {
    u32::try_from(mode).unwrap_or(0o644) & 0o7777
}

/// What a container gets from its pod besides its spec.
#[derive(Debug, Default)]
pub(crate) struct ContainerInputs {
    /// The resolved environment, in definition order.
    pub(crate) env: Vec<(String, String)>,
    pub(crate) mounts: Vec<v1::Mount>,
}

/// Resolves the container's environment, then its mounts (`subPathExpr`
/// expands with that environment), writing the pod's `/etc/hosts`. The
/// error's text is the container's `CreateContainerConfigError` message.
pub(crate) async fn container_inputs(
    client: &kube::Client,
    config: &Config,
    node: &Registered,
    pod: &Pod,
    c: &Container,
    sandbox_ips: &[String],
) -> Result<ContainerInputs, String> {
    let host_network = pod
        .spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false);
    let host_ips = vec![node.host_ip.clone()];
    let pod_ips = if host_network {
        host_ips.clone()
    } else {
        sandbox_ips.to_vec()
    };
    let inputs = env::Inputs {
        client,
        node_name: &node.name,
        host_ips: &host_ips,
        pod_ips: &pod_ips,
    };
    let env = env::resolve(&inputs, pod, c)
        .await
        .map_err(|e| e.to_string())?;
    let mounts = container_mounts(config, pod, c, &env, &pod_ips).map_err(|e| e.to_string())?;
    Ok(ContainerInputs { env, mounts })
}

/// The container's CRI mounts: its volumeMounts, and the pod's managed
/// `/etc/hosts` unless it mounts that path itself or the pod has no IP yet.
fn container_mounts(
    config: &Config,
    pod: &Pod,
    c: &Container,
    env: &[(String, String)],
    pod_ips: &[String],
) -> Result<Vec<v1::Mount>> {
    let uid = pod.metadata.uid.as_deref().unwrap_or("");
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or(&[]);
    let mut mounts = Vec::new();
    let mut mount_hosts = !pod_ips.is_empty();
    for m in c.volume_mounts.iter().flatten() {
        mount_hosts &= m.mount_path != "/etc/hosts";
        let no_volume = || Error::NoVolume {
            volume: m.name.clone(),
            container: c.name.clone(),
        };
        let v = volumes
            .iter()
            .find(|v| v.name == m.name)
            .ok_or_else(no_volume)?;
        let (mut path, read_only) = host_path(&config.root_dir, uid, v).ok_or_else(no_volume)?;
        let sub_path = match m.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
            Some(expr) => expand_sub_path(expr, env)?,
            None => m.sub_path.clone().unwrap_or_default(),
        };
        if !sub_path.is_empty() {
            path = sub_path_on_host(&path, &sub_path, &m.name, &c.name)?;
        }
        let propagation = match m.mount_propagation.as_deref() {
            None | Some("None") => v1::MountPropagation::PropagationPrivate,
            Some("HostToContainer") => v1::MountPropagation::PropagationHostToContainer,
            Some("Bidirectional") => v1::MountPropagation::PropagationBidirectional,
            Some(other) => return Err(Error::Propagation(other.into())),
        };
        mounts.push(v1::Mount {
            container_path: m.mount_path.clone(),
            host_path: path.to_string_lossy().into_owned(),
            readonly: m.read_only.unwrap_or(false) || read_only,
            selinux_relabel: v.host_path.is_none(),
            propagation: propagation as i32,
            ..Default::default()
        });
    }
    if mount_hosts {
        let file = crate::etc_files::write_hosts(
            &pod_dir(&config.root_dir, uid),
            pod,
            pod_ips,
            &config.cluster_domain,
        )
        .map_err(Error::Hosts)?;
        mounts.push(v1::Mount {
            container_path: "/etc/hosts".into(),
            host_path: file.to_string_lossy().into_owned(),
            readonly: false,
            selinux_relabel: true,
            ..Default::default()
        });
    }
    Ok(mounts)
}

/// `subPathExpr` expanded with the container's environment; a reference to
/// an unset or empty variable is an error, as upstream's.
fn expand_sub_path(expr: &str, env: &[(String, String)]) -> Result<String> {
    let missing = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let expanded = env::expand(expr, |k| {
        let v = env
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if v.is_empty() {
            missing.borrow_mut().insert(k.to_string());
        }
        Some(v)
    });
    let missing = missing.into_inner();
    if missing.is_empty() {
        Ok(expanded)
    } else {
        Err(Error::SubPathExpr(
            missing.into_iter().collect::<Vec<_>>().join(", "),
        ))
    }
}

/// The host path of `sub_path` inside the volume at `volume`: created as a
/// directory (with the volume's mode) when missing, and resolved so that no
/// symlink can lead the mount out of the volume.
fn sub_path_on_host(
    volume: &Path,
    sub_path: &str,
    mount: &str,
    container: &str,
) -> Result<PathBuf> {
    if Path::new(sub_path).is_absolute() {
        return Err(Error::SubPathAbsolute(sub_path.into()));
    }
    if sub_path.split('/').any(|p| p == "..") {
        return Err(Error::SubPathBacksteps(sub_path.into()));
    }
    let fail = |e: &dyn std::fmt::Display| {
        tracing::warn!(%mount, %container, error = %e, "preparing a subPath failed");
        Error::SubPath {
            mount: mount.into(),
            container: container.into(),
        }
    };
    let root = std::fs::canonicalize(volume).map_err(|e| fail(&e))?;
    let target = volume.join(sub_path);
    if std::fs::symlink_metadata(&target).is_err() {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let mode = std::fs::metadata(&root)
            .map(|m| m.permissions().mode() & 0o7777)
            .map_err(|e| fail(&e))?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(&target)
            .map_err(|e| fail(&e))?;
    }
    let resolved = std::fs::canonicalize(&target).map_err(|e| fail(&e))?;
    if !resolved.starts_with(&root) {
        return Err(fail(&"the subPath resolves outside its volume"));
    }
    Ok(resolved)
}

/// Removes the pod's directory once the pod is gone: the tmpfs mounts under
/// it are detached first, so nothing is removed through a mount.
pub(crate) async fn remove_pod_dir(root: &Path, uid: &str) {
    let dir = pod_dir(root, uid);
    let removed = tokio::task::spawn_blocking(move || {
        empty_dir::unmount_under(&dir)?;
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("removing", &dir)(e)),
        }
    })
    .await;
    match removed {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(%uid, error = %e, "removing the pod directory failed"),
        Err(e) => tracing::warn!(%uid, error = %e, "removing the pod directory failed"),
    }
}

/// The UIDs of the pod directories whose pod is not in `present`.
pub(crate) fn orphan_pod_dirs(root: &Path, present: &HashSet<String>) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root.join("pods")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|uid| !present.contains(uid))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, PodSpec, VolumeMount};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(root: &Path) -> (Pod, Config) {
        let mut config = Config::new("n", root);
        config.cluster_domain = "cluster.local".into();
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                volumes: Some(vec![Volume {
                    name: "cache".into(),
                    empty_dir: Some(EmptyDirVolumeSource::default()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            status: None,
        };
        (pod, config)
    }

    fn container(mounts: Vec<VolumeMount>) -> Container {
        Container {
            name: "c".into(),
            volume_mounts: Some(mounts),
            ..Default::default()
        }
    }

    fn mount(sub_path: Option<&str>, expr: Option<&str>) -> VolumeMount {
        VolumeMount {
            name: "cache".into(),
            mount_path: "/cache".into(),
            sub_path: sub_path.map(Into::into),
            sub_path_expr: expr.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn mounts_with_sub_paths_and_hosts_file() {
        let tmp = tempfile::tempdir().unwrap();
        let (pod, config) = pod(tmp.path());
        let vol = host_path(
            &config.root_dir,
            "u1",
            &pod.spec.as_ref().unwrap().volumes.as_ref().unwrap()[0],
        )
        .unwrap()
        .0;
        empty_dir::set_up(&vol, false, None).unwrap();
        let env = vec![("POD".to_string(), "p".to_string())];
        let ips = vec!["10.244.0.9".to_string()];

        let c = container(vec![mount(None, Some("logs/$(POD)"))]);
        let m = container_mounts(&config, &pod, &c, &env, &ips).unwrap();
        assert_eq!(m.len(), 2);
        assert!(
            m[0].host_path
                .ends_with("kubernetes.io~empty-dir/cache/logs/p")
        );
        assert!(Path::new(&m[0].host_path).is_dir());
        assert_eq!(m[1].container_path, "/etc/hosts");
        let hosts = std::fs::read_to_string(&m[1].host_path).unwrap();
        assert!(hosts.contains("10.244.0.9\tp\n"), "{hosts}");

        let err = |c: Container| {
            container_mounts(&config, &pod, &c, &env, &[])
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(container(vec![mount(None, Some("$(NOPE)/x"))])),
            "missing value for NOPE"
        );
        assert_eq!(
            err(container(vec![mount(Some("/etc"), None)])),
            "error SubPath `/etc` must not be an absolute path"
        );
        assert_eq!(
            err(container(vec![mount(Some("a/../../x"), None)])),
            "unable to provision SubPath `a/../../x`: must not contain '..'"
        );
        std::os::unix::fs::symlink("/etc", vol.join("escape")).unwrap();
        assert_eq!(
            err(container(vec![mount(Some("escape"), None)])),
            "failed to prepare subPath for volumeMount \"cache\" of container \"c\""
        );
        let mut other = mount(None, None);
        other.name = "other".into();
        assert_eq!(
            err(container(vec![other])),
            "cannot find volume \"other\" to mount into container \"c\""
        );
        // No IP yet, or a container mounting /etc/hosts itself: no managed file.
        let mut own = mount(None, None);
        own.mount_path = "/etc/hosts".into();
        let m = container_mounts(&config, &pod, &container(vec![own]), &env, &ips).unwrap();
        assert_eq!(m.len(), 1);
    }
}
