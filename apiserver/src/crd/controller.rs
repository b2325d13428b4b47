//! The CRD controller inside the API server (upstream's naming, establishing
//! and finalizer controllers, in one loop): it watches CRDs in the store,
//! accepts their names, writes `NamesAccepted` / `Established`, adds and
//! removes the served versions in the resource table, and on delete removes
//! every custom resource before releasing the cleanup finalizer.
//!
//! ```text
//!  CRD written ──▶ watch event ──▶ sync(name)
//!                                   ├─ names accepted? ── status write (NamesAccepted, Established)
//!                                   ├─ established ─────▶ table.add(version…)  (served)
//!                                   └─ deleting + finalizer ─▶ cleanup task: delete CRs, drop finalizer
//!  CRD gone ─────▶ table.remove(version…) and other CRDs of the group re-synced (names freed)
//! ```

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::{Value, json};

use super::{CLEANUP_FINALIZER, resource, set_condition};
use crate::api_error::{ApiError, ApiResult};
use crate::registry::list::ListRequest;
use crate::registry::meta;
use crate::registry::watch::{WatchEvent, WatchRequest};
use crate::registry::{DeleteOptions, Store, UpdateTarget, WriteOptions};
use crate::resources::{ResourceInfo, ResourceTable};

const MANAGER: &str = "kube-apiserver";

/// A table entry: (group, version, plural).
type Served = (String, String, String);

/// Shared state of the controller.
struct Ctx {
    store: Store,
    table: ResourceTable,
    crd_info: Arc<ResourceInfo>,
    /// The latest copy of every CRD, by name.
    crds: Mutex<BTreeMap<String, Value>>,
    /// What each CRD has in the table: (group, version, plural).
    served: Mutex<BTreeMap<String, Vec<Served>>>,
    /// CRDs whose cleanup task runs.
    cleaning: Mutex<HashSet<String>>,
}

/// Loads the CRDs already stored (so their resources are served before the
/// server answers), then keeps watching in the background.
pub async fn start(store: Store, table: ResourceTable) -> ApiResult<()> {
    let Some(crd_info) = table.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    else {
        return Ok(());
    };
    let ctx = Arc::new(Ctx {
        store,
        table,
        crd_info,
        crds: Mutex::new(BTreeMap::new()),
        served: Mutex::new(BTreeMap::new()),
        cleaning: Mutex::new(HashSet::new()),
    });
    let mut events = open_watch(&ctx).await?;
    // Initial events end with a bookmark.
    while let Some(ev) = events.next().await {
        if matches!(ev, WatchEvent::Bookmark(_, true)) {
            break;
        }
        handle(&ctx, ev).await;
    }
    tokio::spawn(run(ctx, events));
    Ok(())
}

async fn open_watch(ctx: &Ctx) -> ApiResult<crate::registry::watch::WatchEvents> {
    let req = WatchRequest {
        list: ListRequest {
            resource_version_match: Some("NotOlderThan".into()),
            ..Default::default()
        },
        send_initial_events: Some(true),
        allow_bookmarks: true,
    };
    ctx.store.watch(&ctx.crd_info, None, req).await
}

/// Follows the watch; when it ends (compaction, storage restart) reopens it
/// with back-off, re-reading every CRD.
async fn run(ctx: Arc<Ctx>, mut events: crate::registry::watch::WatchEvents) {
    let mut backoff = Duration::from_millis(100);
    loop {
        while let Some(ev) = events.next().await {
            if let WatchEvent::Error(status) = &ev {
                tracing::warn!(%status, "CRD watch ended with an error; restarting");
                break;
            }
            handle(&ctx, ev).await;
            backoff = Duration::from_millis(100);
        }
        loop {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            match open_watch(&ctx).await {
                Ok(ev) => {
                    events = ev;
                    break;
                }
                Err(e) => tracing::warn!(error = %e, "reopening the CRD watch"),
            }
        }
    }
}

async fn handle(ctx: &Arc<Ctx>, ev: WatchEvent) {
    match ev {
        WatchEvent::Added(obj) | WatchEvent::Modified(obj) => {
            let name = meta::name(&obj).to_string();
            let group = group_of(&obj);
            ctx.crds.lock().insert(name.clone(), obj);
            if sync(ctx, &name).await {
                resync_group(ctx, &group, &name).await;
            }
        }
        WatchEvent::Deleted(obj) => {
            let name = meta::name(&obj).to_string();
            ctx.crds.lock().remove(&name);
            unserve(ctx, &name, &BTreeSet::new());
            resync_group(ctx, &group_of(&obj), &name).await;
        }
        WatchEvent::Bookmark(..) | WatchEvent::Error(_) => {}
    }
}

fn group_of(obj: &Value) -> String {
    meta::str_at(obj, "/spec/group").unwrap_or("").to_string()
}

