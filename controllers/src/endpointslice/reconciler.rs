//! Turning the endpoints a Service should have into writes to its
//! EndpointSlices, as upstream's reconciler (staging `k8s.io/endpointslice`)
//! does — a pure function from the slices that exist and the endpoints that
//! are wanted to a [`Plan`] of creates, updates and deletes:
//!
//! - endpoints are grouped by address type and port list; a slice holds one
//!   group's endpoints, at most `max` of them;
//! - an existing slice keeps the wanted endpoints it already holds (updated
//!   in place when they changed), drops the others, and is deleted when it is
//!   left empty and nothing new fills it;
//! - new endpoints fill slices that are being updated anyway, then slices
//!   with room, and only then new slices, which keeps writes few;
//! - a Service with no endpoints at all keeps one empty "placeholder" slice.
//!
//! Shared by the EndpointSlice controller and the mirroring controller.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::trigger;

/// Wanted endpoints that share an address type and a port list.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Group {
    pub(crate) address_type: String,
    pub(crate) ports: Vec<EndpointPort>,
    pub(crate) endpoints: Vec<Endpoint>,
}

/// What every slice of the Service carries besides its endpoints.
#[derive(Debug, Clone)]
pub(crate) struct SliceMeta {
    pub(crate) namespace: String,
    pub(crate) generate_name: String,
    pub(crate) labels: BTreeMap<String, String>,
    /// Annotations besides the trigger time.
    pub(crate) annotations: BTreeMap<String, String>,
    pub(crate) owner: OwnerReference,
    /// The trigger-time annotation for slices this sync writes.
    pub(crate) trigger_time: Option<String>,
}

/// The writes that bring the slices to what is wanted.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub(crate) create: Vec<EndpointSlice>,
    pub(crate) update: Vec<EndpointSlice>,
    pub(crate) delete: Vec<EndpointSlice>,
}

