//! Admission of new Pods, as upstream's default-on built-in plugins do:
//! `ServiceAccount` (the pod's account, its token volume and pull secrets),
//! `Priority`, `DefaultTolerationSeconds`, `RuntimeClass` (the class must
//! exist; its overhead and scheduling constraints are copied into the pod)
//! and `LimitRanger` (a namespace's `Container` LimitRanges default requests
//! and limits and bound them), then `PodSecurity` (see [`super::pod_security`]).
//! Runs as the Pod strategy's `admit`, after validation, dry runs included.

use std::cmp::Ordering;

use serde_json::{Map, Value, json};

use crate::api_error::{ApiError, ApiResult};
use crate::printers::quantity;
use crate::registry::list::ListRequest;
use crate::registry::meta;
use crate::registry::store::Store;

/// Runs the plugins on `pod`, in upstream's order.
pub async fn admit(store: &Store, pod: &mut Value, warnings: &super::Warnings) -> ApiResult<()> {
    service_account(store, pod).await?;
    priority(store, pod).await?;
    default_toleration_seconds(pod);
    runtime_class(store, pod).await?;
    limit_ranger(store, pod).await?;
    // Validating: it judges the pod as the mutating plugins left it.
    super::pod_security::admit(store, pod, warnings).await
}

/// Priority admission: `spec.priority` and `spec.preemptionPolicy` come from
/// the pod's PriorityClass (or the global default class, or 0), and a pod may
/// not state values of its own that differ from them.
async fn priority(store: &Store, pod: &mut Value) -> ApiResult<()> {
    let Some(info) = store
        .table
        .get("scheduling.k8s.io", "v1", "priorityclasses")
    else {
        return Ok(());
    };
    let class_name = meta::str_at(pod, "/spec/priorityClassName")
        .unwrap_or("")
        .to_string();
    let class = if class_name.is_empty() {
        let all = store
            .list(&info, None, &crate::registry::list::ListRequest::default())
            .await?;
        all.items
            .into_iter()
            .filter(|c| c.get("globalDefault").and_then(Value::as_bool) == Some(true))
            // Upstream picks the lowest-valued global default if several exist.
            .min_by_key(|c| c.get("value").and_then(Value::as_i64).unwrap_or(0))
    } else {
        match store.get(&info, None, &class_name).await {
            Ok(class) => Some(class),
            Err(e) if e.code == 404 => {
                return Err(forbidden(
                    pod,
                    format!("no PriorityClass with name {class_name} was found"),
                ));
            }
            Err(e) => return Err(e),
        }
    };
    let value = class
        .as_ref()
        .and_then(|c| c.get("value").and_then(Value::as_i64))
        .unwrap_or(0);
    let policy = class
        .as_ref()
        .and_then(|c| meta::str_at(c, "/preemptionPolicy"))
        .unwrap_or("PreemptLowerPriority")
        .to_string();
    if let Some(given) = pod.pointer("/spec/priority").and_then(Value::as_i64)
        && given != value
    {
        return Err(forbidden(
            pod,
            format!(
                "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name"
            ),
        ));
    }
    if let Some(given) = meta::str_at(pod, "/spec/preemptionPolicy")
        && given != policy
    {
        return Err(forbidden(
            pod,
            format!(
                "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
            ),
        ));
    }
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        if let Some(name) = class
            .as_ref()
            .filter(|_| class_name.is_empty())
            .map(meta::name)
        {
            spec.insert("priorityClassName".into(), json!(name));
        }
        spec.insert("priority".into(), json!(value));
        spec.insert("preemptionPolicy".into(), json!(policy));
    }
    Ok(())
}

/// Where the ServiceAccount plugin mounts the account's token.
const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The token volume's name is this prefix and five random characters.
const TOKEN_VOLUME_PREFIX: &str = "kube-api-access-";
const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// Pods the kubelet mirrors from static manifests carry this annotation.
const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// An account annotated `true` limits the secrets its pods may reference.
const ENFORCE_MOUNTABLE_SECRETS: &str = "kubernetes.io/enforce-mountable-secrets";

