//! Watches: upstream's event semantics on top of the storage event stream.
//!
//! * no `resourceVersion`, or `"0"`: synthetic `ADDED` events for the current state, then changes;
//! * `sendInitialEvents=true`: the same, ended by a `BOOKMARK` annotated
//!   `k8s.io/initial-events-end: "true"`;
//! * `resourceVersion=N`: every change after N (410 `Expired` in an `ERROR` event if compacted);
//! * selectors: an object that stops matching yields `DELETED`, one that starts, `ADDED`.

use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Value, json};

use super::list::{ListRequest, parse_rv};
use super::meta::decode_at;
use super::store::Store;
use crate::api_error::{ApiError, ApiResult};
use crate::resources::ResourceInfo;
use crate::storage::{EventKind, ListOptions, Revision, StorageError};

#[derive(Clone, Debug)]
pub enum WatchEvent {
    Added(Value),
    Modified(Value),
    Deleted(Value),
    /// A progress marker; `true` marks the end of initial events.
    Bookmark(Revision, bool),
    Error(Value),
}

impl WatchEvent {
    pub fn type_name(&self) -> &'static str {
        match self {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            WatchEvent::Bookmark(..) => "BOOKMARK",
            WatchEvent::Error(_) => "ERROR",
        }
    }

    pub fn revision(&self) -> Option<Revision> {
        match self {
            WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => o
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok()),
            WatchEvent::Bookmark(rv, _) => Some(*rv),
            WatchEvent::Error(_) => None,
        }
    }
}

/// Options of a watch beyond those of a list.
#[derive(Default)]
pub struct WatchRequest {
    pub list: ListRequest,
    pub send_initial_events: Option<bool>,
    pub allow_bookmarks: bool,
}

pub type WatchEvents = BoxStream<'static, WatchEvent>;

impl Store {
    pub async fn watch(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        req: WatchRequest,
    ) -> ApiResult<WatchEvents> {
        req.list.check_fields(info)?;
        let rv = req.list.resource_version.as_deref().unwrap_or("");
        let initial = match req.send_initial_events {
            Some(true) => {
                if req.list.resource_version_match.as_deref() != Some("NotOlderThan") {
                    return Err(ApiError::invalid_watch(
                        "sendInitialEvents",
                        "resourceVersionMatch",
                        "NotOlderThan",
                    ));
                }
                if !req.allow_bookmarks {
                    return Err(ApiError::invalid_watch(
                        "sendInitialEvents",
                        "allowWatchBookmarks",
                        "true",
                    ));
                }
                true
            }
            Some(false) => false,
            None => rv.is_empty() || rv == "0",
        };
        let prefix = info.list_prefix(ns);
        let mut events: Vec<WatchEvent> = Vec::new();
        let start = if initial {
            // `resourceVersion=0`, or a version with NotOlderThan: any
            // state at least that new will do, so the watch cache may answer;
            // none: the newest.
            let min_revision = match rv {
                "" => None,
                rv => Some(parse_rv(rv)?),
            };
            let page = self
                .storage
                .list(
                    &prefix,
                    ListOptions {
                        min_revision,
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| ApiError::from_storage(e, info, ""))?;
            for kv in &page.items {
                let obj = super::meta::decode_stored(info, kv)?;
                if req.list.matches(info, &obj) {
                    events.push(WatchEvent::Added(obj));
                }
            }
            if req.send_initial_events == Some(true) {
                events.push(WatchEvent::Bookmark(page.revision, true));
            }
            page.revision
        } else {
            parse_rv(rv)?
        };
        let info = std::sync::Arc::new(info.clone());
        let stream = match self.storage.watch(&prefix, start) {
            Ok(s) => s,
            Err(StorageError::Compacted {
                requested,
                compacted,
            }) => {
                let err = ApiError::gone(format!(
                    "too old resource version: {requested} ({compacted})"
                ));
                return Ok(futures::stream::iter([WatchEvent::Error(err.status())]).boxed());
            }
            Err(e) => return Err(ApiError::from_storage(e, &info, "")),
        };
        let live = stream.filter_map(move |item| {
            let info = info.clone();
            let list = &req.list;
            let out = match item {
                Err(StorageError::Compacted {
                    requested,
                    compacted,
                }) => Some(WatchEvent::Error(
                    ApiError::gone(format!(
                        "too old resource version: {requested} ({compacted})"
                    ))
                    .status(),
                )),
                Err(e) => Some(WatchEvent::Error(
                    ApiError::from_storage(e, &info, "").status(),
                )),
                Ok(ev) => translate(&info, list, ev),
            };
            futures::future::ready(out)
        });
        // `req` must live as long as the stream: move it into a boxed stream via unfold.
        Ok(futures::stream::iter(events).chain(live).boxed())
    }
}

/// Turns one storage event into the watch event this watcher should see.
fn translate(
    info: &ResourceInfo,
    list: &ListRequest,
    ev: crate::storage::Event,
) -> Option<WatchEvent> {
    let rev = ev.kv.mod_revision;
    let decode = |v: &bytes::Bytes| {
        decode_at(v, rev, &ev.kv.key)
            .ok()
            .map(|o| info.from_storage(o))
    };
    let matching = |v: &bytes::Bytes| decode(v).filter(|o| list.matches(info, o));
    let current = match ev.kind {
        EventKind::Put => matching(&ev.kv.value),
        EventKind::Delete => None,
    };
    match current {
        Some(cur) => {
            // Without a selector every previous value matched: it only tells
            // MODIFIED from ADDED and is not decoded (a watch cache hands
            // each event to many watchers).
            let unfiltered = list.label_selector.is_none() && list.field_selector.is_none();
            let prev_matched = ev
                .prev_value
                .as_ref()
                .is_some_and(|v| unfiltered || matching(v).is_some());
            Some(if prev_matched {
                WatchEvent::Modified(cur)
            } else {
                WatchEvent::Added(cur)
            })
        }
        // Deleted, or no longer matching: DELETED with the last matching
        // state, decoded at this event's revision (as upstream reports it).
        None => ev
            .prev_value
            .as_ref()
            .and_then(matching)
            .map(WatchEvent::Deleted),
    }
}

impl ApiError {
    fn invalid_watch(field: &str, other: &str, value: &str) -> ApiError {
        ApiError::new(
            422,
            "Invalid",
            format!("ListOptions.meta.k8s.io \"\" is invalid: {field}: Forbidden: {field} is forbidden for watch unless {other} is set to {value}"),
        )
        .with_details(json!({"group": "meta.k8s.io", "kind": "ListOptions"}))
    }
}
