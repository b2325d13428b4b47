//! What the signer does with one request, free of the API: recognise the
//! request as one for a signer it runs and check it against that signer's
//! rules (upstream's `csrsigning` checks), then issue a certificate from the
//! cluster CA.

use std::time::Duration;

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

/// `kubernetes.io/kube-apiserver-client`: client certificates any subject may get.
pub const KUBE_APISERVER_CLIENT: &str = "kubernetes.io/kube-apiserver-client";
/// `kubernetes.io/kube-apiserver-client-kubelet`: a kubelet's client certificate.
pub const KUBE_APISERVER_CLIENT_KUBELET: &str = "kubernetes.io/kube-apiserver-client-kubelet";

/// The longest certificate issued (kube-controller-manager's default
/// `--cluster-signing-duration`, one year).
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);
/// How far before now a certificate starts (clock skew), and the lifetime
/// under which the backdate shrinks to 1% of it (upstream's policy).
const BACKDATE: Duration = Duration::from_secs(5 * 60);
const SHORT: Duration = Duration::from_secs(8 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("unable to parse csr: {0}")]
    Parse(String),
    #[error("the cluster CA is unusable: {0}")]
    Ca(String),
    #[error("error auto signing csr: {0}")]
    Sign(String),
}

/// The signers this controller runs.
pub fn is_ours(signer_name: &str) -> bool {
    matches!(
        signer_name,
        KUBE_APISERVER_CLIENT | KUBE_APISERVER_CLIENT_KUBELET
    )
}

/// The parts of a PKCS#10 request the signers' rules look at.
#[derive(Debug, Default)]
pub struct Request {
    pub organizations: Vec<String>,
    pub common_name: String,
    pub dns_names: usize,
    pub emails: usize,
    pub ips: usize,
    pub uris: usize,
}

/// Parses a PEM `CERTIFICATE REQUEST` (upstream's `ParseCSR`).
pub fn parse(pem: &[u8]) -> Result<Request, SignError> {
    let block = match x509_parser::pem::parse_x509_pem(pem) {
        Ok((_, b)) if b.label == "CERTIFICATE REQUEST" => b,
        _ => {
            return Err(SignError::Parse(
                "PEM block type must be CERTIFICATE REQUEST".into(),
            ));
        }
    };
    let (_, csr) = X509CertificationRequest::from_der(&block.contents)
        .map_err(|e| SignError::Parse(e.to_string()))?;
    let subject = &csr.certification_request_info.subject;
    let mut req = Request {
        organizations: subject
            .iter_organization()
            .filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect(),
        common_name: subject
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())
            .unwrap_or("")
            .to_string(),
        ..Request::default()
    };
    for ext in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(_) => req.dns_names += 1,
                    GeneralName::RFC822Name(_) => req.emails += 1,
                    GeneralName::IPAddress(_) => req.ips += 1,
                    GeneralName::URI(_) => req.uris += 1,
                    _ => {}
                }
            }
        }
    }
    Ok(req)
}

/// Checks `req` against the rules of `signer_name`; the error is the message
/// of the `Failed` condition (reason `SignerValidationFailure`).
pub fn check(signer_name: &str, req: &Request, usages: &[String]) -> Result<(), String> {
    match signer_name {
        KUBE_APISERVER_CLIENT => client_usages(usages),
        KUBE_APISERVER_CLIENT_KUBELET => kubelet_client(req, usages),
        other => Err(format!("unknown signerName {other:?}")),
    }
}

fn client_usages(usages: &[String]) -> Result<(), String> {
    let mut client_auth = false;
    for u in usages {
        match u.as_str() {
            "digital signature" | "key encipherment" => {}
            "client auth" => client_auth = true,
            other => return Err(format!("invalid usage for client certificate: {other}")),
        }
    }
    if client_auth {
        Ok(())
    } else {
        Err("missing required usage for client certificate: client auth".into())
    }
}

