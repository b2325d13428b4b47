//! End-to-end: the Job controller against a real in-process API server,
//! with the scheduler and two kwok-style fake nodes playing the pods. How a
//! pod ends is the fake node's to report: the tests say it through the fake
//! node's annotations — on the pod template (`phase-after`, `exit-code`), or
//! on a held pod when the test wants to choose the moment (see `end_pod`).

mod common;

use common::{
    Cluster, EXIT_CODE, NS, PHASE_AFTER, READY, RUN_FOR, TestResult, annotate, annotations_json,
    eventually,
};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const TRACKING: &str = "batch.kubernetes.io/job-tracking";

/// Pod annotations that hold the Job's pods Running until the test ends
/// them with [`end_pod`].
const HELD: &[(&str, &str)] = &[(PHASE_AFTER, "Running")];

/// A cluster with two fake nodes and the Job controller.
async fn start() -> TestResult<Cluster> {
    let cluster = Cluster::with_fake_nodes(2).await?;
    cluster.run(controllers::job::run);
    Ok(cluster)
}

/// A Job whose pods carry the fake node's `pod_annotations`.
fn job(name: &str, spec: serde_json::Value, pod_annotations: &[(&str, &str)]) -> TestResult<Job> {
    let annotations = annotations_json(pod_annotations);
    let mut spec = spec;
    spec["template"] = json!({
        "metadata": {"annotations": annotations},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]
        }
    });
    Ok(serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": spec,
    }))?)
}

/// The Job's pods (by the label the API server defaults onto its template).
async fn pods_of(pods: &Api<Pod>, job: &Job) -> Vec<Pod> {
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let lp = ListParams::default().labels(&format!("batch.kubernetes.io/controller-uid={uid}"));
    let mut items = pods.list(&lp).await.map(|l| l.items).unwrap_or_default();
    items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    items
}

/// Tells the fake node to end a held pod now, in `phase`: the containers
/// exit (0 for Succeeded, 1 for Failed) and the node reports it.
async fn end_pod(pods: &Api<Pod>, pod: &Pod, phase: &str) -> TestResult {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    annotate(pods, name, &[(PHASE_AFTER, phase)]).await
}

