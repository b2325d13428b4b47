//! Printers for the core (`""`) API group (pods live in `pods.rs`).

use serde_json::Value;

use super::quantity::quantity_value;
use super::util::{
    age, arr_at, bool_at, container_cells, first_non_empty, format_labels, get, int_at,
    is_deleting, join_host_port, len_at, load_balancer_ingress, lower, map_at, n, name, opt_int,
    opt_str, s, since, sorted_unique, str_at, time_at,
};
use super::{AGE, CONTAINERS_DESC, Ctx, IMAGES_DESC, NAME, Printer, col, docs, wide};

// ---------------------------------------------------------------- pod templates

pub(super) static POD_TEMPLATES: Printer = Printer {
    columns: &[
        NAME,
        col("Containers", "string", CONTAINERS_DESC),
        col("Images", "string", IMAGES_DESC),
        col("Pod Labels", "string", "The labels for the pod template."),
    ],
    cells: pod_template_cells,
};

fn pod_template_cells(obj: &Value, _ctx: &Ctx<'_>) -> Vec<Value> {
    let (names, images) = container_cells(arr_at(obj, &["template", "spec", "containers"]));
    vec![
        s(name(obj)),
        s(names),
        s(images),
        s(format_labels(map_at(
            obj,
            &["template", "metadata", "labels"],
        ))),
    ]
}

// ---------------------------------------------------------------- replication controllers

pub(super) static REPLICATION_CONTROLLERS: Printer = Printer {
    columns: &[
        NAME,
        col("Desired", "integer", docs::RC_SPEC_REPLICAS),
        col("Current", "integer", docs::RC_STATUS_REPLICAS),
        col("Ready", "integer", docs::RC_STATUS_READY_REPLICAS),
        AGE,
        wide("Containers", "string", CONTAINERS_DESC),
        wide("Images", "string", IMAGES_DESC),
        wide("Selector", "string", docs::RC_SPEC_SELECTOR),
    ],
    cells: replication_controller_cells,
};

fn replication_controller_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let (names, images) = container_cells(arr_at(obj, &["spec", "template", "spec", "containers"]));
    vec![
        s(name(obj)),
        // v1 defaulting sets spec.replicas to 1.
        n(opt_int(obj, &["spec", "replicas"]).unwrap_or(1)),
        n(int_at(obj, &["status", "replicas"])),
        n(int_at(obj, &["status", "readyReplicas"])),
        s(age(obj, ctx.now)),
        s(names),
        s(images),
        s(format_labels(map_at(obj, &["spec", "selector"]))),
    ]
}

// ---------------------------------------------------------------- services

pub(super) static SERVICES: Printer = Printer {
    columns: &[
        NAME,
        col("Type", "string", docs::SVC_SPEC_TYPE),
        col("Cluster-IP", "string", docs::SVC_SPEC_CLUSTER_IP),
        col("External-IP", "string", docs::SVC_SPEC_EXTERNAL_IPS),
        col("Port(s)", "string", docs::SVC_SPEC_PORTS),
        AGE,
        wide("Selector", "string", docs::SVC_SPEC_SELECTOR),
    ],
    cells: service_cells,
};

fn string_list(values: &[Value]) -> Vec<&str> {
    values.iter().map(|v| v.as_str().unwrap_or("")).collect()
}

