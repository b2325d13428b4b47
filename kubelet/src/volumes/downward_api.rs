//! downwardAPI volumes (and projected downwardAPI sources): pod fields and
//! container resources as files, on tmpfs. Rewritten on resync, so label
//! and annotation changes reach running pods.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{DownwardAPIVolumeFile, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{File, Payload, Result, mode_bits};
use crate::env;

/// The files of `items`. The node's allocatable resources (the default of
/// unset limits) are read once, into `allocatable`, when an item needs them.
pub(super) async fn payload(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: i32,
    client: &kube::Client,
    node_name: &str,
    allocatable: &mut Option<BTreeMap<String, Quantity>>,
) -> Result<Payload> {
    let mut payload = Payload::new();
    for item in items {
        let data = if let Some(f) = &item.field_ref {
            env::field_value(pod, &f.field_path, &[], &[])?
        } else if let Some(r) = &item.resource_field_ref {
            let name = r.container_name.as_deref().unwrap_or("");
            let spec = pod.spec.as_ref();
            let c = spec
                .into_iter()
                .flat_map(|s| {
                    s.containers
                        .iter()
                        .chain(s.init_containers.iter().flatten())
                })
                .find(|c| c.name == name)
                .ok_or_else(|| env::Error::Container(name.into()))?;
            if allocatable.is_none() {
                *allocatable = Some(env::node_allocatable(client, node_name).await?);
            }
            let alloc = allocatable.clone().unwrap_or_default();
            env::resource_value(r, c, &alloc)?
        } else {
            String::new()
        };
        payload.insert(
            item.path.clone(),
            File {
                data: data.into_bytes(),
                mode: mode_bits(item.mode.unwrap_or(default_mode)),
            },
        );
    }
    Ok(payload)
}