/// ServiceAccount admission: a pod runs as `default` unless it names an
/// account; the account must exist; unless the pod (or else the account)
/// opts out, every container and init container mounts a projected token,
/// CA bundle and namespace at [`TOKEN_MOUNT_PATH`]; a pod without pull
/// secrets gets its account's.
///
/// Deviation: upstream also refuses a pod whose `default` account does not
/// exist yet (after retrying for the service account controller). ironkube's
/// API server runs without that controller in several set-ups (`ironkube
/// apiserver`, the components' test servers), so a missing `default` is
/// treated as an account with no settings.
async fn service_account(store: &Store, pod: &mut Value) -> ApiResult<()> {
    if pod
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION))
    {
        return mirror_pod_references(pod);
    }
    let name = meta::str_at(pod, "/spec/serviceAccountName")
        .filter(|n| !n.is_empty())
        .unwrap_or(DEFAULT_SERVICE_ACCOUNT)
        .to_string();
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("serviceAccountName".into(), json!(name));
        spec.insert("serviceAccount".into(), json!(name));
    }
    let account = match store.table.get("", "v1", "serviceaccounts") {
        None => None,
        Some(info) => {
            let ns = meta::namespace(pod).to_string();
            match store.get(&info, Some(&ns), &name).await {
                Ok(account) => Some(account),
                Err(e) if e.code == 404 && name == DEFAULT_SERVICE_ACCOUNT => None,
                Err(e) if e.code == 404 => {
                    return Err(forbidden(
                        pod,
                        format!(
                            "error looking up service account {ns}/{name}: serviceaccount {name:?} not found"
                        ),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    };
    let account = account.unwrap_or_else(|| json!({}));
    if automounts(pod, &account) {
        mount_token(pod);
    }
    let has_pull_secrets = pod
        .pointer("/spec/imagePullSecrets")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let account_pull_secrets: Vec<Value> = account
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| json!({"name": s.get("name").and_then(Value::as_str).unwrap_or("")}))
        .collect();
    if !has_pull_secrets
        && !account_pull_secrets.is_empty()
        && let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.insert("imagePullSecrets".into(), json!(account_pull_secrets));
    }
    let enforced = account
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(ENFORCE_MOUNTABLE_SECRETS))
        .and_then(Value::as_str)
        .is_some_and(go_parse_bool_true);
    if enforced && let Some(why) = unreferenced_secret(pod, &account, &name) {
        return Err(forbidden(pod, why));
    }
    Ok(())
}

/// Go's `strconv.ParseBool` accepting the value as true.
fn go_parse_bool_true(s: &str) -> bool {
    matches!(s, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

/// The pod's `automountServiceAccountToken` wins, then the account's; the
/// default is to mount.
fn automounts(pod: &Value, account: &Value) -> bool {
    pod.pointer("/spec/automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| {
            account
                .get("automountServiceAccountToken")
                .and_then(Value::as_bool)
        })
        .unwrap_or(true)
}

/// The projected volume a pod's token, CA bundle and namespace come from.
fn token_volume(name: &str) -> Value {
    json!({"name": name, "projected": {
        "sources": [
            // Upstream's bound-token lifetime: an hour, and 7 seconds that
            // tell its own tokens apart.
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ],
        "defaultMode": 420,
    }})
}

/// Mounts the token volume (an existing `kube-api-access-*` volume, or a new
/// one) in every container and init container with nothing at the path yet.
fn mount_token(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let existing = spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .find(|n| n.starts_with(TOKEN_VOLUME_PREFIX))
        .map(str::to_string);
    let volume_name = existing
        .clone()
        .unwrap_or_else(|| meta::generate_name(TOKEN_VOLUME_PREFIX));
    let mount = json!({"name": volume_name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
    let mut mounted = false;
    for list in ["initContainers", "containers"] {
        let containers = spec.get_mut(list).and_then(Value::as_array_mut);
        for container in containers.into_iter().flatten() {
            let Some(container) = container.as_object_mut() else {
                continue;
            };
            let mounts = container.entry("volumeMounts").or_insert_with(|| json!([]));
            if !mounts.is_array() {
                *mounts = json!([]);
            }
            let Some(mounts) = mounts.as_array_mut() else {
                continue;
            };
            let taken = mounts
                .iter()
                .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(TOKEN_MOUNT_PATH));
            if !taken {
                mounts.push(mount.clone());
                mounted = true;
            }
        }
    }
    if mounted && existing.is_none() {
        let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
        if !volumes.is_array() {
            *volumes = json!([]);
        }
        if let Some(volumes) = volumes.as_array_mut() {
            volumes.push(token_volume(&volume_name));
        }
    }
}

/// Every secret name the pod references, as upstream's `VisitPodSecretNames`:
/// pull secrets, container environment, and volume sources.
fn secret_names(pod: &Value) -> Vec<String> {
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    let mut names = Vec::new();
    let mut push = |v: Option<&Value>| {
        if let Some(n) = v.and_then(Value::as_str).filter(|n| !n.is_empty()) {
            names.push(n.to_string());
        }
    };
    for s in spec
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        push(s.get("name"));
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for e in c
                .get("envFrom")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                push(e.pointer("/secretRef/name"));
            }
            for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
                push(e.pointer("/valueFrom/secretKeyRef/name"));
            }
        }
    }
    for v in spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for pointer in [
            "/secret/secretName",
            "/azureFile/secretName",
            "/cephfs/secretRef/name",
            "/cinder/secretRef/name",
            "/flexVolume/secretRef/name",
            "/rbd/secretRef/name",
            "/scaleIO/secretRef/name",
            "/iscsi/secretRef/name",
            "/storageos/secretRef/name",
            "/csi/nodePublishSecretRef/name",
        ] {
            push(v.pointer(pointer));
        }
        for source in v
            .pointer("/projected/sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            push(source.pointer("/secret/name"));
        }
    }
    names
}

