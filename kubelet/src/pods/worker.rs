//! One task per pod: it drives the runtime toward the pod's spec and writes
//! the pod's status, and tears the pod down when it is deleted.
//!
//! ```text
//!   pod bound ──► sync: sandbox → init containers in order → containers
//!                  │      (restarts per restartPolicy, with back-off)
//!                  │      relist every second while the pod is active;
//!                  │      ephemeral containers join the existing sandbox,
//!                  │      each started once ([`super::ephemeral`]);
//!                  │      probes run beside it ([`crate::probes`]): a failed
//!                  │      liveness/startup probe → preStop, stop, restart
//!                  ├─ activeDeadlineSeconds passed ─► stop containers,
//!                  │      phase Failed (DeadlineExceeded), stop sandbox
//!                  ├─ phase Succeeded/Failed ─► stop sandbox, idle until deleted
//!                  └─ deletionTimestamp ─► preStop hooks, stop containers (grace period)
//!                         → final status → remove sandbox → delete pod (grace 0)
//!   pod gone from the API (force delete) ─► stop and remove, nothing written
//! ```
//!
//! The latest pod wins: the manager replaces the value in the worker's
//! `watch` channel, and the worker always syncs the newest one.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, PodStatus};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, Preconditions};
use tokio::sync::watch;

use super::ephemeral::{self, Ephemeral};
use super::runtime::{self, log_dir};
use super::status::{self, Observed, is_exited, is_running};
use super::{Ctx, Error};
use crate::admission::{self, Rejection};
use crate::cri::{self, v1};
use crate::events::{Events, container_ref, pod_ref};
use crate::lifecycle;
use crate::node::patch_params;
use crate::probes::{self, Prober, Target};
use crate::volumes::{PodVolumes, remove_pod_dir};

const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// How often an idle (terminal) pod is looked at again.
const IDLE: Duration = Duration::from_secs(60);
const RETRY: Duration = Duration::from_secs(2);
/// Upstream's reason and message for a pod past its activeDeadlineSeconds.
const DEADLINE_REASON: &str = "DeadlineExceeded";
const DEADLINE_MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

enum Next {
    Wait(Duration),
    Done,
}

/// A failed pull and when the next may be tried.
struct PullFailure {
    retry_at: Timestamp,
    delay: Duration,
    message: String,
    /// Reported as ErrImagePull once; then ImagePullBackOff until the retry.
    reported: bool,
}

pub(crate) struct Worker {
    ctx: Arc<Ctx>,
    uid: String,
    /// Per container name, the back-off before its next restart.
    restart_delay: HashMap<String, Duration>,
    pull_failures: HashMap<String, PullFailure>,
    /// Waiting reasons for the status, recomputed by each sync.
    waiting: HashMap<String, (String, String)>,
    sandbox_stopped: bool,
    events: Events,
    probes: Prober,
    /// Termination messages read so far, per CRI container ID (an exited
    /// container's never changes).
    messages: HashMap<String, String>,
    /// The pod's IP once its sandbox has one: the default host of httpGet
    /// probes and hooks.
    pod_ip: String,
    /// Set once the kubelet failed the pod itself (activeDeadlineSeconds,
    /// or admission rejected it): the reason and message.
    failure: Option<(&'static str, String)>,
    /// Whether the pod passed admission (checked once, before it first runs).
    admitted: bool,
    volumes: PodVolumes,
}

impl Worker {
    pub(crate) fn new(ctx: Arc<Ctx>, uid: String) -> Self {
        let events = Events::new(ctx.client.clone(), &ctx.node.name);
        Self {
            probes: Prober::new(events.clone()),
            events,
            messages: HashMap::new(),
            pod_ip: String::new(),
            failure: None,
            admitted: false,
            volumes: PodVolumes::new(&uid),
            ctx,
            uid,
            restart_delay: HashMap::new(),
            pull_failures: HashMap::new(),
            waiting: HashMap::new(),
            sandbox_stopped: false,
        }
    }

