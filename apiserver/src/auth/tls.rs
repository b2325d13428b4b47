//! The API server's TLS: its serving certificate, the certificates it issues
//! to its own clients (the admin and the components), and the rustls
//! configuration that asks every client for a certificate without requiring
//! one.
//!
//! A client certificate is not checked during the handshake: a certificate
//! from another CA, or an expired one, must get upstream's 401 `Unauthorized`
//! rather than a broken connection. The handshake only proves the client
//! holds the certificate's key; [`ClientCas::identify`] then checks the
//! chain and reads the user from it (`CN` the user name, each `O` a group).

use std::net::IpAddr;
use std::sync::Arc;

use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};

use super::ca::ClusterCa;
use super::{Error, Result, UserInfo};

/// How long the certificates issued here are valid (kubeadm's leaf lifetime).
const LEAF_DAYS: u64 = 365;

/// A certificate and its key, PEM-encoded.
#[derive(Clone)]
pub struct CertifiedKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for CertifiedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertifiedKey").finish_non_exhaustive()
    }
}

/// What a certificate issued by [`ClusterCa::issue`] is for.
pub enum Leaf<'a> {
    /// A serving certificate for these DNS names and IP addresses.
    Server { names: &'a [String] },
    /// A client certificate for user `user`, in `group` if any (rcgen
    /// writes one value per attribute type, so one `O`).
    Client {
        user: &'a str,
        group: Option<&'a str>,
    },
}

