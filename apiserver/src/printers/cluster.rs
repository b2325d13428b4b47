//! Printers for cluster-level APIs: RBAC bindings, certificates, leases,
//! scheduling, node, admission, flow control and dynamic resource allocation.

use serde_json::Value;

use super::util::{
    age, arr_at, b, get, int_at, is_deleting, len_at, map_at, n, name, opt_bool, opt_int, opt_str,
    s, str_at,
};
use super::{AGE, Ctx, NAME, Printer, col, docs, human_duration};

// ---------------------------------------------------------------- RBAC bindings

pub(super) static ROLE_BINDINGS: Printer = Printer {
    columns: &[
        NAME,
        col("Role", "string", docs::ROLE_BINDING_ROLE_REF),
        AGE,
        super::wide("Users", "string", "Users in the roleBinding"),
        super::wide("Groups", "string", "Groups in the roleBinding"),
        super::wide(
            "ServiceAccounts",
            "string",
            "ServiceAccounts in the roleBinding",
        ),
    ],
    cells: binding_cells,
};

pub(super) static CLUSTER_ROLE_BINDINGS: Printer = Printer {
    columns: &[
        NAME,
        col("Role", "string", docs::CLUSTER_ROLE_BINDING_ROLE_REF),
        AGE,
        super::wide("Users", "string", "Users in the clusterRoleBinding"),
        super::wide("Groups", "string", "Groups in the clusterRoleBinding"),
        super::wide(
            "ServiceAccounts",
            "string",
            "ServiceAccounts in the clusterRoleBinding",
        ),
    ],
    cells: binding_cells,
};

fn binding_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut service_accounts = Vec::new();
    for subject in arr_at(obj, &["subjects"]) {
        let subject_name = str_at(subject, &["name"]);
        match str_at(subject, &["kind"]) {
            "ServiceAccount" => service_accounts.push(format!(
                "{}/{subject_name}",
                str_at(subject, &["namespace"])
            )),
            "User" => users.push(subject_name.to_string()),
            "Group" => groups.push(subject_name.to_string()),
            _ => {}
        }
    }
    vec![
        s(name(obj)),
        s(format!(
            "{}/{}",
            str_at(obj, &["roleRef", "kind"]),
            str_at(obj, &["roleRef", "name"])
        )),
        s(age(obj, ctx.now)),
        s(users.join(", ")),
        s(groups.join(", ")),
        s(service_accounts.join(", ")),
    ]
}

// ---------------------------------------------------------------- certificate signing requests

pub(super) static CSRS: Printer = Printer {
    columns: &[
        NAME,
        AGE,
        col("SignerName", "string", docs::CSR_SPEC_SIGNER_NAME),
        col("Requestor", "string", docs::CSR_SPEC_REQUEST),
        col(
            "RequestedDuration",
            "string",
            docs::CSR_SPEC_EXPIRATION_SECONDS,
        ),
        col("Condition", "string", docs::CSR_STATUS_CONDITIONS),
    ],
    cells: csr_cells,
};

/// `extractCSRStatus`: Denied/Approved/Pending, then `,Failed` and `,Issued`.
fn csr_status(obj: &Value) -> String {
    let conditions = arr_at(obj, &["status", "conditions"]);
    let has = |t: &str| conditions.iter().any(|c| str_at(c, &["type"]) == t);
    let mut status = if has("Denied") {
        "Denied".to_string()
    } else if has("Approved") {
        "Approved".to_string()
    } else {
        "Pending".to_string()
    };
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !str_at(obj, &["status", "certificate"]).is_empty() {
        status.push_str(",Issued");
    }
    status
}

fn csr_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let signer = str_at(obj, &["spec", "signerName"]);
    let requested = opt_int(obj, &["spec", "expirationSeconds"]).map_or_else(
        || "<none>".to_string(),
        |secs| human_duration(chrono::Duration::seconds(secs)),
    );
    vec![
        s(name(obj)),
        s(age(obj, ctx.now)),
        s(if signer.is_empty() { "<none>" } else { signer }),
        s(str_at(obj, &["spec", "username"])),
        s(requested),
        s(csr_status(obj)),
    ]
}

// ---------------------------------------------------------------- leases

pub(super) static LEASES: Printer = Printer {
    columns: &[
        NAME,
        col("Holder", "string", docs::LEASE_SPEC_HOLDER_IDENTITY),
        AGE,
    ],
    cells: lease_cells,
};

fn lease_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    vec![
        s(name(obj)),
        s(str_at(obj, &["spec", "holderIdentity"])),
        s(age(obj, ctx.now)),
    ]
}

// ---------------------------------------------------------------- priority classes