    /// Runs until the pod is torn down. `None` in the channel: the pod left
    /// the API without being torn down by us.
    pub(crate) async fn run(mut self, mut rx: watch::Receiver<Option<Arc<Pod>>>) {
        let mut last: Option<Arc<Pod>> = None;
        loop {
            let current = rx.borrow_and_update().clone();
            let next = match current {
                Some(pod) => {
                    last = Some(pod.clone());
                    match self.sync(&pod).await {
                        Ok(next) => next,
                        Err(e) => {
                            tracing::warn!(pod = %name(&pod), error = %e, "pod sync failed");
                            Next::Wait(RETRY)
                        }
                    }
                }
                None => {
                    let grace = last.as_deref().map(grace_seconds).unwrap_or(0);
                    match runtime::kill_pod(&self.ctx.runtime, &self.uid, grace).await {
                        Ok(()) => {
                            if let Some(pod) = &last {
                                let _ = tokio::fs::remove_dir_all(log_dir(
                                    &self.ctx.config.root_dir,
                                    pod,
                                ))
                                .await;
                            }
                            remove_pod_dir(&self.ctx.config.root_dir, &self.uid).await;
                            Next::Done
                        }
                        Err(e) => {
                            tracing::warn!(uid = %self.uid, error = %e, "removing a deleted pod's sandbox failed");
                            Next::Wait(RETRY)
                        }
                    }
                }
            };
            let wait = match next {
                Next::Done => return,
                Next::Wait(d) => d,
            };
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn sync(&mut self, pod: &Pod) -> Result<Next, Error> {
        if pod.metadata.deletion_timestamp.is_some() {
            return self.terminate(pod).await;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            // Terminal: nothing runs again; the sandbox (and its IP) goes.
            self.probes.stop_all();
            if !self.sandbox_stopped {
                runtime::stop_containers(&self.ctx.runtime, &self.uid, 0).await?;
                runtime::stop_sandboxes(&self.ctx.runtime, &self.uid).await?;
                self.sandbox_stopped = true;
            }
            return Ok(Next::Wait(IDLE));
        }
        let mut observed = runtime::observe(&self.ctx.runtime, &self.uid).await?;
        self.waiting.clear();
        if deadline_exceeded(pod, Timestamp::now()) {
            return self.fail_deadline(pod, &observed).await;
        }
        if !self.admitted {
            // Only a pod that has not run yet is admitted (not one found
            // running when the kubelet starts).
            if observed.sandbox.is_none()
                && let Err(rejection) =
                    admission::admit(pod, &self.ctx.config.allowed_unsafe_sysctls)
            {
                return self.reject(pod, &observed, rejection).await;
            }
            self.admitted = true;
        }
        // Containers start once every volume is set up (the pod shows
        // ContainerCreating meanwhile); running pods' volumes are refreshed.
        if let Err(e) = self
            .volumes
            .sync(&self.ctx.client, &self.ctx.config, pod)
            .await
        {
            tracing::warn!(pod = %name(pod), error = %e, "setting up volumes failed");
            self.write_status(pod, &observed, false).await?;
            return Ok(Next::Wait(RETRY));
        }
        // Ephemeral containers only ever join a sandbox that was already
        // there (upstream skips them in the sync that creates one).
        let sandbox_existed = observed.sandbox.is_some();
        if observed.sandbox.is_none() {
            // Let the pod show ContainerCreating while CNI and the pause
            // container come up.
            self.write_status(pod, &observed, false).await?;
            let attempt = runtime::sandboxes(&self.ctx.runtime, &self.uid)
                .await?
                .len();
            let config = self.sandbox_config(pod, u32::try_from(attempt).unwrap_or(0));
            tokio::fs::create_dir_all(&config.log_directory)
                .await
                .map_err(Error::Io)?;
            self.ctx
                .runtime
                .runtime
                .clone()
                .run_pod_sandbox(v1::RunPodSandboxRequest {
                    config: Some(config),
                    runtime_handler: String::new(),
                })
                .await
                .map_err(cri::call("RunPodSandbox"))?;
            observed = runtime::observe(&self.ctx.runtime, &self.uid).await?;
        }
        let Some(sandbox_id) = observed.sandbox.as_ref().map(|s| s.id.clone()) else {
            return Ok(Next::Wait(RETRY));
        };
        self.pod_ip = pod_ip(pod, &observed, &self.ctx.node.host_ip);
        self.probes
            .sync(pod, &observed, &self.pod_ip, &self.ctx.runtime);
        if self.kill_unhealthy(pod, &observed).await? {
            observed = runtime::observe(&self.ctx.runtime, &self.uid).await?;
        }
        let mut acted = false;
        for (container, attempt) in self.plan(pod, &observed) {
            acted = true;
            self.start(pod, &container, attempt, &sandbox_id, None)
                .await?;
        }
        if sandbox_existed {
            for e in ephemeral::to_start(pod, &observed) {
                acted = true;
                self.start_ephemeral(pod, &e, &observed, &sandbox_id)
                    .await?;
            }
        }
        if acted {
            observed = runtime::observe(&self.ctx.runtime, &self.uid).await?;
        }
        self.probes
            .sync(pod, &observed, &self.pod_ip, &self.ctx.runtime);
        let status = self.write_status(pod, &observed, false).await?;
        if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
            runtime::stop_sandboxes(&self.ctx.runtime, &self.uid).await?;
            self.sandbox_stopped = true;
            return Ok(Next::Wait(IDLE));
        }
        Ok(Next::Wait(self.ctx.config.relist_interval))
    }

    /// The containers to start now, with their attempt numbers: the first
    /// init container that has not succeeded, or else every container that
    /// has not run or should be restarted and is out of back-off. Records
    /// CrashLoopBackOff for those still backing off.
    fn plan(&mut self, pod: &Pod, observed: &Observed) -> Vec<(Container, u32)> {
        let spec = pod.spec.clone().unwrap_or_default();
        let policy = spec
            .restart_policy
            .as_deref()
            .unwrap_or("Always")
            .to_string();
        let mut start = Vec::new();
        for c in spec.init_containers.iter().flatten() {
            match observed.latest(&c.name) {
                None => {
                    start.push((c.clone(), 0));
                    return start;
                }
                Some(l) if is_exited(l) && l.exit_code == 0 => continue,
                Some(l) if is_exited(l) => {
                    if policy != "Never" {
                        self.restart_or_back_off(pod, c, l, &mut start);
                    }
                    return start;
                }
                Some(_) => return start,
            }
        }
        for c in &spec.containers {
            match observed.latest(&c.name) {
                None => start.push((c.clone(), 0)),
                Some(l) if is_exited(l) => {
                    let restart = policy == "Always" || (policy == "OnFailure" && l.exit_code != 0);
                    if restart {
                        self.restart_or_back_off(pod, c, l, &mut start);
                    }
                }
                Some(_) => {}
            }
        }
        start
    }

    fn restart_or_back_off(
        &mut self,
        pod: &Pod,
        c: &Container,
        exited: &v1::ContainerStatus,
        start: &mut Vec<(Container, u32)>,
    ) {
        let attempt = exited.metadata.as_ref().map(|m| m.attempt).unwrap_or(0);
        let now_ns = i128::from(Timestamp::now().as_nanosecond() as i64);
        match self.restart_delay.get(&c.name) {
            Some(delay) if i128::from(exited.finished_at) + delay.as_nanos() as i128 > now_ns => {
                self.waiting.insert(
                    c.name.clone(),
                    (
                        "CrashLoopBackOff".into(),
                        format!(
                            "back-off {}s restarting failed container={} pod={}",
                            delay.as_secs(),
                            c.name,
                            name(pod)
                        ),
                    ),
                );
            }
            current => {
                let next = current.map_or(BACKOFF_INITIAL, |d| (*d * 2).min(BACKOFF_MAX));
                self.restart_delay.insert(c.name.clone(), next);
                start.push((c.clone(), attempt + 1));
            }
        }
    }

    /// Starts an ephemeral container (its only attempt), in the PID
    /// namespace of its target container if it names one. A target the
    /// runtime holds no instance of is a `CreateContainerConfigError`, as
    /// upstream's, and retried on the next sync.
    async fn start_ephemeral(
        &mut self,
        pod: &Pod,
        e: &Ephemeral,
        observed: &Observed,
        sandbox_id: &str,
    ) -> Result<(), Error> {
        let c = &e.container;
        let target_id = match e.target.as_deref() {
            None => None,
            Some(target) => match observed.latest(target) {
                Some(t) => Some(t.id.clone()),
                None => {
                    let message = format!("unable to find target container {target}");
                    self.fail_start(pod, c, "CreateContainerConfigError", message);
                    return Ok(());
                }
            },
        };
        tracing::info!(pod = %name(pod), container = %c.name, target = ?e.target, "starting ephemeral container");
        self.start(pod, c, 0, sandbox_id, target_id.as_deref())
            .await
    }

    /// Pulls the image if needed, then creates and starts the container
    /// (in the PID namespace of the container `pid_target`, for an
    /// ephemeral one that targets it). A failure becomes the container's
    /// waiting reason, not an error.
    async fn start(
        &mut self,
        pod: &Pod,
        c: &Container,
        attempt: u32,
        sandbox_id: &str,
        pid_target: Option<&str>,
    ) -> Result<(), Error> {
        let image_ref = match self.ensure_image(pod, c).await {
            Ok(r) => r,
            Err((reason, message)) => {
                self.waiting.insert(c.name.clone(), (reason, message));
                return Ok(());
            }
        };
        let sandbox_ips: Vec<String> = (!self.pod_ip.is_empty())
            .then(|| self.pod_ip.clone())
            .into_iter()
            .collect();
        let inputs = match crate::volumes::container_inputs(
            &self.ctx.client,
            &self.ctx.config,
            &self.ctx.node,
            pod,
            c,
            &sandbox_ips,
        )
        .await
        {
            Ok(i) => i,
            Err(message) => {
                self.fail_start(pod, c, "CreateContainerConfigError", message);
                return Ok(());
            }
        };
        let mut config = match crate::security_context::image_user(&self.ctx.runtime, &image_ref)
            .await
            .map_err(|e| e.to_string())
            .and_then(|user| {
                runtime::container_config(
                    pod,
                    c,
                    &image_ref,
                    &user,
                    &self.ctx.config.root_dir,
                    attempt,
                    inputs,
                )
                .map_err(|e| e.to_string())
            }) {
            Ok(config) => config,
            Err(message) => {
                self.fail_start(pod, c, "CreateContainerConfigError", message);
                return Ok(());
            }
        };
        if let Some(target) = pid_target {
            runtime::target_pid_namespace(&mut config, target);
        }
        let message_file =
            lifecycle::message_mount(&self.ctx.config.root_dir, &self.uid, c, attempt).await;
        config.mounts.extend(message_file.map_err(Error::Io)?);
        let dir = log_dir(&self.ctx.config.root_dir, pod).join(&c.name);
        tokio::fs::create_dir_all(&dir).await.map_err(Error::Io)?;
        let sandbox_config = self.sandbox_config(pod, 0);
        let mut client = self.ctx.runtime.runtime.clone();
        let created = client
            .create_container(v1::CreateContainerRequest {
                pod_sandbox_id: sandbox_id.into(),
                config: Some(config),
                sandbox_config: Some(sandbox_config),
            })
            .await;
        let id = match created {
            Ok(r) => r.into_inner().container_id,
            Err(s) => {
                self.fail_start(pod, c, "CreateContainerError", s.message().into());
                return Ok(());
            }
        };
        self.events.normal(
            container_ref(pod, &c.name),
            "Created",
            format!("Created container: {}", c.name),
        );
        if let Err(s) = client
            .start_container(v1::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
        {
            tracing::warn!(pod = %name(pod), container = %c.name, error = %s, "starting container failed");
            // Leave the failed container as the attempt's record only when
            // the runtime marked it exited; a created one is removed.
            let _ = client
                .remove_container(v1::RemoveContainerRequest { container_id: id })
                .await;
            self.fail_start(pod, c, "RunContainerError", s.message().into());
        } else {
            self.events.normal(
                container_ref(pod, &c.name),
                "Started",
                format!("Started container {}", c.name),
            );
            self.post_start(pod, c, id).await?;
        }
        Ok(())
    }

    /// A container that could not be created or started: the `Failed`
    /// event upstream records, and `reason` as its waiting state.
    fn fail_start(&mut self, pod: &Pod, c: &Container, reason: &str, message: String) {
        self.events.warning(
            container_ref(pod, &c.name),
            "Failed",
            format!("Error: {message}"),
        );
        self.waiting
            .insert(c.name.clone(), (reason.into(), message));
    }

    /// Runs the container's postStart hook; a failed hook kills the
    /// container (`FailedPostStartHook`), which is then restarted per the
    /// restart policy.
    async fn post_start(&mut self, pod: &Pod, c: &Container, id: String) -> Result<(), Error> {
        let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) else {
            return Ok(());
        };
        let target = self.target(c, id);
        let Err(message) = lifecycle::run_hook(hook, &target, &name(pod), None).await else {
            return Ok(());
        };
        tracing::info!(pod = %name(pod), container = %c.name, %message, "postStart hook failed");
        self.events.warning(
            container_ref(pod, &c.name),
            "FailedPostStartHook",
            message.clone(),
        );
        lifecycle::stop_container(
            &self.events,
            pod,
            &target,
            grace_seconds(pod),
            "FailedPostStartHook".into(),
        )
        .await?;
        self.waiting
            .insert(c.name.clone(), ("PostStartHookError".into(), message));
        Ok(())
    }

    /// Kills the containers whose liveness or startup probe failed (they
    /// are restarted per the restart policy); true when any was.
    async fn kill_unhealthy(&mut self, pod: &Pod, observed: &Observed) -> Result<bool, Error> {
        let spec = pod.spec.clone().unwrap_or_default();
        let mut killed = false;
        for (container, id, kind) in self.probes.failed() {
            let Some(c) = spec.containers.iter().find(|c| c.name == container) else {
                continue;
            };
            let current = observed
                .latest(&container)
                .is_some_and(|l| l.id == id && is_running(l));
            if !current {
                continue;
            }
            let grace = probes::kill_grace(Some(c), kind, grace_seconds(pod));
            let note = format!(
                "Container {container} failed {} probe, will be restarted",
                kind.name().to_lowercase()
            );
            tracing::info!(pod = %name(pod), %container, probe = kind.name(), "probe failed; killing the container");
            lifecycle::stop_container(&self.events, pod, &self.target(c, id), grace, note).await?;
            killed = true;
        }
        Ok(killed)
    }

    /// Stops every running container of the pod at once, each after its
    /// preStop hook, within `grace` seconds.
    async fn stop_running(&self, pod: &Pod, observed: &Observed, grace: i64) -> Result<(), Error> {
        let containers = all_containers(pod);
        let stops: Vec<_> = containers
            .iter()
            .filter_map(|c| {
                let latest = observed.latest(&c.name).filter(|l| is_running(l))?;
                let target = self.target(c, latest.id.clone());
                let note = format!("Stopping container {}", c.name);
                Some(async move {
                    lifecycle::stop_container(&self.events, pod, &target, grace, note).await
                })
            })
            .collect();
        for r in futures::future::join_all(stops).await {
            r?;
        }
        Ok(())
    }

    /// activeDeadlineSeconds passed: every container stops and the pod
    /// fails with reason DeadlineExceeded; the sandbox goes.
    async fn fail_deadline(&mut self, pod: &Pod, observed: &Observed) -> Result<Next, Error> {
        self.probes.stop_all();
        if self.failure.is_none() {
            tracing::info!(pod = %name(pod), "active deadline exceeded; failing the pod");
            self.events
                .warning(pod_ref(pod), DEADLINE_REASON, DEADLINE_MESSAGE.into());
        }
        self.failure = Some((DEADLINE_REASON, DEADLINE_MESSAGE.into()));
        self.stop_running(pod, observed, grace_seconds(pod)).await?;
        runtime::stop_containers(&self.ctx.runtime, &self.uid, grace_seconds(pod)).await?;
        let observed = runtime::observe(&self.ctx.runtime, &self.uid).await?;
        self.write_status(pod, &observed, false).await?;
        runtime::stop_sandboxes(&self.ctx.runtime, &self.uid).await?;
        self.sandbox_stopped = true;
        Ok(Next::Wait(IDLE))
    }

    /// Admission refused the pod: it fails without running anything.
    async fn reject(
        &mut self,
        pod: &Pod,
        observed: &Observed,
        rejection: Rejection,
    ) -> Result<Next, Error> {
        if self.failure.is_none() {
            tracing::info!(pod = %name(pod), reason = rejection.reason, message = %rejection.message, "pod rejected");
            self.events
                .warning(pod_ref(pod), rejection.reason, rejection.message.clone());
        }
        self.failure = Some((rejection.reason, rejection.status_message()));
        self.write_status(pod, observed, false).await?;
        self.sandbox_stopped = true;
        Ok(Next::Wait(IDLE))
    }

    /// What a probe or hook of this container instance runs against.
    fn target(&self, c: &Container, container_id: String) -> Target {
        Target {
            runtime: self.ctx.runtime.clone(),
            container_id,
            pod_ip: self.pod_ip.clone(),
            container: c.clone(),
        }
    }

    /// Reads the termination messages of newly exited containers (the
    /// latest two instances of each, those the status shows) and forgets
    /// those of removed ones.
    async fn read_messages(&mut self, pod: &Pod, observed: &Observed) {
        let mut shown = HashSet::new();
        for c in &all_containers(pod) {
            let history = observed
                .containers
                .get(&c.name)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            for s in history.iter().take(2).filter(|s| is_exited(s)) {
                shown.insert(s.id.clone());
                if !self.messages.contains_key(&s.id) {
                    let message = lifecycle::termination_message(c, s).await;
                    self.messages.insert(s.id.clone(), message);
                }
            }
        }
        self.messages.retain(|id, _| shown.contains(id));
    }

    /// The image's ID, pulled per `imagePullPolicy`, or the waiting reason.
    async fn ensure_image(&mut self, pod: &Pod, c: &Container) -> Result<String, (String, String)> {
        let image = c.image.clone().unwrap_or_default();
        let policy = c
            .image_pull_policy
            .clone()
            .unwrap_or_else(|| default_pull_policy(&image).into());
        let mut images = self.ctx.runtime.images.clone();
        let present = images
            .image_status(v1::ImageStatusRequest {
                image: Some(v1::ImageSpec {
                    image: image.clone(),
                    ..Default::default()
                }),
                verbose: false,
            })
            .await
            .map_err(|s| ("ErrImagePull".to_string(), s.message().to_string()))?
            .into_inner()
            .image
            .map(|i| i.id);
        match (policy.as_str(), present) {
            ("Never", Some(id)) | ("IfNotPresent", Some(id)) => {
                self.events.normal(
                    container_ref(pod, &c.name),
                    "Pulled",
                    format!("Container image \"{image}\" already present on machine"),
                );
                return Ok(id);
            }
            ("Never", None) => {
                return Err((
                    "ErrImageNeverPull".into(),
                    format!("Container image \"{image}\" is not present with pull policy of Never"),
                ));
            }
            _ => {}
        }
        let now = Timestamp::now();
        if let Some(f) = self.pull_failures.get_mut(&c.name)
            && now < f.retry_at
        {
            let reason = if f.reported {
                "ImagePullBackOff"
            } else {
                "ErrImagePull"
            };
            f.reported = true;
            let message = if reason == "ImagePullBackOff" {
                format!("Back-off pulling image \"{image}\": {}", f.message)
            } else {
                f.message.clone()
            };
            return Err((reason.into(), message));
        }
        tracing::info!(pod = %name(pod), %image, "pulling image");
        let pulled = images
            .pull_image(v1::PullImageRequest {
                image: Some(v1::ImageSpec {
                    image: image.clone(),
                    ..Default::default()
                }),
                auth: None,
                sandbox_config: Some(self.sandbox_config(pod, 0)),
            })
            .await;
        match pulled {
            Ok(r) => {
                self.pull_failures.remove(&c.name);
                Ok(r.into_inner().image_ref)
            }
            Err(s) => {
                let delay = self
                    .pull_failures
                    .get(&c.name)
                    .map_or(BACKOFF_INITIAL, |f| (f.delay * 2).min(BACKOFF_MAX));
                let message = format!("failed to pull image \"{image}\": {}", s.message());
                tracing::info!(pod = %name(pod), %image, error = %s.message(), "image pull failed");
                self.pull_failures.insert(
                    c.name.clone(),
                    PullFailure {
                        retry_at: now
                            .checked_add(
                                k8s_openapi::jiff::SignedDuration::try_from(delay)
                                    .unwrap_or_default(),
                            )
                            .unwrap_or(now),
                        delay,
                        message: message.clone(),
                        reported: true,
                    },
                );
                Err(("ErrImagePull".into(), message))
            }
        }
    }

    /// Stops the containers within the grace period, writes the final
    /// status, removes the sandbox and finally the pod object itself.
    async fn terminate(&mut self, pod: &Pod) -> Result<Next, Error> {
        self.probes.stop_all();
        let running = runtime::observe(&self.ctx.runtime, &self.uid).await?;
        self.stop_running(pod, &running, grace_seconds(pod)).await?;
        let ctx = self.ctx.clone();
        let rt = &ctx.runtime;
        runtime::stop_containers(rt, &self.uid, grace_seconds(pod)).await?;
        let observed = runtime::observe(rt, &self.uid).await?;
        self.waiting.clear();
        self.write_status(pod, &observed, true).await?;
        for s in runtime::sandboxes(rt, &self.uid).await? {
            runtime::remove_sandbox(rt, &s.id).await?;
        }
        let _ = tokio::fs::remove_dir_all(log_dir(&self.ctx.config.root_dir, pod)).await;
        remove_pod_dir(&self.ctx.config.root_dir, &self.uid).await;
        let _ = tokio::fs::remove_dir_all(lifecycle::containers_dir(
            &self.ctx.config.root_dir,
            &self.uid,
        ))
        .await;
        let (Some(ns), Some(pod_name)) = (
            pod.metadata.namespace.as_deref(),
            pod.metadata.name.as_deref(),
        ) else {
            return Ok(Next::Done);
        };
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(pod_name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!(pod = %name(pod), "pod terminated and removed");
        Ok(Next::Done)
    }

    fn sandbox_config(&self, pod: &Pod, attempt: u32) -> v1::PodSandboxConfig {
        runtime::sandbox_config(pod, &self.ctx.node.name, &self.ctx.config, attempt)
    }

    /// Writes the computed status through `pods/status` when it differs from
    /// the pod's, guarded by the resourceVersion it was computed from (a
    /// conflict is left to the next sync, which sees the newer pod).
    async fn write_status(
        &mut self,
        pod: &Pod,
        observed: &Observed,
        terminating: bool,
    ) -> Result<PodStatus, Error> {
        self.read_messages(pod, observed).await;
        let probed = self.probes.statuses();
        let status = status::compute(
            pod,
            observed,
            &status::Context {
                host_ip: &self.ctx.node.host_ip,
                runtime_name: &self.ctx.node.runtime_name,
                waiting: &self.waiting,
                terminating,
                probed: &probed,
                messages: &self.messages,
                failure: self.failure.as_ref().map(|(r, m)| (*r, m.as_str())),
                now: Timestamp::now(),
            },
        );
        if pod.status.as_ref() == Some(&status) {
            return Ok(status);
        }
        let (Some(ns), Some(pod_name)) = (
            pod.metadata.namespace.as_deref(),
            pod.metadata.name.as_deref(),
        ) else {
            return Ok(status);
        };
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
        let mut patch = serde_json::json!({ "status": status });
        if !terminating {
            patch["metadata"] =
                serde_json::json!({ "resourceVersion": pod.metadata.resource_version });
        }
        match api
            .patch_status(pod_name, &patch_params(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        Ok(status)
    }
}

/// `Always` for `:latest` or untagged images, `IfNotPresent` otherwise (the
/// API server normally defaults the field already).
fn default_pull_policy(image: &str) -> &'static str {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') {
        "IfNotPresent"
    } else {
        match last.split_once(':') {
            None | Some((_, "latest")) => "Always",
            Some(_) => "IfNotPresent",
        }
    }
}

/// The address probes and hooks reach the pod at: the node's for a
/// host-network pod, else its sandbox's first IP.
fn pod_ip(pod: &Pod, observed: &Observed, host_ip: &str) -> String {
    if pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
        return host_ip.into();
    }
    observed
        .sandbox
        .as_ref()
        .and_then(|s| s.ips.first().cloned())
        .unwrap_or_default()
}

/// Whether the pod has been active longer than its activeDeadlineSeconds
/// (counted from its startTime, as upstream).
fn deadline_exceeded(pod: &Pod, now: Timestamp) -> bool {
    let deadline = pod.spec.as_ref().and_then(|s| s.active_deadline_seconds);
    let start = pod.status.as_ref().and_then(|s| s.start_time.as_ref());
    let (Some(deadline), Some(start)) = (deadline, start) else {
        return false;
    };
    start
        .0
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(deadline))
        .is_ok_and(|end| now >= end)
}

/// The pod's init, regular and ephemeral containers, in that order.
fn all_containers(pod: &Pod) -> Vec<Container> {
    let spec = pod.spec.clone().unwrap_or_default();
    spec.init_containers
        .into_iter()
        .flatten()
        .chain(spec.containers)
        .chain(ephemeral::all(pod).into_iter().map(|e| e.container))
        .collect()
}

fn grace_seconds(pod: &Pod) -> i64 {
    pod.metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(30)
        .max(0)
}

fn name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::super::status::is_running;
    use super::*;

