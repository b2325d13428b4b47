//! Object name validation with kube-apiserver v1.34 semantics.
//!
//! Every checker returns the list of problems found (empty means valid), worded
//! exactly as upstream words them, so callers can wrap each message into a
//! `field.Invalid` cause (`metadata.name: Invalid value: "...": <message>`).
//!
//! The checks are hand-written equivalents of upstream's anchored regular
//! expressions; the regex text only appears inside the error messages, because
//! upstream prints it there.

use std::net::IpAddr;

/// Max length of an RFC 1123 label.
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
/// Max length of an RFC 1123 subdomain.
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// Max length of an RFC 1035 label.
pub const DNS1035_LABEL_MAX_LENGTH: usize = 63;
/// Max length of a label value.
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;
/// Max length of the name part of a qualified name.
pub const QUALIFIED_NAME_MAX_LENGTH: usize = 63;
/// CronJob names are limited on create (the controller appends an 11 char suffix).
pub const CRONJOB_NAME_MAX_LENGTH: usize = 52;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const CONFIG_MAP_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_MAP_KEY_ERR_MSG: &str =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";
const INVALID_IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

/// `must be no more than N characters`
pub fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// `must be non-empty`
pub fn empty_error() -> String {
    "must be non-empty".to_string()
}

/// Upstream's `RegexError` wording: `msg (e.g. 'a',  or 'b', regex used for validation is 'fmt')`.
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = String::with_capacity(msg.len() + fmt.len() + 64);
    out.push_str(msg);
    out.push_str(" (e.g. ");
    for (i, ex) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push('\'');
        out.push_str(ex);
        out.push_str("', ");
    }
    out.push_str("regex used for validation is '");
    out.push_str(fmt);
    out.push_str("')");
    out
}

// ---------------------------------------------------------------------------
// Format predicates (anchored-regex equivalents).

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
fn matches_dns1123_label(b: &[u8]) -> bool {
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            is_lower_alnum(f)
                && is_lower_alnum(l)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    }
}

/// `^label(\.label)*$`
fn matches_dns1123_subdomain(b: &[u8]) -> bool {
    b.split(|&c| c == b'.').all(matches_dns1123_label)
}

/// `^[a-z]([-a-z0-9]*[a-z0-9])?$`
fn matches_dns1035_label(b: &[u8]) -> bool {
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            f.is_ascii_lowercase()
                && is_lower_alnum(l)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    }
}

/// `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`
fn matches_qualified_name(b: &[u8]) -> bool {
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
        }
        _ => false,
    }
}

/// `^[-._a-zA-Z0-9]+$`
fn matches_config_map_key(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
}

// ---------------------------------------------------------------------------
// Upstream `k8s.io/apimachinery/pkg/util/validation` checkers.

/// `IsDNS1123Label`.
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    dns1123_label_errs(value.as_bytes())
}

fn dns1123_label_errs(value: &[u8]) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            // A valid subdomain but not a label: it must be the dots.
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// `IsDNS1123Subdomain`.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    dns1123_subdomain_errs(value.as_bytes())
}

fn dns1123_subdomain_errs(value: &[u8]) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// `IsDNS1035Label`.
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    dns1035_label_errs(value.as_bytes())
}

