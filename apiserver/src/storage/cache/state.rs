//! What one resource's watch cache holds: the current objects at one
//! revision, and a window of the most recent events.
//!
//! Pure data, no locking or I/O: [`super::resource`] owns it behind a mutex.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;

use crate::storage::{Event, EventKind, KeyValue, ListOptions, ListResult, Revision};

/// The objects under one resource prefix at `revision`, and the events that
/// led there.
#[derive(Debug)]
pub(super) struct State {
    /// Every event of this prefix at or below it has been applied, none above.
    pub(super) revision: Revision,
    objects: BTreeMap<String, KeyValue>,
    /// Events in revision order; every event with a revision above
    /// `window_start` is here.
    window: VecDeque<Event>,
    window_start: Revision,
    capacity: usize,
}

impl State {
    /// The state of a fresh list at `revision`.
    pub(super) fn listed(items: Vec<KeyValue>, revision: Revision, capacity: usize) -> Self {
        Self {
            revision,
            objects: items.into_iter().map(|kv| (kv.key.clone(), kv)).collect(),
            window: VecDeque::new(),
            window_start: revision,
            capacity: capacity.max(1),
        }
    }

    /// Applies the next event. Returns false (and changes nothing) for an
    /// event at or below the applied revision.
    pub(super) fn apply(&mut self, ev: &Event) -> bool {
        let rev = ev.kv.mod_revision;
        if rev <= self.revision {
            return false;
        }
        match ev.kind {
            EventKind::Put => {
                self.objects.insert(ev.kv.key.clone(), ev.kv.clone());
            }
            EventKind::Delete => {
                self.objects.remove(&ev.kv.key);
            }
        }
        self.revision = rev;
        if self.window.len() == self.capacity
            && let Some(old) = self.window.pop_front()
        {
            self.window_start = old.kv.mod_revision;
        }
        self.window.push_back(ev.clone());
        true
    }

    /// The window's events under `prefix` after `after`, or `None` when the
    /// window no longer reaches back that far.
    pub(super) fn events_after(&self, prefix: &str, after: Revision) -> Option<Vec<Event>> {
        if after < self.window_start {
            return None;
        }
        let first = self.window.partition_point(|e| e.kv.mod_revision <= after);
        Some(
            self.window
                .range(first..)
                .filter(|e| e.kv.key.starts_with(prefix))
                .cloned()
                .collect(),
        )
    }

    /// A list of the current objects under `prefix`, honouring
    /// `start_after` and `limit` as the backends do.
    pub(super) fn list(&self, prefix: &str, opts: &ListOptions) -> ListResult {
        let lower = match opts.start_after.as_deref() {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let mut under = self
            .objects
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, kv)| kv);
        let limit = opts.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let items: Vec<KeyValue> = under.by_ref().take(limit).cloned().collect();
        ListResult {
            items,
            revision: self.revision,
            remaining: under.count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn kv(key: &str, rev: Revision) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Bytes::from(rev.to_string()),
            create_revision: rev,
            mod_revision: rev,
        }
    }

    fn put(key: &str, rev: Revision) -> Event {
        Event {
            kind: EventKind::Put,
            kv: kv(key, rev),
            prev_value: None,
        }
    }

    #[test]
    fn window_slides_and_forgets_what_it_evicted() {
        let mut s = State::listed(vec![kv("/r/a", 3)], 5, 2);
        assert!(s.apply(&put("/r/b", 6)));
        assert!(!s.apply(&put("/r/b", 6)), "a repeated revision is ignored");
        assert!(s.apply(&put("/r/c", 7)));
        assert!(s.apply(&put("/r/d", 8)));
        assert!(s.events_after("/r/", 5).is_none(), "6 was evicted");
        let later: Vec<_> = s
            .events_after("/r/", 6)
            .expect("in the window")
            .iter()
            .map(|e| e.kv.mod_revision)
            .collect();
        assert_eq!(later, [7, 8]);
        assert!(s.events_after("/r/", 8).is_some_and(|e| e.is_empty()));
    }

    #[test]
    fn lists_pages_and_counts_what_remains() {
        let mut s = State::listed(vec![], 1, 10);
        for (i, key) in ["/r/ns1/a", "/r/ns1/b", "/r/ns2/c", "/rx/d"]
            .iter()
            .enumerate()
        {
            s.apply(&put(key, 2 + i as Revision));
        }
        s.apply(&Event {
            kind: EventKind::Delete,
            kv: kv("/r/ns1/b", 9),
            prev_value: None,
        });
        let all = s.list("/r/", &ListOptions::default());
        let keys: Vec<_> = all.items.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["/r/ns1/a", "/r/ns2/c"]);
        assert_eq!((all.revision, all.remaining), (9, 0));
        let page = s.list(
            "/r/",
            &ListOptions {
                limit: Some(1),
                ..Default::default()
            },
        );
        assert_eq!((page.items.len(), page.remaining), (1, 1));
        let rest = s.list(
            "/r/",
            &ListOptions {
                start_after: Some("/r/ns1/a".into()),
                ..Default::default()
            },
        );
        assert_eq!(rest.items[0].key, "/r/ns2/c");
        let ns = s.list("/r/ns2/", &ListOptions::default());
        assert_eq!(ns.items.len(), 1);
    }
}
