//! What the node reports about the machine: capacity (CPU, memory, the root
//! directory's disk) and system info (kernel, OS image, ids). Read from
//! `/proc`, `/etc` and `statvfs`, as cAdvisor does for upstream's kubelet.

use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    pub cpus: usize,
    pub memory_bytes: u64,
    /// Size of the filesystem holding the kubelet's root directory.
    pub disk_bytes: u64,
    pub kernel_version: String,
    pub os_image: String,
    pub machine_id: String,
    pub boot_id: String,
    pub system_uuid: String,
    /// Kubernetes' name for the architecture (`amd64`, `arm64`, ...).
    pub arch: &'static str,
}

impl Machine {
    pub fn read(root_dir: &Path) -> Self {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let memory_bytes = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| mem_total(&s))
            .unwrap_or(0);
        let disk_bytes = rustix::fs::statvfs(root_dir)
            .map(|s| s.f_blocks.saturating_mul(s.f_frsize))
            .unwrap_or(0);
        Self {
            cpus,
            memory_bytes,
            disk_bytes,
            kernel_version: read_trimmed("/proc/sys/kernel/osrelease"),
            os_image: std::fs::read_to_string("/etc/os-release")
                .ok()
                .and_then(|s| pretty_name(&s))
                .unwrap_or_else(|| "Linux".into()),
            machine_id: read_trimmed("/etc/machine-id"),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
            system_uuid: read_trimmed("/sys/class/dmi/id/product_uuid"),
            arch: go_arch(std::env::consts::ARCH),
        }
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// `PRETTY_NAME` of os-release, unquoted.
fn pretty_name(os_release: &str) -> Option<String> {
    let value = os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))?;
    Some(value.trim().trim_matches('"').to_string())
}

fn go_arch(rust_arch: &str) -> &'static str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_meminfo_and_os_release() {
        let meminfo = "MemTotal:       24684116 kB\nMemFree:  1 kB\n";
        assert_eq!(mem_total(meminfo), Some(24684116 * 1024));
        let os = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(
            pretty_name(os).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(go_arch("x86_64"), "amd64");
    }

    #[test]
    fn reads_this_machine() {
        let m = Machine::read(Path::new("/"));
        assert!(m.cpus >= 1);
        assert!(m.memory_bytes > 0);
        assert!(m.disk_bytes > 0);
        assert!(!m.kernel_version.is_empty());
    }
}
