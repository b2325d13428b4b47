//! Printers for workloads: `apps`, `batch`, `autoscaling` and `policy`.

use serde_json::Value;

use super::quantity::{quantity_ptr, quantity_value};
use super::util::{
    age, arr_at, container_cells, format_label_selector, format_labels, get, go_zero_time, int_at,
    int_or_string, is_deleting, lower, map_at, n, name, opt_bool, opt_int, opt_str, s,
    selector_string, since, str_at, sub, time_at,
};
use super::{
    AGE, CONTAINERS_DESC, Ctx, IMAGES_DESC, NAME, Printer, col, docs, human_duration, wide,
};

/// Containers/images of the pod template at `path` (`.../template/spec/containers`).
fn template_containers(obj: &Value, path: &[&str]) -> (String, String) {
    container_cells(arr_at(obj, path))
}

/// `spec.replicas`, which v1 defaulting sets to 1.
fn desired_replicas(obj: &Value) -> i64 {
    opt_int(obj, &["spec", "replicas"]).unwrap_or(1)
}

// ---------------------------------------------------------------- deployments

pub(super) static DEPLOYMENTS: Printer = Printer {
    columns: &[
        NAME,
        col("Ready", "string", "Number of the pod with ready state"),
        col("Up-to-date", "string", docs::DEPLOY_STATUS_UPDATED),
        col("Available", "string", docs::DEPLOY_STATUS_AVAILABLE),
        AGE,
        wide("Containers", "string", CONTAINERS_DESC),
        wide("Images", "string", IMAGES_DESC),
        wide("Selector", "string", docs::DEPLOY_SPEC_SELECTOR),
    ],
    cells: deployment_cells,
};

fn deployment_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let (names, images) = template_containers(obj, &["spec", "template", "spec", "containers"]);
    let selector = selector_string(get(obj, &["spec", "selector"]))
        .unwrap_or_else(|_| "<invalid>".to_string());
    vec![
        s(name(obj)),
        s(format!(
            "{}/{}",
            int_at(obj, &["status", "readyReplicas"]),
            desired_replicas(obj)
        )),
        n(int_at(obj, &["status", "updatedReplicas"])),
        n(int_at(obj, &["status", "availableReplicas"])),
        s(age(obj, ctx.now)),
        s(names),
        s(images),
        s(selector),
    ]
}

// ---------------------------------------------------------------- replica sets

pub(super) static REPLICA_SETS: Printer = Printer {
    columns: &[
        NAME,
        col("Desired", "integer", docs::RS_SPEC_REPLICAS),
        col("Current", "integer", docs::RS_STATUS_REPLICAS),
        col("Ready", "integer", docs::RS_STATUS_READY_REPLICAS),
        AGE,
        wide("Containers", "string", CONTAINERS_DESC),
        wide("Images", "string", IMAGES_DESC),
        wide("Selector", "string", docs::RS_SPEC_SELECTOR),
    ],
    cells: replica_set_cells,
};

fn replica_set_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let (names, images) = template_containers(obj, &["spec", "template", "spec", "containers"]);
    vec![
        s(name(obj)),
        n(desired_replicas(obj)),
        n(int_at(obj, &["status", "replicas"])),
        n(int_at(obj, &["status", "readyReplicas"])),
        s(age(obj, ctx.now)),
        s(names),
        s(images),
        s(format_label_selector(get(obj, &["spec", "selector"]))),
    ]
}

// ---------------------------------------------------------------- stateful sets

pub(super) static STATEFUL_SETS: Printer = Printer {
    columns: &[
        NAME,
        col("Ready", "string", "Number of the pod with ready state"),
        AGE,
        wide("Containers", "string", CONTAINERS_DESC),
        wide("Images", "string", IMAGES_DESC),
    ],
    cells: stateful_set_cells,
};

fn stateful_set_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let (names, images) = template_containers(obj, &["spec", "template", "spec", "containers"]);
    vec![
        s(name(obj)),
        s(format!(
            "{}/{}",
            int_at(obj, &["status", "readyReplicas"]),
            desired_replicas(obj)
        )),
        s(age(obj, ctx.now)),
        s(names),
        s(images),
    ]
}

