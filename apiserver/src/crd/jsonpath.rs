//! The JSONPath subset `additionalPrinterColumns` use: `.a.b`, `.a[0]`,
//! `.a[*]`, `.a['x.y']` and filters `[?(@.type=="Ready")]`, parsed once per
//! column.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
    /// `[?(@.a.b=="v")]`: the array items whose field equals the value.
    Filter(Vec<String>, Value),
}

/// A parsed path.
#[derive(Clone, Debug, PartialEq)]
pub struct Path(Vec<Step>);

impl Path {
    pub fn parse(src: &str) -> Option<Path> {
        let src = src.trim();
        let src = src
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .unwrap_or(src);
        let mut steps = Vec::new();
        let mut rest = src.strip_prefix('$').unwrap_or(src);
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                if end > 0 {
                    steps.push(Step::Field(r[..end].to_string()));
                }
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = matching_bracket(r)?;
                let inner = r[..end].trim();
                rest = &r[end + 1..];
                steps.push(bracket(inner)?);
            } else {
                return None;
            }
        }
        Some(Path(steps))
    }

    /// Every value the path selects in `obj`.
    pub fn find<'a>(&self, obj: &'a Value) -> Vec<&'a Value> {
        let mut current = vec![obj];
        for step in &self.0 {
            let mut next = Vec::new();
            for v in current {
                match step {
                    Step::Field(f) => next.extend(v.get(f)),
                    Step::Index(i) => next.extend(v.get(*i)),
                    Step::All => match v {
                        Value::Array(a) => next.extend(a.iter()),
                        Value::Object(m) => next.extend(m.values()),
                        _ => {}
                    },
                    Step::Filter(path, want) => {
                        if let Value::Array(a) = v {
                            next.extend(a.iter().filter(|item| {
                                path.iter().try_fold(*item, |at, k| at.get(k)) == Some(want)
                            }));
                        }
                    }
                }
            }
            current = next;
        }
        current
    }
}

fn matching_bracket(s: &str) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') if depth == 0 => return Some(i),
            (None, ']') => depth -= 1,
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<&str> {
    s.strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
}

fn bracket(inner: &str) -> Option<Step> {
    if inner == "*" {
        return Some(Step::All);
    }
    if let Ok(i) = inner.parse::<usize>() {
        return Some(Step::Index(i));
    }
    if let Some(name) = unquote(inner) {
        return Some(Step::Field(name.to_string()));
    }
    let cond = inner.strip_prefix("?(")?.strip_suffix(')')?;
    let (lhs, rhs) = cond.split_once("==")?;
    let path: Vec<String> = lhs
        .trim()
        .strip_prefix("@.")?
        .split('.')
        .map(str::to_string)
        .collect();
    let rhs = rhs.trim();
    let want = match unquote(rhs) {
        Some(s) => Value::String(s.to_string()),
        None => serde_json::from_str(rhs).ok()?,
    };
    Some(Step::Filter(path, want))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_fields_indexes_and_filters() {
        let obj = json!({"spec": {"a.b": 1, "list": [1, 2]},
            "status": {"conditions": [{"type": "Other", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        let find = |p: &str| -> Vec<Value> {
            Path::parse(p)
                .expect("parses")
                .find(&obj)
                .into_iter()
                .cloned()
                .collect()
        };
        assert_eq!(find(".spec['a.b']"), [json!(1)]);
        assert_eq!(find(".spec.list[1]"), [json!(2)]);
        assert_eq!(find(".spec.list[*]"), [json!(1), json!(2)]);
        assert_eq!(
            find(r#".status.conditions[?(@.type=="Ready")].status"#),
            [json!("True")]
        );
        assert!(find(".missing.x").is_empty());
    }
}
