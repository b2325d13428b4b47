//! The allow-list: differences from the reference that are known and
//! explained. Each entry matches step ids and difference paths by glob
//! (`*` matches any run of characters) and must match at least one difference,
//! so fixing ironkube forces the entry out and the list only shrinks.

use std::path::Path;

use serde::Deserialize;

use super::compare::Difference;
use super::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// ironkube is wrong or incomplete here; to be fixed.
    Gap,
    /// The two set-ups differ (the reference runs admission plugins and its own
    /// controllers, serves aggregation and more groups), not the API semantics.
    Setup,
    /// Both answers are correct (order or wording the API does not promise).
    Benign,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub step: String,
    pub path: String,
    pub category: Category,
    pub reason: String,
}

impl Entry {
    pub fn matches(&self, d: &Difference) -> bool {
        glob(&self.step, &d.step) && glob(&self.path, &d.path)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowFile {
    #[serde(default)]
    allow: Vec<Entry>,
}

pub fn load(path: &Path) -> Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file: AllowFile = serde_yaml::from_str(&text).map_err(|source| Error::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(file.allow)
}

/// Splits differences into (allowed with the index of their entry, unexplained),
/// and returns the indices of entries that matched nothing.
pub fn apply(
    entries: &[Entry],
    differences: Vec<Difference>,
) -> (Vec<(usize, Difference)>, Vec<Difference>, Vec<usize>) {
    let mut used = vec![false; entries.len()];
    let (mut allowed, mut unexplained) = (Vec::new(), Vec::new());
    for d in differences {
        match entries.iter().position(|e| e.matches(&d)) {
            Some(i) => {
                used[i] = true;
                allowed.push((i, d));
            }
            None => unexplained.push(d),
        }
    }
    let stale = (0..entries.len()).filter(|i| !used[*i]).collect();
    (allowed, unexplained, stale)
}

/// Glob match where `*` stands for any (possibly empty) run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == text;
    };
    if parts.len() == 1 {
        return pattern == text;
    }
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn globs() {
        assert!(glob("crud/*/create", "crud/pods/create"));
        assert!(glob("*", ""));
        assert!(glob("/a*b*c", "/abc"));
        assert!(!glob("/a*b*c", "/acb"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
        assert!(!glob("ab*ba", "aba"));
    }

    #[test]
    fn unused_entries_are_stale() {
        let entry = |step: &str| Entry {
            step: step.into(),
            path: "*".into(),
            category: Category::Gap,
            reason: String::new(),
        };
        let d = Difference {
            step: "x".into(),
            path: "/a".into(),
            reference: Value::Null,
            ours: Value::Null,
        };
        let (allowed, unexplained, stale) = apply(&[entry("x"), entry("y")], vec![d]);
        assert_eq!((allowed.len(), unexplained.len(), stale), (1, 0, vec![1]));
    }
}