async fn resync_group(ctx: &Arc<Ctx>, group: &str, except: &str) {
    let others: Vec<String> = ctx
        .crds
        .lock()
        .iter()
        .filter(|(n, o)| n.as_str() != except && group_of(o) == group)
        .map(|(n, _)| n.clone())
        .collect();
    for n in others {
        sync(ctx, &n).await;
    }
}

/// Brings one CRD's status and its table entries up to date. Returns whether
/// its accepted names changed (other CRDs of the group may then be affected).
async fn sync(ctx: &Arc<Ctx>, name: &str) -> bool {
    let Some(crd) = ctx.crds.lock().get(name).cloned() else {
        return false;
    };
    let (accepted, names_cond, established) = calculate_names(ctx, &crd);
    let mut desired = crd.clone();
    desired["status"]["acceptedNames"] = accepted;
    set_condition(
        &mut desired,
        "NamesAccepted",
        names_cond.0,
        names_cond.1,
        &names_cond.2,
    );
    set_condition(
        &mut desired,
        "Established",
        established.0,
        established.1,
        &established.2,
    );
    let changed_names =
        desired.pointer("/status/acceptedNames") != crd.pointer("/status/acceptedNames");
    if desired.get("status") != crd.get("status") {
        let status = desired["status"].clone();
        let written = write_status(ctx, name, |next| next["status"] = status.clone()).await;
        match written {
            Ok((obj, _)) => {
                ctx.crds.lock().insert(name.to_string(), obj);
            }
            Err(e) if e.code == 404 => return false,
            Err(e) => tracing::warn!(crd = name, error = %e, "writing CRD status"),
        }
    }
    let established = established.0 == "True";
    let mut keep = BTreeSet::new();
    if established {
        for v in desired
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|v| v.get("served").and_then(Value::as_bool) == Some(true))
        {
            if let Some(info) = resource::resource_info(&desired, v) {
                let key = (
                    info.group.clone(),
                    info.version.clone(),
                    info.plural.clone(),
                );
                ctx.table.add(info);
                keep.insert(key);
            }
        }
    }
    unserve(ctx, name, &keep);
    ctx.served
        .lock()
        .insert(name.to_string(), keep.into_iter().collect());
    if meta::is_deleting(&crd)
        && meta::finalizers(&crd)
            .iter()
            .any(|f| f == CLEANUP_FINALIZER)
    {
        start_cleanup(ctx, name);
    }
    changed_names
}

/// Removes the table entries of `name` that are not in `keep`.
fn unserve(ctx: &Ctx, name: &str, keep: &BTreeSet<Served>) {
    let before = ctx.served.lock().remove(name).unwrap_or_default();
    for (g, v, p) in before {
        if !keep.contains(&(g.clone(), v.clone(), p.clone())) {
            ctx.table.remove(&g, &v, &p);
        }
    }
}

type Cond = (&'static str, &'static str, String);

/// Upstream's `NamingConditionController`: each requested name is accepted if
/// it is already ours or no other CRD of the group has accepted it.
fn calculate_names(ctx: &Ctx, crd: &Value) -> (Value, Cond, Cond) {
    let name = meta::name(crd);
    let group = group_of(crd);
    let mut resources = HashSet::new();
    let mut kinds = HashSet::new();
    for (n, other) in ctx.crds.lock().iter() {
        if n == name || group_of(other) != group {
            continue;
        }
        let a = |k: &str| {
            meta::str_at(other, &format!("/status/acceptedNames/{k}"))
                .unwrap_or("")
                .to_string()
        };
        resources.insert(a("plural"));
        resources.insert(a("singular"));
        for s in other
            .pointer("/status/acceptedNames/shortNames")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            resources.insert(s.to_string());
        }
        kinds.insert(a("kind"));
        kinds.insert(a("listKind"));
    }
    let requested = crd
        .pointer("/spec/names")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let accepted = crd
        .pointer("/status/acceptedNames")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut out = accepted.clone();
    if !out.is_object() {
        out = json!({});
    }
    let mut cond: Option<(&'static str, String)> = None;
    let fresh = |field: &str, used: &HashSet<String>| -> Result<(), String> {
        let want = requested.get(field).and_then(Value::as_str).unwrap_or("");
        let have = accepted.get(field).and_then(Value::as_str).unwrap_or("");
        if want == have || !used.contains(want) {
            Ok(())
        } else {
            Err(format!("{want:?} is already in use"))
        }
    };
    for (field, reason, used) in [
        ("plural", "PluralConflict", &resources),
        ("singular", "SingularConflict", &resources),
    ] {
        match fresh(field, used) {
            Ok(()) => out[field] = requested.get(field).cloned().unwrap_or(json!("")),
            Err(e) => cond = Some((reason, e)),
        }
    }
    let wanted_short: Vec<String> = string_list(&requested, "shortNames");
    let have_short: Vec<String> = string_list(&accepted, "shortNames");
    if wanted_short != have_short {
        let errs: Vec<String> = wanted_short
            .iter()
            .filter(|s| !have_short.contains(s) && resources.contains(*s))
            .map(|s| format!("{s:?} is already in use"))
            .collect();
        if errs.is_empty() {
            match requested.get("shortNames") {
                Some(v) => out["shortNames"] = v.clone(),
                None => {
                    out.as_object_mut().map(|o| o.remove("shortNames"));
                }
            }
        } else {
            let msg = if errs.len() == 1 {
                errs[0].clone()
            } else {
                format!("[{}]", errs.join(", "))
            };
            cond = Some(("ShortNamesConflict", msg));
        }
    }
    for (field, reason) in [("kind", "KindConflict"), ("listKind", "ListKindConflict")] {
        match fresh(field, &kinds) {
            Ok(()) => out[field] = requested.get(field).cloned().unwrap_or(json!("")),
            Err(e) => cond = Some((reason, e)),
        }
    }
    if let Some(c) = requested.get("categories") {
        out["categories"] = c.clone();
    }
    let names_cond: Cond = match cond {
        Some((reason, msg)) => ("False", reason, msg),
        None => ("True", "NoConflicts", "no conflicts found".into()),
    };
    let was_established = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Established" && c["status"] == "True");
    let established: Cond = if was_established || names_cond.0 == "True" {
        (
            "True",
            "InitialNamesAccepted",
            "the initial names have been accepted".into(),
        )
    } else {
        ("False", "NotAccepted", "not all names are accepted".into())
    };
    (out, names_cond, established)
}

