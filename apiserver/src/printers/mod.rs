//! Server-side table printers (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`).
//!
//! Mirrors kube-apiserver v1.34's `pkg/printers/internalversion` handlers: the
//! column definitions of each built-in resource and the cells of one row,
//! computed from the object's JSON. Resources without a dedicated printer get
//! the generic `Name` / `Created At` table of `k8s.io/apiserver`'s default
//! table convertor.
//!
//! kube-apiserver always generates tables with `Wide: true`, so [`cells`]
//! returns a value for every column, including the `priority > 0` ones that
//! kubectl only shows with `-o wide`.

mod apps;
mod cluster;
mod core;
mod docs;
mod networking;
mod pods;
pub(crate) mod quantity;
mod storage;
mod util;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// One `metav1.TableColumnDefinition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnDef {
    /// Column name as upstream spells it (kubectl upper-cases it), e.g. `"Nominated Node"`.
    pub name: &'static str,
    /// OpenAPI type: `"string"`, `"integer"`, `"boolean"`, `"date"`, ...
    pub type_: &'static str,
    /// `"name"` for the column holding the object name, `""` otherwise.
    pub format: &'static str,
    /// Human readable description (upstream uses the API field documentation).
    pub description: &'static str,
    /// `0` for default columns, `1` for those kubectl shows only with `-o wide`.
    pub priority: i32,
}

/// A column shown by default.
const fn col(name: &'static str, type_: &'static str, description: &'static str) -> ColumnDef {
    ColumnDef {
        name,
        type_,
        format: "",
        description,
        priority: 0,
    }
}

/// A `-o wide` (priority 1) column.
const fn wide(name: &'static str, type_: &'static str, description: &'static str) -> ColumnDef {
    ColumnDef {
        name,
        type_,
        format: "",
        description,
        priority: 1,
    }
}

/// The `Name` column most printers start with.
const NAME: ColumnDef = ColumnDef {
    name: "Name",
    type_: "string",
    format: "name",
    description: docs::META_NAME,
    priority: 0,
};

/// The `Age` column.
const AGE: ColumnDef = col("Age", "string", docs::META_CREATION_TIMESTAMP);

const CONTAINERS_DESC: &str = "Names of each container in the template.";
const IMAGES_DESC: &str = "Images referenced by each container in the template.";

/// Everything a row function needs besides the object.
struct Ctx<'a> {
    /// API group of the request (printers shared between groups, like events,
    /// use it to pick the object's JSON shape).
    group: &'a str,
    now: DateTime<Utc>,
}