impl ClusterCa {
    /// Issues a certificate signed by this CA with a fresh P-256 key.
    pub fn issue(&self, leaf: Leaf<'_>) -> Result<CertifiedKey> {
        let failed = |e: rcgen::Error| Error::Generate(e.to_string());
        let ca_key = rcgen::KeyPair::from_pem(self.key_pem()).map_err(failed)?;
        let issuer = rcgen::Issuer::from_ca_cert_pem(self.cert_pem(), ca_key).map_err(failed)?;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(failed)?;
        let mut params = rcgen::CertificateParams::default();
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyEncipherment,
        ];
        match leaf {
            Leaf::Server { names } => {
                params
                    .distinguished_name
                    .push(rcgen::DnType::CommonName, "kube-apiserver");
                params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
                for name in names {
                    let san = match name.parse::<IpAddr>() {
                        Ok(ip) => rcgen::SanType::IpAddress(ip),
                        Err(_) => rcgen::SanType::DnsName(name.clone().try_into().map_err(failed)?),
                    };
                    params.subject_alt_names.push(san);
                }
            }
            Leaf::Client { user, group } => {
                if let Some(group) = group {
                    params
                        .distinguished_name
                        .push(rcgen::DnType::OrganizationName, group);
                }
                params
                    .distinguished_name
                    .push(rcgen::DnType::CommonName, user);
                params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
            }
        }
        let today = chrono::Utc::now().date_naive();
        params.not_before = rcgen_date(today - chrono::Days::new(1));
        params.not_after = rcgen_date(today + chrono::Days::new(LEAF_DAYS));
        let mut serial = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut serial)
            .map_err(|_| Error::Generate("no randomness for a serial number".into()))?;
        serial[0] &= 0x7f;
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
        let cert = params.signed_by(&key, &issuer).map_err(failed)?;
        Ok(CertifiedKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Midnight UTC of `day`, as rcgen takes validity dates.
fn rcgen_date(day: chrono::NaiveDate) -> time::OffsetDateTime {
    use chrono::Datelike;
    rcgen::date_time_ymd(day.year(), day.month() as u8, day.day() as u8)
}

/// The names every serving certificate carries: loopback, the `kubernetes`
/// Service's IP and DNS names, and this host's name.
pub fn default_serving_names(service_ip: IpAddr, hostname: Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = [
        "localhost",
        "127.0.0.1",
        "::1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.push(service_ip.to_string());
    if let Some(h) = hostname.map(str::trim).filter(|h| !h.is_empty()) {
        names.push(h.to_string());
    }
    names
}

/// The CAs client certificates are checked against.
#[derive(Debug)]
pub struct ClientCas {
    verifier: Arc<dyn ClientCertVerifier>,
}

impl ClientCas {
    /// Trusts every certificate in `pem` (one or more CA certificates).
    pub fn from_pem(pem: &str) -> Result<ClientCas> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| Error::Generate(format!("client CA: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| Error::Generate(format!("client CA: {e}")))?;
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::new(provider()))
                .allow_unauthenticated()
                .build()
                .map_err(|e| Error::Generate(format!("client CA: {e}")))?;
        Ok(ClientCas { verifier })
    }

    /// The user a verified client certificate chain names, or why it is refused.
    pub fn identify(&self, chain: &[CertificateDer<'_>]) -> std::result::Result<UserInfo, String> {
        let (leaf, intermediates) = chain.split_first().ok_or("no certificate")?;
        self.verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .map_err(|e| e.to_string())?;
        user_of(leaf)
    }
}

/// `CN` is the user name and each `O` a group, as upstream's x509 authenticator reads them.
fn user_of(cert: &CertificateDer<'_>) -> std::result::Result<UserInfo, String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).map_err(|e| e.to_string())?;
    let subject = parsed.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or("")
        .to_string();
    if name.is_empty() {
        return Err("the certificate names no user (empty common name)".into());
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_string)
        .collect();
    Ok(UserInfo {
        name,
        uid: String::new(),
        groups,
        extra: Default::default(),
    })
}

/// Asks for a client certificate and checks only that the client holds its
/// key; the chain is judged later, by [`ClientCas::identify`], so a bad one
/// is answered with 401 instead of a failed handshake.
#[derive(Debug)]
struct RequestClientCert {
    cas: Arc<ClientCas>,
}

impl ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.cas.verifier.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.cas.verifier.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.cas.verifier.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.cas.verifier.supported_verify_schemes()
    }
}

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The rustls configuration serving `serving` (TLS 1.2 and 1.3 with rustls'
/// default, forward-secret AEAD suites only), offering HTTP/2 and HTTP/1.1.
pub fn server_config(
    serving: &CertifiedKey,
    client_cas: Arc<ClientCas>,
) -> Result<rustls::ServerConfig> {
    let bad = |e: String| Error::Generate(format!("serving certificate: {e}"));
    let chain = CertificateDer::pem_slice_iter(serving.cert_pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(serving.key_pem.as_bytes())
        .map_err(|e| bad(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| bad(e.to_string()))?
        .with_client_cert_verifier(Arc::new(RequestClientCert { cas: client_cas }))
        .with_single_cert(chain, key)
        .map_err(|e| bad(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(pem: &str) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<std::result::Result<_, _>>()
            .expect("pem")
    }

    #[test]
    fn client_certificates_name_user_and_groups() {
        let ca = ClusterCa::generate().expect("ca");
        let cas = ClientCas::from_pem(ca.cert_pem()).expect("cas");
        let cert = ca
            .issue(Leaf::Client {
                user: "jane",
                group: Some("dev"),
            })
            .expect("issue");
        let user = cas.identify(&chain(&cert.cert_pem)).expect("identify");
        assert_eq!(user.name, "jane");
        assert_eq!(user.groups, vec!["dev"]);
    }

    #[test]
    fn certificates_of_another_ca_are_refused() {
        let ours = ClusterCa::generate().expect("ca");
        let theirs = ClusterCa::generate().expect("ca");
        let cas = ClientCas::from_pem(ours.cert_pem()).expect("cas");
        let cert = theirs
            .issue(Leaf::Client {
                user: "mallory",
                group: Some("system:masters"),
            })
            .expect("issue");
        assert!(cas.identify(&chain(&cert.cert_pem)).is_err());
        let serving = ours
            .issue(Leaf::Server {
                names: &["localhost".to_string()],
            })
            .expect("issue");
        assert!(
            cas.identify(&chain(&serving.cert_pem)).is_err(),
            "a serving certificate is not a client certificate"
        );
    }
}
