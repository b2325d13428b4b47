//! End-to-end: the CronJob controller against a real in-process API server.
//! One test runs on the real clock with a `*/1 * * * *` schedule (so it
//! waits up to a minute); the others steer the controller's clock through
//! its `Config`, setting the time and then touching the CronJob so that it
//! syncs at once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::time::Duration;

use common::{
    Cluster, PHASE_AFTER, TestResult, annotate, eventually, eventually_within, holds_for,
};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const SCHEDULED: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// A CronJob whose pods carry the fake node's `pod_annotations`.
fn cronjob(
    name: &str,
    spec: serde_json::Value,
    pod_annotations: serde_json::Value,
) -> TestResult<CronJob> {
    let mut spec = spec;
    if spec.get("schedule").is_none() {
        spec["schedule"] = json!("*/1 * * * *");
    }
    spec["jobTemplate"] = json!({
        "metadata": {"labels": {"from": name}},
        "spec": {"backoffLimit": 0, "template": {
            "metadata": {"annotations": pod_annotations},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]
            }
        }}
    });
    Ok(serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": spec,
    }))?)
}

/// The Jobs `cj` controls, by name.
async fn jobs_of(jobs: &Api<Job>, cj: &CronJob) -> Vec<Job> {
    let uid = cj.metadata.uid.clone().unwrap_or_default();
    let mut items: Vec<Job> = jobs
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|j| {
            j.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.uid == uid && r.controller == Some(true))
        })
        .filter(|j| j.metadata.deletion_timestamp.is_none())
        .collect();
    items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    items
}

fn names(jobs: &[Job]) -> Vec<String> {
    jobs.iter()
        .map(|j| j.metadata.name.clone().unwrap_or_default())
        .collect()
}