impl Plan {
    pub(crate) fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

type GroupKey = (String, String);

fn group_key(address_type: &str, ports: &[EndpointPort]) -> GroupKey {
    (
        address_type.to_string(),
        serde_json::to_string(ports).unwrap_or_default(),
    )
}

fn slice_key(slice: &EndpointSlice) -> GroupKey {
    group_key(
        &slice.address_type,
        slice.ports.as_deref().unwrap_or_default(),
    )
}

/// Endpoints are the same endpoint when their first address is.
fn endpoint_key(ep: &Endpoint) -> String {
    ep.addresses.first().cloned().unwrap_or_default()
}

fn annotations_without_trigger(meta: &ObjectMeta) -> BTreeMap<String, String> {
    let mut a = meta.annotations.clone().unwrap_or_default();
    a.remove(trigger::ANNOTATION);
    a
}

fn meta_current(slice: &EndpointSlice, meta: &SliceMeta) -> bool {
    slice.metadata.labels.clone().unwrap_or_default() == meta.labels
        && annotations_without_trigger(&slice.metadata) == meta.annotations
        && slice.metadata.owner_references.as_deref() == Some(std::slice::from_ref(&meta.owner))
}

/// `slice` with the Service's labels, annotations and owner, for writing.
fn stamped(mut slice: EndpointSlice, meta: &SliceMeta) -> EndpointSlice {
    slice.metadata.labels = Some(meta.labels.clone());
    let mut annotations = meta.annotations.clone();
    if let Some(t) = &meta.trigger_time {
        annotations.insert(trigger::ANNOTATION.to_string(), t.clone());
    }
    slice.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    slice.metadata.owner_references = Some(vec![meta.owner.clone()]);
    slice
}

fn new_slice(address_type: &str, ports: &[EndpointPort], meta: &SliceMeta) -> EndpointSlice {
    stamped(
        EndpointSlice {
            metadata: ObjectMeta {
                generate_name: Some(meta.generate_name.clone()),
                namespace: Some(meta.namespace.clone()),
                ..ObjectMeta::default()
            },
            address_type: address_type.to_string(),
            endpoints: Vec::new(),
            ports: Some(ports.to_vec()),
        },
        meta,
    )
}

/// A slice as this sync leaves it.
struct Working {
    slice: EndpointSlice,
    changed: bool,
}

/// The plan for a Service whose slices are `existing` and whose endpoints
/// should be `wanted`; `placeholder` is the address type of the empty slice
/// kept when nothing is wanted (`None`: keep no slice then).
pub(crate) fn plan(
    existing: Vec<EndpointSlice>,
    wanted: Vec<Group>,
    meta: &SliceMeta,
    max: usize,
    placeholder: Option<&str>,
) -> Plan {
    let max = max.max(1);
    // Merge groups with equal keys, keeping the first order of appearance.
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<GroupKey, usize> = HashMap::new();
    for g in wanted {
        let k = group_key(&g.address_type, &g.ports);
        match index.get(&k) {
            Some(&i) => groups[i].endpoints.extend(g.endpoints),
            None => {
                index.insert(k, groups.len());
                groups.push(g);
            }
        }
    }

    let mut by_key: HashMap<GroupKey, Vec<EndpointSlice>> = HashMap::new();
    let mut plan = Plan::default();
    for slice in existing {
        let k = slice_key(&slice);
        if index.contains_key(&k) {
            by_key.entry(k).or_default().push(slice);
        } else {
            plan.delete.push(slice);
        }
    }

    let mut kept: Vec<Working> = Vec::new();
    let mut created: Vec<EndpointSlice> = Vec::new();
    for group in groups {
        let k = group_key(&group.address_type, &group.ports);
        let mut order: Vec<String> = Vec::new();
        let mut remaining: HashMap<String, Endpoint> = HashMap::new();
        for ep in group.endpoints {
            let key = endpoint_key(&ep);
            if remaining.insert(key.clone(), ep).is_none() {
                order.push(key);
            }
        }
        let mut working: Vec<Working> = Vec::new();
        let mut emptied: Vec<EndpointSlice> = Vec::new();
        for mut slice in by_key.remove(&k).unwrap_or_default() {
            let mut changed = !meta_current(&slice, meta);
            let mut endpoints = Vec::new();
            for ep in std::mem::take(&mut slice.endpoints) {
                match remaining.remove(&endpoint_key(&ep)) {
                    Some(want) => {
                        changed |= want != ep;
                        endpoints.push(want);
                    }
                    None => changed = true,
                }
            }
            slice.endpoints = endpoints;
            if slice.endpoints.is_empty() {
                emptied.push(slice);
            } else {
                working.push(Working { slice, changed });
            }
        }
        let mut new: Vec<Endpoint> = order
            .into_iter()
            .filter_map(|key| remaining.remove(&key))
            .collect();
        // Fill slices being written anyway, then the fullest with room.
        working.sort_by_key(|w| (!w.changed, std::cmp::Reverse(w.slice.endpoints.len())));
        for w in &mut working {
            let room = max.saturating_sub(w.slice.endpoints.len()).min(new.len());
            if room > 0 {
                w.slice.endpoints.extend(new.drain(..room));
                w.changed = true;
            }
        }
        for mut slice in emptied {
            if new.is_empty() {
                plan.delete.push(slice);
                continue;
            }
            let take = new.len().min(max);
            slice.endpoints = new.drain(..take).collect();
            working.push(Working {
                slice,
                changed: true,
            });
        }
        while !new.is_empty() {
            let take = new.len().min(max);
            let mut slice = new_slice(&group.address_type, &group.ports, meta);
            slice.endpoints = new.drain(..take).collect();
            created.push(slice);
        }
        kept.extend(working);
    }

    if kept.is_empty()
        && created.is_empty()
        && let Some(address_type) = placeholder
    {
        let reusable = plan.delete.iter().position(|s| {
            s.endpoints.is_empty()
                && s.ports.as_deref().unwrap_or_default().is_empty()
                && s.address_type == address_type
        });
        match reusable {
            Some(i) => {
                let slice = plan.delete.remove(i);
                let changed = !meta_current(&slice, meta);
                kept.push(Working { slice, changed });
            }
            None => created.push(new_slice(address_type, &[], meta)),
        }
    }

    plan.update = kept
        .into_iter()
        .filter(|w| w.changed)
        .map(|w| stamped(w.slice, meta))
        .collect();
    plan.create = created;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> SliceMeta {
        SliceMeta {
            namespace: "ns".into(),
            generate_name: "svc-".into(),
            labels: BTreeMap::from([("kubernetes.io/service-name".into(), "svc".into())]),
            annotations: BTreeMap::new(),
            owner: OwnerReference {
                api_version: "v1".into(),
                kind: "Service".into(),
                name: "svc".into(),
                uid: "u".into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            },
            trigger_time: None,
        }
    }

    fn ep(ip: &str, ready: bool) -> Endpoint {
        Endpoint {
            addresses: vec![ip.to_string()],
            conditions: Some(k8s_openapi::api::discovery::v1::EndpointConditions {
                ready: Some(ready),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn port(n: i32) -> Vec<EndpointPort> {
        vec![EndpointPort {
            name: Some(String::new()),
            port: Some(n),
            protocol: Some("TCP".into()),
            app_protocol: None,
        }]
    }

    fn group(ips: &[&str]) -> Group {
        Group {
            address_type: "IPv4".into(),
            ports: port(80),
            endpoints: ips.iter().map(|ip| ep(ip, true)).collect(),
        }
    }

    fn existing(name: &str, ips: &[&str]) -> EndpointSlice {
        let mut s = stamped(new_slice("IPv4", &port(80), &meta()), &meta());
        s.metadata.name = Some(name.into());
        s.endpoints = ips.iter().map(|ip| ep(ip, true)).collect();
        s
    }

    #[test]
    fn creates_in_chunks_of_max() {
        let ips: Vec<String> = (0..250)
            .map(|i| format!("10.0.{}.{}", i / 200, i % 200))
            .collect();
        let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
        let p = plan(Vec::new(), vec![group(&ips)], &meta(), 100, Some("IPv4"));
        let sizes: Vec<usize> = p.create.iter().map(|s| s.endpoints.len()).collect();
        assert_eq!(sizes, [100, 100, 50]);
        assert!(p.update.is_empty() && p.delete.is_empty());
    }

    #[test]
    fn unchanged_slices_are_left_alone() {
        let p = plan(
            vec![existing("a", &["10.0.0.1", "10.0.0.2"])],
            vec![group(&["10.0.0.2", "10.0.0.1"])],
            &meta(),
            100,
            Some("IPv4"),
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn updates_in_place_and_deletes_emptied() {
        let mut wanted = group(&["10.0.0.1", "10.0.0.9"]);
        wanted.endpoints[0] = ep("10.0.0.1", false);
        let p = plan(
            vec![
                existing("a", &["10.0.0.1", "10.0.0.2"]),
                existing("b", &["10.0.0.3"]),
            ],
            vec![wanted],
            &meta(),
            100,
            Some("IPv4"),
        );
        assert!(p.create.is_empty());
        assert_eq!(p.update.len(), 1);
        let a = &p.update[0];
        assert_eq!(a.metadata.name.as_deref(), Some("a"));
        assert_eq!(
            a.endpoints,
            vec![ep("10.0.0.1", false), ep("10.0.0.9", true)]
        );
        let deleted: Vec<_> = p.delete.iter().map(|s| s.metadata.name.clone()).collect();
        assert_eq!(deleted, [Some("b".to_string())]);
    }

    #[test]
    fn placeholder_when_nothing_is_wanted() {
        let p = plan(Vec::new(), Vec::new(), &meta(), 100, Some("IPv4"));
        assert_eq!(p.create.len(), 1);
        assert!(p.create[0].endpoints.is_empty());
        assert_eq!(p.create[0].ports.as_deref(), Some(&[][..]));
        let mut placeholder = p.create[0].clone();
        placeholder.metadata.name = Some("p".into());
        let again = plan(
            vec![placeholder.clone()],
            Vec::new(),
            &meta(),
            100,
            Some("IPv4"),
        );
        assert!(again.is_empty(), "{again:?}");
        let filled = plan(
            vec![placeholder],
            vec![group(&["10.0.0.1"])],
            &meta(),
            100,
            Some("IPv4"),
        );
        assert_eq!((filled.create.len(), filled.delete.len()), (1, 1));
        let none = plan(
            vec![existing("a", &["10.0.0.1"])],
            Vec::new(),
            &meta(),
            100,
            None,
        );
        assert_eq!((none.create.len(), none.delete.len()), (0, 1));
    }
}
