//! emptyDir volumes, and the directories API-data volumes are written into:
//! a directory of mode 0777 on the kubelet's disk, or a tmpfs mount for
//! `medium: Memory` (and secret, downwardAPI and projected data). A tmpfs is
//! sized as upstream sizes it: the smaller of the volume's `sizeLimit` and
//! the pod's memory limit, when there is one.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{Result, io_err};
use crate::env::Amount;

/// Creates the directory (mode 0777 whatever the umask), mounting a tmpfs
/// on it first when asked to and none is mounted yet.
pub(super) fn set_up(dir: &Path, tmpfs: bool, size: Option<i128>) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
    if tmpfs && !is_mount_point(dir)? {
        let data = size
            .filter(|s| *s > 0)
            .map(|s| CString::new(format!("size={s}")).unwrap_or_default());
        rustix::mount::mount(
            "tmpfs",
            dir,
            "tmpfs",
            rustix::mount::MountFlags::empty(),
            data.as_deref(),
        )
        .map_err(|e| io_err("mounting tmpfs on", dir)(e.into()))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
        .map_err(io_err("setting the mode of", dir))?;
    Ok(())
}

/// The pod's memory limit as its cgroup gets it: the sum of its containers'
/// limits (at least the largest init container's), when every container
/// has one.
pub(super) fn pod_memory_limit(pod: &Pod) -> Option<i128> {
    let spec = pod.spec.as_ref()?;
    let limit = |c: &Container| -> Option<i128> {
        let q = c.resources.as_ref()?.limits.as_ref()?.get("memory")?;
        Amount::parse(&q.0).map(|a| a.value())
    };
    let mut sum = 0i128;
    for c in &spec.containers {
        sum = sum.saturating_add(limit(c)?);
    }
    for c in spec.init_containers.iter().flatten() {
        sum = sum.max(limit(c)?);
    }
    (sum > 0).then_some(sum)
}

/// The size of a memory-backed emptyDir: its `sizeLimit` when smaller than
/// what the pod may use.
pub(super) fn memory_size(pod_limit: Option<i128>, size_limit: Option<&Quantity>) -> Option<i128> {
    let volume = size_limit
        .and_then(|q| Amount::parse(&q.0))
        .map(|a| a.value())
        .filter(|v| *v > 0);
    match (pod_limit, volume) {
        (Some(p), Some(v)) => Some(p.min(v)),
        (p, v) => p.or(v),
    }
}

/// The mount points of this process's mount namespace.
fn mount_points() -> Result<Vec<PathBuf>> {
    let path = Path::new("/proc/self/mountinfo");
    let info = std::fs::read_to_string(path).map_err(io_err("reading", path))?;
    Ok(info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .collect())
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|d| (b'0'..=b'7').contains(d))
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_mount_point(dir: &Path) -> Result<bool> {
    let dir = std::fs::canonicalize(dir).map_err(io_err("resolving", dir))?;
    Ok(mount_points()?.contains(&dir))
}

/// Detaches every mount at or under `dir`, deepest first.
pub(super) fn unmount_under(dir: &Path) -> Result<()> {
    let dir = match std::fs::canonicalize(dir) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("resolving", dir)(e)),
    };
    let mut under: Vec<PathBuf> = mount_points()?
        .into_iter()
        .filter(|m| m.starts_with(&dir))
        .collect();
    under.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    under.dedup();
    for m in under {
        rustix::mount::unmount(&m, rustix::mount::UnmountFlags::DETACH)
            .map_err(|e| io_err("unmounting", &m)(e.into()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let q = |s: &str| Quantity(s.into());
        assert_eq!(memory_size(None, None), None);
        assert_eq!(memory_size(None, Some(&q("1Mi"))), Some(1 << 20));
        assert_eq!(memory_size(Some(1 << 30), Some(&q("1Mi"))), Some(1 << 20));
        assert_eq!(memory_size(Some(1 << 10), Some(&q("1Mi"))), Some(1 << 10));
        assert_eq!(memory_size(Some(1 << 10), Some(&q("0"))), Some(1 << 10));
    }

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/end\\"), "/end\\");
    }

    #[test]
    fn disk_directory_is_world_writable() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        set_up(&dir, false, None).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o777);
        assert!(!is_mount_point(&dir).unwrap());
        unmount_under(&dir).unwrap();
    }
}