fn active_names(cj: &CronJob) -> Vec<String> {
    let mut v: Vec<String> = cj
        .status
        .as_ref()
        .and_then(|s| s.active.as_ref())
        .map(|a| a.iter().filter_map(|r| r.name.clone()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn job_name(cj: &str, minute_start: i64) -> String {
    format!("{cj}-{}", minute_start / 60)
}

/// The CronJob controller on a clock the test sets.
struct Steered {
    cronjobs: Api<CronJob>,
    jobs: Api<Job>,
    now: Arc<AtomicI64>,
    touches: AtomicU32,
}

impl Steered {
    fn start(cluster: &Cluster) -> Self {
        let now = Arc::new(AtomicI64::new(Timestamp::now().as_second()));
        let clock = now.clone();
        let config = controllers::cronjob::Config {
            clock: Arc::new(move || {
                Timestamp::from_second(clock.load(Ordering::SeqCst))
                    .unwrap_or(Timestamp::UNIX_EPOCH)
            }),
        };
        tokio::spawn(controllers::cronjob::run_with(
            cluster.client.clone(),
            config,
        ));
        Self {
            cronjobs: cluster.api(),
            jobs: cluster.api(),
            now,
            touches: AtomicU32::new(0),
        }
    }

    async fn create(&self, cj: CronJob) -> TestResult<CronJob> {
        Ok(self.cronjobs.create(&PostParams::default(), &cj).await?)
    }

    /// Sets the controller's clock to `at` and makes `cj` sync.
    async fn set_time(&self, cj: &CronJob, at: i64) -> TestResult {
        self.now.store(at, Ordering::SeqCst);
        let n = self.touches.fetch_add(1, Ordering::SeqCst).to_string();
        annotate(
            &self.cronjobs,
            cj.metadata.name.as_deref().unwrap_or_default(),
            &[("test/tick", &n)],
        )
        .await
    }

    async fn wait_jobs(&self, cj: &CronJob, want: &[String]) -> Vec<Job> {
        eventually(&format!("jobs {want:?}"), || async {
            let jobs = jobs_of(&self.jobs, cj).await;
            (names(&jobs) == want).then_some(jobs)
        })
        .await
    }

    async fn wait_active(&self, cj: &CronJob, want: &[String]) -> CronJob {
        let name = cj.metadata.name.clone().unwrap_or_default();
        eventually(&format!("active {want:?}"), || async {
            let cj = self.cronjobs.get(&name).await.ok()?;
            (active_names(&cj) == want).then_some(cj)
        })
        .await
    }

    /// No Job beyond `want` appears for a while.
    async fn jobs_stay(&self, cj: &CronJob, want: &[String]) {
        holds_for("no other job", Duration::from_secs(2), || async {
            let got = names(&jobs_of(&self.jobs, cj).await);
            if got == want {
                Ok(())
            } else {
                Err(format!("jobs {got:?}, want {want:?}"))
            }
        })
        .await;
    }
}

/// The first minute boundary after the CronJob was created.
fn first_minute(cj: &CronJob) -> i64 {
    let created = cj
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(0, |t| t.0.as_second());
    (created / 60 + 1) * 60
}

async fn event_reasons(cluster: &Cluster, name: &str) -> Vec<(String, String)> {
    let events: Api<Event> = cluster.api();
    events
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

async fn wait_event(cluster: &Cluster, name: &str, reason: &str) -> String {
    eventually(&format!("event {reason} on {name}"), || async {
        event_reasons(cluster, name)
            .await
            .into_iter()
            .find(|(r, _)| r == reason)
            .map(|(_, note)| note)
    })
    .await
}

/// On the real clock: an every-minute CronJob starts a Job named after the
/// scheduled minute, which the Job controller and a fake node run to
/// completion; the CronJob's status follows.
#[tokio::test]
async fn every_minute_schedule_runs_jobs_end_to_end() -> TestResult {
    let cluster = Cluster::with_fake_nodes(1).await?;
    cluster.run(controllers::job::run);
    cluster.run(controllers::cronjob::run);
    let cronjobs: Api<CronJob> = cluster.api();
    let jobs: Api<Job> = cluster.api();
    let cj = cronjobs
        .create(
            &PostParams::default(),
            &cronjob("minutely", json!({}), json!({}))?,
        )
        .await?;
    let first = first_minute(&cj);
    let job = eventually_within("the first job", Duration::from_secs(75), || async {
        jobs_of(&jobs, &cj).await.into_iter().next()
    })
    .await;
    assert_eq!(job.metadata.name, Some(job_name("minutely", first)));
    let annotations = job.metadata.annotations.clone().unwrap_or_default();
    let at = Timestamp::from_second(first)?;
    assert_eq!(
        annotations.get(SCHEDULED).map(String::as_str),
        Some(at.to_string().as_str())
    );
    assert_eq!(
        job.metadata
            .labels
            .unwrap_or_default()
            .get("from")
            .map(String::as_str),
        Some("minutely")
    );
    let owner = &job.metadata.owner_references.unwrap_or_default()[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.controller,
            owner.block_owner_deletion
        ),
        ("CronJob", Some(true), Some(true))
    );

    let done = eventually("the job's success in the CronJob status", || async {
        let cj = cronjobs.get("minutely").await.ok()?;
        let status = cj.status.clone()?;
        (status.last_successful_time.is_some() && active_names(&cj).is_empty()).then_some(status)
    })
    .await;
    assert_eq!(
        done.last_schedule_time.map(|t| t.0.as_second()),
        Some(first)
    );
    wait_event(&cluster, "minutely", "SuccessfulCreate").await;
    wait_event(&cluster, "minutely", "SawCompletedJob").await;
    Ok(())
}

/// Allow runs Jobs side by side; Forbid skips a run while one is active;
/// Replace deletes the active Job and starts the new one. No Job controller
/// runs, so every Job stays active.
#[tokio::test]
async fn concurrency_policies() -> TestResult {
    let cluster = Cluster::start().await?;
    let s = Steered::start(&cluster);
    for policy in ["Allow", "Forbid", "Replace"] {
        let name = format!("policy-{}", policy.to_lowercase());
        let cj = s
            .create(cronjob(
                &name,
                json!({"concurrencyPolicy": policy}),
                json!({}),
            )?)
            .await?;
        let t1 = first_minute(&cj);
        let t2 = t1 + 60;
        let (j1, j2) = (job_name(&name, t1), job_name(&name, t2));
        s.set_time(&cj, t1 + 1).await?;
        s.wait_jobs(&cj, std::slice::from_ref(&j1)).await;
        s.wait_active(&cj, std::slice::from_ref(&j1)).await;
        s.set_time(&cj, t2 + 1).await?;
        match policy {
            "Allow" => {
                s.wait_jobs(&cj, &[j1.clone(), j2.clone()]).await;
                s.wait_active(&cj, &[j1, j2]).await;
            }
            "Forbid" => {
                s.jobs_stay(&cj, std::slice::from_ref(&j1)).await;
                let now = s.cronjobs.get(&name).await?;
                let last = now
                    .status
                    .and_then(|st| st.last_schedule_time)
                    .map(|t| t.0.as_second());
                assert_eq!(last, Some(t1), "the skipped run is not recorded");
            }
            _ => {
                s.wait_jobs(&cj, std::slice::from_ref(&j2)).await;
                s.wait_active(&cj, std::slice::from_ref(&j2)).await;
                wait_event(&cluster, &name, "SuccessfulDelete").await;
            }
        }
    }
    Ok(())
}

/// Finished Jobs beyond `successfulJobsHistoryLimit` are deleted, oldest
/// first; `failedJobsHistoryLimit` likewise.
#[tokio::test]
async fn history_limits() -> TestResult {
    let cluster = Cluster::with_fake_nodes(1).await?;
    cluster.run(controllers::job::run);
    let s = Steered::start(&cluster);
    for (name, phase, spec) in [
        (
            "keep-one-success",
            "Succeeded",
            json!({"successfulJobsHistoryLimit": 1}),
        ),
        (
            "keep-no-failure",
            "Failed",
            json!({"failedJobsHistoryLimit": 0}),
        ),
    ] {
        let cj = s
            .create(cronjob(name, spec, json!({PHASE_AFTER: phase}))?)
            .await?;
        let t1 = first_minute(&cj);
        for (i, t) in [t1, t1 + 60, t1 + 120].into_iter().enumerate() {
            s.set_time(&cj, t + 1).await?;
            let want = job_name(name, t);
            // Each Job finishes, leaves `active`, and older ones are trimmed.
            eventually(&format!("{name}: job {i} finished and trimmed"), || async {
                let cj = s.cronjobs.get(name).await.ok()?;
                let jobs = names(&jobs_of(&s.jobs, &cj).await);
                // The Job's finish reaches the CronJob through a Job event;
                // that sync empties `active` and trims the history.
                if !active_names(&cj).is_empty() {
                    return None;
                }
                let expected: Vec<String> = if phase == "Succeeded" {
                    vec![want.clone()]
                } else {
                    vec![]
                };
                (cj.status
                    .as_ref()?
                    .last_schedule_time
                    .as_ref()?
                    .0
                    .as_second()
                    == t
                    && jobs == expected)
                    .then_some(())
            })
            .await;
        }
    }
    Ok(())
}

/// A suspended CronJob starts nothing; resumed, it starts the most recent
/// missed run only.
#[tokio::test]
async fn suspend_and_resume() -> TestResult {
    let cluster = Cluster::start().await?;
    let s = Steered::start(&cluster);
    let cj = s
        .create(cronjob("sleepy", json!({"suspend": true}), json!({}))?)
        .await?;
    let t1 = first_minute(&cj);
    s.set_time(&cj, t1 + 150).await?;
    s.jobs_stay(&cj, &[]).await;
    s.cronjobs
        .patch(
            "sleepy",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": false}})),
        )
        .await?;
    s.wait_jobs(&cj, &[job_name("sleepy", t1 + 120)]).await;
    Ok(())
}

/// `startingDeadlineSeconds`: a run missed by more than the deadline is not
/// started; far too many missed runs raise `TooManyMissedTimes` and start
/// only the latest.
#[tokio::test]
async fn starting_deadline_and_missed_runs() -> TestResult {
    let cluster = Cluster::start().await?;
    let s = Steered::start(&cluster);
    let strict = s
        .create(cronjob(
            "strict",
            json!({"startingDeadlineSeconds": 10}),
            json!({}),
        )?)
        .await?;
    let t1 = first_minute(&strict);
    s.set_time(&strict, t1 + 30).await?;
    s.jobs_stay(&strict, &[]).await;
    s.set_time(&strict, t1 + 65).await?;
    s.wait_jobs(&strict, &[job_name("strict", t1 + 60)]).await;

    let lax = s.create(cronjob("lax", json!({}), json!({}))?).await?;
    let t1 = first_minute(&lax);
    let later = t1 + 3 * 3600 + 5;
    s.set_time(&lax, later).await?;
    s.wait_jobs(&lax, &[job_name("lax", t1 + 3 * 3600)]).await;
    let note = wait_event(&cluster, "lax", "TooManyMissedTimes").await;
    assert!(note.contains("startingDeadlineSeconds"), "{note}");
    Ok(())
}

/// A schedule in a time zone: the annotation carries the zone's offset; an
/// unknown zone or a malformed schedule is refused at the API.
#[tokio::test]
async fn time_zones_and_invalid_schedules() -> TestResult {
    let cluster = Cluster::start().await?;
    let s = Steered::start(&cluster);
    let tokyo = s
        .create(cronjob(
            "tokyo",
            json!({"timeZone": "Asia/Tokyo"}),
            json!({}),
        )?)
        .await?;
    let t1 = first_minute(&tokyo);
    s.set_time(&tokyo, t1 + 1).await?;
    let jobs = s.wait_jobs(&tokyo, &[job_name("tokyo", t1)]).await;
    let stamp = jobs[0]
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SCHEDULED))
        .cloned()
        .unwrap_or_default();
    assert!(stamp.ends_with("+09:00"), "{stamp}");
    let parsed: Timestamp = stamp.parse()?;
    assert_eq!(parsed.as_second(), t1);

    // An unknown zone or a malformed schedule never gets stored: the API
    // server refuses it as upstream's validation does. (The controller still
    // reports one that got stored some other way with an event; its parser's
    // refusals are unit-tested in `cronjob::schedule`.)
    for (name, spec, field) in [
        (
            "nowhere",
            json!({"timeZone": "Mars/Olympus_Mons"}),
            "spec.timeZone",
        ),
        (
            "garbled",
            json!({"schedule": "61 * * * *"}),
            "spec.schedule",
        ),
    ] {
        match s
            .cronjobs
            .create(&PostParams::default(), &cronjob(name, spec, json!({}))?)
            .await
        {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 422, "{name}: {status:?}");
                assert!(status.message.contains(field), "{name}: {}", status.message);
            }
            other => panic!("{name}: want 422, got {other:?}"),
        }
    }
    Ok(())
}
