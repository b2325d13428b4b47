//! The pod printer: readiness, the aggregate status/reason computed from
//! container states, restarts with the time of the last restart, and the
//! wide IP / node / nominated node / readiness gate columns.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::util::{
    age, arr_at, bool_at, get, int_at, is_deleting, len_at, name, s, since, str_at, time_at,
};
use super::{AGE, Ctx, NAME, Printer, col, docs, wide};

pub(super) static PODS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Ready",
            "string",
            "The aggregate readiness state of this pod for accepting traffic.",
        ),
        col(
            "Status",
            "string",
            "The aggregate status of the containers in this pod.",
        ),
        col(
            "Restarts",
            "string",
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        ),
        AGE,
        wide("IP", "string", docs::POD_STATUS_POD_IP),
        wide("Node", "string", docs::POD_SPEC_NODE_NAME),
        wide(
            "Nominated Node",
            "string",
            docs::POD_STATUS_NOMINATED_NODE_NAME,
        ),
        wide("Readiness Gates", "string", docs::POD_SPEC_READINESS_GATES),
    ],
    cells: pod_cells,
};

/// `lastState.terminated.finishedAt` of a container status, if terminated before.
fn last_termination(status: &Value) -> Option<DateTime<Utc>> {
    get(status, &["lastState", "terminated"])?;
    time_at(status, &["lastState", "terminated", "finishedAt"])
}

fn later(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn condition_status<'a>(conditions: &'a [Value], type_: &str) -> Option<&'a str> {
    conditions
        .iter()
        .find(|c| str_at(c, &["type"]) == type_)
        .map(|c| str_at(c, &["status"]))
}

/// The reason of a terminated container: its `reason`, else `Signal:N`, else `ExitCode:N`.
fn terminated_reason(t: &Value) -> String {
    let reason = str_at(t, &["reason"]);
    if !reason.is_empty() {
        return reason.to_string();
    }
    let signal = int_at(t, &["signal"]);
    if signal != 0 {
        format!("Signal:{signal}")
    } else {
        format!("ExitCode:{}", int_at(t, &["exitCode"]))
    }
}