// ---------------------------------------------------------------- daemon sets

pub(super) static DAEMON_SETS: Printer = Printer {
    columns: &[
        NAME,
        col("Desired", "integer", docs::DS_STATUS_DESIRED),
        col("Current", "integer", docs::DS_STATUS_CURRENT),
        col("Ready", "integer", docs::DS_STATUS_READY),
        col("Up-to-date", "integer", docs::DS_STATUS_UPDATED),
        col("Available", "integer", docs::DS_STATUS_AVAILABLE),
        col("Node Selector", "string", docs::POD_SPEC_NODE_SELECTOR),
        AGE,
        wide("Containers", "string", CONTAINERS_DESC),
        wide("Images", "string", IMAGES_DESC),
        wide("Selector", "string", docs::DS_SPEC_SELECTOR),
    ],
    cells: daemon_set_cells,
};

fn daemon_set_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let (names, images) = template_containers(obj, &["spec", "template", "spec", "containers"]);
    let status = |field: &str| n(int_at(obj, &["status", field]));
    vec![
        s(name(obj)),
        status("desiredNumberScheduled"),
        status("currentNumberScheduled"),
        status("numberReady"),
        status("updatedNumberScheduled"),
        status("numberAvailable"),
        s(format_labels(map_at(
            obj,
            &["spec", "template", "spec", "nodeSelector"],
        ))),
        s(age(obj, ctx.now)),
        s(names),
        s(images),
        s(format_label_selector(get(obj, &["spec", "selector"]))),
    ]
}

// ---------------------------------------------------------------- controller revisions

pub(super) static CONTROLLER_REVISIONS: Printer = Printer {
    columns: &[
        NAME,
        col("Controller", "string", "Controller of the object"),
        col("Revision", "string", docs::CONTROLLER_REVISION_REVISION),
        AGE,
    ],
    cells: controller_revision_cells,
};

fn controller_revision_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let controller = arr_at(obj, &["metadata", "ownerReferences"])
        .iter()
        .find(|r| opt_bool(r, &["controller"]) == Some(true))
        .map_or_else(
            || "<none>".to_string(),
            |r| {
                // GroupKind of the owner: group from apiVersion ("apps/v1" → "apps").
                let api_version = str_at(r, &["apiVersion"]);
                let group = api_version.split_once('/').map_or("", |(group, _)| group);
                let kind = str_at(r, &["kind"]);
                let owner = str_at(r, &["name"]);
                if group.is_empty() && kind.is_empty() {
                    owner.to_string()
                } else if group.is_empty() {
                    format!("{}/{owner}", lower(kind))
                } else {
                    format!("{}/{owner}", lower(&format!("{kind}.{group}")))
                }
            },
        );
    vec![
        s(name(obj)),
        s(controller),
        n(int_at(obj, &["revision"])),
        s(age(obj, ctx.now)),
    ]
}

// ---------------------------------------------------------------- jobs

pub(super) static JOBS: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "string", "Status of the job."),
        col("Completions", "string", docs::JOB_STATUS_SUCCEEDED),
        col("Duration", "string", "Time required to complete the job."),
        AGE,
        wide("Containers", "string", CONTAINERS_DESC),
        wide("Images", "string", IMAGES_DESC),
        wide("Selector", "string", docs::JOB_SPEC_SELECTOR),
    ],
    cells: job_cells,
};

/// `hasJobCondition`: the first condition of that type decides.
fn has_job_condition(job: &Value, type_: &str) -> bool {
    arr_at(job, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == type_)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

fn job_status(job: &Value) -> &'static str {
    if has_job_condition(job, "Complete") {
        "Complete"
    } else if has_job_condition(job, "Failed") {
        "Failed"
    } else if is_deleting(job) {
        "Terminating"
    } else if has_job_condition(job, "Suspended") {
        "Suspended"
    } else if has_job_condition(job, "FailureTarget") {
        "FailureTarget"
    } else if has_job_condition(job, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    }
}

