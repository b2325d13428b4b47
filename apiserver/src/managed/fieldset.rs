//! Sets of field paths, as `managedFields` record them (`FieldsV1`): a tree whose
//! edges are path elements — a field name (`f:name`), a list element by its key
//! fields (`k:{"name":"c"}`), a set member by value (`v:"x"`) or an index (`i:0`) —
//! and whose nodes say whether the path itself is in the set (`.`, or a leaf `{}`).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{Map, Value};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    Field(String),
    /// Canonical JSON of the key fields, e.g. `{"name":"c"}`.
    Key(String),
    /// Canonical JSON of the value.
    Value(String),
    Index(usize),
}

pub type Path = Vec<PathElement>;

/// Upstream's path notation, e.g. `.spec.containers[name="c"].image`.
pub fn display_path(path: &[PathElement]) -> String {
    let mut s = String::new();
    for pe in path {
        match pe {
            PathElement::Field(f) => {
                let _ = write!(s, ".{f}");
            }
            PathElement::Key(k) => {
                let parsed: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
                let parts: Vec<String> = parsed.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = write!(s, "[{}]", parts.join(","));
            }
            PathElement::Value(v) => {
                let _ = write!(s, "[={v}]");
            }
            PathElement::Index(i) => {
                let _ = write!(s, "[{i}]");
            }
        }
    }
    s
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    /// The path leading here is itself a member of the set.
    pub member: bool,
    pub children: BTreeMap<PathElement, FieldSet>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FieldsV1Error(pub String);

impl FieldSet {
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    pub fn child(&mut self, pe: PathElement) -> &mut FieldSet {
        self.children.entry(pe).or_default()
    }

    pub fn insert(&mut self, path: &[PathElement]) {
        let mut node = self;
        for pe in path {
            node = node.child(pe.clone());
        }
        node.member = true;
    }

    pub fn contains(&self, path: &[PathElement]) -> bool {
        let mut node = self;
        for pe in path {
            match node.children.get(pe) {
                Some(n) => node = n,
                None => return false,
            }
        }
        node.member
    }

    /// Every member path, depth first.
    pub fn members(&self) -> Vec<Path> {
        let mut out = Vec::new();
        let mut cur = Vec::new();
        self.walk(&mut cur, &mut out);
        out
    }

    /// Member paths with no members below them (the fields that hold values).
    pub fn leaves(&self) -> Vec<Path> {
        let mut out = Vec::new();
        let mut cur = Vec::new();
        self.walk_leaves(&mut cur, &mut out);
        out
    }

    fn walk_leaves(&self, cur: &mut Path, out: &mut Vec<Path>) {
        if self.member && self.children.values().all(FieldSet::is_empty) {
            out.push(cur.clone());
            return;
        }
        for (pe, child) in &self.children {
            cur.push(pe.clone());
            child.walk_leaves(cur, out);
            cur.pop();
        }
    }

    fn walk(&self, cur: &mut Path, out: &mut Vec<Path>) {
        if self.member {
            out.push(cur.clone());
        }
        for (pe, child) in &self.children {
            cur.push(pe.clone());
            child.walk(cur, out);
            cur.pop();
        }
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.member |= other.member;
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    /// Members of `self` that are not members of `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (pe, child) in &self.children {
            let d = match other.children.get(pe) {
                Some(o) => child.difference(o),
                None => child.clone(),
            };
            if !d.is_empty() {
                out.children.insert(pe.clone(), d);
            }
        }
        out
    }

    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, FieldsV1Error> {
        Self::decode(v, 0)
    }

    fn decode(v: &Value, depth: usize) -> Result<FieldSet, FieldsV1Error> {
        if depth > 100 {
            return Err(FieldsV1Error("fieldsV1 is nested too deeply".into()));
        }
        let Value::Object(map) = v else {
            return Err(FieldsV1Error(format!(
                "expected an object in fieldsV1, got {v}"
            )));
        };
        let mut set = FieldSet {
            member: map.is_empty(),
            children: BTreeMap::new(),
        };
        for (k, child) in map {
            if k == "." {
                set.member = true;
                continue;
            }
            let pe = match k.split_once(':') {
                Some(("f", name)) => PathElement::Field(name.to_string()),
                Some(("k", key)) => {
                    let parsed: Value = serde_json::from_str(key).map_err(|e| {
                        FieldsV1Error(format!("parsing key {key:?} in fieldsV1: {e}"))
                    })?;
                    PathElement::Key(canonical(&parsed))
                }
                Some(("v", val)) => {
                    let parsed: Value = serde_json::from_str(val).map_err(|e| {
                        FieldsV1Error(format!("parsing value {val:?} in fieldsV1: {e}"))
                    })?;
                    PathElement::Value(canonical(&parsed))
                }
                Some(("i", idx)) => PathElement::Index(
                    idx.parse()
                        .map_err(|_| FieldsV1Error(format!("invalid index {idx:?} in fieldsV1")))?,
                ),
                _ => {
                    return Err(FieldsV1Error(format!(
                        "unknown path element {k:?} in fieldsV1"
                    )));
                }
            };
            set.children.insert(pe, Self::decode(child, depth + 1)?);
        }
        Ok(set)
    }

    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        if self.member && !self.children.is_empty() {
            map.insert(".".into(), Value::Object(Map::new()));
        }
        for (pe, child) in &self.children {
            if child.is_empty() {
                continue;
            }
            let key = match pe {
                PathElement::Field(f) => format!("f:{f}"),
                PathElement::Key(k) => format!("k:{k}"),
                PathElement::Value(v) => format!("v:{v}"),
                PathElement::Index(i) => format!("i:{i}"),
            };
            map.insert(key, child.to_fields_v1());
        }
        Value::Object(map)
    }
}

/// JSON with object keys sorted, so equal values have equal text.
pub fn canonical(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let sorted: BTreeMap<&String, Value> =
                    m.iter().map(|(k, v)| (k, sort(v))).collect();
                Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sort(v)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_round_trips() {
        let v = json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}}});
        let set = FieldSet::from_fields_v1(&v).unwrap();
        assert_eq!(set.to_fields_v1(), v);
        assert!(set.contains(&[
            PathElement::Field("metadata".into()),
            PathElement::Field("labels".into()),
            PathElement::Field("app".into())
        ]));
        let image = vec![
            PathElement::Field("spec".into()),
            PathElement::Field("containers".into()),
            PathElement::Key("{\"name\":\"c\"}".into()),
            PathElement::Field("image".into()),
        ];
        assert!(set.contains(&image));
        assert_eq!(display_path(&image), ".spec.containers[name=\"c\"].image");
        assert!(FieldSet::from_fields_v1(&json!({"x:bad": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!([1])).is_err());
    }

    #[test]
    fn set_algebra() {
        let mut a = FieldSet::default();
        a.insert(&[PathElement::Field("a".into())]);
        a.insert(&[PathElement::Field("b".into())]);
        let mut b = FieldSet::default();
        b.insert(&[PathElement::Field("b".into())]);
        let d = a.difference(&b);
        assert_eq!(d.members(), vec![vec![PathElement::Field("a".into())]]);
        assert_eq!(d.union(&b), a);
    }
}
