//! Printers for `networking.k8s.io` and `discovery.k8s.io`.

use serde_json::Value;

use super::util::{
    age, arr_at, format_label_selector, get, list_with_more, load_balancer_ingress, lower, name,
    opt_int, opt_str, s, str_at,
};
use super::{AGE, Ctx, NAME, Printer, col, docs};

// ---------------------------------------------------------------- ingresses

pub(super) static INGRESSES: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Class",
            "string",
            "The name of the IngressClass resource that should be used for additional configuration",
        ),
        col(
            "Hosts",
            "string",
            "Hosts that incoming requests are matched against before the ingress rule",
        ),
        col(
            "Address",
            "string",
            "Address is a list containing ingress points for the load-balancer",
        ),
        col("Ports", "string", "Ports of TLS configurations that open"),
        AGE,
    ],
    cells: ingress_cells,
};

/// `formatHosts`: up to three hosts, `*` when none, then `+ N more...`.
fn format_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = str_at(rule, &["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", rules.len().saturating_sub(MAX));
    }
    ret
}

fn ingress_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let ports = if arr_at(obj, &["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        s(name(obj)),
        s(opt_str(obj, &["spec", "ingressClassName"]).unwrap_or("<none>")),
        s(format_hosts(arr_at(obj, &["spec", "rules"]))),
        s(load_balancer_ingress(arr_at(
            obj,
            &["status", "loadBalancer", "ingress"],
        ))),
        s(ports),
        s(age(obj, ctx.now)),
    ]
}

// ---------------------------------------------------------------- ingress classes

pub(super) static INGRESS_CLASSES: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Controller",
            "string",
            "Controller that is responsible for handling this class",
        ),
        col(
            "Parameters",
            "string",
            "A reference to a resource with additional parameters",
        ),
        AGE,
    ],
    cells: ingress_class_cells,
};

fn ingress_class_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let parameters = match get(obj, &["spec", "parameters"]) {
        None => "<none>".to_string(),
        Some(p) => {
            let mut out = str_at(p, &["kind"]).to_string();
            if let Some(group) = opt_str(p, &["apiGroup"]) {
                out = format!("{out}.{group}");
            }
            format!("{out}/{}", str_at(p, &["name"]))
        }
    };
    vec![
        s(name(obj)),
        s(str_at(obj, &["spec", "controller"])),
        s(parameters),
        s(age(obj, ctx.now)),
    ]
}

// ---------------------------------------------------------------- network policies

pub(super) static NETWORK_POLICIES: Printer = Printer {
    columns: &[
        NAME,
        col("Pod-Selector", "string", docs::NETPOL_SPEC_POD_SELECTOR),
        AGE,
    ],
    cells: network_policy_cells,
};

fn network_policy_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    // spec.podSelector is a struct, not a pointer: absent means "everything".
    let empty = Value::Object(serde_json::Map::new());
    let selector = get(obj, &["spec", "podSelector"]).unwrap_or(&empty);
    vec![
        s(name(obj)),
        s(format_label_selector(Some(selector))),
        s(age(obj, ctx.now)),
    ]
}

// ---------------------------------------------------------------- service CIDRs

pub(super) static SERVICE_CIDRS: Printer = Printer {
    columns: &[NAME, col("CIDRs", "string", docs::SERVICE_CIDR_CIDRS), AGE],
    cells: service_cidr_cells,
};

fn service_cidr_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let cidrs: Vec<&str> = arr_at(obj, &["spec", "cidrs"])
        .iter()
        .map(|c| c.as_str().unwrap_or(""))
        .collect();
    vec![s(name(obj)), s(cidrs.join(",")), s(age(obj, ctx.now))]
}

// ---------------------------------------------------------------- IP addresses

/// Upstream defines two columns but emits three cells (the age is extra).
pub(super) static IP_ADDRESSES: Printer = Printer {
    columns: &[
        NAME,
        col("ParentRef", "string", docs::IP_ADDRESS_PARENT_REF),
    ],
    cells: ip_address_cells,
};

fn ip_address_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let parent = match get(obj, &["spec", "parentRef"]) {
        None => "<none>".to_string(),
        Some(p) => {
            let resource = str_at(p, &["resource"]);
            let group = str_at(p, &["group"]);
            let mut out = if group.is_empty() {
                lower(resource)
            } else {
                lower(&format!("{resource}.{group}"))
            };
            let namespace = str_at(p, &["namespace"]);
            if !namespace.is_empty() {
                out = format!("{out}/{namespace}");
            }
            format!("{out}/{}", str_at(p, &["name"]))
        }
    };
    vec![s(name(obj)), s(parent), s(age(obj, ctx.now))]
}

// ---------------------------------------------------------------- endpoint slices

