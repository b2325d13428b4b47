//! A JSON list written straight from stored bytes, without building a
//! `serde_json::Value` per item: each item is read only as far as its
//! top-level fields and its `metadata` fields (borrowed raw JSON), its
//! `apiVersion` and `kind` dropped (items of a typed list carry none) and
//! its `resourceVersion` appended to `metadata`, as the decoded path does.
//!
//! Used for plain JSON lists of resources whose stored form is served as is
//! (no conversion) and that need no selector; anything else, and any item
//! this reader cannot read, takes the decoded path.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::storage::KeyValue;

/// The fields of one JSON object, in their order, unparsed.
struct Fields<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(entry) = map.next_entry::<&'de str, &'de RawValue>()? {
                    fields.push(entry);
                }
                Ok(Fields(fields))
            }
        }
        d.deserialize_map(FieldsVisitor)
    }
}

/// Appends one stored item to `out`; `None` (with `out` as it was) when the
/// stored bytes are not an object this reader can splice.
fn write_item(out: &mut Vec<u8>, kv: &KeyValue) -> Option<()> {
    let top: Fields = serde_json::from_slice(&kv.value).ok()?;
    let start = out.len();
    out.push(b'{');
    let mut first = true;
    let mut has_metadata = false;
    for (name, value) in top.0 {
        if name == "apiVersion" || name == "kind" {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_key(out, name);
        if name != "metadata" {
            out.extend_from_slice(value.get().as_bytes());
            continue;
        }
        has_metadata = true;
        let Ok(meta) = serde_json::from_str::<Fields>(value.get()) else {
            out.truncate(start);
            return None;
        };
        out.push(b'{');
        for (key, v) in meta.0.iter().filter(|(k, _)| *k != "resourceVersion") {
            write_key(out, key);
            out.extend_from_slice(v.get().as_bytes());
            out.push(b',');
        }
        out.extend_from_slice(br#""resourceVersion":""#);
        out.extend_from_slice(kv.mod_revision.to_string().as_bytes());
        out.extend_from_slice(b"\"}");
    }
    if !has_metadata {
        out.truncate(start);
        return None;
    }
    out.push(b'}');
    Some(())
}

/// `"name":` for a field name read from JSON (which needed no escaping
/// there, being borrowed).
fn write_key(out: &mut Vec<u8>, name: &str) {
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// The whole list: `kind`, `apiVersion`, `metadata` (already JSON) and the
/// items; `None` when one item cannot be spliced.
pub(super) fn write(
    kind: &str,
    api_version: &str,
    metadata: &serde_json::Value,
    items: &[KeyValue],
) -> Option<Vec<u8>> {
    let size: usize = items.iter().map(|kv| kv.value.len() + 40).sum();
    let mut out = Vec::with_capacity(size + 256);
    out.extend_from_slice(br#"{"kind":"#);
    serde_json::to_writer(&mut out, kind).ok()?;
    out.extend_from_slice(br#","apiVersion":"#);
    serde_json::to_writer(&mut out, api_version).ok()?;
    out.extend_from_slice(br#","metadata":"#);
    serde_json::to_writer(&mut out, metadata).ok()?;
    out.extend_from_slice(br#","items":["#);
    for (i, kv) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_item(&mut out, kv)?;
    }
    out.extend_from_slice(b"]}");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use serde_json::json;

    fn kv(value: &str, rev: i64) -> KeyValue {
        KeyValue {
            key: "/registry/configmaps/default/a".into(),
            value: Bytes::copy_from_slice(value.as_bytes()),
            create_revision: rev,
            mod_revision: rev,
        }
    }

    #[test]
    fn splices_the_same_list_the_decoded_path_builds() {
        let stored = [
            kv(
                r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"default","labels":{"x":"\"q\""}},"data":{"k":"v\n"}}"#,
                7,
            ),
            kv(r#"{"kind":"ConfigMap","metadata":{"name":"b"}}"#, 9),
        ];
        let meta = json!({"resourceVersion": "9"});
        let bytes = write("ConfigMapList", "v1", &meta, &stored).expect("spliced");
        let got: serde_json::Value = serde_json::from_slice(&bytes).expect("valid JSON");
        assert_eq!(
            got,
            json!({
                "kind": "ConfigMapList", "apiVersion": "v1", "metadata": {"resourceVersion": "9"},
                "items": [
                    {"metadata": {"name": "a", "namespace": "default", "labels": {"x": "\"q\""}, "resourceVersion": "7"}, "data": {"k": "v\n"}},
                    {"metadata": {"name": "b", "resourceVersion": "9"}},
                ]
            })
        );
        let empty = write("ConfigMapList", "v1", &meta, &[]).expect("spliced");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&empty).expect("JSON")["items"],
            json!([])
        );
    }

    #[test]
    fn declines_what_it_cannot_splice() {
        let meta = json!({});
        for bad in [
            "[1]",
            "{\"metadata\":3}",
            "{\"data\":{}}",
            "not json",
            "{\"ki\\u006ed\":1,\"metadata\":{}}",
        ] {
            assert!(write("L", "v1", &meta, &[kv(bad, 1)]).is_none(), "{bad}");
        }
    }
}
