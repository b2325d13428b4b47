//! Service cluster IP allocation, persisted as `networking.k8s.io/v1` IPAddress
//! objects (as upstream's allocator since the MultiCIDRServiceAllocator feature):
//! an IP is taken by creating its IPAddress object, which the store makes atomic,
//! and released by deleting it. No allocation state lives only in memory.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

use super::meta;
use super::store::Store;
use super::{DeleteOptions, WriteOptions};
use crate::api_error::{ApiError, ApiResult, FieldError};
use crate::resources::ResourceInfo;

/// The default service CIDR, 10.96.0.0/12.
pub const SERVICE_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 96, 0, 0), 12);
/// The API server's own `kubernetes` service takes the first address.
pub const KUBERNETES_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 1);

fn in_range(ip: Ipv4Addr) -> bool {
    let (base, bits) = SERVICE_CIDR;
    let mask = u32::MAX << (32 - bits);
    u32::from(ip) & mask == u32::from(base) & mask
}

fn range_size() -> u32 {
    1u32 << (32 - SERVICE_CIDR.1)
}

fn ipaddress_object(ip: Ipv4Addr, svc: &Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IPAddress",
        "metadata": {
            "name": ip.to_string(),
            "labels": {
                "ipaddress.kubernetes.io/ip-family": "IPv4",
                "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io",
            },
        },
        "spec": {"parentRef": {"group": "", "resource": "services", "namespace": meta::namespace(svc), "name": meta::name(svc)}},
    })
}

fn ipaddresses(store: &Store) -> ApiResult<std::sync::Arc<ResourceInfo>> {
    store
        .table
        .get("networking.k8s.io", "v1", "ipaddresses")
        .ok_or_else(|| ApiError::internal("ipaddresses are not served"))
}

fn already_allocated(svc: &Value, ip: &str, why: &str) -> ApiError {
    let info_kind = "Service";
    let field = FieldError::new(
        crate::api_error::FieldErrorKind::Invalid,
        "spec.clusterIPs",
        Some(format!("[]string{{{ip:?}}}")),
        format!("failed to allocate IP {ip}: {why}"),
    );
    ApiError::new(422, "Invalid", format!("{info_kind} {:?} is invalid: {field}", meta::name(svc)))
        .with_details(json!({"name": meta::name(svc), "kind": info_kind, "causes": [{"reason": "FieldValueInvalid", "message": field.body(), "field": "spec.clusterIPs"}]}))
}

/// Gives a new Service its cluster IP (requested or free), unless it is headless or ExternalName.
pub async fn allocate(store: &Store, svc: &mut Value) -> ApiResult<()> {
    let ty = meta::str_at(svc, "/spec/type")
        .unwrap_or("ClusterIP")
        .to_string();
    if ty == "ExternalName" {
        return Ok(());
    }
    let requested = meta::str_at(svc, "/spec/clusterIP")
        .unwrap_or("")
        .to_string();
    if requested == "None" {
        svc["spec"]["clusterIPs"] = json!(["None"]);
        svc["spec"]["ipFamilies"] = json!(["IPv4"]);
        svc["spec"]["ipFamilyPolicy"] = json!("SingleStack");
        return Ok(());
    }
    let info = ipaddresses(store)?;
    let opts = WriteOptions::default();
    let ip = if requested.is_empty() {
        let size = range_size();
        let start = (uuid::Uuid::new_v4().as_u128() as u32) % size;
        let mut chosen = None;
        for step in 0..size {
            let offset = (start + step) % size;
            // Skip the network address, the broadcast address and the kubernetes service's.
            if offset == 0 || offset == size - 1 || offset == 1 {
                continue;
            }
            let ip = Ipv4Addr::from(u32::from(SERVICE_CIDR.0) + offset);
            match store
                .create(&info, None, ipaddress_object(ip, svc), &opts)
                .await
            {
                Ok(_) => {
                    chosen = Some(ip);
                    break;
                }
                Err(e) if e.code == 409 => continue,
                Err(e) => return Err(e),
            }
        }
        chosen.ok_or_else(|| already_allocated(svc, "", "range is full"))?
    } else {
        let ip: Ipv4Addr = requested
            .parse()
            .map_err(|_| already_allocated(svc, &requested, "not a valid IP address"))?;
        if !in_range(ip) {
            return Err(already_allocated(
                svc,
                &requested,
                "the provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12",
            ));
        }
        match store
            .create(&info, None, ipaddress_object(ip, svc), &opts)
            .await
        {
            Ok(_) => ip,
            Err(e) if e.code == 409 => {
                return Err(already_allocated(
                    svc,
                    &requested,
                    "provided IP is already allocated",
                ));
            }
            Err(e) => return Err(e),
        }
    };
    svc["spec"]["clusterIP"] = json!(ip.to_string());
    svc["spec"]["clusterIPs"] = json!([ip.to_string()]);
    svc["spec"]["ipFamilies"] = json!(["IPv4"]);
    svc["spec"]["ipFamilyPolicy"] = json!("SingleStack");
    Ok(())
}

/// Frees a deleted Service's IP (its IPAddress object), if it owned one.
pub async fn release(store: &Store, svc: &Value) {
    let Some(ip) =
        meta::str_at(svc, "/spec/clusterIP").filter(|ip| !ip.is_empty() && *ip != "None")
    else {
        return;
    };
    let Ok(info) = ipaddresses(store) else { return };
    if let Err(e) = store
        .delete(&info, None, ip, &DeleteOptions::default())
        .await
        && e.code != 404
    {
        tracing::warn!(ip, error = %e, "could not release service IP");
    }
}