fn job_cells(job: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let succeeded = int_at(job, &["status", "succeeded"]);
    let completions = match opt_int(job, &["spec", "completions"]) {
        Some(c) => format!("{succeeded}/{c}"),
        None => {
            let parallelism = int_at(job, &["spec", "parallelism"]);
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    // A present-but-zero timestamp is still "set" for upstream's nil checks.
    let start = get(job, &["status", "startTime"]);
    let completion = get(job, &["status", "completionTime"]);
    let go_time = |path: &[&str]| time_at(job, path).unwrap_or_else(go_zero_time);
    let duration = match (start, completion) {
        (None, _) => String::new(),
        (Some(_), None) => human_duration(sub(ctx.now, go_time(&["status", "startTime"]))),
        (Some(_), Some(_)) => human_duration(sub(
            go_time(&["status", "completionTime"]),
            go_time(&["status", "startTime"]),
        )),
    };
    let (names, images) = template_containers(job, &["spec", "template", "spec", "containers"]);
    vec![
        s(name(job)),
        s(job_status(job)),
        s(completions),
        s(duration),
        s(age(job, ctx.now)),
        s(names),
        s(images),
        s(format_label_selector(get(job, &["spec", "selector"]))),
    ]
}

// ---------------------------------------------------------------- cron jobs

pub(super) static CRON_JOBS: Printer = Printer {
    columns: &[
        NAME,
        col("Schedule", "string", docs::CRONJOB_SPEC_SCHEDULE),
        col("Timezone", "string", docs::CRONJOB_SPEC_TIME_ZONE),
        col("Suspend", "boolean", docs::CRONJOB_SPEC_SUSPEND),
        col("Active", "integer", docs::CRONJOB_STATUS_ACTIVE),
        col(
            "Last Schedule",
            "string",
            docs::CRONJOB_STATUS_LAST_SCHEDULE,
        ),
        AGE,
        wide("Containers", "string", CONTAINERS_DESC),
        wide("Images", "string", IMAGES_DESC),
        wide("Selector", "string", docs::JOB_SPEC_SELECTOR),
    ],
    cells: cron_job_cells,
};

fn cron_job_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let last_schedule = if get(obj, &["status", "lastScheduleTime"]).is_some() {
        since(time_at(obj, &["status", "lastScheduleTime"]), ctx.now)
    } else {
        "<none>".to_string()
    };
    // v1 defaulting sets spec.suspend to false; printBoolPtr prints True/False.
    let suspend = if opt_bool(obj, &["spec", "suspend"]).unwrap_or(false) {
        "True"
    } else {
        "False"
    };
    let template = [
        "spec",
        "jobTemplate",
        "spec",
        "template",
        "spec",
        "containers",
    ];
    let (names, images) = template_containers(obj, &template);
    vec![
        s(name(obj)),
        s(str_at(obj, &["spec", "schedule"])),
        s(opt_str(obj, &["spec", "timeZone"]).unwrap_or("<none>")),
        s(suspend),
        n(super::util::len_at(obj, &["status", "active"])),
        s(last_schedule),
        s(age(obj, ctx.now)),
        s(names),
        s(images),
        s(format_label_selector(get(
            obj,
            &["spec", "jobTemplate", "spec", "selector"],
        ))),
    ]
}

// ---------------------------------------------------------------- horizontal pod autoscalers

pub(super) static HPAS: Printer = Printer {
    columns: &[
        NAME,
        col("Reference", "string", docs::HPA_SPEC_SCALE_TARGET_REF),
        col("Targets", "string", docs::HPA_SPEC_METRICS),
        col("MinPods", "string", docs::HPA_SPEC_MIN_REPLICAS),
        col("MaxPods", "string", docs::HPA_SPEC_MAX_REPLICAS),
        col("Replicas", "string", docs::HPA_STATUS_CURRENT_REPLICAS),
        AGE,
    ],
    cells: hpa_cells,
};

/// One `current/target` entry of a metric whose target is a value or an average value.
fn value_metric(spec: &Value, status: Option<&Value>, field: &str) -> String {
    let source_status = status.and_then(|st| get(st, &[field]));
    if let Some(avg) = get(spec, &[field, "target", "averageValue"]) {
        let current = source_status
            .and_then(|st| get(st, &["current", "averageValue"]))
            .map_or_else(|| "<unknown>".to_string(), |q| quantity_value(Some(q)));
        format!("{current}/{} (avg)", quantity_value(Some(avg)))
    } else {
        let current = source_status.map_or_else(
            || "<unknown>".to_string(),
            |st| quantity_ptr(get(st, &["current", "value"])),
        );
        format!(
            "{current}/{}",
            quantity_ptr(get(spec, &[field, "target", "value"]))
        )
    }
}

/// One `name: current/target` entry of a (container) resource metric.
fn resource_metric(spec: &Value, status: Option<&Value>, field: &str) -> String {
    let source_status = status.and_then(|st| get(st, &[field]));
    let resource = str_at(spec, &[field, "name"]);
    if let Some(avg) = get(spec, &[field, "target", "averageValue"]) {
        let current = source_status.map_or_else(
            || "<unknown>".to_string(),
            |st| quantity_ptr(get(st, &["current", "averageValue"])),
        );
        format!("{resource}: {current}/{}", quantity_value(Some(avg)))
    } else {
        let current = source_status
            .and_then(|st| opt_int(st, &["current", "averageUtilization"]))
            .map_or_else(|| "<unknown>".to_string(), |u| format!("{u}%"));
        let target = opt_int(spec, &[field, "target", "averageUtilization"])
            .map_or_else(|| "<auto>".to_string(), |u| format!("{u}%"));
        format!("{resource}: {current}/{target}")
    }
}

/// `formatHPAMetrics`: at most two entries, then `+ N more...`.
fn format_hpa_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 2;
    let mut list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let status = statuses.get(i);
            match str_at(spec, &["type"]) {
                "External" => value_metric(spec, status, "external"),
                "Object" => value_metric(spec, status, "object"),
                "Pods" => {
                    let current = status.and_then(|st| get(st, &["pods"])).map_or_else(
                        || "<unknown>".to_string(),
                        |st| quantity_ptr(get(st, &["current", "averageValue"])),
                    );
                    format!(
                        "{current}/{}",
                        quantity_ptr(get(spec, &["pods", "target", "averageValue"]))
                    )
                }
                "Resource" => resource_metric(spec, status, "resource"),
                "ContainerResource" => resource_metric(spec, status, "containerResource"),
                _ => "<unknown type>".to_string(),
            }
        })
        .collect();
    let count = list.len();
    if count > MAX {
        list.truncate(MAX);
        return format!("{} + {} more...", list.join(", "), count - MAX);
    }
    list.join(", ")
}

