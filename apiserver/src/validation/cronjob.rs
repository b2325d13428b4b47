//! CronJob spec checks of upstream's batch validation: the schedule parses,
//! names no time zone of its own, and `timeZone` is an IANA zone.

use serde_json::Value;

use crate::api_error::{FieldError, FieldErrorKind};
use crate::validation::cron;

/// The `spec` checks of a CronJob.
pub fn validate(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let schedule = spec.get("schedule").and_then(Value::as_str).unwrap_or("");
    if schedule.is_empty() {
        errs.push(FieldError::required("spec.schedule", ""));
    } else {
        if let Err(e) = cron::check_schedule(schedule) {
            errs.push(FieldError::invalid("spec.schedule", schedule, e));
        }
        // Upstream lets an update keep a TZ its stored schedule already had;
        // ironkube never stored one, so every write is refused.
        if schedule.contains("TZ") {
            errs.push(FieldError::invalid(
                "spec.schedule",
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    non_negative(spec, "startingDeadlineSeconds", &mut errs);
    if let Some(zone) = spec.get("timeZone").and_then(Value::as_str) {
        errs.extend(time_zone(zone));
    }
    if let Some(policy) = spec.get("concurrencyPolicy").and_then(Value::as_str)
        && !matches!(policy, "Allow" | "Forbid" | "Replace")
    {
        errs.push(if policy.is_empty() {
            FieldError::required("spec.concurrencyPolicy", "")
        } else {
            FieldError::new(
                FieldErrorKind::NotSupported,
                "spec.concurrencyPolicy",
                Some(format!("{policy:?}")),
                "supported values: \"Allow\", \"Forbid\", \"Replace\"",
            )
        });
    }
    non_negative(spec, "successfulJobsHistoryLimit", &mut errs);
    non_negative(spec, "failedJobsHistoryLimit", &mut errs);
    errs
}

fn non_negative(spec: &Value, field: &str, errs: &mut Vec<FieldError>) {
    if let Some(n) = spec.get(field).and_then(Value::as_i64).filter(|n| *n < 0) {
        errs.push(FieldError::new(
            FieldErrorKind::Invalid,
            format!("spec.{field}"),
            Some(n.to_string()),
            "must be greater than or equal to 0",
        ));
    }
}

/// Upstream's `validateTimeZone`: a non-empty tz database name, not `Local`.
fn time_zone(zone: &str) -> Vec<FieldError> {
    const FIELD: &str = "spec.timeZone";
    if zone.is_empty() {
        return vec![FieldError::invalid(
            FIELD,
            zone,
            "timeZone must be nil or non-empty string",
        )];
    }
    // The tz database's naming rules, with digits and `+` tolerated for
    // legacy names (`Etc/GMT+5`).
    let well_formed = zone.split('/').all(|part| {
        (1..=14).contains(&part.len())
            && part != "."
            && part != ".."
            && !part.starts_with('-')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
    });
    if !well_formed {
        return vec![FieldError::invalid(
            FIELD,
            zone,
            format!("unknown time zone {zone}"),
        )];
    }
    let mut errs = Vec::new();
    if zone.eq_ignore_ascii_case("Local") {
        errs.push(FieldError::invalid(
            FIELD,
            zone,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    if let Err(e) = cron::load_location(zone) {
        errs.push(FieldError::invalid(FIELD, zone, e));
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn messages(spec: Value) -> Vec<String> {
        validate(&json!({"kind": "CronJob", "spec": spec}))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn valid_cronjobs_pass() {
        assert!(messages(json!({"schedule": "*/5 * * * *", "timeZone": "Asia/Tokyo"})).is_empty());
        assert!(messages(json!({"schedule": "@daily", "concurrencyPolicy": "Forbid"})).is_empty());
    }

    #[test]
    fn schedule_errors() {
        assert_eq!(messages(json!({})), ["spec.schedule: Required value"]);
        assert_eq!(
            messages(json!({"schedule": "61 * * * *"})),
            [
                "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61"
            ]
        );
        assert_eq!(
            messages(json!({"schedule": "TZ=UTC 0 * * * *"})),
            [
                "spec.schedule: Invalid value: \"TZ=UTC 0 * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            ]
        );
    }

    #[test]
    fn time_zone_errors() {
        let zone = |z: &str| messages(json!({"schedule": "@hourly", "timeZone": z}));
        assert_eq!(
            zone(""),
            ["spec.timeZone: Invalid value: \"\": timeZone must be nil or non-empty string"]
        );
        assert_eq!(
            zone("Mars/Olympus_Mons"),
            [
                "spec.timeZone: Invalid value: \"Mars/Olympus_Mons\": unknown time zone Mars/Olympus_Mons"
            ]
        );
        assert_eq!(
            zone("Europe/Far_Too_Long_Name"),
            [
                "spec.timeZone: Invalid value: \"Europe/Far_Too_Long_Name\": unknown time zone Europe/Far_Too_Long_Name"
            ]
        );
        assert_eq!(
            zone("Local"),
            [
                "spec.timeZone: Invalid value: \"Local\": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"
            ]
        );
        assert_eq!(zone("local").len(), 2);
    }

    #[test]
    fn numeric_fields_and_policy() {
        assert_eq!(
            messages(
                json!({"schedule": "@daily", "startingDeadlineSeconds": -1, "concurrencyPolicy": "Sometimes"})
            ),
            [
                "spec.startingDeadlineSeconds: Invalid value: -1: must be greater than or equal to 0",
                "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\""
            ]
        );
    }
}
