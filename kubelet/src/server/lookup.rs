//! Finding a pod's sandbox and containers in the runtime by the labels the
//! kubelet puts on them, so the server needs nothing but the runtime.

use std::collections::HashMap;

use super::{Error, Result};
use crate::cri::{self, Runtime, v1};
use crate::pods::runtime::{CONTAINER_NAME, POD_NAME, POD_NAMESPACE};

/// The pod's newest sandbox, or 404 if the runtime has none.
pub(super) async fn sandbox(
    runtime: &Runtime,
    namespace: &str,
    pod: &str,
) -> Result<v1::PodSandbox> {
    let filter = v1::PodSandboxFilter {
        label_selector: HashMap::from([
            (POD_NAMESPACE.to_string(), namespace.to_string()),
            (POD_NAME.to_string(), pod.to_string()),
        ]),
        ..Default::default()
    };
    let items = runtime
        .runtime
        .clone()
        .list_pod_sandbox(v1::ListPodSandboxRequest {
            filter: Some(filter),
        })
        .await
        .map_err(cri::call("ListPodSandbox"))?
        .into_inner()
        .items;
    // A ready sandbox beats a newer one that is being torn down.
    items
        .into_iter()
        .max_by_key(|s| {
            (
                s.state == v1::PodSandboxState::SandboxReady as i32,
                s.created_at,
            )
        })
        .ok_or_else(|| Error::NotFound(format!("pod \"{pod}\" does not exist")))
}

/// Every instance of the container, newest first; empty when it has never
/// been created (the pod itself must exist, else 404).
pub(super) async fn containers(
    runtime: &Runtime,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Result<Vec<v1::Container>> {
    let filter = v1::ContainerFilter {
        label_selector: HashMap::from([
            (POD_NAMESPACE.to_string(), namespace.to_string()),
            (POD_NAME.to_string(), pod.to_string()),
            (CONTAINER_NAME.to_string(), container.to_string()),
        ]),
        ..Default::default()
    };
    let mut listed = runtime
        .runtime
        .clone()
        .list_containers(v1::ListContainersRequest {
            filter: Some(filter),
        })
        .await
        .map_err(cri::call("ListContainers"))?
        .into_inner()
        .containers;
    if listed.is_empty() {
        sandbox(runtime, namespace, pod).await?;
    }
    listed.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    Ok(listed)
}

/// The container's current instance, which must be running (exec, attach).
pub(super) async fn running(
    runtime: &Runtime,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Result<v1::Container> {
    let latest = containers(runtime, namespace, pod, container)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            Error::NotFound(format!(
                "container \"{container}\" not found in pod \"{pod}\""
            ))
        })?;
    if latest.state != v1::ContainerState::ContainerRunning as i32 {
        return Err(Error::BadRequest(format!(
            "container \"{container}\" in pod \"{pod}\" is not running"
        )));
    }
    Ok(latest)
}

/// The runtime's status of one container (log path, state).
pub(super) async fn status(runtime: &Runtime, id: &str) -> Result<v1::ContainerStatus> {
    Ok(runtime
        .runtime
        .clone()
        .container_status(v1::ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: false,
        })
        .await
        .map_err(cri::call("ContainerStatus"))?
        .into_inner()
        .status
        .unwrap_or_default())
}