fn hpa_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        str_at(obj, &["spec", "scaleTargetRef", "kind"]),
        str_at(obj, &["spec", "scaleTargetRef", "name"])
    );
    // autoscaling/v1 objects carry the CPU target in dedicated fields.
    let metrics = match opt_int(obj, &["spec", "targetCPUUtilizationPercentage"]) {
        Some(target) if get(obj, &["spec", "metrics"]).is_none() => {
            let spec = serde_json::json!([{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}}]);
            let status = match opt_int(obj, &["status", "currentCPUUtilizationPercentage"]) {
                Some(current) => serde_json::json!([{"type": "Resource", "resource": {
                    "name": "cpu", "current": {"averageUtilization": current}}}]),
                None => serde_json::json!([]),
            };
            format_hpa_metrics(
                spec.as_array().map_or(&[], Vec::as_slice),
                status.as_array().map_or(&[], Vec::as_slice),
            )
        }
        _ => format_hpa_metrics(
            arr_at(obj, &["spec", "metrics"]),
            arr_at(obj, &["status", "currentMetrics"]),
        ),
    };
    // v2 defaulting sets spec.minReplicas to 1.
    let min_pods = opt_int(obj, &["spec", "minReplicas"]).unwrap_or(1);
    vec![
        s(name(obj)),
        s(reference),
        s(metrics),
        s(min_pods.to_string()),
        n(int_at(obj, &["spec", "maxReplicas"])),
        n(int_at(obj, &["status", "currentReplicas"])),
        s(age(obj, ctx.now)),
    ]
}

