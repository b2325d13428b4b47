//! The credentials the API server mints and checks: the service-account token
//! signing key ([`jwt`]) and the cluster certificate authority ([`ca`]) that
//! the CSR signer issues client certificates from.
//!
//! Both are generated on first start and kept in `<data-dir>/pki/` (as
//! upstream keeps `sa.key` and `ca.crt`/`ca.key`), so a restart keeps every
//! token and certificate it issued valid. This module does no I/O beyond
//! those files and knows nothing of the store.

pub mod ca;
pub mod jwt;
pub mod rbac;
pub mod tls;
pub mod token_file;

use std::path::{Path, PathBuf};

/// The issuer (`iss`) of service-account tokens, and the API server's default
/// audience, as upstream clusters commonly set `--service-account-issuer`.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a usable key or certificate: {why}")]
    Malformed { path: PathBuf, why: String },
    #[error("generating a key or certificate: {0}")]
    Generate(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Who is making a request, as an authenticator found them (upstream's `user.Info`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

/// The group every authenticated user is in.
pub const AUTHENTICATED: &str = "system:authenticated";
/// The user and group of a request that carries no credentials.
pub const ANONYMOUS_USER: &str = "system:anonymous";
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The group whose members may do anything (upstream's privileged group).
pub const MASTERS: &str = "system:masters";

impl UserInfo {
    /// The anonymous user.
    pub fn anonymous() -> UserInfo {
        UserInfo {
            name: ANONYMOUS_USER.into(),
            groups: vec![UNAUTHENTICATED.into()],
            ..UserInfo::default()
        }
    }

    /// This user with `system:authenticated` among its groups (added once).
    pub fn authenticated(mut self) -> UserInfo {
        if !self.groups.iter().any(|g| g == AUTHENTICATED) {
            self.groups.push(AUTHENTICATED.into());
        }
        self
    }

    /// A user as the API writes one: the user name under `name_key`
    /// (`username` in a TokenReview's status, `user` in a SubjectAccessReview's
    /// spec), then `uid`, `groups` and `extra`.
    pub fn from_api(v: &serde_json::Value, name_key: &str) -> UserInfo {
        let text = |key: &str| {
            v.get(key)
                .and_then(|s| s.as_str())
                .unwrap_or("")
                .to_string()
        };
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        UserInfo {
            name: text(name_key),
            uid: text("uid"),
            groups: v.get("groups").map(strings).unwrap_or_default(),
            extra: v
                .get("extra")
                .and_then(|e| e.as_object())
                .map(|m| m.iter().map(|(k, v)| (k.clone(), strings(v))).collect())
                .unwrap_or_default(),
        }
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// The API server's signing material.
pub struct Keys {
    pub service_account: jwt::SigningKey,
    pub ca: ca::ClusterCa,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("kid", &self.service_account.key_id())
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// Loads the keys from `<data_dir>/pki/`, creating what is missing.
    pub fn load_or_create(data_dir: &Path) -> Result<Keys> {
        let dir = data_dir.join("pki");
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Keys {
            service_account: jwt::SigningKey::load_or_create(&dir.join("sa.key"))?,
            ca: ca::ClusterCa::load_or_create(&dir.join("ca.crt"), &dir.join("ca.key"))?,
        })
    }

    /// Fresh keys kept in memory only (for tests of the HTTP layer).
    pub fn ephemeral() -> Result<Keys> {
        Ok(Keys {
            service_account: jwt::SigningKey::generate()?,
            ca: ca::ClusterCa::generate()?,
        })
    }
}

/// Reads `path` if it exists.
fn read_if_exists(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `contents` readable by the owner only, atomically (a crash leaves
/// either no file or the whole file).
pub(crate) fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(contents.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_a_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = Keys::load_or_create(dir.path()).expect("create");
        let again = Keys::load_or_create(dir.path()).expect("load");
        assert_eq!(
            first.service_account.key_id(),
            again.service_account.key_id()
        );
        assert_eq!(first.ca.cert_pem(), again.ca.cert_pem());
        let token = first
            .service_account
            .sign(&serde_json::json!({"sub": "x"}))
            .expect("sign");
        assert_eq!(
            again.service_account.verify(&token).expect("verify")["sub"],
            "x"
        );
    }
}