/// Upstream's `ValidateKubeletClientCSR`.
fn kubelet_client(req: &Request, usages: &[String]) -> Result<(), String> {
    if req.organizations != ["system:nodes"] {
        return Err("subject organization is not system:nodes".into());
    }
    if req.dns_names > 0 {
        return Err("DNS subjectAltNames are not allowed".into());
    }
    if req.emails > 0 {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if req.ips > 0 {
        return Err("IP subjectAltNames are not allowed".into());
    }
    if req.uris > 0 {
        return Err("URI subjectAltNames are not allowed".into());
    }
    if !req.common_name.starts_with("system:node:") {
        return Err("subject common name does not begin with system:node:".into());
    }
    let mut set: Vec<&str> = usages.iter().map(String::as_str).collect();
    set.sort_unstable();
    set.dedup();
    let with_rsa = ["client auth", "digital signature", "key encipherment"];
    let without_rsa = ["client auth", "digital signature"];
    if set != with_rsa && set != without_rsa {
        return Err("usages did not match [client auth digital signature key encipherment]".into());
    }
    Ok(())
}

/// The cluster CA, ready to sign.
pub struct Ca {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    not_after: time::OffsetDateTime,
}

impl Ca {
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca, SignError> {
        let ca = |e: rcgen::Error| SignError::Ca(e.to_string());
        let key = rcgen::KeyPair::from_pem(key_pem).map_err(ca)?;
        let der = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
            .map_err(|e| SignError::Ca(e.to_string()))?
            .1;
        let cert = x509_parser::parse_x509_certificate(&der.contents)
            .map_err(|e| SignError::Ca(e.to_string()))?
            .1;
        let not_after = cert.validity().not_after.to_datetime();
        let issuer = rcgen::Issuer::from_ca_cert_pem(cert_pem, key).map_err(ca)?;
        Ok(Ca { issuer, not_after })
    }

    /// A certificate (PEM) for the request `pem`, with the request's subject
    /// and subject alternative names, the given usages, valid for
    /// `requested` (capped at [`MAX_DURATION`] and the CA's own expiry).
    pub fn sign(
        &self,
        pem: &[u8],
        usages: &[String],
        requested: Option<Duration>,
    ) -> Result<String, SignError> {
        let pem = std::str::from_utf8(pem).map_err(|e| SignError::Parse(e.to_string()))?;
        let mut csr = rcgen::CertificateSigningRequestParams::from_pem(pem)
            .map_err(|e| SignError::Parse(e.to_string()))?;
        let ttl = requested.map_or(MAX_DURATION, |d| d.min(MAX_DURATION));
        let backdate = if ttl < SHORT { ttl / 100 } else { BACKDATE };
        let now = time::OffsetDateTime::now_utc();
        let not_before = now - backdate;
        let not_after = (not_before + ttl).min(self.not_after);
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = csr.params.distinguished_name.clone();
        params.subject_alt_names = csr.params.subject_alt_names.clone();
        params.not_before = not_before;
        params.not_after = not_after;
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(rcgen::SerialNumber::from_slice(
            uuid::Uuid::new_v4().as_bytes(),
        ));
        for u in usages {
            match key_usage(u) {
                Some(Usage::Key(k)) if !params.key_usages.contains(&k) => params.key_usages.push(k),
                Some(Usage::Extended(e)) if !params.extended_key_usages.contains(&e) => {
                    params.extended_key_usages.push(e)
                }
                _ => {}
            }
        }
        csr.params = params;
        let cert = csr
            .signed_by(&self.issuer)
            .map_err(|e| SignError::Sign(e.to_string()))?;
        Ok(cert.pem())
    }
}

enum Usage {
    Key(rcgen::KeyUsagePurpose),
    Extended(rcgen::ExtendedKeyUsagePurpose),
}

/// Upstream's mapping of a CSR usage to an X.509 (extended) key usage.
fn key_usage(usage: &str) -> Option<Usage> {
    use rcgen::ExtendedKeyUsagePurpose as E;
    use rcgen::KeyUsagePurpose as K;
    Some(match usage {
        "signing" | "digital signature" => Usage::Key(K::DigitalSignature),
        "content commitment" => Usage::Key(K::ContentCommitment),
        "key encipherment" => Usage::Key(K::KeyEncipherment),
        "key agreement" => Usage::Key(K::KeyAgreement),
        "data encipherment" => Usage::Key(K::DataEncipherment),
        "cert sign" => Usage::Key(K::KeyCertSign),
        "crl sign" => Usage::Key(K::CrlSign),
        "encipher only" => Usage::Key(K::EncipherOnly),
        "decipher only" => Usage::Key(K::DecipherOnly),
        "any" => Usage::Extended(E::Any),
        "server auth" => Usage::Extended(E::ServerAuth),
        "client auth" => Usage::Extended(E::ClientAuth),
        "code signing" => Usage::Extended(E::CodeSigning),
        "email protection" | "s/mime" => Usage::Extended(E::EmailProtection),
        "timestamping" => Usage::Extended(E::TimeStamping),
        "ocsp signing" => Usage::Extended(E::OcspSigning),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(cn: &str, org: Option<&str>, dns: &[&str]) -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("params");
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

    fn usages(u: &[&str]) -> Vec<String> {
        u.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn kubelet_requests_follow_upstreams_rules() {
        let ok =
            parse(request("system:node:n1", Some("system:nodes"), &[]).as_bytes()).expect("parse");
        let u = usages(&["digital signature", "client auth"]);
        assert_eq!(check(KUBE_APISERVER_CLIENT_KUBELET, &ok, &u), Ok(()));
        let no_org = parse(request("system:node:n1", None, &[]).as_bytes()).expect("parse");
        assert_eq!(
            check(KUBE_APISERVER_CLIENT_KUBELET, &no_org, &u).unwrap_err(),
            "subject organization is not system:nodes"
        );
        let dns = parse(request("system:node:n1", Some("system:nodes"), &["a.example"]).as_bytes())
            .expect("parse");
        assert_eq!(
            check(KUBE_APISERVER_CLIENT_KUBELET, &dns, &u).unwrap_err(),
            "DNS subjectAltNames are not allowed"
        );
        assert!(
            check(
                KUBE_APISERVER_CLIENT_KUBELET,
                &ok,
                &usages(&["client auth"])
            )
            .is_err()
        );
    }

    #[test]
    fn client_requests_need_client_auth_only() {
        let r = parse(request("alice", None, &[]).as_bytes()).expect("parse");
        assert_eq!(
            check(KUBE_APISERVER_CLIENT, &r, &usages(&["client auth"])),
            Ok(())
        );
        assert_eq!(
            check(
                KUBE_APISERVER_CLIENT,
                &r,
                &usages(&["server auth", "client auth"])
            )
            .unwrap_err(),
            "invalid usage for client certificate: server auth"
        );
        assert_eq!(
            check(KUBE_APISERVER_CLIENT, &r, &usages(&["digital signature"])).unwrap_err(),
            "missing required usage for client certificate: client auth"
        );
    }

    #[test]
    fn issued_certificates_keep_the_subject_and_the_lifetime() {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::default();
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kubernetes");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).expect("ca");
        let ca = Ca::from_pem(&ca_cert.pem(), &ca_key.serialize_pem()).expect("ca");
        let pem = ca
            .sign(
                request("alice", Some("devs"), &[]).as_bytes(),
                &usages(&["digital signature", "client auth"]),
                Some(Duration::from_secs(3600)),
            )
            .expect("sign");
        let der = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .expect("pem")
            .1;
        let cert = x509_parser::parse_x509_certificate(&der.contents)
            .expect("cert")
            .1;
        let cn = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok());
        assert_eq!(cn, Some("alice"));
        let v = cert.validity();
        assert_eq!(v.not_after.timestamp() - v.not_before.timestamp(), 3600);
        assert_eq!(cert.issuer().to_string(), "CN=kubernetes");
    }
}