/// A resource's table printer.
struct Printer {
    columns: &'static [ColumnDef],
    cells: fn(&Value, &Ctx<'_>) -> Vec<Value>,
}

/// Resources with a dedicated printer, by `(group, plural resource)`.
static PRINTERS: &[(&str, &str, &Printer)] = &[
    // core
    ("", "pods", &pods::PODS),
    ("", "podtemplates", &core::POD_TEMPLATES),
    ("", "replicationcontrollers", &core::REPLICATION_CONTROLLERS),
    ("", "services", &core::SERVICES),
    ("", "endpoints", &core::ENDPOINTS),
    ("", "nodes", &core::NODES),
    ("", "events", &core::EVENTS),
    ("events.k8s.io", "events", &core::EVENTS),
    ("", "namespaces", &core::NAMESPACES),
    ("", "secrets", &core::SECRETS),
    ("", "serviceaccounts", &core::SERVICE_ACCOUNTS),
    ("", "persistentvolumes", &core::PERSISTENT_VOLUMES),
    (
        "",
        "persistentvolumeclaims",
        &core::PERSISTENT_VOLUME_CLAIMS,
    ),
    ("", "componentstatuses", &core::COMPONENT_STATUSES),
    ("", "configmaps", &core::CONFIG_MAPS),
    ("", "resourcequotas", &core::RESOURCE_QUOTAS),
    // apps, batch, autoscaling, policy
    ("apps", "deployments", &apps::DEPLOYMENTS),
    ("apps", "replicasets", &apps::REPLICA_SETS),
    ("apps", "statefulsets", &apps::STATEFUL_SETS),
    ("apps", "daemonsets", &apps::DAEMON_SETS),
    ("apps", "controllerrevisions", &apps::CONTROLLER_REVISIONS),
    ("batch", "jobs", &apps::JOBS),
    ("batch", "cronjobs", &apps::CRON_JOBS),
    ("autoscaling", "horizontalpodautoscalers", &apps::HPAS),
    ("policy", "poddisruptionbudgets", &apps::PDBS),
    // networking, discovery
    ("networking.k8s.io", "ingresses", &networking::INGRESSES),
    (
        "networking.k8s.io",
        "ingressclasses",
        &networking::INGRESS_CLASSES,
    ),
    (
        "networking.k8s.io",
        "networkpolicies",
        &networking::NETWORK_POLICIES,
    ),
    (
        "networking.k8s.io",
        "servicecidrs",
        &networking::SERVICE_CIDRS,
    ),
    (
        "networking.k8s.io",
        "ipaddresses",
        &networking::IP_ADDRESSES,
    ),
    (
        "discovery.k8s.io",
        "endpointslices",
        &networking::ENDPOINT_SLICES,
    ),
    // storage
    (
        "storage.k8s.io",
        "storageclasses",
        &storage::STORAGE_CLASSES,
    ),
    (
        "storage.k8s.io",
        "volumeattributesclasses",
        &storage::VOLUME_ATTRIBUTES_CLASSES,
    ),
    (
        "storage.k8s.io",
        "volumeattachments",
        &storage::VOLUME_ATTACHMENTS,
    ),
    ("storage.k8s.io", "csinodes", &storage::CSI_NODES),
    ("storage.k8s.io", "csidrivers", &storage::CSI_DRIVERS),
    (
        "storage.k8s.io",
        "csistoragecapacities",
        &storage::CSI_STORAGE_CAPACITIES,
    ),
    // cluster-level APIs
    (
        "rbac.authorization.k8s.io",
        "rolebindings",
        &cluster::ROLE_BINDINGS,
    ),
    (
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        &cluster::CLUSTER_ROLE_BINDINGS,
    ),
    (
        "certificates.k8s.io",
        "certificatesigningrequests",
        &cluster::CSRS,
    ),
    ("coordination.k8s.io", "leases", &cluster::LEASES),
    (
        "scheduling.k8s.io",
        "priorityclasses",
        &cluster::PRIORITY_CLASSES,
    ),
    ("node.k8s.io", "runtimeclasses", &cluster::RUNTIME_CLASSES),
    (
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        &cluster::WEBHOOK_CONFIGURATIONS,
    ),
    (
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
        &cluster::WEBHOOK_CONFIGURATIONS,
    ),
    (
        "admissionregistration.k8s.io",
        "validatingadmissionpolicies",
        &cluster::VALIDATING_ADMISSION_POLICIES,
    ),
    (
        "admissionregistration.k8s.io",
        "validatingadmissionpolicybindings",
        &cluster::ADMISSION_POLICY_BINDINGS,
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        "flowschemas",
        &cluster::FLOW_SCHEMAS,
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        "prioritylevelconfigurations",
        &cluster::PRIORITY_LEVELS,
    ),
    ("resource.k8s.io", "deviceclasses", &cluster::DEVICE_CLASSES),
    (
        "resource.k8s.io",
        "resourceclaims",
        &cluster::RESOURCE_CLAIMS,
    ),
    (
        "resource.k8s.io",
        "resourceclaimtemplates",
        &cluster::RESOURCE_CLAIM_TEMPLATES,
    ),
    (
        "resource.k8s.io",
        "resourceslices",
        &cluster::RESOURCE_SLICES,
    ),
];

fn lookup(group: &str, resource: &str) -> Option<&'static Printer> {
    PRINTERS
        .iter()
        .find(|(g, r, _)| *g == group && *r == resource)
        .map(|(_, _, p)| *p)
}

/// Columns of `k8s.io/apiserver`'s default table convertor.
static DEFAULT_COLUMNS: &[ColumnDef] = &[
    NAME,
    col("Created At", "date", docs::META_CREATION_TIMESTAMP),
];

/// Whether `(group, resource)` has a dedicated printer (otherwise the default
/// `Name` / `Created At` table is used).
pub fn has_printer(group: &str, resource: &str) -> bool {
    lookup(group, resource).is_some()
}

/// Columns for a resource (group `""` for core, resource = plural, e.g.
/// `"pods"`). Unknown resources get upstream's default `Name` / `Created At`.
pub fn columns(group: &str, resource: &str) -> &'static [ColumnDef] {
    lookup(group, resource).map_or(DEFAULT_COLUMNS, |p| p.columns)
}

/// Cells of one row for one object, in column order (wide columns included).
pub fn cells(group: &str, resource: &str, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ctx = Ctx { group, now };
    match lookup(group, resource) {
        Some(p) => (p.cells)(obj, &ctx),
        None => default_cells(obj),
    }
}

/// The row's `conditions` (upstream sets them only for pods that have
/// completed: `Succeeded` or `Failed`), or `None` when the row has none.
pub fn row_conditions(group: &str, resource: &str, obj: &Value) -> Option<Value> {
    if group.is_empty() && resource == "pods" {
        pods::pod_row_conditions(obj)
    } else {
        None
    }
}

