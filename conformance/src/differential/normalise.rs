//! Replaces what legitimately differs between two servers by placeholders:
//! uids, timestamps, resourceVersions, generateName suffixes, continue tokens,
//! Table ages.
//!
//! Object resourceVersions are named after the step (and the position within
//! it) where each server first showed them (`<rv@crud/pods/create#0>`), so
//! "this update returned a new version" and "the watch started after that
//! write" still compare, and one missing version does not shift the names of
//! all later ones; a list's resourceVersion is
//! the store's current revision, which other writers (the reference's own
//! controllers) move, so it becomes `<list-rv>`.

use std::collections::HashMap;

use serde_json::Value;

/// Per-server state: the name of every object resourceVersion seen.
#[derive(Default)]
pub struct Normaliser {
    names: HashMap<String, String>,
    step: String,
    in_step: usize,
}

impl Normaliser {
    /// Names new resourceVersions after this step from now on.
    pub fn set_step(&mut self, step: &str) {
        self.step = step.to_string();
        self.in_step = 0;
    }

    pub fn normalise(&mut self, body: &mut Value) {
        self.walk(body, false);
    }

    fn name(&mut self, rv: &str) -> String {
        if let Some(n) = self.names.get(rv) {
            return n.clone();
        }
        let n = format!("<rv@{}#{}>", self.step, self.in_step);
        self.in_step += 1;
        self.names.insert(rv.to_string(), n.clone());
        n
    }

    fn walk(&mut self, v: &mut Value, in_list: bool) {
        match v {
            Value::Object(map) => {
                let is_list = map.contains_key("items")
                    || map
                        .get("kind")
                        .and_then(Value::as_str)
                        .is_some_and(|k| k.ends_with("List") || k == "Table");
                if map.contains_key("columnDefinitions") {
                    blank_table_ages(map);
                }
                let generate_name = map
                    .get("generateName")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                for (key, child) in map.iter_mut() {
                    match (key.as_str(), &mut *child) {
                        ("resourceVersion", Value::String(rv)) if !rv.is_empty() => {
                            *rv = if in_list {
                                "<list-rv>".into()
                            } else {
                                self.name(rv)
                            };
                        }
                        ("continue", Value::String(token)) if !token.is_empty() => {
                            *token = "<continue>".into();
                        }
                        ("name", Value::String(name)) => {
                            if let Some(prefix) = &generate_name
                                && name.starts_with(prefix.as_str())
                            {
                                *name = format!("{prefix}<suffix>");
                            }
                        }
                        ("metadata", child) => self.walk(child, is_list),
                        (_, child) => self.walk(child, false),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.walk(i, false)),
            Value::String(s) => {
                if is_timestamp(s) {
                    *s = "<time>".into();
                } else if is_uid(s) {
                    *s = "<uid>".into();
                } else if let Some(i) = s.find("?hash=") {
                    // OpenAPI v3 index: a content hash per document.
                    s.replace_range(i.., "?hash=<hash>");
                }
            }
            _ => {}
        }
    }
}

/// The `Age` cell of every row of a Table.
fn blank_table_ages(table: &mut serde_json::Map<String, Value>) {
    let Some(age) = table
        .get("columnDefinitions")
        .and_then(Value::as_array)
        .and_then(|cols| {
            cols.iter()
                .position(|c| c.get("name").and_then(Value::as_str) == Some("Age"))
        })
    else {
        return;
    };
    if let Some(Value::Array(rows)) = table.get_mut("rows") {
        for row in rows {
            if let Some(cell) = row.get_mut("cells").and_then(|c| c.get_mut(age)) {
                *cell = Value::String("<age>".into());
            }
        }
    }
}

/// RFC 3339 as the API writes it: `2006-01-02T15:04:05Z`, maybe with
/// fractional seconds (MicroTime).
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b.last() == Some(&b'Z')
        && [0..4, 5..7, 8..10, 11..13, 14..16, 17..19]
            .into_iter()
            .all(|r| b[r].iter().all(u8::is_ascii_digit))
}

/// A UUID in its canonical textual form.
fn is_uid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn object_versions_become_ordinals_and_list_versions_a_placeholder() {
        let mut n = Normaliser::default();
        n.set_step("s");
        let mut a = json!({"metadata": {"resourceVersion": "900", "uid": "0b5a3c4e-1111-2222-3333-444455556666",
            "creationTimestamp": "2026-01-02T03:04:05Z"}});
        let mut list = json!({"kind": "ConfigMapList", "metadata": {"resourceVersion": "950", "continue": "abc"},
            "items": [{"metadata": {"resourceVersion": "900"}}, {"metadata": {"resourceVersion": "901"}}]});
        n.normalise(&mut a);
        n.normalise(&mut list);
        assert_eq!(
            a,
            json!({"metadata": {"resourceVersion": "<rv@s#0>", "uid": "<uid>", "creationTimestamp": "<time>"}})
        );
        assert_eq!(
            list["metadata"],
            json!({"resourceVersion": "<list-rv>", "continue": "<continue>"})
        );
        assert_eq!(list["items"][1]["metadata"]["resourceVersion"], "<rv@s#1>");
    }

    #[test]
    fn generated_names_and_table_ages_are_blanked() {
        let mut n = Normaliser::default();
        let mut v = json!({"metadata": {"generateName": "web-", "name": "web-x7k2p"}});
        n.normalise(&mut v);
        assert_eq!(v["metadata"]["name"], "web-<suffix>");
        let mut t = json!({"kind": "Table", "columnDefinitions": [{"name": "Name"}, {"name": "Age"}],
            "rows": [{"cells": ["a", "3s"]}]});
        n.normalise(&mut t);
        assert_eq!(t["rows"][0]["cells"], json!(["a", "<age>"]));
        assert!(is_timestamp("2026-01-02T03:04:05.123456Z"));
    }
}
