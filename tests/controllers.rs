//! The controllers `ironkube server` runs, seen through the API.

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};

use common::{Server, poll_async};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_namespace_gets_a_default_service_account() {
    let server = Server::start();
    let client = server.client().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "team-a"}})).expect("ns");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "team-a");
    poll_async(
        "the default service account",
        Duration::from_secs(30),
        || async { accounts.get_opt("default").await.ok().flatten() },
    )
    .await;
    accounts
        .delete("default", &DeleteParams::default())
        .await
        .expect("delete");
    let again = poll_async(
        "the default service account to be recreated",
        Duration::from_secs(30),
        || async { accounts.get_opt("default").await.ok().flatten() },
    )
    .await;
    assert_eq!(again.metadata.name.as_deref(), Some("default"));
    let bundles: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), "team-a");
    poll_async(
        "the kube-root-ca.crt ConfigMap",
        Duration::from_secs(30),
        || async { bundles.get_opt("kube-root-ca.crt").await.ok().flatten() },
    )
    .await;
    bundles
        .delete("kube-root-ca.crt", &DeleteParams::default())
        .await
        .expect("delete");
    let bundle = poll_async(
        "kube-root-ca.crt to be recreated",
        Duration::from_secs(30),
        || async { bundles.get_opt("kube-root-ca.crt").await.ok().flatten() },
    )
    .await;
    // It holds the cluster CA that signs the API server's serving certificate.
    let ca = std::fs::read_to_string(server.data_dir().join("pki/ca.crt")).expect("ca.crt");
    assert_eq!(
        bundle.data.as_ref().and_then(|d| d.get("ca.crt")),
        Some(&ca)
    );
    let system: Api<ServiceAccount> = Api::namespaced(client, "kube-system");
    poll_async(
        "kube-system's default service account",
        Duration::from_secs(30),
        || async { system.get_opt("default").await.ok().flatten() },
    )
    .await;
}
