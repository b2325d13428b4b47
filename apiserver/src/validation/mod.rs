pub mod cron;
pub mod cronjob;
pub mod names;
pub mod pod_update;
pub mod sysctls;

use serde_json::Value;

use crate::api_error::FieldError;

/// The spec checks of a workload kind (the `Workload` strategy's kinds).
pub fn workload(obj: &Value) -> Vec<FieldError> {
    match obj.get("kind").and_then(Value::as_str) {
        Some("CronJob") => cronjob::validate(obj),
        _ => Vec::new(),
    }
}
