//! A container's environment as upstream's kubelet builds it
//! (`makeEnvironmentVariables`), and the downward API's values, which
//! environment variables and downward API volume files share.
//!
//! Resolution order, upstream's:
//! 1. `envFrom` sources in order, each key with the source's prefix; later
//!    sources override earlier ones;
//! 2. `env` in order, overriding `envFrom`: a `value` has its `$(VAR)`
//!    references expanded against the variables defined so far and then the
//!    service variables; a `valueFrom` is read (pod field, container
//!    resource, ConfigMap or Secret key);
//! 3. the service variables (`<SVC>_SERVICE_HOST`, `_PORT`, Docker links) of
//!    the pod's namespace (with `enableServiceLinks`) and of
//!    `default/kubernetes`, each unless a variable of that name is set.
//!
//! A missing required object or key is an [`Error`] whose text is the
//! container's `CreateContainerConfigError` message, worded as upstream's.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvVarSource, Node, Pod, ResourceFieldSelector, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, ListParams};

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// Worded as upstream's watch-based object cache words it.
    #[error("{kind} \"{name}\" not found")]
    NotFound { kind: &'static str, name: String },
    #[error("couldn't find key {key} in {kind} {namespace}/{name}")]
    MissingKey {
        kind: &'static str,
        key: String,
        namespace: String,
        name: String,
    },
    #[error("unsupported fieldPath: {0}")]
    FieldPath(String),
    #[error("unsupported container resource : {0}")]
    Resource(String),
    #[error("container {0} not found")]
    Container(String),
    #[error("{0}")]
    Kube(#[from] kube::Error),
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// What a container's variables come from besides its pod.
pub(crate) struct Inputs<'a> {
    pub(crate) client: &'a kube::Client,
    pub(crate) node_name: &'a str,
    pub(crate) host_ips: &'a [String],
    pub(crate) pod_ips: &'a [String],
}

/// The container's environment, in the order its variables were first
/// defined.
pub(crate) async fn resolve(
    inputs: &Inputs<'_>,
    pod: &Pod,
    c: &Container,
) -> Result<Vec<(String, String)>> {
    let ns = namespace(pod);
    let links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let services = service_env(inputs.client, ns, links).await?;
    let mut objects = Objects::new(inputs.client, ns);
    let mut env = Ordered::default();
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or("");
        if let Some(r) = &from.config_map_ref {
            match objects.config_map(&r.name).await? {
                Some(cm) => {
                    for (k, v) in cm.data.iter().flatten() {
                        env.set(format!("{prefix}{k}"), v.clone());
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(not_found("configmap", &r.name)),
            }
        } else if let Some(r) = &from.secret_ref {
            match objects.secret(&r.name).await? {
                Some(s) => {
                    for (k, v) in s.data.iter().flatten() {
                        env.set(
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).into_owned(),
                        );
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(not_found("secret", &r.name)),
            }
        }
    }
    let mut allocatable = None;
    for e in c.env.iter().flatten() {
        let value = match (e.value.as_deref(), &e.value_from) {
            (Some(v), _) if !v.is_empty() => expand(v, |name| {
                env.get(name)
                    .or_else(|| services.get(name).map(String::as_str))
                    .map(str::to_string)
            }),
            (_, Some(from)) => {
                let read = value_from(inputs, pod, c, from, &mut objects, &mut allocatable);
                match read.await? {
                    Some(v) => v,
                    // An optional source that is absent defines nothing.
                    None => continue,
                }
            }
            _ => String::new(),
        };
        env.set(e.name.clone(), value);
    }
    for (k, v) in services {
        if env.get(&k).is_none() {
            env.set(k, v);
        }
    }
    Ok(env.vars)
}

/// The value of one `valueFrom`; `None` for an absent optional source.
async fn value_from(
    inputs: &Inputs<'_>,
    pod: &Pod,
    c: &Container,
    from: &EnvVarSource,
    objects: &mut Objects<'_>,
    allocatable: &mut Option<BTreeMap<String, Quantity>>,
) -> Result<Option<String>> {
    let ns = namespace(pod);
    if let Some(f) = &from.field_ref {
        return field_value(pod, &f.field_path, inputs.host_ips, inputs.pod_ips).map(Some);
    }
    if let Some(r) = &from.resource_field_ref {
        if allocatable.is_none() {
            *allocatable = Some(node_allocatable(inputs.client, inputs.node_name).await?);
        }
        let alloc = allocatable
            .as_ref()
            .map_or_else(BTreeMap::new, Clone::clone);
        return resource_value(r, c, &alloc).map(Some);
    }
    if let Some(k) = &from.config_map_key_ref {
        let optional = k.optional == Some(true);
        let Some(cm) = objects.config_map(&k.name).await? else {
            return if optional {
                Ok(None)
            } else {
                Err(not_found("configmap", &k.name))
            };
        };
        return match cm.data.as_ref().and_then(|d| d.get(&k.key)) {
            Some(v) => Ok(Some(v.clone())),
            None if optional => Ok(None),
            None => Err(Error::MissingKey {
                kind: "ConfigMap",
                key: k.key.clone(),
                namespace: ns.into(),
                name: k.name.clone(),
            }),
        };
    }
    if let Some(k) = &from.secret_key_ref {
        let optional = k.optional == Some(true);
        let Some(s) = objects.secret(&k.name).await? else {
            return if optional {
                Ok(None)
            } else {
                Err(not_found("secret", &k.name))
            };
        };
        return match s.data.as_ref().and_then(|d| d.get(&k.key)) {
            Some(v) => Ok(Some(String::from_utf8_lossy(&v.0).into_owned())),
            None if optional => Ok(None),
            None => Err(Error::MissingKey {
                kind: "Secret",
                key: k.key.clone(),
                namespace: ns.into(),
                name: k.name.clone(),
            }),
        };
    }
    // fileKeyRef is behind a feature gate upstream leaves off.
    Ok(Some(String::new()))
}

fn not_found(kind: &'static str, name: &str) -> Error {
    Error::NotFound {
        kind,
        name: name.into(),
    }
}

pub(crate) fn namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("default")
}

/// Variables in the order they were first set; a later set overrides the
/// value in place.
#[derive(Default)]
struct Ordered {
    vars: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl Ordered {
    fn set(&mut self, key: String, value: String) {
        match self.index.get(&key) {
            Some(&i) => self.vars[i].1 = value,
            None => {
                self.index.insert(key.clone(), self.vars.len());
                self.vars.push((key, value));
            }
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.index.get(key).map(|&i| self.vars[i].1.as_str())
    }
}

/// The ConfigMaps and Secrets of one namespace, each read once.
pub(crate) struct Objects<'a> {
    client: &'a kube::Client,
    namespace: &'a str,
    config_maps: HashMap<String, Option<ConfigMap>>,
    secrets: HashMap<String, Option<Secret>>,
}

impl<'a> Objects<'a> {
    pub(crate) fn new(client: &'a kube::Client, namespace: &'a str) -> Self {
        Self {
            client,
            namespace,
            config_maps: HashMap::new(),
            secrets: HashMap::new(),
        }
    }

    /// The ConfigMap, `None` when it does not exist.
    pub(crate) async fn config_map(&mut self, name: &str) -> Result<Option<&ConfigMap>> {
        if !self.config_maps.contains_key(name) {
            let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), self.namespace);
            let cm = api.get_opt(name).await?;
            self.config_maps.insert(name.into(), cm);
        }
        Ok(self.config_maps.get(name).and_then(Option::as_ref))
    }

    /// The Secret, `None` when it does not exist.
    pub(crate) async fn secret(&mut self, name: &str) -> Result<Option<&Secret>> {
        if !self.secrets.contains_key(name) {
            let api: Api<Secret> = Api::namespaced(self.client.clone(), self.namespace);
            let s = api.get_opt(name).await?;
            self.secrets.insert(name.into(), s);
        }
        Ok(self.secrets.get(name).and_then(Option::as_ref))
    }
}

/// The node's allocatable resources: container limits the downward API
/// reports default to them.
pub(crate) async fn node_allocatable(
    client: &kube::Client,
    node: &str,
) -> Result<BTreeMap<String, Quantity>> {
    let api: Api<Node> = Api::all(client.clone());
    Ok(api
        .get(node)
        .await?
        .status
        .and_then(|s| s.allocatable)
        .unwrap_or_default())
}

/// The service variables a pod in `ns` sees: its namespace's services when
/// `links`, and always `kubernetes` of `default` unless `ns` has its own.
async fn service_env(
    client: &kube::Client,
    ns: &str,
    links: bool,
) -> Result<BTreeMap<String, String>> {
    let mut services: BTreeMap<String, Service> = BTreeMap::new();
    if links {
        let api: Api<Service> = Api::namespaced(client.clone(), ns);
        for s in api.list(&ListParams::default()).await?.items {
            if let Some(name) = s.metadata.name.clone() {
                services.insert(name, s);
            }
        }
    }
    if !services.contains_key("kubernetes") {
        let api: Api<Service> = Api::namespaced(client.clone(), "default");
        if let Some(s) = api.get_opt("kubernetes").await? {
            services.insert("kubernetes".into(), s);
        }
    }
    let mut vars = BTreeMap::new();
    for s in services.values() {
        service_vars(s, &mut vars);
    }
    Ok(vars)
}

/// One service's variables; none for headless and ExternalName services.
fn service_vars(s: &Service, vars: &mut BTreeMap<String, String>) {
    let spec = s.spec.clone().unwrap_or_default();
    let ip = spec.cluster_ip.unwrap_or_default();
    if ip.is_empty() || ip == "None" {
        return;
    }
    let prefix = s
        .metadata
        .name
        .as_deref()
        .unwrap_or("")
        .replace('-', "_")
        .to_uppercase();
    vars.insert(format!("{prefix}_SERVICE_HOST"), ip.clone());
    let ports = spec.ports.unwrap_or_default();
    let Some(first) = ports.first() else {
        return;
    };
    vars.insert(format!("{prefix}_SERVICE_PORT"), first.port.to_string());
    for p in &ports {
        if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
            let name = name.replace('-', "_").to_uppercase();
            vars.insert(format!("{prefix}_SERVICE_PORT_{name}"), p.port.to_string());
        }
    }
    // Docker links; an IPv6 address is bracketed in URLs.
    let host = if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.clone()
    };
    for (i, p) in ports.iter().enumerate() {
        let proto = p.protocol.as_deref().unwrap_or("TCP");
        let lower = proto.to_lowercase();
        let url = format!("{lower}://{host}:{}", p.port);
        if i == 0 {
            vars.insert(format!("{prefix}_PORT"), url.clone());
        }
        let pp = format!("{prefix}_PORT_{}_{}", p.port, proto.to_uppercase());
        vars.insert(format!("{pp}_PROTO"), lower);
        vars.insert(format!("{pp}_PORT"), p.port.to_string());
        vars.insert(format!("{pp}_ADDR"), ip.clone());
        vars.insert(pp, url);
    }
}