fn pod_cells(pod: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let init_specs = arr_at(pod, &["spec", "initContainers"]);
    let conditions = arr_at(pod, &["status", "conditions"]);
    let mut total = len_at(pod, &["spec", "containers"]);
    let mut ready = 0i64;
    let mut restarts = 0i64;
    let mut restartable_restarts = 0i64;
    let mut last_restart = None;
    let mut last_restartable_restart = None;

    let phase = str_at(pod, &["status", "phase"]);
    let status_reason = str_at(pod, &["status", "reason"]);
    let mut reason = if status_reason.is_empty() {
        phase.to_string()
    } else {
        status_reason.to_string()
    };
    if conditions.iter().any(|c| {
        str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated"
    }) {
        reason = "SchedulingGated".to_string();
    }

    // Sidecars (init containers with restartPolicy Always) count as containers.
    let mut restartable: HashMap<&str, bool> = HashMap::new();
    for c in init_specs {
        let is_sidecar = str_at(c, &["restartPolicy"]) == "Always";
        restartable.insert(str_at(c, &["name"]), is_sidecar);
        if is_sidecar {
            total += 1;
        }
    }

    let mut initializing = false;
    for (i, status) in arr_at(pod, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let count = int_at(status, &["restartCount"]);
        let is_sidecar = restartable
            .get(str_at(status, &["name"]))
            .copied()
            .unwrap_or(false);
        restarts += count;
        last_restart = later(last_restart, last_termination(status));
        if is_sidecar {
            restartable_restarts += count;
            last_restartable_restart = later(last_restartable_restart, last_termination(status));
        }
        let terminated = get(status, &["state", "terminated"]);
        let waiting_reason = str_at(status, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| int_at(t, &["exitCode"]) == 0) {
            continue;
        }
        if is_sidecar && bool_at(status, &["started"]) {
            if bool_at(status, &["ready"]) {
                ready += 1;
            }
            continue;
        }
        reason = if let Some(t) = terminated {
            if str_at(t, &["reason"]).is_empty() {
                let signal = int_at(t, &["signal"]);
                if signal != 0 {
                    format!("Init:Signal:{signal}")
                } else {
                    format!("Init:ExitCode:{}", int_at(t, &["exitCode"]))
                }
            } else {
                format!("Init:{}", str_at(t, &["reason"]))
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    if !initializing || condition_status(conditions, "Initialized") == Some("True") {
        restarts = restartable_restarts;
        last_restart = last_restartable_restart;
        let mut has_running = false;
        for status in arr_at(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += int_at(status, &["restartCount"]);
            last_restart = later(last_restart, last_termination(status));
            let waiting_reason = str_at(status, &["state", "waiting", "reason"]);
            if get(status, &["state", "waiting"]).is_some() && !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = get(status, &["state", "terminated"]) {
                reason = terminated_reason(t);
            } else if bool_at(status, &["ready"]) && get(status, &["state", "running"]).is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // Back to "Running" if a container still runs. (v1.34 has no special
        // case for a failed sibling container; that arrived in v1.35.)
        if reason == "Completed" && has_running {
            reason = if condition_status(conditions, "Ready") == Some("True") {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    if is_deleting(pod) && status_reason == "NodeLost" {
        reason = "Unknown".to_string();
    } else if is_deleting(pod) && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), ctx.now)),
        _ => restarts.to_string(),
    };

    // v1 -> internal conversion: status.podIP, when set, is authoritative over podIPs[0].
    let pod_ip = match str_at(pod, &["status", "podIP"]) {
        "" => arr_at(pod, &["status", "podIPs"])
            .first()
            .map_or("", |ip| str_at(ip, &["ip"])),
        ip => ip,
    };
    let readiness_gates = arr_at(pod, &["spec", "readinessGates"]);
    let gates = if readiness_gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_conditions = readiness_gates
            .iter()
            .filter(|g| condition_status(conditions, str_at(g, &["conditionType"])) == Some("True"))
            .count();
        format!("{true_conditions}/{}", readiness_gates.len())
    };

    vec![
        s(name(pod)),
        s(format!("{ready}/{total}")),
        s(reason),
        s(restarts_cell),
        s(age(pod, ctx.now)),
        s(or_none(pod_ip)),
        s(or_none(str_at(pod, &["spec", "nodeName"]))),
        s(or_none(str_at(pod, &["status", "nominatedNodeName"]))),
        s(gates),
    ]
}

fn or_none(v: &str) -> &str {
    if v.is_empty() { "<none>" } else { v }
}

/// Row conditions upstream attaches to completed pods.
pub(super) fn pod_row_conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match str_at(pod, &["status", "phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{
        "type": "Completed",
        "status": "True",
        "reason": reason,
        "message": message,
    }]))
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use serde_json::{Value, json};

    use super::super::test_support::{self, *};

    fn row(resource: &str, obj: &Value) -> Vec<Value> {
        test_support::row("", resource, obj)
    }

    fn pod(status: Value) -> Value {
        json!({
            "metadata": {"name": "web", "creationTimestamp": ago(Duration::minutes(5))},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": status,
        })
    }

    #[test]
    fn running_pod() {
        let p = pod(json!({
            "phase": "Running",
            "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                {"name": "b", "ready": true, "restartCount": 0, "state": {"running": {}}},
            ],
        }));
        assert_eq!(
            row("pods", &p),
            vec![
                json!("web"),
                json!("2/2"),
                json!("Running"),
                json!("0"),
                json!("5m"),
                json!("10.0.0.5"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
            ]
        );
    }

    #[test]
    fn crash_looping_pod_with_restart_age() {
        let p = pod(json!({
            "phase": "Running",
            "containerStatuses": [
                {"name": "a", "ready": false, "restartCount": 4,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(Duration::seconds(75))}}},
                {"name": "b", "ready": true, "restartCount": 1, "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(Duration::minutes(3))}}},
            ],
        }));
        let r = row("pods", &p);
        assert_eq!(r[1], json!("1/2"));
        assert_eq!(r[2], json!("CrashLoopBackOff"));
        assert_eq!(r[3], json!("5 (75s ago)"));
    }

    #[test]
    fn init_container_states() {
        let mut p = pod(json!({
            "phase": "Pending",
            "initContainerStatuses": [
                {"name": "init", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}},
            ],
        }));
        p["spec"]["initContainers"] = json!([{"name": "init"}, {"name": "init2"}]);
        assert_eq!(row("pods", &p)[2], json!("Init:0/2"));

        p["status"]["initContainerStatuses"] = json!([
            {"name": "init", "state": {"terminated": {"exitCode": 0}}},
            {"name": "init2", "state": {"waiting": {"reason": "ImagePullBackOff"}}},
        ]);
        assert_eq!(row("pods", &p)[2], json!("Init:ImagePullBackOff"));

        p["status"]["initContainerStatuses"] = json!([
            {"name": "init", "state": {"terminated": {"exitCode": 2}}},
        ]);
        assert_eq!(row("pods", &p)[2], json!("Init:ExitCode:2"));

        p["status"]["initContainerStatuses"] = json!([
            {"name": "init", "state": {"terminated": {"exitCode": 137, "signal": 9}}},
        ]);
        assert_eq!(row("pods", &p)[2], json!("Init:Signal:9"));

        p["status"]["initContainerStatuses"] = json!([
            {"name": "init", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}},
        ]);
        assert_eq!(row("pods", &p)[2], json!("Init:Error"));
    }

    #[test]
    fn sidecar_counts_as_container() {
        let mut p = pod(json!({
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "initContainerStatuses": [
                {"name": "proxy", "ready": true, "started": true, "restartCount": 2, "state": {"running": {}}},
            ],
            "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                {"name": "b", "ready": true, "restartCount": 1, "state": {"running": {}}},
            ],
        }));
        p["spec"]["initContainers"] = json!([{"name": "proxy", "restartPolicy": "Always"}]);
        let r = row("pods", &p);
        assert_eq!(r[1], json!("3/3"));
        assert_eq!(r[2], json!("Running"));
        assert_eq!(r[3], json!("3"));
    }

    #[test]
    fn completed_and_terminating_pods() {
        let p = pod(json!({
            "phase": "Succeeded",
            "containerStatuses": [
                {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            ],
        }));
        assert_eq!(row("pods", &p)[1..3], [json!("0/2"), json!("Completed")]);
        assert_eq!(
            super::pod_row_conditions(&p),
            Some(
                json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
                         "message": "The pod has completed successfully."}])
            )
        );

        // One container completed, one still running but the pod is not ready.
        let p = pod(json!({
            "phase": "Running",
            "containerStatuses": [
                {"name": "a", "ready": true, "state": {"running": {}}},
                {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            ],
        }));
        assert_eq!(row("pods", &p)[2], json!("NotReady"));

        // v1.34 reports the reason of the first container in the list.
        let p = pod(json!({
            "phase": "Failed",
            "containerStatuses": [
                {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "b", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}},
            ],
        }));
        assert_eq!(row("pods", &p)[2], json!("Completed"));
        let p = pod(json!({
            "phase": "Failed",
            "containerStatuses": [
                {"name": "a", "state": {"terminated": {"exitCode": 1}}},
                {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            ],
        }));
        assert_eq!(row("pods", &p)[2], json!("ExitCode:1"));

        let mut p = pod(json!({"phase": "Running"}));
        p["metadata"]["deletionTimestamp"] = json!(ago(Duration::seconds(1)));
        assert_eq!(row("pods", &p)[2], json!("Terminating"));
        p["status"]["reason"] = json!("NodeLost");
        assert_eq!(row("pods", &p)[2], json!("Unknown"));

        let p = pod(json!({
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
        }));
        assert_eq!(row("pods", &p)[2], json!("SchedulingGated"));
    }

    #[test]
    fn pod_wide_columns() {
        let mut p = pod(json!({
            "phase": "Running",
            "podIP": "10.1.1.1",
            "nominatedNodeName": "n2",
            "conditions": [{"type": "example.com/gate", "status": "True"}],
        }));
        p["spec"]["nodeName"] = json!("n1");
        p["spec"]["readinessGates"] =
            json!([{"conditionType": "example.com/gate"}, {"conditionType": "other"}]);
        assert_eq!(
            row("pods", &p)[5..],
            [json!("10.1.1.1"), json!("n1"), json!("n2"), json!("1/2")]
        );
    }
}
