//! The objects every cluster has before its first client: the system
//! namespaces, the API server's own `kubernetes` Service in `default` with
//! the Endpoints and EndpointSlice that point at the API server, and the
//! default ServiceCIDR (`kubernetes`) the Service addresses come from.
//!
//! All idempotent: a restart (or a second API server on the same etcd)
//! creates what is missing and points the endpoints at itself, writing only
//! when something changed.

use std::net::SocketAddr;

use serde_json::{Value, json};

use crate::api_error::ApiError;
use crate::registry::service_ips::{KUBERNETES_SERVICE_IP, SERVICE_CIDR};
use crate::registry::store::UpdateTarget;
use crate::registry::{Store, WriteOptions};
use crate::resources::ResourceTable;

/// The namespaces every cluster starts with.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Name of the API server's Service, Endpoints, EndpointSlice and of the
/// default ServiceCIDR, as upstream names them.
const KUBERNETES: &str = "kubernetes";

/// Creates what must exist before clients arrive. `advertise` is the address
/// the API server serves on (an unspecified IP advertises 127.0.0.1).
/// `system-node-critical` and `system-cluster-critical`: name, value, description.
const SYSTEM_PRIORITY_CLASSES: [(&str, i64, &str); 2] = [
    (
        "system-node-critical",
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

pub async fn bootstrap(
    store: &Store,
    table: &ResourceTable,
    advertise: SocketAddr,
) -> Result<(), ApiError> {
    for name in SYSTEM_NAMESPACES {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        create_if_missing(store, table, ("", "v1", "namespaces"), None, obj).await?;
    }
    // Upstream's built-in priority classes, which critical pods name.
    for (name, value, description) in SYSTEM_PRIORITY_CLASSES {
        let class = json!({
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name},
            "value": value,
            "description": description,
        });
        create_if_missing(
            store,
            table,
            ("scheduling.k8s.io", "v1", "priorityclasses"),
            None,
            class,
        )
        .await?;
    }
    let ip = if advertise.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        advertise.ip().to_string()
    };
    let port = advertise.port();
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": KUBERNETES, "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {
            "clusterIP": KUBERNETES_SERVICE_IP.to_string(),
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
            "sessionAffinity": "None", "type": "ClusterIP",
        },
    });
    create_if_missing(
        store,
        table,
        ("", "v1", "services"),
        Some("default"),
        service,
    )
    .await?;
    let cidr = format!("{}/{}", SERVICE_CIDR.0, SERVICE_CIDR.1);
    let service_cidr = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR",
        "metadata": {"name": KUBERNETES},
        "spec": {"cidrs": [cidr]},
    });
    create_if_missing(
        store,
        table,
        ("networking.k8s.io", "v1", "servicecidrs"),
        None,
        service_cidr,
    )
    .await?;
    mark_service_cidr_ready(store, table).await?;
    let subsets = json!([{
        "addresses": [{"ip": ip}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }]);
    let endpoints = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": KUBERNETES, "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": subsets,
    });
    ensure_fields(
        store,
        table,
        ("", "v1", "endpoints"),
        endpoints,
        &["subsets"],
    )
    .await?;
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": KUBERNETES, "namespace": "default", "labels": {"kubernetes.io/service-name": KUBERNETES}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    });
    ensure_fields(
        store,
        table,
        ("discovery.k8s.io", "v1", "endpointslices"),
        slice,
        &["addressType", "endpoints", "ports"],
    )
    .await
}

/// Creates `obj` unless it exists (or, for the Service, unless its address is
/// taken); logs what it created.
/// Upstream's default RBAC policy (`kubectl get clusterroles` on a fresh
/// cluster): the roles of users, components and controllers, and their bindings.
const BOOTSTRAP_POLICY: &str = include_str!("auth/bootstrap_policy.yaml");