    #[test]
    fn pull_policy_defaults() {
        assert_eq!(default_pull_policy("busybox"), "Always");
        assert_eq!(default_pull_policy("busybox:latest"), "Always");
        assert_eq!(default_pull_policy("localhost:5000/busybox"), "Always");
        assert_eq!(
            default_pull_policy("localhost:5000/busybox:1.36"),
            "IfNotPresent"
        );
        assert_eq!(default_pull_policy("busybox@sha256:ab"), "IfNotPresent");
    }

    #[test]
    fn deadline_counts_from_start_time() {
        use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let start = Timestamp::from_second(1_700_000_000).expect("time");
        let pod = Pod {
            spec: Some(PodSpec {
                active_deadline_seconds: Some(5),
                ..Default::default()
            }),
            status: Some(PodStatus {
                start_time: Some(Time(start)),
                ..Default::default()
            }),
            ..Default::default()
        };
        let at = |s: i64| Timestamp::from_second(1_700_000_000 + s).expect("time");
        assert!(!deadline_exceeded(&pod, at(4)));
        assert!(deadline_exceeded(&pod, at(5)));
        assert!(!deadline_exceeded(&Pod::default(), at(5)));
    }

    #[test]
    fn running_check() {
        let c = v1::ContainerStatus {
            state: v1::ContainerState::ContainerRunning as i32,
            ..Default::default()
        };
        assert!(is_running(&c));
    }
}