/// Note: upstream gives `PreemptionPolicy` priority 0, so it is a default column.
pub(super) static PRIORITY_CLASSES: Printer = Printer {
    columns: &[
        NAME,
        col("Value", "integer", docs::PRIORITY_CLASS_VALUE),
        col(
            "Global-Default",
            "boolean",
            docs::PRIORITY_CLASS_GLOBAL_DEFAULT,
        ),
        AGE,
        col(
            "PreemptionPolicy",
            "string",
            docs::PRIORITY_CLASS_PREEMPTION_POLICY,
        ),
    ],
    cells: priority_class_cells,
};

fn priority_class_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    vec![
        s(name(obj)),
        n(int_at(obj, &["value"])),
        b(opt_bool(obj, &["globalDefault"]).unwrap_or(false)),
        s(age(obj, ctx.now)),
        // v1 defaulting sets preemptionPolicy to PreemptLowerPriority.
        s(opt_str(obj, &["preemptionPolicy"]).unwrap_or("PreemptLowerPriority")),
    ]
}

// ---------------------------------------------------------------- runtime classes

pub(super) static RUNTIME_CLASSES: Printer = Printer {
    columns: &[
        NAME,
        // Upstream looks up a non-existent ObjectMeta doc key, hence no description.
        col("Handler", "string", ""),
        AGE,
    ],
    cells: runtime_class_cells,
};

fn runtime_class_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    vec![
        s(name(obj)),
        s(str_at(obj, &["handler"])),
        s(age(obj, ctx.now)),
    ]
}

// ---------------------------------------------------------------- admission

pub(super) static WEBHOOK_CONFIGURATIONS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Webhooks",
            "integer",
            "Webhooks indicates the number of webhooks registered in this configuration",
        ),
        AGE,
    ],
    cells: webhook_configuration_cells,
};

fn webhook_configuration_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    vec![
        s(name(obj)),
        n(len_at(obj, &["webhooks"])),
        s(age(obj, ctx.now)),
    ]
}

pub(super) static VALIDATING_ADMISSION_POLICIES: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Validations",
            "integer",
            "Validations indicates the number of validation rules defined in this configuration",
        ),
        col(
            "ParamKind",
            "string",
            "ParamKind specifies the kind of resources used to parameterize this policy",
        ),
        AGE,
    ],
    cells: validating_admission_policy_cells,
};

fn validating_admission_policy_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let param_kind = match get(obj, &["spec", "paramKind"]) {
        None => "<unset>".to_string(),
        Some(p) => format!("{}/{}", str_at(p, &["apiVersion"]), str_at(p, &["kind"])),
    };
    vec![
        s(name(obj)),
        n(len_at(obj, &["spec", "validations"])),
        s(param_kind),
        s(age(obj, ctx.now)),
    ]
}

pub(super) static ADMISSION_POLICY_BINDINGS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "PolicyName",
            "string",
            "PolicyName indicates the policy definition which the policy binding binded to",
        ),
        col(
            "ParamRef",
            "string",
            "ParamRef indicates the param resource which sets the configration param",
        ),
        AGE,
    ],
    cells: admission_policy_binding_cells,
};

/// The protobuf-generated `(*metav1.LabelSelector).String()` upstream prints
/// for a selector-based param reference.
fn go_label_selector_struct(sel: &Value) -> String {
    let mut labels: Vec<(&String, &str)> = map_at(sel, &["matchLabels"])
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    let labels: String = labels.iter().map(|(k, v)| format!("{k}: {v},")).collect();
    let exprs: String = arr_at(sel, &["matchExpressions"])
        .iter()
        .map(|e| {
            let values: Vec<&str> = arr_at(e, &["values"])
                .iter()
                .map(|v| v.as_str().unwrap_or(""))
                .collect();
            format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
                str_at(e, &["key"]),
                str_at(e, &["operator"]),
                values.join(" ")
            )
        })
        .collect();
    format!(
        "&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}"
    )
}

fn admission_policy_binding_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let param = match get(obj, &["spec", "paramRef"]) {
        None => "<unset>".to_string(),
        Some(pr) => {
            let pr_name = str_at(pr, &["name"]);
            let namespace = str_at(pr, &["namespace"]);
            if !pr_name.is_empty() {
                if namespace.is_empty() {
                    format!("*/{pr_name}")
                } else {
                    format!("{namespace}/{pr_name}")
                }
            } else if let Some(sel) = get(pr, &["selector"]) {
                go_label_selector_struct(sel)
            } else {
                "<unset>".to_string()
            }
        }
    };
    vec![
        s(name(obj)),
        s(str_at(obj, &["spec", "policyName"])),
        s(param),
        s(age(obj, ctx.now)),
    ]
}

// ---------------------------------------------------------------- flow control