pub(super) static ENDPOINT_SLICES: Printer = Printer {
    columns: &[
        NAME,
        col("AddressType", "string", docs::ENDPOINT_SLICE_ADDRESS_TYPE),
        col("Ports", "string", docs::ENDPOINT_SLICE_PORTS),
        col("Endpoints", "string", docs::ENDPOINT_SLICE_ENDPOINTS),
        AGE,
    ],
    cells: endpoint_slice_cells,
};

/// Collects up to three items, noting whether more exist and how many in total.
fn limited<'a>(items: impl Iterator<Item = String> + 'a) -> String {
    const MAX: usize = 3;
    let mut list = Vec::new();
    let mut more = false;
    let mut count = 0;
    for item in items {
        if list.len() < MAX {
            list.push(item);
        } else if list.len() == MAX {
            more = true;
        }
        count += 1;
    }
    list_with_more(&list, more, count, MAX)
}

fn endpoint_slice_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let ports = limited(arr_at(obj, &["ports"]).iter().map(|p| {
        if let Some(port) = opt_int(p, &["port"]) {
            port.to_string()
        } else if let Some(name) = opt_str(p, &["name"]) {
            name.to_string()
        } else {
            "*".to_string()
        }
    }));
    let endpoints = limited(arr_at(obj, &["endpoints"]).iter().flat_map(|e| {
        arr_at(e, &["addresses"])
            .iter()
            .map(|a| a.as_str().unwrap_or("").to_string())
    }));
    vec![
        s(name(obj)),
        s(str_at(obj, &["addressType"])),
        s(ports),
        s(endpoints),
        s(age(obj, ctx.now)),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::*;

    #[test]
    fn ingress() {
        let ing = json!({
            "metadata": {"name": "web"},
            "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"]}],
                     "rules": [{"host": "a.example.com"}, {}, {"host": "b.example.com"}, {"host": "c.example.com"}, {"host": "d.example.com"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"ip": "203.0.113.10"}, {"hostname": "lb.example.com"}]}},
        });
        assert_eq!(
            row("networking.k8s.io", "ingresses", &ing)[1..5],
            [
                json!("nginx"),
                json!("a.example.com,b.example.com,c.example.com + 2 more..."),
                json!("203.0.113.10,203.0.113.9,lb.example.com"),
                json!("80, 443"),
            ]
        );
        let bare = row(
            "networking.k8s.io",
            "ingresses",
            &json!({"spec": {"rules": [{}]}}),
        );
        assert_eq!(
            bare[1..5],
            [json!("<none>"), json!("*"), json!(""), json!("80")]
        );
    }

    #[test]
    fn ingress_class_and_network_policy() {
        let ic = json!({"spec": {"controller": "k8s.io/ingress-nginx",
                                 "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p"}}});
        assert_eq!(
            row("networking.k8s.io", "ingressclasses", &ic)[1..3],
            [
                json!("k8s.io/ingress-nginx"),
                json!("IngressParameters.k8s.example.com/p")
            ]
        );
        let np = json!({"spec": {}});
        assert_eq!(
            row("networking.k8s.io", "networkpolicies", &np)[1],
            json!("<none>")
        );
        let np = json!({"spec": {"podSelector": {"matchLabels": {"role": "db"}}}});
        assert_eq!(
            row("networking.k8s.io", "networkpolicies", &np)[1],
            json!("role=db")
        );
    }

    #[test]
    fn endpoint_slice() {
        let eps = json!({
            "metadata": {"name": "web-abc"}, "addressType": "IPv4",
            "ports": [{"name": "http", "port": 80}, {"name": "named"}, {}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3"]}, {"addresses": ["10.0.0.4"]}],
        });
        assert_eq!(
            row("discovery.k8s.io", "endpointslices", &eps)[1..4],
            [
                json!("IPv4"),
                json!("80,named,*"),
                json!("10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...")
            ]
        );
        let empty = row("discovery.k8s.io", "endpointslices", &json!({}));
        assert_eq!(empty[2..4], [json!("<unset>"), json!("<unset>")]);
    }

    #[test]
    fn ip_address_and_service_cidr() {
        let ip = json!({"metadata": {"name": "10.96.0.1"},
                        "spec": {"parentRef": {"group": "", "resource": "services", "namespace": "default", "name": "kubernetes"}}});
        let r = row("networking.k8s.io", "ipaddresses", &ip);
        assert_eq!(r[1], json!("services/default/kubernetes"));
        assert_eq!(r.len(), 3);
        let cidr = json!({"spec": {"cidrs": ["10.96.0.0/12", "fd00::/108"]}});
        assert_eq!(
            row("networking.k8s.io", "servicecidrs", &cidr)[1],
            json!("10.96.0.0/12,fd00::/108")
        );
    }
}
