//! The resource quota controller: keeps every ResourceQuota's `status.hard`
//! equal to `spec.hard` and `status.used` equal to what the objects in its
//! namespace use (counts, compute, storage), within its scopes. It reacts to
//! changes of the quota and of the objects it charges, and resyncs every
//! five minutes (upstream's default) to catch anything else.

mod quantity;
mod scopes;
mod usage;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota,
    ResourceQuotaStatus, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use quantity::Qty;
use usage::{Evaluator, Usage};

/// Upstream's `--resource-quota-sync-period`.
const FULL_RESYNC: Duration = Duration::from_secs(300);
/// How often quotas counting kinds this controller does not watch are recounted.
const UNWATCHED_POLL: Duration = Duration::from_secs(10);
/// Bursts of object changes in a namespace collapse into one recount.
const DEBOUNCE: Duration = Duration::from_millis(300);
const FIELD_MANAGER: &str = "resourcequota-controller";
const CONFLICT_RETRY: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kube API: {0}")]
    Kube(#[from] kube::Error),
    #[error("quota has no namespace or name")]
    Unnamed,
}

struct Ctx {
    client: kube::Client,
    /// Quotas (`ns/name`) whose namespace saw an object change since their
    /// last count.
    dirty: Arc<Mutex<HashSet<String>>>,
    /// Per quota uid: the spec last counted for and when the next periodic
    /// recount is due.
    counted: Mutex<HashMap<String, Counted>>,
    /// Discovered resources for `count/<resource>.<group>`, by (group, resource).
    discovered: Mutex<HashMap<(String, String), ApiResource>>,
}

struct Counted {
    spec: u64,
    due: Instant,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Object kinds whose changes trigger a recount (beyond the quotas themselves).
const WATCHED_COUNTS: &[(&str, &str)] = &[
    ("", "configmaps"),
    ("", "secrets"),
    ("", "replicationcontrollers"),
    ("", "resourcequotas"),
    ("apps", "replicasets"),
];

pub async fn run(client: kube::Client) {
    let quotas: Api<ResourceQuota> = Api::all(client.clone());
    let controller = Controller::new(quotas, watcher::Config::default())
        .with_config(kube::runtime::controller::Config::default().debounce(DEBOUNCE));
    let store = controller.store();
    let dirty = Arc::new(Mutex::new(HashSet::new()));
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        dirty: dirty.clone(),
        counted: Mutex::new(HashMap::new()),
        discovered: Mutex::new(HashMap::new()),
    });
    controller
        .watches(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default(),
            in_namespace(&store, &dirty),
        )
        .watches(
            Api::<Service>::all(client.clone()),
            watcher::Config::default(),
            in_namespace(&store, &dirty),
        )
        .watches(
            Api::<PersistentVolumeClaim>::all(client.clone()),
            watcher::Config::default(),
            in_namespace(&store, &dirty),
        )
        .watches(
            Api::<ConfigMap>::all(client.clone()),
            watcher::Config::default(),
            in_namespace(&store, &dirty),
        )
        .watches(
            Api::<Secret>::all(client.clone()),
            watcher::Config::default(),
            in_namespace(&store, &dirty),
        )
        .watches(
            Api::<ReplicationController>::all(client.clone()),
            watcher::Config::default(),
            in_namespace(&store, &dirty),
        )
        .watches(
            Api::<ReplicaSet>::all(client.clone()),
            watcher::Config::default(),
            in_namespace(&store, &dirty),
        )
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "resource quota reconcile");
            }
        })
        .await;
}

/// Identifies a quota's spec for change detection.
fn spec_hash(quota: &ResourceQuota) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(&quota.spec)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

/// Maps a changed object to every quota in its namespace.
fn in_namespace<K>(
    store: &Store<ResourceQuota>,
    dirty: &Arc<Mutex<HashSet<String>>>,
) -> impl Fn(K) -> Vec<ObjectRef<ResourceQuota>> + Send + Sync + 'static
where
    K: Resource,
{
    let store = store.clone();
    let dirty = dirty.clone();
    move |obj: K| {
        let Some(ns) = obj.meta().namespace.clone() else {
            return Vec::new();
        };
        let refs: Vec<ObjectRef<ResourceQuota>> = store
            .state()
            .iter()
            .filter(|q| q.metadata.namespace.as_deref() == Some(ns.as_str()))
            .map(|q| ObjectRef::from_obj(q.as_ref()))
            .collect();
        let mut dirty = lock(&dirty);
        for r in &refs {
            dirty.insert(format!("{ns}/{}", r.name));
        }
        refs
    }
}