// ---------------------------------------------------------------- pod disruption budgets

pub(super) static PDBS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Min Available",
            "string",
            "The minimum number of pods that must be available.",
        ),
        col(
            "Max Unavailable",
            "string",
            "The maximum number of pods that may be unavailable.",
        ),
        col(
            "Allowed Disruptions",
            "integer",
            "Calculated number of pods that may be disrupted at this time.",
        ),
        AGE,
    ],
    cells: pdb_cells,
};

fn pdb_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let int_or_na =
        |field: &str| get(obj, &["spec", field]).map_or_else(|| "N/A".to_string(), int_or_string);
    vec![
        s(name(obj)),
        s(int_or_na("minAvailable")),
        s(int_or_na("maxUnavailable")),
        n(int_at(obj, &["status", "disruptionsAllowed"])),
        s(age(obj, ctx.now)),
    ]
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use serde_json::json;

    use super::super::test_support::*;

    #[test]
    fn deployment() {
        let d = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(Duration::hours(5) + Duration::minutes(7))},
            "spec": {"replicas": 3,
                     "selector": {"matchLabels": {"app": "web"},
                                  "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]},
                     "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
        });
        assert_eq!(
            row("apps", "deployments", &d),
            vec![
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("5h7m"),
                json!("nginx"),
                json!("nginx:1.27"),
                json!("app=web,tier in (be,fe)"),
            ]
        );
        let bare = row("apps", "deployments", &json!({"spec": {"selector": {}}}));
        assert_eq!(
            (bare[1].clone(), bare[7].clone()),
            (json!("0/1"), json!(""))
        );
        let bad = json!({"spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}}});
        assert_eq!(row("apps", "deployments", &bad)[7], json!("<invalid>"));
    }

    #[test]
    fn replica_stateful_daemon_sets() {
        let rs = json!({"metadata": {"name": "rs"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"b": "2", "a": "1"}}},
                        "status": {"replicas": 2, "readyReplicas": 1}});
        let r = row("apps", "replicasets", &rs);
        assert_eq!(r[1..4], [json!(2), json!(2), json!(1)]);
        assert_eq!(r[7], json!("a=1,b=2"));
        assert_eq!(row("apps", "replicasets", &json!({}))[7], json!("<none>"));

        let sts = json!({"metadata": {"name": "db"}, "spec": {"replicas": 3}, "status": {"readyReplicas": 3}});
        assert_eq!(row("apps", "statefulsets", &sts)[1], json!("3/3"));

        let ds = json!({"metadata": {"name": "ds"},
                        "spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}}},
                                 "selector": {"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}},
                        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                                   "updatedNumberScheduled": 3, "numberAvailable": 2}});
        let r = row("apps", "daemonsets", &ds);
        assert_eq!(
            r[1..7],
            [
                json!(3),
                json!(3),
                json!(2),
                json!(3),
                json!(2),
                json!("kubernetes.io/os=linux")
            ]
        );
        assert_eq!(r[10], json!("!x"));
    }

    #[test]
    fn controller_revision() {
        let cr = json!({"metadata": {"name": "ds-abc", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "controller": true}]}, "revision": 4});
        assert_eq!(
            row("apps", "controllerrevisions", &cr)[1..3],
            [json!("daemonset.apps/ds"), json!(4)]
        );
        assert_eq!(
            row("apps", "controllerrevisions", &json!({}))[1],
            json!("<none>")
        );
    }

    #[test]
    fn jobs() {
        let j = json!({
            "metadata": {"name": "pi", "creationTimestamp": ago(Duration::minutes(3))},
            "spec": {"completions": 1, "parallelism": 1, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}}},
            "status": {"succeeded": 1, "startTime": ago(Duration::minutes(3)), "completionTime": ago(Duration::seconds(170)),
                       "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]},
        });
        assert_eq!(
            row("batch", "jobs", &j)[..5],
            [
                json!("pi"),
                json!("Complete"),
                json!("1/1"),
                json!("10s"),
                json!("3m")
            ]
        );
        let running = json!({"spec": {"parallelism": 3}, "status": {"startTime": ago(Duration::seconds(65)), "active": 3}});
        assert_eq!(
            row("batch", "jobs", &running)[1..4],
            [json!("Running"), json!("0/1 of 3"), json!("65s")]
        );
        let failed = json!({"status": {"conditions": [{"type": "FailureTarget", "status": "True"}, {"type": "Failed", "status": "True"}]}});
        assert_eq!(
            row("batch", "jobs", &failed)[1..4],
            [json!("Failed"), json!("0/1"), json!("")]
        );
        let suspended =
            json!({"status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
        assert_eq!(row("batch", "jobs", &suspended)[1], json!("Suspended"));
        let met =
            json!({"status": {"conditions": [{"type": "SuccessCriteriaMet", "status": "True"}]}});
        assert_eq!(row("batch", "jobs", &met)[1], json!("SuccessCriteriaMet"));
        let mut terminating = met.clone();
        terminating["metadata"] = json!({"deletionTimestamp": "2025-06-01T11:00:00Z"});
        assert_eq!(row("batch", "jobs", &terminating)[1], json!("Terminating"));
        let zero_start = json!({"status": {"startTime": "0001-01-01T00:00:00Z"}});
        assert_eq!(row("batch", "jobs", &zero_start)[3], json!("292y"));
    }

    #[test]
    fn cron_job() {
        let cj = json!({
            "metadata": {"name": "hello"},
            "spec": {"schedule": "*/1 * * * *",
                     "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}},
            "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": ago(Duration::seconds(20))},
        });
        assert_eq!(
            row("batch", "cronjobs", &cj),
            vec![
                json!("hello"),
                json!("*/1 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("20s"),
                json!("<unknown>"),
                json!("c"),
                json!("busybox"),
                json!("<none>"),
            ]
        );
    }

    #[test]
    fn hpa() {
        let h = json!({
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 10,
                     "metrics": [
                        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1024Mi"}}},
                        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}},
                     ]},
            "status": {"currentReplicas": 2, "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12, "averageValue": "120m"}}},
            ]},
        });
        assert_eq!(
            row("autoscaling", "horizontalpodautoscalers", &h),
            vec![
                json!("web"),
                json!("Deployment/web"),
                json!("cpu: 12%/50%, memory: <unknown>/1Gi + 1 more..."),
                json!("2"),
                json!(10),
                json!(2),
                json!("<unknown>"),
            ]
        );
        let v1 = json!({"spec": {"maxReplicas": 3, "targetCPUUtilizationPercentage": 80}});
        assert_eq!(
            row("autoscaling", "horizontalpodautoscalers", &v1)[2..4],
            [json!("cpu: <unknown>/80%"), json!("1")]
        );
        let none = json!({"spec": {"metrics": []}});
        assert_eq!(
            row("autoscaling", "horizontalpodautoscalers", &none)[2],
            json!("<none>")
        );
        let external = json!({"spec": {"metrics": [{"type": "External", "external": {"target": {"type": "Value", "value": "100"}}}]},
                              "status": {"currentMetrics": [{"type": "External", "external": {"current": {"value": "50"}}}]}});
        assert_eq!(
            row("autoscaling", "horizontalpodautoscalers", &external)[2],
            json!("50/100")
        );
    }

    #[test]
    fn pdb() {
        let p = json!({"metadata": {"name": "p"}, "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
        assert_eq!(
            row("policy", "poddisruptionbudgets", &p)[1..4],
            [json!("50%"), json!("N/A"), json!(1)]
        );
        let p = json!({"spec": {"maxUnavailable": 1}});
        assert_eq!(
            row("policy", "poddisruptionbudgets", &p)[1..3],
            [json!("N/A"), json!("1")]
        );
    }
}
