//! Structural comparison of two normalised responses.
//!
//! Paths are JSON-pointer-like. Arrays whose elements all carry a name
//! (`name`, `resource`, `subresource` or `metadata.name`) are matched by it and shown as `[name]`, so a
//! missing discovery resource is one difference, not a shifted tail; their
//! order is compared separately (`/path#order`). Other arrays compare by index.

use serde_json::Value;

use super::runner::{Body, Observed};

/// One difference between the reference (`reference`) and ironkube (`ours`).
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    pub step: String,
    pub path: String,
    pub reference: Value,
    pub ours: Value,
}

/// Compares status, Content-Type (without parameters) and body.
pub fn compare(
    step: &str,
    select: &[String],
    ignore_body: bool,
    reference: &Observed,
    ours: &Observed,
) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut push = |path: String, r: Value, o: Value| {
        out.push(Difference {
            step: step.to_string(),
            path,
            reference: r,
            ours: o,
        })
    };
    if reference.status != ours.status {
        push("status".into(), reference.status.into(), ours.status.into());
    }
    let media = |o: &Observed| {
        o.content_type
            .as_deref()
            .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
    };
    if media(reference) != media(ours) {
        push(
            "header/content-type".into(),
            media(reference).into(),
            media(ours).into(),
        );
    }
    if ignore_body {
        return out;
    }
    let (r, o) = (as_value(&reference.body), as_value(&ours.body));
    if select.is_empty() {
        diff("", &r, &o, &mut push);
    } else {
        for pointer in select {
            let pick = |v: &Value| v.pointer(pointer).cloned().unwrap_or(Value::Null);
            diff(pointer, &pick(&r), &pick(&o), &mut push);
        }
    }
    out
}

fn as_value(body: &Body) -> Value {
    match body {
        Body::Json(v) => v.clone(),
        Body::Text(t) => Value::String(t.clone()),
        Body::Empty => Value::Null,
    }
}

fn element_name(v: &Value) -> Option<&str> {
    ["name", "resource", "subresource"]
        .iter()
        .find_map(|k| v.get(*k))
        .or_else(|| v.get("metadata").and_then(|m| m.get("name")))
        .and_then(Value::as_str)
}

/// Names of every element when all have one and they are unique.
fn names(items: &[Value]) -> Option<Vec<&str>> {
    let names: Option<Vec<&str>> = items.iter().map(element_name).collect();
    let names = names?;
    let unique: std::collections::HashSet<_> = names.iter().collect();
    (unique.len() == names.len()).then_some(names)
}

fn diff(path: &str, r: &Value, o: &Value, push: &mut impl FnMut(String, Value, Value)) {
    match (r, o) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let p = format!("{path}/{k}");
                match b.get(k) {
                    Some(vb) => diff(&p, va, vb, push),
                    // A field set to null reads as an absent one.
                    None if va.is_null() => {}
                    None => push(p, va.clone(), Value::Null),
                }
            }
            for (k, vb) in b {
                if !a.contains_key(k) && !vb.is_null() {
                    push(format!("{path}/{k}"), Value::Null, vb.clone());
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => match (names(a), names(b)) {
            (Some(na), Some(nb)) if !a.is_empty() && !b.is_empty() => {
                for (i, n) in na.iter().enumerate() {
                    let p = format!("{path}[{n}]");
                    match nb.iter().position(|m| m == n) {
                        Some(j) => diff(&p, &a[i], &b[j], push),
                        None => push(p, a[i].clone(), Value::Null),
                    }
                }
                for (j, n) in nb.iter().enumerate() {
                    if !na.contains(n) {
                        push(format!("{path}[{n}]"), Value::Null, b[j].clone());
                    }
                }
                let common_a: Vec<_> = na.iter().filter(|n| nb.contains(n)).collect();
                let common_b: Vec<_> = nb.iter().filter(|n| na.contains(n)).collect();
                if common_a != common_b {
                    push(
                        format!("{path}#order"),
                        Value::from(na.clone()),
                        Value::from(nb.clone()),
                    );
                }
            }
            _ => {
                for i in 0..a.len().max(b.len()) {
                    let p = format!("{path}/{i}");
                    match (a.get(i), b.get(i)) {
                        (Some(x), Some(y)) => diff(&p, x, y, push),
                        (x, y) => push(
                            p,
                            x.cloned().unwrap_or(Value::Null),
                            y.cloned().unwrap_or(Value::Null),
                        ),
                    }
                }
            }
        },
        _ if r == o => {}
        _ => push(path.to_string(), r.clone(), o.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn observed(status: u16, body: Value) -> Observed {
        Observed {
            status,
            content_type: Some("application/json".into()),
            body: Body::Json(body),
        }
    }

    #[test]
    fn named_elements_match_by_name_and_report_order() {
        let r = observed(
            200,
            json!({"resources": [{"name": "pods", "verbs": ["get"]}, {"name": "nodes"}]}),
        );
        let o = observed(
            200,
            json!({"resources": [{"name": "nodes"}, {"name": "pods", "verbs": ["list"]}, {"name": "x"}]}),
        );
        let paths: Vec<_> = compare("s", &[], false, &r, &o)
            .into_iter()
            .map(|d| d.path)
            .collect();
        assert_eq!(
            paths,
            [
                "/resources[pods]/verbs/0",
                "/resources[x]",
                "/resources#order"
            ]
        );
    }

    #[test]
    fn status_and_selected_pointers_only() {
        let r = observed(404, json!({"a": 1, "b": {"c": 2}}));
        let o = observed(200, json!({"a": 9, "b": {"c": 3}}));
        let d = compare("s", &["/b".into()], false, &r, &o);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].path, "status");
        assert_eq!(d[1].path, "/b/c");
    }
}
