//! Encryption at rest (`--encryption-provider-config`): a [`Storage`] in
//! front of either backend that encrypts the values of the configured
//! resources on the way in and decrypts them on the way out, as upstream's
//! `EncryptionConfiguration` describes.
//!
//! For each resource the first provider writes; every listed provider and key
//! can read, found by the value's `k8s:enc:<provider>:v1:<key>:` prefix. So a
//! key is rotated by putting a new key first and rewriting every object
//! (`kubectl get secrets -A -o json | kubectl replace -f -`): a value read
//! with any but the first key, or stored in plain text while a cipher is
//! first, is reported stale, and the store then rewrites it even when the
//! object did not change. Values without a prefix are read as plain text
//! (an `identity` provider, or data written before encryption was enabled).

pub mod providers;

use std::collections::HashSet;
use std::path::Path;

use base64::Engine;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use parking_lot::Mutex;
use serde::Deserialize;

use super::{
    KeyValue, ListOptions, ListResult, Result, Revision, SharedStorage, Storage, StorageError,
    WatchStream,
};
use crate::resources::ResourceTable;
use providers::Cipher;

/// Why an encryption configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Key(#[from] providers::CipherError),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    kind: String,
    #[serde(default)]
    resources: Vec<ResourceConfig>,
}

#[derive(Deserialize)]
struct ResourceConfig {
    resources: Vec<String>,
    providers: Vec<ProviderConfig>,
}

#[derive(Deserialize)]
struct ProviderConfig {
    identity: Option<serde_json::Value>,
    aescbc: Option<KeysConfig>,
    aesgcm: Option<KeysConfig>,
    secretbox: Option<KeysConfig>,
    kms: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct KeysConfig {
    keys: Vec<KeyConfig>,
}

#[derive(Deserialize)]
struct KeyConfig {
    name: String,
    secret: String,
}

/// One provider: identity, or a cipher with its keys (first key writes).
enum Provider {
    Identity,
    Cipher {
        name: &'static str,
        keys: Vec<(String, Cipher)>,
    },
}

/// The providers of a set of resources.
struct Rule {
    /// Storage prefixes (ending in `/`) the rule covers; `None`: every resource.
    prefixes: Option<Vec<String>>,
    providers: Vec<Provider>,
}

/// The parsed configuration: for a storage key, how to write and read it.
pub struct Transformers {
    rules: Vec<Rule>,
}

const ENVELOPE: &str = "k8s:enc:";

impl Transformers {
    /// Reads `path` and resolves its resource names against `table`.
    pub fn load(path: &Path, table: &ResourceTable) -> Result<Transformers, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Transformers::parse(&text, table)
    }

    pub fn parse(text: &str, table: &ResourceTable) -> Result<Transformers, ConfigError> {
        let file: ConfigFile = serde_yaml::from_str(text)
            .map_err(|e| ConfigError::Invalid(format!("not an EncryptionConfiguration: {e}")))?;
        if file.kind != "EncryptionConfiguration" {
            return Err(ConfigError::Invalid(format!(
                "kind is {:?}, not EncryptionConfiguration",
                file.kind
            )));
        }
        let mut rules = Vec::new();
        for rc in file.resources {
            let prefixes = if rc.resources.iter().any(|r| r == "*.*") {
                None
            } else {
                let mut prefixes = Vec::new();
                for name in &rc.resources {
                    prefixes.extend(resolve(table, name)?);
                }
                Some(prefixes)
            };
            let mut providers = Vec::new();
            for p in rc.providers {
                providers.push(provider(p)?);
            }
            if providers.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "resources {:?} list no provider",
                    rc.resources
                )));
            }
            rules.push(Rule {
                prefixes,
                providers,
            });
        }
        Ok(Transformers { rules })
    }

    fn rule_for(&self, key: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| match &r.prefixes {
            None => true,
            Some(prefixes) => prefixes.iter().any(|p| key.starts_with(p.as_str())),
        })
    }

    /// The stored form of `value` under `key`.
    pub fn encrypt(&self, key: &str, value: Bytes) -> Result<Bytes> {
        let Some(rule) = self.rule_for(key) else {
            return Ok(value);
        };
        match rule.providers.first() {
            Some(Provider::Cipher { name, keys }) => {
                let Some((key_name, cipher)) = keys.first() else {
                    return Ok(value);
                };
                let sealed = cipher
                    .seal(&value, key.as_bytes())
                    .map_err(|e| StorageError::Corrupt(e.to_string()))?;
                let mut out = format!("{ENVELOPE}{name}:v1:{key_name}:").into_bytes();
                out.extend_from_slice(&sealed);
                Ok(Bytes::from(out))
            }
            Some(Provider::Identity) | None => Ok(value),
        }
    }

    /// The plain value stored as `stored` under `key`, and whether it should
    /// be rewritten (not written with the first provider and key).
    pub fn decrypt(&self, key: &str, stored: Bytes) -> Result<(Bytes, bool)> {
        let rule = self.rule_for(key);
        let Some(rest) = stored.strip_prefix(ENVELOPE.as_bytes()) else {
            let primary_encrypts =
                rule.is_some_and(|r| matches!(r.providers.first(), Some(Provider::Cipher { .. })));
            return Ok((stored, primary_encrypts));
        };
        let corrupt = |why: String| StorageError::Corrupt(format!("{key}: {why}"));
        let rule =
            rule.ok_or_else(|| corrupt("encrypted, but no provider is configured".into()))?;
        // <provider>:v1:<key name>:<sealed>
        let mut parts = rest.splitn(4, |b| *b == b':');
        let provider = parts.next().unwrap_or_default();
        let _version = parts.next();
        let key_name = parts.next().unwrap_or_default();
        let sealed = parts
            .next()
            .ok_or_else(|| corrupt("malformed encryption envelope".into()))?;
        for (index, p) in rule.providers.iter().enumerate() {
            let Provider::Cipher { name, keys } = p else {
                continue;
            };
            if name.as_bytes() != provider {
                continue;
            }
            if let Some((position, (_, cipher))) = keys
                .iter()
                .enumerate()
                .find(|(_, (n, _))| n.as_bytes() == key_name)
            {
                let plain = cipher
                    .open(sealed, key.as_bytes())
                    .map_err(|e| corrupt(e.to_string()))?;
                return Ok((Bytes::from(plain), index != 0 || position != 0));
            }
        }
        Err(corrupt(format!(
            "no configured key {:?} of provider {:?}",
            String::from_utf8_lossy(key_name),
            String::from_utf8_lossy(provider)
        )))
    }
}