fn service_external_ip(svc: &Value, svc_type: &str) -> String {
    let external_ips = string_list(arr_at(svc, &["spec", "externalIPs"]));
    match svc_type {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_ingress(arr_at(svc, &["status", "loadBalancer", "ingress"]));
            if !external_ips.is_empty() {
                let mut results: Vec<&str> = Vec::new();
                if !lb.is_empty() {
                    results.extend(lb.split(','));
                }
                results.extend(external_ips);
                results.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => str_at(svc, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

fn service_ports(svc: &Value) -> String {
    let ports: Vec<String> = arr_at(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            // v1 defaulting sets the protocol to TCP.
            let protocol = opt_str(p, &["protocol"]).unwrap_or("TCP");
            let port = int_at(p, &["port"]);
            let node_port = int_at(p, &["nodePort"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{protocol}")
            } else {
                format!("{port}/{protocol}")
            }
        })
        .collect();
    if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    }
}

fn service_cells(svc: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    // v1 defaulting sets spec.type to ClusterIP and spec.clusterIPs from spec.clusterIP.
    let svc_type = opt_str(svc, &["spec", "type"]).unwrap_or("ClusterIP");
    let cluster_ip = arr_at(svc, &["spec", "clusterIPs"])
        .first()
        .map(|ip| ip.as_str().unwrap_or(""))
        .or_else(|| opt_str(svc, &["spec", "clusterIP"]).filter(|ip| !ip.is_empty()))
        .unwrap_or("<none>");
    vec![
        s(name(svc)),
        s(svc_type),
        s(cluster_ip),
        s(service_external_ip(svc, svc_type)),
        s(service_ports(svc)),
        s(age(svc, ctx.now)),
        s(format_labels(map_at(svc, &["spec", "selector"]))),
    ]
}

// ---------------------------------------------------------------- endpoints

pub(super) static ENDPOINTS: Printer = Printer {
    columns: &[
        NAME,
        col("Endpoints", "string", docs::ENDPOINTS_SUBSETS),
        AGE,
    ],
    cells: endpoints_cells,
};

/// `formatEndpoints` with all ports: up to three `ip:port`, then `+ N more...`.
fn format_endpoints(obj: &Value) -> String {
    let subsets = arr_at(obj, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for subset in subsets {
        let addresses = arr_at(subset, &["addresses"]);
        let ports = arr_at(subset, &["ports"]);
        if ports.is_empty() {
            // Headless services without ports.
            count += addresses.len();
            for addr in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(addr, &["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for addr in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                let port = int_at(port, &["port"]).to_string();
                list.push(join_host_port(str_at(addr, &["ip"]), &port));
            }
        }
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count.saturating_sub(MAX))
    } else {
        ret
    }
}

fn endpoints_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    vec![s(name(obj)), s(format_endpoints(obj)), s(age(obj, ctx.now))]
}

// ---------------------------------------------------------------- nodes

pub(super) static NODES: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "string", "The status of the node"),
        col("Roles", "string", "The roles of the node"),
        AGE,
        col("Version", "string", docs::NODE_INFO_KUBELET_VERSION),
        wide("Internal-IP", "string", docs::NODE_STATUS_ADDRESSES),
        wide("External-IP", "string", docs::NODE_STATUS_ADDRESSES),
        wide("OS-Image", "string", docs::NODE_INFO_OS_IMAGE),
        wide("Kernel-Version", "string", docs::NODE_INFO_KERNEL_VERSION),
        wide(
            "Container-Runtime",
            "string",
            docs::NODE_INFO_CONTAINER_RUNTIME,
        ),
    ],
    cells: node_cells,
};

const NODE_ROLE_PREFIX: &str = "node-role.kubernetes.io/";
const NODE_ROLE_LABEL: &str = "kubernetes.io/role";

fn node_roles(node: &Value) -> String {
    let mut roles = Vec::new();
    if let Some(labels) = map_at(node, &["metadata", "labels"]) {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix(NODE_ROLE_PREFIX) {
                if !role.is_empty() {
                    roles.push(role.to_string());
                }
            } else if k == NODE_ROLE_LABEL {
                let v = v.as_str().unwrap_or("");
                if !v.is_empty() {
                    roles.push(v.to_string());
                }
            }
        }
    }
    let roles = sorted_unique(roles).join(",");
    if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles
    }
}

fn node_address(node: &Value, type_: &str) -> String {
    arr_at(node, &["status", "addresses"])
        .iter()
        .find(|a| str_at(a, &["type"]) == type_)
        .map_or_else(
            || "<none>".to_string(),
            |a| str_at(a, &["address"]).to_string(),
        )
}

fn or_unknown(v: &str) -> &str {
    if v.is_empty() { "<unknown>" } else { v }
}