fn string_list(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn start_cleanup(ctx: &Arc<Ctx>, name: &str) {
    if !ctx.cleaning.lock().insert(name.to_string()) {
        return;
    }
    let ctx = ctx.clone();
    let name = name.to_string();
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(50);
        loop {
            match cleanup(&ctx, &name).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => tracing::warn!(crd = %name, error = %e, "deleting custom resources"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
        ctx.cleaning.lock().remove(&name);
    });
}

/// Upstream's `CRDFinalizer`: deletes every custom resource of the CRD (in
/// every version's key space, which is one), then drops the finalizer.
/// Returns `Ok(false)` while objects remain (held by their own finalizers).
async fn cleanup(ctx: &Arc<Ctx>, name: &str) -> ApiResult<bool> {
    if !ctx.crds.lock().contains_key(name) {
        return Ok(true);
    }
    let info = ctx
        .served
        .lock()
        .get(name)
        .and_then(|s| s.first().cloned())
        .and_then(|(g, v, p)| ctx.table.get(&g, &v, &p));
    if let Some(info) = info {
        let listed = ctx.store.list(&info, None, &ListRequest::default()).await?;
        if !listed.items.is_empty() {
            set_terminating(
                ctx,
                name,
                "InstanceDeletionInProgress",
                "CustomResource deletion is in progress",
            )
            .await;
        }
        let mut remaining = 0;
        for obj in &listed.items {
            let ns = Some(meta::namespace(obj)).filter(|n| !n.is_empty());
            match ctx
                .store
                .delete(&info, ns, meta::name(obj), &DeleteOptions::default())
                .await
            {
                Ok(crate::registry::DeleteOutcome::Pending(_)) => remaining += 1,
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        if remaining > 0 {
            return Ok(false);
        }
    }
    // Stop serving, then release the CRD.
    unserve(ctx, name, &BTreeSet::new());
    let result = ctx
        .store
        .update(
            &ctx.crd_info,
            None,
            name,
            UpdateTarget::Main,
            &WriteOptions {
                field_manager: Some(MANAGER.into()),
                ..Default::default()
            },
            |current| {
                let Some(current) = current else {
                    return Err(ApiError::not_found(&ctx.crd_info, name));
                };
                let mut next = current.clone();
                let kept: Vec<String> = meta::finalizers(current)
                    .into_iter()
                    .filter(|f| f != CLEANUP_FINALIZER)
                    .collect();
                meta::meta_mut(&mut next).insert("finalizers".into(), json!(kept));
                meta::meta_mut(&mut next).remove("resourceVersion");
                Ok(next)
            },
        )
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.code == 404 => Ok(true),
        Err(e) => Err(e),
    }
}

async fn set_terminating(ctx: &Ctx, name: &str, reason: &'static str, message: &'static str) {
    let _ = write_status(ctx, name, |next| {
        set_condition(next, "Terminating", "True", reason, message)
    })
    .await;
}

/// Writes the CRD's status as `change` makes it from the stored object,
/// retried by the store on conflicts.
async fn write_status(
    ctx: &Ctx,
    name: &str,
    change: impl Fn(&mut Value),
) -> ApiResult<(Value, bool)> {
    ctx.store
        .update(
            &ctx.crd_info,
            None,
            name,
            UpdateTarget::Status,
            &WriteOptions {
                field_manager: Some(MANAGER.into()),
                ..Default::default()
            },
            |current| {
                let Some(current) = current else {
                    return Err(ApiError::not_found(&ctx.crd_info, name));
                };
                let mut next = current.clone();
                change(&mut next);
                meta::meta_mut(&mut next).remove("resourceVersion");
                Ok(next)
            },
        )
        .await
}
