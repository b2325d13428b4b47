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
fn write_private(path: &Path, contents: &str) -> Result<()> {
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
