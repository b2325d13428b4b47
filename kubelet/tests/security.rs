//! End-to-end tests of pod and container `securityContext` and `resources`
//! on a real containerd: users and groups (with `fsGroup` on volumes), a
//! read-only root filesystem, `runAsNonRoot`, `allowPrivilegeEscalation`,
//! capabilities, seccomp, sysctls, and memory/CPU limits as the
//! container's cgroup shows them.
//! Each pod prints what it sees; the test reads its log through the kubelet.

mod support;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerStatus, EmptyDirVolumeSource, Pod, PodSecurityContext,
    ResourceRequirements, SeccompProfile, SecurityContext, Sysctl, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use support::{BUSYBOX, Env, TestResult, busybox_pod, phase};

fn container(name: &str, script: &str, sc: Option<SecurityContext>) -> Container {
    Container {
        name: name.into(),
        image: Some(BUSYBOX.into()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(vec!["sh".into(), "-c".into(), script.into()]),
        security_context: sc,
        ..Default::default()
    }
}

/// A pod `name` with `containers` (the first replaces busybox_pod's `main`).
fn pod(name: &str, node: &str, psc: PodSecurityContext, containers: Vec<Container>) -> Pod {
    let mut pod = busybox_pod(name, node, "Never", "true");
    if let Some(spec) = pod.spec.as_mut() {
        spec.security_context = Some(psc);
        spec.containers = containers;
    }
    pod
}

async fn succeeded(env: &Env, name: &str) -> TestResult {
    env.wait_pod(name, &format!("{name} Succeeded"), |p| {
        phase(p) == "Succeeded"
    })
    .await?;
    Ok(())
}

fn status<'a>(pod: &'a Pod, container: &str) -> Option<&'a ContainerStatus> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|s| s.name == container)
}

fn waiting(pod: &Pod, container: &str) -> Option<(String, String)> {
    let w = status(pod, container)?.state.as_ref()?.waiting.as_ref()?;
    Some((w.reason.clone()?, w.message.clone().unwrap_or_default()))
}