fn node_cells(node: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    // Only the Ready condition is reported; the last one of that type wins.
    let mut status: Vec<String> = Vec::new();
    if let Some(cond) = arr_at(node, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| str_at(c, &["type"]) == "Ready")
    {
        if str_at(cond, &["status"]) == "True" {
            status.push("Ready".to_string());
        } else {
            status.push("NotReady".to_string());
        }
    }
    if status.is_empty() {
        status.push("Unknown".to_string());
    }
    if bool_at(node, &["spec", "unschedulable"]) {
        status.push("SchedulingDisabled".to_string());
    }
    let info = |field: &str| str_at(node, &["status", "nodeInfo", field]);
    vec![
        s(name(node)),
        s(status.join(",")),
        s(node_roles(node)),
        s(age(node, ctx.now)),
        s(info("kubeletVersion")),
        s(node_address(node, "InternalIP")),
        s(node_address(node, "ExternalIP")),
        s(or_unknown(info("osImage"))),
        s(or_unknown(info("kernelVersion"))),
        s(or_unknown(info("containerRuntimeVersion"))),
    ]
}

// ---------------------------------------------------------------- events

pub(super) static EVENTS: Printer = Printer {
    columns: &[
        col("Last Seen", "string", docs::EVENT_LAST_TIMESTAMP),
        col("Type", "string", docs::EVENT_TYPE),
        col("Reason", "string", docs::EVENT_REASON),
        col("Object", "string", docs::EVENT_INVOLVED_OBJECT),
        wide("Subobject", "string", docs::OBJECT_REFERENCE_FIELD_PATH),
        wide("Source", "string", docs::EVENT_SOURCE),
        col("Message", "string", docs::EVENT_MESSAGE),
        wide("First Seen", "string", docs::EVENT_FIRST_TIMESTAMP),
        wide("Count", "string", docs::EVENT_COUNT),
        super::ColumnDef {
            priority: 1,
            ..NAME
        },
    ],
    cells: event_cells,
};

/// JSON field names of the core/v1 and events.k8s.io/v1 shapes of an Event.
struct EventFields {
    involved: &'static str,
    message: &'static str,
    source: &'static str,
    first: &'static str,
    last: &'static str,
    count: &'static str,
    controller: &'static str,
}

const CORE_EVENT: EventFields = EventFields {
    involved: "involvedObject",
    message: "message",
    source: "source",
    first: "firstTimestamp",
    last: "lastTimestamp",
    count: "count",
    controller: "reportingComponent",
};

const EVENTS_V1_EVENT: EventFields = EventFields {
    involved: "regarding",
    message: "note",
    source: "deprecatedSource",
    first: "deprecatedFirstTimestamp",
    last: "deprecatedLastTimestamp",
    count: "deprecatedCount",
    controller: "reportingController",
};

fn event_cells(ev: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let f = if ctx.group == "events.k8s.io" {
        &EVENTS_V1_EVENT
    } else {
        &CORE_EVENT
    };
    let first_ts = time_at(ev, &[f.first]);
    let first = if first_ts.is_some() {
        since(first_ts, ctx.now)
    } else {
        since(time_at(ev, &["eventTime"]), ctx.now)
    };
    let last_ts = time_at(ev, &[f.last]);
    let mut last = if last_ts.is_some() {
        since(last_ts, ctx.now)
    } else {
        first.clone()
    };
    let mut count = int_at(ev, &[f.count]);
    if get(ev, &["series"]).is_some() {
        last = since(time_at(ev, &["series", "lastObservedTime"]), ctx.now);
        count = int_at(ev, &["series", "count"]);
    } else if count == 0 {
        // Singleton events don't have a count set in the new API.
        count = 1;
    }
    let kind = lower(str_at(ev, &[f.involved, "kind"]));
    let involved_name = str_at(ev, &[f.involved, "name"]);
    let target = if involved_name.is_empty() {
        kind
    } else {
        format!("{kind}/{involved_name}")
    };
    let component = first_non_empty(&[
        str_at(ev, &[f.source, "component"]),
        str_at(ev, &[f.controller]),
    ]);
    let instance = first_non_empty(&[
        str_at(ev, &[f.source, "host"]),
        str_at(ev, &["reportingInstance"]),
    ]);
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        s(last),
        s(str_at(ev, &["type"])),
        s(str_at(ev, &["reason"])),
        s(target),
        s(str_at(ev, &[f.involved, "fieldPath"])),
        s(source),
        s(str_at(ev, &[f.message]).trim()),
        s(first),
        n(count),
        s(name(ev)),
    ]
}

// ---------------------------------------------------------------- namespaces

pub(super) static NAMESPACES: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "string", "The status of the namespace"),
        AGE,
    ],
    cells: namespace_cells,
};