/// Mirror pods are left as they are, but may reference no account, secret
/// or token projection.
fn mirror_pod_references(pod: &Value) -> ApiResult<()> {
    let why = if meta::str_at(pod, "/spec/serviceAccountName").is_some_and(|n| !n.is_empty()) {
        "a mirror pod may not reference service accounts"
    } else if !secret_names(pod).is_empty() {
        "a mirror pod may not reference secrets"
    } else if pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.pointer("/projected/sources").and_then(Value::as_array))
        .flatten()
        .any(|s| s.get("serviceAccountToken").is_some())
    {
        "a mirror pod may not use ServiceAccountToken volume projections"
    } else {
        return Ok(());
    };
    Err(forbidden(pod, why.to_string()))
}

/// With `kubernetes.io/enforce-mountable-secrets`, the pod may only use the
/// secrets its account lists (and only its pull secrets to pull).
fn unreferenced_secret(pod: &Value, account: &Value, account_name: &str) -> Option<String> {
    let listed = |key: &str| -> Vec<&str> {
        account
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("name").and_then(Value::as_str))
            .collect()
    };
    let mountable = listed("secrets");
    let pullable = listed("imagePullSecrets");
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    let not_referenced = format!(
        "is not allowed because service account {account_name} does not reference that secret"
    );
    for v in spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(secret) = v.pointer("/secret/secretName").and_then(Value::as_str)
            && !mountable.contains(&secret)
        {
            return Some(format!(
                "volume with secret.secretName=\"{secret}\" {not_referenced}"
            ));
        }
    }
    for (list, what) in [
        ("initContainers", "init container"),
        ("containers", "container"),
    ] {
        for c in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
                if let Some(secret) = e
                    .pointer("/valueFrom/secretKeyRef/name")
                    .and_then(Value::as_str)
                    && !mountable.contains(&secret)
                {
                    let container = c.get("name").and_then(Value::as_str).unwrap_or("");
                    let var = e.get("name").and_then(Value::as_str).unwrap_or("");
                    return Some(format!(
                        "{what} {container} with envVar {var} referencing secret.secretName=\"{secret}\" {not_referenced}"
                    ));
                }
            }
        }
    }
    let pulls = spec.get("imagePullSecrets").and_then(Value::as_array);
    for (i, s) in pulls.into_iter().flatten().enumerate() {
        let name = s.get("name").and_then(Value::as_str).unwrap_or("");
        if !pullable.contains(&name) {
            return Some(format!(
                "imagePullSecrets[{i}].name=\"{name}\" is not allowed because service account {account_name} does not reference that imagePullSecret"
            ));
        }
    }
    None
}