fn error_policy(_q: Arc<ResourceQuota>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(error = %err, "resource quota sync failed; retrying");
    Action::requeue(Duration::from_secs(2))
}

async fn reconcile(quota: Arc<ResourceQuota>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let (Some(ns), Some(name)) = (
        quota.metadata.namespace.as_deref(),
        quota.metadata.name.as_deref(),
    ) else {
        return Err(Error::Unnamed);
    };
    if quota.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    // As upstream, a change to the quota's status alone (ours, the quota
    // admission's, anyone's) is no reason to recount: only a new spec, an
    // object change in the namespace, or the periodic resync is. Stray
    // status edits are undone by the next recount.
    let uid = quota.metadata.uid.clone().unwrap_or_default();
    let spec = spec_hash(&quota);
    let object_changed = lock(&ctx.dirty).remove(&format!("{ns}/{name}"));
    if !object_changed
        && let Some(c) = lock(&ctx.counted).get(&uid)
        && c.spec == spec
        && Instant::now() < c.due
    {
        return Ok(Action::requeue(c.due - Instant::now()));
    }
    // Forgotten until this count succeeds, so a failed one is redone in full.
    lock(&ctx.counted).remove(&uid);
    let hard: BTreeMap<String, Quantity> = quota
        .spec
        .as_ref()
        .and_then(|s| s.hard.clone())
        .unwrap_or_default();
    let now = Timestamp::now();
    let measured = measure(&ctx, ns, &quota, &hard, now).await?;

    // Names nothing measures keep what was last observed, as upstream.
    let old_used = quota
        .status
        .as_ref()
        .and_then(|s| s.used.clone())
        .unwrap_or_default();
    let mut used: BTreeMap<String, Quantity> = old_used
        .iter()
        .filter(|(k, _)| hard.contains_key(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in &measured.usage {
        used.insert(k.clone(), Quantity(v.to_string()));
    }
    let old_hard = quota.status.as_ref().and_then(|s| s.hard.clone());
    let changed = quota.status.is_none()
        || old_hard.as_ref().is_none_or(|h| !same_values(h, &hard))
        || quota
            .status
            .as_ref()
            .and_then(|s| s.used.as_ref())
            .is_none()
        || !same_values(&old_used, &used);
    if changed {
        let mut updated = (*quota).clone();
        updated.status = Some(ResourceQuotaStatus {
            hard: Some(hard),
            used: Some(used),
        });
        let api: Api<ResourceQuota> = Api::namespaced(ctx.client.clone(), ns);
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        match api.replace_status(name, &params, &updated).await {
            Ok(_) => tracing::debug!(namespace = %ns, quota = %name, "quota status updated"),
            // Written meanwhile (e.g. admission charged it): count again
            // against the newer quota shortly.
            Err(kube::Error::Api(e)) if e.code == 409 => {
                return Ok(Action::requeue(CONFLICT_RETRY));
            }
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(Action::await_change()),
            Err(e) => return Err(e.into()),
        }
    }
    let mut next = FULL_RESYNC;
    if measured.polls {
        next = next.min(UNWATCHED_POLL);
    }
    if let Some(at) = measured.recheck_at {
        let wait = Duration::try_from(at.duration_since(now)).unwrap_or_default();
        next = next.min(wait + Duration::from_secs(1));
    }
    lock(&ctx.counted).insert(
        uid,
        Counted {
            spec,
            due: Instant::now() + next,
        },
    );
    Ok(Action::requeue(next))
}

/// Values equal key by key (so `1000m` equals `1`).
fn same_values(a: &BTreeMap<String, Quantity>, b: &BTreeMap<String, Quantity>) -> bool {
    a.len() == b.len()
        && a.iter().all(|(k, v)| {
            b.get(k)
                .is_some_and(|w| match (Qty::parse(&v.0), Qty::parse(&w.0)) {
                    (Ok(x), Ok(y)) => x == y,
                    _ => v.0 == w.0,
                })
        })
}

struct Measured {
    usage: Usage,
    /// A terminating pod stops charging at this time.
    recheck_at: Option<Timestamp>,
    /// Some counted kind has no watch here; recount periodically.
    polls: bool,
}

/// Measures every name in `hard` that some evaluator tracks.
async fn measure(
    ctx: &Ctx,
    ns: &str,
    quota: &ResourceQuota,
    hard: &BTreeMap<String, Quantity>,
    now: Timestamp,
) -> Result<Measured, Error> {
    let reqs = scopes::requirements(quota);
    let mut evaluators: Vec<(Evaluator, Vec<String>)> = Vec::new();
    for name in hard.keys() {
        let Some(ev) = usage::evaluator_for(name) else {
            continue;
        };
        match evaluators.iter_mut().find(|(e, _)| *e == ev) {
            Some((_, names)) => names.push(name.clone()),
            None => evaluators.push((ev, vec![name.clone()])),
        }
    }
    let mut result = Measured {
        usage: Usage::new(),
        recheck_at: None,
        polls: false,
    };
    let client = &ctx.client;
    for (ev, names) in evaluators {
        let mut total: Usage = names.iter().map(|n| (n.clone(), Qty::ZERO)).collect();
        match &ev {
            Evaluator::Pods => {
                let pods = Api::<Pod>::namespaced(client.clone(), ns)
                    .list(&ListParams::default())
                    .await?;
                for pod in pods
                    .items
                    .iter()
                    .filter(|p| scopes::pod_matches_all(p, &reqs))
                {
                    usage::add_tracked(&mut total, &usage::pod_usage(pod, now));
                    if let (true, Some(at)) = usage::pod_charges(pod, now) {
                        result.recheck_at = Some(result.recheck_at.map_or(at, |r| r.min(at)));
                    }
                }
            }
            // Services and plain counts know no scopes: a scoped quota
            // matches none of them.
            Evaluator::Services if reqs.is_empty() => {
                let services = Api::<Service>::namespaced(client.clone(), ns)
                    .list(&ListParams::default())
                    .await?;
                for svc in &services.items {
                    usage::add_tracked(&mut total, &usage::service_usage(svc));
                }
            }
            Evaluator::Claims => {
                let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
                    .list(&ListParams::default())
                    .await?;
                for pvc in claims
                    .items
                    .iter()
                    .filter(|c| scopes::pvc_matches_all(c, &reqs))
                {
                    usage::add_tracked(&mut total, &usage::claim_usage(pvc));
                }
            }
            Evaluator::Count { group, resource } if reqs.is_empty() => {
                if !WATCHED_COUNTS.contains(&(group.as_str(), resource.as_str())) {
                    result.polls = true;
                }
                match count(ctx, ns, group, resource).await? {
                    Some(n) => {
                        for v in total.values_mut() {
                            *v = Qty::count(n);
                        }
                    }
                    // A kind the server does not serve: leave it unmeasured.
                    None => continue,
                }
            }
            Evaluator::Services | Evaluator::Count { .. } => {}
        }
        result.usage.extend(total);
    }
    Ok(result)
}

/// How many objects of the kind exist in `ns`; `None` if the kind is unknown.
async fn count(ctx: &Ctx, ns: &str, group: &str, resource: &str) -> Result<Option<i64>, Error> {
    let Some(ar) = resolve(ctx, group, resource).await? else {
        return Ok(None);
    };
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &ar);
    let list = api.list(&ListParams::default()).await?;
    Ok(Some(i64::try_from(list.items.len()).unwrap_or(i64::MAX)))
}

/// Finds the served (preferred) version of a group/resource via discovery,
/// caching hits; misses are retried on the next sync (a CRD may appear).
async fn resolve(ctx: &Ctx, group: &str, resource: &str) -> Result<Option<ApiResource>, Error> {
    let key = (group.to_string(), resource.to_string());
    if let Some(ar) = ctx
        .discovered
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
    {
        return Ok(Some(ar.clone()));
    }
    let api_group = match kube::discovery::group(&ctx.client, group).await {
        Ok(g) => g,
        Err(kube::Error::Discovery(_)) => return Ok(None),
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let found = api_group
        .recommended_resources()
        .into_iter()
        .map(|(ar, _)| ar)
        .find(|ar| ar.plural == resource);
    if let Some(ar) = &found {
        ctx.discovered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, ar.clone());
    }
    Ok(found)
}