/// Storage prefixes (with a trailing `/`) of `name`: `secrets`, `deployments.apps`, `*.apps`.
fn resolve(table: &ResourceTable, name: &str) -> Result<Vec<String>, ConfigError> {
    let (plural, group) = name.split_once('.').unwrap_or((name, ""));
    let mut prefixes: Vec<String> = table
        .groups()
        .iter()
        .filter(|g| g.name == group)
        .flat_map(|g| g.versions.iter())
        .flat_map(|v| v.resources.iter())
        .filter(|r| plural == "*" || r.plural == plural)
        .map(|r| format!("{}/", r.storage_prefix))
        .collect();
    prefixes.sort();
    prefixes.dedup();
    if prefixes.is_empty() {
        return Err(ConfigError::Invalid(format!(
            "resource {name:?} is not served"
        )));
    }
    Ok(prefixes)
}

fn provider(p: ProviderConfig) -> Result<Provider, ConfigError> {
    if p.kms.is_some() {
        return Err(ConfigError::Invalid(
            "the kms provider is not supported".into(),
        ));
    }
    let (name, keys) = match (p.identity, p.aescbc, p.aesgcm, p.secretbox) {
        (Some(_), None, None, None) => return Ok(Provider::Identity),
        (None, Some(k), None, None) => ("aescbc", k),
        (None, None, Some(k), None) => ("aesgcm", k),
        (None, None, None, Some(k)) => ("secretbox", k),
        _ => {
            return Err(ConfigError::Invalid(
                "each provider names exactly one of identity, aescbc, aesgcm, secretbox".into(),
            ));
        }
    };
    if keys.keys.is_empty() {
        return Err(ConfigError::Invalid(format!("{name} lists no key")));
    }
    let mut ciphers = Vec::new();
    for k in keys.keys {
        let secret = base64::engine::general_purpose::STANDARD
            .decode(k.secret.trim())
            .map_err(|e| {
                ConfigError::Invalid(format!(
                    "{name} key {:?}: secret is not base64: {e}",
                    k.name
                ))
            })?;
        ciphers.push((k.name.clone(), Cipher::new(name, &k.name, &secret)?));
    }
    Ok(Provider::Cipher {
        name,
        keys: ciphers,
    })
}

/// At most this many stale keys are remembered before the set is emptied.
const STALE_MAX: usize = 10_000;

/// A backend whose configured values are encrypted at rest.
pub struct EncryptedStorage {
    inner: SharedStorage,
    transformers: std::sync::Arc<Transformers>,
    /// (key, mod revision) of values last read that want rewriting.
    stale: Mutex<HashSet<(String, Revision)>>,
}

impl EncryptedStorage {
    pub fn new(inner: SharedStorage, transformers: Transformers) -> EncryptedStorage {
        EncryptedStorage {
            inner,
            transformers: std::sync::Arc::new(transformers),
            stale: Mutex::new(HashSet::new()),
        }
    }

    fn open(&self, mut kv: KeyValue) -> Result<KeyValue> {
        let (plain, stale) = self.transformers.decrypt(&kv.key, kv.value)?;
        kv.value = plain;
        if stale {
            let mut set = self.stale.lock();
            if set.len() >= STALE_MAX {
                set.clear();
            }
            set.insert((kv.key.clone(), kv.mod_revision));
        }
        Ok(kv)
    }
}

impl Storage for EncryptedStorage {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KeyValue>>> {
        async move {
            self.inner
                .get(key)
                .await?
                .map(|kv| self.open(kv))
                .transpose()
        }
        .boxed()
    }