/// The numbers after `key=` in busybox `id` output (`groups=2000,4000`,
/// names in parentheses dropped).
fn ids(id: &str, key: &str) -> Vec<i64> {
    id.split_whitespace()
        .find_map(|f| f.strip_prefix(&format!("{key}=")))
        .unwrap_or("")
        .split(',')
        .filter_map(|g| g.split('(').next()?.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn users_groups_and_fs_group_volumes() -> TestResult {
    let env = Env::start("kubelet-test-sec-ids").await?;
    let psc = PodSecurityContext {
        run_as_user: Some(1000),
        run_as_group: Some(3000),
        fs_group: Some(2000),
        supplemental_groups: Some(vec![4000]),
        ..Default::default()
    };
    let mut main = container(
        "main",
        "id; touch /data/f && stat -c 'data %g %a' /data && stat -c 'file %g' /data/f; \
         stat -L -c 'token %g' /var/run/secrets/kubernetes.io/serviceaccount/token",
        None,
    );
    main.volume_mounts = Some(vec![VolumeMount {
        name: "data".into(),
        mount_path: "/data".into(),
        ..Default::default()
    }]);
    let over = container(
        "override",
        "id",
        Some(SecurityContext {
            run_as_user: Some(1001),
            run_as_group: Some(3001),
            ..Default::default()
        }),
    );
    let mut p = pod("ids", &env.node, psc, vec![main, over]);
    if let Some(spec) = p.spec.as_mut() {
        spec.volumes = Some(vec![Volume {
            name: "data".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        }]);
    }
    env.create(p).await?;
    succeeded(&env, "ids").await?;

    let out = env.log("ids", "main").await?;
    assert_eq!(ids(&out, "uid"), vec![1000], "{out}");
    assert_eq!(ids(&out, "gid"), vec![3000], "{out}");
    let groups = ids(&out, "groups");
    assert!(
        groups.contains(&2000) && groups.contains(&4000),
        "fsGroup and supplementalGroups missing: {out}"
    );
    // The emptyDir is group-owned by fsGroup and setgid, so what the
    // non-root user writes there gets the group too.
    assert!(out.contains("data 2000 2777"), "{out}");
    assert!(out.contains("file 2000"), "{out}");
    // API-data volumes (the service account token) get the group as well.
    assert!(out.contains("token 2000"), "{out}");

    let out = env.log("ids", "override").await?;
    assert_eq!(ids(&out, "uid"), vec![1001], "{out}");
    assert_eq!(ids(&out, "gid"), vec![3001], "{out}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_root_no_new_privs_and_sysctls() -> TestResult {
    let env = Env::start("kubelet-test-sec-fs").await?;
    let psc = PodSecurityContext {
        sysctls: Some(vec![Sysctl {
            name: "kernel.shm_rmid_forced".into(),
            value: "1".into(),
        }]),
        ..Default::default()
    };
    let ro = container(
        "ro",
        "if touch /x 2>/dev/null; then echo root writable; else echo root read-only; fi",
        Some(SecurityContext {
            read_only_root_filesystem: Some(true),
            ..Default::default()
        }),
    );
    let nnp = container(
        "nnp",
        "grep NoNewPrivs /proc/self/status; echo oom $(cat /proc/self/oom_score_adj); \
         echo shm_rmid_forced $(cat /proc/sys/kernel/shm_rmid_forced); \
         if touch /x 2>/dev/null; then echo root writable; fi",
        Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            ..Default::default()
        }),
    );
    let plain = container(
        "plain",
        "grep -E 'NoNewPrivs|Seccomp:' /proc/self/status",
        None,
    );
    // Names without `CAP_`, as in the API; containerd adds the prefix.
    let caps = container(
        "caps",
        "grep -E 'CapEff|Seccomp:' /proc/self/status",
        Some(SecurityContext {
            capabilities: Some(Capabilities {
                add: Some(vec!["CHOWN".into()]),
                drop: Some(vec!["ALL".into()]),
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..Default::default()
        }),
    );
    env.create(pod("fs", &env.node, psc, vec![ro, nnp, plain, caps]))
        .await?;
    succeeded(&env, "fs").await?;

    let out = env.log("fs", "ro").await?;
    assert!(out.contains("root read-only"), "{out}");
    let out = env.log("fs", "nnp").await?;
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    // A BestEffort pod is the OOM killer's first pick.
    assert!(out.contains("oom 1000"), "{out}");
    assert!(out.contains("shm_rmid_forced 1"), "{out}");
    assert!(out.contains("root writable"), "{out}");
    let out = env.log("fs", "plain").await?;
    assert!(out.contains("NoNewPrivs:\t0"), "{out}");
    // No profile asked for: Unconfined (the kubelet's seccompDefault is off).
    assert!(out.contains("Seccomp:\t0"), "{out}");
    let out = env.log("fs", "caps").await?;
    assert!(out.contains("CapEff:\t0000000000000001"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn run_as_non_root_refuses_root() -> TestResult {
    let env = Env::start("kubelet-test-sec-nonroot").await?;
    let psc = PodSecurityContext {
        run_as_non_root: Some(true),
        ..Default::default()
    };
    let explicit = container(
        "explicit",
        "true",
        Some(SecurityContext {
            run_as_user: Some(0),
            ..Default::default()
        }),
    );
    // busybox names no user: it would run as root.
    let image = container("image", "true", None);
    let ok = container(
        "ok",
        "id",
        Some(SecurityContext {
            run_as_user: Some(1000),
            ..Default::default()
        }),
    );
    env.create(pod("nonroot", &env.node, psc, vec![explicit, image, ok]))
        .await?;
    let pod = env
        .wait_pod("nonroot", "both containers refused", |p| {
            let refused =
                |c| waiting(p, c).is_some_and(|(reason, _)| reason == "CreateContainerConfigError");
            refused("explicit") && refused("image")
        })
        .await?;
    let (_, message) = waiting(&pod, "explicit").ok_or("explicit not waiting")?;
    assert!(
        message
            .starts_with("container's runAsUser breaks non-root policy (pod: \"nonroot_default("),
        "{message}"
    );
    let (_, message) = waiting(&pod, "image").ok_or("image not waiting")?;
    assert!(
        message.starts_with("container has runAsNonRoot and image will run as root (pod: "),
        "{message}"
    );
    assert!(message.ends_with("container: image)"), "{message}");
    assert_eq!(phase(&pod), "Pending");
    // A non-root user in the same pod runs.
    env.wait_pod("nonroot", "ok ran", |p| {
        status(p, "ok")
            .and_then(|s| s.state.as_ref())
            .and_then(|s| s.terminated.as_ref())
            .is_some_and(|t| t.exit_code == 0)
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_reach_the_container_cgroup() -> TestResult {
    let env = Env::start("kubelet-test-sec-limits").await?;
    let mut main = container(
        "main",
        // cgroup v2 files first, then v1's, as the container sees its own.
        "echo mem $(cat /sys/fs/cgroup/memory.max 2>/dev/null || \
           cat /sys/fs/cgroup/memory/memory.limit_in_bytes); \
         echo cpu $(cat /sys/fs/cgroup/cpu.max 2>/dev/null || \
           echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)); \
         echo shares $(cat /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/cpu.weight)",
        None,
    );
    let quantities = |pairs: &[(&str, &str)]| {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                .collect(),
        )
    };
    main.resources = Some(ResourceRequirements {
        requests: quantities(&[("cpu", "100m"), ("memory", "32Mi")]),
        limits: quantities(&[("cpu", "250m"), ("memory", "64Mi")]),
        ..Default::default()
    });
    env.create(pod(
        "limits",
        &env.node,
        PodSecurityContext::default(),
        vec![main],
    ))
    .await?;
    succeeded(&env, "limits").await?;
    let out = env.log("limits", "main").await?;
    assert!(out.contains("mem 67108864"), "{out}");
    assert!(out.contains("cpu 25000 100000"), "{out}");
    // 100m → 102 shares on v1 (v2 shows the weight converted from them).
    let v2 = std::fs::metadata("/sys/fs/cgroup/cgroup.controllers").is_ok();
    if !v2 {
        assert!(out.contains("shares 102"), "{out}");
    }
    Ok(())
}

/// An unsafe sysctl the node does not allow fails the pod before anything
/// runs (SysctlForbidden, with upstream's message and a Warning event); one
/// the node allows with `--allowed-unsafe-sysctls` is set in the sandbox.
#[tokio::test(flavor = "multi_thread")]
async fn unsafe_sysctls_need_the_node_allowing_them() -> TestResult {
    let env = Env::start_with("kubelet-test-sec-sysctls", |c| {
        c.allowed_unsafe_sysctls = vec!["kernel.msgmnb".into()];
    })
    .await?;
    let sysctl = |name: &str, value: &str| PodSecurityContext {
        sysctls: Some(vec![Sysctl {
            name: name.into(),
            value: value.into(),
        }]),
        ..Default::default()
    };
    let forbidden = pod(
        "forbidden",
        &env.node,
        sysctl("kernel.msgmax", "10000000000"),
        vec![container("main", "true", None)],
    );
    let created = env.create(forbidden).await?;
    let failed = env
        .wait_pod("forbidden", "forbidden Failed", |p| phase(p) == "Failed")
        .await?;
    let status = failed.status.clone().unwrap_or_default();
    assert_eq!(status.reason.as_deref(), Some("SysctlForbidden"));
    assert_eq!(
        status.message.as_deref(),
        Some("Pod was rejected: forbidden sysctl: \"kernel.msgmax\" not allowlisted")
    );
    assert!(
        status
            .container_statuses
            .iter()
            .flatten()
            .all(|c| c.container_id.is_none()),
        "nothing ran: {status:?}"
    );
    let events: kube::Api<k8s_openapi::api::core::v1::Event> =
        kube::Api::namespaced(env.client.clone(), "default");
    let uid = created.metadata.uid.unwrap_or_default();
    let selector = format!("involvedObject.name=forbidden,involvedObject.uid={uid}");
    support::eventually("a SysctlForbidden event", || async {
        let list = events
            .list(&kube::api::ListParams::default().fields(&selector))
            .await
            .ok()?;
        list.items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("SysctlForbidden"))
            .filter(|e| e.type_.as_deref() == Some("Warning"))
    })
    .await?;

    let allowed = pod(
        "allowed",
        &env.node,
        sysctl("kernel.msgmnb", "32768"),
        vec![container("main", "cat /proc/sys/kernel/msgmnb", None)],
    );
    env.create(allowed).await?;
    succeeded(&env, "allowed").await?;
    assert_eq!(env.log("allowed", "main").await?.trim(), "32768");
    Ok(())
}
