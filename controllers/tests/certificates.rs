//! The CSR signing controller against a real API server: approved requests
//! for the kube-apiserver client signers get a certificate from the cluster
//! CA (the Secret the server publishes) with the request's subject and the
//! requested lifetime; requests the signer's rules refuse are marked Failed;
//! denied ones are left alone.

mod common;

use common::{Cluster, TestResult, eventually};
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestSpec,
    CertificateSigningRequestStatus,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};

fn request_pem(cn: &str, org: Option<&str>) -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    if let Some(o) = org {
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, o);
    }
    params
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem")
}

fn csr(
    name: &str,
    signer: &str,
    pem: &str,
    usages: &[&str],
    secs: Option<i32>,
) -> CertificateSigningRequest {
    CertificateSigningRequest {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(pem.as_bytes().to_vec()),
            signer_name: signer.into(),
            usages: Some(usages.iter().map(|u| u.to_string()).collect()),
            expiration_seconds: secs,
            ..Default::default()
        },
        status: None,
    }
}

/// Adds a condition through `/approval`, as an approver (or kubectl) does.
async fn decide(client: &kube::Client, name: &str, type_: &str) -> TestResult {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let mut current = api.get(name).await?;
    current.status = Some(CertificateSigningRequestStatus {
        conditions: Some(vec![CertificateSigningRequestCondition {
            type_: type_.into(),
            status: "True".into(),
            reason: Some("Test".into()),
            ..Default::default()
        }]),
        ..Default::default()
    });
    let req = kube::core::Request::new("/apis/certificates.k8s.io/v1/certificatesigningrequests")
        .replace_subresource(
        "approval",
        name,
        &PostParams::default(),
        serde_json::to_vec(&current)?,
    )?;
    client.request::<CertificateSigningRequest>(req).await?;
    Ok(())
}

fn certificate(csr: &CertificateSigningRequest) -> Option<Vec<u8>> {
    csr.status
        .as_ref()?
        .certificate
        .as_ref()
        .map(|c| c.0.clone())
        .filter(|c| !c.is_empty())
}

/// A cluster running the signing controller, and its CSR API.
async fn signer_running() -> TestResult<(Cluster, Api<CertificateSigningRequest>)> {
    let cluster = Cluster::start().await?;
    cluster.run(controllers::certificates::run);
    let api = Api::all(cluster.client.clone());
    Ok((cluster, api))
}

#[tokio::test]
async fn approved_client_requests_are_signed_by_the_cluster_ca() -> TestResult {
    let (cluster, api) = signer_running().await?;
    let pp = PostParams::default();
    api.create(
        &pp,
        &csr(
            "alice",
            "kubernetes.io/kube-apiserver-client",
            &request_pem("alice", Some("devs")),
            &["digital signature", "client auth"],
            Some(3600),
        ),
    )
    .await?;
    api.create(
        &pp,
        &csr(
            "node",
            "kubernetes.io/kube-apiserver-client-kubelet",
            &request_pem("system:node:n1", Some("system:nodes")),
            &["digital signature", "client auth"],
            None,
        ),
    )
    .await?;
    api.create(
        &pp,
        &csr(
            "denied",
            "kubernetes.io/kube-apiserver-client",
            &request_pem("mallory", None),
            &["client auth"],
            None,
        ),
    )
    .await?;
    decide(&cluster.client, "denied", "Denied").await?;
    decide(&cluster.client, "alice", "Approved").await?;
    decide(&cluster.client, "node", "Approved").await?;

    let pem = eventually("alice's certificate", || async {
        certificate(&api.get("alice").await.ok()?)
    })
    .await;
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "kube-system");
    let ca_secret = secrets
        .get(controllers::certificates::SIGNING_CA_SECRET)
        .await?;
    let ca_pem = ca_secret
        .data
        .unwrap_or_default()
        .get("tls.crt")
        .map(|b| b.0.clone())
        .expect("tls.crt");
    let ca_der = x509_parser::pem::parse_x509_pem(&ca_pem)?.1;
    let ca = x509_parser::parse_x509_certificate(&ca_der.contents)?.1;
    let der = x509_parser::pem::parse_x509_pem(&pem)?.1;
    let cert = x509_parser::parse_x509_certificate(&der.contents)?.1;
    assert_eq!(cert.subject().to_string(), "CN=alice, O=devs");
    assert_eq!(cert.issuer(), ca.subject());
    cert.verify_signature(Some(ca.public_key()))?;
    let v = cert.validity();
    assert_eq!(
        v.not_after.timestamp() - v.not_before.timestamp(),
        3600,
        "expirationSeconds honoured"
    );
    let eku = cert
        .extended_key_usage()?
        .expect("extended key usage")
        .value;
    assert!(eku.client_auth && !eku.server_auth);

    let node = eventually("the kubelet's certificate", || async {
        certificate(&api.get("node").await.ok()?)
    })
    .await;
    let der = x509_parser::pem::parse_x509_pem(&node)?.1;
    let cert = x509_parser::parse_x509_certificate(&der.contents)?.1;
    assert_eq!(
        cert.subject().to_string(),
        "CN=system:node:n1, O=system:nodes"
    );
    let v = cert.validity();
    assert_eq!(
        v.not_after.timestamp() - v.not_before.timestamp(),
        365 * 24 * 3600,
        "default duration"
    );

    // Both approved requests are signed; the denied one, processed alongside, is not.
    assert_eq!(certificate(&api.get("denied").await?), None);
    Ok(())
}

#[tokio::test]
async fn requests_the_signer_refuses_are_marked_failed() -> TestResult {
    let (cluster, api) = signer_running().await?;
    let pp = PostParams::default();
    api.create(
        &pp,
        &csr(
            "kubelet-without-org",
            "kubernetes.io/kube-apiserver-client-kubelet",
            &request_pem("system:node:n1", None),
            &["digital signature", "client auth"],
            None,
        ),
    )
    .await?;
    api.create(
        &pp,
        &csr(
            "server-usage",
            "kubernetes.io/kube-apiserver-client",
            &request_pem("bob", None),
            &["client auth", "server auth"],
            None,
        ),
    )
    .await?;
    decide(&cluster.client, "kubelet-without-org", "Approved").await?;
    decide(&cluster.client, "server-usage", "Approved").await?;
    for (name, message) in [
        (
            "kubelet-without-org",
            "subject organization is not system:nodes",
        ),
        (
            "server-usage",
            "invalid usage for client certificate: server auth",
        ),
    ] {
        let failed = eventually(&format!("{name} marked Failed"), || async {
            let csr = api.get(name).await.ok()?;
            csr.status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "Failed")
        })
        .await;
        assert_eq!(failed.status, "True");
        assert_eq!(failed.reason.as_deref(), Some("SignerValidationFailure"));
        assert_eq!(failed.message.as_deref(), Some(message));
        assert!(
            failed.last_update_time.is_some(),
            "the server stamps the condition"
        );
        assert_eq!(certificate(&api.get(name).await?), None);
    }
    Ok(())
}
