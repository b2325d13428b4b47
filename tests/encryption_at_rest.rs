//! Secrets encrypted at rest (`--encryption-provider-config`, upstream's
//! `EncryptionConfiguration`): the raw bytes of the embedded store's files
//! and of etcd never hold a Secret's value, the Secret reads back through
//! kubectl, survives a key rotation done as upstream documents it
//! (`kubectl get secrets -A -o json | kubectl replace -f -`) and a restart.

mod common;

use std::path::Path;

use common::{Etcd, Server, kubectl_134};

const KEY1: &str = "c2VjcmV0IGlzIHNlY3VyZSwgaXMgaXQ/IDMyIGJ5dGU=";
const KEY2: &str = "YW5vdGhlciAzMi1ieXRlIGtleSBmb3IgdGhlIHRlc3Q=";
/// The Secret's value, and its base64 form as the stored JSON holds it.
const MARKER: &str = "hunter2-unique-marker";
const MARKER_B64: &str = "aHVudGVyMi11bmlxdWUtbWFya2Vy";
/// A ConfigMap value: not encrypted, so found in the raw bytes (proving the search works).
const PLAIN_MARKER: &str = "plain-configmap-marker";

fn write_config(path: &Path, provider: &str, keys: &[(&str, &str)]) {
    let keys: String = keys
        .iter()
        .map(|(name, secret)| format!("      - name: {name}\n        secret: {secret}\n"))
        .collect();
    std::fs::write(
        path,
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources:\n  - secrets\n  providers:\n  - {provider}:\n      keys:\n{keys}  - identity: {{}}\n"
        ),
    )
    .expect("write the encryption configuration");
}

/// Whether any file under `dir` contains `needle`.
fn found_in_files(dir: &Path, needle: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        if path.is_dir() {
            found_in_files(&path, needle)
        } else {
            std::fs::read(&path)
                .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
                .unwrap_or(false)
        }
    })
}

fn create_objects(server: &Server) {
    let k = server.kubectl(&kubectl_134());
    k.ok(&[
        "create",
        "secret",
        "generic",
        "db",
        &format!("--from-literal=password={MARKER}"),
    ]);
    k.ok(&[
        "create",
        "configmap",
        "settings",
        &format!("--from-literal=value={PLAIN_MARKER}"),
    ]);
}

fn secret_value(server: &Server) -> String {
    server
        .kubectl(&kubectl_134())
        .ok(&["get", "secret", "db", "-o", "jsonpath={.data.password}"])
}

#[test]
fn secrets_in_the_embedded_store_are_encrypted_and_survive_rotation_and_restarts() {
    let files = tempfile::tempdir().expect("tempdir");
    let config = files.path().join("encryption.yaml");
    write_config(&config, "aescbc", &[("key1", KEY1)]);
    let config_arg = config.to_str().expect("utf-8 path");
    let mut server = Server::start_with(&["--encryption-provider-config", config_arg]);
    create_objects(&server);
    assert_eq!(secret_value(&server), MARKER_B64);
    let store = server.data_dir().join("store");
    assert!(
        found_in_files(&store, PLAIN_MARKER),
        "the search finds plain values"
    );
    assert!(
        !found_in_files(&store, MARKER),
        "plain secret value on disk"
    );
    assert!(
        !found_in_files(&store, MARKER_B64),
        "base64 secret value on disk"
    );
    assert!(found_in_files(&store, "k8s:enc:aescbc:v1:key1:"));

    // Rotation, as upstream documents it: the new key first, the old one
    // still listed; rewrite every Secret; then drop the old key.
    server.kill9();
    write_config(&config, "aescbc", &[("key2", KEY2), ("key1", KEY1)]);
    server.spawn();
    assert_eq!(secret_value(&server), MARKER_B64, "old key still reads");
    let k = server.kubectl(&kubectl_134());
    let all = k.ok(&["get", "secrets", "-A", "-o", "json"]);
    k.ok_stdin(&["replace", "-f", "-"], &all);
    assert!(found_in_files(&store, "k8s:enc:aescbc:v1:key2:"));
    server.kill9();
    write_config(&config, "aescbc", &[("key2", KEY2)]);
    server.spawn();
    assert_eq!(
        secret_value(&server),
        MARKER_B64,
        "readable with the new key alone after the rewrite and a restart"
    );
    assert!(!found_in_files(&store, MARKER));
}

#[test]
fn secrets_in_etcd_are_encrypted() {
    let etcd = Etcd::start();
    let files = tempfile::tempdir().expect("tempdir");
    let config = files.path().join("encryption.yaml");
    write_config(&config, "secretbox", &[("box1", KEY1)]);
    let server = Server::start_with(&[
        "--etcd-servers",
        &etcd.url(),
        "--encryption-provider-config",
        config.to_str().expect("utf-8 path"),
    ]);
    create_objects(&server);
    assert_eq!(secret_value(&server), MARKER_B64);
    let raw = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let mut client = etcd_client::Client::connect([etcd.url()], None)
                .await
                .expect("etcd client");
            let secret = client
                .get("/registry/secrets/default/db", None)
                .await
                .expect("get");
            let configmap = client
                .get("/registry/configmaps/default/settings", None)
                .await
                .expect("get");
            let value = |r: &etcd_client::GetResponse| {
                r.kvs()
                    .first()
                    .map(|kv| kv.value().to_vec())
                    .unwrap_or_default()
            };
            (value(&secret), value(&configmap))
        });
    let (secret, configmap) = raw;
    assert!(secret.starts_with(b"k8s:enc:secretbox:v1:box1:"));
    let contains =
        |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(!contains(&secret, MARKER) && !contains(&secret, MARKER_B64));
    assert!(contains(&configmap, PLAIN_MARKER), "configmaps stay plain");
}
