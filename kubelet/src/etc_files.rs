//! What a pod's containers get from the kubelet rather than their image:
//!
//! - `/etc/hosts`, written to `<root>/pods/<uid>/etc-hosts` and mounted into
//!   every container that does not mount that path itself, as upstream's
//!   kubelet manages it (its header line tells tools the file is managed);
//! - the hostname (`hostname`, `subdomain`, `setHostnameAsFQDN`) and the DNS
//!   settings per `dnsPolicy` and `dnsConfig`, handed to the runtime in the
//!   sandbox config, from which containerd writes `/etc/hostname` and
//!   `/etc/resolv.conf`, as upstream's kubelet does through the CRI.

use std::io;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{HostAlias, Pod, PodDNSConfigOption};

use crate::config::Config;
use crate::cri::v1;

const MANAGED_HEADER: &str = "# Kubernetes-managed hosts file.\n";
const MANAGED_HEADER_HOST_NETWORK: &str = "# Kubernetes-managed hosts file (host network).\n";
/// A hostname is at most 63 characters; a kernel hostname (an FQDN with
/// `setHostnameAsFQDN`) at most 64.
const MAX_HOSTNAME: usize = 63;
const MAX_FQDN: usize = 64;
/// The resolver's limits upstream enforces.
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;
const MAX_SEARCH_CHARS: usize = 2048;

fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

/// The pod's hostname (`spec.hostname` or its name, cut to 63 characters)
/// and its domain (`<subdomain>.<ns>.svc.<cluster domain>`, or empty).
pub(crate) fn hostname_and_domain(pod: &Pod, cluster_domain: &str) -> (String, String) {
    let spec = pod.spec.as_ref();
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let mut hostname = spec
        .and_then(|s| s.hostname.as_deref())
        .filter(|h| !h.is_empty())
        .unwrap_or(name)
        .to_string();
    if hostname.len() > MAX_HOSTNAME {
        hostname.truncate(MAX_HOSTNAME);
        let trimmed = hostname.trim_end_matches(['-', '.']).len();
        hostname.truncate(trimmed);
    }
    let domain = match spec.and_then(|s| s.subdomain.as_deref()) {
        Some(sub) if !sub.is_empty() => {
            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
            format!("{sub}.{ns}.svc.{cluster_domain}")
        }
        _ => String::new(),
    };
    (hostname, domain)
}

/// The sandbox's (kernel) hostname: empty for host-network pods (the
/// node's), the FQDN with `setHostnameAsFQDN` and a domain.
pub(crate) fn sandbox_hostname(pod: &Pod, cluster_domain: &str) -> String {
    if host_network(pod) {
        return String::new();
    }
    let (hostname, domain) = hostname_and_domain(pod, cluster_domain);
    let as_fqdn = pod
        .spec
        .as_ref()
        .and_then(|s| s.set_hostname_as_fqdn)
        .unwrap_or(false);
    if !as_fqdn || domain.is_empty() {
        return hostname;
    }
    let fqdn = format!("{hostname}.{domain}");
    if fqdn.len() > MAX_FQDN {
        // Upstream refuses the sandbox; the short name keeps the pod usable.
        tracing::warn!(%fqdn, "the pod's FQDN is longer than 64 characters; using its hostname");
        return hostname;
    }
    fqdn
}

/// Writes the pod's hosts file (mode 0644) and returns its path.
pub(crate) fn write_hosts(
    pod_dir: &Path,
    pod: &Pod,
    pod_ips: &[String],
    cluster_domain: &str,
) -> io::Result<PathBuf> {
    let aliases = pod
        .spec
        .as_ref()
        .and_then(|s| s.host_aliases.as_deref())
        .unwrap_or(&[]);
    let content = if host_network(pod) {
        let node = std::fs::read_to_string("/etc/hosts")?;
        format!(
            "{MANAGED_HEADER_HOST_NETWORK}{node}{}",
            alias_entries(aliases)
        )
    } else {
        let (hostname, domain) = hostname_and_domain(pod, cluster_domain);
        managed_hosts(pod_ips, &hostname, &domain, aliases)
    };
    std::fs::create_dir_all(pod_dir)?;
    let path = pod_dir.join("etc-hosts");
    std::fs::write(&path, content)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    Ok(path)
}

/// The managed hosts file of a pod with its own network.
fn managed_hosts(ips: &[String], hostname: &str, domain: &str, aliases: &[HostAlias]) -> String {
    let mut out = String::from(MANAGED_HEADER);
    out.push_str("127.0.0.1\tlocalhost\n");
    out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
    out.push_str("fe00::0\tip6-localnet\n");
    out.push_str("fe00::0\tip6-mcastprefix\n");
    out.push_str("fe00::1\tip6-allnodes\n");
    out.push_str("fe00::2\tip6-allrouters\n");
    for ip in ips {
        if domain.is_empty() {
            out.push_str(&format!("{ip}\t{hostname}\n"));
        } else {
            out.push_str(&format!("{ip}\t{hostname}.{domain}\t{hostname}\n"));
        }
    }
    out.push_str(&alias_entries(aliases));
    out
}