/// Creates each object of the default RBAC policy that does not exist yet;
/// existing ones are left as they are (an administrator's edits stay).
pub async fn bootstrap_policy(store: &Store, table: &ResourceTable) -> Result<(), ApiError> {
    let mut created = 0;
    for doc in serde_yaml::Deserializer::from_str(BOOTSTRAP_POLICY) {
        let mut obj: Value = serde::Deserialize::deserialize(doc)
            .map_err(|e| ApiError::internal(format!("the bootstrap RBAC policy: {e}")))?;
        // An aggregated role's rules are the aggregation controller's to write.
        if obj["rules"].as_array().is_some_and(Vec::is_empty)
            && let Some(o) = obj.as_object_mut()
        {
            o.remove("rules");
        }
        let plural = match obj["kind"].as_str() {
            Some("ClusterRole") => "clusterroles",
            Some("ClusterRoleBinding") => "clusterrolebindings",
            Some("Role") => "roles",
            Some("RoleBinding") => "rolebindings",
            other => {
                return Err(ApiError::internal(format!(
                    "the bootstrap RBAC policy holds a {other:?}"
                )));
            }
        };
        let Some(info) = table.get("rbac.authorization.k8s.io", "v1", plural) else {
            continue;
        };
        let ns = obj["metadata"]["namespace"].as_str().map(str::to_string);
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        let key = info.key(ns.as_deref(), name);
        match store.storage().get(&key).await {
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(e) => return Err(ApiError::from_storage(e, &info, name)),
        }
        let options = WriteOptions {
            field_manager: Some("kube-apiserver".into()),
            ..WriteOptions::default()
        };
        match store.create(&info, ns.as_deref(), obj, &options).await {
            Ok(_) => created += 1,
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    if created > 0 {
        tracing::info!(created, "created the default RBAC roles and bindings");
    }
    Ok(())
}

async fn create_if_missing(
    store: &Store,
    table: &ResourceTable,
    (group, version, resource): (&str, &str, &str),
    ns: Option<&str>,
    obj: Value,
) -> Result<(), ApiError> {
    let Some(info) = table.get(group, version, resource) else {
        return Ok(());
    };
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    match store.create(&info, ns, obj, &WriteOptions::default()).await {
        Ok(_) => {
            tracing::info!(resource, name, "created system object");
            Ok(())
        }
        Err(e) if e.code == 409 || e.code == 422 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates `desired` in `default`, or makes the listed top-level fields of the
/// stored object equal to it (keeping everything else) when they differ.
async fn ensure_fields(
    store: &Store,
    table: &ResourceTable,
    (group, version, resource): (&str, &str, &str),
    desired: Value,
    fields: &[&str],
) -> Result<(), ApiError> {
    let Some(info) = table.get(group, version, resource) else {
        return Ok(());
    };
    let ns = Some("default");
    let current = match store.get(&info, ns, KUBERNETES).await {
        Ok(current) => current,
        Err(e) if e.code == 404 => {
            return create_if_missing(store, table, (group, version, resource), ns, desired).await;
        }
        Err(e) => return Err(e),
    };
    if fields.iter().all(|f| current.get(*f) == desired.get(*f)) {
        return Ok(());
    }
    store
        .update(
            &info,
            ns,
            KUBERNETES,
            UpdateTarget::Main,
            &WriteOptions::default(),
            |old| {
                let mut new = old.cloned().unwrap_or_else(|| desired.clone());
                for f in fields {
                    new[*f] = desired[*f].clone();
                }
                Ok(new)
            },
        )
        .await?;
    tracing::info!(
        resource,
        "pointed the API server's endpoints at this server"
    );
    Ok(())
}

/// Sets the default ServiceCIDR's `Ready` condition, as upstream's default
/// ServiceCIDR controller does once the range is in use.
async fn mark_service_cidr_ready(store: &Store, table: &ResourceTable) -> Result<(), ApiError> {
    let Some(info) = table.get("networking.k8s.io", "v1", "servicecidrs") else {
        return Ok(());
    };
    let current = store.get(&info, None, KUBERNETES).await?;
    let ready = current["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
    if ready {
        return Ok(());
    }
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    store
        .update(
            &info,
            None,
            KUBERNETES,
            UpdateTarget::Status,
            &WriteOptions::default(),
            |old| {
                let mut new = old.cloned().unwrap_or(Value::Null);
                new["status"] = json!({"conditions": [{
                    "type": "Ready", "status": "True", "lastTransitionTime": now,
                    "reason": "", "message": "Kubernetes default Service CIDR is ready",
                }]});
                Ok(new)
            },
        )
        .await?;
    Ok(())
}
