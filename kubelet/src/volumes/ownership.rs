//! A pod's `fsGroup` on its volumes, as upstream's `SetVolumeOwnership`:
//! everything in the volume gets the group, files gain group read (and
//! write, for writable volumes), directories also group search and the
//! setgid bit, so what containers create later inherits the group.
//! Symlinks get the group but no mode change (a chmod would reach their
//! target). With `OnRootMismatch` nothing is walked when the volume's root
//! already has the group, the bits and setgid.
//!
//! Upstream's emptyDir, configMap, secret, downwardAPI and projected
//! plugins always walk (they pass no change policy): the policy matters
//! only to volumes whose contents outlive the pod.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::{Result, io_err};

const RW_MASK: u32 = 0o660;
const RO_MASK: u32 = 0o440;
const EXEC_MASK: u32 = 0o110;
const SETGID: u32 = 0o2000;

/// `fsGroupChangePolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangePolicy {
    Always,
    /// For volumes whose contents outlive the pod; none of the kinds this
    /// kubelet mounts uses it (upstream's do not either).
    #[cfg_attr(not(test), allow(dead_code))]
    OnRootMismatch,
}

/// Gives `dir` and everything under it the group `gid` and the group bits
/// (`read_only`: read, else read-write).
pub(crate) fn set(dir: &Path, gid: u32, read_only: bool, policy: ChangePolicy) -> Result<()> {
    if policy == ChangePolicy::OnRootMismatch && !root_mismatch(dir, gid, read_only) {
        return Ok(());
    }
    let mask = if read_only { RO_MASK } else { RW_MASK };
    walk(dir, gid, mask)
}

/// Whether the volume's root lacks the group, the bits or setgid.
fn root_mismatch(dir: &Path, gid: u32, read_only: bool) -> bool {
    let Ok(meta) = std::fs::metadata(dir) else {
        return true;
    };
    let want = if read_only { RO_MASK } else { RW_MASK } | EXEC_MASK;
    let mode = meta.mode();
    meta.gid() != gid || !meta.is_dir() || mode & want != want || mode & SETGID == 0
}

fn walk(path: &Path, gid: u32, mask: u32) -> Result<()> {
    let meta = std::fs::symlink_metadata(path).map_err(io_err("inspecting", path))?;
    std::os::unix::fs::lchown(path, None, Some(gid))
        .map_err(io_err("changing the group of", path))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mut mode = (meta.mode() & 0o7777) | mask;
    if meta.is_dir() {
        mode |= SETGID | EXEC_MASK;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_err("setting the mode of", path))?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).map_err(io_err("reading", path))? {
            let entry = entry.map_err(io_err("reading", path))?;
            walk(&entry.path(), gid, mask)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn sets_group_and_bits() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("vol");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(root.join("sub"), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(root.join("sub/f"), "x").unwrap();
        std::fs::set_permissions(root.join("sub/f"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        std::os::unix::fs::symlink("sub/f", root.join("link")).unwrap();
        // Any group this process may give: its own.
        let gid = std::fs::metadata(tmp.path()).unwrap().gid();

        set(&root, gid, false, ChangePolicy::Always).unwrap();
        assert_eq!(mode(&root), 0o2775);
        assert_eq!(mode(&root.join("sub")), 0o2770);
        assert_eq!(mode(&root.join("sub/f")), 0o660);
        assert_eq!(
            std::fs::symlink_metadata(root.join("link")).unwrap().gid(),
            gid
        );
        assert!(!root_mismatch(&root, gid, false));

        // Read-only volumes get group read only.
        std::fs::set_permissions(root.join("sub/f"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        set(&root, gid, true, ChangePolicy::Always).unwrap();
        assert_eq!(mode(&root.join("sub/f")), 0o640);

        // OnRootMismatch leaves the tree alone when the root is right.
        std::fs::set_permissions(root.join("sub/f"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        set(&root, gid, false, ChangePolicy::OnRootMismatch).unwrap();
        assert_eq!(mode(&root.join("sub/f")), 0o600);
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        set(&root, gid, false, ChangePolicy::OnRootMismatch).unwrap();
        assert_eq!(mode(&root.join("sub/f")), 0o660);
    }
}
