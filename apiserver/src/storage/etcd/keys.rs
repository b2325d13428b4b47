//! Mapping between the storage trait's key space and etcd's.
//!
//! The trait's keys look like `/registry/pods/ns/name`. The configured etcd prefix
//! *replaces* the leading `/registry`: with prefix `/ironkube` that key is stored at
//! `/ironkube/pods/ns/name`; with the default prefix `/registry` keys are unchanged
//! (the same layout kube-apiserver uses). The replacement is textual, so it also
//! applies to list and watch prefixes, which keeps ranges and key order intact.
//!
//! Keys that do not begin with `/registry` (the backend test suite uses such keys)
//! are stored verbatim. With a non-default prefix, such a key must not itself begin
//! with the configured prefix, or it would alias a re-rooted key; those are refused
//! (with an empty prefix that is every key outside `/registry`).
//! A query prefix that is a proper prefix of `/registry` (like `/`) is not translated
//! either, so with a non-default prefix it sees the raw etcd keys under it.

use super::{Result, StorageError};

/// The root of the trait's key space that the configured prefix replaces.
pub(super) const LOGICAL_ROOT: &str = "/registry";

#[derive(Clone, Debug)]
pub(super) struct KeyMap {
    /// The configured prefix, without trailing slashes (may be empty).
    prefix: String,
}

impl KeyMap {
    pub(super) fn new(prefix: &str) -> KeyMap {
        KeyMap {
            prefix: prefix.trim_end_matches('/').to_string(),
        }
    }

    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    fn identity(&self) -> bool {
        self.prefix == LOGICAL_ROOT
    }

    /// Whether a key or query prefix of the trait's key space is re-rooted under
    /// the configured prefix (as opposed to stored verbatim).
    pub(super) fn reroots(logical: &str) -> bool {
        logical.starts_with(LOGICAL_ROOT)
    }

    /// The etcd key for a trait key (or query prefix).
    pub(super) fn to_etcd(&self, logical: &str) -> Result<Vec<u8>> {
        match logical.strip_prefix(LOGICAL_ROOT) {
            Some(rest) => {
                let mut out = Vec::with_capacity(self.prefix.len() + rest.len());
                out.extend_from_slice(self.prefix.as_bytes());
                out.extend_from_slice(rest.as_bytes());
                Ok(out)
            }
            None if !self.identity() && logical.starts_with(&self.prefix) => {
                Err(StorageError::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "key {logical} lies under the etcd prefix {} but not under {LOGICAL_ROOT}",
                        self.prefix
                    ),
                )))
            }
            None => Ok(logical.as_bytes().to_vec()),
        }
    }

    /// The trait key for an etcd key returned by a query whose key or prefix was
    /// re-rooted (`rerooted`) or not.
    pub(super) fn to_logical(&self, rerooted: bool, etcd_key: &[u8]) -> Result<String> {
        let key = std::str::from_utf8(etcd_key).map_err(|_| {
            StorageError::Corrupt(format!(
                "etcd key is not UTF-8: {}",
                String::from_utf8_lossy(etcd_key)
            ))
        })?;
        if !rerooted {
            return Ok(key.to_string());
        }
        match key.strip_prefix(self.prefix.as_str()) {
            Some(rest) => Ok(format!("{LOGICAL_ROOT}{rest}")),
            None => Err(StorageError::Corrupt(format!(
                "etcd returned key {key} outside the prefix {}",
                self.prefix
            ))),
        }
    }
}

/// The end of the etcd range holding every key that starts with `prefix`
/// (etcd's convention: `\0` means "to the end of the key space").
pub(super) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_prefix_is_identity() {
        let m = KeyMap::new("/registry");
        assert_eq!(m.to_etcd("/registry/pods/a").unwrap(), b"/registry/pods/a");
        assert_eq!(m.to_etcd("/t1/a").unwrap(), b"/t1/a");
        assert_eq!(
            m.to_logical(true, b"/registry/pods/a").unwrap(),
            "/registry/pods/a"
        );
        assert_eq!(m.to_logical(false, b"/t1/a").unwrap(), "/t1/a");
    }

    #[test]
    fn custom_prefix_replaces_registry() {
        let m = KeyMap::new("/ironkube/");
        assert_eq!(m.prefix(), "/ironkube");
        assert_eq!(m.to_etcd("/registry/pods/a").unwrap(), b"/ironkube/pods/a");
        assert_eq!(m.to_etcd("/registry/").unwrap(), b"/ironkube/");
        assert_eq!(
            m.to_logical(true, b"/ironkube/pods/a").unwrap(),
            "/registry/pods/a"
        );
        assert_eq!(m.to_etcd("/t1/a").unwrap(), b"/t1/a");
        assert!(m.to_etcd("/ironkube/pods/a").is_err());
        assert!(m.to_logical(true, b"/other/x").is_err());
        assert!(m.to_logical(false, &[0xff, 0xfe]).is_err());
    }

    #[test]
    fn empty_prefix() {
        let m = KeyMap::new("");
        assert_eq!(m.to_etcd("/registry/pods/a").unwrap(), b"/pods/a");
        assert_eq!(m.to_logical(true, b"/pods/a").unwrap(), "/registry/pods/a");
        // Every other key would alias a re-rooted one.
        assert!(m.to_etcd("/t1/a").is_err());
    }

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"/t4/"), b"/t40");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
        assert_eq!(prefix_end(b""), b"\0");
    }
}
