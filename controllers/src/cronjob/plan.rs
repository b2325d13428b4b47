//! The pure part of a CronJob sync: which schedule time is due, what the
//! Job for it looks like, how `status.active` follows the Jobs, and which
//! finished Jobs fall outside the history limits. Everything here takes the
//! time as an argument, so the scheduling rules are tested without a clock.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::tz::TimeZone;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

use super::schedule::Schedule;
use crate::workload::ownership::{Owner, controller_of};

/// The annotation carrying the scheduled time a Job was started for.
pub(crate) const SCHEDULED_TIMESTAMP_ANNOTATION: &str =
    "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// Upstream warns once more than this many start times were missed.
pub(crate) const MISSED_WARNING_THRESHOLD: usize = 100;

/// The schedule time a sync should act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Due {
    /// The most recent schedule time in `(earliest, now]`, if any.
    pub(crate) scheduled: Option<Timestamp>,
    /// More than [`MISSED_WARNING_THRESHOLD`] start times were missed.
    pub(crate) too_many_missed: bool,
}

/// The most recent schedule time not yet acted on: between the last
/// schedule time (or the CronJob's creation) and `now`, and no further back
/// than `startingDeadlineSeconds` when that is set.
pub(crate) fn due(cj: &CronJob, schedule: &Schedule, tz: &TimeZone, now: Timestamp) -> Due {
    let status = cj.status.as_ref();
    let mut earliest = status
        .and_then(|s| s.last_schedule_time.as_ref())
        .or(cj.metadata.creation_timestamp.as_ref())
        .map_or(now, |t| t.0);
    if let Some(deadline) = cj.spec.as_ref().and_then(|s| s.starting_deadline_seconds) {
        let bound = now
            .checked_sub(jiff::SignedDuration::from_secs(deadline))
            .unwrap_or(now);
        if bound > earliest {
            earliest = bound;
        }
    }
    most_recent(schedule, tz, earliest, now)
}

fn most_recent(schedule: &Schedule, tz: &TimeZone, earliest: Timestamp, now: Timestamp) -> Due {
    let none = Due {
        scheduled: None,
        too_many_missed: false,
    };
    let Some(first) = schedule.next(earliest, tz).filter(|t| *t <= now) else {
        return none;
    };
    let mut last = first;
    let mut count = 1;
    while let Some(t) = schedule.next(last, tz).filter(|t| *t <= now) {
        last = t;
        count += 1;
        if count > MISSED_WARNING_THRESHOLD {
            break;
        }
    }
    if count <= MISSED_WARNING_THRESHOLD {
        return Due {
            scheduled: Some(last),
            too_many_missed: false,
        };
    }
    // Many times were missed: find the latest by walking windows that end
    // now, each wider than the last, instead of every time since `earliest`.
    let windows = [3_600i64, 86_400, 32 * 86_400, 400 * 86_400];
    for w in windows {
        let start = now
            .checked_sub(jiff::SignedDuration::from_secs(w))
            .unwrap_or(earliest)
            .max(earliest);
        let mut latest = None;
        let mut at = start;
        while let Some(t) = schedule.next(at, tz).filter(|t| *t <= now) {
            latest = Some(t);
            at = t;
        }
        if latest.is_some() {
            return Due {
                scheduled: latest,
                too_many_missed: true,
            };
        }
    }
    Due {
        scheduled: Some(last),
        too_many_missed: true,
    }
}

/// `scheduled` is already past its starting deadline at `now`.
pub(crate) fn too_late(cj: &CronJob, scheduled: Timestamp, now: Timestamp) -> bool {
    cj.spec
        .as_ref()
        .and_then(|s| s.starting_deadline_seconds)
        .is_some_and(|d| scheduled.as_second().saturating_add(d) < now.as_second())
}

/// How long until the next schedule time after `now` (a little after it, so
/// the requeued sync sees that time as due).
pub(crate) fn requeue_after(
    schedule: &Schedule,
    tz: &TimeZone,
    now: Timestamp,
) -> Option<Duration> {
    let next = schedule.next(now, tz)?;
    let wait = now.duration_until(next).unsigned_abs();
    Some(wait + Duration::from_millis(100))
}