fn dns1035_label_errs(value: &[u8]) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1035_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1035_LABEL_MAX_LENGTH));
    }
    if !matches_dns1035_label(value) {
        errs.push(regex_error(
            DNS1035_LABEL_ERR_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// `IsQualifiedName`: `[prefix/]name` as used by label keys, annotation keys, etc.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {}", empty_error()));
            } else {
                for msg in is_dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {msg}"));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {}", empty_error()));
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!(
            "name part {}",
            max_len_error(QUALIFIED_NAME_MAX_LENGTH)
        ));
    }
    // Upstream checks the format even when the name part is empty.
    if !matches_qualified_name(name.as_bytes()) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `IsValidLabelValue`.
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !(value.is_empty() || matches_qualified_name(value.as_bytes())) {
        errs.push(regex_error(
            LABEL_VALUE_ERR_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// `IsConfigMapKey` (also the LeaseCandidate name rule).
pub fn is_config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_config_map_key(value) {
        errs.push(regex_error(
            CONFIG_MAP_KEY_ERR_MSG,
            CONFIG_MAP_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if value == "." {
        errs.push("must not be '.'".to_string());
    } else if value == ".." {
        errs.push("must not be '..'".to_string());
    } else if value.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

/// `path.IsValidPathSegmentName`: a name usable as a REST path segment
/// (RBAC names, and the fallback check applied to every object on create).
pub fn path_segment_name(name: &str) -> Vec<String> {
    for illegal in [".", ".."] {
        if name == illegal {
            return vec![format!("may not be '{illegal}'")];
        }
    }
    path_segment_prefix(name)
}

/// `path.IsValidPathSegmentPrefix`: like [`path_segment_name`] but for a
/// generateName prefix (exact `.`/`..` are allowed since a suffix follows).
pub fn path_segment_prefix(name: &str) -> Vec<String> {
    ["/", "%"]
        .iter()
        .filter(|illegal| name.contains(**illegal))
        .map(|illegal| format!("may not contain '{illegal}'"))
        .collect()
}

/// `IsValidIP` (strict, canonical-form IP address; the IPAddress name rule).
pub fn is_valid_ip(value: &str) -> Vec<String> {
    let Some(ip) = parse_ip_sloppy(value) else {
        return vec![INVALID_IP_MSG.to_string()];
    };
    let mut errs = Vec::new();
    // Strict parse (Go's netip.ParseAddr); std's parser is equally strict about
    // leading zeros in IPv4 octets.
    match value.parse::<IpAddr>() {
        Err(_) => errs.push("must not have leading 0s".to_string()),
        Ok(IpAddr::V6(v6)) => {
            let o = v6.octets();
            if o[..10].iter().all(|&b| b == 0) && o[10] == 0xff && o[11] == 0xff {
                errs.push("must not be an IPv4-mapped IPv6 address".to_string());
            }
        }
        Ok(IpAddr::V4(_)) => {}
    }
    if !errs.is_empty() {
        return errs;
    }
    let canonical = format_ip(&ip);
    if value != canonical {
        errs.push(format!(
            "must be in canonical form ({})",
            go_quote(&canonical)
        ));
    }
    errs
}

/// Go 1.16 `net.ParseIP` semantics (k8s `netutils.ParseIPSloppy`): IPv4 octets
/// may have leading zeros. Returns the 16-byte form and whether it was IPv4.
fn parse_ip_sloppy(s: &str) -> Option<([u8; 16], bool)> {
    for b in s.bytes() {
        match b {
            b'.' => {
                let v4 = parse_ipv4_sloppy(s)?;
                let mut out = [0u8; 16];
                out[10] = 0xff;
                out[11] = 0xff;
                out[12..].copy_from_slice(&v4);
                return Some((out, true));
            }
            b':' => return parse_ipv6_sloppy(s).map(|ip| (ip, false)),
            _ => {}
        }
    }
    None
}

const BIG: u32 = 0x00FF_FFFF;

/// Leading decimal number: (value, digits consumed); None when no digit or too big.
fn dtoi(s: &[u8]) -> Option<(u32, usize)> {
    let mut n: u32 = 0;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        n = n * 10 + u32::from(s[i] - b'0');
        if n >= BIG {
            return None;
        }
        i += 1;
    }
    if i == 0 { None } else { Some((n, i)) }
}

/// Leading hex number: (value, digits consumed); None when no digit or too big.
fn xtoi(s: &[u8]) -> Option<(u32, usize)> {
    let mut n: u32 = 0;
    let mut i = 0;
    while i < s.len() {
        let d = match s[i] {
            c @ b'0'..=b'9' => c - b'0',
            c @ b'a'..=b'f' => c - b'a' + 10,
            c @ b'A'..=b'F' => c - b'A' + 10,
            _ => break,
        };
        n = n * 16 + u32::from(d);
        if n >= BIG {
            return None;
        }
        i += 1;
    }
    if i == 0 { None } else { Some((n, i)) }
}

fn parse_ipv4_sloppy(s: &str) -> Option<[u8; 4]> {
    let mut rest = s.as_bytes();
    let mut out = [0u8; 4];
    for (i, slot) in out.iter_mut().enumerate() {
        if rest.is_empty() {
            return None;
        }
        if i > 0 {
            if rest[0] != b'.' {
                return None;
            }
            rest = &rest[1..];
        }
        let (n, used) = dtoi(rest)?;
        *slot = u8::try_from(n).ok()?;
        rest = &rest[used..];
    }
    if rest.is_empty() { Some(out) } else { None }
}

fn parse_ipv6_sloppy(s: &str) -> Option<[u8; 16]> {
    let mut ip = [0u8; 16];
    let mut rest = s.as_bytes();
    let mut ellipsis: Option<usize> = None;
    if rest.len() >= 2 && rest[0] == b':' && rest[1] == b':' {
        ellipsis = Some(0);
        rest = &rest[2..];
        if rest.is_empty() {
            return Some(ip);
        }
    }
    let mut i = 0usize;
    while i < 16 {
        let (n, used) = xtoi(rest)?;
        if n > 0xFFFF {
            return None;
        }
        if used < rest.len() && rest[used] == b'.' {
            // Trailing embedded IPv4.
            if ellipsis.is_none() && i != 12 {
                return None;
            }
            if i + 4 > 16 {
                return None;
            }
            let text = std::str::from_utf8(rest).ok()?;
            let v4 = parse_ipv4_sloppy(text)?;
            ip[i..i + 4].copy_from_slice(&v4);
            rest = &[];
            i += 4;
            break;
        }
        ip[i] = (n >> 8) as u8;
        ip[i + 1] = (n & 0xff) as u8;
        i += 2;
        rest = &rest[used..];
        if rest.is_empty() {
            break;
        }
        if rest[0] != b':' || rest.len() == 1 {
            return None;
        }
        rest = &rest[1..];
        if rest[0] == b':' {
            if ellipsis.is_some() {
                return None;
            }
            ellipsis = Some(i);
            rest = &rest[1..];
            if rest.is_empty() {
                break;
            }
        }
    }
    if !rest.is_empty() {
        return None;
    }
    if i < 16 {
        let e = ellipsis?;
        let n = 16 - i;
        for j in (e..i).rev() {
            ip[j + n] = ip[j];
        }
        for b in ip.iter_mut().skip(e).take(n) {
            *b = 0;
        }
    } else if ellipsis.is_some() {
        // The ellipsis must stand for at least one zero group.
        return None;
    }
    Some(ip)
}

/// Go `net.IP.String()`.
fn format_ip(ip: &([u8; 16], bool)) -> String {
    let (b, _) = ip;
    let mapped = b[..10].iter().all(|&x| x == 0) && b[10] == 0xff && b[11] == 0xff;
    if mapped {
        return format!("{}.{}.{}.{}", b[12], b[13], b[14], b[15]);
    }
    let groups: Vec<u16> = (0..8)
        .map(|i| (u16::from(b[2 * i]) << 8) | u16::from(b[2 * i + 1]))
        .collect();
    // Longest run of zero groups (first wins on ties); only runs of >= 2 collapse.
    let (mut best_start, mut best_len) = (0usize, 0usize);
    let mut i = 0;
    while i < 8 {
        let mut j = i;
        while j < 8 && groups[j] == 0 {
            j += 1;
        }
        if j - i > best_len {
            best_start = i;
            best_len = j - i;
        }
        i = if j > i { j } else { i + 1 };
    }
    if best_len < 2 {
        best_len = 0;
    }
    let mut out = String::new();
    let mut k = 0;
    while k < 8 {
        if best_len > 0 && k == best_start {
            out.push_str("::");
            k += best_len;
            continue;
        }
        if !out.is_empty() && !out.ends_with(':') {
            out.push(':');
        }
        out.push_str(&format!("{:x}", groups[k]));
        k += 1;
    }
    out
}

// ---------------------------------------------------------------------------
// Name rules per resource.

/// Name validation rule applied to `metadata.name` of a resource on create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameRule {
    /// `NameIsDNSSubdomain` (most resources, and all custom resources).
    Dns1123Subdomain,
    /// `NameIsDNSLabel` (namespaces, statefulsets).
    Dns1123Label,
    /// `NameIsDNS1035Label` (services).
    Dns1035Label,
    /// `path.ValidatePathSegmentName` only (RBAC, and resources whose strategy
    /// validates no name: CSRs, PDBs, core/v1 events).
    PathSegment,
    /// `IsConfigMapKey` (coordination.k8s.io leasecandidates).
    ConfigMapKey,
    /// `IsValidIP` in canonical form (networking.k8s.io ipaddresses).
    IpAddress,
    /// `<group>.<resource>` (internal.apiserver.k8s.io storageversions).
    StorageVersion,
    /// Depends on `spec.signerName`; see [`validate_cluster_trust_bundle_name`].
    /// [`validate_name`] applies the no-signer variant.
    ClusterTrustBundle,
    /// Must equal `spec.names.plural + "." + spec.group`; see [`validate_crd_name`].
    /// [`validate_name`] applies only the subdomain part.
    CustomResourceDefinition,
    /// Must equal `spec.version + "." + spec.group`; see [`validate_api_service_name`].
    /// [`validate_name`] applies only the path-segment part.
    ApiService,
}

/// Upstream's name rule for a resource (`group` "" is core; `resource` is the plural).
/// Unknown resources (custom resources) get `Dns1123Subdomain`, as upstream's
/// custom resource strategy does.
pub fn name_rule_for(group: &str, resource: &str) -> NameRule {
    use NameRule::*;
    match (group, resource) {
        ("", "namespaces") => Dns1123Label,
        ("", "services") => Dns1035Label,
        // core/v1 Event create does not validate the name (legacy validation).
        ("", "events") => PathSegment,
        ("apps", "statefulsets") => Dns1123Label,
        (
            "rbac.authorization.k8s.io",
            "roles" | "rolebindings" | "clusterroles" | "clusterrolebindings",
        ) => PathSegment,
        ("certificates.k8s.io", "certificatesigningrequests") => PathSegment,
        ("certificates.k8s.io", "clustertrustbundles") => ClusterTrustBundle,
        ("policy", "poddisruptionbudgets") => PathSegment,
        ("coordination.k8s.io", "leasecandidates") => ConfigMapKey,
        ("networking.k8s.io", "ipaddresses") => IpAddress,
        ("internal.apiserver.k8s.io", "storageversions") => StorageVersion,
        ("apiextensions.k8s.io", "customresourcedefinitions") => CustomResourceDefinition,
        ("apiregistration.k8s.io", "apiservices") => ApiService,
        // Everything else: pods, podtemplates, configmaps, secrets, endpoints,
        // serviceaccounts, limitranges, resourcequotas, nodes, persistentvolumes,
        // persistentvolumeclaims, replicationcontrollers, deployments, replicasets,
        // daemonsets, controllerrevisions, jobs, cronjobs, horizontalpodautoscalers,
        // ingresses, ingressclasses, networkpolicies, servicecidrs, endpointslices,
        // leases, events.k8s.io events, storage.k8s.io/*, resource.k8s.io/*,
        // admissionregistration.k8s.io/*, flowcontrol/*, priorityclasses,
        // runtimeclasses, podcertificaterequests, storageversionmigrations, and
        // custom resources.
        _ => Dns1123Subdomain,
    }
}

/// Validates `metadata.name` under `rule` (upstream `nameFn(name, false)`).
pub fn validate_name(rule: NameRule, name: &str) -> Vec<String> {
    apply_rule(rule, name, false)
}

/// Validates `metadata.generateName` under `rule` (upstream `nameFn(prefix, true)`):
/// a trailing `-` is allowed for the DNS rules, and `.`/`..` for path segments.
pub fn validate_generate_name(rule: NameRule, prefix: &str) -> Vec<String> {
    apply_rule(rule, prefix, true)
}

fn apply_rule(rule: NameRule, name: &str, prefix: bool) -> Vec<String> {
    match rule {
        NameRule::Dns1123Subdomain | NameRule::CustomResourceDefinition => {
            dns1123_subdomain_errs(&mask(name, prefix))
        }
        NameRule::Dns1123Label => dns1123_label_errs(&mask(name, prefix)),
        NameRule::Dns1035Label => dns1035_label_errs(&mask(name, prefix)),
        NameRule::PathSegment => {
            if prefix {
                path_segment_prefix(name)
            } else {
                path_segment_name(name)
            }
        }
        NameRule::ConfigMapKey => is_config_map_key(name),
        NameRule::IpAddress => is_valid_ip(name),
        NameRule::StorageVersion => validate_storage_version_name(name),
        NameRule::ClusterTrustBundle => validate_cluster_trust_bundle_name("", name, prefix),
        NameRule::ApiService => path_segment_name(name),
    }
}

/// Upstream `maskTrailingDash`: when the value is a generateName prefix longer
/// than one byte and ends with '-', its last *two* bytes are replaced by "a"
/// (sic: upstream drops two bytes, not one). Works on bytes like upstream.
fn mask(name: &str, prefix: bool) -> Vec<u8> {
    let b = name.as_bytes();
    if prefix && b.len() > 1 && b.ends_with(b"-") {
        let mut out = b[..b.len() - 2].to_vec();
        out.push(b'a');
        out
    } else {
        b.to_vec()
    }
}

/// `ValidateStorageVersionName`.
pub fn validate_storage_version_name(name: &str) -> Vec<String> {
    let Some(idx) = name.rfind('.') else {
        return vec!["name must be in the form of <group>.<resource>".to_string()];
    };
    let mut errs: Vec<String> = is_dns1123_subdomain(&name[..idx])
        .into_iter()
        .map(|m| format!("the group segment {m}"))
        .collect();
    errs.extend(
        is_dns1035_label(&name[idx + 1..])
            .into_iter()
            .map(|m| format!("the resource segment {m}")),
    );
    errs
}

/// `ValidateClusterTrustBundleName(signerName)(name, prefix)`.
pub fn validate_cluster_trust_bundle_name(
    signer_name: &str,
    name: &str,
    prefix: bool,
) -> Vec<String> {
    if signer_name.is_empty() {
        if name.contains(':') {
            return vec![
                "ClusterTrustBundle without signer name must not have \":\" in its name"
                    .to_string(),
            ];
        }
        return dns1123_subdomain_errs(&mask(name, prefix));
    }
    let required = format!("{}:", signer_name.replace('/', ":"));
    match name.strip_prefix(required.as_str()) {
        Some(rest) => dns1123_subdomain_errs(&mask(rest, prefix)),
        None => vec![format!(
            "ClusterTrustBundle for signerName {signer_name} must be named with prefix {required}"
        )],
    }
}

/// CustomResourceDefinition name rule: a subdomain equal to `<plural>.<group>`.
pub fn validate_crd_name(name: &str, plural: &str, group: &str, prefix: bool) -> Vec<String> {
    let mut errs = dns1123_subdomain_errs(&mask(name, prefix));
    if name != format!("{plural}.{group}") {
        errs.push("must be spec.names.plural+\".\"+spec.group".to_string());
    }
    errs
}

/// APIService name rule: a path segment equal to `<version>.<group>`.
pub fn validate_api_service_name(name: &str, version: &str, group: &str) -> Vec<String> {
    let minimal = path_segment_name(name);
    if !minimal.is_empty() {
        return minimal;
    }
    let required = format!("{version}.{group}");
    if name != required {
        return vec![format!(
            "must be `spec.version+\".\"+spec.group`: {}",
            go_quote(&required)
        )];
    }
    Vec::new()
}

/// Extra CronJob create check (after the subdomain rule):
/// `Some("must be no more than 52 characters")` when the name is too long.
pub fn cronjob_name_length_error(name: &str) -> Option<String> {
    (name.len() > CRONJOB_NAME_MAX_LENGTH)
        .then(|| format!("must be no more than {CRONJOB_NAME_MAX_LENGTH} characters"))
}

/// Go `strconv.Quote` (`%q`): double-quoted, with Go escapes for `"`, `\`,
/// and non-printable characters.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0B}' => out.push_str("\\v"),
            c if go_is_print(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Approximation of Go `unicode.IsPrint` (exact for ASCII and the common
/// non-printable classes: controls, separators, format and private-use characters).
fn go_is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    let format_or_private = matches!(u,
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890..=0x0891 | 0x08E2
        | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F
        | 0xFEFF | 0xFFF9..=0xFFFB | 0xFFFE..=0xFFFF | 0x110BD | 0x110CD | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F
        | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF);
    !format_or_private
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
    const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
    const QNAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

    #[test]
    fn subdomain() {
        for ok in ["a", "ab", "a-b", "0", "a.b", "a.b.c", "1.2.3.4", "a--b"] {
            assert!(is_dns1123_subdomain(ok).is_empty(), "{ok}");
        }
        for bad in ["", "A", "-a", "a-", "a..b", ".a", "a.", "a_b", "a.-b", "ä"] {
            assert_eq!(
                is_dns1123_subdomain(bad),
                vec![SUBDOMAIN_MSG.to_string()],
                "{bad}"
            );
        }
        let long = "a".repeat(254);
        assert_eq!(
            is_dns1123_subdomain(&long),
            vec!["must be no more than 253 characters".to_string()]
        );
        assert!(is_dns1123_subdomain(&"a".repeat(253)).is_empty());
    }

    #[test]
    fn label_and_1035() {
        assert!(is_dns1123_label("0abc").is_empty());
        assert_eq!(
            is_dns1123_label("a.b"),
            vec!["must not contain dots".to_string()]
        );
        assert_eq!(is_dns1123_label("A"), vec![LABEL_MSG.to_string()]);
        assert_eq!(
            is_dns1123_label(&"a".repeat(64)),
            vec!["must be no more than 63 characters".to_string()]
        );
        assert!(is_dns1035_label("abc-1").is_empty());
        assert_eq!(is_dns1035_label("1abc"), vec![DNS1035_MSG.to_string()]);
        assert_eq!(is_dns1035_label(""), vec![DNS1035_MSG.to_string()]);
    }

    #[test]
    fn qualified_name() {
        assert!(is_qualified_name("example.com/MyName").is_empty());
        assert!(is_qualified_name("a_b.C-d").is_empty());
        assert_eq!(
            is_qualified_name("/a"),
            vec!["prefix part must be non-empty".to_string()]
        );
        assert_eq!(
            is_qualified_name("a/"),
            vec![
                "name part must be non-empty".to_string(),
                QNAME_MSG.to_string()
            ]
        );
        assert_eq!(
            is_qualified_name("Ex/a"),
            vec![format!("prefix part {SUBDOMAIN_MSG}")]
        );
        assert_eq!(
            is_qualified_name("a/b/c"),
            vec!["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".to_string()]
        );
        assert_eq!(
            is_qualified_name(&"a".repeat(64)),
            vec!["name part must be no more than 63 characters".to_string()]
        );
    }

    #[test]
    fn label_value() {
        assert!(is_valid_label_value("").is_empty());
        assert!(is_valid_label_value("My_value.1").is_empty());
        assert_eq!(
            is_valid_label_value("-a"),
            vec![LABEL_VALUE_MSG.to_string()]
        );
        assert_eq!(
            is_valid_label_value(&"a".repeat(64)),
            vec!["must be no more than 63 characters".to_string()]
        );
    }

    #[test]
    fn path_segments() {
        assert_eq!(path_segment_name("."), vec!["may not be '.'".to_string()]);
        assert_eq!(path_segment_name(".."), vec!["may not be '..'".to_string()]);
        assert_eq!(
            path_segment_name("a/b%c"),
            vec![
                "may not contain '/'".to_string(),
                "may not contain '%'".to_string()
            ]
        );
        assert!(path_segment_name("system:node:Foo").is_empty());
        assert!(path_segment_prefix("..").is_empty());
        assert!(validate_generate_name(NameRule::PathSegment, ".").is_empty());
    }

    #[test]
    fn config_map_key() {
        assert!(is_config_map_key("Key_1.a-b").is_empty());
        assert_eq!(
            is_config_map_key(".."),
            vec!["must not be '..'".to_string()]
        );
        assert_eq!(
            is_config_map_key("..a"),
            vec!["must not start with '..'".to_string()]
        );
        assert_eq!(
            is_config_map_key("a b"),
            vec!["a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".to_string()]
        );
    }

    #[test]
    fn generate_name_masks_two_chars() {
        assert!(validate_generate_name(NameRule::Dns1123Subdomain, "foo-").is_empty());
        assert!(validate_generate_name(NameRule::Dns1123Subdomain, "a-").is_empty());
        // "foo.-" masks to "fooa" upstream.
        assert!(validate_generate_name(NameRule::Dns1123Subdomain, "foo.-").is_empty());
        // a single "-" is not masked.
        assert_eq!(
            validate_generate_name(NameRule::Dns1123Subdomain, "-"),
            vec![SUBDOMAIN_MSG.to_string()]
        );
        assert_eq!(
            validate_generate_name(NameRule::Dns1123Label, "Foo-"),
            vec![LABEL_MSG.to_string()]
        );
        assert!(validate_generate_name(NameRule::Dns1035Label, "svc-").is_empty());
        assert_eq!(
            validate_name(NameRule::Dns1123Subdomain, "foo-"),
            vec![SUBDOMAIN_MSG.to_string()]
        );
    }

    #[test]
    fn rules_per_resource() {
        assert_eq!(name_rule_for("", "namespaces"), NameRule::Dns1123Label);
        assert_eq!(name_rule_for("", "services"), NameRule::Dns1035Label);
        assert_eq!(name_rule_for("", "pods"), NameRule::Dns1123Subdomain);
        assert_eq!(
            name_rule_for("apps", "statefulsets"),
            NameRule::Dns1123Label
        );
        assert_eq!(
            name_rule_for("rbac.authorization.k8s.io", "clusterroles"),
            NameRule::PathSegment
        );
        assert_eq!(
            name_rule_for("example.com", "widgets"),
            NameRule::Dns1123Subdomain
        );
        assert_eq!(
            validate_name(NameRule::Dns1035Label, "1svc"),
            vec![DNS1035_MSG.to_string()]
        );
        assert!(validate_name(NameRule::PathSegment, "system:controller:foo").is_empty());
    }

    #[test]
    fn ip_names() {
        assert!(is_valid_ip("10.1.2.3").is_empty());
        assert!(is_valid_ip("2001:db8::1").is_empty());
        assert!(is_valid_ip("::").is_empty());
        assert_eq!(is_valid_ip("foo"), vec![INVALID_IP_MSG.to_string()]);
        assert_eq!(
            is_valid_ip("fe80::1%eth0"),
            vec![INVALID_IP_MSG.to_string()]
        );
        assert_eq!(
            is_valid_ip("010.1.2.3"),
            vec!["must not have leading 0s".to_string()]
        );
        assert_eq!(
            is_valid_ip("::ffff:1.2.3.4"),
            vec!["must not be an IPv4-mapped IPv6 address".to_string()]
        );
        assert_eq!(
            is_valid_ip("2001:DB8::1"),
            vec!["must be in canonical form (\"2001:db8::1\")".to_string()]
        );
        assert_eq!(
            is_valid_ip("2001:db8:0:0:1:0:0:1"),
            vec!["must be in canonical form (\"2001:db8::1:0:0:1\")".to_string()]
        );
        assert!(is_valid_ip("2001:db8:0:1:1:1:1:1").is_empty());
    }

    #[test]
    fn go_quoting() {
        assert_eq!(
            go_quote("a\"b\\c\n\u{1}é\u{200b}"),
            "\"a\\\"b\\\\c\\n\\x01é\\u200b\""
        );
    }

    #[test]
    fn special_rules() {
        assert_eq!(
            validate_storage_version_name("apps"),
            vec!["name must be in the form of <group>.<resource>".to_string()]
        );
        assert!(validate_storage_version_name("apps.deployments").is_empty());
        assert_eq!(
            validate_storage_version_name("apps.1d"),
            vec![format!("the resource segment {DNS1035_MSG}")]
        );
        assert!(
            validate_cluster_trust_bundle_name("example.com/foo", "example.com:foo:bar", false)
                .is_empty()
        );
        assert_eq!(
            validate_cluster_trust_bundle_name("example.com/foo", "bar", false),
            vec!["ClusterTrustBundle for signerName example.com/foo must be named with prefix example.com:foo:".to_string()]
        );
        assert_eq!(
            validate_cluster_trust_bundle_name("", "a:b", false),
            vec![
                "ClusterTrustBundle without signer name must not have \":\" in its name"
                    .to_string()
            ]
        );
        assert_eq!(
            validate_crd_name("foos.example.com", "bars", "example.com", false),
            vec!["must be spec.names.plural+\".\"+spec.group".to_string()]
        );
        assert_eq!(
            validate_api_service_name("v1.foo", "v1", "bar"),
            vec!["must be `spec.version+\".\"+spec.group`: \"v1.bar\"".to_string()]
        );
        assert_eq!(
            cronjob_name_length_error(&"a".repeat(53)).as_deref(),
            Some("must be no more than 52 characters")
        );
        assert!(cronjob_name_length_error(&"a".repeat(52)).is_none());
    }
}