fn namespace_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    vec![
        s(name(obj)),
        // v1 defaulting sets status.phase to Active.
        s(opt_str(obj, &["status", "phase"]).unwrap_or("Active")),
        s(age(obj, ctx.now)),
    ]
}

// ---------------------------------------------------------------- secrets

pub(super) static SECRETS: Printer = Printer {
    columns: &[
        NAME,
        col("Type", "string", docs::SECRET_TYPE),
        col("Data", "string", docs::SECRET_DATA),
        AGE,
    ],
    cells: secret_cells,
};

fn secret_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    vec![
        s(name(obj)),
        // v1 defaulting sets type to Opaque.
        s(opt_str(obj, &["type"]).unwrap_or("Opaque")),
        n(len_at(obj, &["data"])),
        s(age(obj, ctx.now)),
    ]
}

// ---------------------------------------------------------------- service accounts

pub(super) static SERVICE_ACCOUNTS: Printer = Printer {
    columns: &[
        NAME,
        col("Secrets", "string", docs::SERVICE_ACCOUNT_SECRETS),
        AGE,
    ],
    cells: service_account_cells,
};

fn service_account_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    vec![
        s(name(obj)),
        n(len_at(obj, &["secrets"])),
        s(age(obj, ctx.now)),
    ]
}

// ---------------------------------------------------------------- persistent volumes

pub(super) static PERSISTENT_VOLUMES: Printer = Printer {
    columns: &[
        NAME,
        col("Capacity", "string", docs::PV_SPEC_CAPACITY),
        col("Access Modes", "string", docs::PV_SPEC_ACCESS_MODES),
        col("Reclaim Policy", "string", docs::PV_SPEC_RECLAIM_POLICY),
        col("Status", "string", docs::PV_STATUS_PHASE),
        col("Claim", "string", docs::PV_SPEC_CLAIM_REF),
        col("StorageClass", "string", "StorageClass of the pv"),
        col(
            "VolumeAttributesClass",
            "string",
            "VolumeAttributesClass of the pv",
        ),
        col("Reason", "string", docs::PV_STATUS_REASON),
        AGE,
        wide("VolumeMode", "string", docs::PV_SPEC_VOLUME_MODE),
    ],
    cells: persistent_volume_cells,
};

const BETA_STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// `helper.GetAccessModesAsString`: modes in the fixed order RWO,ROX,RWX,RWOP.
fn access_modes(modes: &[Value]) -> String {
    let modes = string_list(modes);
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| modes.contains(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

fn beta_storage_class(obj: &Value) -> Option<&str> {
    map_at(obj, &["metadata", "annotations"])
        .and_then(|a| a.get(BETA_STORAGE_CLASS_ANNOTATION))
        .map(|v| v.as_str().unwrap_or(""))
}

fn persistent_volume_cells(pv: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let claim = match get(pv, &["spec", "claimRef"]) {
        Some(c) => format!("{}/{}", str_at(c, &["namespace"]), str_at(c, &["name"])),
        None => String::new(),
    };
    let phase = if is_deleting(pv) {
        "Terminating"
    } else {
        // v1 defaulting sets status.phase to Pending.
        opt_str(pv, &["status", "phase"]).unwrap_or("Pending")
    };
    let class = beta_storage_class(pv).unwrap_or_else(|| str_at(pv, &["spec", "storageClassName"]));
    vec![
        s(name(pv)),
        s(quantity_value(get(pv, &["spec", "capacity", "storage"]))),
        s(access_modes(arr_at(pv, &["spec", "accessModes"]))),
        // v1 defaulting sets the reclaim policy to Retain.
        s(opt_str(pv, &["spec", "persistentVolumeReclaimPolicy"]).unwrap_or("Retain")),
        s(phase),
        s(claim),
        s(class),
        s(opt_str(pv, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
        s(str_at(pv, &["status", "reason"])),
        s(age(pv, ctx.now)),
        // v1 defaulting sets the volume mode to Filesystem.
        s(opt_str(pv, &["spec", "volumeMode"]).unwrap_or("Filesystem")),
    ]
}

// ---------------------------------------------------------------- persistent volume claims

pub(super) static PERSISTENT_VOLUME_CLAIMS: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "string", docs::PVC_STATUS_PHASE),
        col("Volume", "string", docs::PVC_SPEC_VOLUME_NAME),
        col("Capacity", "string", docs::PVC_STATUS_CAPACITY),
        col("Access Modes", "string", docs::PVC_STATUS_ACCESS_MODES),
        col("StorageClass", "string", "StorageClass of the pvc"),
        col(
            "VolumeAttributesClass",
            "string",
            "VolumeAttributesClass of the pvc",
        ),
        AGE,
        wide("VolumeMode", "string", docs::PVC_SPEC_VOLUME_MODE),
    ],
    cells: persistent_volume_claim_cells,
};

fn persistent_volume_claim_cells(pvc: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let phase = if is_deleting(pvc) {
        "Terminating"
    } else {
        // v1 defaulting sets status.phase to Pending.
        opt_str(pvc, &["status", "phase"]).unwrap_or("Pending")
    };
    let volume = str_at(pvc, &["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity_value(get(pvc, &["status", "capacity", "storage"])),
            access_modes(arr_at(pvc, &["status", "accessModes"])),
        )
    };
    let class =
        beta_storage_class(pvc).unwrap_or_else(|| str_at(pvc, &["spec", "storageClassName"]));
    vec![
        s(name(pvc)),
        s(phase),
        s(volume),
        s(capacity),
        s(modes),
        s(class),
        s(opt_str(pvc, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
        s(age(pvc, ctx.now)),
        // v1 defaulting sets the volume mode to Filesystem.
        s(opt_str(pvc, &["spec", "volumeMode"]).unwrap_or("Filesystem")),
    ]
}

// ---------------------------------------------------------------- component statuses

pub(super) static COMPONENT_STATUSES: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "string", "Status of the component conditions"),
        col("Message", "string", "Message of the component conditions"),
        col("Error", "string", "Error of the component conditions"),
    ],
    cells: component_status_cells,
};