/// `<cronjob>-<scheduled time in minutes since the epoch>`.
pub(crate) fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// RFC 3339 in the schedule's time zone, as the annotation carries it.
pub(crate) fn format_in_zone(t: Timestamp, tz: &TimeZone) -> String {
    let zoned = t.to_zoned(tz.clone());
    if zoned.offset().seconds() == 0 {
        zoned.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// The Job started for `scheduled`: the template's metadata and spec, the
/// scheduled-time annotation and the CronJob's controller reference.
pub(crate) fn job_for(
    cj: &CronJob,
    owner: &Owner,
    scheduled: Timestamp,
    tz: &TimeZone,
) -> Option<Job> {
    let template = &cj.spec.as_ref()?.job_template;
    let meta = template.metadata.clone().unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP_ANNOTATION.to_string(),
        format_in_zone(scheduled, tz),
    );
    Some(Job {
        metadata: ObjectMeta {
            name: Some(job_name(&owner.name, scheduled)),
            namespace: Some(owner.namespace.clone()),
            labels: meta.labels,
            annotations: Some(annotations),
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner.reference()]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    })
}

/// A Job's terminal condition type (`Complete` or `Failed`), if it finished.
pub(crate) fn finished(job: &Job) -> Option<&'static str> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    ["Complete", "Failed"].into_iter().find(|t| {
        conditions
            .iter()
            .any(|c| c.type_ == *t && c.status == "True")
    })
}

pub(crate) fn reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".to_string()),
        kind: Some("Job".to_string()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// What reconciling `status.active` with the controlled Jobs found.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ActiveChanges {
    pub(crate) active: Vec<ObjectReference>,
    /// Active Jobs that finished, with their terminal condition.
    pub(crate) completed: Vec<(String, &'static str)>,
    /// Unfinished Jobs missing from `active` (added back).
    pub(crate) unexpected: Vec<String>,
    /// Jobs in `active` that no longer exist (removed).
    pub(crate) missing: Vec<String>,
    pub(crate) last_successful: Option<Timestamp>,
}

/// The Jobs `cj` controls, among `jobs` (its namespace's).
pub(crate) fn controlled<'a>(cj: &CronJob, jobs: &'a [Job]) -> Vec<&'a Job> {
    let uid = cj.metadata.uid.as_deref().unwrap_or_default();
    jobs.iter()
        .filter(|j| controller_of(&j.metadata).is_some_and(|r| r.uid == uid && r.kind == "CronJob"))
        .collect()
}

/// Upstream's reconciliation of `status.active`: finished Jobs leave it
/// (a success moves `lastSuccessfulTime` forward), unfinished controlled
/// Jobs join it, and references to Jobs that are gone are dropped.
pub(crate) fn reconcile_active(cj: &CronJob, owned: &[&Job]) -> ActiveChanges {
    let status = cj.status.clone().unwrap_or_default();
    let listed = status.active.unwrap_or_default();
    let in_list = |uid: &str| listed.iter().any(|r| r.uid.as_deref() == Some(uid));
    let mut changes = ActiveChanges {
        last_successful: status.last_successful_time.map(|t| t.0),
        ..ActiveChanges::default()
    };
    let mut active: Vec<ObjectReference> = Vec::new();
    for job in owned {
        let uid = job.metadata.uid.as_deref().unwrap_or_default();
        let name = job.metadata.name.clone().unwrap_or_default();
        match finished(job) {
            None => {
                if !in_list(uid) {
                    changes.unexpected.push(name);
                }
                active.push(reference(job));
            }
            Some(kind) => {
                if in_list(uid) {
                    changes.completed.push((name, kind));
                }
                if kind == "Complete" {
                    let done = job
                        .status
                        .as_ref()
                        .and_then(|s| s.completion_time.as_ref())
                        .map(|t| t.0);
                    if done > changes.last_successful {
                        changes.last_successful = done;
                    }
                }
            }
        }
    }
    for r in &listed {
        let exists = owned
            .iter()
            .any(|j| j.metadata.uid.is_some() && j.metadata.uid == r.uid);
        if !exists {
            changes.missing.push(r.name.clone().unwrap_or_default());
        }
    }
    // Keep the listed order, then add the newcomers, for a stable status.
    let mut ordered: Vec<ObjectReference> = listed
        .iter()
        .filter_map(|r| active.iter().find(|a| a.uid == r.uid).cloned())
        .collect();
    for a in active {
        if !ordered.iter().any(|o| o.uid == a.uid) {
            ordered.push(a);
        }
    }
    changes.active = ordered;
    changes
}