const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";
/// How long a pod stays on a node that went not-ready or unreachable.
const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// DefaultTolerationSeconds admission: a pod that does not tolerate the
/// not-ready and unreachable `NoExecute` taints tolerates each for
/// [`DEFAULT_TOLERATION_SECONDS`] (an empty key or effect tolerates all).
pub fn default_toleration_seconds(pod: &mut Value) {
    let tolerates = |pod: &Value, taint: &str| {
        pod.pointer("/spec/tolerations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|t| {
                let key = t.get("key").and_then(Value::as_str).unwrap_or("");
                let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
                (key.is_empty() || key == taint) && (effect.is_empty() || effect == "NoExecute")
            })
    };
    let missing: Vec<&str> = [NOT_READY_TAINT, UNREACHABLE_TAINT]
        .into_iter()
        .filter(|taint| !tolerates(pod, taint))
        .collect();
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if missing.is_empty() {
        return;
    }
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    if !tolerations.is_array() {
        *tolerations = json!([]);
    }
    if let Some(list) = tolerations.as_array_mut() {
        for key in missing {
            list.push(
                json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS}),
            );
        }
    }
}

fn forbidden(pod: &Value, message: String) -> ApiError {
    let name = meta::name(pod);
    ApiError::new(
        403,
        "Forbidden",
        format!("pods {name:?} is forbidden: {message}"),
    )
    .with_details(json!({"name": name, "kind": "pods"}))
}