pub(super) static FLOW_SCHEMAS: Printer = Printer {
    columns: &[
        NAME,
        col("PriorityLevel", "string", docs::FLOW_SCHEMA_PRIORITY_LEVEL),
        col(
            "MatchingPrecedence",
            "string",
            docs::FLOW_SCHEMA_MATCHING_PRECEDENCE,
        ),
        col(
            "DistinguisherMethod",
            "string",
            docs::FLOW_SCHEMA_DISTINGUISHER_METHOD,
        ),
        AGE,
        col(
            "MissingPL",
            "string",
            "references a broken or non-existent PriorityLevelConfiguration",
        ),
    ],
    cells: flow_schema_cells,
};

fn flow_schema_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    // v1 defaulting turns a zero matchingPrecedence into 1000.
    let precedence = match int_at(obj, &["spec", "matchingPrecedence"]) {
        0 => 1000,
        p => p,
    };
    let distinguisher = match get(obj, &["spec", "distinguisherMethod"]) {
        None => "<none>",
        Some(d) => str_at(d, &["type"]),
    };
    let missing_pl = arr_at(obj, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Dangling")
        .map_or("?", |c| str_at(c, &["status"]));
    vec![
        s(name(obj)),
        s(str_at(obj, &["spec", "priorityLevelConfiguration", "name"])),
        n(precedence),
        s(distinguisher),
        s(age(obj, ctx.now)),
        s(missing_pl),
    ]
}

pub(super) static PRIORITY_LEVELS: Printer = Printer {
    columns: &[
        NAME,
        col("Type", "string", docs::PRIORITY_LEVEL_TYPE),
        col(
            "NominalConcurrencyShares",
            "string",
            docs::PRIORITY_LEVEL_NOMINAL_CONCURRENCY_SHARES,
        ),
        col("Queues", "string", docs::PRIORITY_LEVEL_QUEUES),
        col("HandSize", "string", docs::PRIORITY_LEVEL_HAND_SIZE),
        col(
            "QueueLengthLimit",
            "string",
            docs::PRIORITY_LEVEL_QUEUE_LENGTH_LIMIT,
        ),
        AGE,
    ],
    cells: priority_level_cells,
};

fn priority_level_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let none = || s("<none>");
    let (mut shares, mut queues, mut hand_size, mut queue_length) =
        (none(), none(), none(), none());
    if let Some(limited) = get(obj, &["spec", "limited"]) {
        // v1 defaults: 30 shares; queuing 64 queues, hand size 8, queue length 50.
        shares = n(opt_int(limited, &["nominalConcurrencyShares"]).unwrap_or(30));
        if let Some(q) = get(limited, &["limitResponse", "queuing"]) {
            let field =
                |f: &str, default: i64| n(opt_int(q, &[f]).filter(|v| *v != 0).unwrap_or(default));
            queues = field("queues", 64);
            hand_size = field("handSize", 8);
            queue_length = field("queueLengthLimit", 50);
        }
    }
    vec![
        s(name(obj)),
        s(str_at(obj, &["spec", "type"])),
        shares,
        queues,
        hand_size,
        queue_length,
        s(age(obj, ctx.now)),
    ]
}

// ---------------------------------------------------------------- dynamic resource allocation

pub(super) static DEVICE_CLASSES: Printer = Printer {
    columns: &[NAME, AGE],
    cells: name_age_cells,
};

pub(super) static RESOURCE_CLAIM_TEMPLATES: Printer = Printer {
    columns: &[NAME, AGE],
    cells: name_age_cells,
};

fn name_age_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    vec![s(name(obj)), s(age(obj, ctx.now))]
}

pub(super) static RESOURCE_CLAIMS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "State",
            "string",
            "A summary of the current state (allocated, pending, reserved, etc.).",
        ),
        AGE,
    ],
    cells: resource_claim_cells,
};

fn resource_claim_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let mut states = Vec::new();
    if is_deleting(obj) {
        states.push("deleted");
    }
    if get(obj, &["status", "allocation"]).is_none() {
        if !is_deleting(obj) {
            states.push("pending");
        }
    } else {
        states.push("allocated");
        if !arr_at(obj, &["status", "reservedFor"]).is_empty() {
            states.push("reserved");
        }
    }
    vec![s(name(obj)), s(states.join(",")), s(age(obj, ctx.now))]
}

pub(super) static RESOURCE_SLICES: Printer = Printer {
    columns: &[
        NAME,
        col("Node", "string", docs::RESOURCE_SLICE_NODE_NAME),
        col("Driver", "string", docs::RESOURCE_SLICE_DRIVER),
        col("Pool", "string", docs::RESOURCE_POOL_NAME),
        AGE,
    ],
    cells: resource_slice_cells,
};