/// One line per alias, after a blank line and a comment.
fn alias_entries(aliases: &[HostAlias]) -> String {
    if aliases.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n# Entries added by HostAliases.\n");
    for a in aliases {
        let names = a.hostnames.as_deref().unwrap_or(&[]).join("\t");
        out.push_str(&format!("{}\t{names}\n", a.ip));
    }
    out
}

/// The pod's DNS settings, upstream's `GetPodDNS`:
///
/// - `ClusterFirst` (the default; `Default` for host-network pods) and
///   `ClusterFirstWithHostNet`: the cluster DNS servers, the cluster's
///   search domains before the host's, `ndots:5`; the host's settings when
///   no cluster DNS is configured;
/// - `Default`: the host's resolver configuration (`resolv_conf`);
/// - `None`: nothing but `dnsConfig`.
///
/// `dnsConfig` is then merged in: servers and searches appended without
/// duplicates, options overriding those of the same name.
pub(crate) fn dns_config(pod: &Pod, config: &Config) -> v1::DnsConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let host_net = spec.host_network.unwrap_or(false);
    let cluster = match spec.dns_policy.as_deref() {
        Some("None") => None,
        Some("Default") => Some(false),
        Some("ClusterFirstWithHostNet") => Some(true),
        _ => Some(!host_net),
    };
    let mut dns = match cluster {
        None => v1::DnsConfig::default(),
        Some(true) if !config.cluster_dns.is_empty() => {
            let host = host_dns(config);
            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
            let d = &config.cluster_domain;
            let mut searches = if d.is_empty() {
                Vec::new()
            } else {
                vec![format!("{ns}.svc.{d}"), format!("svc.{d}"), d.clone()]
            };
            searches.extend(host.searches);
            v1::DnsConfig {
                servers: config.cluster_dns.iter().map(IpAddr::to_string).collect(),
                searches: omit_duplicates(searches),
                options: vec!["ndots:5".into()],
            }
        }
        Some(_) => host_dns(config),
    };
    if let Some(extra) = &spec.dns_config {
        dns.servers
            .extend(extra.nameservers.iter().flatten().cloned());
        dns.servers = omit_duplicates(std::mem::take(&mut dns.servers));
        dns.searches
            .extend(extra.searches.iter().flatten().cloned());
        dns.searches = omit_duplicates(std::mem::take(&mut dns.searches));
        dns.options = merge_options(
            std::mem::take(&mut dns.options),
            extra.options.as_deref().unwrap_or(&[]),
        );
    }
    dns.servers.truncate(MAX_NAMESERVERS);
    dns.searches.truncate(MAX_SEARCHES);
    while dns.searches.join(" ").len() > MAX_SEARCH_CHARS {
        dns.searches.pop();
    }
    dns
}

/// The host's resolver settings; without a resolver file upstream points
/// pods at the local machine and disables search.
fn host_dns(config: &Config) -> v1::DnsConfig {
    let Some(path) = &config.resolv_conf else {
        let local = if config.node_ip.is_ipv6() {
            "::1"
        } else {
            "127.0.0.1"
        };
        return v1::DnsConfig {
            servers: vec![local.into()],
            searches: vec![".".into()],
            options: Vec::new(),
        };
    };
    match std::fs::read_to_string(path) {
        Ok(s) => parse_resolv_conf(&s),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "reading the host's resolver configuration failed");
            v1::DnsConfig::default()
        }
    }
}

/// `nameserver` lines add up; the last `search` line wins (trailing dots
/// dropped, `.` skipped); `options` accumulate, a later one of the same name
/// replacing the earlier.
fn parse_resolv_conf(s: &str) -> v1::DnsConfig {
    let mut dns = v1::DnsConfig::default();
    for line in s.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["nameserver", server, ..] => dns.servers.push((*server).into()),
            ["search", domains @ ..] => {
                dns.searches = domains
                    .iter()
                    .filter(|d| **d != ".")
                    .map(|d| d.trim_end_matches('.').to_string())
                    .collect();
            }
            ["options", options @ ..] => {
                for o in options {
                    set_option(&mut dns.options, o);
                }
            }
            _ => {}
        }
    }
    dns
}

fn option_name(o: &str) -> &str {
    o.split_once(':').map_or(o, |(n, _)| n)
}

fn set_option(options: &mut Vec<String>, o: &str) {
    match options
        .iter_mut()
        .find(|x| option_name(x) == option_name(o))
    {
        Some(existing) => *existing = o.into(),
        None => options.push(o.into()),
    }
}

fn merge_options(mut options: Vec<String>, extra: &[PodDNSConfigOption]) -> Vec<String> {
    for o in extra {
        let name = o.name.as_deref().unwrap_or("");
        match o.value.as_deref().filter(|v| !v.is_empty()) {
            Some(v) => set_option(&mut options, &format!("{name}:{v}")),
            None => set_option(&mut options, name),
        }
    }
    options
}

