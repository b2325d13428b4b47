//! Static bearer tokens from a CSV file (`--token-auth-file`), in upstream's
//! format: `token,user,uid[,"group1,group2,..."]`, one per line; lines
//! starting with `#` and blank lines are skipped.

use std::collections::HashMap;
use std::path::Path;

use super::{Error, Result, UserInfo};

#[derive(Default)]
pub struct StaticTokens {
    users: HashMap<String, UserInfo>,
}

impl std::fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticTokens")
            .field("count", &self.users.len())
            .finish()
    }
}

impl StaticTokens {
    pub fn load(path: &Path) -> Result<StaticTokens> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        StaticTokens::parse(&text).map_err(|why| Error::Malformed {
            path: path.to_path_buf(),
            why,
        })
    }

    pub fn parse(text: &str) -> std::result::Result<StaticTokens, String> {
        let mut users = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = csv_fields(line);
            if fields.len() < 3 {
                return Err(format!(
                    "line {}: want at least 3 fields (token,user,uid), got {}",
                    n + 1,
                    fields.len()
                ));
            }
            let groups = fields
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let user = UserInfo {
                name: fields[1].clone(),
                uid: fields[2].clone(),
                groups,
                extra: Default::default(),
            };
            if fields[0].is_empty() {
                return Err(format!("line {}: empty token", n + 1));
            }
            users.insert(fields[0].clone(), user);
        }
        Ok(StaticTokens { users })
    }

    pub fn lookup(&self, token: &str) -> Option<&UserInfo> {
        self.users.get(token)
    }
}

/// The fields of one CSV line; a field in double quotes may hold commas, and
/// `""` inside it is one quote.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_one_quoted_field() {
        let tokens =
            StaticTokens::parse("# comment\nabc,alice,u1,\"dev,system:masters\"\n\ndef,bob,u2\n")
                .expect("parse");
        let alice = tokens.lookup("abc").expect("alice");
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.uid, "u1");
        assert_eq!(alice.groups, vec!["dev", "system:masters"]);
        assert!(tokens.lookup("def").expect("bob").groups.is_empty());
        assert!(tokens.lookup("nope").is_none());
        assert!(StaticTokens::parse("only,two\n").is_err());
    }
}