fn has_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == TRACKING))
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// The true conditions' (type, reason), in order.
fn conditions(job: &Job) -> Vec<(String, String)> {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.status == "True")
        .map(|c| (c.type_, c.reason.unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_finished_pods_and_completes() -> TestResult {
    let cluster = start().await?;
    let jobs: Api<Job> = cluster.api();
    let pods: Api<Pod> = cluster.api();
    let created = jobs
        .create(
            &PostParams::default(),
            &job(
                "pi",
                json!({"completions": 3, "parallelism": 2}),
                &[(PHASE_AFTER, "Running"), (READY, "false")],
            )?,
        )
        .await?;
    let uid = created.metadata.uid.clone().unwrap_or_default();

    let first = eventually("two pods", || async {
        let p = pods_of(&pods, &created).await;
        (p.len() == 2).then_some(p)
    })
    .await;
    for pod in &first {
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels
                .get("batch.kubernetes.io/job-name")
                .map(String::as_str),
            Some("pi")
        );
        assert_eq!(labels.get("job-name").map(String::as_str), Some("pi"));
        assert_eq!(labels.get("batch.kubernetes.io/controller-uid"), Some(&uid));
        assert!(pod.metadata.generate_name.as_deref() == Some("pi-"));
        let owner = &pod.metadata.owner_references.clone().unwrap_or_default()[0];
        assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Job", "pi"));
        assert_eq!(
            (owner.controller, owner.block_owner_deletion),
            (Some(true), Some(true))
        );
        assert!(has_finalizer(pod), "created with the tracking finalizer");
    }
    eventually("status.active = 2 and startTime", || async {
        let s = jobs.get("pi").await.ok()?.status?;
        (s.active == Some(2) && s.start_time.is_some() && s.ready == Some(0)).then_some(())
    })
    .await;
    // status.ready counts the pods the node reports Ready.
    let one = first[0].metadata.name.as_deref().unwrap_or_default();
    annotate(&pods, one, &[(READY, "true")]).await?;
    eventually("status.ready = 1", || async {
        let s = jobs.get("pi").await.ok()?.status?;
        (s.active == Some(2) && s.ready == Some(1)).then_some(())
    })
    .await;

    for pod in &first {
        end_pod(&pods, pod, "Succeeded").await?;
    }
    eventually("succeeded = 2", || async {
        let s = jobs.get("pi").await.ok()?.status?;
        let uncounted = s.uncounted_terminated_pods.unwrap_or_default();
        (s.succeeded == Some(2) && uncounted.succeeded.is_none()).then_some(())
    })
    .await;
    let third = eventually("finalizers released and a third pod", || async {
        let all = pods_of(&pods, &created).await;
        let done_released = all
            .iter()
            .filter(|p| phase(p) == "Succeeded")
            .all(|p| !has_finalizer(p));
        let running: Vec<Pod> = all
            .into_iter()
            .filter(|p| phase(p) != "Succeeded")
            .collect();
        (done_released && running.len() == 1).then(|| running[0].clone())
    })
    .await;
    assert!(has_finalizer(&third));
    let status = jobs.get("pi").await?.status.unwrap_or_default();
    assert!(
        conditions(&jobs.get("pi").await?).is_empty(),
        "not finished: {status:?}"
    );

    end_pod(&pods, &third, "Succeeded").await?;
    let done = eventually("Complete", || async {
        let j = jobs.get("pi").await.ok()?;
        conditions(&j)
            .iter()
            .any(|(t, _)| t == "Complete")
            .then_some(j)
    })
    .await;
    assert_eq!(
        conditions(&done),
        vec![
            (
                "SuccessCriteriaMet".to_string(),
                "CompletionsReached".to_string()
            ),
            ("Complete".to_string(), "CompletionsReached".to_string()),
        ]
    );
    let s = done.status.unwrap_or_default();
    assert_eq!(s.succeeded, Some(3));
    assert!(s.completion_time.is_some());
    assert_eq!(s.active, None);
    assert_eq!(
        pods_of(&pods, &created).await.len(),
        3,
        "no more pods after completion"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_past_the_backoff_limit() -> TestResult {
    let cluster = start().await?;
    let jobs: Api<Job> = cluster.api();
    let pods: Api<Pod> = cluster.api();
    let created = jobs
        .create(
            &PostParams::default(),
            // Every pod's containers exit 1 as soon as they start.
            &job(
                "flaky",
                json!({"completions": 2, "parallelism": 2, "backoffLimit": 1}),
                &[(PHASE_AFTER, "Failed")],
            )?,
        )
        .await?;
    let failed = eventually("Failed", || async {
        let j = jobs.get("flaky").await.ok()?;
        conditions(&j)
            .iter()
            .any(|(t, _)| t == "Failed")
            .then_some(j)
    })
    .await;
    assert_eq!(
        conditions(&failed),
        vec![
            (
                "FailureTarget".to_string(),
                "BackoffLimitExceeded".to_string()
            ),
            ("Failed".to_string(), "BackoffLimitExceeded".to_string()),
        ]
    );
    let cond = failed
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Failed").cloned())
        .unwrap_or_default();
    assert_eq!(
        cond.message.as_deref(),
        Some("Job has reached the specified backoff limit")
    );
    let s = failed.status.unwrap_or_default();
    assert_eq!(s.failed, Some(2));
    assert!(s.completion_time.is_none());
    eventually("both pods Failed, finalizers released", || async {
        let all = pods_of(&pods, &created).await;
        (all.len() == 2
            && all
                .iter()
                .all(|p| phase(p) == "Failed" && !has_finalizer(p)))
        .then_some(())
    })
    .await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexed_jobs_track_completed_indexes() -> TestResult {
    let cluster = start().await?;
    let jobs: Api<Job> = cluster.api();
    let pods: Api<Pod> = cluster.api();
    let created = jobs
        .create(
            &PostParams::default(),
            &job(
                "idx",
                json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"}),
                HELD,
            )?,
        )
        .await?;
    let all = eventually("three pods", || async {
        let p = pods_of(&pods, &created).await;
        (p.len() == 3).then_some(p)
    })
    .await;
    let index = |p: &Pod| {
        p.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("batch.kubernetes.io/job-completion-index").cloned())
    };
    let mut seen: Vec<String> = all.iter().filter_map(index).collect();
    seen.sort();
    assert_eq!(seen, vec!["0", "1", "2"]);
    for p in &all {
        let ix = index(p).unwrap_or_default();
        let spec = p.spec.clone().unwrap_or_default();
        assert_eq!(spec.hostname, Some(format!("idx-{ix}")));
        assert_eq!(
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("batch.kubernetes.io/job-completion-index")),
            Some(&ix)
        );
    }
    for p in all
        .iter()
        .filter(|p| matches!(index(p).as_deref(), Some("0") | Some("2")))
    {
        end_pod(&pods, p, "Succeeded").await?;
    }
    eventually("completedIndexes 0,2", || async {
        let s = jobs.get("idx").await.ok()?.status?;
        (s.completed_indexes.as_deref() == Some("0,2") && s.succeeded == Some(2)).then_some(())
    })
    .await;
    let last = all
        .iter()
        .find(|p| index(p).as_deref() == Some("1"))
        .cloned()
        .unwrap_or_default();
    end_pod(&pods, &last, "Succeeded").await?;
    let done = eventually("Complete", || async {
        let j = jobs.get("idx").await.ok()?;
        conditions(&j)
            .iter()
            .any(|(t, _)| t == "Complete")
            .then_some(j)
    })
    .await;
    assert_eq!(
        done.status.and_then(|s| s.completed_indexes).as_deref(),
        Some("0-2")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_and_ttl_after_finished() -> TestResult {
    let cluster = start().await?;
    let jobs: Api<Job> = cluster.api();
    let pods: Api<Pod> = cluster.api();

    // Suspended from the start: no pods, condition Suspended.
    let created = jobs
        .create(
            &PostParams::default(),
            &job(
                "later",
                json!({"suspend": true, "ttlSecondsAfterFinished": 0}),
                HELD,
            )?,
        )
        .await?;
    eventually("Suspended", || async {
        let j = jobs.get("later").await.ok()?;
        conditions(&j)
            .iter()
            .any(|(t, r)| t == "Suspended" && r == "JobSuspended")
            .then_some(())
    })
    .await;
    assert!(pods_of(&pods, &created).await.is_empty());

    // Resumed: one pod; it succeeds, the Job completes and, with a TTL of
    // zero, is deleted.
    jobs.patch(
        "later",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": false}})),
    )
    .await?;
    let pod = eventually("a pod after resuming", || async {
        pods_of(&pods, &created).await.into_iter().next()
    })
    .await;
    eventually("Suspended=False, JobResumed", || async {
        let s = jobs.get("later").await.ok()?.status?;
        let c = s.conditions?.into_iter().find(|c| c.type_ == "Suspended")?;
        (c.status == "False" && c.reason.as_deref() == Some("JobResumed")).then_some(())
    })
    .await;
    end_pod(&pods, &pod, "Succeeded").await?;
    eventually("the finished job deleted by its TTL", || async {
        matches!(jobs.get_opt("later").await, Ok(None)).then_some(())
    })
    .await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopts_matching_orphans_and_releases_unmatched_pods() -> TestResult {
    let cluster = start().await?;
    let jobs: Api<Job> = cluster.api();
    let pods: Api<Pod> = cluster.api();
    let created = jobs
        .create(
            &PostParams::default(),
            &job("adopt", json!({"parallelism": 2, "completions": 2}), HELD)?,
        )
        .await?;
    let uid = created.metadata.uid.clone().unwrap_or_default();
    let controller_uid = |p: &Pod| {
        p.metadata
            .owner_references
            .iter()
            .flatten()
            .find(|r| r.controller == Some(true))
            .map(|r| r.uid.clone())
    };
    let first = eventually("two pods", || async {
        let p = pods_of(&pods, &created).await;
        (p.len() == 2).then(|| p[0].clone())
    })
    .await;
    let name = first.metadata.name.clone().unwrap_or_default();

    // Orphan it (as `conformance` does): the Job takes it back.
    pods.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"ownerReferences": null}})),
    )
    .await?;
    eventually("re-adopted", || async {
        let p = pods.get(&name).await.ok()?;
        (controller_uid(&p).as_deref() == Some(uid.as_str())).then_some(())
    })
    .await;

    // Drop its labels: the Job lets it go (and no longer tracks it).
    pods.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": null}})),
    )
    .await?;
    let released = eventually("released", || async {
        let p = pods.get(&name).await.ok()?;
        controller_uid(&p).is_none().then_some(p)
    })
    .await;
    assert!(!has_finalizer(&released));
    // The Job replaces the pod it released.
    eventually("a replacement pod", || async {
        (pods_of(&pods, &created).await.len() == 2).then_some(())
    })
    .await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_failure_policy_fails_the_job_early() -> TestResult {
    let cluster = start().await?;
    let jobs: Api<Job> = cluster.api();
    let pods: Api<Pod> = cluster.api();
    let created = jobs
        .create(
            &PostParams::default(),
            &job(
                "policy",
                json!({
                    "completions": 1,
                    "backoffLimit": 6,
                    "podReplacementPolicy": "Failed",
                    "podFailurePolicy": {"rules": [
                        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}
                    ]}
                }),
                // The container runs a second, then exits 42 (so Failed).
                &[(EXIT_CODE, "42"), (RUN_FOR, "1s")],
            )?,
        )
        .await?;
    let pod = eventually("a pod", || async {
        pods_of(&pods, &created).await.into_iter().next()
    })
    .await;
    let failed = eventually("Failed", || async {
        let j = jobs.get("policy").await.ok()?;
        conditions(&j)
            .iter()
            .any(|(t, _)| t == "Failed")
            .then_some(j)
    })
    .await;
    assert_eq!(
        conditions(&failed),
        vec![
            ("FailureTarget".to_string(), "PodFailurePolicy".to_string()),
            ("Failed".to_string(), "PodFailurePolicy".to_string()),
        ]
    );
    let message = failed
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Failed")
        .and_then(|c| c.message)
        .unwrap_or_default();
    let pod_name = pod.metadata.name.unwrap_or_default();
    assert_eq!(
        message,
        format!(
            "Container c for pod {NS}/{pod_name} failed with exit code 42 matching FailJob rule at index 0"
        )
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_job_removes_its_tracked_pods() -> TestResult {
    use kube::api::DeleteParams;

    let cluster = start().await?;
    // The garbage collector deletes the pods (the fake nodes stop and remove
    // them); the Job controller releases their tracking finalizers so they
    // can go.
    cluster.run(controllers::garbagecollector::run);
    let jobs: Api<Job> = cluster.api();
    let pods: Api<Pod> = cluster.api();
    for (name, params) in [
        ("bg", DeleteParams::background()),
        ("fg", DeleteParams::foreground()),
    ] {
        let created = jobs
            .create(
                &PostParams::default(),
                &job(name, json!({"completions": 2, "parallelism": 2}), HELD)?,
            )
            .await?;
        eventually("two pods", || async {
            (pods_of(&pods, &created).await.len() == 2).then_some(())
        })
        .await;
        jobs.delete(name, &params).await?;
        eventually("pods gone", || async {
            pods_of(&pods, &created).await.is_empty().then_some(())
        })
        .await;
        eventually("job gone", || async {
            matches!(jobs.get_opt(name).await, Ok(None)).then_some(())
        })
        .await;
    }
    Ok(())
}