fn resource_slice_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    vec![
        s(name(obj)),
        s(str_at(obj, &["spec", "nodeName"])),
        s(str_at(obj, &["spec", "driver"])),
        s(str_at(obj, &["spec", "pool", "name"])),
        s(age(obj, ctx.now)),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::*;

    #[test]
    fn bindings() {
        let rb = json!({
            "metadata": {"name": "rb"},
            "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
                         {"kind": "ServiceAccount", "namespace": "ns", "name": "sa"}, {"kind": "User", "name": "bob"}],
        });
        assert_eq!(
            row("rbac.authorization.k8s.io", "rolebindings", &rb),
            vec![
                json!("rb"),
                json!("ClusterRole/view"),
                json!("<unknown>"),
                json!("alice, bob"),
                json!("devs"),
                json!("ns/sa")
            ]
        );
    }

    #[test]
    fn csr() {
        let csr = json!({
            "metadata": {"name": "csr-1"},
            "spec": {"signerName": "kubernetes.io/kube-apiserver-client", "username": "admin", "expirationSeconds": 86400},
            "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"},
        });
        assert_eq!(
            row("certificates.k8s.io", "certificatesigningrequests", &csr)[2..],
            [
                json!("kubernetes.io/kube-apiserver-client"),
                json!("admin"),
                json!("24h"),
                json!("Approved,Issued")
            ]
        );
        let pending = row(
            "certificates.k8s.io",
            "certificatesigningrequests",
            &json!({}),
        );
        assert_eq!(
            pending[2..],
            [
                json!("<none>"),
                json!(""),
                json!("<none>"),
                json!("Pending")
            ]
        );
    }

    #[test]
    fn misc() {
        let pc = json!({"metadata": {"name": "system-node-critical"}, "value": 2000001000});
        assert_eq!(
            row("scheduling.k8s.io", "priorityclasses", &pc)[1..],
            [
                json!(2000001000),
                json!(false),
                json!("<unknown>"),
                json!("PreemptLowerPriority")
            ]
        );
        let lease = json!({"metadata": {"name": "n1"}, "spec": {"holderIdentity": "n1"}});
        assert_eq!(row("coordination.k8s.io", "leases", &lease)[1], json!("n1"));
        let wh = json!({"webhooks": [{}, {}]});
        assert_eq!(
            row(
                "admissionregistration.k8s.io",
                "validatingwebhookconfigurations",
                &wh
            )[1],
            json!(2)
        );
        let claim = json!({"status": {"allocation": {}, "reservedFor": [{}]}});
        assert_eq!(
            row("resource.k8s.io", "resourceclaims", &claim)[1],
            json!("allocated,reserved")
        );
        assert_eq!(
            row("resource.k8s.io", "resourceclaims", &json!({}))[1],
            json!("pending")
        );
    }

    #[test]
    fn flow_control() {
        let fs = json!({"metadata": {"name": "exempt"},
                        "spec": {"priorityLevelConfiguration": {"name": "exempt"}, "matchingPrecedence": 1},
                        "status": {"conditions": [{"type": "Dangling", "status": "False"}]}});
        assert_eq!(
            row("flowcontrol.apiserver.k8s.io", "flowschemas", &fs)[1..],
            [
                json!("exempt"),
                json!(1),
                json!("<none>"),
                json!("<unknown>"),
                json!("False")
            ]
        );
        let pl = json!({"spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 100,
                        "limitResponse": {"type": "Queue", "queuing": {"queues": 128, "handSize": 6, "queueLengthLimit": 50}}}}});
        assert_eq!(
            row(
                "flowcontrol.apiserver.k8s.io",
                "prioritylevelconfigurations",
                &pl
            )[1..6],
            [
                json!("Limited"),
                json!(100),
                json!(128),
                json!(6),
                json!(50)
            ]
        );
        let exempt = json!({"spec": {"type": "Exempt"}});
        assert_eq!(
            row(
                "flowcontrol.apiserver.k8s.io",
                "prioritylevelconfigurations",
                &exempt
            )[2..6],
            [
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn admission_policy_binding_param() {
        let b = json!({"spec": {"policyName": "p", "paramRef": {"selector": {
            "matchLabels": {"b": "2", "a": "1"},
            "matchExpressions": [{"key": "k", "operator": "In", "values": ["x", "y"]}]}}}});
        assert_eq!(
            row(
                "admissionregistration.k8s.io",
                "validatingadmissionpolicybindings",
                &b
            )[2],
            json!(
                "&LabelSelector{MatchLabels:map[string]string{a: 1,b: 2,},MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:k,Operator:In,Values:[x y],},},}"
            )
        );
        let b = json!({"spec": {"paramRef": {"name": "cfg"}}});
        assert_eq!(
            row(
                "admissionregistration.k8s.io",
                "validatingadmissionpolicybindings",
                &b
            )[2],
            json!("*/cfg")
        );
    }
}