/// Finished Jobs beyond the history limits, oldest first: successful ones
/// beyond `successfulJobsHistoryLimit`, failed ones beyond
/// `failedJobsHistoryLimit` (an unset limit keeps them all).
pub(crate) fn beyond_history<'a>(cj: &CronJob, owned: &[&'a Job]) -> Vec<&'a Job> {
    let spec = cj.spec.as_ref();
    let limits = [
        (
            "Complete",
            spec.and_then(|s| s.successful_jobs_history_limit),
        ),
        ("Failed", spec.and_then(|s| s.failed_jobs_history_limit)),
    ];
    let mut out = Vec::new();
    for (kind, limit) in limits {
        let Some(limit) = limit else { continue };
        let mut done: Vec<&Job> = owned
            .iter()
            .copied()
            .filter(|j| finished(j) == Some(kind))
            .collect();
        let keep = usize::try_from(limit.max(0)).unwrap_or(0);
        if done.len() <= keep {
            continue;
        }
        done.sort_by_key(|j| {
            let start = j.status.as_ref().and_then(|s| s.start_time.as_ref());
            let created = j.metadata.creation_timestamp.as_ref();
            (
                start.or(created).map(|t| t.0),
                j.metadata.name.clone().unwrap_or_default(),
            )
        });
        let excess = done.len() - keep;
        out.extend(done.into_iter().take(excess));
    }
    out
}