fn component_status_cells(obj: &Value, _ctx: &Ctx<'_>) -> Vec<Value> {
    let healthy = arr_at(obj, &["conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Healthy");
    let (status, message, error) = match healthy {
        Some(c) => (
            if str_at(c, &["status"]) == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            str_at(c, &["message"]),
            str_at(c, &["error"]),
        ),
        None => ("Unknown", "", ""),
    };
    vec![s(name(obj)), s(status), s(message), s(error)]
}

// ---------------------------------------------------------------- config maps

pub(super) static CONFIG_MAPS: Printer = Printer {
    columns: &[NAME, col("Data", "string", docs::CONFIG_MAP_DATA), AGE],
    cells: config_map_cells,
};

fn config_map_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    vec![
        s(name(obj)),
        n(len_at(obj, &["data"]) + len_at(obj, &["binaryData"])),
        s(age(obj, ctx.now)),
    ]
}

// ---------------------------------------------------------------- resource quotas

pub(super) static RESOURCE_QUOTAS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Request",
            "string",
            "Request represents a minimum amount of cpu/memory that a container may consume.",
        ),
        col(
            "Limit",
            "string",
            "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
        ),
        AGE,
    ],
    cells: resource_quota_cells,
};

fn resource_quota_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    if let Some(hard) = map_at(obj, &["status", "hard"]) {
        let mut resources: Vec<&String> = hard.keys().collect();
        resources.sort();
        for resource in resources {
            let used = quantity_value(get(obj, &["status", "used", resource.as_str()]));
            let hard_q = quantity_value(hard.get(resource.as_str()));
            let entry = format!("{resource}: {used}/{hard_q}");
            let mut pieces = resource.split('.');
            let is_limit = pieces.next() == Some("limits") && pieces.next().is_some();
            if is_limit {
                limits.push(entry);
            } else {
                requests.push(entry);
            }
        }
    }
    vec![
        s(name(obj)),
        s(requests.join(", ")),
        s(limits.join(", ")),
        s(age(obj, ctx.now)),
    ]
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use serde_json::{Value, json};

    use super::super::test_support::{self, *};

    fn row(resource: &str, obj: &Value) -> Vec<Value> {
        test_support::row("", resource, obj)
    }

    #[test]
    fn services() {
        let svc = json!({
            "metadata": {"name": "kubernetes", "creationTimestamp": ago(Duration::days(3))},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
                     "ports": [{"port": 443, "protocol": "TCP"}]},
        });
        assert_eq!(
            row("services", &svc),
            vec![
                json!("kubernetes"),
                json!("ClusterIP"),
                json!("10.96.0.1"),
                json!("<none>"),
                json!("443/TCP"),
                json!("3d"),
                json!("<none>"),
            ]
        );
        let lb = json!({
            "metadata": {"name": "lb"},
            "spec": {"type": "LoadBalancer", "clusterIPs": ["10.0.0.9"],
                     "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
                     "selector": {"app": "web", "tier": "fe"}},
            "status": {"loadBalancer": {"ingress": [{"hostname": "a-very-long-hostname.example.com"}]}},
        });
        let r = row("services", &lb);
        assert_eq!(r[3], json!("a-very-long-hostname.example.com"));
        assert_eq!(r[4], json!("80:30080/TCP,53/UDP"));
        assert_eq!(r[5], json!("<unknown>"));
        assert_eq!(r[6], json!("app=web,tier=fe"));
        let pending = json!({"spec": {"type": "LoadBalancer"}});
        assert_eq!(
            row("services", &pending)[2..5],
            [json!("<none>"), json!("<pending>"), json!("<none>")]
        );
        let ext = json!({"spec": {"type": "ExternalName", "externalName": "db.example.com"}});
        assert_eq!(row("services", &ext)[3], json!("db.example.com"));
        let headless = json!({"spec": {"clusterIP": "None", "clusterIPs": ["None"]}});
        assert_eq!(
            row("services", &headless)[1..3],
            [json!("ClusterIP"), json!("None")]
        );
    }

    #[test]
    fn endpoints() {
        let ep = json!({"subsets": [
            {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "fd00::3"}],
             "ports": [{"port": 80}, {"port": 443}]},
        ]});
        assert_eq!(
            row("endpoints", &ep)[1],
            json!("10.0.0.1:80,10.0.0.2:80,[fd00::3]:80 + 3 more...")
        );
        assert_eq!(row("endpoints", &json!({}))[1], json!("<none>"));
        let headless = json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]});
        assert_eq!(row("endpoints", &headless)[1], json!("10.0.0.1"));
    }

    #[test]
    fn nodes() {
        let node = json!({
            "metadata": {"name": "n1", "creationTimestamp": ago(Duration::hours(30)),
                         "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "master",
                                    "node-role.kubernetes.io/": "x"}},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "n1"}],
                "nodeInfo": {"kubeletVersion": "v1.34.0", "osImage": "Debian", "kernelVersion": "6.1", "containerRuntimeVersion": "containerd://2.0"},
            },
        });
        assert_eq!(
            row("nodes", &node),
            vec![
                json!("n1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,master"),
                json!("30h"),
                json!("v1.34.0"),
                json!("192.168.1.10"),
                json!("<none>"),
                json!("Debian"),
                json!("6.1"),
                json!("containerd://2.0"),
            ]
        );
        let bare = row("nodes", &json!({"metadata": {"name": "n2"}}));
        assert_eq!(
            bare[1..5],
            [
                json!("Unknown"),
                json!("<none>"),
                json!("<unknown>"),
                json!("")
            ]
        );
        assert_eq!(bare[7], json!("<unknown>"));
    }

    #[test]
    fn events_core_and_events_v1() {
        let ev = json!({
            "metadata": {"name": "web.17a"},
            "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{a}"},
            "reason": "Pulled", "type": "Normal", "message": "  Pulled image \n",
            "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": ago(Duration::minutes(10)), "lastTimestamp": ago(Duration::minutes(2)),
            "count": 3,
        });
        assert_eq!(
            row("events", &ev),
            vec![
                json!("2m"),
                json!("Normal"),
                json!("Pulled"),
                json!("pod/web"),
                json!("spec.containers{a}"),
                json!("kubelet, n1"),
                json!("Pulled image"),
                json!("10m"),
                json!(3),
                json!("web.17a"),
            ]
        );
        let v1 = json!({
            "metadata": {"name": "x"},
            "regarding": {"kind": "Node", "name": "n1"},
            "note": "hello", "reason": "R", "type": "Warning",
            "eventTime": format!("{}.000000Z", &ago(Duration::seconds(30))[..19]),
            "reportingController": "ctrl", "reportingInstance": "inst",
        });
        let r = test_support::row("events.k8s.io", "events", &v1);
        assert_eq!(r[0], json!("30s"));
        assert_eq!(r[3], json!("node/n1"));
        assert_eq!(r[5], json!("ctrl, inst"));
        assert_eq!(r[6], json!("hello"));
        assert_eq!(r[7], json!("30s"));
        assert_eq!(r[8], json!(1));
        let series = json!({"series": {"count": 7, "lastObservedTime": ago(Duration::seconds(4))}});
        let r = row("events", &series);
        assert_eq!(
            (r[0].clone(), r[7].clone(), r[8].clone()),
            (json!("4s"), json!("<unknown>"), json!(7))
        );
    }

    #[test]
    fn simple_core_resources() {
        let t = ago(Duration::days(400));
        let ns = json!({"metadata": {"name": "default", "creationTimestamp": t}, "status": {"phase": "Active"}});
        assert_eq!(
            row("namespaces", &ns),
            vec![json!("default"), json!("Active"), json!("400d")]
        );
        let cm = json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": ""}});
        assert_eq!(row("configmaps", &cm)[1], json!(3));
        let secret = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
        assert_eq!(
            row("secrets", &secret)[1..3],
            [json!("kubernetes.io/tls"), json!(2)]
        );
        let sa = json!({"metadata": {"name": "default"}});
        assert_eq!(row("serviceaccounts", &sa)[1], json!(0));
    }

    #[test]
    fn volumes_and_claims() {
        let pv = json!({
            "metadata": {"name": "pv1", "annotations": {"volume.beta.kubernetes.io/storage-class": "old"}},
            "spec": {"capacity": {"storage": "1024Mi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Delete", "claimRef": {"namespace": "ns", "name": "data"},
                     "storageClassName": "standard", "volumeMode": "Block"},
            "status": {"phase": "Bound"},
        });
        let r = row("persistentvolumes", &pv);
        assert_eq!(
            r[1..9],
            [
                json!("1Gi"),
                json!("RWO,RWX"),
                json!("Delete"),
                json!("Bound"),
                json!("ns/data"),
                json!("old"),
                json!("<unset>"),
                json!("")
            ]
        );
        assert_eq!(r[10], json!("Block"));
        let pvc = json!({
            "metadata": {"name": "data"},
            "spec": {"volumeName": "pv1", "storageClassName": "standard", "volumeAttributesClassName": "gold"},
            "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"]},
        });
        let r = row("persistentvolumeclaims", &pvc);
        assert_eq!(
            r[1..7],
            [
                json!("Bound"),
                json!("pv1"),
                json!("10Gi"),
                json!("RWO"),
                json!("standard"),
                json!("gold")
            ]
        );
        let pending = row("persistentvolumeclaims", &json!({"spec": {}}));
        assert_eq!(
            pending[1..6],
            [json!("Pending"), json!(""), json!(""), json!(""), json!("")]
        );
    }

    #[test]
    fn resource_quota() {
        let rq = json!({"metadata": {"name": "q"}, "status": {
            "hard": {"requests.cpu": "2", "limits.memory": "2Gi", "pods": "10", "limits.cpu": "4000m"},
            "used": {"requests.cpu": "500m", "limits.memory": "1073741824", "pods": "3"},
        }});
        let r = row("resourcequotas", &rq);
        assert_eq!(r[1], json!("pods: 3/10, requests.cpu: 500m/2"));
        assert_eq!(
            r[2],
            json!("limits.cpu: 0/4, limits.memory: 1073741824/2Gi")
        );
    }

    #[test]
    fn replication_controller() {
        let rc = json!({
            "metadata": {"name": "rc"},
            "spec": {"replicas": 3, "selector": {"app": "x"},
                     "template": {"spec": {"containers": [{"name": "c1", "image": "i1"}, {"name": "c2", "image": "i2"}]}}},
            "status": {"replicas": 3, "readyReplicas": 2},
        });
        assert_eq!(
            row("replicationcontrollers", &rc),
            vec![
                json!("rc"),
                json!(3),
                json!(3),
                json!(2),
                json!("<unknown>"),
                json!("c1,c2"),
                json!("i1,i2"),
                json!("app=x")
            ]
        );
    }
}
