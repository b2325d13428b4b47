//! A container's life around its process: the postStart and preStop hooks
//! (exec, httpGet, sleep), stopping a container within its grace period, and
//! termination messages.
//!
//! Stopping runs the preStop hook first and gives SIGTERM what is left of
//! the grace period (at least [`MIN_GRACE_AFTER_HOOK`], as upstream):
//!
//! ```text
//!   ├── preStop (bounded by the grace period) ──┤── SIGTERM … SIGKILL ──┤
//!   0                                           t              max(grace − t, 2 s)
//! ```
//!
//! Termination messages: each container instance gets a file of its own
//! under `<root>/pods/<uid>/containers/<name>/`, bind-mounted at its
//! `terminationMessagePath`. Once the container exits the kubelet reads it
//! (at most [`MAX_MESSAGE`] bytes), or with `FallbackToLogsOnError` and a
//! failed, silent container, the tail of its log.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod};

use crate::cri::{self, v1};
use crate::events::{Events, container_ref};
use crate::probes::{self, Outcome, Target};

/// Upstream's floor for SIGTERM's share of the grace period after a hook.
pub(crate) const MIN_GRACE_AFTER_HOOK: i64 = 2;
/// Upstream reads at most 4 KiB of a termination message file.
pub(crate) const MAX_MESSAGE: usize = 4096;
/// Upstream's log fallback: the last 80 lines, at most 2 KiB of them.
const LOG_LINES: usize = 80;
const LOG_BYTES: usize = 2048;
/// An httpGet hook without a deadline of its own still ends.
const HOOK_HTTP_TIMEOUT: Duration = Duration::from_secs(120);
pub(crate) const DEFAULT_MESSAGE_PATH: &str = "/dev/termination-log";

/// Runs a hook handler to completion (or `timeout`); the error is upstream's
/// message for the failed hook.
pub(crate) async fn run_hook(
    handler: &LifecycleHandler,
    target: &Target,
    pod: &str,
    timeout: Option<Duration>,
) -> Result<(), String> {
    let name = &target.container.name;
    if let Some(e) = &handler.exec {
        let cmd = e.command.clone().unwrap_or_default();
        return match probes::exec(&target.runtime, &target.container_id, &cmd, timeout).await {
            Outcome::Success => Ok(()),
            Outcome::Failure(out) | Outcome::Unknown(out) => Err(format!(
                "Exec lifecycle hook ({cmd:?}) for Container \"{name}\" in Pod \"{pod}\" failed - error: command exited with an error, message: {out:?}"
            )),
        };
    }
    if let Some(h) = &handler.http_get {
        let t = timeout.unwrap_or(HOOK_HTTP_TIMEOUT);
        return match probes::http_get(h, &target.pod_ip, &target.container, t).await {
            Outcome::Success => Ok(()),
            Outcome::Failure(e) | Outcome::Unknown(e) => Err(format!(
                "HTTP lifecycle hook ({}) for Container \"{name}\" in Pod \"{pod}\" failed - error: {e}",
                h.path.as_deref().unwrap_or("/")
            )),
        };
    }
    if let Some(s) = &handler.sleep {
        let mut d = Duration::from_secs(u64::try_from(s.seconds).unwrap_or(0));
        if let Some(t) = timeout {
            d = d.min(t);
        }
        tokio::time::sleep(d).await;
        return Ok(());
    }
    // tcpSocket hooks are accepted by the API for compatibility and, as
    // upstream, do nothing.
    Ok(())
}

/// Stops one container: `Killing` event, preStop within the grace period,
/// then CRI StopContainer with what remains.
pub(crate) async fn stop_container(
    events: &Events,
    pod: &Pod,
    target: &Target,
    grace_seconds: i64,
    note: String,
) -> cri::Result<()> {
    let c = &target.container;
    events.normal(container_ref(pod, &c.name), "Killing", note);
    let mut timeout = grace_seconds.max(0);
    if let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) {
        let start = Instant::now();
        let grace = Duration::from_secs(u64::try_from(timeout).unwrap_or(0));
        let pod_name = pod.metadata.name.as_deref().unwrap_or("");
        match tokio::time::timeout(grace, run_hook(hook, target, pod_name, Some(grace))).await {
            Ok(Ok(())) => {}
            Ok(Err(message)) => {
                events.warning(container_ref(pod, &c.name), "FailedPreStopHook", message);
            }
            Err(_) => {
                tracing::info!(container = %c.name, pod = pod_name, "preStop hook did not complete within the grace period");
            }
        }
        let spent = i64::try_from(start.elapsed().as_secs()).unwrap_or(i64::MAX);
        timeout = (timeout - spent).max(MIN_GRACE_AFTER_HOOK);
    }
    match target
        .runtime
        .runtime
        .clone()
        .stop_container(v1::StopContainerRequest {
            container_id: target.container_id.clone(),
            timeout,
        })
        .await
    {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
        Err(s) => Err(cri::call("StopContainer")(s)),
    }
}