    fn list<'a>(&'a self, prefix: &'a str, opts: ListOptions) -> BoxFuture<'a, Result<ListResult>> {
        async move {
            let mut list = self.inner.list(prefix, opts).await?;
            list.items = list
                .items
                .into_iter()
                .map(|kv| self.open(kv))
                .collect::<Result<_>>()?;
            Ok(list)
        }
        .boxed()
    }

    fn create<'a>(&'a self, key: &'a str, value: Bytes) -> BoxFuture<'a, Result<Revision>> {
        async move {
            let sealed = self.transformers.encrypt(key, value)?;
            self.inner.create(key, sealed).await
        }
        .boxed()
    }

    fn update<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        expected: Revision,
    ) -> BoxFuture<'a, Result<Revision>> {
        async move {
            let sealed = self.transformers.encrypt(key, value)?;
            self.inner.update(key, sealed, expected).await
        }
        .boxed()
    }

    fn delete<'a>(
        &'a self,
        key: &'a str,
        expected: Option<Revision>,
    ) -> BoxFuture<'a, Result<KeyValue>> {
        async move {
            let kv = self.inner.delete(key, expected).await?;
            self.open(kv)
        }
        .boxed()
    }

    fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let transformers = self.transformers.clone();
        let events = self.inner.watch(prefix, after)?;
        Ok(events
            .map(move |event| {
                let mut event = event?;
                let key = event.kv.key.clone();
                event.kv.value = transformers.decrypt(&key, event.kv.value)?.0;
                if let Some(prev) = event.prev_value.take() {
                    event.prev_value = Some(transformers.decrypt(&key, prev)?.0);
                }
                Ok(event)
            })
            .boxed())
    }

    fn current_revision(&self) -> BoxFuture<'_, Result<Revision>> {
        self.inner.current_revision()
    }

    fn compacted_revision(&self) -> Revision {
        self.inner.compacted_revision()
    }

    fn compact(&self, revision: Revision) -> BoxFuture<'_, Result<()>> {
        self.inner.compact(revision)
    }

    fn is_stale(&self, kv: &KeyValue) -> bool {
        self.stale
            .lock()
            .contains(&(kv.key.clone(), kv.mod_revision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY1: &str = "c2VjcmV0IGlzIHNlY3VyZSwgaXMgaXQ/IDMyIGJ5dGU="; // 32 bytes
    const KEY2: &str = "YW5vdGhlciAzMi1ieXRlIGtleSBmb3IgdGhlIHRlc3Q="; // 32 bytes

    fn config(providers: &str) -> Transformers {
        let text = format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n{providers}"
        );
        Transformers::parse(&text, &ResourceTable::with_builtins()).expect("config")
    }

    #[test]
    fn rotation_reads_old_keys_and_reports_them_stale() {
        let key = "/registry/secrets/default/s";
        let old = config(&format!(
            "  - aescbc:\n      keys:\n      - name: key1\n        secret: {KEY1}\n  - identity: {{}}\n"
        ));
        let stored = old
            .encrypt(key, Bytes::from_static(b"{\"data\":1}"))
            .expect("encrypt");
        assert!(stored.starts_with(b"k8s:enc:aescbc:v1:key1:"));
        assert_eq!(
            old.decrypt(key, stored.clone()).expect("decrypt"),
            (Bytes::from_static(b"{\"data\":1}"), false)
        );
        // key2 first, key1 still listed: old values read, and are stale.
        let rotated = config(&format!(
            "  - aescbc:\n      keys:\n      - name: key2\n        secret: {KEY2}\n      - name: key1\n        secret: {KEY1}\n"
        ));
        let (plain, stale) = rotated.decrypt(key, stored.clone()).expect("decrypt");
        assert_eq!((plain.as_ref(), stale), (b"{\"data\":1}".as_ref(), true));
        // Plain text written before encryption was enabled is stale too.
        let (_, stale) = rotated
            .decrypt(key, Bytes::from_static(b"{}"))
            .expect("plain");
        assert!(stale);
        // key1 gone: its values no longer decrypt.
        let only2 = config(&format!(
            "  - aescbc:\n      keys:\n      - name: key2\n        secret: {KEY2}\n"
        ));
        assert!(only2.decrypt(key, stored).is_err());
        // Other resources are untouched.
        let cm = Bytes::from_static(b"{}");
        assert_eq!(
            only2
                .encrypt("/registry/configmaps/default/c", cm.clone())
                .expect("cm"),
            cm
        );
    }

    #[test]
    fn bad_configurations_are_refused() {
        let table = ResourceTable::with_builtins();
        for text in [
            "kind: Something\n",
            "kind: EncryptionConfiguration\nresources:\n- resources: [nothings]\n  providers:\n  - identity: {}\n",
            "kind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: k\n        secret: c2hvcnQ=\n",
            "kind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers: []\n",
        ] {
            assert!(Transformers::parse(text, &table).is_err(), "{text}");
        }
    }
}