/// `$(VAR)` references replaced by `lookup`'s values, as upstream's
/// `expansion.Expand`: `$$` is a literal `$`, an unknown or unterminated
/// reference stays as written, any other `$` is kept.
pub(crate) fn expand(s: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        if let Some(after) = tail.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(inner) = tail.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match lookup(name) {
                Some(v) => out.push_str(&v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// A pod field as the downward API reports it (upstream's
/// `podFieldSelectorRuntimeValue` and `ExtractFieldPathAsString`).
pub(crate) fn field_value(
    pod: &Pod,
    path: &str,
    host_ips: &[String],
    pod_ips: &[String],
) -> Result<String> {
    let spec = pod.spec.as_ref();
    let m = &pod.metadata;
    let labels = m.labels.clone().unwrap_or_default();
    let annotations = m.annotations.clone().unwrap_or_default();
    Ok(match path {
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" => host_ips.first().cloned().unwrap_or_default(),
        "status.hostIPs" => host_ips.join(","),
        "status.podIP" => pod_ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => pod_ips.join(","),
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(&labels),
        "metadata.annotations" => format_map(&annotations),
        _ => match subscript(path) {
            Some(("metadata.labels", key)) => labels.get(key).cloned().unwrap_or_default(),
            Some(("metadata.annotations", key)) => {
                annotations.get(key).cloned().unwrap_or_default()
            }
            _ => return Err(Error::FieldPath(path.into())),
        },
    })
}

/// `path['key']` split into `path` and `key`.
fn subscript(path: &str) -> Option<(&str, &str)> {
    let (base, key) = path.strip_suffix("']")?.split_once("['")?;
    (!base.is_empty()).then_some((base, key))
}

/// `key="value"` lines in key order, the values quoted as Go's `%q` does.
fn format_map(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A container resource as the downward API reports it (upstream's
/// `ExtractContainerResourceValue`): rounded up in units of the divisor,
/// limits defaulting to the node's allocatable.
pub(crate) fn resource_value(
    sel: &ResourceFieldSelector,
    c: &Container,
    allocatable: &BTreeMap<String, Quantity>,
) -> Result<String> {
    let unsupported = || Error::Resource(sel.resource.clone());
    let divisor = sel
        .divisor
        .as_ref()
        .and_then(|q| Amount::parse(&q.0))
        .filter(|d| !d.is_zero())
        .unwrap_or(Amount::ONE);
    let (kind, name) = sel.resource.split_once('.').ok_or_else(unsupported)?;
    let resources = c.resources.as_ref();
    let set = match kind {
        "limits" => resources.and_then(|r| r.limits.as_ref()),
        "requests" => resources.and_then(|r| r.requests.as_ref()),
        _ => return Err(unsupported()),
    };
    let mut q = set.and_then(|m| m.get(name)).cloned();
    if kind == "limits" && q.is_none() && matches!(name, "cpu" | "memory" | "ephemeral-storage") {
        q = allocatable.get(name).cloned();
    }
    let amount = q
        .as_ref()
        .and_then(|q| Amount::parse(&q.0))
        .unwrap_or(Amount::ZERO);
    let value = match name {
        "cpu" => ceil_div(amount.milli(), divisor.milli()),
        "memory" | "ephemeral-storage" => ceil_div(amount.value(), divisor.value()),
        n if n.starts_with("hugepages-") => ceil_div(amount.value(), divisor.value()),
        _ => return Err(unsupported()),
    };
    Ok(value.to_string())
}

fn ceil_div(a: i128, b: i128) -> i128 {
    if b <= 0 {
        return 0;
    }
    if a >= 0 { (a + b - 1) / b } else { a / b }
}

/// A resource quantity (`1500m`, `64Mi`, `1e3`) as `mantissa × 10^exp10 ×
/// 2^exp2`, exact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Amount {
    mantissa: i128,
    exp10: i32,
    exp2: u32,
}

impl Amount {
    const ONE: Amount = Amount {
        mantissa: 1,
        exp10: 0,
        exp2: 0,
    };
    const ZERO: Amount = Amount {
        mantissa: 0,
        exp10: 0,
        exp2: 0,
    };

    pub(crate) fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
            .unwrap_or(s.len());
        let (number, suffix) = s.split_at(end);
        let (negative, digits) = match number.as_bytes().first() {
            Some(b'-') => (true, &number[1..]),
            Some(b'+') => (false, &number[1..]),
            _ => (false, number),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() && frac.is_empty() {
            return None;
        }
        if !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let mut mantissa: i128 = 0;
        for b in whole.bytes().chain(frac.bytes()) {
            mantissa = mantissa
                .checked_mul(10)?
                .checked_add(i128::from(b - b'0'))?;
        }
        if negative {
            mantissa = -mantissa;
        }
        let mut exp10 = -i32::try_from(frac.len()).ok()?;
        let mut exp2 = 0;
        match suffix {
            "" => {}
            "n" => exp10 -= 9,
            "u" => exp10 -= 6,
            "m" => exp10 -= 3,
            "k" => exp10 += 3,
            "M" => exp10 += 6,
            "G" => exp10 += 9,
            "T" => exp10 += 12,
            "P" => exp10 += 15,
            "E" => exp10 += 18,
            "Ki" => exp2 = 10,
            "Mi" => exp2 = 20,
            "Gi" => exp2 = 30,
            "Ti" => exp2 = 40,
            "Pi" => exp2 = 50,
            "Ei" => exp2 = 60,
            s if s.starts_with(['e', 'E']) => exp10 += s[1..].parse::<i32>().ok()?,
            _ => return None,
        }
        Some(Self {
            mantissa,
            exp10,
            exp2,
        })
    }

    fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// The amount rounded up to an integer (upstream's `Value()`).
    pub(crate) fn value(&self) -> i128 {
        self.scaled(0)
    }

    /// The amount in thousandths, rounded up (upstream's `MilliValue()`).
    pub(crate) fn milli(&self) -> i128 {
        self.scaled(3)
    }

    fn scaled(&self, extra10: i32) -> i128 {
        let sat = |v: Option<i128>| {
            v.unwrap_or(if self.mantissa < 0 {
                i128::MIN
            } else {
                i128::MAX
            })
        };
        let base = sat(1i128
            .checked_shl(self.exp2)
            .and_then(|m| self.mantissa.checked_mul(m)));
        let e = self.exp10 + extra10;
        if e >= 0 {
            sat(10i128
                .checked_pow(e.unsigned_abs())
                .and_then(|p| base.checked_mul(p)))
        } else {
            match 10i128.checked_pow(e.unsigned_abs()) {
                Some(p) => ceil_div(base, p),
                None => i128::from(base > 0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements, ServicePort, ServiceSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn expands_variables() {
        let vars = HashMap::from([("A".to_string(), "x".to_string())]);
        let lookup = |k: &str| vars.get(k).cloned();
        assert_eq!(expand("$(A)-$(B)", lookup), "x-$(B)");
        assert_eq!(expand("$$(A) $ a$", lookup), "$(A) $ a$");
        assert_eq!(expand("$(A", lookup), "$(A");
        assert_eq!(expand("$()", lookup), "$()");
    }

    #[test]
    fn quantities() {
        let v = |s: &str| Amount::parse(s).map(|a| a.value());
        let m = |s: &str| Amount::parse(s).map(|a| a.milli());
        assert_eq!(v("64Mi"), Some(64 << 20));
        assert_eq!(v("1.5Gi"), Some(3 << 29));
        assert_eq!(v("1e3"), Some(1000));
        assert_eq!(v("1k"), Some(1000));
        assert_eq!(v("250m"), Some(1));
        assert_eq!(m("250m"), Some(250));
        assert_eq!(m("2"), Some(2000));
        assert_eq!(m("0.5"), Some(500));
        assert_eq!(m("1n"), Some(1));
        assert_eq!(v("x"), None);
        assert_eq!(v("1Zi"), None);
    }

    fn container(limits: &[(&str, &str)], requests: &[(&str, &str)]) -> Container {
        let map = |l: &[(&str, &str)]| {
            Some(
                l.iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                    .collect(),
            )
        };
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                limits: map(limits),
                requests: map(requests),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn sel(resource: &str, divisor: Option<&str>) -> ResourceFieldSelector {
        ResourceFieldSelector {
            resource: resource.into(),
            divisor: divisor.map(|d| Quantity(d.into())),
            container_name: None,
        }
    }

    #[test]
    fn resources_round_up_in_divisor_units() {
        let c = container(&[("cpu", "1250m"), ("memory", "64Mi")], &[("cpu", "250m")]);
        let alloc = BTreeMap::from([
            ("cpu".to_string(), Quantity("4".into())),
            ("ephemeral-storage".to_string(), Quantity("1Gi".into())),
        ]);
        let r = |s: ResourceFieldSelector| resource_value(&s, &c, &alloc).unwrap();
        assert_eq!(r(sel("limits.cpu", None)), "2");
        assert_eq!(r(sel("limits.cpu", Some("1m"))), "1250");
        assert_eq!(r(sel("requests.cpu", Some("1m"))), "250");
        assert_eq!(r(sel("limits.memory", Some("1Mi"))), "64");
        assert_eq!(r(sel("limits.memory", None)), (64 << 20).to_string());
        assert_eq!(r(sel("limits.ephemeral-storage", Some("1Mi"))), "1024");
        assert_eq!(r(sel("requests.memory", None)), "0");
        assert!(resource_value(&sel("limits.gpu", None), &c, &alloc).is_err());
    }

    #[test]
    fn fields() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                uid: Some("u".into()),
                labels: Some(BTreeMap::from([
                    ("b".to_string(), "two\"".to_string()),
                    ("a".to_string(), "one".to_string()),
                ])),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("n1".into()),
                ..Default::default()
            }),
            status: None,
        };
        let f = |p: &str| field_value(&pod, p, &["10.0.0.1".into()], &["10.244.0.5".into()]);
        assert_eq!(f("metadata.name").unwrap(), "p");
        assert_eq!(f("metadata.labels").unwrap(), "a=\"one\"\nb=\"two\\\"\"");
        assert_eq!(f("metadata.labels['a']").unwrap(), "one");
        assert_eq!(f("metadata.annotations['x']").unwrap(), "");
        assert_eq!(f("spec.nodeName").unwrap(), "n1");
        assert_eq!(f("status.podIP").unwrap(), "10.244.0.5");
        assert_eq!(f("status.hostIPs").unwrap(), "10.0.0.1");
        assert_eq!(
            f("metadata.generation").unwrap_err().to_string(),
            "unsupported fieldPath: metadata.generation"
        );
    }

    #[test]
    fn service_variables_as_upstream() {
        let svc = Service {
            metadata: ObjectMeta {
                name: Some("my-svc".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some("10.96.0.20".into()),
                ports: Some(vec![
                    ServicePort {
                        port: 80,
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    },
                    ServicePort {
                        name: Some("dns-udp".into()),
                        port: 53,
                        protocol: Some("UDP".into()),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            status: None,
        };
        let mut vars = BTreeMap::new();
        service_vars(&svc, &mut vars);
        let get = |k: &str| vars.get(k).map(String::as_str);
        assert_eq!(get("MY_SVC_SERVICE_HOST"), Some("10.96.0.20"));
        assert_eq!(get("MY_SVC_SERVICE_PORT"), Some("80"));
        assert_eq!(get("MY_SVC_SERVICE_PORT_DNS_UDP"), Some("53"));
        assert_eq!(get("MY_SVC_PORT"), Some("tcp://10.96.0.20:80"));
        assert_eq!(get("MY_SVC_PORT_80_TCP"), Some("tcp://10.96.0.20:80"));
        assert_eq!(get("MY_SVC_PORT_53_UDP_PROTO"), Some("udp"));
        assert_eq!(get("MY_SVC_PORT_53_UDP_PORT"), Some("53"));
        assert_eq!(get("MY_SVC_PORT_53_UDP_ADDR"), Some("10.96.0.20"));
        assert_eq!(vars.len(), 12);

        let mut headless = svc.clone();
        if let Some(s) = headless.spec.as_mut() {
            s.cluster_ip = Some("None".into());
        }
        let mut none = BTreeMap::new();
        service_vars(&headless, &mut none);
        assert!(none.is_empty());
    }
}