/// Where a pod's per-container files live: `<root>/pods/<uid>/containers`.
pub(crate) fn containers_dir(root_dir: &Path, uid: &str) -> PathBuf {
    root_dir.join("pods").join(uid).join("containers")
}

/// Creates this container instance's termination message file and returns
/// the mount that puts it at `terminationMessagePath` (none for an empty
/// path).
pub(crate) async fn message_mount(
    root_dir: &Path,
    uid: &str,
    c: &Container,
    attempt: u32,
) -> std::io::Result<Option<v1::Mount>> {
    let path = c
        .termination_message_path
        .clone()
        .unwrap_or_else(|| DEFAULT_MESSAGE_PATH.into());
    if path.is_empty() {
        return Ok(None);
    }
    let dir = containers_dir(root_dir, uid).join(&c.name);
    tokio::fs::create_dir_all(&dir).await?;
    let file = dir.join(attempt.to_string());
    tokio::fs::write(&file, b"").await?;
    // Any user in the container may write its message.
    use std::os::unix::fs::PermissionsExt;
    tokio::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).await?;
    Ok(Some(v1::Mount {
        container_path: path,
        host_path: file.to_string_lossy().into_owned(),
        ..Default::default()
    }))
}

/// The termination message of an exited container instance, from its file
/// or, per `FallbackToLogsOnError`, from its log.
pub(crate) async fn termination_message(c: &Container, status: &v1::ContainerStatus) -> String {
    let path = c
        .termination_message_path
        .as_deref()
        .unwrap_or(DEFAULT_MESSAGE_PATH);
    let mut message = String::new();
    if let Some(m) = status.mounts.iter().find(|m| m.container_path == path)
        && let Ok(bytes) = tokio::fs::read(&m.host_path).await
    {
        let end = bytes.len().min(MAX_MESSAGE);
        message = String::from_utf8_lossy(&bytes[..end]).into_owned();
    }
    let fallback = c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError");
    if message.is_empty()
        && fallback
        && status.exit_code != 0
        && let Ok(raw) = tokio::fs::read_to_string(&status.log_path).await
    {
        message = log_tail(&crate::server::decode_cri_log(&raw));
    }
    message
}

/// The last [`LOG_LINES`] lines of a log, cut to its last [`LOG_BYTES`].
pub(crate) fn log_tail(log: &str) -> String {
    let starts: Vec<usize> = std::iter::once(0)
        .chain(log.match_indices('\n').map(|(i, _)| i + 1))
        .filter(|i| *i < log.len())
        .collect();
    let from = starts
        .len()
        .checked_sub(LOG_LINES)
        .and_then(|i| starts.get(i))
        .copied()
        .unwrap_or(0);
    let mut tail = &log[from..];
    if tail.len() > LOG_BYTES {
        let mut cut = tail.len() - LOG_BYTES;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail = &tail[cut..];
    }
    tail.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_keeps_the_last_lines_and_bytes() {
        assert_eq!(log_tail("a\nb\n"), "a\nb\n");
        let many: String = (0..100).map(|i| format!("{i}\n")).collect();
        let tail = log_tail(&many);
        assert!(tail.starts_with("20\n") && tail.ends_with("99\n"), "{tail}");
        let long = "x".repeat(5000);
        assert_eq!(log_tail(&long).len(), LOG_BYTES);
        let wide = "é".repeat(2000);
        assert!(log_tail(&wide).len() <= LOG_BYTES);
    }

    #[tokio::test]
    async fn message_files_are_made_and_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = Container {
            name: "main".into(),
            termination_message_path: Some("/tmp/msg".into()),
            ..Default::default()
        };
        let mount = message_mount(dir.path(), "u1", &c, 2)
            .await
            .expect("mount")
            .expect("a path");
        assert_eq!(mount.container_path, "/tmp/msg");
        assert!(mount.host_path.ends_with("pods/u1/containers/main/2"));
        std::fs::write(&mount.host_path, "x".repeat(5000)).expect("write");
        let status = v1::ContainerStatus {
            mounts: vec![mount],
            exit_code: 1,
            ..Default::default()
        };
        assert_eq!(termination_message(&c, &status).await.len(), MAX_MESSAGE);
        let no_path = Container {
            termination_message_path: Some(String::new()),
            ..c
        };
        assert!(
            message_mount(dir.path(), "u1", &no_path, 0)
                .await
                .expect("ok")
                .is_none()
        );
    }
}