fn omit_duplicates(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodDNSConfig, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(spec: PodSpec) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-0".into()),
                namespace: Some("shop".into()),
                ..Default::default()
            },
            spec: Some(spec),
            status: None,
        }
    }

    #[test]
    fn hostnames() {
        let p = pod(PodSpec {
            hostname: Some("web".into()),
            subdomain: Some("svc".into()),
            set_hostname_as_fqdn: Some(true),
            ..Default::default()
        });
        assert_eq!(
            hostname_and_domain(&p, "cluster.local"),
            ("web".into(), "svc.shop.svc.cluster.local".into())
        );
        assert_eq!(
            sandbox_hostname(&p, "cluster.local"),
            "web.svc.shop.svc.cluster.local"
        );
        let mut long = pod(PodSpec::default());
        long.metadata.name = Some(format!("{}-{}", "a".repeat(62), "b"));
        assert_eq!(hostname_and_domain(&long, "c").0, "a".repeat(62));
        let host = pod(PodSpec {
            host_network: Some(true),
            ..Default::default()
        });
        assert_eq!(sandbox_hostname(&host, "cluster.local"), "");
    }

    #[test]
    fn managed_hosts_file() {
        let aliases = vec![HostAlias {
            ip: "10.1.2.3".into(),
            hostnames: Some(vec!["foo.local".into(), "bar.local".into()]),
        }];
        let ips = vec!["10.244.0.5".to_string()];
        let with_domain = managed_hosts(&ips, "web", "svc.shop.svc.cluster.local", &aliases);
        assert_eq!(
            with_domain,
            "# Kubernetes-managed hosts file.\n\
             127.0.0.1\tlocalhost\n\
             ::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\n\
             fe00::0\tip6-mcastprefix\n\
             fe00::1\tip6-allnodes\n\
             fe00::2\tip6-allrouters\n\
             10.244.0.5\tweb.svc.shop.svc.cluster.local\tweb\n\
             \n\
             # Entries added by HostAliases.\n\
             10.1.2.3\tfoo.local\tbar.local\n"
        );
        assert!(managed_hosts(&ips, "web", "", &[]).ends_with("10.244.0.5\tweb\n"));
    }

    fn config(resolv: &str) -> (Config, tempfile::TempDir) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("resolv.conf");
        std::fs::write(&path, resolv).unwrap();
        let mut c = Config::new("n", tmp.path());
        c.resolv_conf = Some(path);
        (c, tmp)
    }

    #[test]
    fn dns_per_policy() {
        let (c, _tmp) = config(
            "# comment\nnameserver 192.168.1.1\nnameserver 192.168.1.2\nsearch corp.example. .\noptions ndots:2 edns0\noptions ndots:3\n",
        );
        let cluster = dns_config(&pod(PodSpec::default()), &c);
        assert_eq!(cluster.servers, ["10.96.0.10"]);
        assert_eq!(
            cluster.searches,
            [
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example"
            ]
        );
        assert_eq!(cluster.options, ["ndots:5"]);

        let host = dns_config(
            &pod(PodSpec {
                dns_policy: Some("Default".into()),
                ..Default::default()
            }),
            &c,
        );
        assert_eq!(host.servers, ["192.168.1.1", "192.168.1.2"]);
        assert_eq!(host.searches, ["corp.example"]);
        assert_eq!(host.options, ["ndots:3", "edns0"]);

        // ClusterFirst on the host network falls back to the host's.
        let host_net = dns_config(
            &pod(PodSpec {
                host_network: Some(true),
                ..Default::default()
            }),
            &c,
        );
        assert_eq!(host_net, host);

        let none = dns_config(
            &pod(PodSpec {
                dns_policy: Some("None".into()),
                dns_config: Some(PodDNSConfig {
                    nameservers: Some(vec!["1.1.1.1".into(), "1.1.1.1".into()]),
                    searches: Some(vec!["a.example".into()]),
                    options: Some(vec![
                        PodDNSConfigOption {
                            name: Some("ndots".into()),
                            value: Some("1".into()),
                        },
                        PodDNSConfigOption {
                            name: Some("rotate".into()),
                            value: None,
                        },
                    ]),
                }),
                ..Default::default()
            }),
            &c,
        );
        assert_eq!(none.servers, ["1.1.1.1"]);
        assert_eq!(none.searches, ["a.example"]);
        assert_eq!(none.options, ["ndots:1", "rotate"]);

        // dnsConfig options override the policy's of the same name.
        let merged = dns_config(
            &pod(PodSpec {
                dns_config: Some(PodDNSConfig {
                    options: Some(vec![PodDNSConfigOption {
                        name: Some("ndots".into()),
                        value: Some("2".into()),
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            &c,
        );
        assert_eq!(merged.options, ["ndots:2"]);
    }
}