fn default_cells(obj: &Value) -> Vec<Value> {
    let created = util::time_at(obj, &["metadata", "creationTimestamp"]).map_or_else(
        || "0001-01-01T00:00:00Z".to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    vec![util::s(util::name(obj)), util::s(created)]
}

/// `k8s.io/apimachinery/pkg/util/duration.HumanDuration`: a succinct
/// representation with ~2-3 significant figures ("0s", "5m2s", "3h", "2d5h", "3y45d").
pub fn human_duration(d: chrono::Duration) -> String {
    // Go's time.Duration is int64 nanoseconds; durations beyond that saturate.
    let nanos = d
        .num_nanoseconds()
        .unwrap_or(if d < chrono::Duration::zero() {
            i64::MIN
        } else {
            i64::MAX
        });
    let seconds = nanos / 1_000_000_000;
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = nanos / 60_000_000_000;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = nanos / 3_600_000_000_000;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{h}h", hours / 24);
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{dy}d", hours / 24 / 365);
    }
    format!("{}y", hours / 24 / 365)
}

/// Fixed clock and row helpers shared by the printers' tests.
#[cfg(test)]
pub(crate) mod test_support {
    use chrono::{DateTime, Duration, Utc};
    use serde_json::Value;

    /// The tests' "now".
    pub(crate) fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-06-01T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .expect("valid time")
    }

    /// An RFC 3339 timestamp `d` before [`now`].
    pub(crate) fn ago(d: Duration) -> String {
        (now() - d).format("%Y-%m-%dT%H:%M:%SZ").to_string()
    }

    /// The cells of `obj` at [`now`].
    pub(crate) fn row(group: &str, resource: &str, obj: &Value) -> Vec<Value> {
        super::cells(group, resource, obj, now())
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use serde_json::{Value, json};

    use super::test_support::now;
    use super::*;

    #[test]
    fn human_duration_matches_upstream() {
        let cases: &[(Duration, &str)] = &[
            (Duration::seconds(-3), "<invalid>"),
            (Duration::milliseconds(-1999), "0s"),
            (Duration::milliseconds(-1), "0s"),
            (Duration::zero(), "0s"),
            (Duration::milliseconds(999), "0s"),
            (Duration::seconds(1), "1s"),
            (Duration::seconds(119), "119s"),
            (Duration::seconds(120), "2m"),
            (Duration::seconds(302), "5m2s"),
            (Duration::seconds(599), "9m59s"),
            (Duration::minutes(10), "10m"),
            (Duration::minutes(179), "179m"),
            (Duration::minutes(180), "3h"),
            (Duration::minutes(181), "3h1m"),
            (Duration::hours(7) + Duration::minutes(59), "7h59m"),
            (Duration::hours(8), "8h"),
            (Duration::hours(47) + Duration::minutes(59), "47h"),
            (Duration::hours(48), "2d"),
            (Duration::hours(53), "2d5h"),
            (Duration::hours(24 * 8 - 1), "7d23h"),
            (Duration::days(8), "8d"),
            (Duration::days(729), "729d"),
            (Duration::days(730), "2y"),
            (Duration::days(365 * 3 + 45), "3y45d"),
            (Duration::days(365 * 8), "8y"),
            (Duration::days(365 * 100), "100y"),
            (Duration::MAX, "292y"),
            (Duration::MIN, "<invalid>"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(*d), *want, "{d:?}");
        }
    }

    #[test]
    fn default_table_for_unknown_resources() {
        for (group, resource) in [
            ("rbac.authorization.k8s.io", "roles"),
            ("rbac.authorization.k8s.io", "clusterroles"),
            ("", "limitranges"),
            ("apiextensions.k8s.io", "customresourcedefinitions"),
            ("example.com", "widgets"),
        ] {
            assert!(!has_printer(group, resource));
            let cols = columns(group, resource);
            assert_eq!(cols.len(), 2);
            assert_eq!(
                (cols[0].name, cols[0].type_, cols[0].format),
                ("Name", "string", "name")
            );
            assert_eq!(
                (cols[1].name, cols[1].type_, cols[1].format),
                ("Created At", "date", "")
            );
            assert!(
                cols[0]
                    .description
                    .starts_with("Name must be unique within a namespace.")
            );
            assert!(
                cols[1]
                    .description
                    .starts_with("CreationTimestamp is a timestamp")
            );
        }
        let obj =
            json!({"metadata": {"name": "admin", "creationTimestamp": "2024-02-29T08:09:10Z"}});
        assert_eq!(
            cells("", "limitranges", &obj, now()),
            vec![json!("admin"), json!("2024-02-29T08:09:10Z")]
        );
        assert_eq!(
            cells("", "limitranges", &json!(null), now()),
            vec![json!(""), json!("0001-01-01T00:00:00Z")]
        );
    }

    #[test]
    fn column_layouts() {
        let layout = |g: &str, r: &str| -> Vec<(&'static str, i32)> {
            columns(g, r).iter().map(|c| (c.name, c.priority)).collect()
        };
        assert_eq!(
            layout("", "pods"),
            vec![
                ("Name", 0),
                ("Ready", 0),
                ("Status", 0),
                ("Restarts", 0),
                ("Age", 0),
                ("IP", 1),
                ("Node", 1),
                ("Nominated Node", 1),
                ("Readiness Gates", 1)
            ]
        );
        assert_eq!(
            layout("batch", "jobs"),
            vec![
                ("Name", 0),
                ("Status", 0),
                ("Completions", 0),
                ("Duration", 0),
                ("Age", 0),
                ("Containers", 1),
                ("Images", 1),
                ("Selector", 1)
            ]
        );
        assert_eq!(
            layout("", "events"),
            vec![
                ("Last Seen", 0),
                ("Type", 0),
                ("Reason", 0),
                ("Object", 0),
                ("Subobject", 1),
                ("Source", 1),
                ("Message", 0),
                ("First Seen", 1),
                ("Count", 1),
                ("Name", 1)
            ]
        );
        assert_eq!(columns("events.k8s.io", "events"), columns("", "events"));
        assert_eq!(
            layout("", "serviceaccounts"),
            vec![("Name", 0), ("Secrets", 0), ("Age", 0)]
        );
        assert_eq!(columns("", "pods")[3].type_, "string");
        assert_eq!(columns("", "events")[9].format, "name");
        assert_eq!(columns("", "services")[1].description, docs::SVC_SPEC_TYPE);
    }

    fn every_printer() -> impl Iterator<Item = (&'static str, &'static str)> {
        PRINTERS.iter().map(|(g, r, _)| (*g, *r))
    }

    #[test]
    fn one_cell_per_column() {
        for (group, resource) in every_printer() {
            let got = cells(group, resource, &json!({}), now()).len();
            let want = columns(group, resource).len() + usize::from(resource == "ipaddresses");
            assert_eq!(got, want, "{group}/{resource}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let garbage = [
            json!(null),
            json!(42),
            json!("pod"),
            json!([1, 2, 3]),
            json!({"metadata": 7, "spec": "x", "status": [null]}),
            json!({"metadata": {"name": 5, "creationTimestamp": "yesterday", "deletionTimestamp": {},
                                "labels": [], "annotations": {"a": 1}, "ownerReferences": [{"controller": "yes"}]},
                   "spec": {"containers": [null, 1, {"name": 2}], "initContainers": {"x": 1}, "replicas": "3",
                            "selector": {"matchLabels": {"a": null}, "matchExpressions": [null, {"operator": 1}]},
                            "ports": [{"port": "80"}, null], "type": 9, "capacity": {"storage": "lots"},
                            "metrics": [{"type": "Resource"}, {"type": "External", "external": null}, {"type": "Pods"}],
                            "completions": -1, "parallelism": 99_999_999_999_i64, "claimRef": 3,
                            "template": {"spec": {"containers": {"a": 1}}}, "limited": {"limitResponse": {"queuing": 7}}},
                   "status": {"phase": ["Running"], "conditions": "none", "containerStatuses": [{"state": 1}, {"state": {"terminated": 5}}],
                              "initContainerStatuses": [{"state": {"waiting": {"reason": 3}}}], "hard": {"cpu": 1.5, "x": "1e400"},
                              "loadBalancer": {"ingress": "lb"}, "startTime": "2025-13-45T99:99:99Z", "active": 3}}),
        ];
        for (group, resource) in every_printer().chain([("", "unknown")]) {
            for obj in &garbage {
                let _ = cells(group, resource, obj, now());
                let _ = row_conditions(group, resource, obj);
            }
        }
    }

    #[test]
    fn row_conditions_only_for_finished_pods() {
        let failed = json!({"status": {"phase": "Failed"}});
        assert_eq!(
            row_conditions("", "pods", &failed),
            Some(
                json!([{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}])
            )
        );
        assert_eq!(
            row_conditions("", "pods", &json!({"status": {"phase": "Running"}})),
            None
        );
        assert_eq!(row_conditions("apps", "deployments", &failed), None);
    }

    #[test]
    fn future_timestamps() {
        let obj = json!({"metadata": {"name": "x", "creationTimestamp": "2025-06-01T12:00:01Z"}});
        assert_eq!(cells("", "configmaps", &obj, now())[2], json!("0s"));
        let obj = json!({"metadata": {"name": "x", "creationTimestamp": "2025-06-01T12:05:00Z"}});
        assert_eq!(cells("", "configmaps", &obj, now())[2], json!("<invalid>"));
        let obj: Value =
            json!({"metadata": {"name": "x", "creationTimestamp": "0001-01-01T00:00:00Z"}});
        assert_eq!(cells("", "configmaps", &obj, now())[2], json!("<unknown>"));
    }
}