/// The status fields a sync maintains, as a merge patch body.
pub(crate) fn status_patch(
    active: &[ObjectReference],
    last_schedule: Option<Timestamp>,
    last_successful: Option<Timestamp>,
) -> serde_json::Value {
    let time = |t: Option<Timestamp>| t.map(Time);
    let mut status = BTreeMap::new();
    status.insert(
        "active",
        if active.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::json!(active)
        },
    );
    status.insert("lastScheduleTime", serde_json::json!(time(last_schedule)));
    status.insert(
        "lastSuccessfulTime",
        serde_json::json!(time(last_successful)),
    );
    serde_json::json!({ "status": status })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn cronjob(v: serde_json::Value) -> CronJob {
        let mut base = json!({
            "metadata": {"name": "cj", "namespace": "ns", "uid": "cj-uid",
                         "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": {}}}}
        });
        merge(&mut base, v);
        serde_json::from_value(base).unwrap()
    }

    fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
        match (a, b) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    fn job(name: &str, finished_as: Option<&str>, start: &str) -> Job {
        let conditions: Vec<serde_json::Value> = finished_as
            .map(|t| vec![json!({"type": t, "status": "True"})])
            .unwrap_or_default();
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "cj",
                                     "uid": "cj-uid", "controller": true}]},
            "status": {"conditions": conditions, "startTime": start,
                       "completionTime": if finished_as == Some("Complete") { json!(start) } else { json!(null) }}
        }))
        .unwrap()
    }

    fn due_at(cj: &CronJob, now: &str) -> Due {
        let s = Schedule::parse(&cj.spec.as_ref().unwrap().schedule).unwrap();
        due(cj, &s, &TimeZone::UTC, ts(now))
    }

    #[test]
    fn due_times() {
        let fresh = cronjob(json!({}));
        assert_eq!(
            due_at(&fresh, "2024-01-01T00:00:59Z").scheduled,
            None,
            "nothing before the first minute"
        );
        assert_eq!(
            due_at(&fresh, "2024-01-01T00:01:00Z").scheduled,
            Some(ts("2024-01-01T00:01:00Z"))
        );
        let d = due_at(&fresh, "2024-01-01T00:05:30Z");
        assert_eq!(d.scheduled, Some(ts("2024-01-01T00:05:00Z")));
        assert!(!d.too_many_missed);

        let scheduled = cronjob(json!({"status": {"lastScheduleTime": "2024-01-01T00:05:00Z"}}));
        assert_eq!(due_at(&scheduled, "2024-01-01T00:05:40Z").scheduled, None);
        assert_eq!(
            due_at(&scheduled, "2024-01-01T00:06:01Z").scheduled,
            Some(ts("2024-01-01T00:06:00Z"))
        );

        // Five hours of every-minute schedule missed: warned, latest picked.
        let d = due_at(&fresh, "2024-01-01T05:00:10Z");
        assert_eq!(d.scheduled, Some(ts("2024-01-01T05:00:00Z")));
        assert!(d.too_many_missed);

        // A starting deadline bounds the look-back, so nothing is "missed".
        let bounded = cronjob(json!({"spec": {"startingDeadlineSeconds": 200}}));
        let d = due_at(&bounded, "2024-01-01T05:00:10Z");
        assert_eq!(d.scheduled, Some(ts("2024-01-01T05:00:00Z")));
        assert!(!d.too_many_missed);
        assert!(!too_late(
            &bounded,
            ts("2024-01-01T05:00:00Z"),
            ts("2024-01-01T05:00:10Z")
        ));
        assert!(too_late(
            &bounded,
            ts("2024-01-01T05:00:00Z"),
            ts("2024-01-01T05:03:21Z")
        ));
        assert!(!too_late(
            &fresh,
            ts("2020-01-01T00:00:00Z"),
            ts("2024-01-01T05:00:10Z")
        ));
    }

    #[test]
    fn names_annotations_and_requeue() {
        let at = ts("2024-01-01T00:05:00Z");
        assert_eq!(job_name("cj", at), format!("cj-{}", at.as_second() / 60));
        assert_eq!(format_in_zone(at, &TimeZone::UTC), "2024-01-01T00:05:00Z");
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(format_in_zone(at, &berlin), "2024-01-01T01:05:00+01:00");
        let cj = cronjob(json!({"spec": {"jobTemplate": {"metadata": {"labels": {"a": "b"}}}}}));
        let owner = Owner::from_meta("batch/v1", "CronJob", &cj.metadata).unwrap();
        let job = job_for(&cj, &owner, at, &TimeZone::UTC).unwrap();
        let meta = &job.metadata;
        assert_eq!(meta.name.as_deref(), Some(job_name("cj", at).as_str()));
        assert_eq!(meta.labels.as_ref().unwrap()["a"], "b");
        assert_eq!(
            meta.annotations.as_ref().unwrap()[SCHEDULED_TIMESTAMP_ANNOTATION],
            "2024-01-01T00:05:00Z"
        );
        let r = &meta.owner_references.as_ref().unwrap()[0];
        assert_eq!((r.kind.as_str(), r.controller), ("CronJob", Some(true)));
        let s = Schedule::parse("*/1 * * * *").unwrap();
        assert_eq!(
            requeue_after(&s, &TimeZone::UTC, ts("2024-01-01T00:05:30Z")),
            Some(Duration::from_millis(30_100))
        );
    }

    #[test]
    fn active_follows_jobs() {
        let cj = cronjob(json!({"status": {
            "active": [{"name": "running", "uid": "uid-running"},
                       {"name": "done", "uid": "uid-done"},
                       {"name": "gone", "uid": "uid-gone"}],
            "lastSuccessfulTime": "2024-01-01T00:00:00Z"
        }}));
        let jobs = [
            job("running", None, "2024-01-01T00:01:00Z"),
            job("done", Some("Complete"), "2024-01-01T00:02:00Z"),
            job("stray", None, "2024-01-01T00:03:00Z"),
            job("old-failure", Some("Failed"), "2024-01-01T00:00:30Z"),
        ];
        let owned: Vec<&Job> = jobs.iter().collect();
        let c = reconcile_active(&cj, &owned);
        let names: Vec<_> = c.active.iter().map(|r| r.name.clone().unwrap()).collect();
        assert_eq!(names, ["running", "stray"]);
        assert_eq!(c.completed, [("done".to_string(), "Complete")]);
        assert_eq!(c.unexpected, ["stray"]);
        assert_eq!(c.missing, ["gone"]);
        assert_eq!(c.last_successful, Some(ts("2024-01-01T00:02:00Z")));
    }

    #[test]
    fn history_limits() {
        let cj = cronjob(
            json!({"spec": {"successfulJobsHistoryLimit": 1, "failedJobsHistoryLimit": 0}}),
        );
        let jobs = [
            job("ok-2", Some("Complete"), "2024-01-01T00:02:00Z"),
            job("ok-1", Some("Complete"), "2024-01-01T00:01:00Z"),
            job("ok-3", Some("Complete"), "2024-01-01T00:03:00Z"),
            job("bad-1", Some("Failed"), "2024-01-01T00:01:00Z"),
            job("running", None, "2024-01-01T00:04:00Z"),
        ];
        let owned: Vec<&Job> = jobs.iter().collect();
        let names: Vec<_> = beyond_history(&cj, &owned)
            .iter()
            .map(|j| j.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["ok-1", "ok-2", "bad-1"]);
        let unlimited = cronjob(json!({}));
        assert!(beyond_history(&unlimited, &owned).is_empty());
    }
}