async fn runtime_class(store: &Store, pod: &mut Value) -> ApiResult<()> {
    let Some(class_name) = pod
        .pointer("/spec/runtimeClassName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
    else {
        return Ok(());
    };
    let Some(info) = store.table.get("node.k8s.io", "v1", "runtimeclasses") else {
        return Ok(());
    };
    let class = match store.get(&info, None, &class_name).await {
        Ok(class) => class,
        Err(e) if e.code == 404 => {
            return Err(forbidden(
                pod,
                format!("pod rejected: RuntimeClass {class_name:?} not found"),
            ));
        }
        Err(e) => return Err(e),
    };
    if let Some(fixed) = class.pointer("/overhead/podFixed") {
        match pod.pointer("/spec/overhead") {
            Some(existing) if existing != fixed => {
                return Err(forbidden(
                    pod,
                    "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"
                        .into(),
                ));
            }
            _ => pod["spec"]["overhead"] = fixed.clone(),
        }
    }
    if let Some(selector) = class
        .pointer("/scheduling/nodeSelector")
        .and_then(Value::as_object)
    {
        let spec = &mut pod["spec"];
        if !spec.get("nodeSelector").is_some_and(Value::is_object) {
            spec["nodeSelector"] = json!({});
        }
        if let Some(own) = spec["nodeSelector"].as_object_mut() {
            for (k, v) in selector {
                if own.get(k).is_some_and(|o| o != v) {
                    return Err(forbidden(
                        pod,
                        "pod rejected: conflict between pod node selector and RuntimeClass node selector".into(),
                    ));
                }
                own.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(tolerations) = class
        .pointer("/scheduling/tolerations")
        .and_then(Value::as_array)
    {
        let spec = &mut pod["spec"];
        if !spec.get("tolerations").is_some_and(Value::is_array) {
            spec["tolerations"] = json!([]);
        }
        if let Some(own) = spec["tolerations"].as_array_mut() {
            for t in tolerations {
                if !own.contains(t) {
                    own.push(t.clone());
                }
            }
        }
    }
    Ok(())
}

async fn limit_ranger(store: &Store, pod: &mut Value) -> ApiResult<()> {
    let Some(info) = store.table.get("", "v1", "limitranges") else {
        return Ok(());
    };
    let ns = meta::namespace(pod).to_string();
    let ranges = store
        .list(&info, Some(&ns), &ListRequest::default())
        .await?
        .items;
    let limits: Vec<&Map<String, Value>> = ranges
        .iter()
        .filter_map(|r| r.pointer("/spec/limits").and_then(Value::as_array))
        .flatten()
        .filter(|l| l.get("type").and_then(Value::as_str) == Some("Container"))
        .filter_map(Value::as_object)
        .collect();
    if limits.is_empty() {
        return Ok(());
    }
    let mut problems = Vec::new();
    for list in ["initContainers", "containers"] {
        let Some(containers) = pod
            .pointer_mut(&format!("/spec/{list}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for c in containers {
            for limit in &limits {
                apply_defaults(c, limit);
            }
            for limit in &limits {
                check_bounds(c, limit, &mut problems);
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(forbidden(pod, format!("[{}]", problems.join(", "))))
    }
}

/// Missing limits take the range's `default`, missing requests its
/// `defaultRequest` (a request the pod's own defaulting took from its limit
/// stays).
fn apply_defaults(container: &mut Value, limit: &Map<String, Value>) {
    for (section, from) in [("limits", "default"), ("requests", "defaultRequest")] {
        let Some(defaults) = limit.get(from).and_then(Value::as_object) else {
            continue;
        };
        if !container.get("resources").is_some_and(Value::is_object) {
            container["resources"] = json!({});
        }
        let resources = &mut container["resources"];
        if !resources.get(section).is_some_and(Value::is_object) {
            resources[section] = json!({});
        }
        if let Some(own) = resources[section].as_object_mut() {
            for (resource, value) in defaults {
                own.entry(resource.clone()).or_insert_with(|| value.clone());
            }
        }
    }
}

fn quantity_at<'a>(container: &'a Value, section: &str, resource: &str) -> Option<&'a str> {
    container
        .pointer(&format!("/resources/{section}/{resource}"))
        .and_then(Value::as_str)
}

/// Upstream's min, max and maxLimitRequestRatio checks for one container.
fn check_bounds(container: &Value, limit: &Map<String, Value>, problems: &mut Vec<String>) {
    let bounds = |key: &str| {
        limit
            .get(key)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(r, v)| Some((r.clone(), v.as_str()?.to_string())))
            .collect::<Vec<_>>()
    };
    for (resource, min) in bounds("min") {
        let request = quantity_at(container, "requests", &resource);
        let lim = quantity_at(container, "limits", &resource);
        match request {
            None => problems.push(format!(
                "minimum {resource} usage per Container is {min}.  No request is specified"
            )),
            Some(r) if quantity::compare(r, &min) == Some(Ordering::Less) => problems.push(
                format!("minimum {resource} usage per Container is {min}, but request is {r}"),
            ),
            _ => {}
        }
        if let Some(l) = lim
            && quantity::compare(l, &min) == Some(Ordering::Less)
        {
            problems.push(format!(
                "minimum {resource} usage per Container is {min}, but limit is {l}"
            ));
        }
    }
    for (resource, max) in bounds("max") {
        let request = quantity_at(container, "requests", &resource);
        match quantity_at(container, "limits", &resource) {
            None => problems.push(format!(
                "maximum {resource} usage per Container is {max}.  No limit is specified"
            )),
            Some(l) if quantity::compare(l, &max) == Some(Ordering::Greater) => problems.push(
                format!("maximum {resource} usage per Container is {max}, but limit is {l}"),
            ),
            _ => {}
        }
        if let Some(r) = request
            && quantity::compare(r, &max) == Some(Ordering::Greater)
        {
            problems.push(format!(
                "maximum {resource} usage per Container is {max}, but request is {r}"
            ));
        }
    }
    for (resource, ratio) in bounds("maxLimitRequestRatio") {
        let (Some(l), Some(r)) = (
            quantity_at(container, "limits", &resource),
            quantity_at(container, "requests", &resource),
        ) else {
            continue;
        };
        let (Some(actual), Some(allowed)) = (quantity::ratio(l, r), quantity::ratio(&ratio, "1"))
        else {
            continue;
        };
        if actual > allowed {
            problems.push(format!(
                "{resource} max limit to request ratio per Container is {ratio}, but provided ratio is {actual:.6}"
            ));
        }
    }
}
